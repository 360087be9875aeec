//! The edit endpoints through the router (tower `oneshot`), on a real store in a temporary copy
//! of `tests/fixtures/serve` (grid G1: H1, H6, H10–H15; grid G2: H2–H4; H10–H15 sit at
//! 100.3°E 40.3°N out of reach of every station). Roles and refusals, merge patches with
//! ETag / If-Match, visits, station edits reflected at once in the coverage, history, and a
//! restart from the store.

use std::path::Path;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use gridcover::model::service::{format_day, today};
use gridcover::serve::edits::{self, state_with_store};
use gridcover::serve::{router, AppState, Limits, Role};
use gridcover::store::Store;

/// A server on a store of `tests/fixtures/serve` with a leader, a planner and the workers of
/// G1 (`w1`) and G2 (`w2`) (also the fixture of `worker_to_visit`).
pub(crate) struct Fx {
    pub(crate) state: AppState,
    pub(crate) leader: String,
    pub(crate) planner: String,
    pub(crate) w1: String,
    pub(crate) w2: String,
    pub(crate) dir: tempfile::TempDir,
}

fn start(dir: &Path) -> AppState {
    start_with(dir, Limits::default())
}

fn start_with(dir: &Path, limits: Limits) -> AppState {
    let (store, ds) = Store::open_dataset(dir).unwrap();
    state_with_store(store, ds, limits, None).unwrap()
}

fn fixture() -> Fx {
    fixture_with(Limits::default())
}

pub(crate) fn fixture_with(limits: Limits) -> Fx {
    let dir = crate::common::copy_fixture("serve");
    let store = Store::open(dir.path()).unwrap();
    store.import(dir.path()).unwrap();
    let leader = store.add_user("李领导", Role::Leader, &[]).unwrap();
    let planner = store.add_user("规划员", Role::Planner, &[]).unwrap();
    let w1 = store.add_user("王五", Role::GridWorker, &["G1".into()]).unwrap();
    let w2 = store.add_user("赵六", Role::GridWorker, &["G2".into()]).unwrap();
    drop(store);
    let state = start_with(dir.path(), limits);
    Fx { state, leader, planner, w1, w2, dir }
}

