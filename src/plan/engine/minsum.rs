//! The min-sum solver (MCLP and p-median): lazy greedy, swap local search, the Lagrangian
//! bound (see the parent module's docs for the model).

use super::*;

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
pub(super) fn order_by_gain(inst: &Instance, fixed: &[u32], free: &[u32]) -> (Vec<u32>, Vec<f64>) {
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
pub(super) fn local_search(
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
pub(super) fn lagrangian_minsum(
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
pub(super) fn select_best(inst: &Instance, rho: &[f64], groups0: &Groups, k: usize, out: &mut Vec<u32>) {
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
