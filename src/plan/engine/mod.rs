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

mod cover;
mod minsum;

pub use cover::{solve_cover, CoverConstraints, CoverSolution};
pub use minsum::solve_minsum;
use minsum::{order_by_gain, select_best};

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