struct Resp {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<&str>,
    if_match: Option<&str>,
) -> Resp {
    let mut b = Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(m) = if_match {
        b = b.header(header::IF_MATCH, m);
    }
    let req = match body {
        Some(t) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(t.to_string())).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let r = router(state.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    let etag = r.headers().get(header::ETAG).map(|v| v.to_str().unwrap().to_string());
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp { status, etag, body }
}

#[tokio::test]
async fn household_status_patches_are_for_its_grid_worker_and_versioned() {
    let fx = fixture();
    let s = &fx.state;
    let patch = r#"{"needs": ["coal"], "phone": "13800000000"}"#;
    assert_eq!(
        call(s, "PATCH", "/api/households/H1", &fx.leader, Some(patch), None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(s, "PATCH", "/api/households/H1", &fx.planner, Some(patch), None).await.status,
        StatusCode::FORBIDDEN
    );
    // Another grid's worker: as if it did not exist.
    assert_eq!(call(s, "PATCH", "/api/households/H1", &fx.w2, Some(patch), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(s, "PATCH", "/api/households/H1", "nope", Some(patch), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let g = call(s, "GET", "/api/households/H1", &fx.w1, None, None).await;
    assert_eq!((g.status, g.etag.as_deref()), (StatusCode::OK, Some("\"1\"")));
    assert_eq!(g.body["properties"]["status"], json!({}));
    let r = call(s, "PATCH", "/api/households/H1", &fx.w1, Some(patch), Some("\"1\"")).await;
    assert_eq!((r.status, r.etag.as_deref()), (StatusCode::OK, Some("\"2\"")), "{}", r.body);
    assert_eq!(r.body["status"], json!({"needs": ["coal"], "phone": "13800000000"}));
    // A stale If-Match: 409, nothing changed.
    let r = call(s, "PATCH", "/api/households/H1", &fx.w1, Some(r#"{"phone": null}"#), Some("\"1\"")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // If-Match is optional.
    let r = call(s, "PATCH", "/api/households/H1", &fx.w1, Some(r#"{"phone": null}"#), None).await;
    assert_eq!((r.status, r.body["status"].clone()), (StatusCode::OK, json!({"needs": ["coal"]})));
    for bad in ["[1]", "not json", "\"x\""] {
        let r = call(s, "PATCH", "/api/households/H1", &fx.w1, Some(bad), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let r = call(s, "PATCH", "/api/households/H1", &fx.w1, Some("{}"), Some("abc")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The household's feature carries the status.
    let f = call(s, "GET", "/api/collections/households/items/H1", &fx.w1, None, None).await;
    assert_eq!(f.body["properties"]["status"], json!({"needs": ["coal"]}), "{}", f.body);
    let h = call(s, "GET", "/api/households/H1/history", &fx.w1, None, None).await;
    let actions: Vec<&str> =
        h.body["history"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["status", "status"]);
    assert_eq!(
        call(s, "GET", "/api/households/H1/history", &fx.leader, None, None).await.status,
        StatusCode::FORBIDDEN
    );
    // After a restart, from the store.
    drop(fx.state);
    let s2 = start(fx.dir.path());
    let f = call(&s2, "GET", "/api/collections/households/items/H1", &fx.w1, None, None).await;
    assert_eq!(f.body["properties"]["status"], json!({"needs": ["coal"]}));
    assert_eq!(call(&s2, "GET", "/api/households/H1", &fx.w1, None, None).await.etag.as_deref(), Some("\"3\""));
}

#[tokio::test]
async fn visits_are_recorded_and_listed_by_the_grid_worker() {
    let fx = fixture();
    let s = &fx.state;
    let v = r#"{"date": "2026-11-29", "note": "送煤两吨"}"#;
    let r = call(s, "POST", "/api/households/H6/visits", &fx.w1, Some(v), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["date"].as_str(), r.body["note"].as_str(), r.body["user"].as_str()),
        (Some("2026-11-29"), Some("送煤两吨"), Some("王五"))
    );
    for bad in [r#"{"date": "2026-02-30"}"#, r#"{"note": "x"}"#, r#"{"date": "2026-11-29", "who": 1}"#, "[]"] {
        let r = call(s, "POST", "/api/households/H6/visits", &fx.w1, Some(bad), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    assert_eq!(call(s, "POST", "/api/households/H2/visits", &fx.w1, Some(v), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(s, "POST", "/api/households/H6/visits", &fx.leader, Some(v), None).await.status,
        StatusCode::FORBIDDEN
    );
    let l = call(s, "GET", "/api/households/H6/visits", &fx.w1, None, None).await;
    assert_eq!(l.body["visits"].as_array().unwrap().len(), 1);
    assert_eq!(call(s, "GET", "/api/households/H6/visits", &fx.w2, None, None).await.status, StatusCode::NOT_FOUND);
}

/// The county's mean distance to the nearest station as a leader sees it (shown: 12 households).
async fn county_mean_m(fx: &Fx) -> f64 {
    let f = call(&fx.state, "GET", "/api/collections/admin-county/items/990101", &fx.leader, None, None).await;
    f.body["properties"]["nearest_mean_m"].as_f64().unwrap_or_else(|| panic!("{}", f.body))
}

fn county_covered(state: &AppState) -> u64 {
    let w = state.world();
    let u = w.ds().divisions.find("990101").unwrap();
    w.an().coverage.units[u as usize].covered_households as u64
}

#[tokio::test]
async fn planner_station_edits_show_at_once_in_the_coverage() {
    let fx = fixture();
    let s = &fx.state;
    let before = county_covered(s);
    let mean_before = county_mean_m(&fx).await;
    let body =
        r#"{"id": "S9", "name": "新村站", "level": "village", "code": "990101001001", "lon": 100.3, "lat": 40.3}"#;
    assert_eq!(call(s, "POST", "/api/stations", &fx.leader, Some(body), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(call(s, "POST", "/api/stations", &fx.w1, Some(body), None).await.status, StatusCode::FORBIDDEN);
    let bad = r#"{"name": "x", "level": "county", "code": "990101001001", "lon": 100.3, "lat": 40.3}"#;
    assert_eq!(call(s, "POST", "/api/stations", &fx.planner, Some(bad), None).await.status, StatusCode::BAD_REQUEST);
    let r = call(s, "POST", "/api/stations", &fx.planner, Some(body), None).await;
    assert_eq!((r.status, r.etag.as_deref()), (StatusCode::CREATED, Some("\"1\"")), "{}", r.body);
    assert_eq!(r.body["change"]["households_gained"], json!(6), "{}", r.body);
    // The six households at the station's point are covered now: figures, features and items.
    assert_eq!(county_covered(s), before + 6);
    // The served county shows it at once (its covered split is withheld in this small
    // fixture; its mean distance, a figure of all its 12 households, is not).
    assert!(county_mean_m(&fx).await < mean_before - 1000.0);
    let st = call(s, "GET", "/api/collections/stations/items/S9", &fx.leader, None, None).await;
    assert_eq!(st.status, StatusCode::OK);
    assert_eq!(call(s, "POST", "/api/stations", &fx.planner, Some(body), None).await.status, StatusCode::CONFLICT);
    // Move it away (far from everyone), with a stale and then the right version.
    let mv = r#"{"lon": 100.45, "lat": 40.95, "name": "新村站（迁）"}"#;
    assert_eq!(
        call(s, "PATCH", "/api/stations/S9", &fx.planner, Some(mv), Some("\"7\"")).await.status,
        StatusCode::CONFLICT
    );
    let r = call(s, "PATCH", "/api/stations/S9", &fx.planner, Some(mv), Some("\"1\"")).await;
    assert_eq!((r.status, r.etag.as_deref()), (StatusCode::OK, Some("\"2\"")), "{}", r.body);
    assert_eq!(county_covered(s), before);
    let st = call(s, "GET", "/api/collections/stations/items/S9", &fx.leader, None, None).await;
    assert_eq!(st.body["properties"]["name"], json!("新村站（迁）"), "{}", st.body);
    assert_eq!(st.body["geometry"]["coordinates"], json!([100.45, 40.95]));
    let r = call(s, "PATCH", "/api/stations/S9", &fx.planner, Some(r#"{"radius_m": 9000}"#), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Move back, then close: coverage returns to what it was.
    call(s, "PATCH", "/api/stations/S9", &fx.planner, Some(r#"{"lon": 100.3, "lat": 40.3}"#), None).await;
    assert_eq!(county_covered(s), before + 6);
    assert_eq!(call(s, "DELETE", "/api/stations/S9", &fx.w1, None, None).await.status, StatusCode::FORBIDDEN);
    let r = call(s, "DELETE", "/api/stations/S9", &fx.planner, None, Some("\"3\"")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["change"]["households_lost"], json!(6));
    assert_eq!(county_covered(s), before);
    assert_eq!(
        call(s, "GET", "/api/collections/stations/items/S9", &fx.leader, None, None).await.status,
        StatusCode::NOT_FOUND
    );
    let h = call(s, "GET", "/api/stations/S9/history", &fx.leader, None, None).await;
    let actions: Vec<&str> =
        h.body["history"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["add", "update", "update", "close"]);
    assert_eq!(call(s, "GET", "/api/stations/S9/history", &fx.w1, None, None).await.status, StatusCode::FORBIDDEN);
    // Moving an imported station, then a restart: the server starts from the store's stations.
    let r = call(s, "PATCH", "/api/stations/S2", &fx.planner, Some(r#"{"lon": 100.3, "lat": 40.31}"#), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let moved = county_covered(s);
    drop(fx.state);
    let s2 = start(fx.dir.path());
    assert_eq!(county_covered(&s2), moved);
    let w = s2.world();
    let i = w.ds().stations.id.iter().position(|x| x == "S2").unwrap();
    assert_eq!((w.ds().stations.lon[i], w.ds().stations.lat[i]), (100.3, 40.31));
    let i = w.ds().stations.id.iter().position(|x| x == "S9").unwrap();
    assert!(!w.ds().stations.active[i]);
}

#[tokio::test]
async fn planner_scenario_measures_without_changing_anything() {
    let fx = fixture();
    let s = &fx.state;
    let before = county_covered(s);
    let body = r#"{"add": [{"id": "N1", "level": "village", "code": "990101001001", "lon": 100.3, "lat": 40.3}]}"#;
    for t in [&fx.leader, &fx.w1] {
        assert_eq!(call(s, "POST", "/api/scenario", t, Some(body), None).await.status, StatusCode::FORBIDDEN);
    }
    let r = call(s, "POST", "/api/scenario", &fx.planner, Some(body), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The six households at the new station's point gain coverage; only counts are returned.
    assert_eq!(r.body["households_gained"], json!(6), "{}", r.body);
    assert_eq!(r.body["households_lost"], json!(0));
    assert!(r.body.get("households").is_none(), "no household list for planners: {}", r.body);
    assert_eq!(r.body["added"][0]["households"], json!(6));
    // Measured on the planner's groups: the county gains the six (one group of six).
    let county = r.body["units"].as_array().unwrap().iter().find(|u| u["code"] == json!("990101")).unwrap();
    let c = |k: &str| county[k]["covered_households"].as_i64().unwrap();
    assert_eq!(c("after") - c("before"), 6);
    // Every level's changed units without a filter; with `level` and `code`, those only (the
    // viewer asks for the level and area on screen); totals and counts stay whole.
    let levels: Vec<&str> = r.body["units"].as_array().unwrap().iter().map(|u| u["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["province", "city", "county", "township", "village"], "{}", r.body);
    let filtered = r#"{"add": [{"id": "N1", "level": "village", "code": "990101001001", "lon": 100.3, "lat": 40.3}],
        "level": "township", "code": "990101"}"#;
    let f = call(s, "POST", "/api/scenario", &fx.planner, Some(filtered), None).await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.body);
    let units = f.body["units"].as_array().unwrap();
    assert_eq!(units.len(), 1, "{}", f.body);
    assert_eq!((units[0]["level"].as_str(), units[0]["code"].as_str()), (Some("township"), Some("990101001")));
    assert_eq!(f.body["changed_units"], r.body["changed_units"]);
    assert_eq!(f.body["after"], r.body["after"]);
    let elsewhere = filtered.replace(r#""code": "990101"}"#, r#""code": "990102"}"#);
    let e = call(s, "POST", "/api/scenario", &fx.planner, Some(&elsewhere), None).await;
    assert_eq!(e.body["units"], json!([]), "{}", e.body);
    // Nothing changed on the server.
    assert_eq!(county_covered(s), before);
    let st = call(s, "GET", "/api/collections/stations/items/N1", &fx.leader, None, None).await;
    assert_eq!(st.status, StatusCode::NOT_FOUND);
    // Bad requests: unknown station to remove, bad coordinate, empty body, unknown field.
    for bad in [
        r#"{"remove": ["NOPE"]}"#,
        r#"{"add": [{"level": "village", "lon": 500, "lat": 40.3}]}"#,
        r#"{}"#,
        r#"{"add": [], "extra": 1}"#,
        r#"{"remove": ["S2"], "code": "99x"}"#,
        r#"{"remove": ["S2"], "level": "hamlet"}"#,
    ] {
        let r = call(s, "POST", "/api/scenario", &fx.planner, Some(bad), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body["description"].as_str().unwrap().contains("scenario request"), "{}", r.body);
    }
}

/// Ids of the features of an items page.
fn ids(page: &Value) -> Vec<String> {
    page["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn cached_items_pages_follow_station_edits_and_a_rename() {
    let fx = fixture();
    let s = &fx.state;
    let stations = "/api/collections/stations/items?limit=1000";
    let county = "/api/collections/admin-county/items/990101";
    let before = call(s, "GET", stations, &fx.leader, None, None).await;
    assert_eq!(before.status, StatusCode::OK);
    let mean0 = call(s, "GET", county, &fx.leader, None, None).await.body["properties"]["nearest_mean_m"].clone();
    let cached = s.page_cache_len();
    assert!(cached >= 1, "the stations page is cached");
    // The same page again comes from the cache and is the same page, stamped anew.
    let again = call(s, "GET", stations, &fx.planner, None, None).await;
    assert_eq!(s.page_cache_len(), cached);
    assert_eq!(ids(&again.body), ids(&before.body));
    assert_eq!(again.body["numberMatched"], before.body["numberMatched"]);
    assert_eq!(again.body["links"], before.body["links"]);
    assert!(again.body["timeStamp"].as_str().unwrap().ends_with('Z'));
    // A new station out where H10–H15 live: the next page lists it, the county's figures follow.
    let body =
        r#"{"id": "S9", "name": "新村站", "level": "village", "code": "990101001001", "lon": 100.3, "lat": 40.3}"#;
    assert_eq!(call(s, "POST", "/api/stations", &fx.planner, Some(body), None).await.status, StatusCode::CREATED);
    assert_eq!(s.page_cache_len(), 0, "an edit clears the pages");
    let after = call(s, "GET", stations, &fx.leader, None, None).await;
    assert!(ids(&after.body).contains(&"S9".to_string()));
    assert!(!ids(&before.body).contains(&"S9".to_string()));
    let n0 = before.body["numberMatched"].as_u64().unwrap();
    assert_eq!(after.body["numberMatched"].as_u64(), Some(n0 + 1));
    let mean1 = call(s, "GET", county, &fx.leader, None, None).await.body["properties"]["nearest_mean_m"].clone();
    assert!(mean1.as_f64().unwrap() < mean0.as_f64().unwrap() - 1000.0, "{mean1} vs {mean0}");
    // A rename changes no figure but shows in the served feature and its page.
    let r = call(s, "PATCH", "/api/stations/S9", &fx.planner, Some(r#"{"name": "新村服务站"}"#), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = call(s, "GET", stations, &fx.leader, None, None).await;
    let f = page.body["features"].as_array().unwrap().iter().find(|f| f["id"] == "S9").unwrap().clone();
    assert_eq!(f["properties"]["name"], json!("新村服务站"));
}

/// The descriptions of the history entries of household `id`, as its grid worker reads them.
async fn actions(fx: &Fx, id: &str) -> Vec<String> {
    let h = call(&fx.state, "GET", &format!("/api/households/{id}/history"), &fx.w1, None, None).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    h.body["history"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect()
}

/// The audit log's entries on household `id` since entry `from`.
fn audited(fx: &Fx, id: &str, from: usize) -> Vec<String> {
    let log = Store::open(fx.dir.path()).unwrap().audit_log().unwrap();
    log[from..].iter().filter(|e| e.target == id).map(|e| e.action.clone()).collect()
}

fn audit_len(fx: &Fx) -> usize {
    Store::open(fx.dir.path()).unwrap().audit_log().unwrap().len()
}

#[tokio::test]
async fn a_visit_records_its_kind_and_needs_in_one_go() {
    let fx = fixture();
    let s = &fx.state;
    let a0 = audit_len(&fx);
    let v = r#"{"date": "2026-11-29", "kind": "phone", "note": "电话回访",
        "needs": [{"category": "medical", "note": "住院报销"}, {"category": "housing", "note": "屋顶漏雨"}]}"#;
    let r = call(s, "POST", "/api/households/H6/visits", &fx.w1, Some(v), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["kind"], json!("phone"));
    let ids: Vec<i64> = r.body["needs"].as_array().unwrap().iter().map(|n| n.as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{}", r.body);
    let l = call(s, "GET", "/api/households/H6/needs", &fx.w1, None, None).await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.body);
    let needs = l.body["needs"].as_array().unwrap();
    let got: Vec<(i64, &str, &str, &str)> = needs
        .iter()
        .map(|n| {
            assert_eq!((n["visit_id"].clone(), n["version"].clone()), (r.body["id"].clone(), json!(1)));
            (
                n["id"].as_i64().unwrap(),
                n["category"].as_str().unwrap(),
                n["status"].as_str().unwrap(),
                n["opened"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(ids[0], "medical", "open", "2026-11-29"), (ids[1], "housing", "open", "2026-11-29")]);
    assert_eq!(actions(&fx, "H6").await, ["visit", "need", "need"]);
    // One write, one audit entry; then the reads.
    assert_eq!(audited(&fx, "H6", a0), ["households.visit", "households.needs", "households.history"]);
    // Today's bodies still work: a home visit raising nothing.
    let r =
        call(s, "POST", "/api/households/H6/visits", &fx.w1, Some(r#"{"date": "2026-11-30", "note": "送煤"}"#), None)
            .await;
    assert_eq!(
        (r.status, r.body["kind"].clone(), r.body["needs"].clone()),
        (StatusCode::CREATED, json!("home"), json!([]))
    );
    let l = call(s, "GET", "/api/households/H6/visits", &fx.w1, None, None).await;
    let kinds: Vec<&str> = l.body["visits"].as_array().unwrap().iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["phone", "home"]);
    // Refused, naming the field, and nothing written.
    let twenty_one =
        format!(r#"{{"date": "2026-11-30", "needs": [{}]}}"#, vec![r#"{"category": "other"}"#; 21].join(","));
    let long =
        format!(r#"{{"date": "2026-11-30", "needs": [{{"category": "other", "note": "{}"}}]}}"#, "长".repeat(4001));
    for (bad, field) in [
        (r#"{"date": "2026-11-30", "kind": "fax"}"#, r#"kind "fax" is not one of"#),
        (r#"{"date": "2026-11-30", "needs": [{"category": "food"}]}"#, r#"category "food" is not one of"#),
        (r#"{"date": "2026-11-30", "needs": [{"category": "medical", "date": "2026-11-30"}]}"#, "unknown field `date`"),
        (
            r#"{"date": "2026-11-31", "needs": [{"category": "medical"}]}"#,
            r#"date "2026-11-31" is not a calendar date"#,
        ),
        (twenty_one.as_str(), "needs: 21 needs in one visit, more than the 20 allowed"),
        (long.as_str(), "needs[0].note is longer than 4000 characters"),
    ] {
        let r = call(s, "POST", "/api/households/H6/visits", &fx.w1, Some(bad), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body["description"].as_str().unwrap().contains(field), "{field}: {}", r.body);
    }
    let l = call(s, "GET", "/api/households/H6/needs", &fx.w1, None, None).await;
    assert_eq!(l.body["needs"].as_array().unwrap().len(), 2);
    assert_eq!(
        call(s, "GET", "/api/households/H6/visits", &fx.w1, None, None).await.body["visits"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn needs_are_raised_and_resolved_by_the_grid_worker_only() {
    let fx = fixture();
    let s = &fx.state;
    let body = r#"{"category": "employment", "note": "找工作", "date": "2026-11-01"}"#;
    // Leaders and planners: 403; another grid's worker: 404 as for a missing household.
    for t in [&fx.leader, &fx.planner] {
        assert_eq!(
            call(s, "POST", "/api/households/H6/needs", t, Some(body), None).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(call(s, "GET", "/api/households/H6/needs", t, None, None).await.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        call(s, "POST", "/api/households/H6/needs", &fx.w2, Some(body), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(call(s, "GET", "/api/households/H6/needs", &fx.w2, None, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(s, "GET", "/api/households/NOPE/needs", &fx.w1, None, None).await.status, StatusCode::NOT_FOUND);
    let a0 = audit_len(&fx);
    let r = call(s, "POST", "/api/households/H6/needs", &fx.w1, Some(body), None).await;
    assert_eq!((r.status, r.etag.as_deref()), (StatusCode::CREATED, Some("\"1\"")), "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!((r.body["status"].clone(), r.body["opened"].clone()), (json!("open"), json!("2026-11-01")));
    let uri = format!("/api/needs/{id}");
    let step = r#"{"status": "in_progress", "note": "联系人社局", "date": "2026-11-03"}"#;
    // Who may change it: its household's grid worker. Others learn nothing of it: a need of
    // another grid is a 404 worded as for one that does not exist.
    for t in [&fx.leader, &fx.planner] {
        assert_eq!(call(s, "PATCH", &uri, t, Some(step), None).await.status, StatusCode::FORBIDDEN);
        assert_eq!(call(s, "PATCH", "/api/needs/99999", t, Some(step), None).await.status, StatusCode::FORBIDDEN);
    }
    let other = call(s, "PATCH", &uri, &fx.w2, Some(step), None).await;
    let missing = call(s, "PATCH", "/api/needs/99999", &fx.w2, Some(step), None).await;
    assert_eq!((other.status, missing.status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(
        other.body["description"].as_str().unwrap().replace(&id.to_string(), "N"),
        missing.body["description"].as_str().unwrap().replace("99999", "N")
    );
    assert!(!other.body.to_string().contains("H6") && !other.body.to_string().contains("G1"), "{}", other.body);
    assert_eq!(call(s, "PATCH", "/api/needs/abc", &fx.w1, Some(step), None).await.status, StatusCode::NOT_FOUND);
    // The chain open → in_progress → resolved, each under If-Match; a stale version is a 409.
    let r = call(s, "PATCH", &uri, &fx.w1, Some(step), Some("\"1\"")).await;
    assert_eq!((r.status, r.etag.as_deref()), (StatusCode::OK, Some("\"2\"")), "{}", r.body);
    assert_eq!(r.body["status"], json!("in_progress"));
    let done = r#"{"status": "resolved", "note": "已就业", "date": "2026-11-20"}"#;
    let r = call(s, "PATCH", &uri, &fx.w1, Some(done), Some("\"1\"")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // Bad values: 400 naming the field, nothing written.
    for (bad, field) in [
        (r#"{"status": "done"}"#, r#"status "done" is not one of open, in_progress, resolved"#),
        (r#"{"note": "x"}"#, "missing field `status`"),
        (r#"{"status": "resolved", "date": "2026-11-02"}"#, "date 2026-11-02 is before the need's last change"),
        (r#"{"status": "resolved", "date": "20261120"}"#, r#"date "20261120" is not a calendar date"#),
        (r#"{"status": "resolved", "category": "legal"}"#, "unknown field `category`"),
    ] {
        let r = call(s, "PATCH", &uri, &fx.w1, Some(bad), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body["description"].as_str().unwrap().contains(field), "{field}: {}", r.body);
    }
    for (bad, field) in [
        (r#"{"category": "food"}"#, r#"category "food" is not one of"#),
        (r#"{"category": "medical", "date": "2026-02-30"}"#, r#"date "2026-02-30" is not a calendar date"#),
        (r#"{"category": "medical", "status": "open"}"#, "unknown field `status`"),
    ] {
        let r = call(s, "POST", "/api/households/H6/needs", &fx.w1, Some(bad), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body["description"].as_str().unwrap().contains(field), "{field}: {}", r.body);
    }
    let r = call(s, "PATCH", &uri, &fx.w1, Some(done), Some("\"2\"")).await;
    assert_eq!((r.status, r.etag.as_deref()), (StatusCode::OK, Some("\"3\"")), "{}", r.body);
    let l = call(s, "GET", "/api/households/H6/needs", &fx.w1, None, None).await;
    let n = &l.body["needs"][0];
    assert_eq!((n["status"].clone(), n["version"].clone()), (json!("resolved"), json!(3)));
    let chain: Vec<(&str, &str)> = n["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["date"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(chain, [("2026-11-01", "open"), ("2026-11-03", "in_progress"), ("2026-11-20", "resolved")]);
    assert_eq!(actions(&fx, "H6").await, ["need", "need_update", "need_update"]);
    assert_eq!(
        audited(&fx, "H6", a0),
        [
            "households.need",
            "households.need_update",
            "households.need_update",
            "households.needs",
            "households.history"
        ]
    );
    // After a restart, from the store.
    drop(fx.state);
    let s2 = start(fx.dir.path());
    let l = call(&s2, "GET", "/api/households/H6/needs", &fx.w1, None, None).await;
    assert_eq!(l.body["needs"][0]["status"], json!("resolved"));
}

/// The county's row of the effective-coverage report a leader gets on 2026-11-30.
async fn effective_county(fx: &Fx) -> Value {
    let r = call(&fx.state, "GET", "/api/report/effective?level=county&as_of=2026-11-30", &fx.leader, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["as_of"], "2026-11-30");
    assert_eq!(r.body["contact_days"], 90);
    r.body["rows"][0].clone()
}

#[tokio::test]
async fn effective_coverage_follows_visits_at_once_under_the_disclosure_policy() {
    let fx = fixture();
    let s = &fx.state;
    // Nobody contacted yet: 0 contacted and all 12 overdue and never contacted are groups of
    // 0 or at least 5, so they are shown.
    let c = effective_county(&fx).await;
    assert_eq!(c["code"], "990101");
    assert_eq!(
        (&c["households"], &c["contacted_households"], &c["overdue_households"], &c["never_contacted_households"]),
        (&json!(12), &json!(0), &json!(12), &json!(12))
    );
    // Two hardship families: withheld, and the row says something is.
    assert_eq!((&c["hardship_households"], &c["withheld"]), (&json!(null), &json!(true)));
    // Three households visited: "3 contacted" is a group under 5, so it and its complement are
    // withheld (null), and the row says so.
    for h in ["H10", "H11", "H12"] {
        let v = r#"{"date": "2026-11-20", "kind": "phone"}"#;
        let r = call(s, "POST", &format!("/api/households/{h}/visits"), &fx.w1, Some(v), None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let c = effective_county(&fx).await;
    assert_eq!(
        (&c["contacted_households"], &c["contacted_share"], &c["overdue_households"]),
        (&json!(null), &json!(null), &json!(null))
    );
    assert_eq!(c["withheld"], true);
    assert_eq!(c["households"], 12);
    // Five: shown again, at once (no restart).
    for h in ["H13", "H14"] {
        let v = r#"{"date": "2026-11-21"}"#;
        assert_eq!(
            call(s, "POST", &format!("/api/households/{h}/visits"), &fx.w1, Some(v), None).await.status,
            StatusCode::CREATED
        );
    }
    let c = effective_county(&fx).await;
    assert_eq!((&c["contacted_households"], &c["overdue_households"]), (&json!(5), &json!(7)));
    assert_eq!(c["contacted_share"].as_f64(), Some(0.4167));
    // A past day is answered as of the end of its month (today is later than November: the
    // test machine's clock): the 19th, before the visits, is November's end, after them. So
    // two days one after the other give the same answer, and cannot be differenced.
    for d in ["2026-11-19", "2026-11-20", "2026-11-01"] {
        let r = call(s, "GET", &format!("/api/report/effective?level=county&as_of={d}"), &fx.leader, None, None).await;
        assert_eq!((&r.body["as_of"], &r.body["as_of_asked"]), (&json!("2026-11-30"), &json!(d)));
        assert_eq!(r.body["rows"][0]["contacted_households"], 5, "{d}");
    }
    // October's end, before any visit: nobody contacted then.
    let r = call(s, "GET", "/api/report/effective?level=county&as_of=2026-10-02", &fx.leader, None, None).await;
    assert_eq!(r.body["as_of"], "2026-10-31");
    assert_eq!(r.body["rows"][0]["contacted_households"], 0);
    // A day to come is today.
    let r = call(s, "GET", "/api/report/effective?level=county&as_of=2199-01-01", &fx.leader, None, None).await;
    assert_eq!(r.body["as_of"], json!(format_day(today())));
    // Grid workers use their own views; bad days and encodings are 400s; Excel for leaders.
    let r = call(s, "GET", "/api/report/effective", &fx.w1, None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for q in ["as_of=2026-02-30", "as_of=1800-01-01", "f=csv", "limit=0", "level=hamlet"] {
        let r = call(s, "GET", &format!("/api/report/effective?{q}"), &fx.planner, None, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
    }
}

#[tokio::test]
async fn the_effective_report_comes_as_excel_too() {
    let fx = fixture();
    let bytes = leader_xlsx(&fx, "/api/report/effective?level=township&as_of=2026-11-30&f=xlsx").await;
    // A zip (xlsx) holding the sheet.
    assert_eq!(&bytes[..2], b"PK");
}

/// The leader's answer to `uri`, which must be an Excel workbook: its bytes.
async fn leader_xlsx(fx: &Fx, uri: &str) -> Vec<u8> {
    let req = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", fx.leader))
        .body(Body::empty())
        .unwrap();
    let r = router(fx.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    r.into_body().collect().await.unwrap().to_bytes().to_vec()
}

/// The properties of `fid` in `collection` as `token` sees them (through the items page, the
/// cached path).
async fn props(fx: &Fx, collection: &str, fid: &str, token: &str) -> Value {
    let r = call(&fx.state, "GET", &format!("/api/collections/{collection}/items?limit=100"), token, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let f = r.body["features"].as_array().unwrap().iter().find(|f| f["id"] == fid).cloned();
    f.unwrap_or_else(|| panic!("no {fid} in {collection}"))["properties"].clone()
}

/// The tags of feature `id` in a tile of `layer` (the zoom-0 tile; grids, from zoom 9: the
/// tile of 100.3°E 40.3°N).
async fn tile_tags(fx: &Fx, layer: &str, token: &str, id: u64) -> std::collections::HashMap<String, String> {
    let zxy = if layer == "grids" { "9/398/193" } else { "0/0/0" };
    let req = Request::builder()
        .uri(format!("/tiles/{layer}/{zxy}.mvt"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let r = router(fx.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let layers = crate::serve_router::mvt_decode::decode(&bytes);
    layers[0].features.iter().find(|f| f.id == Some(id)).expect("the feature in the tile").tags.clone()
}

#[tokio::test]
async fn effective_figures_are_properties_of_units_and_grids_and_follow_visits_and_needs() {
    let fx = fixture();
    let s = &fx.state;
    // Today, before any record: the county's 12 households are all overdue and never
    // contacted (groups of 12 and 0: shown); no open need (0: shown); its two hardship
    // families are too few, so hardship overdue is withheld: null in items, absent in tiles.
    let c = props(&fx, "admin-county", "990101", &fx.leader).await;
    assert_eq!(
        (&c["contacted_households"], &c["contacted_share"], &c["overdue_households"], &c["never_contacted_households"]),
        (&json!(0), &json!(0), &json!(12), &json!(12))
    );
    assert_eq!((&c["open_needs"], &c["open_needs_median_days"]), (&json!(0), &json!(null)));
    assert_eq!((&c["hardship_overdue_households"], &c["withheld"]), (&json!(null), &json!(true)));
    let t = tile_tags(&fx, "admin-county", &fx.leader, 990101).await;
    assert_eq!((t["contacted_households"].as_str(), t["overdue_households"].as_str()), ("0", "12"));
    assert!(!t.contains_key("hardship_overdue_households"));
    // Grid G1 lies in 西镇, whose households are withheld (a grid of a withheld unit is
    // withheld): its effective figures are null too, and absent from its tile.
    let g = props(&fx, "grids", "G1", &fx.leader).await;
    assert_eq!((&g["contacted_households"], &g["overdue_households"]), (&json!(null), &json!(null)));
    assert!(g.as_object().unwrap().contains_key("never_contacted_households"));
    assert!(!tile_tags(&fx, "grids", &fx.leader, 1).await.contains_key("overdue_households"));

    // Five of G1's households visited five days ago, through the API: the next page and the
    // next tile show it (both were cached).
    let day = format_day(today() - 5);
    for h in ["H10", "H11", "H12", "H13", "H14"] {
        let v = format!(r#"{{"date": "{day}", "kind": "home"}}"#);
        let r = call(s, "POST", &format!("/api/households/{h}/visits"), &fx.w1, Some(&v), None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let c = props(&fx, "admin-county", "990101", &fx.leader).await;
    assert_eq!(
        (&c["contacted_households"], &c["overdue_households"], &c["never_contacted_households"]),
        (&json!(5), &json!(7), &json!(7))
    );
    assert_eq!(c["contacted_share"].as_f64(), Some(0.4167));
    let t = tile_tags(&fx, "admin-county", &fx.leader, 990101).await;
    assert_eq!(t["contacted_households"], "5");
    // G1 (5 contacted, 3 overdue) and its township stay withheld.
    let g = props(&fx, "grids", "G1", &fx.leader).await;
    assert_eq!((&g["contacted_households"], &g["withheld"]), (&json!(null), &json!(true)));
    assert!(!tile_tags(&fx, "grids", &fx.leader, 1).await.contains_key("contacted_households"));
    let w = props(&fx, "admin-township", "990101001", &fx.leader).await;
    assert_eq!(w["contacted_households"], json!(null));
    // The single feature says the same.
    let f = call(s, "GET", "/api/collections/admin-county/items/990101", &fx.leader, None, None).await;
    assert_eq!(f.body["properties"]["contacted_households"], 5);

    // One need raised: "1 household with an open need" is withheld (null), at once.
    let n = call(s, "POST", "/api/households/H10/needs", &fx.w1, Some(r#"{"category": "medical"}"#), None).await;
    assert_eq!(n.status, StatusCode::CREATED, "{}", n.body);
    let c = props(&fx, "admin-county", "990101", &fx.leader).await;
    assert_eq!((&c["open_needs"], &c["open_needs_median_days"]), (&json!(null), &json!(null)));
    assert!(!tile_tags(&fx, "admin-county", &fx.leader, 990101).await.contains_key("open_needs"));
    // Resolved the same day: no open need left, shown as 0 again.
    let id = n.body["id"].as_i64().unwrap();
    let r = call(s, "PATCH", &format!("/api/needs/{id}"), &fx.w1, Some(r#"{"status": "resolved"}"#), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let c = props(&fx, "admin-county", "990101", &fx.leader).await;
    assert_eq!(c["open_needs"], 0);

    // A grid worker's decisions are made on the households they do not know: G1's worker
    // knows G1's eight, so the county's contacted (5, all theirs) minus them leaves 0
    // contacted and 4 overdue others: withheld for them, shown to the leader.
    let c = props(&fx, "admin-county", "990101", &fx.w1).await;
    assert_eq!(c["contacted_households"], json!(null));
    assert_eq!(props(&fx, "admin-county", "990101", &fx.leader).await["contacted_households"], 5);

    // After a restart the records are read from the store: the same figures.
    drop(fx.state);
    let s2 = start(fx.dir.path());
    let r = call(&s2, "GET", "/api/collections/admin-county/items/990101", &fx.leader, None, None).await;
    assert_eq!(
        (&r.body["properties"]["contacted_households"], &r.body["properties"]["open_needs"]),
        (&json!(5), &json!(0))
    );
}

#[tokio::test]
async fn the_coverage_report_comes_as_excel_with_the_same_rows_and_decisions() {
    let fx = fixture();
    let json = call(&fx.state, "GET", "/api/report?level=village&limit=1000", &fx.leader, None, None).await;
    assert_eq!(json.status, StatusCode::OK);
    let rows = json.body["rows"].as_array().unwrap().clone();
    let bytes = leader_xlsx(&fx, "/api/report?level=village&f=xlsx").await;
    let path = fx.dir.path().join("report.xlsx");
    std::fs::write(&path, &bytes).unwrap();
    let cells = crate::report_xlsx::read_xlsx(&path);
    let columns = gridcover::output::COVERAGE_COLUMNS;
    assert_eq!(cells.len(), rows.len() + 1, "a header and every village, in the JSON's order");
    assert_eq!(cells[0][0].0, "代码");
    let mut withheld = 0;
    for (row, want) in cells[1..].iter().zip(&rows) {
        assert_eq!(row.len(), columns.len());
        // Codes are text cells.
        assert_eq!(row[0], (want["code"].as_str().unwrap().to_string(), "s".to_string()));
        for ((v, t), c) in row.iter().zip(columns) {
            let w = &want[*c];
            match w {
                // Withheld (or absent) in the JSON: an empty cell.
                Value::Null => {
                    assert!(v.is_empty(), "{c}: {v}");
                    withheld += 1;
                }
                Value::Number(n) => {
                    assert_eq!(t, "n", "{c}");
                    assert!((v.parse::<f64>().unwrap() - n.as_f64().unwrap()).abs() < 1e-9, "{c}: {v} vs {n}");
                }
                Value::Bool(b) => assert_eq!((v.to_lowercase(), t.as_str()), (b.to_string(), "b"), "{c}"),
                Value::String(s) => assert_eq!(v, s, "{c}"),
                other => panic!("{c}: {other}"),
            }
        }
    }
    assert!(withheld > 0, "the hand-made county's small villages are withheld, in Excel as in JSON");
    // Grid workers get 403, other encodings 400, as for the JSON.
    assert_eq!(call(&fx.state, "GET", "/api/report?f=xlsx", &fx.w1, None, None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        call(&fx.state, "GET", "/api/report?f=csv", &fx.leader, None, None).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn a_start_from_the_store_names_its_steps_in_order() {
    let fx = fixture();
    let steps: Vec<&str> = fx.state.start_steps().iter().map(|s| s.0).collect();
    assert_eq!(
        steps,
        [
            "the live engine (the analysis; the assignment made and kept)",
            "the world (groups, indexes, statuses)",
            "the service records (read beside the two above)",
            "the planner's engine",
            "the views and household cells",
            "the two above, side by side",
            "today's effective figures",
        ]
    );
    let t: Vec<std::time::Duration> = fx.state.start_steps().iter().map(|s| s.1).collect();
    // The planner's engine and the views are made side by side: together they take as long
    // as the longer at least.
    assert!(t[5] >= t[3].max(t[4]), "{t:?}");
    assert_eq!(t[4] + t[6], fx.state.prebuilt_in());
}

/// A restart as `gridcover serve` makes it (households without names, from the store or its
/// snapshot; the groups' cells kept beside the store) serves what the first start served: the
/// leader's household cells and units, a grid worker's own households.
/// A page without its `timeStamp` (the second it was answered in): what two starts must give
/// alike.
fn untimed(mut body: Value) -> Value {
    if let Some(m) = body.as_object_mut() {
        m.remove("timeStamp");
    }
    body
}

#[tokio::test]
async fn a_restart_from_the_kept_households_and_cells_serves_the_same() {
    let fx = fixture();
    let dir = fx.dir.path();
    let cache = dir.join(".gridcover-cache");
    // The first start found the cells and the assignment and kept them; it read the households
    // with their names.
    for kept in ["cells8", "located", "nearest"] {
        assert!(cache.join(format!("gridcover.sqlite.{kept}")).is_file(), "{kept}");
    }
    assert!(!cache.join("gridcover.sqlite.households").exists());
    let pages = [
        ("/api/collections/households/items?limit=1000", &fx.leader),
        ("/api/collections/admin-village/items?limit=1000", &fx.leader),
        ("/api/collections/admin-county/items?limit=1000", &fx.leader),
        ("/api/collections/households/items?limit=1000", &fx.w1),
    ];
    let mut before = Vec::new();
    for (uri, who) in pages {
        let r = call(&fx.state, "GET", uri, who, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(r.body["features"].as_array().is_some_and(|f| !f.is_empty()), "{uri}");
        before.push(untimed(r.body));
    }
    let restart = || {
        let store = Store::open(dir).unwrap();
        let ds = store.load_dataset_with(dir, gridcover::ingest::ReadOptions::ANALYSIS).unwrap();
        state_with_store(store, ds, Limits::default(), None).unwrap()
    };
    // The second start writes the households' snapshot; the third reads it and the cells.
    let live_step = |state: &AppState| state.start_steps()[0].0;
    assert_eq!(live_step(&fx.state), edits::KEPT_NONE, "the first start makes the assignment");
    let second = restart();
    assert!(cache.join("gridcover.sqlite.households").is_file());
    let third = restart();
    assert_eq!((live_step(&second), live_step(&third)), (edits::KEPT_WHOLE, edits::KEPT_WHOLE));
    for state in [&second, &third] {
        for ((uri, who), want) in pages.iter().zip(&before) {
            let r = call(state, "GET", uri, who, None, None).await;
            assert_eq!(&untimed(r.body), want, "{uri}");
        }
    }
    // A station added: the next start finds the nearest stations again (the units and grids
    // are kept) and serves what the server that made the edit served.
    let body =
        r#"{"id": "S9", "name": "新村站", "level": "village", "code": "990101001001", "lon": 100.3, "lat": 40.3}"#;
    let r = call(&third, "POST", "/api/stations", &fx.planner, Some(body), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut edited = Vec::new();
    for (uri, who) in pages {
        edited.push(untimed(call(&third, "GET", uri, who, None, None).await.body));
    }
    assert_ne!(edited[2], before[2], "the county's figures show the new station");
    let modified =
        |kept: &str| std::fs::metadata(cache.join(format!("gridcover.sqlite.{kept}"))).unwrap().modified().unwrap();
    let nearest_file = || std::fs::read(cache.join("gridcover.sqlite.nearest")).unwrap();
    let (located, nearest) = (modified("located"), nearest_file());
    let fourth = restart();
    assert_eq!(live_step(&fourth), edits::KEPT_IN_PART);
    assert_eq!(modified("located"), located, "the units and grids are not written again");
    assert_ne!(nearest_file(), nearest, "the nearest stations are kept anew");
    let fifth = restart();
    assert_eq!(live_step(&fifth), edits::KEPT_WHOLE);
    for state in [&fourth, &fifth] {
        for ((uri, who), want) in pages.iter().zip(&edited) {
            let r = call(state, "GET", uri, who, None, None).await;
            assert_eq!(&untimed(r.body), want, "{uri}");
        }
    }
}
