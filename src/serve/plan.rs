//! Planning endpoints (planner role): `POST /api/plan` runs the siting planner
//! ([`crate::plan::solve`]) on the served data and returns the chosen sites and the coverage
//! change of every unit they touch.
//!
//! The body is a JSON [`PlanRequest`] (e.g. `{"problem": "mclp", "level": "village", "new": 5,
//! "radius_m": 2000, "within": "620102"}`); an unknown field, a bad value or a request the
//! planner refuses is a 400 with the planner's reason. The answer is the [`PlanResult`](crate::plan::PlanResult) as JSON:
//! `sites` (rank, id, name, lon/lat, newly covered veterans, admin codes), totals before and
//! after, and `units` (every unit whose coverage changes: veterans, covered before and after,
//! shares, mean distances, new sites). No household's identity is in it.
//!
//! `POST /api/scenario` (planners) answers a what-if without changing anything: stations to open
//! (`add`: `id` optional, `level`, `lon`, `lat`, optional `name`, `code` of the served unit — else
//! the unit of that level containing the point —, `demonstration`, `mobile`, `radius_m`) and to
//! close (`remove`: station ids; one given twice is closed once). It runs
//! [`crate::analysis::scenario::scenario_within`] on a private copy of the planner's engine
//! and returns the stations with the households and veterans each brings or takes, totals before and after, and every changed unit's figures before
//! and after (only those of `level` and under `code`, an admin-code prefix, when the body gives
//! them: the viewer asks for the units of the level and area on screen; totals and
//! `changed_units` always count everything). Households appear only as counts
//! (`households_gained`, `households_lost`): they are personal data, not a planner's.
//!
//! # Bounds, budgets, admission
//! Both bodies are checked against [`Limits::bounds`](super::Limits::bounds) by the library's
//! one check ([`crate::plan::Bounds::check_plan`], [`crate::analysis::scenario::validate`]):
//! an input out of range is a 400 naming the field and the bound; a plan whose instance would
//! hold more than `max_pairs` household × site pairs is a 413. Both run through
//! `budget::expensive`: off the async threads, at most 2 per user and 4 in all at once (429
//! with `Retry-After`), under a time budget (plans 20 s, what-ifs 2 s by default) that stops
//! the work and answers 503. Neither takes the served world's lock: both work on the
//! planner's engine ([`super::Planner`]), a plan on a snapshot, a what-if on its own copy.
//!
//! **Disclosure.** The planner's engine holds the served stations and boundaries over the
//! k-anonymous demand of [`crate::privacy::demand_dataset`] — one point per part of a group,
//! at least `k` households of whole cells at the mean of their cells' centres —, never the
//! households. Every count either answers, and every difference of two answers, is a sum of
//! whole parts. The policy also bounds the
//! inputs ([`crate::privacy::Policy::plan_request`], [`crate::privacy::Policy::whatif_radius`]):
//! H3 candidates no finer than its cells (resolution 8), and radii of at least 500 m.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::auth::{Auth, Role};
use super::budget;
use super::error::ApiError;
use super::AppState;
use crate::analysis::scenario::{scenario_within, validate};
use crate::model::{Level, StationRow, NO_UNIT};
use crate::plan::{solve_within, Budget, PlanRequest};

/// The planning routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/plan", post(plan)).route("/api/scenario", post(scenario))
}

/// A station to open in a what-if scenario.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteBody {
    id: Option<String>,
    #[serde(default)]
    name: String,
    level: Level,
    lon: f64,
    lat: f64,
    code: Option<String>,
    #[serde(default)]
    demonstration: bool,
    #[serde(default)]
    mobile: bool,
    radius_m: Option<f64>,
}

/// Body of `POST /api/scenario`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioBody {
    #[serde(default)]
    add: Vec<SiteBody>,
    #[serde(default)]
    remove: Vec<String>,
    /// Only the changed units of this level are listed (all levels without it).
    level: Option<Level>,
    /// Only the changed units whose code starts with this are listed (e.g. the unit drilled into).
    code: Option<String>,
}

/// The JSON body of a planning request, or the error naming the request (`what`) and the reason:
/// 413 for a body over the limit, else 400.
fn request<T>(body: Result<Json<T>, JsonRejection>, what: &str) -> Result<T, ApiError> {
    body.map(|Json(t)| t).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(e.status(), "PayloadTooLarge", format!("{what} request: {}", e.body_text()))
        } else {
            ApiError::bad_request(format!("{what} request: {}", e.body_text()))
        }
    })
}

