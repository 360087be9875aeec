//! Errors of the API as responses: a status and the JSON body `{"code", "description"}`
//! (the OGC API exception shape), and the request ids.
//!
//! Every response carries an `x-request-id` header, made by [`request_id`] (one layer around
//! the whole router). A 500 never shows its cause: its body is
//! `{"code": "ServerError", "description": "internal error; request id ID"}`, and the cause is
//! logged on stderr (`tracing`, level ERROR) with that id, the method and the path (never the
//! query, which may hold anything a client typed).
//!
//! # The one mapping
//! The library's errors become answers here and nowhere else: `From<StoreError>`,
//! `From<PlanError>`, `From<ScenarioError>`, `From<LiveError>` (each an exhaustive `match`, so
//! that a new variant is a decision and not a silent 500), and the server's own failures
//! (`From<JoinError>`, `From<serde_json::Error>`, `From<TileError>`), all 500. Handlers use `?`.
//!
//! | error | status | `code` |
//! |---|---|---|
//! | [`StoreError::NotFound`] | 404 | `NotFound` |
//! | [`StoreError::Exists`], [`StoreError::Conflict`] | 409 | `Exists`, `Conflict` |
//! | [`StoreError::Invalid`] | 400 | `InvalidParameterValue` |
//! | [`StoreError::Db`] with the disk full | 507 | `StoreFull` |
//! | any other [`StoreError`] | 500 | `ServerError` |
//! | [`PlanError::TooLarge`] | 413 | `TooLarge` |
//! | [`PlanError::OutOfTime`], [`ScenarioError::OutOfTime`] | 503 | `OutOfTime` |
//! | any other [`PlanError`], [`ScenarioError`], every [`LiveError`] | 400 | `InvalidParameterValue` |
//! | a worker that panicked, JSON the server made, a tile that fails to encode | 500 | `ServerError` |
//!
//! A [`LiveError`] answered 400 is a what-if's station the engine refuses; a station edit the
//! engine refuses *after* the store committed it is the server's failure (500, see
//! [`super::edits`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::tiles::TileError;
use crate::analysis::scenario::ScenarioError;
use crate::analysis::LiveError;
use crate::plan::{PlanError, PlanErrorKind};
use crate::store::StoreError;

/// The response header naming the request.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short machine code, e.g. `InvalidParameterValue`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub description: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        ApiError { status, code, description: description.into() }
    }

    /// 400: a malformed or out-of-range parameter.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameterValue", description)
    }

    /// 401: no or an unknown token.
    pub fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", description)
    }

    /// 403: the role may not see this.
    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", description)
    }

    /// 404: no such thing (or none the user may see).
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", description)
    }

    /// 500: a failure of the server.
    pub fn internal(description: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "ServerError", description)
    }

    /// 503: work stopped by its time budget.
    pub fn out_of_time(description: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "OutOfTime", description)
    }
}

impl From<StoreError> for ApiError {
    /// 404, 409, 400 for what the request asked; 507 when the disk is full (the description,
    /// `not saved: …`, is the client's to see); 500 for every other failure of the store.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Exists { .. } => ApiError::new(StatusCode::CONFLICT, "Exists", e.to_string()),
            StoreError::Conflict { .. } => ApiError::new(StatusCode::CONFLICT, "Conflict", e.to_string()),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Db { .. } if e.is_disk_full() => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "StoreFull", format!("not saved: {e}"))
            }
            // `NoActiveToken` is `user revoke`'s, `Open`, `TooNew` and `Ingest` are a start's:
            // none is a request's to cause.
            StoreError::Db { .. }
            | StoreError::Open { .. }
            | StoreError::TooNew { .. }
            | StoreError::NoActiveToken { .. }
            | StoreError::Ingest(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<PlanError> for ApiError {
    /// 503 when the budget ran out, 413 for an instance over the pairs bound, else 400
    /// ([`PlanError::kind`]); each names the request.
    fn from(e: PlanError) -> Self {
        let d = format!("plan request: {e}");
        match e.kind() {
            PlanErrorKind::OutOfTime => ApiError::out_of_time(d),
            PlanErrorKind::TooLarge => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "TooLarge", d),
            PlanErrorKind::BadRequest => ApiError::bad_request(d),
        }
    }
}

