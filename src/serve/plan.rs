//! Planning endpoints (planner role): `POST /api/plan` runs the siting planner
//! ([`crate::plan::solve`]) on the served data and returns the chosen sites and the coverage
//! change of every unit they touch.
//!
//! The body is a JSON [`PlanRequest`] (e.g. `{"problem": "mclp", "level": "village", "new": 5,
//! "radius_m": 2000, "within": "620102"}`); an unknown field, a bad value or a request the
//! planner refuses is a 400 with the planner's reason. The answer is the [`PlanResult`] as JSON:
//! `sites` (rank, id, name, lon/lat, newly covered veterans, admin codes), totals before and
//! after, and `units` (every unit whose coverage changes: veterans, covered before and after,
//! shares, mean distances, new sites). No household's identity is in it.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::auth::{Auth, Role};
use super::error::ApiError;
use super::{blocking, AppState};
use crate::plan::{solve, PlanRequest};

/// The planning routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/plan", post(plan))
}

async fn plan(
    State(s): State<AppState>,
    Auth(u): Auth,
    body: Result<Json<PlanRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    if u.role != Role::Planner {
        return Err(ApiError::forbidden("planning is for planners"));
    }
    let Json(req) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(e.status(), "PayloadTooLarge", format!("plan request: {}", e.body_text()))
        } else {
            ApiError::bad_request(format!("plan request: {}", e.body_text()))
        }
    })?;
    let res = blocking(move || {
        let w = s.world();
        solve(&w.ds, &w.an, &req).map_err(|e| ApiError::bad_request(format!("plan request: {e}")))
    })
    .await?;
    let body = serde_json::to_string(&res).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}
