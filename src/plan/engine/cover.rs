//! The covering solver (LSCP): greedy with retries under group caps, redundancy removal, the
//! Lagrangian bound on the number of sites (see the parent module's docs for the model).

use super::*;

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

/// A covering plan under construction: the free (not fixed) sites taken, how many taken sites
/// reach each demand point, the weight reached and the sites per group.
#[derive(Clone)]
struct Partial {
    free: Vec<u32>,
    count: Vec<u32>,
    covered: f64,
    groups: Groups,
}

impl Partial {
    /// Takes site `j`.
    fn take(&mut self, inst: &Instance, j: u32) {
        for (i, _) in inst.pairs(j) {
            let ci = &mut self.count[i as usize];
            if *ci == 0 {
                self.covered += inst.weight[i as usize];
            }
            *ci += 1;
        }
        self.groups.add(inst.group[j as usize], 1);
    }

    /// The weight site `j` would newly reach.
    fn gain(&self, inst: &Instance, j: u32) -> f64 {
        inst.pairs(j).filter(|(i, _)| self.count[*i as usize] == 0).map(|(i, _)| inst.weight[i as usize]).sum()
    }

    /// The weight only site `j` reaches.
    fn unique(&self, inst: &Instance, j: u32) -> f64 {
        inst.pairs(j).filter(|(i, _)| self.count[*i as usize] == 1).map(|(i, _)| inst.weight[i as usize]).sum()
    }
}

/// One covering problem: the instance, what may be taken, the target and the plan of the fixed
/// sites alone that every step starts from.
struct Cover<'a> {
    inst: &'a Instance,
    c: &'a CoverConstraints,
    opts: &'a Options,
    allowed: Vec<bool>,
    start: Partial,
    target: f64,
    tol: f64,
}

