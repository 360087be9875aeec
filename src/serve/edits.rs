//! Live edits through the server, each durable before it is acknowledged (see [`crate::store`]).
//!
//! - `GET /api/households/{id}`: the household's feature with its `status` and an `ETag`;
//! - `PATCH /api/households/{id}`: a JSON merge patch (RFC 7396) of its `status`;
//! - `POST` / `GET /api/households/{id}/visits`: record a visit (201) of a `kind` (`home` by
//!   default), with the needs raised in it / list them;
//! - `POST` / `GET /api/households/{id}/needs`: raise a need (201) / list them with their changes;
//! - `GET /api/households/{id}/history`: every change of the household (needs included);
//!   (all of these: the grid worker of the household's grid only; anyone else gets 404 for another
//!   grid's household, 403 for leaders and planners);
//! - `PATCH /api/needs/{id}`: change a need's status; its household decides who may, as above
//!   (another grid's need is a 404 exactly like a missing one, naming neither household nor grid);
//! - `POST /api/stations`, `PATCH /api/stations/{id}` (move, rename, demonstration flag),
//!   `DELETE /api/stations/{id}` (close): planners only;
//! - `GET /api/stations/{id}/history`: leaders and planners.
//!
//! Writes send `If-Match: "VERSION"` optionally (the `ETag` of a read); when sent it must be
//! the record's version, else 409 Conflict. A 2xx answer is sent only after the store's commit
//! (fsynced). A station edit then updates the live engine inside the served world
//! ([`World::edit`], [`crate::analysis::Live`]: only the households and units near the station
//! are recomputed, nothing is copied), and the caches of tiles and pages are cleared, so that
//! coverage figures, layers and tiles show the change at once. A visit or a need updates the
//! service records the server holds in memory (see [`super::effective`]; under one write
//! order, so memory follows the store) and clears the same caches: the effective figures of
//! the next report, page and tile include it.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use serde_json::{json, Value};

use super::auth::{Auth, Role, User};
use super::error::ApiError;
use super::features::{find, own_households, Collection};
use super::{blocking, AppState, World};
use crate::analysis::{Live, StationChange};
use crate::model::StationRow;
use crate::privacy::groups;
use crate::store::{NeedPatch, NewNeed, NewStation, NewVisit, StationPatch, StationRecord, Store, StoreError};

/// The store behind the edit endpoints.
pub struct Edits {
    /// The store.
    pub store: Store,
    /// Orders station edits and what-if questions: each commits to the store and then applies
    /// to the served world before the next begins, so that the world follows the store's order.
    pub order: Mutex<()>,
}

impl Edits {
    /// Holds the order of station edits (see [`Edits::order`]).
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.order.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Household statuses and versions held in the served world (household index → record).
pub type Statuses = HashMap<u32, (Value, i64)>;

/// The routes of the edits.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/households/{id}", get(household_get).patch(household_patch))
        .route("/api/households/{id}/visits", post(visit_post).get(visits_get))
        .route("/api/households/{id}/needs", post(need_post).get(needs_get))
        .route("/api/needs/{id}", patch(need_patch))
        .route("/api/households/{id}/history", get(household_history))
        .route("/api/stations", post(station_post))
        .route("/api/stations/{id}", patch(station_patch).delete(station_delete))
        .route("/api/stations/{id}/history", get(station_history))
}

/// Runs `f` off the async threads with the store behind the edits: the one place that answers
/// 501 when the server runs without one (after the handler's own refusals: 403, 400).
pub(crate) async fn with_store<T: Send + 'static>(
    s: AppState,
    f: impl FnOnce(&AppState, &Edits) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(move || {
        let e = s.inner.edits.as_ref().ok_or_else(|| {
            ApiError::new(StatusCode::NOT_IMPLEMENTED, "NoStore", "this server runs without a store: edits are off")
        })?;
        f(&s, e)
    })
    .await
}

