//! `GET /api/report/effective`: effective coverage (有效覆盖) of the units of one level as of a
//! day — contacts and needs from the store — under the disclosure policy (leaders and planners).
//!
//! Parameters: `level` (default county), `code` (a prefix), `limit` (1 …, capped at the page
//! limit), `as_of` (`YYYY-MM-DD`, 1900–2200, default today UTC), `f` (`json`, default, or
//! `xlsx`: every unit of the level as an Excel sheet with Chinese headers and codes as text).
//!
//! **Disclosure.** Every figure belongs to a family of the policy ([`Family::of_column`]: the
//! contacted and overdue households split the unit's households; never contacted splits the
//! overdue; hardship overdue splits the hardship families; open needs and the needs of the
//! window are sensitive families) and is decided by [`Disclosure::compute_with_service`] on the
//! households' service facts of that day, with the same primary and complementary rules as the
//! coverage figures. A withheld figure is `null` (an empty cell in Excel) and its row carries
//! `withheld: true`; units whose contacted share is withheld come last, by code, so no rank
//! places them.
//!
//! **Cost.** The store's records are read once, when the server starts, and kept up to date
//! in memory by every visit and need written through the API (the write path knows what it
//! wrote: a contact added in place, a need added or changed), so no request reads the whole
//! store and none holds the world's lock while reading it. The figures and decisions of a day are kept for the
//! last [`VIEWS`] days asked (and a grid worker's decisions for the last [`WORKER_VIEWS`]);
//! a day is computed in parallel. All of it runs off the async threads.
//!
//! **As of.** A day before today is answered as of the end of its calendar month
//! ([`crate::privacy::as_of_day`]): the answer names the day it is as of.
//!
//! The same figures, as of today, are properties of the admin layers and the grids
//! ([`ServiceView`], [`service_view`]), each decided for the viewer.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::auth::{Auth, RoleExt, User};
use super::error::ApiError;
use super::{blocking, AppState};
use crate::analysis::effective::{effective_of, facts, Effective, ServiceFacts, ServiceFigures};
use crate::model::service::{format_day, parse_day, Day, NeedSpan, NeedStatus};
use crate::model::{ServiceRecords, StrColumn};
use crate::output::effective::{effective_fields, worst_contacted_first, EFFECTIVE_COLUMNS};
use crate::output::table::Table;
use crate::privacy::{Disclosure, Family};

/// Days whose figures are kept.
pub const VIEWS: usize = 8;

/// Grid workers' decisions kept (each is a few bytes per unit and grid).
pub const WORKER_VIEWS: usize = 32;

/// The effective figures served as properties of the admin layers and the grids, by name (as
/// [`crate::output::effective`] names them).
pub const LAYER_FIGURES: [&str; 8] = [
    "contacted_households",
    "contacted_share",
    "overdue_households",
    "hardship_overdue_households",
    "never_contacted_households",
    "open_needs",
    "open_needs_median_days",
    "needs_resolved_30d_share",
];

/// The figures of one day: every unit's, grid's and worker's, and every household's facts
/// (one byte each: 45 MB a day for the country).
pub(crate) struct DayFigures {
    pub(crate) eff: Effective,
    facts: Vec<ServiceFacts>,
}

/// The figures of one day and what one viewer may see of them.
#[derive(Clone)]
pub struct ServiceView {
    pub(crate) day: Arc<DayFigures>,
    pub(crate) disclosure: Arc<Disclosure>,
}

/// The value of one of [`LAYER_FIGURES`] in `f` (None: absent, e.g. a share of nothing).
fn figure(f: &ServiceFigures, name: &str) -> Option<f64> {
    let n = |x: u64| Some(x as f64);
    match name {
        "contacted_households" => n(f.contacted_households),
        "contacted_share" => rounded(f.contacted_share, 4),
        "overdue_households" => n(f.overdue_households),
        "hardship_overdue_households" => n(f.hardship_overdue_households),
        "never_contacted_households" => n(f.never_contacted_households),
        "open_needs" => n(f.open_needs),
        "open_needs_median_days" => rounded(f.open_needs_median_days, 1),
        "needs_resolved_30d_share" => rounded(f.needs_resolved_30d_share, 4),
        _ => None,
    }
}

