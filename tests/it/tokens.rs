//! Tokens can be withdrawn, and the smaller fixes of the same issue:
//!
//! - through the real binary: `user add --expires-in`, `user list` (table and `--json`, never a
//!   token), `user revoke`, their exit codes; a running `gridcover serve` refuses a revoked
//!   token within one second of the revoke, and an expired one within one second of its
//!   expiry, without a restart; the visits of a revoked user stay readable; a real 500 (the
//!   audit log refusing writes) answers a generic body naming the request id, and the server's
//!   stderr logs the cause with that id;
//! - through the router: a token in a percent-encoded query key is refused 400; a status nested
//!   100 deep is refused 400 naming the bound and the household stays readable; every answer
//!   carries `x-request-id`, and a 500's body is generic while its cause is logged.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use gridcover::serve::edits::state_with_store;
use gridcover::serve::{router, AppState, Limits, Role};
use gridcover::store::Store;

fn bin() -> String {
    std::env::var("GRIDCOVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gridcover").to_string())
}

fn gridcover(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin()).args(args).arg("--data").arg(dir).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `gridcover user add ARGS`: the token (last line of stdout).
fn add_user(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["user", "add"];
    all.extend_from_slice(args);
    let o = gridcover(dir, &all);
    assert!(o.status.success(), "user add {args:?}: {}", stderr(&o));
    stdout(&o).lines().last().unwrap().to_string()
}

/// The small fixture, imported.
fn imported() -> tempfile::TempDir {
    let d = crate::common::copy_fixture("small");
    let o = Command::new(bin()).args(["import", "--data"]).arg(d.path()).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    d
}

