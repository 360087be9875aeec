//! The server's router without a socket (tower `oneshot`), on the hand-made county of
//! `tests/fixtures/serve`: every endpoint, every role, and the refusals.
//!
//! The fixture is `tests/fixtures/small` (see `tests/analyze_cli.rs` for its answers worked out
//! by hand) with a second grid and six more households:
//! - grid G1 (west half, 100–100.5°E) holds H1, H6 and H10–H15 (six households at one point,
//!   100.3°E 40.3°N, out of reach of every station: the largest gap, 6 veterans);
//! - grid G2 (east half) holds H2, H3 and H4;
//! - stations S1 (county, 100.5/40.5), S2 (township, 100.25/40.5), S3 and S4 (village,
//!   100.75/40.25 and 100.75/40.9).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

use gridcover::analysis::analyze;
use gridcover::ingest::read_data_folder;
use gridcover::serve::{router, AppState, Limits, Role, World};
use gridcover::store::Store;

struct Fx {
    state: AppState,
    store: Store,
    leader: String,
    planner: String,
    worker1: String,
    worker2: String,
    /// Store ids of the two grid workers.
    w1: i64,
    w2: i64,
    _dir: tempfile::TempDir,
}

/// The fixture's data, analysed, with a real store (users, hashed tokens, audit log) in a
/// temporary folder.
fn fixture() -> Fx {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/serve");
    let ds = read_data_folder(&data).unwrap();
    let an = analyze(&ds);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let leader = store.add_user("李领导", Role::Leader, &[]).unwrap();
    let planner = store.add_user("规划员", Role::Planner, &[]).unwrap();
    let worker1 = store.add_user("王五", Role::GridWorker, &["G1".to_string()]).unwrap();
    let worker2 = store.add_user("赵六", Role::GridWorker, &["G2".to_string()]).unwrap();
    let w1 = store.authenticate(&worker1).unwrap().unwrap().id;
    let w2 = store.authenticate(&worker2).unwrap().unwrap().id;
    let limits = Limits { max_page: 5, ..Limits::default() };
    let state = AppState::new(World::new(ds, an), Arc::new(store.clone()), limits, None);
    Fx { state, store, leader, planner, worker1, worker2, w1, w2, _dir: dir }
}

impl Fx {
    /// The household-level entries of the audit log: (user id, action, target).
    fn audit_log(&self) -> Vec<(i64, String, String)> {
        self.store
            .audit_log()
            .unwrap()
            .into_iter()
            .filter(|e| e.action.starts_with("households."))
            .map(|e| (e.user_id.unwrap_or(0), e.action, e.target))
            .collect()
    }
}