async fn scenario(
    State(s): State<AppState>,
    Auth(u): Auth,
    body: Result<Json<ScenarioBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    if u.role != Role::Planner {
        return Err(ApiError::forbidden("what-if scenarios are for planners"));
    }
    let req = request(body, "scenario")?;
    if req.add.is_empty() && req.remove.is_empty() {
        return Err(ApiError::bad_request("scenario request: give stations to `add` or ids to `remove`"));
    }
    let code = req
        .code
        .as_deref()
        .map(super::features::Filter::parse_code)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("scenario request: code: {e}")))?;
    let level = req.level;
    let bounds = s.limits().bounds.clone();
    // Every station to open as a row (its unit found below), checked with the removals against
    // the bounds before any lock is taken.
    let mut adds: Vec<StationRow> = req
        .add
        .iter()
        .enumerate()
        .map(|(i, a)| StationRow {
            id: a.id.clone().unwrap_or_else(|| format!("scenario-{}", i + 1)),
            name: a.name.clone(),
            level: a.level,
            unit: NO_UNIT,
            lon: a.lon,
            lat: a.lat,
            demonstration: a.demonstration,
            mobile: a.mobile,
            radius_m: a.radius_m,
        })
        .collect();
    let removes = validate(&adds, &req.remove, &bounds)?;
    let st = s.clone();
    let work = move |budget: &Budget| -> Result<serde_json::Value, ApiError> {
        // A private copy of the planner's engine (k-anonymous demand): no lock is held while
        // the what-if runs, and the served world is never touched.
        let mut engine = crate::analysis::Live::clone(&st.inner.planner.snapshot());
        {
            let w = &engine;
            for (i, (a, row)) in req.add.iter().zip(adds.iter_mut()).enumerate() {
                let bad = |m: String| ApiError::bad_request(format!("scenario request: add[{i}]: {m}"));
                let ds = w.dataset();
                ds.privacy.whatif_radius(ds.standard.station_radius_m(a.level, a.mobile, a.radius_m)).map_err(bad)?;
                row.unit = w.served_unit(a.level, a.lon, a.lat, a.code.as_deref()).map_err(bad)?;
            }
        }
        let mut r = scenario_within(&mut engine, &adds, &removes, &bounds, budget)?;
        r.units.retain(|u| level.is_none_or(|l| u.level == l) && code.as_deref().is_none_or(|c| u.code.starts_with(c)));
        // Counted in households (each demand point stands for its group), never listed.
        let (gained, lost) = crate::privacy::scenario_in_households(&mut r, &engine, st.inner.planner.sizes());
        let mut v = serde_json::to_value(&r)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("households");
            o.insert("households_gained".into(), gained.into());
            o.insert("households_lost".into(), lost.into());
        }
        Ok(v)
    };
    let time = s.limits().scenario_time;
    let res = match budget::expensive(&s, &u, "scenario", time, work).await {
        Ok(v) => v,
        Err(refused) => return Ok(refused),
    };
    let mut r = res.to_string().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

async fn plan(
    State(s): State<AppState>,
    Auth(u): Auth,
    body: Result<Json<PlanRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    if u.role != Role::Planner {
        return Err(ApiError::forbidden("planning is for planners"));
    }
    let mut req = request(body, "plan")?;
    let bounds = s.limits().bounds.clone();
    let st = s.clone();
    let work = move |budget: &Budget| -> Result<_, ApiError> {
        // A snapshot of the planner's engine (k-anonymous demand), held by no lock.
        let engine = st.inner.planner.snapshot();
        let ds = engine.dataset();
        // The general bounds first (they name the field's range), then the policy's.
        let radius = req.radius_m.unwrap_or_else(|| ds.standard.radius_m(req.level));
        bounds.check_plan(&req, radius)?;
        ds.privacy
            .plan_request(&mut req, &ds.standard)
            .map_err(|e| ApiError::bad_request(format!("plan request: {e}")))?;
        solve_within(ds, engine.analysis(), &req, &bounds, budget, &mut |_, _, _| {}).map_err(ApiError::from)
    };
    let res = match budget::expensive(&s, &u, "plan", s.limits().plan_time, work).await {
        Ok(r) => r,
        Err(refused) => return Ok(refused),
    };
    let body = serde_json::to_string(&res)?;
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}
