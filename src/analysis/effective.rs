//! Effective coverage (有效运转): who has actually been served, as of a day (pure).
//!
//! Tangible coverage ([`super::coverage()`]) says a station is within reach; this says whether
//! the station and the grid worker have reached each family: contacted lately, hardship
//! families contacted more often, needs (诉求) answered. It reads the service records
//! ([`ServiceRecords`]: contact days per household, each need's status changes) and counts, for
//! every admin unit at all five levels, every grid and every grid worker, as of a day `D`
//! (everything recorded on or before `D`; nothing after it):
//!
//! | figure | definition |
//! |---|---|
//! | `contacted_households` | households with a contact in the `contact_days` days ending on `D` (`D − contact_days + 1 ..= D`) |
//! | `contacted_share` | `contacted_households / households` |
//! | `overdue_households` | households without such a contact (`households − contacted_households`) |
//! | `hardship_overdue_households` | hardship households without a contact in the `hardship_days` days ending on `D` |
//! | `never_contacted_households` | households with no contact on or before `D` |
//! | `open_needs` | needs raised on or before `D` whose status on `D` is `open` or `in_progress` |
//! | `open_needs_median_days` | the median (nearest rank) of `D − raised` over those needs |
//! | `needs_resolved_30d_share` | of the needs raised in the `contact_days` days ending 30 days before `D`, the share resolved within 30 days of being raised |
//!
//! `contact_days` (default 90) and `hardship_days` (default 30) are `[service]` in
//! `gridcover.toml` ([`ServiceConfig`]). A household counts in its unit and every unit above
//! it, in its grid, and in its grid's worker; households placed in no unit count in none.
//! Which of these figures a role may see is the disclosure policy's
//! ([`crate::privacy::figures`]); this module computes them all.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::coverage::quantile;
use super::Assignment;
use crate::model::service::{Day, NeedStatus, ServiceRecords};
use crate::model::{Dataset, NONE, NO_UNIT};

/// Days a household may go without contact before it is overdue (default 90), and a hardship
/// household (default 30): `[service]` of `gridcover.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// A contact within this many days (ending on the day asked) counts, 1 ..= 3,650.
    pub contact_days: u32,
    /// The same for hardship households, 1 ..= 3,650.
    pub hardship_days: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig { contact_days: 90, hardship_days: 30 }
    }
}

/// The range of both windows, days.
pub const WINDOW_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

/// Days a need has to be resolved in to count in `needs_resolved_30d_share`.
pub const RESOLVE_DAYS: Day = 30;

impl ServiceConfig {
    /// Checks both windows against [`WINDOW_DAYS`].
    ///
    /// # Errors
    /// The key out of range and its value.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [("contact_days", self.contact_days), ("hardship_days", self.hardship_days)] {
            if !WINDOW_DAYS.contains(&v) {
                return Err(format!("[service] {key} = {v} is out of range: 1 to 3650 days"));
            }
        }
        Ok(())
    }
}

/// The effective-coverage figures of one unit, grid or worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceFigures {
    /// Households.
    pub households: u64,
    /// Contacted within `contact_days`.
    pub contacted_households: u64,
    /// `contacted_households / households` (None without households).
    pub contacted_share: Option<f64>,
    /// Not contacted within `contact_days`.
    pub overdue_households: u64,
    /// Hardship households.
    pub hardship_households: u64,
    /// Hardship households not contacted within `hardship_days`.
    pub hardship_overdue_households: u64,
    /// Never contacted (on or before the day).
    pub never_contacted_households: u64,
    /// Households with at least one open need.
    pub open_need_households: u64,
    /// Open needs (open or in progress).
    pub open_needs: u64,
    /// Median age of the open needs, days (None without open needs).
    pub open_needs_median_days: Option<f64>,
    /// Share of the needs raised in the window that were resolved within 30 days (None when
    /// none was raised in it).
    pub needs_resolved_30d_share: Option<f64>,
    /// Needs raised in that window (the share's denominator).
    pub needs_in_window: u64,
}

