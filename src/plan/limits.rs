//! Bounds on what one plan or what-if may ask, and the time budget that stops a long one.
//!
//! Every numeric input of a [`PlanRequest`] has a range, checked in one place
//! ([`Bounds::check_plan`], called by [`super::solve`] before any work); a what-if's inputs are
//! checked by [`crate::analysis::scenario::validate`] with the same [`RADIUS_M`]. The defaults:
//!
//! | input | range |
//! |---|---|
//! | `radius_m` (plans, what-if stations, stored stations) | [`RADIUS_M`]: 100 m … 100 km |
//! | `new` (K) | 1 … [`MAX_NEW`] (5,000), and at most the candidates left |
//! | `capacity` | 1 … [`MAX_CAPACITY`] (1,000,000 veterans) |
//! | household × site pairs an instance may hold | [`MAX_PAIRS`] (20,000,000; estimated before building, 413 above) |
//! | H3 `resolution` | [`H3_RESOLUTION`]: 0 … 15 ([`Bounds::max_h3_resolution`] is the one place to lower it) |
//! | `target` | (0, 1] |
//! | `max_per_county` | 1 … [`MAX_NEW`] |
//! | `require`, `exclude` ids | at most [`MAX_IDS`] (10,000) each; duplicates are folded |
//! | user `sites` | at most [`MAX_SITES`] (25,000) |
//! | what-if stations to add, to remove | at most [`MAX_SCENARIO_ADDS`], [`MAX_SCENARIO_REMOVES`] (200 each); duplicate removes are folded |
//!
//! A [`Budget`] (a deadline and a cancel flag) is checked inside the long loops of the plan
//! engine (coverage sets, lazy greedy, swap search, subgradient, the capacitated greedy) and of a
//! what-if; once it runs out the work stops and the call answers
//! [`PlanError::OutOfTime`].

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{CandidateSource, PlanError, PlanRequest, Problem};

pub use crate::model::rules::RADIUS_M;
/// Most new sites (`new`, K) of one plan.
pub const MAX_NEW: usize = 5_000;
/// Largest station capacity, veterans.
pub const MAX_CAPACITY: u32 = 1_000_000;
/// Most (household, site) pairs one plan instance may hold (coverage sets, distance pairs,
/// capacity pairs): estimated before they are built, and never exceeded while building.
pub const MAX_PAIRS: usize = 20_000_000;
/// H3 resolutions the library accepts.
pub const H3_RESOLUTION: RangeInclusive<u8> = 0..=15;
/// Most ids in `require` and in `exclude` each.
pub const MAX_IDS: usize = 10_000;
/// Most user sites (`candidates.sites`).
pub const MAX_SITES: usize = 25_000;
/// Most stations one what-if opens.
pub const MAX_SCENARIO_ADDS: usize = 200;
/// Most stations one what-if closes.
pub const MAX_SCENARIO_REMOVES: usize = 200;

/// The bounds in force (the defaults are the constants of this module). A server may tighten
/// them, e.g. the finest H3 resolution a role may plan at.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// Radius of a plan or a what-if station, metres.
    pub radius_m: RangeInclusive<f64>,
    /// Most new sites.
    pub max_new: usize,
    /// Largest capacity.
    pub max_capacity: u32,
    /// Most pairs of one instance.
    pub max_pairs: usize,
    /// Finest H3 resolution of candidate cells (the library's own limit is 15; this is the one
    /// place to lower it, e.g. to a privacy policy's cell).
    pub max_h3_resolution: u8,
    /// Most ids in `require` and `exclude` each.
    pub max_ids: usize,
    /// Most user sites.
    pub max_sites: usize,
    /// Most what-if stations to add.
    pub max_scenario_adds: usize,
    /// Most what-if stations to remove.
    pub max_scenario_removes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            radius_m: RADIUS_M,
            max_new: MAX_NEW,
            max_capacity: MAX_CAPACITY,
            max_pairs: MAX_PAIRS,
            max_h3_resolution: *H3_RESOLUTION.end(),
            max_ids: MAX_IDS,
            max_sites: MAX_SITES,
            max_scenario_adds: MAX_SCENARIO_ADDS,
            max_scenario_removes: MAX_SCENARIO_REMOVES,
        }
    }
}

fn out_of_range(field: &'static str, value: impl std::fmt::Display, bound: String) -> PlanError {
    PlanError::OutOfRange { field, value: value.to_string(), bound }
}

