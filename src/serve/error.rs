//! Errors of the API as responses: a status and the JSON body `{"code", "description"}`
//! (the OGC API exception shape), and the request ids.
//!
//! Every response carries an `x-request-id` header, made by [`request_id`] (one layer around
//! the whole router). A 500 never shows its cause: its body is
//! `{"code": "ServerError", "description": "internal error; request id ID"}`, and the cause is
//! logged on stderr (`tracing`, level ERROR) with that id, the method and the path (never the
//! query, which may hold anything a client typed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
}
