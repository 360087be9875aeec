//! The API's definition: OpenAPI 3.0, one JSON document (`src/serve/openapi.json`, embedded at
//! build time), served at `GET /api/openapi` and linked from the landing page as
//! `service-desc` (OGC API - Features Part 1 Core requires an API definition; clients such as
//! QGIS and OWSLib look for it there).
//!
//! It is served **without authentication**: a client discovers the API, and that it needs a
//! bearer token, before it has one. It says nothing about the data. Media type
//! [`MEDIA_TYPE`]; `f=json` answers the same bytes as `application/json`. Its `info.version`
//! is this crate's version.
//!
//! The definition covers every route of [`super::router`] but the viewer's static files, with
//! every status each can answer and the error body `{"code", "description"}`. Response bodies
//! that carry figures are declared open (members may be added, numbers may be null: figures
//! of small groups are withheld). `tests/it/openapi_fuzz.rs` checks that it lists the router's
//! routes and runs schemathesis against the served definition.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;

/// Media type of the definition.
pub const MEDIA_TYPE: &str = "application/vnd.oai.openapi+json;version=3.0";

/// The definition as written in `openapi.json`.
pub const SOURCE: &str = include_str!("openapi.json");

/// The OGC conformance class of an OpenAPI 3.0 definition.
pub const CONFORMANCE_OAS30: &str = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30";

static SERVED: LazyLock<Result<Bytes, String>> = LazyLock::new(|| {
    let mut v: Value = serde_json::from_str(SOURCE).map_err(|e| format!("openapi.json is not JSON: {e}"))?;
    v["info"]["version"] = Value::String(env!("CARGO_PKG_VERSION").to_string());
    Ok(Bytes::from(v.to_string()))
});

/// The definition as served (compact JSON, `info.version` = the crate's version).
///
/// # Errors
/// Never with the embedded file (a unit test parses it); a description otherwise.
pub fn definition() -> Result<Bytes, ApiError> {
    SERVED.clone().map_err(ApiError::internal)
}

/// The answer to `GET /api/openapi`, as `application/json` when `json` is true.
pub(crate) fn response(json: bool) -> Result<Response, ApiError> {
    let mut r = definition()?.into_response();
    let ty = if json { "application/json" } else { MEDIA_TYPE };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_parses_and_carries_the_crate_version() {
        let b = definition().unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["openapi"].as_str().unwrap().get(..4), Some("3.0."));
        assert_eq!(v["info"]["version"], env!("CARGO_PKG_VERSION"));
        // The two public operations say so; every other one inherits the bearer requirement.
        assert_eq!(v["security"], serde_json::json!([{"bearer": []}]));
        assert_eq!(v["paths"]["/healthz"]["get"]["security"], serde_json::json!([]));
        assert_eq!(v["paths"]["/api/openapi"]["get"]["security"], serde_json::json!([]));
    }

    #[test]
    fn every_reference_resolves() {
        let v: Value = serde_json::from_str(SOURCE).unwrap();
        fn walk(v: &Value, root: &Value, bad: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let target = r.strip_prefix('#').and_then(|p| root.pointer(p));
                        if target.is_none() {
                            bad.push(r.clone());
                        }
                    }
                    m.values().for_each(|x| walk(x, root, bad));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, root, bad)),
                _ => {}
            }
        }
        let mut bad = Vec::new();
        walk(&v, &v, &mut bad);
        assert!(bad.is_empty(), "unresolved $ref: {bad:?}");
    }
}