/// Rounded as the report and its CSV round it ([`crate::output::Field::Real`]).
fn rounded(x: Option<f64>, digits: u8) -> Option<f64> {
    crate::output::Field::Real(x, digits).to_json().as_f64()
}

fn number(x: Option<f64>) -> Value {
    x.and_then(|x| {
        if x.fract() == 0.0 && x.abs() < 1e15 {
            Some(Value::from(x as i64))
        } else {
            serde_json::Number::from_f64(x).map(Value::Number)
        }
    })
    .unwrap_or(Value::Null)
}

impl ServiceView {
    /// The day the figures are as of.
    pub fn as_of(&self) -> Day {
        self.day.eff.as_of
    }

    /// Adds unit `u`'s figures to `m` (withheld ones `null`); true when one is withheld.
    pub fn unit_properties(&self, u: u32, m: &mut Map<String, Value>) -> bool {
        let Some(f) = self.day.eff.units.get(u as usize) else { return false };
        let mut any = false;
        for name in LAYER_FIGURES {
            let shown = self.disclosure.unit_column(name, u);
            any |= !shown;
            m.insert(name.into(), if shown { number(figure(f, name)) } else { Value::Null });
        }
        any
    }

    /// The same for grid `g`.
    pub fn grid_properties(&self, g: u32, m: &mut Map<String, Value>) -> bool {
        let Some(f) = self.day.eff.grids.get(g as usize) else { return false };
        let mut any = false;
        for name in LAYER_FIGURES {
            let shown = self.disclosure.grid_column(name, g);
            any |= !shown;
            m.insert(name.into(), if shown { number(figure(f, name)) } else { Value::Null });
        }
        any
    }