/// As [`with_store`], holding the order of station edits ([`Edits::order`]) while `f` runs.
async fn station_edit<T: Send + 'static>(
    s: AppState,
    f: impl FnOnce(&AppState, &Edits) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    with_store(s, |s, e| {
        let _order = e.lock();
        f(s, e)
    })
    .await
}

/// The version an `If-Match` header asks for: `"3"`, `W/"3"` or `3`; `*` and none: any.
fn if_match(h: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = h.get(header::IF_MATCH) else { return Ok(None) };
    let s = v.to_str().map_err(|_| ApiError::bad_request("If-Match is not ASCII"))?.trim();
    if s == "*" {
        return Ok(None);
    }
    let t = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    t.parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("If-Match {s:?} is not an ETag of this server (e.g. \"3\")")))
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

fn json_response(status: StatusCode, body: Value, version: Option<i64>) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(v) = version {
        r.headers_mut().insert(header::ETAG, etag(v));
    }
    r
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not a valid {what}: {e}")))
}

/// The index of household `id` if `u` is the grid worker of its grid; else the refusal
/// (403 for leaders and planners, 404 — as for a household that does not exist — for a grid
/// worker of another grid).
fn own_household(w: &World, u: &User, id: &str) -> Result<u32, ApiError> {
    need_grid_worker(u)?;
    own_households(w, u)
        .into_iter()
        .find(|&h| w.ds().households.id[h as usize] == *id)
        .ok_or_else(|| ApiError::not_found(format!("no household {id:?} in your grids")))
}

/// 403 for anyone but a grid worker (household records are theirs alone).
fn need_grid_worker(u: &User) -> Result<(), ApiError> {
    if u.role == Role::GridWorker {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the grid worker of a household's grid sees or edits it"))
    }
}

fn need_planner(u: &User) -> Result<(), ApiError> {
    if u.role == Role::Planner {
        Ok(())
    } else {
        Err(ApiError::forbidden("only planners add, move or close stations"))
    }
}

/// Runs `f` off the async threads on household `id` of the caller's own grid (`f` gets its
/// index); the refusals are [`own_household`]'s. A read (`read_action` given) is then written
/// to the audit log before anything is answered; a write (`None`) is audited by the store in
/// the write's own transaction ([`Store::patch_household_status`], [`Store::add_visit`]).
async fn on_own_household(
    s: AppState,
    u: User,
    id: String,
    read_action: Option<&'static str>,
    f: impl FnOnce(&AppState, &Edits, &User, &str, u32) -> Result<Response, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    with_store(s, move |s, e| {
        let idx = own_household(&s.world(), &u, &id)?;
        let r = f(s, e, &u, &id, idx)?;
        if let Some(action) = read_action {
            s.audit(&u, action, &id)?;
        }
        Ok(r)
    })
    .await
}

async fn household_get(State(s): State<AppState>, Auth(u): Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    on_own_household(s, u, id, Some("households.read"), |s, e, u, id, _| {
        let w = s.world();
        let f = find(&w, &w.view(u), None, s.name_source(), u, Collection::Households, id)?;
        drop(w);
        let rec = e.store.household(id)?.ok_or_else(|| ApiError::not_found(format!("no household {id:?}")))?;
        let mut v: Value = serde_json::from_str(&f)?;
        v["properties"]["status"] = rec.status;
        v["properties"]["version"] = json!(rec.version);
        let mut r = json_response(StatusCode::OK, v, Some(rec.version));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(super::ogc::GEOJSON));
        Ok(r)
    })
    .await
}

async fn household_patch(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let want = if_match(&h)?;
    let patch: Value = parse_body(&body, "JSON merge patch")?;
    on_own_household(s, u, id, None, move |s, e, u, id, idx| {
        let rec = e.store.patch_household_status(u, id, &patch, want)?;
        {
            let mut w = s.inner.world.write().unwrap_or_else(|p| p.into_inner());
            let newer = w.statuses.get(&idx).is_none_or(|(_, v)| *v < rec.version);
            if newer {
                w.statuses.insert(idx, (rec.status.clone(), rec.version));
            }
        }
        Ok(json_response(
            StatusCode::OK,
            json!({"id": rec.id, "status": rec.status, "version": rec.version}),
            Some(rec.version),
        ))
    })
    .await
}