impl From<ScenarioError> for ApiError {
    /// 503 when the budget ran out; an input out of range, or a station the engine refuses, as
    /// [`LiveError`] is mapped (400); each names the request.
    fn from(e: ScenarioError) -> Self {
        let d = format!("scenario request: {e}");
        match e {
            ScenarioError::OutOfTime { .. } => ApiError::out_of_time(d),
            ScenarioError::OutOfRange { .. } => ApiError::bad_request(d),
            ScenarioError::Edit(live) => ApiError { description: d, ..ApiError::from(live) },
        }
    }
}

impl From<LiveError> for ApiError {
    /// 400: the stations of a request that the live engine refuses.
    fn from(e: LiveError) -> Self {
        match e {
            LiveError::DuplicateId(_)
            | LiveError::UnknownId(_)
            | LiveError::Closed(_)
            | LiveError::Open(_)
            | LiveError::BadCoordinates { .. }
            | LiveError::BadStation { .. } => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    /// 500: the blocking work panicked or was cancelled.
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("worker failed: {e}"))
    }
}

impl From<TileError> for ApiError {
    /// 500: a vector tile failed to encode (never an empty tile in its place).
    fn from(e: TileError) -> Self {
        ApiError::internal(e.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    /// 500: JSON the server made would not serialise or read back. (A client's body is read by
    /// the handlers' own 400 paths, never through this.)
    fn from(e: serde_json::Error) -> Self {
        ApiError::internal(format!("JSON: {e}"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.description)
    }
}

impl std::error::Error for ApiError {}

/// The cause of a 500, carried from [`ApiError::into_response`] to [`request_id`] (which logs it
/// and never sends it).
#[derive(Debug, Clone)]
struct InternalCause(String);

fn json_error(status: StatusCode, code: &str, description: &str) -> Response {
    let body = json!({ "code": code, "description": description }).to_string();
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            // The body is made generic by `request_id`; until then it says nothing either.
            let mut r = json_error(self.status, self.code, "internal error");
            r.extensions_mut().insert(InternalCause(self.description));
            return r;
        }
        let body = json!({ "code": self.code, "description": self.description }).to_string();
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gridcover\""));
        }
        r
    }
}