/// Effective coverage of a data set as of a day.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// The day.
    pub as_of: Day,
    /// The windows used.
    pub config: ServiceConfig,
    /// Per admin unit (indexed like the divisions).
    pub units: Vec<ServiceFigures>,
    /// Per grid (indexed like the grids).
    pub grids: Vec<ServiceFigures>,
    /// Per grid worker (by name, as the grids give it).
    pub workers: BTreeMap<String, ServiceFigures>,
}

/// One household's facts as of the day: six flags in one byte (at national scale, 45 million
/// households, a day's facts are 45 MB, and the server keeps several days).
///
/// Read with the getters, made with [`ServiceFacts::default`] (every flag false) and the
/// `with_*` builders; [`ServiceFacts::bits`] and [`ServiceFacts::from_bits`] give the byte.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct ServiceFacts(u8);

impl ServiceFacts {
    /// Bit of [`ServiceFacts::contacted`].
    pub const CONTACTED: u8 = 1 << 0;
    /// Bit of [`ServiceFacts::ever_contacted`].
    pub const EVER_CONTACTED: u8 = 1 << 1;
    /// Bit of [`ServiceFacts::hardship_overdue`].
    pub const HARDSHIP_OVERDUE: u8 = 1 << 2;
    /// Bit of [`ServiceFacts::open_need`].
    pub const OPEN_NEED: u8 = 1 << 3;
    /// Bit of [`ServiceFacts::recent_need`].
    pub const RECENT_NEED: u8 = 1 << 4;
    /// Bit of [`ServiceFacts::recent_need_resolved`].
    pub const RECENT_NEED_RESOLVED: u8 = 1 << 5;
    /// Every bit in use.
    pub const ALL: u8 = (1 << 6) - 1;

    /// The facts of a byte: None when a bit outside [`ServiceFacts::ALL`] is set.
    pub const fn from_bits(bits: u8) -> Option<ServiceFacts> {
        if bits & !Self::ALL == 0 {
            Some(ServiceFacts(bits))
        } else {
            None
        }
    }

    /// The byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    const fn with(self, bit: u8, yes: bool) -> ServiceFacts {
        ServiceFacts(if yes { self.0 | bit } else { self.0 & !bit })
    }

    /// Contacted within `contact_days`.
    pub const fn contacted(self) -> bool {
        self.has(Self::CONTACTED)
    }

    /// Ever contacted on or before the day.
    pub const fn ever_contacted(self) -> bool {
        self.has(Self::EVER_CONTACTED)
    }

    /// A hardship household not contacted within `hardship_days`.
    pub const fn hardship_overdue(self) -> bool {
        self.has(Self::HARDSHIP_OVERDUE)
    }

    /// At least one open need on the day.
    pub const fn open_need(self) -> bool {
        self.has(Self::OPEN_NEED)
    }

    /// A need raised in the window of `needs_resolved_30d_share`.
    pub const fn recent_need(self) -> bool {
        self.has(Self::RECENT_NEED)
    }

    /// Such a need resolved within 30 days of being raised.
    pub const fn recent_need_resolved(self) -> bool {
        self.has(Self::RECENT_NEED_RESOLVED)
    }

    /// The same with [`ServiceFacts::contacted`] set to `yes`.
    pub const fn with_contacted(self, yes: bool) -> ServiceFacts {
        self.with(Self::CONTACTED, yes)
    }

    /// The same with [`ServiceFacts::ever_contacted`] set to `yes`.
    pub const fn with_ever_contacted(self, yes: bool) -> ServiceFacts {
        self.with(Self::EVER_CONTACTED, yes)
    }

    /// The same with [`ServiceFacts::hardship_overdue`] set to `yes`.
    pub const fn with_hardship_overdue(self, yes: bool) -> ServiceFacts {
        self.with(Self::HARDSHIP_OVERDUE, yes)
    }

    /// The same with [`ServiceFacts::open_need`] set to `yes`.
    pub const fn with_open_need(self, yes: bool) -> ServiceFacts {
        self.with(Self::OPEN_NEED, yes)
    }

    /// The same with [`ServiceFacts::recent_need`] set to `yes`.
    pub const fn with_recent_need(self, yes: bool) -> ServiceFacts {
        self.with(Self::RECENT_NEED, yes)
    }

    /// The same with [`ServiceFacts::recent_need_resolved`] set to `yes`.
    pub const fn with_recent_need_resolved(self, yes: bool) -> ServiceFacts {
        self.with(Self::RECENT_NEED_RESOLVED, yes)
    }
}