impl<'a> Cover<'a> {
    /// Takes the fixed sites; the target is capped at the weight the allowed and fixed sites
    /// reach.
    fn new(inst: &'a Instance, c: &'a CoverConstraints, opts: &'a Options) -> Cover<'a> {
        let (n, m) = (inst.n_candidates(), inst.n_demand());
        let mut allowed = vec![true; n];
        for &j in &c.excluded {
            allowed[j as usize] = false;
        }
        let mut start =
            Partial { free: Vec::new(), count: vec![0; m], covered: 0.0, groups: Groups::new(inst, c.group_cap) };
        for &f in &c.fixed {
            allowed[f as usize] = false;
            start.take(inst, f);
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
            hit.iter().zip(&inst.weight).filter(|(h, _)| **h).map(|(_, x)| x).sum()
        };
        let target = c.target.min(reachable);
        Cover { inst, c, opts, allowed, start, target, tol: 1e-9 * reachable.max(1.0) }
    }

    fn reached(&self, p: &Partial) -> bool {
        p.covered >= self.target - self.tol
    }

    /// Lazy greedy from the fixed sites, `banned` candidates left out.
    fn greedy(&self, banned: &[u32], progress: Progress) -> Partial {
        let (inst, target) = (self.inst, self.target);
        let mut p = self.start.clone();
        let mut heap: BinaryHeap<HeapItem> = (0..inst.n_candidates() as u32)
            .filter(|&j| self.allowed[j as usize] && !banned.contains(&j))
            .map(|j| HeapItem { key: p.gain(inst, j), j, stamp: 0 })
            .collect();
        let mut ticker = Ticker::new(&self.opts.budget, 64);
        while p.covered < target - self.tol {
            if ticker.tick() {
                break;
            }
            let Some(top) = heap.pop() else { break };
            if p.groups.full(inst.group[top.j as usize]) {
                continue;
            }
            if top.stamp != p.free.len() {
                let g = p.gain(inst, top.j);
                heap.push(HeapItem { key: g, j: top.j, stamp: p.free.len() });
                continue;
            }
            if top.key <= 0.0 {
                break;
            }
            p.free.push(top.j);
            p.take(inst, top.j);
            progress("greedy", p.covered.min(target) as u64, target as u64);
        }
        p
    }

    /// Under group caps greedy can fill a group with the wrong site: retry without each such
    /// pick; if none of those retries reaches the target, ban them all (a group's sites are
    /// often alike: banning one lets greedy take its twin) and go again from the retry that
    /// covered most, for a bounded number of rounds. The first retry that reaches the target,
    /// else `p` as it was.
    fn with_bans(&self, p: Partial, progress: Progress) -> Partial {
        let inst = self.inst;
        let mut banned: Vec<u32> = Vec::new();
        let mut current = p.clone();
        for _ in 0..COVER_BAN_ROUNDS {
            let picks: Vec<u32> =
                current.free.iter().copied().filter(|&b| current.groups.full(inst.group[b as usize])).collect();
            if picks.is_empty() {
                break;
            }
            let mut best: Option<Partial> = None;
            for &b in &picks {
                if self.opts.budget.exhausted() {
                    return p;
                }
                let mut ban = banned.clone();
                ban.push(b);
                let r = self.greedy(&ban, progress);
                if self.reached(&r) {
                    return r;
                }
                if best.as_ref().is_none_or(|x| r.covered > x.covered) {
                    best = Some(r);
                }
            }
            banned.extend(picks);
            let Some(b) = best else { break };
            current = b;
        }
        p
    }

    /// Under group caps greedy can miss a feasible cover: then maximise coverage with swaps for
    /// growing numbers of sites until the target is met (or every cap is used). The first
    /// plan that reaches it, else `p` as it was.
    fn with_swaps(&self, p: Partial, progress: Progress) -> Partial {
        let (inst, c) = (self.inst, self.c);
        let most = max_sites(inst, &self.allowed, &c.fixed, c.group_cap);
        let quick = Options { bound_iterations: 1, ..self.opts.clone() };
        for k in (c.fixed.len() + p.free.len() + 1)..=most {
            if self.opts.budget.exhausted() {
                break;
            }
            let mc = Constraints { k, fixed: c.fixed.clone(), group_cap: c.group_cap, excluded: c.excluded.clone() };
            let s = solve_minsum(inst, &mc, &quick, progress);
            if s.saving >= self.target - self.tol {
                let free: Vec<u32> = s.sites.iter().copied().filter(|j| !c.fixed.contains(j)).collect();
                let mut count = vec![0u32; inst.n_demand()];
                let mut groups = Groups::new(inst, c.group_cap);
                for &j in c.fixed.iter().chain(&free) {
                    for (i, _) in inst.pairs(j) {
                        count[i as usize] += 1;
                    }
                    groups.add(inst.group[j as usize], 1);
                }
                return Partial { free, count, covered: s.saving, groups };
            }
        }
        p
    }

    /// Redundancy removal: drops sites whose own weight is not needed, least unique first.
    fn drop_redundant(&self, p: &mut Partial) {
        let inst = self.inst;
        while !self.opts.budget.exhausted() {
            let mut cand: Vec<(f64, u32)> = p.free.iter().map(|&j| (p.unique(inst, j), j)).collect();
            cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut removed = false;
            for (_, j) in cand {
                let u = p.unique(inst, j);
                if p.covered - u >= self.target - self.tol {
                    p.covered -= u;
                    for (i, _) in inst.pairs(j) {
                        p.count[i as usize] -= 1;
                    }
                    p.free.retain(|&x| x != j);
                    p.groups.add(inst.group[j as usize], -1);
                    removed = true;
                }
            }
            if !removed {
                break;
            }
        }
    }
}

/// Solves a covering instance: fewest sites reaching `target` weight. Greedy; under group caps,
/// retries with bans and then with swaps when greedy falls short; redundancy removal; the
/// Lagrangian lower bound when the target is reached.
pub fn solve_cover(inst: &Instance, c: &CoverConstraints, opts: &Options, progress: Progress) -> CoverSolution {
    let cover = Cover::new(inst, c, opts);
    let mut p = cover.greedy(&[], progress);
    if !cover.reached(&p) && c.group_cap.is_some() {
        p = cover.with_bans(p, progress);
    }
    if !cover.reached(&p) && c.group_cap.is_some() {
        p = cover.with_swaps(p, progress);
    }
    cover.drop_redundant(&mut p);
    let reached = cover.reached(&p);
    let (sites, gains) = order_by_gain(inst, &c.fixed, &p.free);
    let (lower, iters) = if reached {
        lagrangian_cover(inst, &cover.allowed, c, cover.target, sites.len(), opts, progress)
    } else {
        (0, 0)
    };
    CoverSolution {
        sites,
        gains,
        covered: p.covered,
        target: cover.target,
        reached,
        lower_sites: lower,
        bound_iterations: iters,
    }
}

/// The most sites a plan may hold under the group caps (fixed ones included).
pub(super) fn max_sites(inst: &Instance, allowed: &[bool], fixed: &[u32], cap: Option<usize>) -> usize {
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
pub(super) fn lagrangian_cover(
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
