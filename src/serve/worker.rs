//! `GET /api/me/to-visit`: a grid worker's own households in the order to visit them (待走访),
//! as of a day, from the store's service records.
//!
//! Parameters: `limit` (1 …, default 100, a larger value is capped at the page limit, 1000 by
//! default), `offset` (0 …, default 0), `as_of` (`YYYY-MM-DD`, years 1900–2200, default today
//! UTC). Grid workers only (leaders and planners: 403), and only the households of their own
//! grids; without a store 501. Every household listed is first written to the audit log
//! (`households.to_visit`, the ids of the page), through the one audit path of the server
//! (`AppState::audit`, as the other household endpoints).
//!
//! **The order** ([`Tier`], then within a tier): with `contact_days` and `hardship_days` of
//! `[service]` (defaults 90 and 30) and a contact "within N days" meaning one on
//! `as_of − N + 1 ..= as_of`, as in the effective-coverage figures
//! ([`mod@crate::analysis::effective`]):
//!
//! 1. `hardship_overdue`: hardship families (困难) without a contact within `hardship_days`;
//! 2. `martyr_overdue`: martyrs' families (烈属) without a contact within `contact_days`;
//! 3. `overdue`: other households contacted before but not within `contact_days`;
//! 4. `never_contacted`: other households never contacted (on or before `as_of`);
//! 5. `recent`: the rest (contacted within their window).
//!
//! Within each tier the longest since the last contact comes first (never contacted before
//! any contacted), then the household id. `overdue` in a row is true for tiers 1–4. So a
//! visit recorded today moves a household to `recent` (or, for a hardship family contacted
//! within `contact_days` but not `hardship_days` — tier 1 —, the same), at the end of the list.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::{json, Value};

use super::auth::{Auth, Role};
use super::edits::with_store;
use super::error::ApiError;
use super::features::own_households;
use super::ogc::{get_param, params, parse_usize, Params};
use super::AppState;
use crate::analysis::effective::ServiceConfig;
use crate::model::service::{format_day, parse_day, today, Day, NeedStatus, ServiceRecords};

/// Rows of a page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// The order in which the households are listed (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// A hardship family without a contact within `hardship_days`.
    HardshipOverdue,
    /// A martyr's family without a contact within `contact_days`.
    MartyrOverdue,
    /// Contacted before, but not within `contact_days`.
    Overdue,
    /// Never contacted.
    NeverContacted,
    /// Contacted within its window.
    Recent,
}

impl Tier {
    /// The tier of a household (`hardship`, `martyr`: its flags; `last`: its last contact on
    /// or before `as_of`).
    pub fn of(hardship: bool, martyr: bool, last: Option<Day>, as_of: Day, cfg: &ServiceConfig) -> Tier {
        let within = |days: u32| last.is_some_and(|d| d > as_of - days as Day);
        if hardship && !within(cfg.hardship_days) {
            Tier::HardshipOverdue
        } else if within(cfg.contact_days) {
            Tier::Recent
        } else if martyr {
            Tier::MartyrOverdue
        } else if last.is_some() {
            Tier::Overdue
        } else {
            Tier::NeverContacted
        }
    }
}

/// One household of the list, before the store adds the kind of its last contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToVisit {
    /// Index in the data set's households.
    pub household: u32,
    /// Its tier.
    pub tier: Tier,
    /// Its last contact on or before the day.
    pub last: Option<Day>,
    /// Needs raised by the day and open or in progress on it.
    pub open_needs: u32,
}

/// `households` (their `(index, id, hardship, martyr)`) in the order to visit them as of
/// `as_of`, from `records`.
pub fn order<'a>(
    households: impl IntoIterator<Item = (u32, &'a str, bool, bool)>,
    records: &ServiceRecords,
    as_of: Day,
    cfg: &ServiceConfig,
) -> Vec<ToVisit> {
    let mut rows: Vec<(ToVisit, &str)> = households
        .into_iter()
        .map(|(h, id, hardship, martyr)| {
            let last = records.last_contact(h, as_of);
            let tier = Tier::of(hardship, martyr, last, as_of, cfg);
            (ToVisit { household: h, tier, last, open_needs: 0 }, id)
        })
        .collect();
    let at: std::collections::HashMap<u32, usize> =
        rows.iter().enumerate().map(|(i, (r, _))| (r.household, i)).collect();
    for n in &records.needs {
        let Some(&i) = at.get(&n.household) else { continue };
        if n.opened().is_some_and(|d| d <= as_of)
            && matches!(n.status_on(as_of), Some(NeedStatus::Open | NeedStatus::InProgress))
        {
            rows[i].0.open_needs += 1;
        }
    }
    // Longest since contact first: `None` (never contacted) sorts before the oldest day.
    rows.sort_by_key(|(r, id)| (r.tier, r.last, *id));
    rows.into_iter().map(|(r, _)| r).collect()
}

/// The routes of the grid workers' own lists.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/me/to-visit", get(to_visit))
}