async fn visit_post(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let visit: NewVisit = parse_body(
        &body,
        "visit ({\"date\": \"YYYY-MM-DD\", \"kind\": \"home\", \"note\": \"…\", \"needs\": [{\"category\": \"medical\", \"note\": \"…\"}]})",
    )?;
    on_own_household(s, u, id, None, move |s, e, u, id, idx| {
        let svc = &s.inner.service;
        let _order = svc.write_order();
        let v = e.store.add_visit(u, id, &visit)?;
        if let Ok(day) = crate::model::service::parse_day(&v.date) {
            svc.contact(idx, day);
            for (&need, n) in v.needs.iter().zip(&visit.needs) {
                svc.need(need, raised(idx, n.category, day));
            }
        }
        s.service_written();
        Ok(created(json!(v), None, &format!("/api/households/{}/visits", super::ogc::encode(id))))
    })
    .await
}

/// A need of household `h` raised on `day`, as the records in memory hold it.
fn raised(h: u32, category: crate::model::NeedCategory, day: crate::model::Day) -> crate::model::NeedSpan {
    crate::model::NeedSpan { household: h, category, changes: vec![(day, crate::model::NeedStatus::Open)] }
}

/// 201 with `body`, its version as `ETag` when it has one, and `Location: location`.
fn created(body: Value, version: Option<i64>, location: &str) -> Response {
    let mut r = json_response(StatusCode::CREATED, body, version);
    if let Ok(loc) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

async fn visits_get(State(s): State<AppState>, Auth(u): Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    on_own_household(s, u, id, Some("households.visits"), |_, e, _, id, _| {
        let list = e.store.visits(id)?;
        Ok(json_response(StatusCode::OK, json!({"household": id, "visits": list}), None))
    })
    .await
}

async fn need_post(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let need: NewNeed =
        parse_body(&body, "need ({\"category\": \"medical\", \"note\": \"…\", \"date\": \"YYYY-MM-DD\"})")?;
    on_own_household(s, u, id, None, move |s, e, u, id, idx| {
        let svc = &s.inner.service;
        let _order = svc.write_order();
        let n = e.store.add_need(u, id, &need)?;
        if let Ok(day) = crate::model::service::parse_day(&n.opened) {
            svc.need(n.id, raised(idx, n.category, day));
        }
        s.service_written();
        Ok(created(json!(n), Some(n.version), &format!("/api/households/{}/needs", super::ogc::encode(id))))
    })
    .await
}

async fn needs_get(State(s): State<AppState>, Auth(u): Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    on_own_household(s, u, id, Some("households.needs"), |_, e, _, id, _| {
        let list = e.store.needs(id)?;
        Ok(json_response(StatusCode::OK, json!({"household": id, "needs": list}), None))
    })
    .await
}

/// As [`on_own_household`] for need `id`: its household decides (403 for leaders and
/// planners; 404 for a need of another grid's household, exactly as for a need that does not
/// exist, naming neither). `f` gets the need's id. Writes only: the store audits them in the
/// write's transaction.
async fn on_own_need(
    s: AppState,
    u: User,
    id: String,
    f: impl FnOnce(&Edits, &User, i64) -> Result<Response, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    need_grid_worker(&u)?;
    with_store(s, move |s, e| {
        let missing = || ApiError::not_found(format!("no need {id:?} in your grids"));
        let need: i64 = id.parse().map_err(|_| missing())?;
        let household = e.store.need_household(need)?.ok_or_else(missing)?;
        own_household(&s.world(), &u, &household).map_err(|_| missing())?;
        f(e, &u, need)
    })
    .await
}

async fn need_patch(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let want = if_match(&h)?;
    let p: NeedPatch = parse_body(
        &body,
        "need change ({\"status\": \"open\" | \"in_progress\" | \"resolved\", \"note\": \"…\", \"date\": \"YYYY-MM-DD\"})",
    )?;
    let state = s.clone();
    on_own_need(s, u, id, move |e, u, need| {
        let svc = &state.inner.service;
        let _order = svc.write_order();
        let n = e.store.update_need(u, need, &p, want)?;
        if let Some(day) = n.changes.last().and_then(|c| crate::model::service::parse_day(&c.date).ok()) {
            svc.need_change(n.id, day, p.status);
        }
        state.service_written();
        let version = n.version;
        Ok(json_response(StatusCode::OK, json!(n), Some(version)))
    })
    .await
}

async fn household_history(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    on_own_household(s, u, id, Some("households.history"), |_, e, _, id, _| {
        let list = e.store.history("household", id)?;
        Ok(json_response(StatusCode::OK, json!({"household": id, "history": list}), None))
    })
    .await
}

async fn station_history(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if u.role == Role::GridWorker {
        return Err(ApiError::forbidden("station histories are for leaders and planners"));
    }
    with_store(s, move |_, e| {
        if e.store.station(&id)?.is_none() {
            return Err(ApiError::not_found(format!("no station {id:?}")));
        }
        let list = e.store.history("station", &id)?;
        Ok(json_response(StatusCode::OK, json!({"station": id, "history": list}), None))
    })
    .await
}

/// Applies a committed station edit to the served world (the engine's change, then the
/// name and demonstration flag of the stored record), then to the planner's engine, and
/// clears the caches of tiles and pages.
///
/// The store validated and committed the edit, so an engine that refuses it is the server's
/// failure, whatever the [`LiveError`](crate::analysis::LiveError): 500 here, not the 400 of
/// `From<LiveError>` (a what-if's stations, which nothing validated before).
fn apply<T>(
    s: &AppState,
    rec: &StationRecord,
    f: impl Fn(&mut Live) -> Result<T, crate::analysis::LiveError>,
) -> Result<T, ApiError> {
    let edit = |live: &mut Live| {
        let r = f(live)?;
        live.set_station_details(&rec.id, &rec.name, rec.demonstration)?;
        Ok(r)
    };
    let r = {
        let mut w = s.world_write();
        w.edit(edit)
    };
    // The planner's engine follows (its own lock; plans and what-ifs work on snapshots).
    let planned = s.inner.planner.edit(edit);
    s.invalidate();
    s.prebuild_later();
    if let Err(e) = planned {
        return Err(ApiError::internal(format!("saved, but the planner's engine refused it: {e}")));
    }
    r.map_err(|e: crate::analysis::LiveError| ApiError::internal(format!("saved, but the live engine refused it: {e}")))
}

/// What a station edit changed, as a planner may see it: the changed units, and the households
/// that gained or lost coverage as counts only when those are 0 or at least the disclosure
/// policy's `k` (else null: a station placed at one household's door does not say it is there).
fn change_json(w: &World, c: &StationChange) -> Value {
    let ds = w.ds();
    let count = |n: usize| if ds.privacy.group_ok(n as u64) { json!(n) } else { Value::Null };
    json!({
        "units": c.units.iter().map(|&u| ds.divisions.get(u).code.clone()).collect::<Vec<_>>(),
        "households_gained": count(c.gained.len()),
        "households_lost": count(c.lost.len()),
    })
}

async fn station_post(State(s): State<AppState>, Auth(u): Auth, body: Bytes) -> Result<Response, ApiError> {
    need_planner(&u)?;
    let new: NewStation = parse_body(&body, "station")?;
    station_edit(s, move |s, e| {
        new.validate(&s.world().ds().divisions)?;
        let rec = e.store.add_station(&u, &new)?;
        let unit =
            s.world().ds().divisions.find(&rec.code).ok_or_else(|| ApiError::internal("validated code vanished"))?;
        let row = StationRow {
            id: rec.id.clone(),
            name: rec.name.clone(),
            level: rec.level,
            unit,
            lon: rec.lon,
            lat: rec.lat,
            demonstration: rec.demonstration,
            mobile: rec.mobile,
            radius_m: rec.radius_m,
        };
        let change = apply(s, &rec, |live| live.add_station(row.clone()))?;
        let body = json!({"station": rec, "change": change_json(&s.world(), &change)});
        let mut r = json_response(StatusCode::CREATED, body, Some(rec.version));
        if let Ok(loc) =
            HeaderValue::from_str(&format!("/api/collections/stations/items/{}", super::ogc::encode(&rec.id)))
        {
            r.headers_mut().insert(header::LOCATION, loc);
        }
        Ok(r)
    })
    .await
}

async fn station_patch(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    need_planner(&u)?;
    let want = if_match(&h)?;
    let p: StationPatch = parse_body(&body, "station patch (name, lon, lat, demonstration)")?;
    if p.mobile.is_some() || p.radius_m.is_some() {
        return Err(ApiError::bad_request(
            "mobile and radius_m cannot be changed in place: close the station and add a new one",
        ));
    }
    station_edit(s, move |s, e| {
        let (before, after) = e.store.update_station(&u, &id, &p, want)?;
        let moved = (before.lon, before.lat) != (after.lon, after.lat);
        let change = apply(s, &after, |live| moved.then(|| live.move_station(&id, after.lon, after.lat)).transpose())?;
        let change = change.map(|c| change_json(&s.world(), &c));
        Ok(json_response(StatusCode::OK, json!({"station": after, "change": change}), Some(after.version)))
    })
    .await
}

async fn station_delete(
    State(s): State<AppState>,
    Auth(u): Auth,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    need_planner(&u)?;
    let want = if_match(&h)?;
    station_edit(s, move |s, e| {
        let (_, after) = e.store.close_station(&u, &id, want)?;
        let change = apply(s, &after, |live| live.remove_station(&id))?;
        Ok(json_response(
            StatusCode::OK,
            json!({"station": after, "change": change_json(&s.world(), &change)}),
            Some(after.version),
        ))
    })
    .await
}

/// The statuses of a store's households, by index in `ds` (those ever edited).
///
/// # Errors
/// A store error.
pub fn statuses(store: &Store, w: &World) -> Result<Statuses, StoreError> {
    let edited = store.edited_households()?;
    if edited.is_empty() {
        return Ok(Statuses::new());
    }
    let by_id: HashMap<&str, u32> = w.ds().households.id.iter().enumerate().map(|(i, id)| (id, i as u32)).collect();
    Ok(edited.into_iter().filter_map(|r| by_id.get(r.id.as_str()).map(|&i| (i, (r.status, r.version)))).collect())
}

/// The live engine of `ds` (the data set `store` gave), as [`Live::new`] makes it, with the
/// two parts of its assignment as kept beside the store for the same inputs
/// ([`Store::assignment_cache`]: the households' units and grids, their nearest stations level
/// by level); a part not kept is made, and kept while coverage, gaps and workload are found.
/// With it, the name of the start's step that says how much was kept ([`KEPT_WHOLE`],
/// [`KEPT_IN_PART`], [`KEPT_NONE`]).
pub fn live_from_store(store: &Store, ds: crate::model::Dataset) -> (Live, &'static str) {
    use crate::analysis::{assign, Assignment};
    let t = std::time::Instant::now();
    let (indexes, (cache, (located, nearest))) = rayon::join(
        || assign::Indexes::build(&ds),
        || {
            let cache = store.assignment_cache(&ds);
            let kept = cache.load(&ds);
            (cache, kept)
        },
    );
    let mut timings = vec![("index", t.elapsed().as_secs_f64())];
    let t = std::time::Instant::now();
    let levels_missing = nearest.iter().filter(|l| l.is_none()).count();
    let missing = (located.is_none(), levels_missing > 0);
    let step = match (located.is_none(), levels_missing) {
        (false, 0) => KEPT_WHOLE,
        (true, 5) => KEPT_NONE,
        _ => KEPT_IN_PART,
    };
    let located = located.unwrap_or_else(|| assign::locate(&ds, &indexes));
    let nearest = assign::nearest_with(&ds, &indexes, nearest);
    timings.push(("assign", t.elapsed().as_secs_f64()));
    let assignment = Assignment::from_parts(located, nearest);
    let (an, ()) = crate::analysis::analyze_assigned(&ds, indexes, assignment, timings, |_, a| cache.save(a, missing));
    (Live::from_analysis(ds, an), step)
}

/// The start's step of the live engine when its whole assignment was kept beside the store.
pub const KEPT_WHOLE: &str = "the live engine (the analysis, with the kept assignment)";
/// … when part of it was (the units and grids, or some levels' nearest stations).
pub const KEPT_IN_PART: &str = "the live engine (the analysis; the assignment kept in part, the rest made and kept)";
/// … when none of it was (a first start, other inputs, or a build whose assignment code differs).
pub const KEPT_NONE: &str = "the live engine (the analysis; the assignment made and kept)";

/// The state of a server with a store: the world from the store's data set through the live
/// engine, with the statuses.
///
/// # Errors
/// A store error.
pub fn state_with_store(
    store: Store,
    mut ds: crate::model::Dataset,
    limits: super::Limits,
    web_dir: Option<std::path::PathBuf>,
) -> Result<AppState, StoreError> {
    // Names and addresses are read from the store for each page that shows them
    // ([`super::features::NameSource`]): none is kept in memory (`gridcover serve` does not
    // even read them: [`Store::load_dataset_with`]).
    let n = ds.households.len();
    ds.households.name = crate::model::OptStrColumn::absent(n);
    ds.households.address = crate::model::OptStrColumn::absent(n);
    // The service records are read from the store beside the live engine and the world: much
    // of those is one core's work (the records, SQLite's and the cache file's), and neither
    // needs the records. The thread reads from a copy of the ids (about 22 bytes a household,
    // dropped once read), as the data set moves into the engine.
    let ids = ds.households.id.clone();
    // The households' cells of the privacy groups depend on their positions alone: kept
    // beside the store, found again only for new positions.
    let r = ds.privacy.cell_resolution;
    let hh = &ds.households;
    let cells = store.household_cells(hh, r, |c| groups::cells_of_resolution(c, r), || groups::household_cells(hh, r));
    let (live_in, mut world, world_in, records) = std::thread::scope(|s| {
        let records = s.spawn(|| super::effective::timed_read(&store, &ids));
        let t = std::time::Instant::now();
        let (live, step) = live_from_store(&store, ds);
        let live_in = (step, t.elapsed());
        let t = std::time::Instant::now();
        let world = World::from_live_with_cells(live, Some(cells));
        let world_in = t.elapsed();
        let records = records.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (live_in, world, world_in, records)
    });
    drop(ids);
    let t = std::time::Instant::now();
    world.statuses = statuses(&store, &world)?;
    let world_in = world_in + t.elapsed();
    let users: std::sync::Arc<dyn super::Users> = std::sync::Arc::new(store.clone());
    let edits = Some(Edits { store, order: Mutex::new(()) });
    let state = AppState::with_records(world, users, limits, web_dir, edits, Some(records));
    let later = state.start_steps();
    {
        let mut steps = state.inner.start_steps.lock().unwrap_or_else(|e| e.into_inner());
        steps.clear();
        steps.extend([live_in, ("the world (groups, indexes, statuses)", world_in)]);
        steps.extend(later);
    }
    Ok(state)
}
