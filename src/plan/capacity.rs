//! The capacitated covering variant (pure computation).
//!
//! Every station (existing or new) serves at most `C` veterans. Veterans go to their nearest
//! station within reach; those beyond its capacity spill to the next nearest within reach that
//! has room, and so on; the rest are not served. Precisely: all (household, station) pairs
//! within reach are taken in increasing distance (ties: lower household, then lower station),
//! and each gives the household as many of its still unserved veterans as the station still
//! has room for ([`CapInstance::allocate`]). Veterans of one household may so be split
//! between stations. The objective counts served veterans only.
//!
//! [`solve_capacitated`] chooses new sites by lazy greedy on the exact served gain (the gain
//! is recomputed by a full allocation when a site reaches the top of the queue). Only the
//! households and stations connected to some candidate through reach pairs are allocated; the
//! rest cannot change. [`solve_capacitated_within`] stops the greedy once a time budget runs
//! out (each step is a full allocation, so it checks before every one).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::engine::NO_GROUP;
use super::limits::Budget;

/// A capacitated instance: demand, existing stations and candidates, and the pairs within reach.
#[derive(Debug, Clone, Default)]
pub struct CapInstance {
    /// Veterans of each demand point.
    pub weight: Vec<f64>,
    /// Existing stations (numbered `0..n_existing`); candidates follow as `n_existing + j`.
    pub n_existing: usize,
    /// Candidate sites.
    pub n_candidates: usize,
    /// Pairs `(distance, demand, station)` within reach, sorted by distance, demand, station.
    pub pairs: Vec<(f64, u32, u32)>,
    /// Group (county) of each candidate, or [`NO_GROUP`].
    pub group: Vec<u32>,
}

impl CapInstance {
    /// Builds an instance; `pairs` need not be sorted.
    pub fn new(
        weight: Vec<f64>,
        n_existing: usize,
        n_candidates: usize,
        mut pairs: Vec<(f64, u32, u32)>,
        group: Vec<u32>,
    ) -> Self {
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        CapInstance { weight, n_existing, n_candidates, pairs, group }
    }

    /// Veterans served when the stations flagged in `open` (existing then candidates) are open,
    /// with capacity `cap` each; also what each station serves.
    pub fn allocate(&self, open: &[bool], cap: f64) -> (f64, Vec<f64>) {
        let mut left = self.weight.clone();
        let mut room = vec![cap; self.n_existing + self.n_candidates];
        let mut served = 0.0;
        for &(_, i, s) in &self.pairs {
            if !open[s as usize] {
                continue;
            }
            let (l, r) = (left[i as usize], room[s as usize]);
            if l <= 0.0 || r <= 0.0 {
                continue;
            }
            let a = l.min(r);
            left[i as usize] -= a;
            room[s as usize] -= a;
            served += a;
        }
        let per = room.iter().map(|r| cap - r).collect();
        (served, per)
    }
}

/// A capacitated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct CapSolution {
    /// Chosen candidates (fixed first, then in the order chosen).
    pub sites: Vec<u32>,
    /// Served veterans each added when chosen.
    pub gains: Vec<f64>,
    /// Veterans each chosen site serves in the final allocation.
    pub site_served: Vec<f64>,
    /// Served with the existing stations only.
    pub served_before: f64,
    /// Served with the plan.
    pub served_after: f64,
}