impl std::fmt::Debug for ServiceFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceFacts")
            .field("contacted", &self.contacted())
            .field("ever_contacted", &self.ever_contacted())
            .field("hardship_overdue", &self.hardship_overdue())
            .field("open_need", &self.open_need())
            .field("recent_need", &self.recent_need())
            .field("recent_need_resolved", &self.recent_need_resolved())
            .finish()
    }
}

/// Each household's [`ServiceFacts`] as of `as_of` (the households in parallel).
pub fn facts(ds: &Dataset, records: &ServiceRecords, as_of: Day, cfg: &ServiceConfig) -> Vec<ServiceFacts> {
    let hh = &ds.households;
    let within = |last: Option<Day>, days: u32| last.is_some_and(|d| d > as_of - days as Day);
    let mut out: Vec<ServiceFacts> = (0..hh.len())
        .into_par_iter()
        .with_min_len(1 << 14)
        .map(|h| {
            let last = records.last_contact(h as u32, as_of);
            ServiceFacts::default()
                .with_contacted(within(last, cfg.contact_days))
                .with_ever_contacted(last.is_some())
                .with_hardship_overdue(hh.difficulty[h] && !within(last, cfg.hardship_days))
        })
        .collect();
    let window = need_window(as_of, cfg);
    for n in &records.needs {
        let Some(f) = out.get_mut(n.household as usize) else { continue };
        let Some(raised) = n.opened().filter(|&r| r <= as_of) else { continue };
        if is_open(n.status_on(as_of)) {
            *f = f.with_open_need(true);
        }
        if window.contains(&raised) {
            *f = f.with_recent_need(true);
            if resolved_in_time(n, raised, as_of) {
                *f = f.with_recent_need_resolved(true);
            }
        }
    }
    out
}

/// The days a need must have been raised on to count in `needs_resolved_30d_share`: the
/// `contact_days` days ending [`RESOLVE_DAYS`] before `as_of`.
fn need_window(as_of: Day, cfg: &ServiceConfig) -> std::ops::RangeInclusive<Day> {
    let end = as_of - RESOLVE_DAYS;
    end - cfg.contact_days as Day + 1..=end
}

/// True when `n`, raised on `raised`, was resolved within [`RESOLVE_DAYS`] (as known on `as_of`).
fn resolved_in_time(n: &crate::model::NeedSpan, raised: Day, as_of: Day) -> bool {
    n.resolved_by(as_of).is_some_and(|r| r - raised <= RESOLVE_DAYS)
}

fn is_open(s: Option<NeedStatus>) -> bool {
    matches!(s, Some(NeedStatus::Open | NeedStatus::InProgress))
}

/// Sums of one node while counting.
#[derive(Default, Clone)]
struct Acc {
    f: ServiceFigures,
    ages: Vec<f32>,
    resolved_in_window: u64,
}

/// The households of one unit or grid, before they are added up a unit's chain: counted in
/// parallel, a household once (in its own unit), not once per unit above it.
#[derive(Default, Clone, Copy)]
struct Counts {
    households: u32,
    contacted: u32,
    hardship: u32,
    hardship_overdue: u32,
    never_contacted: u32,
    open_need: u32,
}

impl Counts {
    fn household(&mut self, facts: ServiceFacts, hardship: bool) {
        self.households += 1;
        self.contacted += u32::from(facts.contacted());
        self.hardship += u32::from(hardship);
        self.hardship_overdue += u32::from(facts.hardship_overdue());
        self.never_contacted += u32::from(!facts.ever_contacted());
        self.open_need += u32::from(facts.open_need());
    }

