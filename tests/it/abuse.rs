//! Bounded work per request, as an attacker would try it.
//!
//! Through the router (tower `oneshot`, on `tests/fixtures/serve` with a real store): every
//! bound of a plan and a what-if answered 400/413 naming the bound, the old `exclude`
//! underflow (a candidate id repeated) answered with a correct plan, 429 with `Retry-After`
//! beyond the concurrency limits, 503 when the time budget runs out, and `/healthz` answering
//! while a writer waits for the world's lock.
//!
//! Against the real binary (`gridcover serve` on a generated city of the bundled Gansu data,
//! 12,000 households, on a free loopback port): while worst-case plans and what-ifs run
//! concurrently from two planners, `/healthz` answers within 100 ms and a leader's items page
//! within 5 s (a what-if's write lock, bounded by its 2 s budget, plus the page, on a debug build), every answer is one of 200/400/413/429/503 (never another 5xx), the
//! process lives, and its resident memory stays below a bound.

use std::path::Path;
use std::process::{Command, Stdio};

use super::common::{add_user, start_server, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use gridcover::plan::Bounds;
use gridcover::serve::edits::state_with_store;
use gridcover::serve::{router, AppState, Limits, Role};
use gridcover::store::Store;

struct Fx {
    state: AppState,
    planner: String,
    planner2: String,
    _dir: tempfile::TempDir,
}

fn fixture(limits: Limits) -> Fx {
    let dir = crate::common::copy_fixture("serve");
    let store = Store::open(dir.path()).unwrap();
    store.import(dir.path()).unwrap();
    let planner = store.add_user("规划员", Role::Planner, &[]).unwrap();
    let planner2 = store.add_user("规划员二", Role::Planner, &[]).unwrap();
    drop(store);
    let (store, ds) = Store::open_dataset(dir.path()).unwrap();
    let state = state_with_store(store, ds, limits, None).unwrap();
    Fx { state, planner, planner2, _dir: dir }
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
    text: String,
}

async fn call(state: &AppState, method: &str, uri: &str, token: Option<&str>, body: Option<&str>) -> Resp {
    let mut b = Request::builder().method(method).uri(uri).header(header::HOST, "example.test");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(t) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(t.to_string())).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let r = router(state.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp { status, headers, body, text }
}

fn description(r: &Resp) -> String {
    r.body["description"].as_str().unwrap_or_else(|| panic!("no description: {}", r.text)).to_string()
}

/// Two candidate sites: A on the six uncovered households at 100.3°E 40.3°N, B where nobody lives.
const SITES: &str =
    r#"{"kind": "sites", "sites": [{"id": "A", "lon": 100.3, "lat": 40.3}, {"id": "B", "lon": 100.95, "lat": 40.95}]}"#;

fn plan_body(extra: &str) -> String {
    format!(r#"{{"problem": "mclp", "level": "village", "new": 1, "radius_m": 1000, "candidates": {SITES}{extra}}}"#)
}

#[tokio::test]
async fn every_plan_bound_is_answered_400_or_413_naming_it() {
    let fx = fixture(Limits::default());
    let s = &fx.state;
    let t = Some(fx.planner.as_str());
    let many = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join(",");
    let cases: Vec<(String, &[&str])> = vec![
        (plan_body(r#", "radius_m": 50"#).replace(r#""radius_m": 1000, "#, ""), &["radius_m", "100 to 100000"]),
        (plan_body("").replace("1000", "10000000"), &["radius_m", "100 to 100000"]),
        (plan_body("").replace(r#""new": 1"#, r#""new": 5001"#), &["`new`", "1 to 5000"]),
        (plan_body(r#", "capacity": 0"#), &["`capacity`", "1 to 1000000"]),
        (plan_body(r#", "capacity": 1000001"#), &["`capacity`", "1 to 1000000"]),
        (plan_body(r#", "max_per_county": 0"#), &["`max_per_county`", "1 to 5000"]),
        (plan_body(r#", "max_per_county": 9999"#), &["`max_per_county`", "1 to 5000"]),
        (
            r#"{"problem": "mclp", "new": 1, "candidates": {"kind": "h3", "resolution": 16}}"#.into(),
            &["`candidates.resolution`", "0 to 15"],
        ),
        (r#"{"problem": "lscp", "target": 1.5}"#.into(), &["target", "(0, 1]"]),
        (r#"{"problem": "lscp", "new": 0}"#.into(), &["`new`", "1 to 5000"]),
        (
            plan_body(&format!(r#", "exclude": [{}]"#, many(10_001, &|i| format!("\"x{i}\"")))),
            &["`exclude`", "at most 10000 ids"],
        ),
        (
            plan_body(&format!(r#", "require": [{}]"#, many(10_001, &|i| format!("\"x{i}\"")))),
            &["`require`", "at most 10000 ids"],
        ),
        (
            format!(
                r#"{{"problem": "mclp", "new": 1, "candidates": {{"kind": "sites", "sites": [{}]}}}}"#,
                many(25_001, &|i| format!(r#"{{"id":"s{i}","lon":100.3,"lat":40.3}}"#))
            ),
            &["`candidates.sites`", "at most 25000 sites"],
        ),
    ];
    for (body, want) in cases {
        let r = call(s, "POST", "/api/plan", t, Some(&body)).await;
        let short: String = body.chars().take(160).collect();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{short}: {}", r.text);
        let d = description(&r);
        assert!(d.starts_with("plan request"), "{d}");
        for w in want {
            assert!(d.contains(w), "{short}: {d:?} should name {w:?}");
        }
    }
    // The pairs bound (capacity × reach and the others), estimated before building: 413. With
    // 6 pairs allowed, site A's coverage set (the six households at its point) fits, but not
    // the capacity pairs (every household with the stations reaching it), nor the coverage sets
    // of a 100 km radius.
    // (Plans for planners run on the k-anonymous demand: here two groups of households, so the
    // bound is set to 1 pair.)
    let tight = fixture(Limits { bounds: Bounds { max_pairs: 1, ..Bounds::default() }, ..Limits::default() });
    let post_tight = |body: String| {
        let (s, t) = (tight.state.clone(), tight.planner.clone());
        async move { call(&s, "POST", "/api/plan", Some(&t), Some(&body)).await }
    };
    for (body, what) in [
        (plan_body(r#", "capacity": 2"#), "(capacity)"),
        // At province level (no province station: nobody is covered yet), 100 km reach all.
        (
            plan_body("").replace(r#""radius_m": 1000"#, r#""radius_m": 100000"#).replace("village", "province"),
            "(coverage sets)",
        ),
        (
            r#"{"problem": "pmedian", "new": 1, "candidates": {"kind": "h3", "resolution": 8}}"#.to_string(),
            "distance pairs",
        ),
    ] {
        let r = post_tight(body.clone()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{body}: {}", r.text);
        let d = description(&r);
        assert!(d.starts_with("plan request") && d.contains("more than the bound of 1") && d.contains(what), "{d}");
    }
}

#[tokio::test]
async fn repeated_ids_are_folded_never_an_underflow() {
    let fx = fixture(Limits::default());
    let s = &fx.state;
    let t = Some(fx.planner.as_str());
    // The red team's body: one candidate id repeated in `exclude` (more entries than candidates).
    let r = call(s, "POST", "/api/plan", t, Some(&plan_body(r#", "exclude": ["B", "B", "B", "B", "B"]"#))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["sites"][0]["id"], "A", "B is excluded, A is left: {}", r.text);
    assert_eq!(r.body["sites"][0]["newly_covered_veterans"], 6);
    assert_eq!(r.body["sites"].as_array().unwrap().len(), 1);
    // A excluded five times: B is left, and it covers nobody (a correct, empty plan).
    let r = call(s, "POST", "/api/plan", t, Some(&plan_body(r#", "exclude": ["A", "A", "A", "A", "A"]"#))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["sites"], json!([]), "{}", r.text);
    assert_eq!(r.body["candidates"], 2);
    // Both excluded, each many times: no candidate left (400), not a crash.
    let r = call(s, "POST", "/api/plan", t, Some(&plan_body(r#", "exclude": ["A", "B", "A", "B", "B", "A"]"#))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(description(&r).contains("no candidate sites"), "{}", r.text);
    // A required site given twice counts once.
    let r = call(s, "POST", "/api/plan", t, Some(&plan_body(r#", "require": ["A", "A"]"#))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["sites"][0]["id"], "A");
    assert_eq!(r.body["sites"][0]["newly_covered_veterans"], 6);
    // The server still answers.
    assert_eq!(call(s, "GET", "/healthz", None, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn every_scenario_bound_is_answered_400_naming_it() {
    let fx = fixture(Limits::default());
    let s = &fx.state;
    let t = Some(fx.planner.as_str());
    let add = |n: usize, radius: f64| {
        let one = format!(
            r#"{{"level": "village", "code": "990101001001", "lon": 100.3, "lat": 40.3, "radius_m": {radius}}}"#
        );
        let adds: Vec<String> = (0..n).map(|i| one.replace("{", &format!(r#"{{"id": "N{i}", "#))).collect();
        format!(r#"{{"add": [{}]}}"#, adds.join(","))
    };
    let removes: String =
        format!(r#"{{"remove": [{}]}}"#, (0..201).map(|i| format!("\"S{i}\"")).collect::<Vec<_>>().join(","));
    let cases: Vec<(String, &[&str])> = vec![
        (add(201, 2000.0), &["`add`", "at most 200 stations"]),
        (add(1, 10_000_000.0), &["`add[0].radius_m`", "100 to 100000 metres"]),
        (add(1, 5.0), &["`add[0].radius_m`", "100 to 100000 metres"]),
        (removes, &["`remove`", "at most 200 stations"]),
        (r#"{"add": [{"level": "village", "lon": 500, "lat": 40.3}]}"#.into(), &["`add[0].lon`", "-180 to 180"]),
    ];
    for (body, want) in cases {
        let r = call(s, "POST", "/api/scenario", t, Some(&body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        let d = description(&r);
        assert!(d.starts_with("scenario request"), "{d}");
        for w in want {
            assert!(d.contains(w), "{d:?} should name {w:?}");
        }
    }
    // At the bounds: 200 stations of 100 km are measured.
    let r = call(s, "POST", "/api/scenario", t, Some(&add(200, 100_000.0))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["added"].as_array().unwrap().len(), 200);
    // A station removed twice is closed once: the same answer as once.
    let twice = call(s, "POST", "/api/scenario", t, Some(r#"{"remove": ["S3", "S3", "S3"]}"#)).await;
    let once = call(s, "POST", "/api/scenario", t, Some(r#"{"remove": ["S3"]}"#)).await;
    assert_eq!(twice.status, StatusCode::OK, "{}", twice.text);
    assert_eq!(twice.body, once.body);
    assert_eq!(twice.body["removed"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_exhausted_budget_answers_503() {
    let fx = fixture(Limits { plan_time: Duration::ZERO, scenario_time: Duration::ZERO, ..Limits::default() });
    let s = &fx.state;
    let r = call(s, "POST", "/api/plan", Some(&fx.planner), Some(&plan_body(""))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["code"], "OutOfTime");
    assert!(description(&r).contains("time budget"), "{}", r.text);
    let r = call(s, "POST", "/api/scenario", Some(&fx.planner), Some(r#"{"remove": ["S3"]}"#)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(description(&r).contains("time budget"), "{}", r.text);
    // Nothing was left applied, nothing left running.
    assert_eq!(s.expensive_running(), 0);
    let st = call(s, "GET", "/api/collections/stations/items/S3", Some(&fx.planner), None).await;
    assert_eq!(st.status, StatusCode::OK, "S3 is still open: {}", st.text);
    // A budget in real time: a plan with enough of it answers.
    let fx = fixture(Limits { plan_time: Duration::from_secs(60), ..Limits::default() });
    let r = call(&fx.state, "POST", "/api/plan", Some(&fx.planner), Some(&plan_body(""))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// Waits until `n` expensive requests run (or fails after 10 s).
async fn until_running(s: &AppState, n: usize) {
    let t = Instant::now();
    while s.expensive_running() != n {
        assert!(t.elapsed() < Duration::from_secs(10), "{} running, not {n}", s.expensive_running());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_concurrency_limits_429_and_healthz_still_answers() {
    let fx = fixture(Limits { expensive_per_user: 1, expensive_total: 2, ..Limits::default() });
    let s = fx.state.clone();
    // Hold the planner's engine (as a station edit would, for longer): a what-if then waits for
    // its snapshot (a running request, holding its slot). The served world stays free.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (taken, is_taken) = std::sync::mpsc::channel::<()>();
    let holder = {
        let s = s.clone();
        tokio::task::spawn_blocking(move || {
            s.planner().edit(|_| {
                taken.send(()).unwrap();
                held.recv().ok();
            })
        })
    };
    is_taken.recv().unwrap();
    let first = {
        let (s, t) = (s.clone(), fx.planner.clone());
        tokio::spawn(async move { call(&s, "POST", "/api/scenario", Some(&t), Some(r#"{"remove": ["S3"]}"#)).await })
    };
    until_running(&s, 1).await;
    // The same user again: 429 with Retry-After, for a plan as for a what-if.
    for (uri, body) in [("/api/plan", plan_body("")), ("/api/scenario", r#"{"remove": ["S2"]}"#.to_string())] {
        let r = call(&s, "POST", uri, Some(&fx.planner), Some(&body)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{uri}: {}", r.text);
        assert_eq!(r.headers.get(header::RETRY_AFTER).unwrap(), "5");
        assert!(description(&r).contains("at most 1 at once per user"), "{}", r.text);
    }
    // Another user may (total 2), and then nobody may.
    let second = {
        let (s, t) = (s.clone(), fx.planner2.clone());
        tokio::spawn(async move { call(&s, "POST", "/api/scenario", Some(&t), Some(r#"{"remove": ["S4"]}"#)).await })
    };
    until_running(&s, 2).await;
    let r = call(&s, "POST", "/api/plan", Some(&fx.planner2), Some(&plan_body(""))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    // Readers of the world do not wait for planners, and /healthz answers at once.
    let mut blocked = Vec::new();
    for uri in ["/tiles/stations.json", "/api/collections", "/api/collections/stations", "/tiles/admin-county.json"] {
        let (s, t) = (s.clone(), fx.planner2.clone());
        blocked.push(tokio::spawn(async move { call(&s, "GET", uri, Some(&t), None).await.status }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        let s2 = s.clone();
        let t0 = Instant::now();
        let h = tokio::spawn(async move { call(&s2, "GET", "/healthz", None, None).await });
        let r = tokio::time::timeout(Duration::from_secs(2), h).await.expect("healthz answered").unwrap();
        assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "ok"));
        assert!(t0.elapsed() < Duration::from_millis(100), "healthz took {:?}", t0.elapsed());
    }
    release.send(()).unwrap();
    holder.await.unwrap();
    for j in [first, second] {
        let r = j.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    for j in blocked {
        assert_eq!(j.await.unwrap(), StatusCode::OK);
    }
    // The slots are given back.
    until_running(&s, 0).await;
    let r = call(&s, "POST", "/api/plan", Some(&fx.planner), Some(&plan_body(""))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

// ------------------------------------------------------------------- the real binary

const BIN: &str = env!("CARGO_BIN_EXE_gridcover");

fn run(args: &[&str], data: Option<&Path>) -> String {
    let mut c = Command::new(BIN);
    c.args(args);
    if let Some(d) = data {
        c.arg("--data").arg(d);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "gridcover {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// One city of the bundled Gansu data (白银市, five counties) with 12,000 generated households.
fn make_data(work: &Path) -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gansu");
    let city = "6204";
    let mut b: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("boundaries.geojson")).unwrap()).unwrap();
    let feats = b["features"].as_array_mut().unwrap();
    feats.retain(|f| {
        let c = &f["properties"]["code"];
        c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string()).starts_with(city)
    });
    assert!(!feats.is_empty());
    let src = work.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("boundaries.geojson"), b.to_string()).unwrap();
    let rows = std::fs::read_to_string(repo.join("divisions.csv")).unwrap();
    let mut lines = rows.lines();
    let mut keep = vec![lines.next().unwrap().to_string()];
    keep.extend(lines.filter(|r| r.starts_with("62,") || r.starts_with(city)).map(str::to_string));
    std::fs::write(src.join("divisions.csv"), keep.join("\n") + "\n").unwrap();
    let data = work.join("data");
    let (bp, dp) = (src.join("boundaries.geojson"), src.join("divisions.csv"));
    run(
        &[
            "generate",
            "--boundaries",
            bp.to_str().unwrap(),
            "--divisions",
            dp.to_str().unwrap(),
            "--seed",
            "7",
            "--households",
            "12000",
            "--out",
            data.to_str().unwrap(),
        ],
        None,
    );
    data
}

fn start(data: &Path) -> Server {
    start_server(data, Stdio::inherit(), Duration::from_secs(300))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn get(a: &ureq::Agent, url: &str, token: Option<&str>) -> (u16, String) {
    let mut rq = a.get(url);
    if let Some(t) = token {
        rq = rq.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = rq.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn post(a: &ureq::Agent, url: &str, token: &str, body: &str) -> (u16, Option<String>, String) {
    let mut r = a
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry, r.body_mut().read_to_string().unwrap())
}

/// Resident memory of a process, bytes (`VmRSS` of /proc/PID/status).
fn rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Bounds asserted per request (generous for a loaded 2-core CI machine and a debug build).
const HEALTHZ_MAX: Duration = Duration::from_millis(100);
/// A page waits at most for a what-if's write lock (its budget, 2 s, of which half for the
/// edits and half for taking them back, plus the one edit under way and the measuring), plus
/// its own time, on a debug build with every core busy: measured up to 3.8 s.
const PAGE_MAX: Duration = Duration::from_secs(5);
const RSS_MAX: u64 = 1536 << 20;

#[test]
fn worst_case_plans_and_what_ifs_do_not_stall_the_real_server() {
    let work = tempfile::tempdir().unwrap();
    let data = make_data(work.path());
    let leader = add_user(&data, "李领导", "leader", &[]);
    let p1 = add_user(&data, "规划员", "planner", &[]);
    let p2 = add_user(&data, "规划员二", "planner", &[]);
    let server = start(&data);
    let pid = server.child.id();
    let base = server.base.clone();
    let a = agent();
    assert_eq!(get(&a, &format!("{base}/healthz"), None), (200, "ok".into()));
    // Station ids to close and positions to open at, and a real candidate id.
    let (st, page) = get(&a, &format!("{base}/api/collections/stations/items?limit=1000"), Some(&leader));
    assert_eq!(st, 200, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    let feats = page["features"].as_array().unwrap();
    let ids: Vec<String> = feats.iter().take(200).map(|f| f["id"].as_str().unwrap().to_string()).collect();
    // Each station's level, unit and position: a what-if opens one more beside each.
    let pts: Vec<Value> = feats
        .iter()
        .take(200)
        .map(|f| {
            let p = &f["properties"];
            json!({"level": p["level"], "code": p["code"], "lon": f["geometry"]["coordinates"][0], "lat": f["geometry"]["coordinates"][1]})
        })
        .collect();
    assert!(ids.len() >= 20, "{} stations", ids.len());
    let (st, _, one) = post(&a, &format!("{base}/api/plan"), &p1, r#"{"problem": "mclp", "new": 1}"#);
    assert_eq!(st, 200, "{one}");
    let cand: Value = serde_json::from_str(&one).unwrap();
    let cand = cand["sites"][0]["id"].as_str().unwrap().to_string();
    let rss0 = rss(pid);

    // Worst cases at (or over) the bounds.
    let excl: Vec<Value> = (0..1000).map(|_| json!(cand)).collect();
    let plans: Vec<String> = vec![
        json!({"problem": "mclp", "level": "township", "new": 200, "radius_m": 50000, "capacity": 10}).to_string(),
        json!({"problem": "pmedian", "level": "village", "new": 1000, "candidates": {"kind": "h3", "resolution": 12}})
            .to_string(),
        json!({"problem": "lscp", "level": "province", "radius_m": 100000, "candidates": {"kind": "h3", "resolution": 15}})
            .to_string(),
        json!({"problem": "mclp", "level": "village", "new": 5000, "radius_m": 100000, "capacity": 1000000,
            "candidates": {"kind": "h3", "resolution": 15}})
        .to_string(),
        json!({"problem": "mclp", "level": "village", "new": 1, "exclude": excl}).to_string(),
    ];
    let adds: Vec<Value> = pts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.clone();
            p["id"] = json!(format!("X{i}"));
            p["radius_m"] = json!(100000);
            p
        })
        .collect();
    let mut removes: Vec<Value> = ids.iter().map(|i| json!(i)).collect();
    removes.extend(ids.iter().take(50).map(|i| json!(i)));
    let whatif = json!({"add": adds, "remove": removes}).to_string();

    let done = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(std::sync::Mutex::new(Vec::<(u16, Option<String>, String)>::new()));
    let t_start = Instant::now();
    let mut workers = Vec::new();
    // Planner 1: every worst-case plan, three at once (so over the per-user limit of 2), twice.
    for round in 0..2 {
        for chunk in plans.chunks(3) {
            let _ = round;
            let hs: Vec<_> = chunk
                .iter()
                .map(|body| {
                    let (a, url, t, body, out) =
                        (agent(), format!("{base}/api/plan"), p1.clone(), body.clone(), statuses.clone());
                    std::thread::spawn(move || {
                        let r = post(&a, &url, &t, &body);
                        out.lock().unwrap().push(r);
                    })
                })
                .collect();
            workers.push(hs);
        }
    }
    // Planner 2: the worst what-if, two at once, three times (run in the background thread).
    let p2_thread = {
        let (base, p2, whatif, out) = (base.clone(), p2.clone(), whatif.clone(), statuses.clone());
        std::thread::spawn(move || {
            for _ in 0..3 {
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        let (a, url, t, body, out) =
                            (agent(), format!("{base}/api/scenario"), p2.clone(), whatif.clone(), out.clone());
                        std::thread::spawn(move || out.lock().unwrap().push(post(&a, &url, &t, &body)))
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
            }
        })
    };
    // The probe: /healthz, a leader's page (a different one each time, so never a cached
    // answer) and the process's memory, until the attack is over.
    let probe = {
        let (base, leader, done) = (base.clone(), leader.clone(), done.clone());
        std::thread::spawn(move || {
            let a = agent();
            let (mut worst_h, mut worst_p, mut worst_rss, mut n) = (Duration::ZERO, Duration::ZERO, 0u64, 0usize);
            let mut failures = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (s, b) = get(&a, &format!("{base}/healthz"), None);
                let dh = t.elapsed();
                if (s, b.as_str()) != (200, "ok") || dh > HEALTHZ_MAX {
                    failures.push(format!("healthz #{n}: {s} in {dh:?}"));
                }
                let t = Instant::now();
                let (s, b) =
                    get(&a, &format!("{base}/api/collections/admin-village/items?limit=50&offset={n}"), Some(&leader));
                let dp = t.elapsed();
                if s != 200 || dp > PAGE_MAX {
                    failures.push(format!("page #{n}: {s} in {dp:?}: {}", &b[..b.len().min(200)]));
                }
                worst_h = worst_h.max(dh);
                worst_p = worst_p.max(dp);
                worst_rss = worst_rss.max(rss(pid));
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            (worst_h, worst_p, worst_rss, n, failures)
        })
    };
    for hs in workers {
        for h in hs {
            h.join().unwrap();
        }
    }
    p2_thread.join().unwrap();
    done.store(true, Ordering::Relaxed);
    let (worst_h, worst_p, worst_rss, probes, failures) = probe.join().unwrap();
    let took = t_start.elapsed();
    let statuses = statuses.lock().unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for (s, _, _) in statuses.iter() {
        *counts.entry(*s).or_insert(0) += 1;
    }
    eprintln!(
        "abuse: {} requests in {took:?} ({counts:?}); {probes} probes: healthz worst {worst_h:?}, page worst \
         {worst_p:?}; RSS {} MB before, {} MB at most",
        statuses.len(),
        rss0 >> 20,
        worst_rss >> 20
    );
    assert!(failures.is_empty(), "{} probes over their bound:\n{}", failures.len(), failures.join("\n"));
    assert!(probes >= 10, "only {probes} probes");
    assert_eq!(statuses.len(), 2 * plans.len() + 6);
    for (s, retry, body) in statuses.iter() {
        assert!([200, 400, 413, 429, 503].contains(s), "{s}: {body}");
        if *s == 429 {
            assert_eq!(retry.as_deref(), Some("5"), "{body}");
        }
        if *s != 200 {
            let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{s}: not JSON: {body}"));
            assert!(v["description"].as_str().is_some_and(|d| d.contains("request")), "{body}");
        }
    }
    assert!(counts.get(&429).is_some_and(|&n| n >= 1), "three plans at once from one user: one refused ({counts:?})");
    // The folded exclude list is a plan, not a crash.
    assert!(statuses.iter().any(|(s, _, b)| *s == 200 && b.contains("\"sites\"")), "{counts:?}");
    assert!(worst_rss < RSS_MAX, "resident memory reached {} MB", worst_rss >> 20);
    // The process lives and answers.
    let mut server = server;
    assert!(server.child.try_wait().unwrap().is_none(), "the server died");
    assert_eq!(get(&a, &format!("{base}/healthz"), None), (200, "ok".into()));
}