/// `GET /api/me/to-visit`.
async fn to_visit(State(s): State<AppState>, Auth(u): Auth, q: Params) -> Result<Response, ApiError> {
    let v = params(q, &["limit", "offset", "as_of"])?;
    if u.role != Role::GridWorker {
        return Err(ApiError::forbidden(
            "the to-visit list is a grid worker's own households; leaders and planners see aggregates",
        ));
    }
    let limit = match parse_usize(&v, "limit")? {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(ApiError::bad_request("limit must be at least 1")),
        Some(n) => n.min(s.limits().max_page),
    };
    let offset = parse_usize(&v, "offset")?.unwrap_or(0);
    let day = match get_param(&v, "as_of") {
        None => today(),
        Some(d) => parse_day(d).map_err(|e| ApiError::bad_request(format!("as_of: {e}")))?,
    };
    with_store(s, move |s, e| {
        // The records kept in memory (read from the store once), taken before the world's lock.
        let records = match s.inner.service.records() {
            Some(r) => r,
            None => super::effective::load(s)?,
        };
        let w = s.world();
        let ds = w.ds();
        let cfg = ds.service;
        let hh = &ds.households;
        let mine = own_households(&w, &u);
        let all = order(
            mine.iter().map(|&h| (h, &hh.id[h as usize], hh.difficulty[h as usize], hh.martyr_family[h as usize])),
            &records,
            day,
            &cfg,
        );
        let page: Vec<&ToVisit> = all.iter().skip(offset).take(limit).collect();
        let ids: Vec<&str> = page.iter().map(|r| &hh.id[r.household as usize]).collect();
        let kinds = e.store.last_contacts(&ids, &format_day(day))?;
        let rows: Vec<u32> = page.iter().map(|r| r.household).collect();
        let names = s.name_source().names(&w, &rows)?;
        let rows: Vec<Value> = page
            .iter()
            .zip(&ids)
            .enumerate()
            .map(|(k, (r, id))| {
                let h = r.household as usize;
                let last = r.last.map(format_day);
                // The kind of that same contact (a write between the two reads: none).
                let kind = kinds.get(*id).filter(|(d, _)| Some(d) == last.as_ref()).map(|(_, k)| k.as_str());
                let (name, address) = names.get(&w, r.household);
                json!({
                    "rank": offset + k + 1,
                    "id": id,
                    "name": name,
                    "address": address,
                    "veterans": hh.veterans[h],
                    "hardship": hh.difficulty[h],
                    "martyr_family": hh.martyr_family[h],
                    "last_contact": last,
                    "last_contact_kind": kind,
                    "days_since_contact": r.last.map(|d| day - d),
                    "overdue": r.tier != Tier::Recent,
                    "open_needs": r.open_needs,
                    "tier": r.tier,
                })
            })
            .collect();
        if !ids.is_empty() {
            s.audit(&u, "households.to_visit", &ids.join(","))?;
        }
        let body = json!({
            "as_of": format_day(day),
            "contact_days": cfg.contact_days,
            "hardship_days": cfg.hardship_days,
            "order": "hardship families without a contact within hardship_days; martyrs' families without one within contact_days; other households contacted before but not within contact_days; never contacted; the rest. Within each: longest since the last contact first (never contacted first), then id",
            "numberMatched": all.len(),
            "numberReturned": rows.len(),
            "limit": limit,
            "offset": offset,
            "rows": rows,
        });
        let mut r = body.to_string().into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(r)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service::{NeedCategory, NeedSpan};

    #[test]
    fn tiers_follow_the_windows() {
        let cfg = ServiceConfig { contact_days: 90, hardship_days: 30 };
        let d = 1000;
        assert_eq!(Tier::of(true, false, None, d, &cfg), Tier::HardshipOverdue);
        assert_eq!(Tier::of(true, true, Some(d - 30), d, &cfg), Tier::HardshipOverdue);
        assert_eq!(Tier::of(true, false, Some(d - 29), d, &cfg), Tier::Recent);
        assert_eq!(Tier::of(false, true, Some(d - 90), d, &cfg), Tier::MartyrOverdue);
        assert_eq!(Tier::of(false, true, None, d, &cfg), Tier::MartyrOverdue);
        assert_eq!(Tier::of(false, true, Some(d - 89), d, &cfg), Tier::Recent);
        assert_eq!(Tier::of(false, false, Some(d - 90), d, &cfg), Tier::Overdue);
        assert_eq!(Tier::of(false, false, None, d, &cfg), Tier::NeverContacted);
        assert_eq!(Tier::of(false, false, Some(d), d, &cfg), Tier::Recent);
    }

    #[test]
    fn order_within_tiers_is_longest_since_contact_then_id() {
        let cfg = ServiceConfig::default();
        let d = 1000;
        let need = |h, changes| NeedSpan { household: h, category: NeedCategory::Medical, changes };
        let (rec, _) = ServiceRecords::new(
            8,
            [(1, d - 200), (2, d - 100), (3, d - 300), (4, d - 5), (5, d - 50), (6, d + 3)],
            vec![
                need(4, vec![(d - 5, NeedStatus::Open)]),
                need(4, vec![(d - 5, NeedStatus::Open), (d - 1, NeedStatus::Resolved)]),
                need(4, vec![(d + 1, NeedStatus::Open)]),
                need(0, vec![(d - 2, NeedStatus::InProgress)]),
            ],
        );
        // index, id, hardship, martyr
        let hh = [
            (0, "a", false, false),
            (1, "b", false, false),
            (2, "c", false, true),
            (3, "d", false, false),
            (4, "e", true, false),
            (5, "f", false, false),
            (6, "g", false, false),
            (7, "h", true, false),
        ];
        let got = order(hh, &rec, d, &cfg);
        let ids: Vec<(u32, Tier)> = got.iter().map(|r| (r.household, r.tier)).collect();
        assert_eq!(
            ids,
            [
                (7, Tier::HardshipOverdue),
                (2, Tier::MartyrOverdue),
                (3, Tier::Overdue),
                (1, Tier::Overdue),
                (0, Tier::NeverContacted),
                (6, Tier::NeverContacted),
                (5, Tier::Recent),
                (4, Tier::Recent),
            ]
        );
        assert_eq!(got.iter().map(|r| r.open_needs).collect::<Vec<_>>(), [0, 0, 0, 0, 1, 0, 0, 1]);
        assert_eq!(got[6].last, Some(d - 50));
        assert_eq!(got[5].last, None, "a contact after the day does not count");
    }
}
