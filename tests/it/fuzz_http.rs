//! Fuzzing (proptest) of what a client sends the server: query parameters of every endpoint
//! and bodies of every write, through the whole router on a real store. The server must
//! answer every request (never panic) with a 2xx or a 4xx, never a 5xx. Executions per target:
//! `CASES` (README, "Store and live edits").

use axum::body::Body;
use axum::http::{header, Request};
use proptest::prelude::*;
use proptest::test_runner::Config;
use tower::ServiceExt;

use gridcover::model::NeedCategory;
use gridcover::serve::edits::state_with_store;
use gridcover::serve::{router, AppState, Limits, Role};
use gridcover::store::{NewNeed, Store};

/// Executions of each target.
const CASES: u32 = 1000;

struct Fx {
    state: AppState,
    tokens: Vec<String>,
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> Fx {
    let dir = crate::common::copy_fixture("serve");
    let store = Store::open(dir.path()).unwrap();
    let tokens = vec![
        store.add_user("l", Role::Leader, &[]).unwrap(),
        store.add_user("p", Role::Planner, &[]).unwrap(),
        store.add_user("w", Role::GridWorker, &["G1".into()]).unwrap(),
    ];
    // A need of H1 (id 1), for the bodies of its changes.
    store.import(dir.path()).unwrap();
    let w = store.authenticate(&tokens[2]).unwrap().unwrap();
    let need = NewNeed { category: NeedCategory::Medical, note: String::new(), date: None };
    assert_eq!(store.add_need(&w, "H1", &need).unwrap().id, 1);
    drop(store);
    let (store, ds) = Store::open_dataset(dir.path()).unwrap();
    let state = state_with_store(store, ds, Limits::default(), None).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    Fx { state, tokens, _dir: dir, rt }
}

fn fx() -> &'static Fx {
    static FX: std::sync::OnceLock<Fx> = std::sync::OnceLock::new();
    FX.get_or_init(fixture)
}

fn send(method: &str, uri: &str, token: usize, body: Vec<u8>, if_match: Option<String>) -> u16 {
    let f = fx();
    let mut b =
        Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {}", f.tokens[token]));
    if let Some(m) = if_match {
        b = b.header(header::IF_MATCH, m);
    }
    let Ok(req) = b.body(Body::from(body)) else { return 400 }; // not even a valid HTTP request
    let status = f.rt.block_on(router(f.state.clone()).oneshot(req)).unwrap().status().as_u16();
    assert!(status < 500, "{method} {uri}: {status}");
    status
}

const PATHS: &[&str] = &[
    "/api/collections/households/items",
    "/api/collections/stations/items",
    "/api/collections/admin-county/items",
    "/api/collections/admin-village/items",
    "/api/collections/grids/items",
    "/api/collections/gaps/items",
    "/api/report",
    "/api/households/H1/visits",
    "/api/households/H1/needs",
    "/api/households/H1/history",
    "/api/stations/S1/history",
    "/api/me/to-visit",
    "/tiles/households/5/25/12.mvt",
    "/tiles/admin-county/3/6/3.mvt",
];

const KEYS: &[&str] = &["limit", "offset", "bbox", "code", "datetime", "f", "level", "as_of", "token", "x"];

fn query() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[0-9]{0,25}",
        "-?[0-9]{1,4}(\\.[0-9]{1,6})?(,-?[0-9]{1,4}(\\.[0-9]{1,6})?){0,5}",
        "\\PC{0,20}",
        Just("NaN,inf,-inf,1e400".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("county".to_string()),
        Just("%FF%00%E4".to_string()),
    ];
    prop::collection::vec((prop::sample::select(KEYS), value), 0..4).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| {
                let enc: String = v
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b",.-%".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                format!("{k}={enc}")
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("2026-11-29")),
        Just(serde_json::Value::from("village")),
        Just(serde_json::Value::from("990101001001")),
        (-200.0..200.0f64).prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "date",
                    "note",
                    "id",
                    "name",
                    "level",
                    "code",
                    "lon",
                    "lat",
                    "needs",
                    "phone",
                    "mobile",
                    "radius_m",
                    "demonstration"
                ])
                .prop_map(str::to_string),
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => value.prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..100),
    ]
}

proptest! {
    #![proptest_config(Config { cases: CASES, failure_persistence: None, ..Config::default() })]

    #[test]
    fn query_parameters(path in prop::sample::select(PATHS), q in query(), token in 0usize..3) {
        send("GET", &format!("{path}?{q}"), token, Vec::new(), None);
    }

    #[test]
    fn request_bodies(
        target in prop::sample::select(vec![
            ("PATCH", "/api/households/H1"), ("POST", "/api/households/H6/visits"), ("POST", "/api/stations"),
            ("PATCH", "/api/stations/S3"), ("DELETE", "/api/stations/S4"), ("PATCH", "/api/households/H2"),
            ("POST", "/api/households/H6/needs"), ("PATCH", "/api/needs/1"),
        ]),
        body in json_body(),
        token in 0usize..3,
        if_match in prop::option::of(prop_oneof![Just("*".to_string()), "\"[0-9]{1,3}\"", "\\PC{0,8}"]),
    ) {
        send(target.0, target.1, token, body, if_match.filter(|m| m.bytes().all(|b| (32..127).contains(&b))));
    }

    #[test]
    fn paths(seg in "[A-Za-z0-9%./_-]{0,30}", token in 0usize..3, method in prop::sample::select(vec!["GET", "PATCH", "POST", "DELETE"])) {
        for p in [
            format!("/api/households/{seg}"), format!("/api/stations/{seg}"), format!("/api/households/{seg}/visits"),
            format!("/api/households/{seg}/needs"), format!("/api/needs/{seg}"),
        ] {
            send(method, &p, token, b"{}".to_vec(), None);
        }
    }
}