    /// Unit `u`'s shown figures (present ones only), for a tile; and whether one is withheld.
    pub fn unit_figures(&self, u: u32) -> (Vec<(&'static str, f64)>, bool) {
        self.figures(self.day.eff.units.get(u as usize), |name| self.disclosure.unit_column(name, u))
    }

    /// The same for grid `g`.
    pub fn grid_figures(&self, g: u32) -> (Vec<(&'static str, f64)>, bool) {
        self.figures(self.day.eff.grids.get(g as usize), |name| self.disclosure.grid_column(name, g))
    }

    fn figures(&self, f: Option<&ServiceFigures>, shown: impl Fn(&str) -> bool) -> (Vec<(&'static str, f64)>, bool) {
        let Some(f) = f else { return (Vec::new(), false) };
        let mut any = false;
        let mut out = Vec::new();
        for name in LAYER_FIGURES {
            if !shown(name) {
                any = true;
            } else if let Some(x) = figure(f, name) {
                out.push((name, x));
            }
        }
        (out, any)
    }
}

/// A day figures' key: the records' generation and the day.
type ViewKey = (u64, Day);

/// A grid worker's decisions' key: the records' generation, the day and the worker's grids.
type WorkerKey = (u64, Day, Vec<u32>);

/// The store's records in memory, kept up to date by the writes.
struct Loaded {
    records: Arc<ServiceRecords>,
    /// Index in `records.needs` of each need, by its id in the store.
    needs: HashMap<i64, usize>,
}

/// The store's service records (kept up to date by every write) and the views made from them.
#[derive(Default)]
pub(crate) struct ServiceCache {
    /// Bumped by every write of a visit or a need.
    generation: AtomicU64,
    records: Mutex<Option<Loaded>>,
    /// Held across a write to the store and its update here, so that the records in memory
    /// change in the store's order (and a load never misses a write).
    writes: Mutex<()>,
    days: Mutex<VecDeque<(ViewKey, Arc<DayFigures>)>>,
    /// Grid workers' decisions, by generation, day and grids.
    workers: Mutex<VecDeque<(WorkerKey, Arc<Disclosure>)>>,
    /// Aggregate decisions, by generation and day.
    aggregate: Mutex<VecDeque<(ViewKey, Arc<Disclosure>)>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ServiceCache {
    /// Holds the order of service writes: take it before writing to the store, and update
    /// the records ([`ServiceCache::contact`], [`ServiceCache::need`],
    /// [`ServiceCache::need_change`]) before letting it go.
    pub(crate) fn write_order(&self) -> MutexGuard<'_, ()> {
        locked(&self.writes)
    }

    fn update(&self, f: impl FnOnce(&mut Loaded)) {
        if let Some(l) = locked(&self.records).as_mut() {
            f(l);
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A contact of household `h` on `day` was written.
    pub(crate) fn contact(&self, h: u32, day: Day) {
        self.update(|l| {
            Arc::make_mut(&mut l.records).add_contact(h, day);
        });
    }

    /// Need `id` was raised.
    pub(crate) fn need(&self, id: i64, need: NeedSpan) {
        self.update(|l| {
            if let Some(i) = Arc::make_mut(&mut l.records).add_need(need) {
                l.needs.insert(id, i);
            }
        });
    }

    /// Need `id` changed to `status` on `day`.
    pub(crate) fn need_change(&self, id: i64, day: Day, status: NeedStatus) {
        self.update(|l| {
            if let Some(&i) = l.needs.get(&id) {
                Arc::make_mut(&mut l.records).change_need(i, day, status);
            }
        });
    }

    /// The records in memory, once read.
    pub(crate) fn records(&self) -> Option<Arc<ServiceRecords>> {
        locked(&self.records).as_ref().map(|l| l.records.clone())
    }
}

/// The store's service records of households `ids` (the world's), read without any lock of the
/// server: at start, beside the planner's engine and the world's views ([`super::AppState`]),
/// then given to [`install`].
///
/// # Errors
/// The store cannot be read.
pub(crate) fn read(store: &crate::store::Store, ids: &StrColumn) -> Result<Records, ApiError> {
    let (records, need_ids, _) = store.service_records_cached(ids)?;
    let needs = need_ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect();
    Ok(Records(Loaded { records: Arc::new(records), needs }))
}

/// Service records read by [`read`], to be kept by [`install`].
pub(crate) struct Records(Loaded);

/// The result of [`read`] and the time it took.
pub(crate) type RecordsRead = (Result<Records, ApiError>, std::time::Duration);

/// [`read`], timed.
pub(crate) fn timed_read(store: &crate::store::Store, ids: &StrColumn) -> RecordsRead {
    let t = std::time::Instant::now();
    (read(store, ids), t.elapsed())
}

/// Keeps records read by [`read`] as the server's (unless records were kept meanwhile), under
/// the order of writes.
pub(crate) fn install(s: &AppState, r: Records) -> Arc<ServiceRecords> {
    let cache = &s.inner.service;
    let _order = cache.write_order();
    keep_records(cache, r)
}

/// [`install`], the order of writes held by the caller.
fn keep_records(cache: &ServiceCache, r: Records) -> Arc<ServiceRecords> {
    if let Some(kept) = cache.records() {
        return kept;
    }
    let records = r.0.records.clone();
    *locked(&cache.records) = Some(r.0);
    cache.generation.fetch_add(1, Ordering::SeqCst);
    records
}

/// Reads the store's records into memory (when that failed at start): holds the order of
/// writes, and not the world's lock, while reading.
///
/// # Errors
/// No store (501), or the store cannot be read.
pub(crate) fn load(s: &AppState) -> Result<Arc<ServiceRecords>, ApiError> {
    let e = s.inner.edits.as_ref().ok_or_else(no_store)?;
    let cache = &s.inner.service;
    let _order = cache.write_order();
    if let Some(r) = cache.records() {
        return Ok(r);
    }
    let ids = s.world().ds().households.id.clone();
    let r = read(&e.store, &ids)?;
    Ok(keep_records(cache, r))
}

fn no_store() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_IMPLEMENTED,
        "NoStore",
        "this server runs without a store: there are no service records",
    )
}

fn cached<K: PartialEq, V: Clone>(q: &Mutex<VecDeque<(K, V)>>, key: &K) -> Option<V> {
    locked(q).iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn keep<K, V>(q: &Mutex<VecDeque<(K, V)>>, key: K, v: V, most: usize) {
    let mut q = locked(q);
    q.push_front((key, v));
    q.truncate(most);
}

/// The figures of `day` (made, or kept from before): the households' facts, then the
/// figures, in parallel.
fn day_figures(s: &AppState, day: Day) -> Result<(u64, Arc<DayFigures>), ApiError> {
    let cache = &s.inner.service;
    let generation = cache.generation.load(Ordering::SeqCst);
    if let Some(v) = cached(&cache.days, &(generation, day)) {
        return Ok((generation, v));
    }
    let records = match cache.records() {
        Some(r) => r,
        None => load(s)?,
    };
    let w = s.world();
    let (ds, asg) = (w.ds(), &w.an().assignment);
    let cfg = ds.service;
    let f = facts(ds, &records, day, &cfg);
    // The figures and the leaders' and planners' decisions side by side.
    let (eff, d) = rayon::join(
        || effective_of(ds, asg, &records, &f, day, &cfg),
        || Disclosure::compute_with_service(ds, asg, ds.privacy, &[], Some(&f)),
    );
    let v = Arc::new(DayFigures { eff, facts: f });
    keep(&cache.days, (generation, day), v.clone(), VIEWS);
    keep(&cache.aggregate, (generation, day), Arc::new(d), VIEWS);
    Ok((generation, v))
}

/// Makes today's figures and the leaders' and planners' decisions on them (at start, so that
/// the first tile or page of an admin layer or the grids does not make them).
///
/// # Errors
/// No store (501), or its records cannot be read.
pub(crate) fn prebuild(s: &AppState) -> Result<(), ApiError> {
    day_figures(s, crate::model::service::today()).map(|_| ())
}

/// What `user` may see of the figures of `day`: leaders and planners share one decision per
/// day; a grid worker's is made on the households they do not know
/// ([`Disclosure::compute_with_service`] with their own households), as for every other figure.
///
/// # Errors
/// No store (501), or its records cannot be read.
pub fn service_view(s: &AppState, user: &User, day: Day) -> Result<ServiceView, ApiError> {
    let cache = &s.inner.service;
    let (generation, figures) = day_figures(s, day)?;
    let w = s.world();
    let (ds, asg) = (w.ds(), &w.an().assignment);
    let disclosure = if user.role.sees_aggregates() {
        match cached(&cache.aggregate, &(generation, day)) {
            Some(d) => d,
            None => {
                let d = Arc::new(Disclosure::compute_with_service(ds, asg, ds.privacy, &[], Some(&figures.facts)));
                keep(&cache.aggregate, (generation, day), d.clone(), VIEWS);
                d
            }
        }
    } else {
        let grids = w.grid_indexes(&user.grids);
        let key = (generation, day, grids);
        match cached(&cache.workers, &key) {
            Some(d) => d,
            None => {
                let known = super::features::own_households(&w, user);
                let d = Arc::new(Disclosure::compute_with_service(ds, asg, ds.privacy, &known, Some(&figures.facts)));
                keep(&cache.workers, key, d.clone(), WORKER_VIEWS);
                d
            }
        }
    };
    Ok(ServiceView { day: figures, disclosure })
}

/// The effective figures as of today for the layers: None when the server has no store (the
/// properties are then left out).
///
/// # Errors
/// The store's records cannot be read.
pub fn layer_view(s: &AppState, user: &User) -> Result<Option<ServiceView>, ApiError> {
    if s.inner.edits.is_none() {
        return Ok(None);
    }
    service_view(s, user, crate::model::service::today()).map(Some)
}

/// `GET /api/report/effective`.
pub(crate) async fn report(
    State(s): State<AppState>,
    Auth(u): Auth,
    q: super::ogc::Params,
) -> Result<Response, ApiError> {
    let v = super::ogc::params(q, &["level", "code", "limit", "as_of", "f"])?;
    if !u.role.sees_aggregates() {
        return Err(ApiError::forbidden("the effective-coverage report is for leaders and planners"));
    }
    let get = |k: &str| super::ogc::get_param(&v, k);
    let (level, code, limit) = super::ogc::report_params(&v, s.limits().max_page)?;
    let today = crate::model::service::today();
    let asked = match get("as_of") {
        None => today,
        Some(d) => parse_day(d).map_err(|e| ApiError::bad_request(format!("as_of: {e}")))?,
    };
    let day = crate::privacy::as_of_day(asked, today);
    let xlsx = match get("f") {
        None | Some("json" | "application/json") => false,
        Some("xlsx") => true,
        Some(f) => return Err(ApiError::bad_request(format!("f={f:?}: json or xlsx"))),
    };
    blocking(move || {
        let sv = service_view(&s, &u, day)?;
        let view = DayView { eff: &sv.day.eff, disclosure: &sv.disclosure };
        let w = s.world();
        let ds = w.ds();
        let shown = |u: u32| view.disclosure.unit(Family::Overdue, u);
        let (mut units, mut withheld): (Vec<u32>, Vec<u32>) = worst_contacted_first(ds, view.eff, level)
            .into_iter()
            .filter(|&u| code.as_deref().is_none_or(|p| ds.divisions.get(u).code.starts_with(p)))
            .partition(|&u| shown(u));
        withheld.sort_by(|a, b| ds.divisions.get(*a).code.cmp(&ds.divisions.get(*b).code));
        units.extend(withheld);
        // Each row with every withheld figure blanked.
        let row = |u: u32| {
            let mut fields = effective_fields(ds, &view.eff.units[u as usize], u);
            let mut any = false;
            for (f, (col, _)) in fields.iter_mut().zip(EFFECTIVE_COLUMNS) {
                if !view.disclosure.unit_column(col, u) {
                    *f = crate::output::Field::Real(None, 0);
                    any = true;
                }
            }
            (fields, any)
        };
        if xlsx {
            let table = Table {
                sheet: format!("有效覆盖 {} {}", level.zh(), format_day(day)),
                columns: EFFECTIVE_COLUMNS.to_vec(),
                rows: units.iter().map(|&u| row(u).0).collect(),
            };
            return xlsx_response(&table, &format!("effective_{}_{}.xlsx", level.as_str(), format_day(day)));
        }
        let rows: Vec<Value> = units
            .iter()
            .take(limit)
            .map(|&u| {
                let (fields, any) = row(u);
                let mut m: Map<String, Value> =
                    EFFECTIVE_COLUMNS.iter().zip(&fields).map(|((c, _), f)| (c.to_string(), f.to_json())).collect();
                m.insert("withheld".into(), Value::Bool(any));
                Value::Object(m)
            })
            .collect();
        let body = json!({
            "level": level.as_str(),
            "code": code,
            "as_of": format_day(day),
            "as_of_asked": format_day(asked),
            "contact_days": view.eff.config.contact_days,
            "hardship_days": view.eff.config.hardship_days,
            "numberMatched": units.len(),
            "numberReturned": rows.len(),
            "order": "least contacted first: lowest contacted share, then most overdue households, then code; units whose contacted share is withheld last, by code",
            "rows": rows,
        });
        let mut r = body.to_string().into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(r)
    })
    .await
}

/// The figures of a day and the decisions of one viewer, borrowed.
struct DayView<'a> {
    eff: &'a Effective,
    disclosure: &'a Disclosure,
}

/// A table as an Excel download named `file`.
pub(crate) fn xlsx_response(table: &Table, file: &str) -> Result<Response, ApiError> {
    let bytes = table.to_xlsx(std::path::Path::new(file)).map_err(|e| ApiError::internal(format!("xlsx: {e}")))?;
    let mut r = bytes.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    Ok(r)
}
