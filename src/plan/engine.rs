//! The solvers on an abstract instance (pure computation): demand points with weights, candidate
//! sites with the demand they reach, and the cost each demand point already has.
//!
//! # The min-sum model (MCLP and p-median)
//! Demand point `i` has weight `w_i` and a *base* cost `b_i` (per unit of weight) that it keeps
//! when no new site serves it better: its distance to the nearest existing station (p-median)
//! or 1 when it is not yet covered (MCLP, where a covering site costs 0). Candidate `j` lists
//! the pairs `(i, d_ij)` with `d_ij < b_i`; farther pairs can never matter. Choosing a set `X`
//! of new sites costs `Σ_i w_i min(b_i, min_{j∈X} d_ij)`; the *saving* is the base cost minus
//! that. MCLP maximises the saving (veterans newly covered), p-median minimises the cost.
//!
//! [`solve_minsum`] runs lazy greedy (CELF) then swap (interchange) local search, and bounds
//! the optimum from the other side by the Lagrangian relaxation of the assignment constraints
//! (`Σ_j y_ij = 1`), maximised by subgradient steps. For multipliers `μ_i ∈ [0, w_i b_i]`
//! `L(μ) = Σ_i μ_i + Σ_{K best j} min(0, ρ_j)`, `ρ_j = Σ_{(i,d)∈j} min(0, w_i d_ij − μ_i)` is
//! a lower bound of the cost of every feasible plan (pairs left out contribute 0 because
//! `w_i d_ij ≥ w_i b_i ≥ μ_i`), so `base − L(μ)` bounds the saving from above. The "K best"
//! respect the per-group caps (a partition matroid, where picking the most negative first is
//! optimal). This bound equals the LP relaxation's at its maximum.
//!
//! # The covering model (LSCP)
//! [`solve_cover`]: the fewest sites whose lists reach a target weight; greedy then
//! redundancy removal, with a Lagrangian lower bound on the number of sites (relaxing
//! `y_i ≤ Σ_j a_ij x_j`, the remaining `y` problem being a fractional knapsack).
//!
//! Fixed (required) sites are part of every plan; groups (counties) cap how many sites,
//! fixed ones included, a plan may take from each.
//!
//! # Time budget
//! [`Options::budget`] is checked inside every long loop (greedy, each swap pass, every
//! subgradient step, the covering retries); once it runs out the solver stops where it is and
//! returns what it has, which the caller must discard ([`super::solve_within`] answers
//! [`super::PlanError::OutOfTime`]).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::limits::{Budget, Ticker};

/// "No group" (uncapped) in [`Instance::group`].
pub const NO_GROUP: u32 = u32::MAX;
const NONE: u32 = u32::MAX;

/// A siting instance: demand points and the candidate sites that reach them.
#[derive(Debug, Clone, Default)]
pub struct Instance {
    /// Weight of each demand point (veterans).
    pub weight: Vec<f64>,
    /// Base cost of each demand point per unit of weight (see the module docs).
    pub base: Vec<f64>,
    /// Offsets of each candidate's pairs in `dem`/`dist` (length = candidates + 1).
    pub start: Vec<usize>,
    /// Demand point of each pair.
    pub dem: Vec<u32>,
    /// Cost of each pair per unit of weight (`< base` of its demand point).
    pub dist: Vec<f64>,
    /// Group (county) of each candidate, or [`NO_GROUP`].
    pub group: Vec<u32>,
}

impl Instance {
    /// Builds an instance from per-candidate lists of `(demand, cost)`; pairs whose cost is
    /// not below the demand point's base are dropped (they can never serve it better).
    ///
    /// # Panics
    /// If the lengths disagree or a demand index is out of range.
    pub fn new(weight: Vec<f64>, base: Vec<f64>, lists: &[Vec<(u32, f64)>], group: Vec<u32>) -> Self {
        assert_eq!(weight.len(), base.len(), "one base cost per demand point");
        assert_eq!(lists.len(), group.len(), "one group per candidate");
        let mut start = Vec::with_capacity(lists.len() + 1);
        let mut dem = Vec::new();
        let mut dist = Vec::new();
        start.push(0);
        for l in lists {
            for &(i, d) in l {
                if d < base[i as usize] {
                    dem.push(i);
                    dist.push(d);
                }
            }
            start.push(dem.len());
        }
        Instance { weight, base, start, dem, dist, group }
    }

    /// A covering instance: every demand point has base 1 and a covering site costs 0.
    pub fn covering(weight: Vec<f64>, sets: &[Vec<u32>], group: Vec<u32>) -> Self {
        let n = weight.len();
        let lists: Vec<Vec<(u32, f64)>> = sets.iter().map(|s| s.iter().map(|&i| (i, 0.0)).collect()).collect();
        Instance::new(weight, vec![1.0; n], &lists, group)
    }

    /// Number of demand points.
    pub fn n_demand(&self) -> usize {
        self.weight.len()
    }

    /// Number of candidate sites.
    pub fn n_candidates(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// The pairs of candidate `j`.
    #[inline]
    pub fn pairs(&self, j: u32) -> impl Iterator<Item = (u32, f64)> + '_ {
        let r = self.start[j as usize]..self.start[j as usize + 1];
        self.dem[r.clone()].iter().copied().zip(self.dist[r].iter().copied())
    }