#[test]
fn user_add_list_and_revoke_through_the_binary() {
    let d = imported();
    let leader = add_user(d.path(), &["--name", "李明", "--role", "leader", "--expires-in", "90d"]);
    let worker =
        add_user(d.path(), &["--name", "王五", "--role", "grid_worker", "--grid", "G1", "--expires-in", "12h"]);
    let planner = add_user(d.path(), &["--name", "规划", "--role", "planner"]);
    add_user(d.path(), &["--name", "规划", "--role", "planner", "--expires-in", "30m"]); // a second token
                                                                                         // Bad expiries: exit 2 with the reason, and no user added.
    for (bad, why) in [
        ("0d", "more than zero"),
        ("0m", "more than zero"),
        ("3651d", "at most 3650 days"),
        ("99999999999999999999d", "at most 3650 days"),
        ("1000000h", "at most 3650 days"),
        ("5s", "N followed by d, h or m"),
        ("d", "N followed by d, h or m"),
        ("1.5d", "N followed by d, h or m"),
    ] {
        let o = gridcover(d.path(), &["user", "add", "--name", "x", "--role", "leader", "--expires-in", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{bad}: {}", stderr(&o));
    }
    // A refused user (a grid worker without a grid) is exit 2 too.
    let o = gridcover(d.path(), &["user", "add", "--name", "x", "--role", "grid_worker"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("at least one grid"), "{}", stderr(&o));

    // The table: a header and one line per user, never a token.
    let o = gridcover(d.path(), &["user", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    for col in ["id", "name", "role", "grids", "created", "expires", "revoked"] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert!(lines[1].contains("李明") && lines[1].contains("leader") && !lines[1].contains("never"), "{table}");
    assert!(lines[2].contains("王五") && lines[2].contains("G1"), "{table}");
    assert!(lines[3].contains("规划") && lines[3].contains("never"), "{table}");
    assert!(lines[1..].iter().all(|l| l.trim_end().ends_with("no")), "none revoked yet:\n{table}");
    for t in [&leader, &worker, &planner] {
        assert!(!table.contains(t.as_str()));
    }
    // JSON for machines.
    let o = gridcover(d.path(), &["user", "list", "--json"]);
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[1]["grids"], json!(["G1"]));
    assert_eq!(list[1]["role"], "grid_worker");
    assert_eq!(list[2]["expires_at"], Value::Null);
    assert_eq!(list[0]["state"], "active");
    assert!(list
        .iter()
        .all(|u| u["revoked_at"].is_null() && u.get("token").is_none() && u.get("token_sha256").is_none()));
    // 90 days from now, give or take a minute.
    let exp = list[0]["expires_at"].as_str().unwrap();
    assert!(exp.ends_with('Z') && exp.len() >= 20, "{exp}");
    let text = stdout(&o);
    for t in [&leader, &worker, &planner] {
        assert!(!text.contains(t.as_str()));
    }

    // Revoke: every active token of the name; exit 2 naming the user when none is left.
    let o = gridcover(d.path(), &["user", "revoke", "--name", "规划"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 token(s) of 规划 revoked"), "{}", stdout(&o));
    let o = gridcover(d.path(), &["user", "revoke", "--name", "规划"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("规划") && stderr(&o).contains("revoked or expired already"), "{}", stderr(&o));
    let o = gridcover(d.path(), &["user", "revoke", "--name", "nobody"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("\"nobody\"") && stderr(&o).contains("user list"), "{}", stderr(&o));
    let o = gridcover(d.path(), &["user", "list", "--json"]);
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let states: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["active", "active", "revoked", "revoked"]);
    assert!(list[2]["revoked_at"].is_string());
    let table = stdout(&gridcover(d.path(), &["user", "list"]));
    assert!(table.lines().nth(3).unwrap().trim_end().ends_with('Z'), "{table}");
    // The revocation is in the audit log.
    let store = Store::open(d.path()).unwrap();
    let revokes: Vec<_> = store.audit_log().unwrap().into_iter().filter(|e| e.action == "user.revoke").collect();
    assert_eq!(revokes.len(), 2);
    assert!(revokes.iter().all(|e| e.target.contains("规划")));
    assert!(store.authenticate(&planner).unwrap().is_none() && store.authenticate(&leader).unwrap().is_some());
}

/// `gridcover serve` on a free loopback port, its stderr collected.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (err, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = writeln!(std::io::stderr(), "server: {l}");
                sink.lock().unwrap().push_str(&(l + "\n"));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let l = lines.next().expect("the server printed its address").unwrap();
            if let Some(a) = l.strip_prefix("listening on ") {
                break a.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server { child, base, log }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Answer {
    status: u16,
    request_id: Option<String>,
    body: String,
}

fn send(base: &str, method: &str, path: &str, token: &str, body: Option<&Value>) -> Answer {
    let a: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("Authorization", format!("Bearer {token}"));
    let mut res = match body {
        Some(b) => a.run(req.header("Content-Type", "application/json").body(b.to_string()).unwrap()),
        None => a.run(req.body(()).unwrap()),
    }
    .unwrap();
    let request_id = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = res.body_mut().read_to_vec().unwrap();
    Answer { status: res.status().as_u16(), request_id, body: String::from_utf8_lossy(&bytes).into_owned() }
}

/// Polls `path` with `token` until it is refused (401) or `deadline` passes; the instant of the
/// first refusal.
fn refused_at(base: &str, path: &str, token: &str, deadline: Instant) -> Option<Instant> {
    loop {
        let r = send(base, "GET", path, token, None);
        let at = Instant::now();
        match r.status {
            401 => return Some(at),
            200 => {}
            s => panic!("{path}: {s} {}", r.body),
        }
        if at > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_running_server_refuses_revoked_and_expired_tokens_within_a_second() {
    let d = imported();
    let worker = add_user(d.path(), &["--name", "王五", "--role", "grid_worker", "--grid", "G1"]);
    let leader = add_user(d.path(), &["--name", "李明", "--role", "leader"]);
    let soon = add_user(d.path(), &["--name", "临时", "--role", "leader", "--expires-in", "1d"]);
    let server = Server::start(d.path());
    let base = server.base.as_str();
    let tile = "/tiles/stations/0/0/0.mvt";
    // The worker records a visit, and every token is in use (so remembered by the server).
    let v =
        send(base, "POST", "/api/households/H1/visits", &worker, Some(&json!({"date": "2026-11-29", "note": "送煤"})));
    assert_eq!(v.status, 201, "{}", v.body);
    for t in [&worker, &leader, &soon] {
        for _ in 0..3 {
            assert_eq!(send(base, "GET", tile, t, None).status, 200);
        }
    }

    // Revoked from another process while the server runs.
    let o = gridcover(d.path(), &["user", "revoke", "--name", "王五"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let revoked = Instant::now();
    let at =
        refused_at(base, tile, &worker, revoked + Duration::from_secs(3)).expect("still accepted 3 s after the revoke");
    let delay = at.duration_since(revoked);
    eprintln!("revoked token refused {} ms after `user revoke` returned", delay.as_millis());
    assert!(delay <= Duration::from_secs(1), "refused only {delay:?} after the revoke");
    assert_eq!(send(base, "GET", "/api/me", &worker, None).status, 401);
    assert_eq!(send(base, "GET", tile, &leader, None).status, 200, "other users stay in");

    // The visit of the revoked worker stays readable, with their name, by the grid's next worker.
    let next = add_user(d.path(), &["--name", "赵六", "--role", "grid_worker", "--grid", "G1"]);
    let r = send(base, "GET", "/api/households/H1/visits", &next, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let visits: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (visits["visits"][0]["user"].as_str(), visits["visits"][0]["note"].as_str()),
        (Some("王五"), Some("送煤"))
    );

    // Expiry: the token's stored expiry moved to two seconds from now (by hand, in the store's
    // file); the server refuses it within a second of that time, and not before it.
    let c = rusqlite::Connection::open(d.path().join("gridcover.sqlite")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let expires_ms: i64 = c
        .query_row(
            "UPDATE users SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+2 seconds') WHERE name = '临时'
             RETURNING CAST(round((julianday(expires_at) - 2440587.5) * 86400000.0) AS INTEGER)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(c);
    let expires = UNIX_EPOCH + Duration::from_millis(expires_ms as u64);
    let until = expires.duration_since(SystemTime::now()).unwrap();
    let at = refused_at(base, tile, &soon, Instant::now() + until + Duration::from_secs(3))
        .expect("accepted 3 s after expiry");
    let now = SystemTime::now();
    let at_sys = now - at.elapsed();
    assert!(at_sys + Duration::from_millis(20) >= expires, "refused before its expiry");
    let late = at_sys.duration_since(expires).unwrap_or_default();
    eprintln!("expired token refused {} ms after its expiry", late.as_millis());
    assert!(late <= Duration::from_secs(1), "refused only {late:?} after its expiry");
    assert_eq!(send(base, "GET", "/api/me", &leader, None).status, 200);

    // A real 500: the store refuses audit entries of reads (a trigger in its file); a household
    // read must then fail, generic, naming its request id, and the cause is logged with it.
    let c = rusqlite::Connection::open(d.path().join("gridcover.sqlite")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.execute_batch(
        "CREATE TRIGGER injected BEFORE INSERT ON audit WHEN NEW.action = 'households.read'
         BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END;",
    )
    .unwrap();
    drop(c);
    let r = send(base, "GET", "/api/households/H1", &next, None);
    assert_eq!(r.status, 500, "{}", r.body);
    let id = r.request_id.clone().expect("an x-request-id header");
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body, json!({"code": "ServerError", "description": format!("internal error; request id {id}")}));
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let log = server.log.lock().unwrap().clone();
        if let Some(l) = log.lines().find(|l| l.contains(&id)) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no log line with {id}:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        line.contains("ERROR") && line.contains("injected audit failure") && line.contains("/api/households/H1"),
        "{line}"
    );
    assert!(!line.contains(&next), "the log never holds a token: {line}");
    // Answers that are not 500 name their request too, and are not logged.
    let ok = send(base, "GET", "/api/me", &next, None);
    let ok_id = ok.request_id.expect("x-request-id on a 200");
    assert_ne!(ok_id, id);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!server.log.lock().unwrap().contains(&ok_id));
}

// ---- through the router ----

struct Fx {
    state: AppState,
    worker: String,
    dir: tempfile::TempDir,
}

fn fixture() -> Fx {
    let dir = crate::common::copy_fixture("serve");
    let store = Store::open(dir.path()).unwrap();
    store.import(dir.path()).unwrap();
    let worker = store.add_user("王五", Role::GridWorker, &["G1".into()]).unwrap();
    drop(store);
    let (store, ds) = Store::open_dataset(dir.path()).unwrap();
    let state = state_with_store(store, ds, Limits::default(), None).unwrap();
    Fx { state, worker, dir }
}

struct Resp {
    status: StatusCode,
    request_id: Option<String>,
    body: Value,
}

async fn call(fx: &Fx, method: &str, uri: &str, body: Option<String>) -> Resp {
    let b = Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {}", fx.worker));
    let req = match body {
        Some(t) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(t)).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let r = router(fx.state.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    let request_id = r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    Resp { status, request_id, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

#[tokio::test]
async fn a_token_in_an_encoded_query_key_is_refused() {
    let fx = fixture();
    for q in ["%74oken=x", "%54oken=x", "access%5Ftoken=x", "a=1&%61ccess_token=x", "+token=x"] {
        let r = call(&fx, "GET", &format!("/api/me?{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
        assert!(r.body["description"].as_str().unwrap().contains("never accepted in the URL query"), "{q}");
    }
    assert_eq!(call(&fx, "GET", "/api/me", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_deeply_nested_status_is_refused_and_the_household_stays_readable() {
    let fx = fixture();
    let mut deep = json!("x");
    for _ in 0..100 {
        deep = json!({ "a": deep });
    }
    let r = call(&fx, "PATCH", "/api/households/H1", Some(deep.to_string())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["description"].as_str().unwrap().contains("8 levels"), "{}", r.body);
    // Too large: 400 naming the size bound.
    let big = json!({"note": "x".repeat(17 * 1024)});
    let r = call(&fx, "PATCH", "/api/households/H1", Some(big.to_string())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["description"].as_str().unwrap().contains("16 KiB"), "{}", r.body);
    // Eight levels are fine; the household reads back, with its status.
    let mut ok = json!("x");
    for _ in 0..8 {
        ok = json!({ "a": ok });
    }
    let r = call(&fx, "PATCH", "/api/households/H1", Some(ok.to_string())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for uri in ["/api/households/H1", "/api/collections/households/items/H1", "/api/collections/households/items"] {
        let r = call(&fx, "GET", uri, None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    }
    let r = call(&fx, "GET", "/api/households/H1", None).await;
    assert_eq!((r.body["properties"]["status"].clone(), r.body["properties"]["version"].clone()), (ok, json!(2)));
}

/// Collects what `tracing` writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_500_is_generic_names_its_request_id_and_is_logged() {
    let fx = fixture();
    let log = Captured::default();
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || sink.clone()).with_ansi(false).finish();
    // The test's runtime runs on this thread, and so does the layer that logs.
    let _guard = tracing::subscriber::set_default(subscriber);
    let ok = call(&fx, "GET", "/api/me", None).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.request_id.is_some());
    let c = rusqlite::Connection::open(fx.dir.path().join("gridcover.sqlite")).unwrap();
    c.execute_batch(
        "CREATE TRIGGER injected BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'injected: /secret/disk failure'); END;",
    )
    .unwrap();
    drop(c);
    for uri in ["/api/households/H1", "/api/collections/households/items"] {
        let r = call(&fx, "GET", uri, None).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}: {}", r.body);
        let id = r.request_id.expect("x-request-id");
        assert_eq!(r.body, json!({"code": "ServerError", "description": format!("internal error; request id {id}")}));
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        let line = text.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("no log line for {id}:\n{text}"));
        assert!(
            line.contains("ERROR") && line.contains("injected: /secret/disk failure") && line.contains(uri),
            "{line}"
        );
    }
    // Refusals other than 500 carry their reason and their id, and are not logged.
    let r = call(&fx, "GET", "/api/households/NOPE", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let id = r.request_id.unwrap();
    assert!(!String::from_utf8(log.0.lock().unwrap().clone()).unwrap().contains(&id));
}
