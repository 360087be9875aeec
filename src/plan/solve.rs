//! The steps of one plan (pure): check the request and find the demand in scope
//! ([`Setup`]), build the candidates with the required and excluded ones ([`Cands`]), solve
//! the problem asked ([`mclp`], [`lscp`], [`pmedian`], each giving a [`Solved`]) and summarise
//! the coverage before and after ([`summarise`]).

use std::collections::HashMap;
use std::time::Instant;

use super::engine::{self, Constraints, CoverConstraints, Instance, Options, NO_GROUP};
use super::{
    aggregate, candidates, cap_instance, capacity, estimate_pairs, pmedian_instance, reach_sets_within, refuse_over,
    rel, summary, tree_of, Bounds, Budget, Candidate, ChosenSite, PlanError, PlanRequest, PlanResult, Problem,
};
use crate::analysis::Analysis;
use crate::index::sphere::{m_to_chord_2, to_unit, Unit3};
use crate::model::{Dataset, Level, UnitIdx, NO_UNIT};

/// Seconds per phase, in the order the phases ran.
struct Clock {
    lap: Instant,
    timings: Vec<(String, f64)>,
}

impl Clock {
    fn new() -> Clock {
        Clock { lap: Instant::now(), timings: Vec::new() }
    }

    fn tick(&mut self, name: &str) {
        self.timings.push((name.to_string(), self.lap.elapsed().as_secs_f64()));
        self.lap = Instant::now();
    }
}

/// What every step needs: the data, the request as checked, the demand in scope.
struct Setup<'a> {
    ds: &'a Dataset,
    an: &'a Analysis,
    req: &'a PlanRequest,
    level: Level,
    radius: f64,
    /// The radius as a squared chord on the unit sphere.
    r2: f64,
    /// Sites to choose (LSCP: at most).
    k: usize,
    /// The unit of `within`.
    within: Option<UnitIdx>,
    /// Households in scope with veterans.
    scope: Vec<u32>,
    /// Existing coverage and distance at this level.
    house: summary::Households,
    bounds: &'a Bounds,
    budget: &'a Budget,
}

impl Setup<'_> {
    fn weight(&self, h: u32) -> f64 {
        f64::from(self.ds.households.veterans[h as usize])
    }
}

/// Checks `req` against `bounds` and the data; finds the households in scope.
fn setup<'a>(
    ds: &'a Dataset,
    an: &'a Analysis,
    req: &'a PlanRequest,
    bounds: &'a Bounds,
    budget: &'a Budget,
) -> Result<Setup<'a>, PlanError> {
    let level = req.level;
    let radius = req.radius_m.unwrap_or_else(|| ds.standard.radius_m(level));
    bounds.check_plan(req, radius)?;
    let k = match req.problem {
        Problem::Mclp | Problem::Pmedian => req.new.unwrap_or(1),
        Problem::Lscp => req.new.unwrap_or(usize::MAX),
    };
    let within = match &req.within {
        Some(code) => Some(ds.divisions.find(code.trim()).ok_or_else(|| PlanError::UnknownCode(code.clone()))?),
        None => None,
    };
    let hh = &ds.households;
    let asg = &an.assignment;
    let house = summary::Households::new(ds, an, level, radius);
    let in_scope = |h: usize| -> bool {
        hh.veterans[h] > 0
            && match within {
                None => true,
                Some(u) => asg.unit[h] != NO_UNIT && ds.divisions.is_within(asg.unit[h], u),
            }
    };
    let scope: Vec<u32> = (0..hh.len()).filter(|&h| in_scope(h)).map(|h| h as u32).collect();
    Ok(Setup { ds, an, req, level, radius, r2: m_to_chord_2(radius), k, within, scope, house, bounds, budget })
}

/// The candidates of a plan, with the required and excluded ones and each one's county group.
struct Cands {
    list: Vec<Candidate>,
    pts: Vec<Unit3>,
    fixed: Vec<u32>,
    excluded: Vec<u32>,
    group: Vec<u32>,
}