    fn merge(&mut self, o: &Counts) {
        self.households += o.households;
        self.contacted += o.contacted;
        self.hardship += o.hardship;
        self.hardship_overdue += o.hardship_overdue;
        self.never_contacted += o.never_contacted;
        self.open_need += o.open_need;
    }
}

impl Acc {
    fn add(&mut self, c: &Counts) {
        let f = &mut self.f;
        f.households += u64::from(c.households);
        f.contacted_households += u64::from(c.contacted);
        f.hardship_households += u64::from(c.hardship);
        f.hardship_overdue_households += u64::from(c.hardship_overdue);
        f.never_contacted_households += u64::from(c.never_contacted);
        f.open_need_households += u64::from(c.open_need);
    }

    fn finish(mut self) -> ServiceFigures {
        let mut f = self.f;
        f.overdue_households = f.households - f.contacted_households;
        f.contacted_share = (f.households > 0).then(|| f.contacted_households as f64 / f.households as f64);
        f.open_needs = self.ages.len() as u64;
        f.open_needs_median_days = (!self.ages.is_empty()).then(|| f64::from(quantile(&mut self.ages, 0.5)));
        f.needs_resolved_30d_share =
            (f.needs_in_window > 0).then(|| self.resolved_in_window as f64 / f.needs_in_window as f64);
        f
    }
}

/// Effective coverage of `ds` (assigned as `asg`) from its service records, as of `as_of`.
pub fn effective(
    ds: &Dataset,
    asg: &Assignment,
    records: &ServiceRecords,
    as_of: Day,
    cfg: &ServiceConfig,
) -> Effective {
    effective_of(ds, asg, records, &facts(ds, records, as_of, cfg), as_of, cfg)
}