impl Bounds {
    /// The radius check shared by plans and what-ifs: `Err(bound text)` when `r` is not a
    /// number of metres within [`Bounds::radius_m`].
    pub fn check_radius(&self, r: f64) -> Result<(), String> {
        if r.is_finite() && self.radius_m.contains(&r) {
            Ok(())
        } else {
            Err(format!("{} to {} metres", self.radius_m.start(), self.radius_m.end()))
        }
    }

    /// Checks every numeric input and list length of `req` that does not depend on the data
    /// (the one place; [`super::solve`] calls it first). `radius` is the radius in force (the
    /// request's or the level's standard one).
    ///
    /// # Errors
    /// The first input out of range, naming the field and the bound.
    pub fn check_plan(&self, req: &PlanRequest, radius: f64) -> Result<(), PlanError> {
        if !(radius.is_finite() && radius > 0.0) {
            return Err(PlanError::BadRadius(radius));
        }
        if let Err(bound) = self.check_radius(radius) {
            return Err(out_of_range("radius_m", radius, bound));
        }
        match req.problem {
            Problem::Mclp | Problem::Pmedian => match req.new {
                Some(k) if k > 0 => {}
                _ => return Err(PlanError::MissingK(req.problem.as_str())),
            },
            Problem::Lscp => {
                if req.new == Some(0) {
                    return Err(out_of_range("new", 0, format!("1 to {}", self.max_new)));
                }
            }
        }
        if let Some(k) = req.new {
            if k > self.max_new {
                return Err(out_of_range("new", k, format!("1 to {}", self.max_new)));
            }
        }
        if let Some(t) = req.target {
            if !(t > 0.0 && t <= 1.0) {
                return Err(PlanError::BadTarget(t));
            }
            if req.problem != Problem::Lscp {
                return Err(PlanError::BadOption("--target applies to lscp only".into()));
            }
        }
        if let Some(c) = req.capacity {
            if c == 0 || c > self.max_capacity {
                return Err(out_of_range("capacity", c, format!("1 to {} veterans", self.max_capacity)));
            }
            if req.problem != Problem::Mclp {
                return Err(PlanError::BadOption("--capacity applies to mclp only".into()));
            }
        }
        if let Some(m) = req.max_per_county {
            if m == 0 || m > self.max_new {
                return Err(out_of_range("max_per_county", m, format!("1 to {}", self.max_new)));
            }
        }
        for (field, list) in [("require", &req.require), ("exclude", &req.exclude)] {
            if list.len() > self.max_ids {
                return Err(out_of_range(
                    field,
                    format!("{} ids", list.len()),
                    format!("at most {} ids", self.max_ids),
                ));
            }
        }
        match &req.candidates {
            CandidateSource::H3 { resolution: Some(r) }
                if !(*r <= self.max_h3_resolution && H3_RESOLUTION.contains(r)) =>
            {
                return Err(out_of_range(
                    "candidates.resolution",
                    r,
                    format!("{} to {}", H3_RESOLUTION.start(), self.max_h3_resolution),
                ));
            }
            CandidateSource::Sites { sites } if sites.len() > self.max_sites => {
                return Err(out_of_range(
                    "candidates.sites",
                    format!("{} sites", sites.len()),
                    format!("at most {} sites", self.max_sites),
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A time budget: a deadline and a cancel flag, checked by long loops (cheap to clone and to
/// check). [`Budget::unlimited`] never runs out.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    deadline: Option<Instant>,
    allowed: Option<Duration>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Budget {
    /// A budget that never runs out.
    pub fn unlimited() -> Self {
        Budget::default()
    }

    /// A budget of `d` from now.
    pub fn of(d: Duration) -> Self {
        Budget { deadline: Instant::now().checked_add(d), allowed: Some(d), cancel: None }
    }

    /// The same budget, also run out once `flag` is set (e.g. when the client has gone).
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// True once the deadline has passed or the flag is set.
    #[inline]
    pub fn exhausted(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The time left (None: unlimited).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The time allowed (None: unlimited).
    pub fn allowed(&self) -> Option<Duration> {
        self.allowed
    }

    /// `Err(OutOfTime)` once exhausted.
    ///
    /// # Errors
    /// [`PlanError::OutOfTime`] with the seconds allowed.
    pub fn check(&self) -> Result<(), PlanError> {
        if self.exhausted() {
            Err(PlanError::OutOfTime { seconds: self.allowed.map_or(0.0, |d| d.as_secs_f64()) })
        } else {
            Ok(())
        }
    }
}

/// Checks a budget every `every` calls of [`Ticker::tick`] (so that a tight loop pays for the
/// clock only now and then); once it has run out it stays out.
pub(crate) struct Ticker<'a> {
    budget: &'a Budget,
    n: u32,
    every: u32,
    out: bool,
}

impl<'a> Ticker<'a> {
    pub(crate) fn new(budget: &'a Budget, every: u32) -> Self {
        Ticker { budget, n: 0, every: every.max(1), out: false }
    }

    /// True once the budget has run out (checked every `every` calls).
    #[inline]
    pub(crate) fn tick(&mut self) -> bool {
        if self.out {
            return true;
        }
        self.n += 1;
        if self.n >= self.every {
            self.n = 0;
            self.out = self.budget.exhausted();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(f: impl FnOnce(&mut PlanRequest)) -> PlanRequest {
        let mut r = PlanRequest { new: Some(5), ..Default::default() };
        f(&mut r);
        r
    }

    fn err(r: &PlanRequest) -> String {
        Bounds::default().check_plan(r, r.radius_m.unwrap_or(2000.0)).unwrap_err().to_string()
    }

    #[test]
    fn every_bound_is_named() {
        let b = Bounds::default();
        assert!(b.check_plan(&req(|_| {}), 2000.0).is_ok());
        for r in [99.0, 100_001.0, 0.0, -5.0, f64::NAN, f64::INFINITY] {
            let e = err(&req(|q| q.radius_m = Some(r)));
            assert!(e.contains("radius") && e.contains("100 to 100000"), "{e}");
        }
        assert!(b.check_plan(&req(|q| q.radius_m = Some(100.0)), 100.0).is_ok());
        assert!(b.check_plan(&req(|q| q.radius_m = Some(100_000.0)), 100_000.0).is_ok());
        let e = err(&req(|q| q.new = Some(5_001)));
        assert!(e.contains("`new`") && e.contains("1 to 5000"), "{e}");
        assert!(b.check_plan(&req(|q| q.new = Some(5_000)), 2000.0).is_ok());
        let e = err(&req(|q| q.capacity = Some(0)));
        assert!(e.contains("`capacity`") && e.contains("1 to 1000000"), "{e}");
        let e = err(&req(|q| q.capacity = Some(1_000_001)));
        assert!(e.contains("`capacity`"), "{e}");
        let e = err(&req(|q| q.max_per_county = Some(0)));
        assert!(e.contains("`max_per_county`"), "{e}");
        let e = err(&req(|q| q.max_per_county = Some(5_001)));
        assert!(e.contains("`max_per_county`") && e.contains("1 to 5000"), "{e}");
        let e = err(&req(|q| q.exclude = vec!["x".into(); 10_001]));
        assert!(e.contains("`exclude`") && e.contains("at most 10000 ids"), "{e}");
        let e = err(&req(|q| q.require = vec!["x".into(); 10_001]));
        assert!(e.contains("`require`"), "{e}");
        let e = err(&req(|q| q.candidates = CandidateSource::H3 { resolution: Some(16) }));
        assert!(e.contains("`candidates.resolution`") && e.contains("0 to 15"), "{e}");
        let tight = Bounds { max_h3_resolution: 8, ..Bounds::default() };
        let q = req(|q| q.candidates = CandidateSource::H3 { resolution: Some(9) });
        let e = tight.check_plan(&q, 2000.0).unwrap_err().to_string();
        assert!(e.contains("0 to 8"), "{e}");
        let sites = vec![super::super::Site { id: "a".into(), lon: 0.0, lat: 0.0 }; 25_001];
        let e = err(&req(|q| q.candidates = CandidateSource::Sites { sites }));
        assert!(e.contains("`candidates.sites`") && e.contains("at most 25000"), "{e}");
        let e = err(&req(|q| {
            q.problem = Problem::Lscp;
            q.new = None;
            q.target = Some(0.0)
        }));
        assert!(e.contains("target") && e.contains("(0, 1]"), "{e}");
        let e = err(&req(|q| {
            q.problem = Problem::Lscp;
            q.new = Some(0)
        }));
        assert!(e.contains("`new`"), "{e}");
    }

    #[test]
    fn a_budget_runs_out_and_a_flag_cancels() {
        assert!(!Budget::unlimited().exhausted());
        let b = Budget::of(Duration::ZERO);
        assert!(b.exhausted());
        assert!(matches!(b.check(), Err(PlanError::OutOfTime { .. })));
        let flag = Arc::new(AtomicBool::new(false));
        let b = Budget::of(Duration::from_secs(3600)).with_cancel(flag.clone());
        assert!(b.check().is_ok());
        flag.store(true, Ordering::Relaxed);
        assert!(b.exhausted());
        let mut t = Ticker::new(&b, 3);
        assert!(!t.tick() && !t.tick());
        assert!(t.tick() && t.tick());
    }
}