/// Builds the candidates and checks `require`, `exclude`, `max_per_county` and K against them.
fn candidates(s: &Setup<'_>, notes: &mut Vec<String>) -> Result<Cands, PlanError> {
    let (ds, req) = (s.ds, s.req);
    let mut cands = candidates::build(
        ds,
        s.an,
        s.level,
        s.radius,
        &req.candidates,
        &s.house.covered,
        &s.scope,
        s.bounds.max_h3_resolution,
    )?;
    let total_cands = cands.len();
    if let Some(u) = s.within {
        cands.retain(|c| c.unit != NO_UNIT && ds.divisions.is_within(c.unit, u));
    }
    let (fixed, excluded) = required_and_excluded(&cands, req)?;
    let group = county_groups(ds, &cands);
    if let Some(m) = req.max_per_county {
        let ungrouped = group.iter().filter(|&&g| g == NO_GROUP).count();
        if ungrouped > 0 {
            notes.push(format!("{ungrouped} candidates lie in no county; --max-per-county does not limit them"));
        }
        let mut per: HashMap<u32, usize> = HashMap::new();
        for &f in &fixed {
            *per.entry(group[f as usize]).or_default() += 1;
        }
        if per.iter().any(|(&g, &n)| g != NO_GROUP && n > m) {
            return Err(PlanError::Conflict(format!("the required sites put more than {m} in one county")));
        }
    }
    let usable = cands.len().saturating_sub(excluded.len());
    if usable == 0 || cands.is_empty() {
        let why = if total_cands == 0 {
            "the candidate source gave none".to_string()
        } else {
            format!("none of the {total_cands} candidates is left after --within and --exclude")
        };
        return Err(PlanError::NoCandidates(why));
    }
    let k = s.k;
    if req.problem != Problem::Lscp && k > usable {
        return Err(PlanError::KTooLarge { k, candidates: usable });
    }
    if fixed.len() > k {
        return Err(PlanError::Conflict(format!("{} required sites are more than --new {k}", fixed.len())));
    }
    let pts = cands.iter().map(|c| to_unit(c.lon, c.lat)).collect();
    Ok(Cands { list: cands, pts, fixed, excluded, group })
}

/// The positions of `require` and `exclude` among the candidates; duplicates are folded (each
/// candidate counts once).
fn required_and_excluded(cands: &[Candidate], req: &PlanRequest) -> Result<(Vec<u32>, Vec<u32>), PlanError> {
    let by_id: HashMap<&str, usize> = cands.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
    let mut is_fixed = vec![false; cands.len()];
    let mut is_excluded = vec![false; cands.len()];
    let mut fixed = Vec::new();
    for id in &req.require {
        match by_id.get(id.as_str()) {
            Some(&j) => {
                if !std::mem::replace(&mut is_fixed[j], true) {
                    fixed.push(j as u32)
                }
            }
            None => return Err(PlanError::UnknownSite { what: "required", id: id.clone() }),
        }
    }
    let mut excluded = Vec::new();
    for id in &req.exclude {
        match by_id.get(id.as_str()) {
            Some(&j) => {
                if is_fixed[j] {
                    return Err(PlanError::Conflict(format!("site {id:?} is both required and excluded")));
                }
                if !std::mem::replace(&mut is_excluded[j], true) {
                    excluded.push(j as u32)
                }
            }
            None => return Err(PlanError::UnknownSite { what: "excluded", id: id.clone() }),
        }
    }
    Ok((fixed, excluded))
}

/// Each candidate's county as a dense group number ([`NO_GROUP`] outside every county).
fn county_groups(ds: &Dataset, cands: &[Candidate]) -> Vec<u32> {
    let mut county_of: HashMap<UnitIdx, u32> = HashMap::new();
    cands
        .iter()
        .map(|c| match (c.unit != NO_UNIT).then(|| ds.divisions.ancestor(c.unit, Level::County)).flatten() {
            Some(u) => {
                let n = county_of.len() as u32;
                *county_of.entry(u).or_insert(n)
            }
            None => NO_GROUP,
        })
        .collect()
}

/// What solving one problem gives, before the summary.
struct Solved {
    chosen: Vec<u32>,
    gains: Vec<f64>,
    objective: f64,
    bound: f64,
    gap: f64,
    objective_name: String,
    swaps: usize,
    bound_iterations: usize,
    demand_points: usize,
    unreachable: u64,
    served_before: Option<f64>,
    served_after: Option<f64>,
    site_served: Option<Vec<f64>>,
}