    /// Total base cost `Σ w_i b_i`.
    pub fn base_cost(&self) -> f64 {
        self.weight.iter().zip(&self.base).map(|(w, b)| w * b).sum()
    }

    /// The cost of choosing `sites` (see the module docs).
    pub fn cost_of(&self, sites: &[u32]) -> f64 {
        let mut cur = self.base.clone();
        for &j in sites {
            for (i, d) in self.pairs(j) {
                let c = &mut cur[i as usize];
                if d < *c {
                    *c = d;
                }
            }
        }
        self.weight.iter().zip(&cur).map(|(w, c)| w * c).sum()
    }

    /// Weight reached by `sites` in a covering instance (demand points with a pair in some site).
    pub fn covered_by(&self, sites: &[u32]) -> f64 {
        let mut hit = vec![false; self.n_demand()];
        for &j in sites {
            for (i, _) in self.pairs(j) {
                hit[i as usize] = true;
            }
        }
        hit.iter().zip(&self.weight).filter(|(h, _)| **h).map(|(_, w)| w).sum()
    }
}

/// Which plans are allowed.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    /// Sites to choose in all, fixed ones included.
    pub k: usize,
    /// Sites every plan contains.
    pub fixed: Vec<u32>,
    /// At most this many sites per group (fixed ones count).
    pub group_cap: Option<usize>,
    /// Candidates a plan may not take (besides those already fixed).
    pub excluded: Vec<u32>,
}

/// Tuning of the solvers.
#[derive(Debug, Clone)]
pub struct Options {
    /// Passes of swap local search at most.
    pub max_swap_passes: usize,
    /// Subgradient iterations at most.
    pub bound_iterations: usize,
    /// Stop the subgradient once the relative gap is below this.
    pub target_gap: f64,
    /// Time budget: every long loop stops once it runs out (the result is then partial).
    pub budget: Budget,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_swap_passes: 50, bound_iterations: 1_000, target_gap: 1e-4, budget: Budget::unlimited() }
    }
}

/// Reports progress: phase, done, total.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// A min-sum plan and its bound.
#[derive(Debug, Clone, PartialEq)]
pub struct MinSumSolution {
    /// Chosen sites: fixed ones first, then in order of decreasing marginal saving.
    pub sites: Vec<u32>,
    /// Marginal saving of each site in that order (they sum to `saving`).
    pub gains: Vec<f64>,
    /// Base cost `Σ w_i b_i`.
    pub base_cost: f64,
    /// Cost of the plan.
    pub cost: f64,
    /// `base_cost − cost`.
    pub saving: f64,
    /// Lower bound of the cost of every feasible plan (so `base_cost − lower_cost` bounds the saving).
    pub lower_cost: f64,
    /// Improving swaps made by local search.
    pub swaps: usize,
    /// Subgradient iterations run.
    pub bound_iterations: usize,
}

impl MinSumSolution {
    /// Upper bound of the saving.
    pub fn saving_bound(&self) -> f64 {
        self.base_cost - self.lower_cost
    }
}

#[derive(PartialEq)]
struct HeapItem {
    key: f64,
    j: u32,
    stamp: usize,
}
impl Eq for HeapItem {}
impl Ord for HeapItem {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key.total_cmp(&o.key).then_with(|| o.j.cmp(&self.j))
    }
}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Group counts and the cap test.
#[derive(Clone)]
struct Groups {
    count: Vec<usize>,
    cap: Option<usize>,
}

impl Groups {
    fn new(inst: &Instance, cap: Option<usize>) -> Self {
        let n = inst.group.iter().filter(|&&g| g != NO_GROUP).map(|&g| g as usize + 1).max().unwrap_or(0);
        Groups { count: vec![0; n], cap }
    }
    #[inline]
    fn full(&self, g: u32) -> bool {
        match self.cap {
            Some(c) if g != NO_GROUP => self.count[g as usize] >= c,
            _ => false,
        }
    }
    #[inline]
    fn add(&mut self, g: u32, d: isize) {
        if g != NO_GROUP {
            let c = &mut self.count[g as usize];
            *c = (*c as isize + d) as usize;
        }
    }
}

/// Reverse lists: for each demand point, the candidates that reach it and their costs.
struct Reverse {
    start: Vec<usize>,
    cand: Vec<u32>,
    dist: Vec<f64>,
}

impl Reverse {
    fn new(inst: &Instance) -> Self {
        let n = inst.n_demand();
        let mut deg = vec![0usize; n + 1];
        for &i in &inst.dem {
            deg[i as usize + 1] += 1;
        }
        for i in 0..n {
            deg[i + 1] += deg[i];
        }
        let mut fill = deg.clone();
        let mut cand = vec![0u32; inst.dem.len()];
        let mut dist = vec![0.0; inst.dem.len()];
        for j in 0..inst.n_candidates() as u32 {
            for (i, d) in inst.pairs(j) {
                let p = &mut fill[i as usize];
                cand[*p] = j;
                dist[*p] = d;
                *p += 1;
            }
        }
        Reverse { start: deg, cand, dist }
    }
    #[inline]
    fn of(&self, i: u32) -> impl Iterator<Item = (u32, f64)> + '_ {
        let r = self.start[i as usize]..self.start[i as usize + 1];
        self.cand[r.clone()].iter().copied().zip(self.dist[r].iter().copied())
    }
}