/// The same from the households' facts of that day ([`facts`], computed once when the
/// disclosure decisions need them too).
pub fn effective_of(
    ds: &Dataset,
    asg: &Assignment,
    records: &ServiceRecords,
    facts: &[ServiceFacts],
    as_of: Day,
    cfg: &ServiceConfig,
) -> Effective {
    let nu = ds.divisions.len();
    let ng = ds.grids.len();
    let mut units = vec![Acc::default(); nu];
    let mut grids = vec![Acc::default(); ng];
    let hh = &ds.households;
    // Each household in its own unit and grid (a part of the households per thread), then each
    // unit's households added to every unit of its chain (itself included).
    let step = facts.len().div_ceil(rayon::current_num_threads().max(1)).max(1);
    let direct = facts
        .par_chunks(step)
        .enumerate()
        .map(|(part, fs)| {
            let (mut u, mut g) = (vec![Counts::default(); nu], vec![Counts::default(); ng]);
            for (k, fa) in fs.iter().enumerate() {
                let h = part * step + k;
                let unit = asg.unit.get(h).copied().unwrap_or(NO_UNIT);
                if unit != NO_UNIT {
                    u[unit as usize].household(*fa, hh.difficulty[h]);
                }
                let grid = asg.grid.get(h).copied().unwrap_or(NONE);
                if grid != NONE {
                    g[grid as usize].household(*fa, hh.difficulty[h]);
                }
            }
            (u, g)
        })
        .reduce_with(|(mut u, mut g), (u2, g2)| {
            u.iter_mut().zip(&u2).for_each(|(a, b)| a.merge(b));
            g.iter_mut().zip(&g2).for_each(|(a, b)| a.merge(b));
            (u, g)
        });
    if let Some((du, dg)) = direct {
        for (u, c) in du.iter().enumerate().filter(|(_, c)| c.households > 0) {
            for a in ds.divisions.chain(u as u32).into_iter().filter(|&a| a != NO_UNIT) {
                units[a as usize].add(c);
            }
        }
        for (g, c) in dg.iter().enumerate() {
            grids[g].add(c);
        }
    }
    // The nodes a need counts in: its unit chain and its grid.
    let mut visit = |h: usize, f: &mut dyn FnMut(&mut Acc)| {
        let u = asg.unit.get(h).copied().unwrap_or(NO_UNIT);
        if u != NO_UNIT {
            for a in ds.divisions.chain(u).into_iter().filter(|&a| a != NO_UNIT) {
                f(&mut units[a as usize]);
            }
        }
        let g = asg.grid.get(h).copied().unwrap_or(NONE);
        if g != NONE {
            f(&mut grids[g as usize]);
        }
    };
    let window = need_window(as_of, cfg);
    for n in &records.needs {
        let Some(raised) = n.opened() else { continue };
        if raised > as_of {
            continue;
        }
        let open_age = is_open(n.status_on(as_of)).then(|| (as_of - raised) as f32);
        let in_window = window.contains(&raised);
        let resolved_fast = in_window && resolved_in_time(n, raised, as_of);
        visit(n.household as usize, &mut |a| {
            if let Some(age) = open_age {
                a.ages.push(age);
            }
            if in_window {
                a.f.needs_in_window += 1;
                a.resolved_in_window += u64::from(resolved_fast);
            }
        });
    }
    // A worker's figures are the sums over their grids (a household is in at most one grid).
    let mut by_worker: BTreeMap<String, Acc> = BTreeMap::new();
    for (g, acc) in grids.iter().enumerate() {
        let w = by_worker.entry(ds.grids.worker[g].clone()).or_default();
        let (f, a) = (&mut w.f, &acc.f);
        f.households += a.households;
        f.contacted_households += a.contacted_households;
        f.hardship_households += a.hardship_households;
        f.hardship_overdue_households += a.hardship_overdue_households;
        f.never_contacted_households += a.never_contacted_households;
        f.open_need_households += a.open_need_households;
        f.needs_in_window += a.needs_in_window;
        w.ages.extend_from_slice(&acc.ages);
        w.resolved_in_window += acc.resolved_in_window;
    }
    Effective {
        as_of,
        config: *cfg,
        units: units.into_iter().map(Acc::finish).collect(),
        grids: grids.into_iter().map(Acc::finish).collect(),
        workers: by_worker.into_iter().map(|(w, a)| (w, a.finish())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service::{day_from_ymd, NeedCategory, NeedSpan};
    use crate::model::{Divisions, HouseholdRow, Level};

    const D1: Day = 20_787; // 2026-11-30

    /// Province 99 › … › township 990101001 › villages A (…001: H0–H2) and B (…002: H3, H4);
    /// H5 placed in no unit. Hardship: H1, H3. Grids of worker 张三: G1 (H0, H1), G2 (H3).
    fn fixture() -> (Dataset, Assignment, ServiceRecords) {
        let mut d = Divisions::new();
        d.add("99", "省", Level::Province, None).unwrap();
        d.add("9901", "市", Level::City, Some("99")).unwrap();
        d.add("990101", "县", Level::County, Some("9901")).unwrap();
        d.add("990101001", "镇", Level::Township, Some("990101")).unwrap();
        let a = d.add("990101001001", "甲村", Level::Village, Some("990101001")).unwrap();
        let b = d.add("990101001002", "乙村", Level::Village, Some("990101001")).unwrap();
        let mut ds = Dataset { divisions: d.into(), ..Dataset::default() };
        for h in 0..6 {
            ds.households.push(HouseholdRow {
                id: format!("H{h}"),
                lon: 100.0,
                lat: 40.0,
                veterans: 1,
                difficulty: h == 1 || h == 3,
                ..Default::default()
            });
        }
        std::sync::Arc::make_mut(&mut ds.grids).id = vec!["G1".into(), "G2".into()];
        std::sync::Arc::make_mut(&mut ds.grids).worker = vec!["张三".into(), "张三".into()];
        std::sync::Arc::make_mut(&mut ds.grids).unit = vec![Some(a), Some(b)];
        std::sync::Arc::make_mut(&mut ds.grids).geometry =
            vec![geo::MultiPolygon::new(vec![]), geo::MultiPolygon::new(vec![])];
        let asg = Assignment {
            unit: vec![a, a, a, b, b, NO_UNIT],
            grid: vec![0, 0, NONE, 1, NONE, NONE],
            ..Default::default()
        };
        let contacts =
            [(0, D1 - 10), (0, D1 - 200), (1, D1 - 40), (2, D1 + 5), (3, D1 - 5), (4, D1 - 100), (5, D1 - 1)];
        let need = |household: u32, category, changes: &[(Day, NeedStatus)]| NeedSpan {
            household,
            category,
            changes: changes.to_vec(),
        };
        use NeedStatus::*;
        let needs = vec![
            need(0, NeedCategory::Medical, &[(D1 - 50, Open), (D1 - 45, InProgress), (D1 - 20, Resolved)]),
            need(1, NeedCategory::Housing, &[(D1 - 60, Open)]),
            need(3, NeedCategory::Legal, &[(D1 - 8, Open)]),
            need(4, NeedCategory::Pension, &[(D1 - 100, Open), (D1 - 50, Resolved)]),
            need(0, NeedCategory::Other, &[(D1 + 3, Open)]),
        ];
        let (r, skipped) = ServiceRecords::new(6, contacts, needs);
        assert_eq!(skipped, 0);
        (ds, asg, r)
    }

    #[allow(clippy::too_many_arguments)]
    fn figures(
        households: u64,
        contacted: u64,
        hardship: u64,
        hardship_overdue: u64,
        never: u64,
        open_need_households: u64,
        open_needs: u64,
        median: Option<f64>,
        in_window: u64,
        resolved_share: Option<f64>,
    ) -> ServiceFigures {
        ServiceFigures {
            households,
            contacted_households: contacted,
            contacted_share: Some(contacted as f64 / households as f64),
            overdue_households: households - contacted,
            hardship_households: hardship,
            hardship_overdue_households: hardship_overdue,
            never_contacted_households: never,
            open_need_households,
            open_needs,
            open_needs_median_days: median,
            needs_resolved_30d_share: resolved_share,
            needs_in_window: in_window,
        }
    }

    #[test]
    fn every_figure_on_two_days() {
        let (ds, asg, r) = fixture();
        let cfg = ServiceConfig::default();
        let e = effective(&ds, &asg, &r, D1, &cfg);
        let (a, b) = (4, 5);
        assert_eq!(e.units[a], figures(3, 2, 1, 1, 1, 1, 1, Some(60.0), 2, Some(0.5)));
        assert_eq!(e.units[b], figures(2, 1, 1, 0, 0, 1, 1, Some(8.0), 1, Some(0.0)));
        let whole = figures(5, 3, 2, 1, 1, 2, 2, Some(8.0), 3, Some(1.0 / 3.0));
        for u in 0..4 {
            assert_eq!(e.units[u], whole, "unit {u}");
        }
        assert_eq!(e.grids[0], figures(2, 2, 1, 1, 0, 1, 1, Some(60.0), 2, Some(0.5)));
        assert_eq!(e.grids[1], figures(1, 1, 1, 0, 0, 1, 1, Some(8.0), 0, None));
        assert_eq!(e.workers["张三"], figures(3, 3, 2, 1, 0, 2, 2, Some(8.0), 2, Some(0.5)));

        // Ten days later: H2's contact of D1 + 5 and H0's need of D1 + 3 are in; the window moved.
        let e = effective(&ds, &asg, &r, D1 + 10, &cfg);
        assert_eq!(e.units[a], figures(3, 3, 1, 1, 0, 2, 2, Some(7.0), 2, Some(0.5)));
        assert_eq!(e.units[b], figures(2, 1, 1, 0, 0, 1, 1, Some(18.0), 1, Some(0.0)));
        assert_eq!(e.units[0], figures(5, 4, 2, 1, 0, 3, 3, Some(18.0), 3, Some(1.0 / 3.0)));

        // Narrower windows: a contact 40 days ago is overdue at 30 days.
        let tight = ServiceConfig { contact_days: 30, hardship_days: 7 };
        let e = effective(&ds, &asg, &r, D1, &tight);
        // Contacted: H0 (10 days), H3 (5 days); hardship overdue: H1 (40 days); H3 (5) is not.
        assert_eq!(e.units[0].contacted_households, 2);
        assert_eq!(e.units[0].hardship_overdue_households, 1);
        // The window of raised needs is now D1 − 59 ..= D1 − 30: N1 (D1 − 50) only.
        assert_eq!((e.units[0].needs_in_window, e.units[0].needs_resolved_30d_share), (1, Some(1.0)));
    }

    #[test]
    fn nothing_recorded_means_nobody_contacted() {
        let (ds, asg, _) = fixture();
        let (r, _) = ServiceRecords::new(6, [], vec![]);
        let e = effective(&ds, &asg, &r, D1, &ServiceConfig::default());
        assert_eq!(e.units[0], figures(5, 0, 2, 2, 5, 0, 0, None, 0, None));
        assert_eq!(day_from_ymd(2026, 11, 30), D1);
    }

    proptest::proptest! {
        /// Every combination of the six facts packs into one byte and reads back as made, in
        /// whatever order the flags are set, and the byte gives the same facts back.
        #[test]
        fn facts_pack_into_a_byte_and_read_back(flags in proptest::array::uniform6(proptest::bool::ANY), first in 0usize..6) {
            let mut f = ServiceFacts::default();
            // Set them starting at `first` (and set one of them twice, the second time to its
            // value: no flag leaks into another).
            for i in (0..6).map(|i| (i + first) % 6) {
                f = set(f, i, !flags[i]);
                f = set(f, i, flags[i]);
            }
            let read = [
                f.contacted(),
                f.ever_contacted(),
                f.hardship_overdue(),
                f.open_need(),
                f.recent_need(),
                f.recent_need_resolved(),
            ];
            proptest::prop_assert_eq!(read, flags);
            proptest::prop_assert_eq!(f.bits() & !ServiceFacts::ALL, 0);
            proptest::prop_assert_eq!(ServiceFacts::from_bits(f.bits()), Some(f));
            let bits = flags.iter().enumerate().fold(0u8, |b, (i, &on)| b | (u8::from(on) << i));
            proptest::prop_assert_eq!(f.bits(), bits);
        }
    }

    fn set(f: ServiceFacts, i: usize, yes: bool) -> ServiceFacts {
        match i {
            0 => f.with_contacted(yes),
            1 => f.with_ever_contacted(yes),
            2 => f.with_hardship_overdue(yes),
            3 => f.with_open_need(yes),
            4 => f.with_recent_need(yes),
            _ => f.with_recent_need_resolved(yes),
        }
    }

    #[test]
    fn facts_are_one_byte_a_household() {
        assert_eq!(std::mem::size_of::<ServiceFacts>(), 1);
        assert_eq!(ServiceFacts::default().bits(), 0);
        for bits in 0..=u8::MAX {
            assert_eq!(ServiceFacts::from_bits(bits).is_some(), bits <= ServiceFacts::ALL, "{bits:#010b}");
        }
        let f = ServiceFacts::default().with_contacted(true).with_open_need(true);
        assert_eq!(
            format!("{f:?}"),
            "ServiceFacts { contacted: true, ever_contacted: false, hardship_overdue: false, open_need: true, \
             recent_need: false, recent_need_resolved: false }"
        );
    }

    #[test]
    fn windows_are_bounded() {
        assert!(ServiceConfig::default().validate().is_ok());
        let e = ServiceConfig { contact_days: 0, hardship_days: 30 }.validate().unwrap_err();
        assert!(e.contains("contact_days = 0"), "{e}");
        assert!(ServiceConfig { contact_days: 90, hardship_days: 4000 }.validate().is_err());
    }
}