#[derive(PartialEq)]
struct Item(f64, u32, usize);
impl Eq for Item {}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then_with(|| o.1.cmp(&self.1))
    }
}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Chooses up to `k` sites (fixed ones included) maximising served veterans.
#[allow(clippy::too_many_arguments)]
pub fn solve_capacitated(
    inst: &CapInstance,
    cap: f64,
    k: usize,
    fixed: &[u32],
    excluded: &[u32],
    group_cap: Option<usize>,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> CapSolution {
    solve_capacitated_within(inst, cap, k, fixed, excluded, group_cap, &Budget::unlimited(), progress)
}

/// [`solve_capacitated`] under a time budget: once it runs out the greedy stops and the
/// (partial) plan is returned; the caller checks the budget and discards it.
#[allow(clippy::too_many_arguments)]
pub fn solve_capacitated_within(
    inst: &CapInstance,
    cap: f64,
    k: usize,
    fixed: &[u32],
    excluded: &[u32],
    group_cap: Option<usize>,
    budget: &Budget,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> CapSolution {
    let ne = inst.n_existing;
    let nc = inst.n_candidates;
    // Keep only the part connected to some candidate: the rest is allocated once.
    let nd = inst.weight.len();
    let mut uf = UnionFind::new(nd + ne + nc);
    for &(_, i, s) in &inst.pairs {
        uf.union(i as usize, nd + s as usize);
    }
    let root: Vec<usize> = (0..nd + ne + nc).map(|x| uf.find_mut(x)).collect();
    let mut live_root = vec![false; nd + ne + nc];
    for j in 0..nc {
        live_root[root[nd + ne + j]] = true;
    }
    let (live_pairs, dead_pairs): (Vec<_>, Vec<_>) =
        inst.pairs.iter().copied().partition(|&(_, i, _)| live_root[root[i as usize]]);
    let mut open = vec![false; ne + nc];
    open[..ne].fill(true);
    let dead_served = {
        let dead = CapInstance {
            weight: inst.weight.clone(),
            n_existing: ne,
            n_candidates: nc,
            pairs: dead_pairs,
            group: Vec::new(),
        };
        dead.allocate(&open, cap).0
    };
    let live = CapInstance {
        weight: inst.weight.clone(),
        n_existing: ne,
        n_candidates: nc,
        pairs: live_pairs,
        group: Vec::new(),
    };
    let served = |open: &[bool]| live.allocate(open, cap).0;

    let ngroups = inst.group.iter().filter(|&&g| g != NO_GROUP).map(|&g| g as usize + 1).max().unwrap_or(0);
    let mut count = vec![0usize; ngroups];
    let full = |count: &[usize], g: u32| match group_cap {
        Some(c) if g != NO_GROUP => count[g as usize] >= c,
        _ => false,
    };
    let mut allowed = vec![true; nc];
    for &j in excluded {
        allowed[j as usize] = false;
    }
    let served_before = served(&open) + dead_served;
    let mut cur = served_before - dead_served;
    let mut sites = Vec::new();
    let mut gains = Vec::new();
    for &f in fixed {
        allowed[f as usize] = false;
        open[ne + f as usize] = true;
        if inst.group[f as usize] != NO_GROUP {
            count[inst.group[f as usize] as usize] += 1;
        }
        let s = served(&open);
        sites.push(f);
        gains.push(s - cur);
        cur = s;
    }
    // Priority: what a site could serve at most (its reachable veterans, capped).
    let mut reach = vec![0.0f64; nc];
    for &(_, i, s) in &live.pairs {
        if s as usize >= ne {
            reach[s as usize - ne] += inst.weight[i as usize];
        }
    }
    let mut heap: BinaryHeap<Item> = (0..nc as u32)
        .filter(|&j| allowed[j as usize])
        .map(|j| Item(reach[j as usize].min(cap), j, usize::MAX))
        .collect();
    let k_free = k.saturating_sub(fixed.len());
    let mut chosen = 0;
    while chosen < k_free {
        if budget.exhausted() {
            break;
        }
        let Some(Item(key, j, stamp)) = heap.pop() else { break };
        if full(&count, inst.group[j as usize]) {
            continue;
        }
        if stamp != chosen {
            open[ne + j as usize] = true;
            let g = served(&open) - cur;
            open[ne + j as usize] = false;
            heap.push(Item(g, j, chosen));
            continue;
        }
        if key <= 0.0 {
            break;
        }
        open[ne + j as usize] = true;
        if inst.group[j as usize] != NO_GROUP {
            count[inst.group[j as usize] as usize] += 1;
        }
        cur += key;
        sites.push(j);
        gains.push(key);
        chosen += 1;
        progress("greedy (capacitated)", chosen as u64, k_free as u64);
    }
    let (after_live, per) = live.allocate(&open, cap);
    let site_served = sites.iter().map(|&j| per[ne + j as usize]).collect();
    CapSolution { sites, gains, site_served, served_before, served_after: after_live + dead_served }
}

struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind { parent: (0..n as u32).collect() }
    }
    fn find_mut(&mut self, mut x: usize) -> usize {
        let mut r = x;
        while self.parent[r] as usize != r {
            r = self.parent[r] as usize;
        }
        while self.parent[x] as usize != r {
            let n = self.parent[x] as usize;
            self.parent[x] = r as u32;
            x = n;
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find_mut(a), self.find_mut(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb) as u32;
        }
    }
}
