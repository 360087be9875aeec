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
//! **Cost.** The store's records are read once and kept until a visit or a need is written
//! (then read again on the next report); the figures and decisions of a day are kept for the
//! last [`VIEWS`] days asked. Both run off the async threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::auth::{Auth, RoleExt};
use super::error::ApiError;
use super::{blocking, AppState};
use crate::analysis::effective::{effective, facts, Effective};
use crate::model::service::{format_day, parse_day, Day};
use crate::model::{Households, ServiceRecords};
use crate::output::effective::{effective_fields, worst_contacted_first, EFFECTIVE_COLUMNS};
use crate::output::table::Table;
use crate::privacy::{Disclosure, Family};
use crate::store::Store;

/// Days whose figures are kept.
pub const VIEWS: usize = 8;

/// The figures of one day and what the roles without household access may see of them.
pub(crate) struct DayView {
    eff: Effective,
    disclosure: Disclosure,
}

/// A day view's key: the records' generation and the day.
type ViewKey = (u64, Day);

/// The store's service records and the views made from them.
#[derive(Default)]
pub(crate) struct ServiceCache {
    /// Bumped by every write of a visit or a need.
    generation: AtomicU64,
    records: Mutex<Option<(u64, Arc<ServiceRecords>)>>,
    views: Mutex<VecDeque<(ViewKey, Arc<DayView>)>>,
}

impl ServiceCache {
    /// Forgets what was read: a visit or a need was written.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The generation of the records now (moved by every write of a visit or a need).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The store's service records of `households` at `generation`: those read before when
    /// no write came since, else read again (the effective-coverage report and a grid
    /// worker's list of households to visit read the same records).
    pub(crate) fn records(
        &self,
        generation: u64,
        store: &Store,
        households: &Households,
    ) -> Result<Arc<ServiceRecords>, ApiError> {
        let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        match r.as_ref() {
            Some((g, rec)) if *g == generation => Ok(rec.clone()),
            _ => {
                let (rec, _) = store.service_records(households)?;
                let rec = Arc::new(rec);
                *r = Some((generation, rec.clone()));
                Ok(rec)
            }
        }
    }
}

/// The view of `day` (made, or kept from before).
fn day_view(s: &AppState, day: Day) -> Result<Arc<DayView>, ApiError> {
    let cache = &s.inner.service;
    let generation = cache.generation();
    if let Some(v) = cache.views.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(k, _)| *k == (generation, day))
    {
        return Ok(v.1.clone());
    }
    let e = s.inner.edits.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "NoStore",
            "this server runs without a store: there are no service records",
        )
    })?;
    let w = s.world();
    let records = cache.records(generation, &e.store, &w.ds().households)?;
    let (ds, asg) = (w.ds(), &w.an().assignment);
    let cfg = ds.service;
    let eff = effective(ds, asg, &records, day, &cfg);
    let f = facts(ds, &records, day, &cfg);
    let disclosure = Disclosure::compute_with_service(ds, asg, ds.privacy, &[], Some(&f));
    let v = Arc::new(DayView { eff, disclosure });
    let mut views = cache.views.lock().unwrap_or_else(|p| p.into_inner());
    views.push_front(((generation, day), v.clone()));
    views.truncate(VIEWS);
    Ok(v)
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
    let day = match get("as_of") {
        None => crate::model::service::today(),
        Some(d) => parse_day(d).map_err(|e| ApiError::bad_request(format!("as_of: {e}")))?,
    };
    let xlsx = match get("f") {
        None | Some("json" | "application/json") => false,
        Some("xlsx") => true,
        Some(f) => return Err(ApiError::bad_request(format!("f={f:?}: json or xlsx"))),
    };
    blocking(move || {
        let view = day_view(&s, day)?;
        let w = s.world();
        let ds = w.ds();
        let shown = |u: u32| view.disclosure.unit(Family::Overdue, u);
        let (mut units, mut withheld): (Vec<u32>, Vec<u32>) = worst_contacted_first(ds, &view.eff, level)
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
            let bytes = table
                .to_xlsx(std::path::Path::new("report.xlsx"))
                .map_err(|e| ApiError::internal(format!("xlsx: {e}")))?;
            let mut r = bytes.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            );
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"effective_{}_{}.xlsx\"", level.as_str(), format_day(day)))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            );
            return Ok(r);
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