/// Solves a min-sum instance (MCLP or p-median): greedy, swaps, Lagrangian bound.
///
/// Fewer than `k` sites are chosen when no further site saves anything (or caps forbid it).
///
/// # Panics
/// If a fixed or excluded site is out of range.
pub fn solve_minsum(inst: &Instance, c: &Constraints, opts: &Options, progress: Progress) -> MinSumSolution {
    let n = inst.n_candidates();
    let base_cost = inst.base_cost();
    let mut groups = Groups::new(inst, c.group_cap);
    let mut allowed = vec![true; n];
    for &j in &c.excluded {
        allowed[j as usize] = false;
    }
    // Fixed sites fold into the base.
    let mut base_f = inst.base.clone();
    for &f in &c.fixed {
        allowed[f as usize] = false;
        groups.add(inst.group[f as usize], 1);
        for (i, d) in inst.pairs(f) {
            let b = &mut base_f[i as usize];
            if d < *b {
                *b = d;
            }
        }
    }
    let k_free = c.k.saturating_sub(c.fixed.len());
    let mut cur = base_f.clone();
    let gain_of = |cur: &[f64], j: u32| -> f64 {
        inst.pairs(j)
            .map(|(i, d)| {
                let ci = cur[i as usize];
                if d < ci {
                    inst.weight[i as usize] * (ci - d)
                } else {
                    0.0
                }
            })
            .sum()
    };

    // Lazy greedy (CELF).
    let mut heap: BinaryHeap<HeapItem> = (0..n as u32)
        .filter(|&j| allowed[j as usize])
        .map(|j| HeapItem { key: gain_of(&cur, j), j, stamp: 0 })
        .collect();
    let mut chosen: Vec<u32> = Vec::with_capacity(k_free.min(n));
    let mut ticker = Ticker::new(&opts.budget, 64);
    while chosen.len() < k_free {
        if ticker.tick() {
            break;
        }
        let Some(top) = heap.pop() else { break };
        if groups.full(inst.group[top.j as usize]) {
            continue;
        }
        if top.stamp != chosen.len() {
            let g = gain_of(&cur, top.j);
            heap.push(HeapItem { key: g, j: top.j, stamp: chosen.len() });
            continue;
        }
        if top.key <= 0.0 {
            break;
        }
        chosen.push(top.j);
        groups.add(inst.group[top.j as usize], 1);
        for (i, d) in inst.pairs(top.j) {
            let ci = &mut cur[i as usize];
            if d < *ci {
                *ci = d;
            }
        }
        progress("greedy", chosen.len() as u64, k_free as u64);
    }
    drop(heap);

    // Swap local search.
    let swaps = if chosen.is_empty() || opts.budget.exhausted() {
        0
    } else {
        local_search(inst, &base_f, &allowed, &mut groups, &mut chosen, opts, progress)
    };

    // Order and marginal savings.
    let mut all = c.fixed.clone();
    all.extend_from_slice(&chosen);
    let (sites, gains) = order_by_gain(inst, &c.fixed, &chosen);
    let cost = inst.cost_of(&all);
    let lower_cost = lagrangian_minsum(inst, &base_f, &allowed, c, &chosen, k_free, cost, opts, progress);
    MinSumSolution {
        sites,
        gains,
        base_cost,
        cost,
        saving: base_cost - cost,
        lower_cost: lower_cost.0.min(cost),
        swaps,
        bound_iterations: lower_cost.1,
    }
}

/// Fixed sites first (in their order), then the others by decreasing marginal saving.
fn order_by_gain(inst: &Instance, fixed: &[u32], free: &[u32]) -> (Vec<u32>, Vec<f64>) {
    let mut cur = inst.base.clone();
    let mut sites = Vec::with_capacity(fixed.len() + free.len());
    let mut gains = Vec::with_capacity(sites.capacity());
    let apply = |j: u32, cur: &mut Vec<f64>| -> f64 {
        let mut g = 0.0;
        for (i, d) in inst.pairs(j) {
            let ci = &mut cur[i as usize];
            if d < *ci {
                g += inst.weight[i as usize] * (*ci - d);
                *ci = d;
            }
        }
        g
    };
    for &f in fixed {
        let g = apply(f, &mut cur);
        sites.push(f);
        gains.push(g);
    }
    let gain_of = |cur: &[f64], j: u32| -> f64 {
        inst.pairs(j).map(|(i, d)| inst.weight[i as usize] * (cur[i as usize] - d).max(0.0)).sum()
    };
    let mut heap: BinaryHeap<HeapItem> =
        free.iter().map(|&j| HeapItem { key: gain_of(&cur, j), j, stamp: 0 }).collect();
    let mut round = 0;
    while let Some(top) = heap.pop() {
        if top.stamp != round {
            let g = gain_of(&cur, top.j);
            heap.push(HeapItem { key: g, j: top.j, stamp: round });
            continue;
        }
        let g = apply(top.j, &mut cur);
        sites.push(top.j);
        gains.push(g);
        round += 1;
    }
    (sites, gains)
}