/// The covering instance of MCLP and LSCP: the uncovered households in scope aggregated into
/// demand points by the candidates reaching them. Returns it with its number of demand points
/// and the veterans no candidate reaches.
fn covering_instance(
    s: &Setup<'_>,
    c: &Cands,
    clock: &mut Clock,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<(Instance, usize, u64), PlanError> {
    let hh = &s.ds.households;
    let unc: Vec<u32> = s.scope.iter().copied().filter(|&h| !s.house.covered[h as usize]).collect();
    let unc_pts: Vec<Unit3> = unc.iter().map(|&h| to_unit(hh.lon[h as usize], hh.lat[h as usize])).collect();
    let ctree = tree_of(&c.pts);
    refuse_over(
        "candidate × household pairs (coverage sets)",
        estimate_pairs(unc_pts.len(), |i| ctree.locate_within_distance(unc_pts[i], s.r2).count()),
        s.bounds.max_pairs,
    )?;
    drop(ctree);
    let sets = reach_sets_within(&c.pts, &unc_pts, s.r2, s.bounds.max_pairs, s.budget, progress)?;
    s.budget.check()?;
    let agg = aggregate(&sets, unc.len(), |p| s.weight(unc[p]));
    let unreachable = agg.unreachable as u64;
    let demand_points = agg.weight.len();
    let inst = Instance::covering(agg.weight, &agg.sets, c.group.clone());
    clock.tick("coverage sets");
    Ok((inst, demand_points, unreachable))
}

fn options(s: &Setup<'_>) -> Options {
    Options { budget: s.budget.clone(), ..Options::default() }
}

fn constraints(s: &Setup<'_>, c: &Cands) -> Constraints {
    Constraints { k: s.k, fixed: c.fixed.clone(), group_cap: s.req.max_per_county, excluded: c.excluded.clone() }
}

/// Maximal covering: the most veterans newly covered by K sites (with `capacity`, newly served).
fn mclp(
    s: &Setup<'_>,
    c: &Cands,
    clock: &mut Clock,
    notes: &mut Vec<String>,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Solved, PlanError> {
    let (inst, demand_points, unreachable) = covering_instance(s, c, clock, progress)?;
    let k = s.k;
    let sol = engine::solve_minsum(&inst, &constraints(s, c), &options(s), progress);
    s.budget.check()?;
    if sol.sites.len() < k {
        notes.push(format!(
            "only {} sites add coverage (of {k} asked){}",
            sol.sites.len(),
            if s.req.max_per_county.is_some() { " under --max-per-county" } else { "" }
        ));
    }
    let Some(cap) = s.req.capacity else {
        let bound = sol.saving_bound().max(sol.saving);
        return Ok(Solved {
            objective: sol.saving,
            bound,
            gap: rel(bound - sol.saving, bound),
            chosen: sol.sites,
            gains: sol.gains,
            objective_name: "veterans newly covered".to_string(),
            swaps: sol.swaps,
            bound_iterations: sol.bound_iterations,
            demand_points,
            unreachable,
            served_before: None,
            served_after: None,
            site_served: None,
        });
    };
    let ci = cap_instance(
        s.ds,
        s.an,
        s.level,
        s.radius,
        &s.scope,
        &c.pts,
        &c.group,
        s.bounds.max_pairs,
        s.budget,
        progress,
    )?;
    let cs = capacity::solve_capacitated_within(
        &ci,
        f64::from(cap),
        k,
        &c.fixed,
        &c.excluded,
        s.req.max_per_county,
        s.budget,
        progress,
    );
    s.budget.check()?;
    let existing_reaching = {
        let mut seen = vec![false; ci.n_existing];
        for &(_, _, st) in &ci.pairs {
            if (st as usize) < ci.n_existing {
                seen[st as usize] = true;
            }
        }
        seen.iter().filter(|&&x| x).count()
    };
    let covered_scope_before: f64 =
        s.scope.iter().filter(|&&h| s.house.covered[h as usize]).map(|&h| s.weight(h)).sum();
    let ub_after = (covered_scope_before + sol.saving_bound()).min((existing_reaching + k) as f64 * f64::from(cap));
    let ub = (ub_after - cs.served_before).max(0.0);
    let objective = cs.served_after - cs.served_before;
    let bound = ub.max(objective);
    Ok(Solved {
        objective,
        bound,
        gap: rel(bound - objective, bound),
        served_before: Some(cs.served_before),
        served_after: Some(cs.served_after),
        site_served: Some(cs.site_served.clone()),
        chosen: cs.sites,
        gains: cs.gains,
        objective_name: "veterans newly served (capacity-limited)".to_string(),
        swaps: sol.swaps,
        bound_iterations: sol.bound_iterations,
        demand_points,
        unreachable,
    })
}

/// Set covering: the fewest sites that cover every coverable veteran, or `target`.
fn lscp(
    s: &Setup<'_>,
    c: &Cands,
    clock: &mut Clock,
    notes: &mut Vec<String>,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Solved, PlanError> {
    let (inst, demand_points, unreachable) = covering_instance(s, c, clock, progress)?;
    let req = s.req;
    let k = s.k;
    let scope_w: f64 = s.scope.iter().map(|&h| s.weight(h)).sum();
    let before_w: f64 = s.scope.iter().filter(|&&h| s.house.covered[h as usize]).map(|&h| s.weight(h)).sum();
    let reachable: f64 = inst.weight.iter().sum();
    let want = match req.target {
        Some(t) => (t * scope_w - before_w).max(0.0),
        None => reachable,
    };
    if want > reachable + 1e-9 {
        notes.push(format!(
            "target {:.2}% is out of reach: the candidates can bring coverage to {:.2}% at most",
            req.target.unwrap_or(1.0) * 100.0,
            (before_w + reachable) / scope_w.max(1.0) * 100.0
        ));
    }
    let cc = CoverConstraints {
        target: want.min(reachable),
        fixed: c.fixed.clone(),
        group_cap: req.max_per_county,
        excluded: c.excluded.clone(),
    };
    let sol = engine::solve_cover(&inst, &cc, &options(s), progress);
    s.budget.check()?;
    if !sol.reached {
        notes.push(format!(
            "the target is not reached: {} of {} veterans{}",
            sol.covered,
            sol.target,
            if req.max_per_county.is_some() { " under --max-per-county" } else { "" }
        ));
    }
    if sol.sites.len() > k {
        return Err(PlanError::BadOption(format!(
            "reaching the target needs {} sites, more than --new {k}",
            sol.sites.len()
        )));
    }
    let objective = sol.sites.len() as f64;
    let bound = if sol.reached { sol.lower_sites as f64 } else { 0.0 };
    Ok(Solved {
        objective,
        bound,
        gap: rel(objective - bound, objective),
        chosen: sol.sites,
        gains: sol.gains,
        objective_name: "new sites".to_string(),
        swaps: 0,
        bound_iterations: sol.bound_iterations,
        demand_points,
        unreachable,
        served_before: None,
        served_after: None,
        site_served: None,
    })
}

/// p-median: the least veteran-weighted mean distance to the nearest station with K new sites.
fn pmedian(
    s: &Setup<'_>,
    c: &Cands,
    clock: &mut Clock,
    notes: &mut Vec<String>,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Solved, PlanError> {
    let (st, level, k) = (&s.ds.stations, s.level, s.k);
    if st.level.iter().zip(&st.active).all(|(&l, &a)| l != level || !a) {
        return Err(PlanError::BadOption(format!(
            "p-median at {level} level needs at least one active {level} station to measure distances from"
        )));
    }
    let (inst, const_cost, wsum, npts) = pmedian_instance(
        &c.pts,
        &s.scope,
        &s.ds.households,
        &s.house.dist,
        &c.group,
        s.bounds.max_pairs,
        s.budget,
        progress,
    )?;
    clock.tick("distance pairs");
    let sol = engine::solve_minsum(&inst, &constraints(s, c), &options(s), progress);
    s.budget.check()?;
    let objective = (sol.cost + const_cost) / wsum;
    let bound = ((sol.lower_cost + const_cost) / wsum).min(objective);
    if sol.sites.len() < k {
        notes.push(format!("only {} sites bring anyone closer (of {k} asked)", sol.sites.len()));
    }
    Ok(Solved {
        objective,
        bound,
        gap: rel(objective - bound, objective),
        chosen: sol.sites,
        gains: sol.gains,
        objective_name: "veteran-weighted mean distance to the nearest station, metres".to_string(),
        swaps: sol.swaps,
        bound_iterations: sol.bound_iterations,
        demand_points: npts,
        unreachable: 0,
        served_before: None,
        served_after: None,
        site_served: None,
    })
}

/// The chosen sites with their admin codes and the coverage before and after, per unit.
fn summarise(
    s: &Setup<'_>,
    c: &Cands,
    solved: Solved,
    notes: Vec<String>,
    mut clock: Clock,
    t0: Instant,
) -> PlanResult {
    let (ds, hh) = (s.ds, &s.ds.households);
    let chosen_pts: Vec<Unit3> = solved.chosen.iter().map(|&j| c.pts[j as usize]).collect();
    let after = s.house.after(hh, &chosen_pts, s.r2);
    let newly = s.house.newly_covered(hh, &s.scope, &chosen_pts, s.r2);
    let sites: Vec<ChosenSite> = solved
        .chosen
        .iter()
        .enumerate()
        .map(|(r, &j)| {
            let cand = &c.list[j as usize];
            let codes = core::array::from_fn(|l| {
                if cand.unit == NO_UNIT {
                    return String::new();
                }
                let a = ds.divisions.chain(cand.unit)[l];
                if a == NO_UNIT {
                    String::new()
                } else {
                    ds.divisions.get(a).code.clone()
                }
            });
            ChosenSite {
                rank: r + 1,
                id: cand.id.clone(),
                name: cand.name.clone(),
                source: cand.source.to_string(),
                lon: cand.lon,
                lat: cand.lat,
                required: c.fixed.contains(&j),
                newly_covered_veterans: newly[r],
                gain: solved.gains[r],
                served_veterans: solved.site_served.as_ref().map(|v| v[r]),
                codes,
            }
        })
        .collect();
    let site_units: Vec<UnitIdx> = solved.chosen.iter().map(|&j| c.list[j as usize].unit).collect();
    let units = summary::units(ds, s.an, s.level, s.within, &s.house, &after, &site_units);
    let veterans_of = |pred: &dyn Fn(u32) -> bool| -> u64 {
        s.scope.iter().filter(|&&h| pred(h)).map(|&h| u64::from(hh.veterans[h as usize])).sum()
    };
    let veterans = veterans_of(&|_| true);
    let covered_before = veterans_of(&|h| s.house.covered[h as usize]);
    let covered_after = veterans_of(&|h| after.covered[h as usize]);
    let mean = |d: &[f64]| -> Option<f64> {
        let (mut sum, mut w) = (0.0, 0.0);
        for &h in &s.scope {
            let x = d[h as usize];
            if x.is_finite() {
                sum += x * s.weight(h);
                w += s.weight(h);
            }
        }
        (w > 0.0).then_some(sum / w)
    };
    let mean_distance_before_m = mean(&s.house.dist);
    let mean_distance_after_m = mean(&after.dist);
    clock.tick("summary");
    let mut request = s.req.clone();
    request.radius_m = Some(s.radius);
    PlanResult {
        request,
        radius_m: s.radius,
        objective_name: solved.objective_name,
        objective: solved.objective,
        bound: solved.bound,
        gap: solved.gap,
        sites,
        candidates: c.list.len(),
        households: s.scope.len(),
        demand_points: solved.demand_points,
        veterans,
        covered_before,
        covered_after,
        unreachable_veterans: solved.unreachable,
        served_before: solved.served_before,
        served_after: solved.served_after,
        mean_distance_before_m,
        mean_distance_after_m,
        units,
        swaps: solved.swaps,
        bound_iterations: solved.bound_iterations,
        notes,
        seconds: t0.elapsed().as_secs_f64(),
        timings: clock.timings,
    }
}

/// One plan, step by step (see the module doc).
pub(super) fn run(
    ds: &Dataset,
    an: &Analysis,
    req: &PlanRequest,
    bounds: &Bounds,
    budget: &Budget,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<PlanResult, PlanError> {
    let t0 = Instant::now();
    let mut clock = Clock::new();
    let s = setup(ds, an, req, bounds, budget)?;
    clock.tick("demand");
    budget.check()?;
    let mut notes = Vec::new();
    let c = candidates(&s, &mut notes)?;
    clock.tick("candidates");
    let solved = match req.problem {
        Problem::Mclp => mclp(&s, &c, &mut clock, &mut notes, progress)?,
        Problem::Lscp => lscp(&s, &c, &mut clock, &mut notes, progress)?,
        Problem::Pmedian => pmedian(&s, &c, &mut clock, &mut notes, progress)?,
    };
    clock.tick("solve");
    budget.check()?;
    Ok(summarise(&s, &c, solved, notes, clock, t0))
}
