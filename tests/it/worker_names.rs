//! Households' names and addresses (personal data) on a grid worker's own pages. A server with
//! a store keeps none in memory and reads those of each page's rows from the store; a server
//! without one shows its data set's. On `tests/fixtures/serve` (grid G1: H1, H6, H10–H15; grid
//! G2: H2–H5) given names and addresses: both servers answer every household page alike, for
//! every role; the store's answer is the stored name and address, also after an import changed
//! them while the server ran.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use gridcover::analysis::analyze;
use gridcover::ingest::read_data_folder;
use gridcover::serve::edits::state_with_store;
use gridcover::serve::{router, AppState, Limits, Role, World};
use gridcover::store::Store;

/// Names and addresses of some of the fixture's households (the rest have neither).
const NAMES: &[(&str, &str, &str)] = &[
    ("H1", "张三", "新区 \"一\"号"),
    ("H2", "王二", "二号院"),
    ("H6", "赵六六", ""),
    ("H10", "", "城关区, 1 号"),
    ("H12", "李四", "南街 12 号"),
];

/// Writes the fixture's households with `names` into `dir`'s `households.csv`.
fn write_names(dir: &Path, names: &[(&str, &str, &str)]) {
    let src = std::fs::read_to_string(crate::common::fixture("serve").join("households.csv")).unwrap();
    let quote = |s: &str| if s.is_empty() { String::new() } else { format!("\"{}\"", s.replace('"', "\"\"")) };
    let mut out = String::new();
    for (i, line) in src.lines().enumerate() {
        let (name, address) = if i == 0 {
            ("name".to_string(), "address".to_string())
        } else {
            let id = line.split(',').next().unwrap();
            names.iter().find(|n| n.0 == id).map_or((String::new(), String::new()), |n| (quote(n.1), quote(n.2)))
        };
        out.push_str(&format!("{line},{name},{address}\n"));
    }
    std::fs::write(dir.join("households.csv"), out).unwrap();
}

struct Fx {
    /// With the store (names read per page).
    stored: AppState,
    /// Without one (names from the data set), the same users.
    plain: AppState,
    store: Store,
    leader: String,
    w1: String,
    w2: String,
    dir: tempfile::TempDir,
}

fn fixture() -> Fx {
    let dir = crate::common::copy_fixture("serve");
    write_names(dir.path(), NAMES);
    let store = Store::open(dir.path()).unwrap();
    store.import(dir.path()).unwrap();
    let leader = store.add_user("李领导", Role::Leader, &[]).unwrap();
    let w1 = store.add_user("王五", Role::GridWorker, &["G1".into()]).unwrap();
    let w2 = store.add_user("赵六", Role::GridWorker, &["G2".into()]).unwrap();
    let limits = Limits { max_page: 5, ..Limits::default() };
    let (s, ds) = Store::open_dataset(dir.path()).unwrap();
    assert_eq!(ds.households.name.get(0), Some("张三"), "the store gives the names back when asked");
    let stored = state_with_store(s, ds, limits.clone(), None).unwrap();
    assert_eq!(stored.world().ds().households.name.get(0), None, "a server with a store keeps no names in memory");
    let ds = read_data_folder(dir.path()).unwrap();
    let an = analyze(&ds);
    let plain = AppState::new(World::new(ds, an), Arc::new(store.clone()), limits, None);
    Fx { stored, plain, store, leader, w1, w2, dir }
}

async fn get(state: &AppState, uri: &str, token: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .uri(uri)
        .header(header::HOST, "example.test")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let r = router(state.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let mut v: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    if let Some(o) = v.as_object_mut() {
        o.remove("timeStamp");
    }
    (status, v)
}

/// `(id, name, address)` of each feature of a page.
fn names_of(page: &Value) -> Vec<(String, Value, Value)> {
    page["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features: {page}"))
        .iter()
        .map(|f| {
            (f["id"].as_str().unwrap().to_string(), f["properties"]["name"].clone(), f["properties"]["address"].clone())
        })
        .collect()
}

fn row(id: &str, name: Option<&str>, address: Option<&str>) -> (String, Value, Value) {
    (id.to_string(), json!(name), json!(address))
}

const PAGES: &[&str] = &[
    "/api/collections/households/items",
    "/api/collections/households/items?limit=2&offset=3",
    "/api/collections/households/items?offset=5",
    "/api/collections/households/items?bbox=100.2,40.2,100.4,40.6",
    "/api/collections/households/items/H1",
    "/api/collections/households/items/H2",
    "/api/collections/households/items/H12",
    "/api/collections/households/items/H13",
];