/// Per demand point: the chosen (free) site serving it best, its cost, and its cost without that site.
struct Serving {
    best: Vec<u32>,
    cur: Vec<f64>,
    second: Vec<f64>,
}

impl Serving {
    #[inline]
    fn eval(&mut self, i: u32, rev: &Reverse, base_f: &[f64], is_chosen: &[bool]) {
        let (mut b1, mut d1, mut d2) = (NONE, f64::INFINITY, f64::INFINITY);
        for (j, d) in rev.of(i) {
            if !is_chosen[j as usize] {
                continue;
            }
            if d < d1 || (d == d1 && j < b1) {
                d2 = d1;
                d1 = d;
                b1 = j;
            } else if d < d2 {
                d2 = d;
            }
        }
        let bf = base_f[i as usize];
        let iu = i as usize;
        if d1 < bf {
            self.best[iu] = b1;
            self.cur[iu] = d1;
            self.second[iu] = d2.min(bf);
        } else {
            self.best[iu] = NONE;
            self.cur[iu] = bf;
            self.second[iu] = bf;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn local_search(
    inst: &Instance,
    base_f: &[f64],
    allowed: &[bool],
    groups: &mut Groups,
    chosen: &mut [u32],
    opts: &Options,
    progress: Progress,
) -> usize {
    let n = inst.n_candidates();
    let m = inst.n_demand();
    let rev = Reverse::new(inst);
    let mut is_chosen = vec![false; n];
    let mut pos = vec![NONE; n];
    for (p, &j) in chosen.iter().enumerate() {
        is_chosen[j as usize] = true;
        pos[j as usize] = p as u32;
    }
    let mut s = Serving { best: vec![NONE; m], cur: vec![0.0; m], second: vec![0.0; m] };
    for i in 0..m as u32 {
        s.eval(i, &rev, base_f, &is_chosen);
    }
    let w = &inst.weight;
    let mut loss = vec![0.0f64; n];
    for i in 0..m {
        if s.best[i] != NONE {
            loss[s.best[i] as usize] += w[i] * (s.second[i] - s.cur[i]);
        }
    }
    let total: f64 = inst.base_cost();
    let eps = 1e-9 * total.max(1.0);
    let argmin_loss = |chosen: &[u32], loss: &[f64], skip: &[bool]| -> Option<u32> {
        chosen
            .iter()
            .copied()
            .filter(|&j| !skip[j as usize])
            .min_by(|&a, &b| loss[a as usize].total_cmp(&loss[b as usize]).then(a.cmp(&b)))
    };
    let no_skip = vec![false; n];
    let mut min_j = argmin_loss(chosen, &loss, &no_skip);
    let mut inter = vec![0.0f64; n];
    let mut touched_flag = vec![false; n];
    let mut touched: Vec<u32> = Vec::new();
    let mut stamp = vec![0u32; m];
    let mut stamp_now = 0u32;
    let mut swaps = 0usize;
    let mut ticker = Ticker::new(&opts.budget, 256);
    for pass in 0..opts.max_swap_passes {
        let mut improved = false;
        for jn in 0..n as u32 {
            if ticker.tick() {
                return swaps;
            }
            if !allowed[jn as usize] || is_chosen[jn as usize] {
                continue;
            }
            let mut gain = 0.0;
            for (i, d) in inst.pairs(jn) {
                let iu = i as usize;
                let ci = s.cur[iu];
                if d < ci {
                    gain += w[iu] * (ci - d);
                }
                let b = s.best[iu];
                if b != NONE {
                    let extra = w[iu] * ((s.second[iu] - d).max(0.0) - (ci - d).max(0.0));
                    if extra > 0.0 {
                        if !touched_flag[b as usize] {
                            touched_flag[b as usize] = true;
                            touched.push(b);
                        }
                        inter[b as usize] += extra;
                    }
                }
            }
            let g = inst.group[jn as usize];
            let mut best: Option<(f64, u32)> = None;
            let consider = |delta: f64, out: u32, best: &mut Option<(f64, u32)>| {
                if best.is_none_or(|(bd, bo)| delta > bd || (delta == bd && out < bo)) {
                    *best = Some((delta, out));
                }
            };
            if groups.full(g) {
                for &b in chosen.iter() {
                    if inst.group[b as usize] == g {
                        consider(gain + inter[b as usize] - loss[b as usize], b, &mut best);
                    }
                }
            } else if gain > eps || !touched.is_empty() {
                for &b in &touched {
                    consider(gain + inter[b as usize] - loss[b as usize], b, &mut best);
                }
                let untouched = match min_j {
                    Some(j0) if !touched_flag[j0 as usize] => Some(j0),
                    Some(_) => argmin_loss(chosen, &loss, &touched_flag),
                    None => None,
                };
                if let Some(j0) = untouched {
                    consider(gain - loss[j0 as usize], j0, &mut best);
                }
            }
            for &b in &touched {
                inter[b as usize] = 0.0;
                touched_flag[b as usize] = false;
            }
            touched.clear();
            let Some((delta, out)) = best else { continue };
            if delta <= eps {
                continue;
            }
            // Apply: `out` leaves, `jn` joins.
            swaps += 1;
            improved = true;
            is_chosen[out as usize] = false;
            is_chosen[jn as usize] = true;
            let p = pos[out as usize];
            chosen[p as usize] = jn;
            pos[jn as usize] = p;
            pos[out as usize] = NONE;
            groups.add(inst.group[out as usize], -1);
            groups.add(g, 1);
            stamp_now = stamp_now.wrapping_add(1);
            if stamp_now == 0 {
                stamp.fill(0);
                stamp_now = 1;
            }
            for (i, _) in inst.pairs(out).chain(inst.pairs(jn)) {
                let iu = i as usize;
                if stamp[iu] == stamp_now {
                    continue;
                }
                stamp[iu] = stamp_now;
                if s.best[iu] != NONE {
                    loss[s.best[iu] as usize] -= w[iu] * (s.second[iu] - s.cur[iu]);
                }
                s.eval(i, &rev, base_f, &is_chosen);
                if s.best[iu] != NONE {
                    loss[s.best[iu] as usize] += w[iu] * (s.second[iu] - s.cur[iu]);
                }
            }
            loss[out as usize] = 0.0;
            min_j = argmin_loss(chosen, &loss, &no_skip);
        }
        progress("swaps", pass as u64 + 1, opts.max_swap_passes as u64);
        if !improved {
            break;
        }
    }
    swaps
}

/// Maximises the Lagrangian lower bound of the cost by subgradient steps. Returns the best
/// bound and the iterations run.
#[allow(clippy::too_many_arguments)]
fn lagrangian_minsum(
    inst: &Instance,
    base_f: &[f64],
    allowed: &[bool],
    c: &Constraints,
    plan: &[u32],
    k_free: usize,
    ub_cost: f64,
    opts: &Options,
    progress: Progress,
) -> (f64, usize) {
    let m = inst.n_demand();
    let n = inst.n_candidates();
    let w = &inst.weight;
    let cap_hi: Vec<f64> = (0..m).map(|i| w[i] * base_f[i]).collect();
    // Start from the plan's own costs: the first bound is then its cost minus the best K
    // marginal savings of sites outside it, already close.
    let mut cur = base_f.to_vec();
    for &j in plan {
        for (i, d) in inst.pairs(j) {
            let ci = &mut cur[i as usize];
            if d < *ci {
                *ci = d;
            }
        }
    }
    let mut mu: Vec<f64> = (0..m).map(|i| w[i] * cur[i]).collect();
    let base_cost = inst.base_cost();
    let mut groups0 = Groups::new(inst, c.group_cap);
    for &f in &c.fixed {
        groups0.add(inst.group[f as usize], 1);
    }
    let mut rho = vec![0.0f64; n];
    let mut best = f64::NEG_INFINITY;
    let mut theta = 2.0;
    let mut since_improve = 0;
    let mut sel: Vec<u32> = Vec::new();
    let mut g = vec![0.0f64; m];
    let mut iters = 0;
    let saving_scale = (base_cost - ub_cost).abs().max(1e-12);
    for it in 0..opts.bound_iterations.max(1) {
        if it > 0 && opts.budget.exhausted() {
            break;
        }
        iters = it + 1;
        // ρ_j and the best selection.
        for j in 0..n as u32 {
            rho[j as usize] = if allowed[j as usize] {
                inst.pairs(j).map(|(i, d)| (w[i as usize] * d - mu[i as usize]).min(0.0)).sum()
            } else {
                0.0
            };
        }
        select_best(inst, &rho, &groups0, k_free, &mut sel);
        let l: f64 = mu.iter().sum::<f64>() + sel.iter().map(|&j| rho[j as usize]).sum::<f64>();
        if l > best + 1e-12 * saving_scale {
            best = l;
            since_improve = 0;
        } else {
            since_improve += 1;
            if since_improve >= 20 {
                theta *= 0.5;
                since_improve = 0;
            }
        }
        if (ub_cost - best) <= opts.target_gap * saving_scale || theta < 1e-5 {
            break;
        }
        // Subgradient: 1 − (open sites serving i in the relaxation).
        g.fill(1.0);
        for &j in &sel {
            for (i, d) in inst.pairs(j) {
                if w[i as usize] * d < mu[i as usize] {
                    g[i as usize] -= 1.0;
                }
            }
        }
        // Only moves that stay within the box count towards the norm.
        let mut norm = 0.0;
        for i in 0..m {
            let gi = g[i];
            if (gi > 0.0 && mu[i] < cap_hi[i]) || (gi < 0.0 && mu[i] > 0.0) {
                norm += gi * gi;
            } else {
                g[i] = 0.0;
            }
        }
        if norm == 0.0 {
            break;
        }
        let t = theta * (ub_cost - l).max(1e-9 * saving_scale) / norm;
        for i in 0..m {
            if g[i] != 0.0 {
                mu[i] = (mu[i] + t * g[i]).clamp(0.0, cap_hi[i]);
            }
        }
        if it % 25 == 0 {
            progress("bound", it as u64, opts.bound_iterations as u64);
        }
    }
    (best, iters)
}

/// The up to `k` most negative `rho` among candidates, respecting group caps (greedy on a
/// partition matroid, which is optimal).
fn select_best(inst: &Instance, rho: &[f64], groups0: &Groups, k: usize, out: &mut Vec<u32>) {
    out.clear();
    let mut neg: Vec<u32> = (0..rho.len() as u32).filter(|&j| rho[j as usize] < 0.0).collect();
    let by = |a: &u32, b: &u32| rho[*a as usize].total_cmp(&rho[*b as usize]).then(a.cmp(b));
    if groups0.cap.is_none() {
        if neg.len() > k {
            if k == 0 {
                return;
            }
            neg.select_nth_unstable_by(k - 1, by);
            neg.truncate(k);
        }
        out.extend_from_slice(&neg);
        return;
    }
    neg.sort_unstable_by(by);
    let mut gr = groups0.clone();
    for j in neg {
        if out.len() >= k {
            break;
        }
        let g = inst.group[j as usize];
        if gr.full(g) {
            continue;
        }
        gr.add(g, 1);
        out.push(j);
    }
}

/// Target of a covering problem.
#[derive(Debug, Clone, Default)]
pub struct CoverConstraints {
    /// Weight to reach (of the instance's demand; capped at what the candidates can reach).
    pub target: f64,
    /// Sites every plan contains.
    pub fixed: Vec<u32>,
    /// At most this many sites per group (fixed ones count).
    pub group_cap: Option<usize>,
    /// Candidates a plan may not take.
    pub excluded: Vec<u32>,
}

/// A covering plan and its bound.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverSolution {
    /// Chosen sites, fixed first, then by decreasing marginal weight.
    pub sites: Vec<u32>,
    /// Weight each newly reaches in that order.
    pub gains: Vec<f64>,
    /// Weight reached in all.
    pub covered: f64,
    /// The target after capping at the reachable weight.
    pub target: f64,
    /// True when `covered` reaches `target`.
    pub reached: bool,
    /// Lower bound of the number of sites of any plan reaching the target.
    pub lower_sites: usize,
    /// Subgradient iterations run.
    pub bound_iterations: usize,
}

/// Rounds of banning greedy's picks in full groups when a cover under group caps falls short.
const COVER_BAN_ROUNDS: usize = 8;

/// Solves a covering instance: fewest sites reaching `target` weight.
pub fn solve_cover(inst: &Instance, c: &CoverConstraints, opts: &Options, progress: Progress) -> CoverSolution {
    let n = inst.n_candidates();
    let m = inst.n_demand();
    let w = &inst.weight;
    let mut allowed = vec![true; n];
    for &j in &c.excluded {
        allowed[j as usize] = false;
    }
    let mut groups = Groups::new(inst, c.group_cap);
    let mut count = vec![0u32; m];
    let mut covered = 0.0;
    let add = |j: u32, count: &mut Vec<u32>| -> f64 {
        let mut g = 0.0;
        for (i, _) in inst.pairs(j) {
            let ci = &mut count[i as usize];
            if *ci == 0 {
                g += w[i as usize];
            }
            *ci += 1;
        }
        g
    };
    for &f in &c.fixed {
        allowed[f as usize] = false;
        groups.add(inst.group[f as usize], 1);
        covered += add(f, &mut count);
    }
    let reachable: f64 = {
        let mut hit = vec![false; m];
        for j in 0..n as u32 {
            if allowed[j as usize] || c.fixed.contains(&j) {
                for (i, _) in inst.pairs(j) {
                    hit[i as usize] = true;
                }
            }
        }
        hit.iter().zip(w).filter(|(h, _)| **h).map(|(_, x)| x).sum()
    };
    let target = c.target.min(reachable);
    let tol = 1e-9 * reachable.max(1.0);
    let gain_of = |count: &[u32], j: u32| -> f64 {
        inst.pairs(j).filter(|(i, _)| count[*i as usize] == 0).map(|(i, _)| w[i as usize]).sum()
    };
    // Greedy from the fixed sites, some candidates banned.
    let run_greedy = |banned: &[u32], progress: Progress| {
        let mut count = count.clone();
        let mut covered = covered;
        let mut groups = groups.clone();
        let mut heap: BinaryHeap<HeapItem> = (0..n as u32)
            .filter(|&j| allowed[j as usize] && !banned.contains(&j))
            .map(|j| HeapItem { key: gain_of(&count, j), j, stamp: 0 })
            .collect();
        let mut free: Vec<u32> = Vec::new();
        let mut ticker = Ticker::new(&opts.budget, 64);
        while covered < target - tol {
            if ticker.tick() {
                break;
            }
            let Some(top) = heap.pop() else { break };
            if groups.full(inst.group[top.j as usize]) {
                continue;
            }
            if top.stamp != free.len() {
                let g = gain_of(&count, top.j);
                heap.push(HeapItem { key: g, j: top.j, stamp: free.len() });
                continue;
            }
            if top.key <= 0.0 {
                break;
            }
            free.push(top.j);
            groups.add(inst.group[top.j as usize], 1);
            covered += add(top.j, &mut count);
            progress("greedy", covered.min(target) as u64, target as u64);
        }
        (free, count, covered, groups)
    };
    let (mut free, mut count, mut covered, mut groups) = run_greedy(&[], progress);
    // Under group caps greedy can fill a group with the wrong site: retry without each such
    // pick; if none of those retries reaches the target, ban them all (a group's sites are often
    // alike: banning one lets greedy take its twin) and go again from the retry that covered
    // most, for a bounded number of rounds.
    if covered < target - tol && c.group_cap.is_some() {
        let mut banned: Vec<u32> = Vec::new();
        let mut current = free.clone();
        let mut current_groups = groups.clone();
        'rounds: for _ in 0..COVER_BAN_ROUNDS {
            let picks: Vec<u32> =
                current.iter().copied().filter(|&b| current_groups.full(inst.group[b as usize])).collect();
            if picks.is_empty() {
                break;
            }
            let mut best: Option<(Vec<u32>, Vec<u32>, f64, Groups)> = None;
            for &b in &picks {
                if opts.budget.exhausted() {
                    break 'rounds;
                }
                let mut ban = banned.clone();
                ban.push(b);
                let r = run_greedy(&ban, progress);
                if r.2 >= target - tol {
                    (free, count, covered, groups) = r;
                    break 'rounds;
                }
                if best.as_ref().is_none_or(|x| r.2 > x.2) {
                    best = Some(r);
                }
            }
            banned.extend(picks);
            let Some(b) = best else { break };
            current = b.0;
            current_groups = b.3;
        }
    }
    // Under group caps greedy can miss a feasible cover: then maximise coverage with swaps
    // for growing numbers of sites until the target is met (or every cap is used).
    if covered < target - tol && c.group_cap.is_some() {
        let most = max_sites(inst, &allowed, &c.fixed, c.group_cap);
        let quick = Options { bound_iterations: 1, ..opts.clone() };
        for k in (c.fixed.len() + free.len() + 1)..=most {
            if opts.budget.exhausted() {
                break;
            }
            let mc = Constraints { k, fixed: c.fixed.clone(), group_cap: c.group_cap, excluded: c.excluded.clone() };
            let s = solve_minsum(inst, &mc, &quick, progress);
            if s.saving >= target - tol {
                for &j in &free {
                    for (i, _) in inst.pairs(j) {
                        count[i as usize] -= 1;
                    }
                }
                free = s.sites.iter().copied().filter(|j| !c.fixed.contains(j)).collect();
                covered = s.saving;
                for &j in &free {
                    for (i, _) in inst.pairs(j) {
                        count[i as usize] += 1;
                    }
                }
                groups = Groups::new(inst, c.group_cap);
                for &j in c.fixed.iter().chain(&free) {
                    groups.add(inst.group[j as usize], 1);
                }
                break;
            }
        }
    }
    // Redundancy removal: drop sites whose own weight is not needed, least unique first.
    let unique = |count: &[u32], j: u32| -> f64 {
        inst.pairs(j).filter(|(i, _)| count[*i as usize] == 1).map(|(i, _)| w[i as usize]).sum()
    };
    while !opts.budget.exhausted() {
        let mut cand: Vec<(f64, u32)> = free.iter().map(|&j| (unique(&count, j), j)).collect();
        cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut removed = false;
        for (_, j) in cand {
            let u = unique(&count, j);
            if covered - u >= target - tol {
                covered -= u;
                for (i, _) in inst.pairs(j) {
                    count[i as usize] -= 1;
                }
                free.retain(|&x| x != j);
                groups.add(inst.group[j as usize], -1);
                removed = true;
            }
        }
        if !removed {
            break;
        }
    }
    let reached = covered >= target - tol;
    let (sites, gains) = order_by_gain(inst, &c.fixed, &free);
    let (lower, iters) =
        if reached { lagrangian_cover(inst, &allowed, c, target, sites.len(), opts, progress) } else { (0, 0) };
    CoverSolution { sites, gains, covered, target, reached, lower_sites: lower, bound_iterations: iters }
}

/// The most sites a plan may hold under the group caps (fixed ones included).
fn max_sites(inst: &Instance, allowed: &[bool], fixed: &[u32], cap: Option<usize>) -> usize {
    let Some(cap) = cap else { return allowed.iter().filter(|&&a| a).count() + fixed.len() };
    let mut per: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut free = 0;
    for (j, &a) in allowed.iter().enumerate() {
        if a || fixed.contains(&(j as u32)) {
            let g = inst.group[j];
            if g == NO_GROUP {
                free += 1;
            } else {
                *per.entry(g).or_default() += 1;
            }
        }
    }
    free + per.values().map(|&n| n.min(cap)).sum::<usize>()
}

/// Lagrangian lower bound of the number of sites reaching `target` (fixed sites included).
fn lagrangian_cover(
    inst: &Instance,
    allowed: &[bool],
    c: &CoverConstraints,
    target: f64,
    ub: usize,
    opts: &Options,
    progress: Progress,
) -> (usize, usize) {
    let m = inst.n_demand();
    let n = inst.n_candidates();
    let w = &inst.weight;
    // Demand reached by fixed sites is covered for free.
    let mut free_dem = vec![true; m];
    let mut fixed_w = 0.0;
    for &f in &c.fixed {
        for (i, _) in inst.pairs(f) {
            if free_dem[i as usize] {
                free_dem[i as usize] = false;
                fixed_w += w[i as usize];
            }
        }
    }
    let need = (target - fixed_w).max(0.0);
    let nf = c.fixed.len();
    if need <= 1e-9 * target.max(1.0) {
        return (nf, 0);
    }
    // Demand points the relaxation works on: not fixed-covered, positive weight, reachable.
    let mut reach = vec![false; m];
    for j in 0..n as u32 {
        if allowed[j as usize] {
            for (i, _) in inst.pairs(j) {
                reach[i as usize] = true;
            }
        }
    }
    let dem: Vec<u32> =
        (0..m as u32).filter(|&i| free_dem[i as usize] && reach[i as usize] && w[i as usize] > 0.0).collect();
    // Start: λ_i = w_i / (largest weight of a set containing i), so every Λ_j ≤ 1.
    let mut set_w = vec![0.0f64; n];
    for j in 0..n as u32 {
        if allowed[j as usize] {
            set_w[j as usize] = inst.pairs(j).filter(|(i, _)| free_dem[*i as usize]).map(|(i, _)| w[i as usize]).sum();
        }
    }
    let mut lam = vec![0.0f64; m];
    let mut maxset = vec![0.0f64; m];
    for j in 0..n as u32 {
        if allowed[j as usize] {
            for (i, _) in inst.pairs(j) {
                let s = &mut maxset[i as usize];
                *s = s.max(set_w[j as usize]);
            }
        }
    }
    for &i in &dem {
        lam[i as usize] = w[i as usize] / maxset[i as usize];
    }
    let mut groups0 = Groups::new(inst, c.group_cap);
    for &f in &c.fixed {
        groups0.add(inst.group[f as usize], 1);
    }
    let mut red = vec![0.0f64; n];
    let mut sel = Vec::new();
    let mut y = vec![0.0f64; m];
    let mut order = dem.clone();
    let mut best = f64::NEG_INFINITY;
    let mut theta = 2.0;
    let mut since = 0;
    let mut iters = 0;
    let mut g = vec![0.0f64; m];
    let ub_free = ub.saturating_sub(nf) as f64;
    for it in 0..opts.bound_iterations.max(1) {
        if it > 0 && opts.budget.exhausted() {
            break;
        }
        iters = it + 1;
        // x: open sites with negative reduced cost 1 − Λ_j (most negative first, caps).
        for j in 0..n as u32 {
            red[j as usize] =
                if allowed[j as usize] { 1.0 - inst.pairs(j).map(|(i, _)| lam[i as usize]).sum::<f64>() } else { 0.0 };
        }
        select_best(inst, &red, &groups0, usize::MAX, &mut sel);
        let xval: f64 = sel.iter().map(|&j| red[j as usize]).sum();
        // y: fractional knapsack, cheapest λ per weight first.
        order.sort_unstable_by(|&a, &b| {
            (lam[a as usize] / w[a as usize]).total_cmp(&(lam[b as usize] / w[b as usize])).then(a.cmp(&b))
        });
        let mut left = need;
        let mut yval = 0.0;
        for &i in &order {
            let iu = i as usize;
            if left <= 0.0 {
                y[iu] = 0.0;
                continue;
            }
            let take = (left / w[iu]).min(1.0);
            y[iu] = take;
            left -= take * w[iu];
            yval += take * lam[iu];
        }
        let l = xval + yval;
        if l > best + 1e-12 {
            best = l;
            since = 0;
        } else {
            since += 1;
            if since >= 20 {
                theta *= 0.5;
                since = 0;
            }
        }
        if (best - 1e-7).ceil() as usize >= ub.saturating_sub(nf) || theta < 1e-5 {
            break;
        }
        // Subgradient of L in λ: y_i − Σ_{open j ∋ i} 1.
        for &i in &dem {
            g[i as usize] = y[i as usize];
        }
        for &j in &sel {
            for (i, _) in inst.pairs(j) {
                if free_dem[i as usize] && reach[i as usize] {
                    g[i as usize] -= 1.0;
                }
            }
        }
        let mut norm = 0.0;
        for &i in &dem {
            let iu = i as usize;
            if g[iu] > 0.0 || lam[iu] > 0.0 {
                norm += g[iu] * g[iu];
            }
        }
        if norm == 0.0 {
            break;
        }
        let t = theta * (ub_free - l).max(1e-3) / norm;
        for &i in &dem {
            let iu = i as usize;
            lam[iu] = (lam[iu] + t * g[iu]).max(0.0);
        }
        if it % 25 == 0 {
            progress("bound", it as u64, opts.bound_iterations as u64);
        }
    }
    let lb = (best.max(0.0) - 1e-7).ceil().max(if need > 0.0 { 1.0 } else { 0.0 });
    (nf + lb as usize, iters)
}