/// A new request id: 8 hex digits drawn once per process, a dash, and a counter
/// (`3fa9c2e1-42`): unique within a run, and across restarts with near certainty.
pub fn next_request_id() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        // Without randomness the ids are still unique within the run.
        let _ = getrandom::fill(&mut b);
        u32::from_le_bytes(b)
    });
    format!("{prefix:08x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The layer (`axum::middleware::from_fn`) that names every request: it sets `x-request-id`
/// on the response; for a 500 it logs the cause with the id and replaces the body with the
/// generic one naming the id; any other error not already JSON (made below the handlers) gets
/// the JSON error body too.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = next_request_id();
    // Kept for the log line of a 500 (a `Uri` clone shares its bytes).
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut r = next.run(req).await;
    if r.status() == StatusCode::INTERNAL_SERVER_ERROR {
        let cause = r.extensions_mut().remove::<InternalCause>().map_or_else(|| "(no cause given)".into(), |c| c.0);
        tracing::error!(request_id = %id, %method, path = uri.path(), "500: {cause}");
        let mut generic =
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "ServerError", &format!("internal error; request id {id}"));
        std::mem::swap(generic.headers_mut(), r.headers_mut());
        generic.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        generic.headers_mut().remove(header::CONTENT_LENGTH);
        r = generic;
    } else if (r.status().is_client_error() || r.status().is_server_error())
        && r.headers().get(header::CONTENT_TYPE).is_none_or(|v| !v.as_bytes().starts_with(b"application/json"))
    {
        // An error made below the handlers (the router's 405, the body limit's 413, the
        // timeout's 503, a path that is not UTF-8): the same JSON shape as every other error.
        let status = r.status();
        let code = match status {
            StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
            StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLarge",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
            StatusCode::NOT_FOUND => "NotFound",
            _ if status.is_server_error() => "ServerError",
            _ => "InvalidParameterValue",
        };
        let text = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("error"));
        let mut json = json_error(status, code, &text);
        std::mem::swap(json.headers_mut(), r.headers_mut());
        json.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        json.headers_mut().remove(header::CONTENT_LENGTH);
        r = json;
    }
    if let Ok(v) = HeaderValue::try_from(id) {
        r.headers_mut().insert(REQUEST_ID, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_and_header_safe() {
        let a = next_request_id();
        let b = next_request_id();
        assert_ne!(a, b);
        assert!(HeaderValue::from_str(&a).is_ok());
        assert_eq!(a.split_once('-').map(|(p, _)| p.len()), Some(8), "{a}");
    }

    #[test]
    fn a_500_does_not_carry_its_cause_in_the_body() {
        let r = ApiError::internal("SQLite said: disk I/O error at /secret/path").into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            r.extensions().get::<InternalCause>().map(|c| c.0.as_str()),
            Some("SQLite said: disk I/O error at /secret/path")
        );
        let r = ApiError::bad_request("limit must be a number").into_response();
        assert!(r.extensions().get::<InternalCause>().is_none());
    }

    fn answer(e: impl Into<ApiError>) -> (u16, &'static str, String) {
        let e = e.into();
        (e.status.as_u16(), e.code, e.description)
    }

    fn db_error(code: std::ffi::c_int) -> StoreError {
        StoreError::Db {
            context: "inserting a visit".into(),
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        }
    }

    #[test]
    fn store_errors_map_to_their_statuses() {
        let nf = StoreError::NotFound { what: "household", id: "H1".into() };
        assert_eq!(answer(nf), (404, "NotFound", "household H1 not found".into()));
        let ex = StoreError::Exists { what: "station", id: "S1".into() };
        assert_eq!(answer(ex), (409, "Exists", "station S1 exists already".into()));
        let c = StoreError::Conflict { what: "station", id: "S1".into(), expected: 1, current: 2 };
        let (st, code, d) = answer(c);
        assert_eq!((st, code), (409, "Conflict"));
        assert!(d.contains("version 2, not 1"), "{d}");
        assert_eq!(answer(StoreError::Invalid("bad date".into())), (400, "InvalidParameterValue", "bad date".into()));
        // The disk full: 507, and the client is told nothing was saved.
        let full = db_error(rusqlite::ffi::SQLITE_FULL);
        assert!(full.is_disk_full());
        let (st, code, d) = answer(full);
        assert_eq!((st, code), (507, "StoreFull"));
        assert!(d.starts_with("not saved: "), "{d}");
        // Every other failure of the store is the server's.
        let others = [
            db_error(rusqlite::ffi::SQLITE_IOERR),
            StoreError::Open { path: "/d/gridcover.sqlite".into(), message: "read-only".into() },
            StoreError::TooNew { path: "/d/gridcover.sqlite".into(), found: 9, known: 3 },
            StoreError::NoActiveToken { name: "A".into(), known: true },
            StoreError::Ingest(crate::ingest::IngestError::MissingInput {
                dir: "/d".into(),
                what: "households",
                expected: vec!["households.csv".into()],
            }),
        ];
        for e in others {
            let shown = e.to_string();
            let (st, code, d) = answer(e);
            assert_eq!((st, code), (500, "ServerError"), "{shown}");
            assert_eq!(d, shown, "the cause is kept for the log");
        }
    }

    #[test]
    fn plan_errors_map_to_their_statuses() {
        let (st, code, d) = answer(PlanError::OutOfTime { seconds: 20.0 });
        assert_eq!((st, code), (503, "OutOfTime"));
        assert!(d.starts_with("plan request: "), "{d}");
        let (st, code, _) = answer(PlanError::TooLarge { what: "pairs", estimate: 10, limit: 5 });
        assert_eq!((st, code), (413, "TooLarge"));
        let refused = [
            PlanError::BadRadius(-1.0),
            PlanError::OutOfRange { field: "new", value: "0".into(), bound: "1 to 5000".into() },
            PlanError::MissingK("mclp"),
            PlanError::KTooLarge { k: 9, candidates: 3 },
            PlanError::UnknownCode("99".into()),
            PlanError::NoCandidates("none".into()),
            PlanError::UnknownSite { what: "required", id: "X".into() },
            PlanError::Conflict("X is required and excluded".into()),
            PlanError::BadTarget(2.0),
            PlanError::BadOption("x".into()),
            PlanError::BadCandidateFile { file: "c.csv".into(), row: 2, reason: "no lon".into() },
        ];
        for e in refused {
            let shown = format!("plan request: {e}");
            assert_eq!(answer(e), (400, "InvalidParameterValue", shown));
        }
    }

    #[test]
    fn scenario_and_live_errors_map_to_their_statuses() {
        let (st, code, d) = answer(ScenarioError::OutOfTime { seconds: 2.0 });
        assert_eq!((st, code), (503, "OutOfTime"));
        assert!(d.starts_with("scenario request: "), "{d}");
        let oor = ScenarioError::OutOfRange { field: "add[0].radius_m".into(), value: "1".into(), bound: "x".into() };
        let shown = format!("scenario request: {oor}");
        assert_eq!(answer(oor), (400, "InvalidParameterValue", shown));
        let edit = ScenarioError::Edit(LiveError::UnknownId("S9".into()));
        assert_eq!(answer(edit), (400, "InvalidParameterValue", "scenario request: no station has id S9".into()));
        let refused = [
            LiveError::DuplicateId("S1".into()),
            LiveError::UnknownId("S1".into()),
            LiveError::Closed("S1".into()),
            LiveError::Open("S1".into()),
            LiveError::BadCoordinates { id: "S1".into(), lon: 200.0, lat: 0.0 },
            LiveError::BadStation { id: "S1".into(), reason: "empty name".into() },
        ];
        for e in refused {
            let shown = e.to_string();
            assert_eq!(answer(e), (400, "InvalidParameterValue", shown));
        }
    }

    #[tokio::test]
    async fn a_failed_worker_and_bad_json_are_500s() {
        let panicked = tokio::task::spawn_blocking(|| panic!("boom")).await.unwrap_err();
        let (st, code, d) = answer(panicked);
        assert_eq!((st, code), (500, "ServerError"));
        assert!(d.starts_with("worker failed"), "{d}");
        let bad = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let (st, code, _) = answer(bad);
        assert_eq!((st, code), (500, "ServerError"));
    }

    #[test]
    fn a_tile_that_fails_to_encode_is_a_500_naming_the_tile() {
        let e = TileError {
            layer: super::super::tiles::Layer::Stations,
            tile: super::super::geom::TileId { z: 3, x: 6, y: 2 },
            source: mvt::Error::WrongExtent(),
        };
        let (st, code, d) = answer(e);
        assert_eq!((st, code), (500, "ServerError"));
        assert_eq!(d, "the stations tile 3/6/2 could not be encoded: Wrong layer extent");
        // Through the response: the cause is kept for the log, never in the body.
        let e = TileError {
            layer: super::super::tiles::Layer::Grids,
            tile: super::super::geom::TileId { z: 9, x: 1, y: 1 },
            source: mvt::Error::InvalidValue(),
        };
        let r = ApiError::from(e).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r.extensions().get::<InternalCause>().is_some_and(|c| c.0.contains("grids tile 9/1/1")));
    }
}