#[tokio::test]
async fn every_household_page_is_the_same_with_names_read_from_the_store() {
    let fx = fixture();
    for token in [&fx.w1, &fx.w2, &fx.leader] {
        for uri in PAGES {
            let (a, b) = (get(&fx.stored, uri, token).await, get(&fx.plain, uri, token).await);
            assert_eq!(a, b, "{uri}");
        }
    }
    // The names are there, not null on both sides: G1's page, and one from the fifth row.
    let (st, p) = get(&fx.stored, "/api/collections/households/items", &fx.w1).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        names_of(&p),
        [
            row("H1", Some("张三"), Some("新区 \"一\"号")),
            row("H6", Some("赵六六"), None),
            row("H10", None, Some("城关区, 1 号")),
            row("H11", None, None),
            row("H12", Some("李四"), Some("南街 12 号")),
            row("H13", None, None),
            row("H14", None, None),
            row("H15", None, None),
        ]
    );
    let (_, p) = get(&fx.stored, "/api/collections/households/items?offset=4", &fx.w1).await;
    assert_eq!(names_of(&p)[0], row("H12", Some("李四"), Some("南街 12 号")));
    let (_, p) = get(&fx.stored, "/api/collections/households/items", &fx.w2).await;
    assert_eq!(names_of(&p)[0], row("H2", Some("王二"), Some("二号院")));
    // A leader sees counts in cells, and another grid's worker not the household.
    let (_, p) = get(&fx.stored, "/api/collections/households/items", &fx.leader).await;
    assert!(!p.to_string().contains("张三") && !p.to_string().contains("\"name\""), "{p}");
    let (st, _) = get(&fx.stored, "/api/collections/households/items/H1", &fx.w2).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // The pages read were audited as before: H1 and the page's other ids.
    let log = fx.store.audit_log().unwrap();
    assert!(
        log.iter().any(|e| e.action == "households.items" && e.target == "H1,H6,H10,H11,H12,H13,H14,H15"),
        "{log:?}"
    );
    assert!(log.iter().any(|e| e.action == "households.item" && e.target == "H1"));
}

#[tokio::test]
async fn the_household_and_the_to_visit_list_show_the_stored_name() {
    let fx = fixture();
    let (st, h) = get(&fx.stored, "/api/households/H1", &fx.w1).await;
    assert_eq!(st, StatusCode::OK, "{h}");
    assert_eq!((&h["properties"]["name"], &h["properties"]["address"]), (&json!("张三"), &json!("新区 \"一\"号")));
    let (st, l) = get(&fx.stored, "/api/me/to-visit?as_of=2026-11-30", &fx.w1).await;
    assert_eq!(st, StatusCode::OK, "{l}");
    let by_id = |l: &Value, id: &str| l["rows"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    let h1 = by_id(&l, "H1");
    assert_eq!((&h1["name"], &h1["address"]), (&json!("张三"), &json!("新区 \"一\"号")));
    let h10 = by_id(&l, "H10");
    assert_eq!((&h10["name"], &h10["address"]), (&Value::Null, &json!("城关区, 1 号")));

    // An import changes H1's name and address and H12's name while the server runs: every
    // page shows the store's, at once.
    let mut changed = NAMES.to_vec();
    changed[0] = ("H1", "张三丰", "新区二号");
    changed[4] = ("H12", "", "南街 12 号");
    write_names(fx.dir.path(), &changed);
    fx.store.import(fx.dir.path()).unwrap();
    let (_, p) = get(&fx.stored, "/api/collections/households/items", &fx.w1).await;
    assert_eq!(names_of(&p)[0], row("H1", Some("张三丰"), Some("新区二号")));
    assert_eq!(names_of(&p)[4], row("H12", None, Some("南街 12 号")));
    let (_, f) = get(&fx.stored, "/api/collections/households/items/H1", &fx.w1).await;
    assert_eq!((&f["properties"]["name"], &f["properties"]["address"]), (&json!("张三丰"), &json!("新区二号")));
    let (_, h) = get(&fx.stored, "/api/households/H1", &fx.w1).await;
    assert_eq!((&h["properties"]["name"], &h["properties"]["address"]), (&json!("张三丰"), &json!("新区二号")));
    let (_, l) = get(&fx.stored, "/api/me/to-visit?as_of=2026-11-30", &fx.w1).await;
    let h1 = by_id(&l, "H1");
    assert_eq!((&h1["name"], &h1["address"]), (&json!("张三丰"), &json!("新区二号")));
}

#[test]
fn the_store_reads_names_by_id() {
    let fx = fixture();
    let got = fx.store.names_and_addresses(&["H2", "H11", "nobody", "H1", "H2"]).unwrap();
    let want: gridcover::store::NamesAndAddresses = [
        ("H1".to_string(), (Some("张三".to_string()), Some("新区 \"一\"号".to_string()))),
        ("H2".to_string(), (Some("王二".to_string()), Some("二号院".to_string()))),
        ("H11".to_string(), (None, None)),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    assert!(fx.store.names_and_addresses(&[]).unwrap().is_empty());
}
