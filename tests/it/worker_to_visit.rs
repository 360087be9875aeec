//! `GET /api/me/to-visit` through the router (tower `oneshot`) on a real store in a temporary
//! copy of `tests/fixtures/serve` (grid G1: H1 martyr family, H6 hardship, H10–H15; grid G2:
//! H2, H3 hardship, H4, and H5 on the grids' shared edge, G2's by the half-open rule), with contacts of known dates recorded through the API: the exact
//! order and fields at two days, the audit log, roles, other grids, paging and capping, bad
//! input, and a visit moving a household down the list.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use gridcover::serve::{router, AppState, Limits};
use gridcover::store::Store;

use crate::store_edits::{fixture_with, Fx};

async fn call(state: &AppState, method: &str, uri: &str, token: &str, body: Option<&str>) -> (StatusCode, Value) {
    let b = Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    let req = match body {
        Some(t) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(t.to_string())).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let r = router(state.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The fixture with its contacts: H1 home 2026-08-01; H6 phone 2026-10-20; H10 home
/// 2026-11-25; H11 home 2026-06-01 (and a need raised 2026-11-01, resolved 2026-11-10); H12
/// station 2026-08-15; H14 home 2026-10-01 with a medical need; H13, H15 never (H15 has a
/// contact only on 2026-12-01, after the first day asked). In G2, H2 phone 2026-11-29.
async fn fixture(limits: Limits) -> Fx {
    let fx = fixture_with(limits);
    let visits = [
        ("H1", "2026-08-01", "home", "[]"),
        ("H6", "2026-10-20", "phone", "[]"),
        ("H10", "2026-11-25", "home", "[]"),
        ("H11", "2026-06-01", "home", "[]"),
        ("H12", "2026-08-15", "station", "[]"),
        ("H14", "2026-10-01", "home", r#"[{"category": "medical", "note": "住院报销"}]"#),
        ("H15", "2026-12-01", "other", "[]"),
    ];
    for (h, date, kind, needs) in visits {
        let body = format!(r#"{{"date": "{date}", "kind": "{kind}", "needs": {needs}}}"#);
        let (st, b) = call(&fx.state, "POST", &format!("/api/households/{h}/visits"), &fx.w1, Some(&body)).await;
        assert_eq!(st, StatusCode::CREATED, "{h}: {b}");
    }
    let (st, b) = call(
        &fx.state,
        "POST",
        "/api/households/H2/visits",
        &fx.w2,
        Some(r#"{"date": "2026-11-29", "kind": "phone"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, n) = call(
        &fx.state,
        "POST",
        "/api/households/H11/needs",
        &fx.w1,
        Some(r#"{"category": "legal", "note": "纠纷", "date": "2026-11-01"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{n}");
    let patch = r#"{"status": "resolved", "date": "2026-11-10"}"#;
    let (st, b) = call(&fx.state, "PATCH", &format!("/api/needs/{}", n["id"]), &fx.w1, Some(patch)).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    fx
}

/// `(id, tier, last_contact, kind, days, overdue, open_needs)` of each row.
fn rows(body: &Value) -> Vec<(String, String, Value, Value, Value, bool, u64)> {
    body["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {body}"))
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["tier"].as_str().unwrap().to_string(),
                r["last_contact"].clone(),
                r["last_contact_kind"].clone(),
                r["days_since_contact"].clone(),
                r["overdue"].as_bool().unwrap(),
                r["open_needs"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(
    id: &str,
    tier: &str,
    last: Option<(&str, &str, i64)>,
    overdue: bool,
    open: u64,
) -> (String, String, Value, Value, Value, bool, u64) {
    let (d, k, n) = match last {
        Some((d, k, n)) => (json!(d), json!(k), json!(n)),
        None => (Value::Null, Value::Null, Value::Null),
    };
    (id.into(), tier.into(), d, k, n, overdue, open)
}

#[tokio::test]
async fn the_list_is_in_priority_order_with_its_fields() {
    let fx = fixture(Limits::default()).await;
    let s = &fx.state;
    let (st, b) = call(s, "GET", "/api/me/to-visit?as_of=2026-11-30", &fx.w1, None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!((&b["as_of"], &b["contact_days"], &b["hardship_days"]), (&json!("2026-11-30"), &json!(90), &json!(30)));
    assert_eq!((&b["numberMatched"], &b["numberReturned"]), (&json!(8), &json!(8)));
    assert_eq!(
        rows(&b),
        [
            row("H6", "hardship_overdue", Some(("2026-10-20", "phone", 41)), true, 0),
            row("H1", "martyr_overdue", Some(("2026-08-01", "home", 121)), true, 0),
            row("H11", "overdue", Some(("2026-06-01", "home", 182)), true, 0),
            row("H12", "overdue", Some(("2026-08-15", "station", 107)), true, 0),
            row("H13", "never_contacted", None, true, 0),
            row("H15", "never_contacted", None, true, 0),
            row("H14", "recent", Some(("2026-10-01", "home", 60)), false, 1),
            row("H10", "recent", Some(("2026-11-25", "home", 5)), false, 0),
        ]
    );
    let first = &b["rows"][0];
    assert_eq!((&first["rank"], &first["hardship"], &first["martyr_family"]), (&json!(1), &json!(true), &json!(false)));
    assert_eq!((&b["rows"][1]["martyr_family"], &b["rows"][1]["veterans"]), (&json!(true), &json!(2)));

    // Another day: as known on 2026-10-25 (later contacts and H11's need do not count yet).
    let (st, b) = call(s, "GET", "/api/me/to-visit?as_of=2026-10-25", &fx.w1, None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        rows(&b),
        [
            row("H11", "overdue", Some(("2026-06-01", "home", 146)), true, 0),
            row("H10", "never_contacted", None, true, 0),
            row("H13", "never_contacted", None, true, 0),
            row("H15", "never_contacted", None, true, 0),
            row("H1", "recent", Some(("2026-08-01", "home", 85)), false, 0),
            row("H12", "recent", Some(("2026-08-15", "station", 71)), false, 0),
            row("H14", "recent", Some(("2026-10-01", "home", 24)), false, 1),
            row("H6", "recent", Some(("2026-10-20", "phone", 5)), false, 0),
        ]
    );
    // On 2026-11-05 H11's legal need is open; resolved on the 10th.
    let (_, b) = call(s, "GET", "/api/me/to-visit?as_of=2026-11-05", &fx.w1, None).await;
    let h11 = rows(&b).into_iter().find(|r| r.0 == "H11").unwrap();
    assert_eq!(h11.6, 1);

    // A home visit to H6 today drops it to the end of the list, at once.
    let (st, _) = call(s, "POST", "/api/households/H6/visits", &fx.w1, Some(r#"{"date": "2026-11-30"}"#)).await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, b) = call(s, "GET", "/api/me/to-visit?as_of=2026-11-30", &fx.w1, None).await;
    let order: Vec<String> = rows(&b).into_iter().map(|r| r.0).collect();
    assert_eq!(order, ["H1", "H11", "H12", "H13", "H15", "H14", "H10", "H6"]);
    assert_eq!(rows(&b)[7], row("H6", "recent", Some(("2026-11-30", "home", 0)), false, 0));
}

#[tokio::test]
async fn only_grid_workers_and_only_their_own_grid() {
    let fx = fixture(Limits::default()).await;
    let s = &fx.state;
    for t in [&fx.leader, &fx.planner] {
        let (st, b) = call(s, "GET", "/api/me/to-visit", t, None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    }
    let (st, _) = call(s, "GET", "/api/me/to-visit", "not-a-token", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // G2's worker: H2–H5 and never a household of G1; H3 (hardship, never contacted) first.
    let (st, b) = call(s, "GET", "/api/me/to-visit?as_of=2026-11-30", &fx.w2, None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        rows(&b),
        [
            row("H3", "hardship_overdue", None, true, 0),
            row("H4", "never_contacted", None, true, 0),
            row("H5", "never_contacted", None, true, 0),
            row("H2", "recent", Some(("2026-11-29", "phone", 1)), false, 0),
        ]
    );
    // And G1's worker never sees G2's households (today, the default day, too).
    let (st, b) = call(s, "GET", "/api/me/to-visit", &fx.w1, None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let ids: Vec<String> = rows(&b).into_iter().map(|r| r.0).collect();
    assert_eq!(ids.len(), 8);
    assert!(ids.iter().all(|id| !["H2", "H3", "H4", "H5", "H7", "H8"].contains(&id.as_str())), "{ids:?}");
    // Every household listed is in the audit log, under the worker, before the answer.
    let log = Store::open(fx.dir.path()).unwrap().audit_log().unwrap();
    let listed: Vec<&str> =
        log.iter().filter(|e| e.action == "households.to_visit").map(|e| e.target.as_str()).collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0], "H3,H4,H5,H2");
    let mut last: Vec<&str> = listed[1].split(',').collect();
    last.sort_unstable();
    assert_eq!(last, ["H1", "H10", "H11", "H12", "H13", "H14", "H15", "H6"]);
}

#[tokio::test]
async fn limit_is_capped_and_pages_follow_the_order() {
    let fx = fixture(Limits { max_page: 3, ..Limits::default() }).await;
    let s = &fx.state;
    let (st, b) = call(s, "GET", "/api/me/to-visit?as_of=2026-11-30&limit=1000", &fx.w1, None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!((&b["limit"], &b["numberReturned"], &b["numberMatched"]), (&json!(3), &json!(3), &json!(8)));
    let ids = |b: &Value| rows(b).into_iter().map(|r| r.0).collect::<Vec<_>>();
    assert_eq!(ids(&b), ["H6", "H1", "H11"]);
    let (_, b) = call(s, "GET", "/api/me/to-visit?as_of=2026-11-30&limit=3&offset=3", &fx.w1, None).await;
    assert_eq!(ids(&b), ["H12", "H13", "H15"]);
    assert_eq!(b["rows"][0]["rank"], 4);
    let (_, b) = call(s, "GET", "/api/me/to-visit?as_of=2026-11-30&offset=7", &fx.w1, None).await;
    assert_eq!(ids(&b), ["H10"]);
    let (st, b) = call(s, "GET", "/api/me/to-visit?offset=100", &fx.w1, None).await;
    assert_eq!((st, &b["numberReturned"]), (StatusCode::OK, &json!(0)));
    // Bad input: 400 naming the parameter.
    for (q, word) in [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=x", "limit"),
        ("offset=-3", "offset"),
        ("as_of=2026-02-30", "as_of"),
        ("as_of=1800-01-01", "as_of"),
        ("as_of=today", "as_of"),
        ("grid=G2", "grid"),
        ("limit=1&limit=2", "limit"),
    ] {
        let (st, b) = call(s, "GET", &format!("/api/me/to-visit?{q}"), &fx.w1, None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {b}");
        assert!(b["description"].as_str().unwrap().contains(word), "{q}: {b}");
    }
}