struct Resp {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn get(fx: &Fx, uri: &str, token: Option<&str>) -> Resp {
    let mut b = Request::builder().uri(uri).header(header::HOST, "example.test:8080");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let r = router(fx.state.clone()).oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    Resp { status, content_type, headers, body }
}

fn ids(v: &Value) -> Vec<String> {
    v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| match &f["id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

const DATA_ENDPOINTS: &[&str] = &[
    "/api",
    "/api/conformance",
    "/api/collections",
    "/api/collections/stations",
    "/api/collections/stations/items",
    "/api/collections/stations/items/S1",
    "/api/collections/households/items",
    "/api/collections/households/items/H1",
    "/api/report",
    "/api/me",
    "/tiles/stations.json",
    "/tiles/stations/0/0/0.mvt",
    "/tiles/households/0/0/0.mvt",
];

#[tokio::test]
async fn health_needs_no_token() {
    let fx = fixture();
    let r = get(&fx, "/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "ok");
}

#[tokio::test]
async fn no_or_bad_token_is_401_everywhere_and_a_token_in_the_query_is_refused() {
    let fx = fixture();
    for uri in DATA_ENDPOINTS {
        let r = get(&fx, uri, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(r.json()["code"], "Unauthorized", "{uri}");
        assert!(r.headers.get(header::WWW_AUTHENTICATE).is_some(), "{uri}");
        let r = get(&fx, uri, Some("not-a-token")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        let sep = if uri.contains('?') { '&' } else { '?' };
        let r = get(&fx, &format!("{uri}{sep}token={}", fx.leader), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.json()["description"].as_str().unwrap().contains("Authorization"), "{uri}");
    }
    // The same endpoints answer a valid token (200, or 403/404 where the role may not).
    for uri in DATA_ENDPOINTS {
        let r = get(&fx, uri, Some(&fx.planner)).await;
        assert!(r.status == StatusCode::OK || r.status == StatusCode::FORBIDDEN, "{uri}: {}", r.status);
    }
}

#[tokio::test]
async fn landing_conformance_and_collections() {
    let fx = fixture();
    let r = get(&fx, "/api", Some(&fx.leader)).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    let rels: BTreeSet<&str> = v["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
    assert!(rels.contains("data") && rels.contains("conformance") && rels.contains("self"));
    assert!(v["links"][0]["href"].as_str().unwrap().starts_with("http://example.test:8080/api"));
    let c = get(&fx, "/api/conformance?f=json", Some(&fx.leader)).await.json();
    assert!(c["conformsTo"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().ends_with("/conf/core")));
    let cs = get(&fx, "/api/collections", Some(&fx.leader)).await.json();
    let names: Vec<&str> = cs["collections"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "admin-province",
            "admin-city",
            "admin-county",
            "admin-township",
            "admin-village",
            "stations",
            "households",
            "grids",
            "gaps"
        ]
    );
    // The extent holds the county box and H7 (101.5°E).
    let bbox = &cs["collections"][0]["extent"]["spatial"]["bbox"][0];
    assert_eq!(bbox[0].as_f64(), Some(100.0));
    assert_eq!(bbox[2].as_f64(), Some(101.5));
    let one = get(&fx, "/api/collections/admin-village", Some(&fx.leader)).await;
    assert_eq!(one.json()["id"], "admin-village");
    let none = get(&fx, "/api/collections/nope", Some(&fx.leader)).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(none.json()["description"].as_str().unwrap().contains("admin-village"));
}

#[tokio::test]
async fn admin_items_carry_coverage_and_drill_down_by_code() {
    let fx = fixture();
    let r = get(&fx, "/api/collections/admin-village/items?code=990101002", Some(&fx.leader)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/geo+json");
    let v = r.json();
    assert_eq!(ids(&v), ["990101002001", "990101002002"]);
    assert_eq!(v["numberMatched"], 2);
    assert_eq!(v["numberReturned"], 2);
    assert!(v["timeStamp"].as_str().unwrap().ends_with('Z'));
    // The south-east village holds fewer than five households: its household figures are
    // withheld (null), its name, codes, stations and rules are not.
    let p = &v["features"][0]["properties"];
    assert_eq!(p["veterans"], Value::Null);
    assert_eq!(p["covered_veterans"], Value::Null);
    assert_eq!(p["coverage_share"], Value::Null);
    assert_eq!(p["hardship_households"], Value::Null);
    assert_eq!(p["withheld"], true);
    assert_eq!(p["parent_code"], "990101002");
    assert!(p["rules_ok"].as_bool().is_some());
    assert!(p["stations_village"].as_i64().is_some());
    assert_eq!(v["features"][0]["geometry"]["type"], "MultiPolygon");
    // One unit by its code; a code of another level is not in this collection.
    let f = get(&fx, "/api/collections/admin-county/items/990101", Some(&fx.leader)).await.json();
    assert_eq!(f["id"], "990101");
    assert_eq!(f["properties"]["name"], "测试县");
    // The county's 12 placed households (15 veterans) are shown: a group of at least five.
    assert_eq!(f["properties"]["households"], 12);
    assert_eq!(f["properties"]["veterans"], 15);
    // Without a store there are no service records: the effective figures are absent (not
    // null: nothing is withheld, there is nothing).
    for k in gridcover::serve::effective::LAYER_FIGURES {
        assert!(f["properties"].get(k).is_none(), "{k}");
    }
    assert_eq!(
        get(&fx, "/api/collections/admin-county/items/99", Some(&fx.leader)).await.status,
        StatusCode::NOT_FOUND
    );
    // Every column of the coverage table is a property.
    for c in gridcover::output::COVERAGE_COLUMNS {
        assert!(f["properties"].get(*c).is_some(), "{c}");
    }
}

#[tokio::test]
async fn paging_caps_the_limit_and_links_next_and_prev() {
    let fx = fixture();
    // Four stations; the maximum page is 5 here: a limit of 1000 is capped, not refused.
    let v = get(&fx, "/api/collections/stations/items?limit=1000", Some(&fx.leader)).await.json();
    assert_eq!(v["numberReturned"], 4);
    let v = get(&fx, "/api/collections/stations/items?limit=3", Some(&fx.leader)).await.json();
    assert_eq!(ids(&v), ["S1", "S2", "S3"]);
    assert_eq!(v["numberMatched"], 4);
    let next = v["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").unwrap()["href"].as_str().unwrap();
    assert_eq!(next, "http://example.test:8080/api/collections/stations/items?limit=3&offset=3");
    let v2 = get(&fx, next.trim_start_matches("http://example.test:8080"), Some(&fx.leader)).await.json();
    assert_eq!(ids(&v2), ["S4"]);
    let links = v2["links"].as_array().unwrap();
    assert!(links.iter().all(|l| l["rel"] != "next"));
    assert!(links.iter().any(|l| l["rel"] == "prev" && l["href"].as_str().unwrap().ends_with("limit=3&offset=0")));
    // The grid worker's eight households, five per page at most.
    let v = get(&fx, "/api/collections/households/items?limit=1000", Some(&fx.worker1)).await.json();
    assert_eq!(v["numberMatched"], 8);
    assert_eq!(v["numberReturned"], 5);
    let next = v["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").unwrap()["href"].as_str().unwrap();
    assert!(next.ends_with("limit=5&offset=5"), "{next}");
}

#[tokio::test]
async fn malformed_parameters_are_400_with_a_message() {
    let fx = fixture();
    for (q, needle) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("offset=x", "offset"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=1,2,3,abc", "bbox"),
        ("bbox=100,41,101,40", "south"),
        ("code=99x", "code"),
        ("code=1234567890123", "code"),
        ("f=html", "json"),
        ("colour=red", "colour"),
        ("limit=1&limit=2", "twice"),
    ] {
        let r = get(&fx, &format!("/api/collections/stations/items?{q}"), Some(&fx.leader)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        let v = r.json();
        assert_eq!(v["code"], "InvalidParameterValue", "{q}");
        assert!(v["description"].as_str().unwrap().contains(needle), "{q}: {v}");
    }
    let r = get(&fx, "/api/report?level=planet", Some(&fx.leader)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn stations_grids_and_gaps() {
    let fx = fixture();
    let v = get(&fx, "/api/collections/stations/items?bbox=100.6,40.2,100.8,41", Some(&fx.leader)).await.json();
    assert_eq!(ids(&v), ["S3", "S4"]);
    let s4 = get(&fx, "/api/collections/stations/items/S4", Some(&fx.leader)).await.json();
    assert_eq!(s4["properties"]["mobile"], true);
    assert_eq!(s4["properties"]["radius_m"], 30000.0);
    assert_eq!(s4["geometry"]["coordinates"], serde_json::json!([100.75, 40.9]));
    assert_eq!(get(&fx, "/api/collections/stations/items/S9", Some(&fx.leader)).await.status, StatusCode::NOT_FOUND);
    let v = get(&fx, "/api/collections/grids/items?code=990101002", Some(&fx.leader)).await.json();
    assert_eq!(ids(&v), ["G2"]);
    assert_eq!(v["features"][0]["properties"]["worker"], "赵六");
    // Grid G2 (three households) and G1 (of a withheld township) are shown without figures.
    assert_eq!(v["features"][0]["properties"]["households"], Value::Null);
    assert_eq!(v["features"][0]["properties"]["withheld"], true);
    // The six uncovered households at one point lie in a village whose covered split is
    // withheld: no gap area is drawn around them (a gap area is a village with at least five
    // uncovered households, shown as such).
    let g = get(&fx, "/api/collections/gaps/items", Some(&fx.leader)).await.json();
    assert_eq!(g["numberMatched"], 0);
    assert_eq!(get(&fx, "/api/collections/gaps/items/1", Some(&fx.leader)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn grid_worker_sees_only_own_households_with_details_and_is_audited() {
    let fx = fixture();
    let v = get(&fx, "/api/collections/households/items", Some(&fx.worker1)).await.json();
    let got: BTreeSet<String> = ids(&v).into_iter().collect();
    let mut all: BTreeSet<String> = got.clone();
    let v2 = get(&fx, "/api/collections/households/items?offset=5", Some(&fx.worker1)).await.json();
    all.extend(ids(&v2));
    let want: BTreeSet<String> =
        ["H1", "H6", "H10", "H11", "H12", "H13", "H14", "H15"].iter().map(|s| s.to_string()).collect();
    assert_eq!(all, want);
    let h1 = v["features"].as_array().unwrap().iter().find(|f| f["id"] == "H1").unwrap();
    assert_eq!(h1["properties"]["grid_id"], "G1");
    assert_eq!(h1["properties"]["village_code"], "990101001001");
    assert_eq!(h1["properties"]["county_code"], "990101");
    assert_eq!(h1["properties"]["martyr_family"], true);
    assert_eq!(h1["properties"]["nearest_station"], "S2");
    assert_eq!(h1["geometry"]["coordinates"], serde_json::json!([100.25, 40.5]));
    // Another grid's household: by id, by bbox, by filter, by tile — nothing of it.
    let r = get(&fx, "/api/collections/households/items/H2", Some(&fx.worker1)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.text().contains("100.75"));
    let v = get(&fx, "/api/collections/households/items?bbox=100.6,40.0,101,41", Some(&fx.worker1)).await.json();
    assert_eq!(v["numberMatched"], 0);
    let v = get(&fx, "/api/collections/households/items?code=990101002", Some(&fx.worker1)).await.json();
    assert_eq!(v["numberMatched"], 0);
    // The tile holding all households: only own ones.
    let t = get(&fx, "/tiles/households/0/0/0.mvt", Some(&fx.worker1)).await;
    assert_eq!(t.status, StatusCode::OK);
    let layers = mvt_decode::decode(&t.body);
    let tile_ids: BTreeSet<String> = layers[0].features.iter().map(|f| f.tags["id"].clone()).collect();
    assert_eq!(tile_ids, want);
    // Worker 2 gets its own and not worker 1's.
    let v = get(&fx, "/api/collections/households/items", Some(&fx.worker2)).await.json();
    let w2: BTreeSet<String> = ids(&v).into_iter().collect();
    assert!(w2.contains("H2") && w2.contains("H3") && w2.contains("H4"));
    assert!(w2.is_disjoint(&want));
    assert_eq!(get(&fx, "/api/collections/households/items/H1", Some(&fx.worker2)).await.status, StatusCode::NOT_FOUND);
    let h2 = get(&fx, "/api/collections/households/items/H2", Some(&fx.worker2)).await.json();
    assert_eq!(h2["properties"]["grid_id"], "G2");
    // Every household-level response was audited, with the ids shown.
    let log = fx.audit_log();
    assert!(log.iter().any(|(u, a, t)| *u == fx.w1 && a == "households.items" && t.contains("H1")));
    assert!(log.iter().any(|(u, a, t)| *u == fx.w1 && a == "households.tile" && t.contains("H10")));
    assert!(log.iter().any(|(u, a, t)| *u == fx.w2 && a == "households.item" && t == "H2"));
    assert!(!log.iter().any(|(u, _, t)| *u == fx.w1 && t.contains("H2")), "worker 1 never saw H2: {log:?}");
    // A grid worker gets no coverage report.
    assert_eq!(get(&fx, "/api/report", Some(&fx.worker1)).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn leaders_see_households_only_as_cells_of_five_or_more() {
    let fx = fixture();
    for tok in [fx.leader.as_str(), fx.planner.as_str()] {
        let r = get(&fx, "/api/collections/households/items", Some(tok)).await;
        assert_eq!(r.status, StatusCode::OK);
        let text = r.text();
        assert!(!text.contains("\"Point\""), "no points");
        for h in ["\"H1\"", "\"H10\"", "100.3,40.3", "100.25,40.5"] {
            assert!(!text.contains(h), "{h} leaked: {text}");
        }
        let v = r.json();
        let feats = v["features"].as_array().unwrap();
        assert!(!feats.is_empty());
        for f in feats {
            assert!(f["properties"]["households"].as_u64().unwrap() >= 5, "{f}");
            assert_eq!(f["geometry"]["type"], "MultiPolygon");
            assert!(f["properties"].get("id").is_none());
        }
        // The six households at one point make one cell of six at resolution 8, drawn as that
        // cell's hexagon; the other seven merge under a coarse cell, drawn as one hexagon.
        assert!(feats.iter().any(|f| f["properties"]["households"] == 6 && f["properties"]["resolution"] == 8));
        for f in feats {
            let ring = f["geometry"]["coordinates"][0][0].as_array().unwrap();
            assert_eq!(f["geometry"]["coordinates"].as_array().unwrap().len(), 1, "one shape");
            assert_eq!(ring.len(), 7, "a hexagon: {f}");
            assert!(f["properties"]["resolution"].as_u64().unwrap() <= 8);
        }
        // One household by id: refused.
        let r = get(&fx, "/api/collections/households/items/H1", Some(tok)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // A cell by its id.
        let id = feats[0]["id"].as_str().unwrap();
        let c = get(&fx, &format!("/api/collections/households/items/{id}"), Some(tok)).await.json();
        assert_eq!(c["properties"]["households"], feats[0]["properties"]["households"]);
        // Tiles: cells with counts, never an id or a point, at every zoom.
        for (z, x, y) in [(0, 0, 0), (6, 49, 24), (12, 3189, 1546), (16, 51027, 24739)] {
            let t = get(&fx, &format!("/tiles/households/{z}/{x}/{y}.mvt"), Some(tok)).await;
            assert_eq!(t.status, StatusCode::OK);
            for l in mvt_decode::decode(&t.body) {
                for f in &l.features {
                    assert_eq!(f.geom_type, 3, "polygons only");
                    assert!(!f.tags.contains_key("id"));
                    assert!(f.tags["households"].parse::<u64>().unwrap() >= 5);
                }
            }
        }
    }
    // No audit entries: aggregates are not household-level data.
    assert!(fx.audit_log().is_empty());
}

#[tokio::test]
async fn report_and_me() {
    let fx = fixture();
    let v = get(&fx, "/api/report?level=village&limit=2", Some(&fx.leader)).await.json();
    assert_eq!(v["numberMatched"], 3);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    // Every village's coverage is withheld here: none is placed by it; they come by code.
    assert_eq!(rows[0]["coverage_share"], Value::Null);
    assert_eq!(rows[0]["code"], "990101001001");
    assert_eq!(rows[1]["code"], "990101002001");
    let v = get(&fx, "/api/report?level=township&code=990101002", Some(&fx.planner)).await.json();
    assert_eq!(v["numberMatched"], 1);
    assert_eq!(v["rows"][0]["code"], "990101002");
    let me = get(&fx, "/api/me", Some(&fx.worker1)).await.json();
    assert_eq!(me["name"], "王五");
    assert_eq!(me["role"], "grid_worker");
    assert_eq!(me["grids"], serde_json::json!(["G1"]));
    let me = get(&fx, "/api/me", Some(&fx.leader)).await.json();
    assert_eq!(me["role"], "leader");
}

#[tokio::test]
async fn a_host_header_cannot_write_into_the_links() {
    // TileJSON's tile URLs and the OGC links take the same rule: a Host that is not a plain
    // host[:port] falls back to localhost.
    let fx = fixture();
    for (uri, pointer) in [("/tiles/admin-county.json", "/tiles/0"), ("/api/collections", "/links/0/href")] {
        let b = Request::builder()
            .uri(uri)
            .header(header::HOST, "evil.test/x?y=\"<script>")
            .header(header::AUTHORIZATION, format!("Bearer {}", fx.leader));
        let r = router(fx.state.clone()).oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{uri}");
        let v: Value = serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let link = v.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string();
        assert!(link.starts_with("http://localhost/"), "{uri}: {link}");
    }
}

#[tokio::test]
async fn tiles_and_tilejson() {
    let fx = fixture();
    let tj = get(&fx, "/tiles/admin-county.json", Some(&fx.leader)).await.json();
    assert_eq!(tj["tilejson"], "3.0.0");
    assert_eq!(tj["tiles"][0], "http://example.test:8080/tiles/admin-county/{z}/{x}/{y}.mvt");
    assert_eq!(tj["vector_layers"][0]["id"], "admin-county");
    let v = get(&fx, "/tiles/admin-village.json", Some(&fx.leader)).await.json();
    assert_eq!(v["vector_layers"][0]["minzoom"], 8);
    // The county in the single tile of zoom 0.
    let t = get(&fx, "/tiles/admin-county/0/0/0.mvt", Some(&fx.leader)).await;
    assert_eq!(t.status, StatusCode::OK);
    assert_eq!(t.content_type, "application/vnd.mapbox-vector-tile");
    let l = mvt_decode::decode(&t.body);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].name, "admin-county");
    assert_eq!(l[0].extent, 4096);
    assert_eq!(l[0].features.len(), 1);
    let f = &l[0].features[0];
    assert_eq!(f.id, Some(990101));
    assert_eq!(f.tags["code"], "990101");
    // H1 2 + H2 1 + H3 3 + H4 1 + H5 1 + H6 1 + H10–H15 6 (H7 lies outside, H8 is rejected).
    assert_eq!(f.tags["veterans"], "15");
    assert!(!f.tags.contains_key("contacted_households"));
    assert_eq!(f.geom_type, 3);
    // Stations at zoom 8 (tile 199/96 holds them): all four; at zoom 3 only the county's.
    let l = mvt_decode::decode(&get(&fx, "/tiles/stations/8/199/96.mvt", Some(&fx.leader)).await.body);
    let mut names: Vec<String> = l[0].features.iter().map(|f| f.tags["id"].clone()).collect();
    names.sort();
    assert_eq!(names, ["S1", "S2", "S3", "S4"]);
    // S1 at 100.5°E 40.5°N: x = ((100.5+180)/360·256 − 199)·4096 = 1911.47 → 1911.
    let s1 = l[0].features.iter().find(|f| f.tags["id"] == "S1").unwrap();
    assert_eq!(s1.points[0].0, 1911);
    let l = mvt_decode::decode(&get(&fx, "/tiles/stations/3/6/3.mvt", Some(&fx.leader)).await.body);
    let names: Vec<String> = l[0].features.iter().map(|f| f.tags["id"].clone()).collect();
    assert_eq!(names, ["S1"]);
    // A tile far from the data is empty; below the layer's zoom too.
    assert!(get(&fx, "/tiles/stations/8/0/0.mvt", Some(&fx.leader)).await.body.is_empty());
    assert!(get(&fx, "/tiles/admin-village/3/6/3.mvt", Some(&fx.leader)).await.body.is_empty());
    // Out of range, unknown layer, bad names.
    for (uri, st) in [
        ("/tiles/stations/17/0/0.mvt", StatusCode::BAD_REQUEST),
        ("/tiles/stations/2/4/0.mvt", StatusCode::BAD_REQUEST),
        ("/tiles/stations/2/1/x.mvt", StatusCode::BAD_REQUEST),
        ("/tiles/stations/2/1/1.png", StatusCode::BAD_REQUEST),
        ("/tiles/stations/0/0/0.mvt?x=1", StatusCode::BAD_REQUEST),
        ("/tiles/nope/0/0/0.mvt", StatusCode::NOT_FOUND),
        ("/tiles/nope.json", StatusCode::NOT_FOUND),
    ] {
        let r = get(&fx, uri, Some(&fx.leader)).await;
        assert_eq!(r.status, st, "{uri}");
        assert!(r.json()["description"].is_string(), "{uri}");
    }
    // A second request is served from the cache with the same bytes.
    let before = fx.state.tile_cache_bytes();
    assert!(before > 0);
    let again = get(&fx, "/tiles/admin-county/0/0/0.mvt", Some(&fx.leader)).await;
    assert_eq!(again.body, t.body);
    assert_eq!(fx.state.tile_cache_bytes(), before);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    /// Whatever the query string, the server answers (never a 5xx, never a panic).
    #[test]
    fn any_query_string_gets_an_answer(q in "[ -~]{0,40}", path in 0usize..6) {
        let fx = fixture_cached();
        let base = ["/api/collections/stations/items", "/api/collections/households/items",
            "/api/report", "/tiles/stations/3/6/3.mvt", "/api/collections/admin-village/items", "/api"][path];
        let q: String = q.chars().map(|c| if c == ' ' || c == '#' { '+' } else { c }).collect();
        let uri = format!("{base}?{q}");
        if let Ok(u) = uri.parse::<axum::http::Uri>() {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let status = rt.block_on(async {
                let req = Request::builder().uri(u).header(header::AUTHORIZATION, format!("Bearer {}", fx.leader))
                    .body(Body::empty()).unwrap();
                router(fx.state.clone()).oneshot(req).await.unwrap().status()
            });
            prop_assert!(status.as_u16() < 500, "{uri}: {status}");
        }
    }
}

fn fixture_cached() -> &'static Fx {
    static FX: std::sync::OnceLock<Fx> = std::sync::OnceLock::new();
    FX.get_or_init(fixture)
}

/// A minimal Mapbox Vector Tile decoder (protobuf by hand), to check tiles independently of
/// the encoder.
pub(crate) mod mvt_decode {
    use super::HashMap;

    pub struct Feature {
        pub id: Option<u64>,
        pub tags: HashMap<String, String>,
        pub geom_type: u64,
        /// Absolute tile coordinates of every MoveTo/LineTo point.
        pub points: Vec<(i64, i64)>,
    }
    pub struct Layer {
        pub name: String,
        pub extent: u64,
        pub features: Vec<Feature>,
    }

    fn varint(b: &[u8], i: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut s = 0;
        loop {
            let x = b[*i];
            *i += 1;
            v |= u64::from(x & 0x7f) << s;
            if x & 0x80 == 0 {
                return v;
            }
            s += 7;
        }
    }

    /// (field, wire type, value or bytes)
    fn fields(b: &[u8]) -> Vec<(u64, u64, u64, &[u8])> {
        let mut i = 0;
        let mut out = Vec::new();
        while i < b.len() {
            let k = varint(b, &mut i);
            let (f, w) = (k >> 3, k & 7);
            match w {
                0 => {
                    let v = varint(b, &mut i);
                    out.push((f, w, v, &b[0..0]));
                }
                1 => {
                    let v = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
                    i += 8;
                    out.push((f, w, v, &b[0..0]));
                }
                2 => {
                    let n = varint(b, &mut i) as usize;
                    out.push((f, w, 0, &b[i..i + n]));
                    i += n;
                }
                5 => {
                    let v = u64::from(u32::from_le_bytes(b[i..i + 4].try_into().unwrap()));
                    i += 4;
                    out.push((f, w, v, &b[0..0]));
                }
                _ => panic!("wire type {w}"),
            }
        }
        out
    }

    fn packed(b: &[u8]) -> Vec<u64> {
        let mut i = 0;
        let mut v = Vec::new();
        while i < b.len() {
            v.push(varint(b, &mut i));
        }
        v
    }

    fn value(b: &[u8]) -> String {
        let (f, _, v, s) = fields(b)[0];
        match f {
            1 => String::from_utf8(s.to_vec()).unwrap(),
            2 => f32::from_bits(v as u32).to_string(),
            3 => f64::from_bits(v).to_string(),
            4 | 5 => v.to_string(),
            6 => (((v >> 1) as i64) ^ -((v & 1) as i64)).to_string(),
            7 => (v != 0).to_string(),
            _ => panic!("value field {f}"),
        }
    }

    pub fn decode(b: &[u8]) -> Vec<Layer> {
        let mut layers = Vec::new();
        for (f, _, _, lb) in fields(b) {
            assert_eq!(f, 3, "a tile holds layers only");
            let mut name = String::new();
            let mut extent = 4096;
            let mut keys = Vec::new();
            let mut values = Vec::new();
            let mut raw = Vec::new();
            for (lf, _, v, s) in fields(lb) {
                match lf {
                    1 => name = String::from_utf8(s.to_vec()).unwrap(),
                    2 => raw.push(s),
                    3 => keys.push(String::from_utf8(s.to_vec()).unwrap()),
                    4 => values.push(value(s)),
                    5 => extent = v,
                    15 => assert_eq!(v, 2, "MVT version 2"),
                    _ => {}
                }
            }
            let mut features = Vec::new();
            for fb in raw {
                let mut feat = Feature { id: None, tags: HashMap::new(), geom_type: 0, points: Vec::new() };
                for (ff, _, v, s) in fields(fb) {
                    match ff {
                        1 => feat.id = Some(v),
                        2 => {
                            let t = packed(s);
                            for kv in t.chunks(2) {
                                feat.tags.insert(keys[kv[0] as usize].clone(), values[kv[1] as usize].clone());
                            }
                        }
                        3 => feat.geom_type = v,
                        4 => {
                            let g = packed(s);
                            let (mut x, mut y, mut i) = (0i64, 0i64, 0);
                            while i < g.len() {
                                let (id, count) = (g[i] & 7, g[i] >> 3);
                                i += 1;
                                if id == 7 {
                                    continue;
                                }
                                for _ in 0..count {
                                    let dx = ((g[i] >> 1) as i64) ^ -((g[i] & 1) as i64);
                                    let dy = ((g[i + 1] >> 1) as i64) ^ -((g[i + 1] & 1) as i64);
                                    i += 2;
                                    x += dx;
                                    y += dy;
                                    feat.points.push((x, y));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                features.push(feat);
            }
            layers.push(Layer { name, extent, features });
        }
        layers
    }
}

async fn post(fx: &Fx, uri: &str, token: Option<&str>, body: &str) -> Resp {
    let mut b = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::HOST, "example.test:8080")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let r = router(fx.state.clone()).oneshot(b.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    Resp { status, content_type, headers, body }
}

#[tokio::test]
async fn planners_plan_others_may_not() {
    let fx = fixture();
    // Two candidate sites: A on the six uncovered households at 100.3°E 40.3°N, B where nobody
    // lives. One new site of radius 1 km must be A, newly covering their 6 veterans.
    let req = r#"{"problem": "mclp", "level": "village", "new": 1, "radius_m": 1000,
        "candidates": {"kind": "sites", "sites": [{"id": "A", "lon": 100.3, "lat": 40.3}, {"id": "B", "lon": 100.95, "lat": 40.95}]}}"#;
    let r = post(&fx, "/api/plan", Some(&fx.planner), req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["sites"].as_array().unwrap().len(), 1);
    assert_eq!(v["sites"][0]["id"], "A");
    assert_eq!(v["sites"][0]["newly_covered_veterans"], 6);
    assert_eq!(v["covered_after"].as_u64().unwrap() - v["covered_before"].as_u64().unwrap(), 6);
    let units = v["units"].as_array().unwrap();
    let county = units.iter().find(|u| u["code"] == "990101").unwrap();
    assert_eq!(county["covered_after"].as_u64().unwrap() - county["covered_before"].as_u64().unwrap(), 6);
    assert!(!r.text().contains("\"H10\""), "no household ids in a plan");
    // Other roles, no token, bad bodies.
    assert_eq!(post(&fx, "/api/plan", Some(&fx.leader), req).await.status, StatusCode::FORBIDDEN);
    assert_eq!(post(&fx, "/api/plan", Some(&fx.worker1), req).await.status, StatusCode::FORBIDDEN);
    assert_eq!(post(&fx, "/api/plan", None, req).await.status, StatusCode::UNAUTHORIZED);
    for bad in ["{", r#"{"new": "five"}"#, r#"{"colour": "red"}"#, r#"{"problem": "mclp", "new": 1, "radius_m": -5}"#] {
        let r = post(&fx, "/api/plan", Some(&fx.planner), bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert!(r.json()["description"].as_str().unwrap().starts_with("plan request"), "{bad}");
    }
    // A body over the limit is refused before it is read.
    let big = format!(r#"{{"exclude": ["{}"]}}"#, "x".repeat(2 << 20));
    assert_eq!(post(&fx, "/api/plan", Some(&fx.planner), &big).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn errors_made_below_the_handlers_are_json_too() {
    let fx = fixture();
    // The router's 405.
    let r = router(fx.state.clone())
        .oneshot(Request::builder().method("PUT").uri("/api/report").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    let v: Value = serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["code"], "MethodNotAllowed");
    // The body limit's 413 (2 MiB against 1 MiB).
    let big = vec![b'x'; 2 << 20];
    let r = router(fx.state.clone())
        .oneshot(
            Request::builder()
                .method("POST")
                .uri("/api/scenario")
                .header(header::AUTHORIZATION, format!("Bearer {}", fx.planner))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(big))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    let v: Value = serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(v["code"].as_str().unwrap().contains("TooLarge"), "{v}");
}
