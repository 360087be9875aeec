//! Which figures of admin units and grids may be shown (primary and complementary
//! suppression).
//!
//! Every household figure of a unit belongs to a [`Family`]: the group of the unit's
//! households it is computed over (all of them; the covered ones; the ones covered by a
//! station of one level; those outside every grid; hardship families; hardship families
//! covered; martyrs' families; martyrs' families covered). Each family but [`Family::All`]
//! splits a parent family's group in two: the members and the rest (the households covered
//! by a station of one level split the covered ones, so that "covered, but not by a village
//! station" is a group too).
//!
//! **Primary rule.** A family's figures of a unit are shown when its parent family's are,
//! and both its group and the rest of the parent's group hold `0` or at least `k` households;
//! for the sensitive families ([`Family::sensitive`]) the rest must also not be empty while
//! the group is not (a unit whose households are all in hardship does not say so).
//!
//! **Complementary rule.** A shown figure of a unit `P`, minus the shown figures of the units
//! below it, is the figure of what they leave out: the withheld units and the households of
//! `P` in no shown child (e.g. placed at township level only). For the figures below `P` that
//! are *maximal* (shown, with nothing shown between them and `P`), the households left out
//! must again be `0` or at least `k` — both for the group and for the rest of the parent's
//! group, as above. Where they are not, the smallest maximal unit is withheld too, and the
//! check repeats with its own maximal descendants in its place. Units are visited from the
//! province down, so a decision is never undone by a later one. In a tree (admin levels,
//! then grids under their unit), these differences are the finest quantities any
//! combination of shown figures determines: the shown figures span exactly the sums over
//! `P` minus its maximal shown descendants, which are disjoint. So no withheld figure, and
//! no figure of fewer than `k` households, follows from the shown ones.
//!
//! Grid workers know the households of their own grids: their [`Disclosure`] makes every
//! decision on the households they do not know, so that no shown figure minus what they know
//! describes fewer than `k` others.

use rayon::prelude::*;

use crate::analysis::effective::ServiceFacts;
use crate::analysis::Assignment;
use crate::model::{Dataset, Level, NONE, NO_UNIT};

use super::Policy;

/// The group of a unit's households a figure is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Every household of the unit.
    All,
    /// Households within reach of a station of any level.
    Covered,
    /// Households within reach of a station of this level.
    CoveredBy(Level),
    /// Households outside every grid.
    OutsideGrid,
    /// Households in hardship (sensitive).
    Hardship,
    /// Hardship households within reach of a station.
    HardshipCovered,
    /// Martyrs' families (sensitive).
    Martyr,
    /// Martyrs' families within reach of a station.
    MartyrCovered,
    /// Households not contacted within the contact window (their complement: the contacted).
    Overdue,
    /// Households never contacted (a part of the overdue).
    NeverContacted,
    /// Hardship households not contacted within the hardship window.
    HardshipOverdue,
    /// Households with an open need (sensitive).
    OpenNeed,
    /// Households with a need raised in the window of `needs_resolved_30d_share` (sensitive).
    RecentNeed,
    /// Of those, the households with such a need resolved within 30 days.
    RecentNeedResolved,
}

/// Facts of one household that decide its families.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// Bit `L` set when within reach of a station of level `L`.
    pub covered: u8,
    /// In a grid.
    pub in_grid: bool,
    /// In hardship.
    pub hardship: bool,
    /// A martyr's family.
    pub martyr: bool,
    /// Its service facts as of the day asked ([`crate::analysis::effective::facts`]).
    pub service: ServiceFacts,
}

impl Family {
    /// The families of effective coverage (decided only when service facts are given).
    pub const SERVICE: [Family; 6] = [
        Family::Overdue,
        Family::NeverContacted,
        Family::HardshipOverdue,
        Family::OpenNeed,
        Family::RecentNeed,
        Family::RecentNeedResolved,
    ];

    /// Every family, each after its parent.
    pub const ALL: [Family; 18] = [
        Family::All,
        Family::Covered,
        Family::CoveredBy(Level::Province),
        Family::CoveredBy(Level::City),
        Family::CoveredBy(Level::County),
        Family::CoveredBy(Level::Township),
        Family::CoveredBy(Level::Village),
        Family::OutsideGrid,
        Family::Hardship,
        Family::HardshipCovered,
        Family::Martyr,
        Family::MartyrCovered,
        Family::Overdue,
        Family::NeverContacted,
        Family::HardshipOverdue,
        Family::OpenNeed,
        Family::RecentNeed,
        Family::RecentNeedResolved,
    ];

    /// Position in [`Family::ALL`].
    pub fn index(self) -> usize {
        match self {
            Family::All => 0,
            Family::Covered => 1,
            Family::CoveredBy(l) => 2 + l.index(),
            Family::OutsideGrid => 7,
            Family::Hardship => 8,
            Family::HardshipCovered => 9,
            Family::Martyr => 10,
            Family::MartyrCovered => 11,
            Family::Overdue => 12,
            Family::NeverContacted => 13,
            Family::HardshipOverdue => 14,
            Family::OpenNeed => 15,
            Family::RecentNeed => 16,
            Family::RecentNeedResolved => 17,
        }
    }

    /// The family it splits (None for [`Family::All`]).
    pub fn parent(self) -> Option<Family> {
        match self {
            Family::All => None,
            Family::CoveredBy(_) => Some(Family::Covered),
            Family::HardshipCovered | Family::HardshipOverdue => Some(Family::Hardship),
            Family::MartyrCovered => Some(Family::Martyr),
            Family::NeverContacted => Some(Family::Overdue),
            Family::RecentNeedResolved => Some(Family::RecentNeed),
            _ => Some(Family::All),
        }
    }

    /// True for the families decided for grids as well as units: every household of the grid,
    /// and the effective-coverage families with their parents (hardship families, as the
    /// parent of the hardship overdue). The coverage splits are decided for units only: grids
    /// do not show them.
    pub fn on_grids(self) -> bool {
        matches!(self, Family::All | Family::Hardship) || Family::SERVICE.contains(&self)
    }

    /// True for sensitive statuses: a group that is the whole of its parent's is not shown.
    pub fn sensitive(self) -> bool {
        matches!(self, Family::Hardship | Family::Martyr | Family::OpenNeed | Family::RecentNeed)
    }

    /// True when a household with these facts belongs to the family.
    pub fn has(self, f: &Facts) -> bool {
        match self {
            Family::All => true,
            Family::Covered => f.covered != 0,
            Family::CoveredBy(l) => f.covered & (1 << l.index()) != 0,
            Family::OutsideGrid => !f.in_grid,
            Family::Hardship => f.hardship,
            Family::HardshipCovered => f.hardship && f.covered != 0,
            Family::Martyr => f.martyr,
            Family::MartyrCovered => f.martyr && f.covered != 0,
            Family::Overdue => !f.service.contacted(),
            Family::NeverContacted => !f.service.ever_contacted(),
            Family::HardshipOverdue => f.service.hardship_overdue(),
            Family::OpenNeed => f.service.open_need(),
            Family::RecentNeed => f.service.recent_need(),
            Family::RecentNeedResolved => f.service.recent_need_resolved(),
        }
    }

    /// The family of a column of [`crate::output::COVERAGE_COLUMNS`] (or of the tiles' and
    /// grids' properties); `None` for what is not computed from households (names, codes,
    /// station counts, the two rules).
    pub fn of_column(column: &str) -> Option<Family> {
        let by_level = |s: &str| s.parse::<Level>().ok().map(Family::CoveredBy);
        match column {
            "households" | "veterans" | "nearest_mean_m" | "nearest_median_m" | "nearest_p90_m" | "over_cap" => {
                Some(Family::All)
            }
            "covered_households"
            | "covered_veterans"
            | "coverage_share"
            | "uncovered_veterans"
            | "uncovered_households" => Some(Family::Covered),
            "outside_grid_households" | "outside_grid_veterans" => Some(Family::OutsideGrid),
            "hardship_households" | "hardship_veterans" => Some(Family::Hardship),
            "hardship_covered_veterans" | "hardship_coverage_share" => Some(Family::HardshipCovered),
            "martyr_households" | "martyr_veterans" => Some(Family::Martyr),
            "martyr_covered_veterans" | "martyr_coverage_share" => Some(Family::MartyrCovered),
            "contacted_households" | "contacted_share" | "overdue_households" => Some(Family::Overdue),
            "never_contacted_households" => Some(Family::NeverContacted),
            "hardship_overdue_households" => Some(Family::HardshipOverdue),
            "open_need_households" | "open_needs" | "open_needs_median_days" => Some(Family::OpenNeed),
            "needs_in_window" => Some(Family::RecentNeed),
            "needs_resolved_30d_share" => Some(Family::RecentNeedResolved),
            c => {
                if let Some(l) = c.strip_prefix("covered_").and_then(|r| r.strip_suffix("_veterans")) {
                    return by_level(l);
                }
                c.strip_prefix("share_").and_then(by_level)
            }
        }
    }
}

/// The shown/withheld decision of every family of every unit and grid, for one viewer.
#[derive(Debug, Clone)]
pub struct Disclosure {
    /// The policy applied.
    pub policy: Policy,
    units: usize,
    /// `shown[family][node]`: nodes are the units, then the grids.
    shown: Vec<Vec<bool>>,
    /// The families decided (the effective-coverage ones only with service facts).
    families: Vec<Family>,
}

/// The tree of units the rules run over, and the grids of each unit (a second partition of
/// its households, checked on its own: [`withhold_grids_together`]).
struct Tree {
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    /// The grid nodes under each unit.
    grids: Vec<Vec<usize>>,
    /// Units from the province down.
    order: Vec<usize>,
}

impl Tree {
    fn new(ds: &Dataset) -> Tree {
        let nu = ds.divisions.len();
        let n = nu + ds.grids.len();
        let mut parent: Vec<Option<usize>> = vec![None; n];
        let mut children = vec![Vec::new(); nu];
        let mut grids = vec![Vec::new(); nu];
        for (u, p) in parent.iter_mut().enumerate().take(nu) {
            *p = ds.divisions.get(u as u32).parent.map(|p| p as usize);
        }
        for g in 0..ds.grids.len() {
            parent[nu + g] = ds.grids.unit[g].map(|u| u as usize);
        }
        for (c, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                if c < nu {
                    children[*p].push(c);
                } else {
                    grids[*p].push(c);
                }
            }
        }
        let mut order: Vec<usize> = (0..nu).collect();
        order.sort_by_key(|&u| ds.divisions.get(u as u32).level.index());
        Tree { parent, children, grids, order }
    }

    /// The shown nodes below `node` with no shown node between (depth first, in order).
    fn frontier(&self, node: usize, shown: &[bool], out: &mut Vec<usize>) {
        for &c in &self.children[node] {
            if shown[c] {
                out.push(c);
            } else {
                self.frontier(c, shown, out);
            }
        }
    }
}

/// Households of each family in each node, and in each grid node within its unit (`u32`:
/// households are indexed by `u32`, so no count is above it; half the room of `u64` counts,
/// which at national scale were the peak of the server's start: two tables of twelve families
/// by 1.2 million units and grids, one pair per thread).
type Counts = (Vec<Vec<u32>>, Vec<Vec<u32>>);

/// The counts of one family (and of its parent, when it has one) in every node.
struct GridCounts<'a> {
    /// Members of the family in each node.
    members: &'a [u32],
    /// Members of a grid node within the grid's unit.
    in_unit: &'a [u32],
    /// The same two of the parent family (None for [`Family::All`]).
    parent: Option<(&'a [u32], &'a [u32])>,
}

impl GridCounts<'_> {
    /// The rest of the parent family's group in `node` (all of it, or within the unit).
    fn rest(&self, node: usize, within: bool) -> i64 {
        let (m, p) = if within {
            (self.in_unit[node], self.parent.map(|p| p.1[node]))
        } else {
            (self.members[node], self.parent.map(|p| p.0[node]))
        };
        p.map_or(0, |p| p as i64 - m as i64)
    }
}

/// Grids are a second partition of their unit's households (in a grid or not, and which
/// grid). A grid of a withheld unit is withheld (its figures would bound the unit's). For
/// each shown unit, its withheld grids together, and the unit's households minus its
/// shown grids (those outside every grid, and the withheld grids), must each pass the
/// primary rule — members and the rest of the parent family's group `0` or at least `k`
/// (for a sensitive family the rest not empty while the members are not); where not, the
/// smallest shown grid is withheld, and so on.
fn withhold_grids_together(tree: &Tree, c: &GridCounts<'_>, s: &mut [bool], k: u64, sensitive: bool) {
    let g_ok = |x: i64| x <= 0 || x >= k as i64;
    let ok = |m: i64, r: i64| g_ok(m) && g_ok(r) && !(sensitive && r <= 0 && m > 0);
    let size = |g: usize| c.parent.map_or(c.members[g], |p| p.0[g]);
    for (p, grids) in tree.grids.iter().enumerate() {
        if grids.is_empty() {
            continue;
        }
        // A grid of a withheld unit would bound the unit's figure: withheld with it.
        if !s[p] {
            for &g in grids {
                s[g] = false;
            }
            continue;
        }
        let hidden = |s: &[bool]| -> (i64, i64) {
            grids.iter().filter(|&&g| !s[g]).fold((0, 0), |(m, r), &g| (m + c.members[g] as i64, r + c.rest(g, false)))
        };
        let left = |s: &[bool]| -> (i64, i64) {
            grids.iter().filter(|&&g| s[g]).fold((c.members[p] as i64, c.rest(p, false)), |(m, r), &g| {
                (m - c.in_unit[g] as i64, r - c.rest(g, true))
            })
        };
        let mut shown: Vec<usize> = grids.iter().copied().filter(|&g| s[g]).collect();
        shown.sort_by_key(|&g| (std::cmp::Reverse(size(g)), std::cmp::Reverse(g)));
        loop {
            let (hm, hr) = hidden(s);
            let (lm, lr) = left(s);
            if ok(hm, hr) && ok(lm, lr) {
                break;
            }
            let Some(g) = shown.pop() else { break };
            s[g] = false;
        }
    }
}

impl Disclosure {
    /// The decisions for a viewer who knows the households `known` (a grid worker's own,
    /// sorted or not; empty for leaders and planners), on the coverage families: the
    /// effective-coverage ones ([`Family::SERVICE`]) are all withheld.
    pub fn compute(ds: &Dataset, asg: &Assignment, policy: Policy, known: &[u32]) -> Disclosure {
        Self::compute_with_service(ds, asg, policy, known, None)
    }

    /// The same, with every household's service facts as of a day (one per household): the
    /// effective-coverage families are decided too.
    pub fn compute_with_service(
        ds: &Dataset,
        asg: &Assignment,
        policy: Policy,
        known: &[u32],
        service: Option<&[ServiceFacts]>,
    ) -> Disclosure {
        let tree = Tree::new(ds);
        let nu = ds.divisions.len();
        let n = tree.parent.len();
        let nf = Family::ALL.len();
        let mut is_known = vec![false; ds.households.len()];
        for &h in known {
            if let Some(k) = is_known.get_mut(h as usize) {
                *k = true;
            }
        }
        let hh = &ds.households;
        // Without service facts the effective-coverage families stay withheld: nothing to
        // decide on.
        let families: Vec<Family> =
            Family::ALL.into_iter().filter(|f| service.is_some() || !Family::SERVICE.contains(f)).collect();
        // Households of each family in each node, of those the viewer does not know (`count`:
        // first in each household's own unit only, then summed up the tree), and in each grid
        // node within the grid's unit (`in_unit`). The households are counted in parallel,
        // one share per thread.
        let count_range = |range: std::ops::Range<usize>| {
            let mut count = vec![vec![0u32; n]; nf];
            let mut in_unit = vec![vec![0u32; n]; nf];
            for h in range {
                if is_known[h] {
                    continue;
                }
                let facts = Facts {
                    covered: asg.covered[h],
                    in_grid: asg.grid[h] != NONE,
                    hardship: hh.difficulty[h],
                    martyr: hh.martyr_family[h],
                    service: service.and_then(|s| s.get(h)).copied().unwrap_or_default(),
                };
                let u = asg.unit[h];
                if u != NO_UNIT {
                    for &f in &families {
                        if f.has(&facts) {
                            count[f.index()][u as usize] += 1;
                        }
                    }
                }
                let g = asg.grid[h];
                if g != NONE {
                    let node = nu + g as usize;
                    let within =
                        u != NO_UNIT && ds.grids.unit[g as usize].is_some_and(|gu| ds.divisions.chain(u).contains(&gu));
                    for &f in families.iter().filter(|f| f.on_grids() && f.has(&facts)) {
                        count[f.index()][node] += 1;
                        if within {
                            in_unit[f.index()][node] += 1;
                        }
                    }
                }
            }
            (count, in_unit)
        };
        let threads = rayon::current_num_threads().clamp(1, 8);
        let share = hh.len().div_ceil(threads).max(1);
        let parts: Vec<Counts> = (0..threads)
            .into_par_iter()
            .map(|t| count_range((t * share).min(hh.len())..((t + 1) * share).min(hh.len())))
            .collect();
        let mut parts = parts.into_iter();
        let (mut count, mut in_unit) =
            parts.next().unwrap_or_else(|| (vec![vec![0u32; n]; nf], vec![vec![0u32; n]; nf]));
        for (c, i) in parts {
            for (a, b) in count.iter_mut().zip(&c).chain(in_unit.iter_mut().zip(&i)) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
        }
        // Up the tree: the deepest units first.
        for &u in tree.order.iter().rev() {
            if let Some(p) = tree.parent[u] {
                for c in count.iter_mut() {
                    c[p] += c[u];
                }
            }
        }
        let mut shown = vec![vec![false; n]; nf];
        for &f in &families {
            let fi = f.index();
            let pi = f.parent().map(Family::index);
            let rest = |node: usize| pi.map_or(0, |p| count[p][node].saturating_sub(count[fi][node]));
            let ok = |members: i64, rest: i64| -> bool {
                let g = |x: i64| x <= 0 || x >= policy.k() as i64;
                g(members) && g(rest) && !(f.sensitive() && rest <= 0 && members > 0)
            };
            // Primary rule (grids carry the families of [`Family::on_grids`] only).
            let mut s: Vec<bool> = (0..n)
                .map(|node| {
                    (node < nu || f.on_grids())
                        && pi.is_none_or(|p| shown[p][node])
                        && ok(count[fi][node] as i64, rest(node) as i64)
                })
                .collect();
            // Complementary rule, from the province down.
            let mut frontier = Vec::new();
            for &node in &tree.order {
                if !s[node] {
                    continue;
                }
                frontier.clear();
                tree.frontier(node, &s, &mut frontier);
                loop {
                    let left_members =
                        count[fi][node] as i64 - frontier.iter().map(|&q| count[fi][q] as i64).sum::<i64>();
                    let left_rest = rest(node) as i64 - frontier.iter().map(|&q| rest(q) as i64).sum::<i64>();
                    if ok(left_members, left_rest) {
                        break;
                    }
                    // Withhold the smallest maximal descendant (fewest households of the
                    // parent family, then the first), and look below it.
                    let size = |q: usize| pi.map_or(count[fi][q], |p| count[p][q]);
                    let Some(pos) = (0..frontier.len()).min_by_key(|&i| (size(frontier[i]), i)) else { break };
                    let q = frontier.swap_remove(pos);
                    s[q] = false;
                    let mut below = Vec::new();
                    tree.frontier(q, &s, &mut below);
                    frontier.extend(below);
                }
            }
            if f.on_grids() {
                let parent = pi.map(|p| (&count[p][..], &in_unit[p][..]));
                let g = GridCounts { members: &count[fi], in_unit: &in_unit[fi], parent };
                withhold_grids_together(&tree, &g, &mut s, policy.k(), f.sensitive());
            }
            shown[fi] = s;
        }
        Disclosure { policy, units: nu, shown, families }
    }

    /// True when the figures of `family` of unit `u` may be shown.
    pub fn unit(&self, family: Family, u: u32) -> bool {
        self.shown[family.index()].get(u as usize).copied().unwrap_or(false)
    }

    /// True when a unit's column may be shown ([`Family::of_column`]; columns not computed
    /// from households always).
    pub fn unit_column(&self, column: &str, u: u32) -> bool {
        Family::of_column(column).is_none_or(|f| self.unit(f, u))
    }

    /// True when a grid's household figures (households, veterans, over cap) may be shown.
    pub fn grid(&self, g: u32) -> bool {
        self.grid_family(Family::All, g)
    }

    /// True when the figures of `family` of grid `g` may be shown (families not decided for
    /// grids, [`Family::on_grids`], never are).
    pub fn grid_family(&self, family: Family, g: u32) -> bool {
        self.shown[family.index()].get(self.units + g as usize).copied().unwrap_or(false)
    }

    /// True when a grid's column may be shown (as [`Disclosure::unit_column`]).
    pub fn grid_column(&self, column: &str, g: u32) -> bool {
        Family::of_column(column).is_none_or(|f| self.grid_family(f, g))
    }

    /// True when some household figure of unit `u` is withheld (of the families decided: the
    /// effective-coverage ones count only when service facts were given).
    pub fn unit_withholds(&self, u: u32) -> bool {
        self.families.iter().any(|&f| !self.unit(f, u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::COVERAGE_COLUMNS;

    #[test]
    fn every_coverage_column_is_classified() {
        let not_households = [
            "code",
            "name",
            "level",
            "parent_code",
            "stations_province",
            "stations_city",
            "stations_county",
            "stations_township",
            "stations_village",
            "demonstration_stations",
            "mobile_stations",
            "own_stations",
            "townships_without_station",
            "villages_without_station",
            "rules_ok",
        ];
        for c in COVERAGE_COLUMNS {
            assert_eq!(Family::of_column(c).is_none(), not_households.contains(c), "column {c}");
        }
        assert_eq!(Family::of_column("share_village"), Some(Family::CoveredBy(Level::Village)));
        assert_eq!(Family::of_column("covered_county_veterans"), Some(Family::CoveredBy(Level::County)));
        assert_eq!(Family::of_column("covered_veterans"), Some(Family::Covered));
    }

    /// Province 99 → city 9901 → county 990101 → township 990101001 → villages …001 (3
    /// households), …002 (10), …003 (8); and 2 households placed at the township only.
    /// Makes grid G0 (worker W) of unit `u` over the households `hs`, the only grid.
    fn one_grid(ds: &mut Dataset, asg: &mut Assignment, u: crate::model::UnitIdx, hs: std::ops::Range<usize>) {
        std::sync::Arc::make_mut(&mut ds.grids).id = vec!["G0".into()];
        std::sync::Arc::make_mut(&mut ds.grids).worker = vec!["W".into()];
        std::sync::Arc::make_mut(&mut ds.grids).unit = vec![Some(u)];
        std::sync::Arc::make_mut(&mut ds.grids).geometry = vec![geo::MultiPolygon::new(vec![])];
        for h in hs {
            asg.grid[h] = 0;
        }
    }

    fn tree() -> (Dataset, Assignment) {
        use crate::model::{Divisions, HouseholdRow};
        let mut d = Divisions::new();
        d.add("99", "省", Level::Province, None).unwrap();
        d.add("9901", "市", Level::City, Some("99")).unwrap();
        d.add("990101", "县", Level::County, Some("9901")).unwrap();
        let t = d.add("990101001", "镇", Level::Township, Some("990101")).unwrap();
        let v: Vec<u32> = (1..=3)
            .map(|i| d.add(&format!("990101001{i:03}"), "村", Level::Village, Some("990101001")).unwrap())
            .collect();
        let mut ds = Dataset { divisions: d.into(), ..Dataset::default() };
        let mut asg = Assignment::default();
        let mut put = |ds: &mut Dataset, unit: u32, covered: bool, hardship: bool| {
            let i = ds.households.len();
            ds.households.push(HouseholdRow {
                id: format!("H{i}"),
                veterans: 1,
                difficulty: hardship,
                ..Default::default()
            });
            asg.unit.push(unit);
            asg.grid.push(NONE);
            asg.covered.push(if covered { 1 << 4 } else { 0 });
        };
        for _ in 0..3 {
            put(&mut ds, v[0], true, false);
        }
        for i in 0..10 {
            // Nine covered, one not; six in hardship.
            put(&mut ds, v[1], i != 0, i < 6);
        }
        for _ in 0..8 {
            put(&mut ds, v[2], true, false);
        }
        for _ in 0..2 {
            put(&mut ds, t, true, false);
        }
        (ds, asg)
    }

    fn code(ds: &Dataset, c: &str) -> u32 {
        ds.divisions.find(c).unwrap()
    }

    #[test]
    fn small_units_and_their_complements_are_withheld() {
        let (ds, asg) = tree();
        let d = Disclosure::compute(&ds, &asg, Policy::default(), &[]);
        let v1 = code(&ds, "990101001001");
        let v2 = code(&ds, "990101001002");
        let v3 = code(&ds, "990101001003");
        let t = code(&ds, "990101001");
        // Village 1 has 3 households (< 5): withheld.
        assert!(!d.unit(Family::All, v1));
        // The township (23) minus the shown villages must leave 0 or ≥ 5: with v2 and v3 shown
        // it would leave 3 + 2 = 5 — enough. So both stay.
        assert!(d.unit(Family::All, v2) && d.unit(Family::All, v3) && d.unit(Family::All, t));
        // Village 2: 9 covered, 1 not: the split is withheld (1 uncovered household).
        assert!(!d.unit(Family::Covered, v2));
        // Village 3: all 8 covered: shown (the rest is empty).
        assert!(d.unit(Family::Covered, v3));
        // Village 2's 6 hardship households against 4 others: the rest is under 5, withheld.
        assert!(!d.unit(Family::Hardship, v2));
        // Village 3 has no hardship household: shown (zero).
        assert!(d.unit(Family::Hardship, v3));
        // The township: 6 hardship of 23, 17 others: shown; but then township minus village 3
        // (shown, 0 hardship) leaves the 6 of village 2 and their 9 others: fine.
        assert!(d.unit(Family::Hardship, t));
        assert!(d.unit_column("name", v1));
        assert!(!d.unit_column("households", v1));
        assert!(d.unit_withholds(v1));
    }

    #[test]
    fn a_small_remainder_forces_a_second_suppression() {
        // With k = 6, village 1 (3) is withheld, and the township (23) minus villages 2 and 3
        // (10 + 8) would leave 5 < 6 households: village 1's and the township's own two. So
        // the smaller of the two, village 3, is withheld as well.
        let (ds, asg) = tree();
        let d = Disclosure::compute(&ds, &asg, Policy::with_min_households(6).unwrap(), &[]);
        let v2 = code(&ds, "990101001002");
        let v3 = code(&ds, "990101001003");
        let t = code(&ds, "990101001");
        assert!(d.unit(Family::All, t));
        assert!(d.unit(Family::All, v2));
        assert!(!d.unit(Family::All, v3), "v3 is withheld to protect v1 and the township's own households");
    }

    #[test]
    fn known_households_are_not_counted_as_protection() {
        let (ds, asg) = tree();
        let v2 = code(&ds, "990101001002");
        // A viewer who knows 6 of village 2's 10 households: the other 4 are too few.
        let known: Vec<u32> = (3..9).collect();
        let d = Disclosure::compute(&ds, &asg, Policy::default(), &known);
        assert!(!d.unit(Family::All, v2));
        // Knowing all ten, nothing is left to protect there.
        let known: Vec<u32> = (3..13).collect();
        let d = Disclosure::compute(&ds, &asg, Policy::default(), &known);
        assert!(d.unit(Family::All, v2));
    }

    /// A random province: 1–2 cities, 1–2 counties each, 1–3 townships, 0–4 villages, and
    /// households in villages or (some) at township level only, with random coverage bits,
    /// grids and statuses.
    fn random(seed: u64, n: usize) -> (Dataset, Assignment, Vec<u32>, Vec<ServiceFacts>) {
        use crate::model::{Divisions, HouseholdRow};
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut d = Divisions::new();
        d.add("99", "省", Level::Province, None).unwrap();
        let mut places = Vec::new();
        for c in 1..=rng.random_range(1..=2) {
            let city = format!("99{c:02}");
            d.add(&city, "市", Level::City, Some("99")).unwrap();
            for x in 1..=rng.random_range(1..=2) {
                let county = format!("{city}{x:02}");
                d.add(&county, "县", Level::County, Some(&city)).unwrap();
                for t in 1..=rng.random_range(1..=3) {
                    let town = format!("{county}{t:03}");
                    places.push(d.add(&town, "镇", Level::Township, Some(&county)).unwrap());
                    for v in 1..=rng.random_range(0..=4) {
                        let vil = format!("{town}{v:03}");
                        for _ in 0..3 {
                            places.push(
                                d.add(&vil, "村", Level::Village, Some(&town)).unwrap_or(places[places.len() - 1]),
                            );
                        }
                    }
                }
            }
        }
        let mut ds = Dataset { divisions: d.into(), ..Dataset::default() };
        let mut asg = Assignment::default();
        for i in 0..n {
            // Skewed: some units get many households, some one or two.
            let u = places[(rng.random::<f64>().powi(2) * places.len() as f64) as usize % places.len()];
            ds.households.push(HouseholdRow {
                id: format!("H{i}"),
                veterans: rng.random_range(1..4),
                difficulty: rng.random_bool(0.2),
                martyr_family: rng.random_bool(0.05),
                ..Default::default()
            });
            asg.unit.push(u);
            asg.grid.push(NONE);
            asg.covered.push(rng.random_range(0..32u8) & if rng.random_bool(0.3) { 0 } else { 31 });
        }
        // Grids: some units get one to three; most of a unit's households are in one of its
        // grids, a few in a grid of another unit (a grid drawn across a boundary).
        let mut units: Vec<u32> = places.clone();
        units.sort_unstable();
        units.dedup();
        let mut grids_of: std::collections::HashMap<u32, Vec<u32>> = Default::default();
        for &u in &units {
            if rng.random_bool(0.5) {
                for _ in 0..rng.random_range(1..=3) {
                    let g = ds.grids.len() as u32;
                    std::sync::Arc::make_mut(&mut ds.grids).id.push(format!("G{g}"));
                    std::sync::Arc::make_mut(&mut ds.grids).worker.push(format!("W{}", g % 4));
                    std::sync::Arc::make_mut(&mut ds.grids).unit.push(Some(u));
                    std::sync::Arc::make_mut(&mut ds.grids).geometry.push(geo::MultiPolygon::new(vec![]));
                    grids_of.entry(u).or_default().push(g);
                }
            }
        }
        for h in 0..n {
            let own = grids_of.get(&asg.unit[h]);
            if let Some(own) = own.filter(|_| rng.random_bool(0.8)) {
                asg.grid[h] = own[rng.random_range(0..own.len())];
            } else if !ds.grids.is_empty() && rng.random_bool(0.03) {
                asg.grid[h] = rng.random_range(0..ds.grids.len() as u32);
            }
        }
        let known: Vec<u32> = (0..n as u32).filter(|_| rng.random_bool(0.05)).collect();
        // Service facts as the analysis makes them: contacted implies ever contacted, only
        // hardship households are hardship-overdue, a resolved recent need is a recent need.
        let service = (0..n)
            .map(|h| {
                let contacted = rng.random_bool(0.7);
                let recent_need = rng.random_bool(0.15);
                ServiceFacts::default()
                    .with_contacted(contacted)
                    .with_ever_contacted(contacted || rng.random_bool(0.5))
                    .with_hardship_overdue(ds.households.difficulty[h] && rng.random_bool(0.4))
                    .with_open_need(rng.random_bool(0.1))
                    .with_recent_need(recent_need)
                    .with_recent_need_resolved(recent_need && rng.random_bool(0.6))
            })
            .collect();
        (ds, asg, known, service)
    }

    /// What the checkers know of household `h` (read from the columns here, not through the
    /// policy's code).
    fn facts_at(ds: &Dataset, asg: &Assignment, service: &[ServiceFacts], h: usize) -> Facts {
        Facts {
            covered: asg.covered[h],
            in_grid: asg.grid[h] != NONE,
            hardship: ds.households.difficulty[h],
            martyr: ds.households.martyr_family[h],
            service: service.get(h).copied().unwrap_or_default(),
        }
    }

    /// An independent check of the promise: for every family, every shown unit's group and
    /// rest (beyond what the viewer knows) are 0 or ≥ k (the rest not empty for sensitive
    /// families), and so is what is left of a shown unit minus its maximal shown descendants.
    fn check(
        ds: &Dataset,
        asg: &Assignment,
        d: &Disclosure,
        k: i64,
        known: &[u32],
        service: &[ServiceFacts],
    ) -> Result<(), String> {
        let nu = ds.divisions.len();
        for f in Family::ALL {
            let mut n = vec![0i64; nu];
            let mut of = vec![0i64; nu];
            for h in 0..ds.households.len() {
                if known.contains(&(h as u32)) {
                    continue;
                }
                let facts = facts_at(ds, asg, service, h);
                for a in ds.divisions.chain(asg.unit[h]).into_iter().filter(|&a| a != NO_UNIT) {
                    if f.has(&facts) {
                        n[a as usize] += 1;
                    }
                    if f.parent().is_none_or(|p| p.has(&facts)) {
                        of[a as usize] += 1;
                    }
                }
            }
            let rest = |u: usize| if f.parent().is_some() { of[u] - n[u] } else { 0 };
            let g = |x: i64| x <= 0 || x >= k;
            let pass = |m: i64, r: i64| g(m) && g(r) && !(f.sensitive() && r <= 0 && m > 0);
            for u in 0..nu as u32 {
                if !d.unit(f, u) {
                    continue;
                }
                if !pass(n[u as usize], rest(u as usize)) {
                    return Err(format!(
                        "{f:?} of {}: {} / {}",
                        ds.divisions.get(u).code,
                        n[u as usize],
                        rest(u as usize)
                    ));
                }
                let mut stack: Vec<u32> = ds.divisions.children(u).to_vec();
                let (mut m, mut r) = (n[u as usize], rest(u as usize));
                while let Some(q) = stack.pop() {
                    if d.unit(f, q) {
                        m -= n[q as usize];
                        r -= rest(q as usize);
                    } else {
                        stack.extend_from_slice(ds.divisions.children(q));
                    }
                }
                if !pass(m, r) {
                    return Err(format!(
                        "{f:?}: {} minus its shown children leaves {m} / {r}",
                        ds.divisions.get(u).code
                    ));
                }
            }
        }
        check_grids(ds, asg, d, k, known, service)
    }

    /// The same for the grids, a second partition of each unit: for every family shown on
    /// grids (every household; hardship, the parent of hardship overdue; and the
    /// effective-coverage families), a shown grid's group and rest pass, its unit shows the
    /// family, and for every shown unit with grids, the unit minus its shown grids (within the
    /// unit) and its withheld grids together pass as well.
    fn check_grids(
        ds: &Dataset,
        asg: &Assignment,
        d: &Disclosure,
        k: i64,
        known: &[u32],
        service: &[ServiceFacts],
    ) -> Result<(), String> {
        let nu = ds.divisions.len();
        let ng = ds.grids.len();
        let mut families = vec![Family::All, Family::Hardship];
        families.extend(Family::SERVICE);
        for f in Family::ALL {
            if !families.contains(&f) {
                for g in 0..ng as u32 {
                    if d.grid_family(f, g) {
                        return Err(format!("{f:?} shown for grid {g}: grids do not carry it"));
                    }
                }
            }
        }
        for f in families {
            // (members, parent's group) per unit, per grid, and per grid within its unit.
            let (mut unit, mut grid, mut within) =
                (vec![(0i64, 0i64); nu], vec![(0i64, 0i64); ng], vec![(0i64, 0i64); ng]);
            for h in 0..ds.households.len() {
                if known.contains(&(h as u32)) {
                    continue;
                }
                let facts = facts_at(ds, asg, service, h);
                let add = |c: &mut (i64, i64)| {
                    c.0 += i64::from(f.has(&facts));
                    c.1 += i64::from(f.parent().is_none_or(|p| p.has(&facts)));
                };
                let chain = ds.divisions.chain(asg.unit[h]);
                for a in chain.iter().copied().filter(|&a| a != NO_UNIT) {
                    add(&mut unit[a as usize]);
                }
                let g = asg.grid[h];
                if g != NONE {
                    add(&mut grid[g as usize]);
                    if ds.grids.unit[g as usize].is_some_and(|u| chain.contains(&u)) {
                        add(&mut within[g as usize]);
                    }
                }
            }
            let split = |c: (i64, i64)| (c.0, if f.parent().is_some() { c.1 - c.0 } else { 0 });
            let g_ok = |x: i64| x <= 0 || x >= k;
            let pass = |(m, r): (i64, i64)| g_ok(m) && g_ok(r) && !(f.sensitive() && r <= 0 && m > 0);
            for (g, &c) in grid.iter().enumerate() {
                if !d.grid_family(f, g as u32) {
                    continue;
                }
                if !pass(split(c)) {
                    return Err(format!("{f:?} of grid {g}: {:?}", split(c)));
                }
                if let Some(u) = ds.grids.unit[g].filter(|&u| !d.unit(f, u)) {
                    return Err(format!("{f:?} of grid {g} shown, of its unit {u} withheld"));
                }
            }
            for u in 0..nu as u32 {
                let grids: Vec<usize> = (0..ng).filter(|&g| ds.grids.unit[g] == Some(u)).collect();
                if grids.is_empty() || !d.unit(f, u) {
                    continue;
                }
                // With no grid shown, the grids say nothing beyond the unit.
                if !grids.iter().any(|&g| d.grid_family(f, g as u32)) {
                    continue;
                }
                let (mut left, mut hidden) = (split(unit[u as usize]), (0, 0));
                for g in grids {
                    if d.grid_family(f, g as u32) {
                        let w = split(within[g]);
                        left = (left.0 - w.0, left.1 - w.1);
                    } else {
                        let w = split(grid[g]);
                        hidden = (hidden.0 + w.0, hidden.1 + w.1);
                    }
                }
                if !pass(left) || !pass(hidden) {
                    return Err(format!(
                        "{f:?}: {} minus its shown grids leaves {left:?}, its withheld grids hold {hidden:?}",
                        ds.divisions.get(u).code
                    ));
                }
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn no_shown_figure_describes_fewer_than_k_nor_follows_for_a_withheld_one(
            seed in 0u64..1_000_000, n in 0usize..400, k in 3u32..8, worker in proptest::bool::ANY,
        ) {
            let (ds, asg, known, service) = random(seed, n);
            let known = if worker { known } else { Vec::new() };
            let policy = Policy::with_min_households(k).unwrap();
            let d = Disclosure::compute_with_service(&ds, &asg, policy, &known, Some(&service));
            if let Err(e) = check(&ds, &asg, &d, i64::from(k), &known, &service) {
                return Err(proptest::test_runner::TestCaseError::fail(e));
            }
            // Without service facts, every effective-coverage figure is withheld.
            let d = Disclosure::compute(&ds, &asg, policy, &known);
            for f in Family::SERVICE {
                for u in 0..ds.divisions.len() as u32 {
                    proptest::prop_assert!(!d.unit(f, u), "{:?} of unit {} shown without records", f, u);
                }
            }
        }
    }

    #[test]
    fn effective_coverage_figures_follow_the_same_rules() {
        let (ds, asg) = tree();
        // Village 2 holds households 3..13, village 3 13..21; `v2_contacted` of village 2 and
        // all of village 3 were contacted, nobody else. Two open needs in village 3.
        let service = |v2_contacted: usize| -> Vec<ServiceFacts> {
            (0..ds.households.len())
                .map(|h| {
                    let contacted = (3..3 + v2_contacted).contains(&h) || (13..21).contains(&h);
                    ServiceFacts::default()
                        .with_contacted(contacted)
                        .with_ever_contacted(contacted)
                        .with_open_need(h == 13 || h == 14)
                })
                .collect()
        };
        let (v2, v3) = (code(&ds, "990101001002"), code(&ds, "990101001003"));
        let t = code(&ds, "990101001");
        let five = service(5);
        let d = Disclosure::compute_with_service(&ds, &asg, Policy::default(), &[], Some(&five));
        // 5 contacted and 5 overdue in village 2; 8 and 0 in village 3; the township minus both
        // leaves 5 overdue (village 1 and the township's own) and 0 contacted: all shown.
        assert!(d.unit(Family::Overdue, v2) && d.unit(Family::Overdue, v3) && d.unit(Family::Overdue, t));
        // 2 households with open needs: withheld.
        assert!(!d.unit(Family::OpenNeed, v3));
        assert!(d.unit_withholds(v3));
        // 3 contacted in village 2 is a group under 5: withheld; and then village 3 too, since
        // the township minus village 3 would leave those 3 contacted.
        let three = service(3);
        let d = Disclosure::compute_with_service(&ds, &asg, Policy::default(), &[], Some(&three));
        assert!(!d.unit(Family::Overdue, v2));
        assert!(!d.unit(Family::Overdue, v3));
        assert!(d.unit(Family::Overdue, t));
        // Without the facts, nothing of them is shown, and they do not make a unit "withheld".
        let plain = Disclosure::compute(&ds, &asg, Policy::default(), &[]);
        assert!(!plain.unit(Family::Overdue, v3));
        assert_eq!(plain.unit_withholds(v3), Family::ALL[..12].iter().any(|&f| !plain.unit(f, v3)));
        assert_eq!(Family::of_column("contacted_share"), Some(Family::Overdue));
        assert_eq!(Family::of_column("needs_resolved_30d_share"), Some(Family::RecentNeedResolved));
    }

    #[test]
    fn grids_carry_the_effective_figures_under_the_same_rules() {
        let (mut ds, mut asg) = tree();
        // Grid G0 in village 3: its 8 households (13..21).
        let v3 = code(&ds, "990101001003");
        one_grid(&mut ds, &mut asg, v3, 13..21);
        let service = |contacted: std::ops::Range<usize>, open: &[usize]| -> Vec<ServiceFacts> {
            (0..ds.households.len())
                .map(|h| {
                    ServiceFacts::default()
                        .with_contacted(contacted.contains(&h))
                        .with_ever_contacted(contacted.contains(&h))
                        .with_open_need(open.contains(&h))
                })
                .collect()
        };
        // All 8 contacted, no open need: 8 and 0, shown for the grid as for its village.
        let f = service(13..21, &[]);
        let d = Disclosure::compute_with_service(&ds, &asg, Policy::default(), &[], Some(&f));
        assert!(d.grid(0) && d.grid_family(Family::Overdue, 0) && d.grid_family(Family::OpenNeed, 0));
        assert!(d.grid_column("contacted_households", 0) && d.grid_column("worker", 0));
        assert!(!d.grid_family(Family::Covered, 0), "grids do not carry the coverage splits");
        // 3 contacted: withheld, for the grid as for the village.
        let f = service(13..16, &[13, 14]);
        let d = Disclosure::compute_with_service(&ds, &asg, Policy::default(), &[], Some(&f));
        assert!(d.grid(0));
        assert!(!d.grid_family(Family::Overdue, 0) && !d.unit(Family::Overdue, v3));
        assert!(!d.grid_family(Family::OpenNeed, 0));
        // A grid of 6 of the village's 8 households, all 6 contacted and the other two not:
        // the grid alone passes (6 and 0), but the village (6 and 2) is withheld, and so is the
        // grid with it; were the village shown, its 2 overdue outside the grid would follow.
        for h in [19, 20] {
            asg.grid[h] = NONE;
        }
        let f = service(13..19, &[]);
        let d = Disclosure::compute_with_service(&ds, &asg, Policy::default(), &[], Some(&f));
        assert!(!d.unit(Family::Overdue, v3));
        assert!(!d.grid_family(Family::Overdue, 0));
        // Without service facts nothing of them is shown for grids either.
        let d = Disclosure::compute(&ds, &asg, Policy::default(), &[]);
        assert!(!d.grid_family(Family::Overdue, 0));
    }

    #[test]
    fn a_shown_unit_withholds_the_grid_that_would_give_its_remainder_away() {
        // k = 3. Village 3 (households 13..21) with grid G0 over 13, 14, 15, all contacted;
        // the other five are outside every grid.
        let (mut ds, mut asg) = tree();
        let v3 = code(&ds, "990101001003");
        one_grid(&mut ds, &mut asg, v3, 13..16);
        let policy = Policy::with_min_households(3).unwrap();
        let facts = |contacted: &[usize]| -> Vec<ServiceFacts> {
            (0..ds.households.len())
                .map(|h| {
                    let c = contacted.contains(&h);
                    ServiceFacts::default().with_contacted(c).with_ever_contacted(c)
                })
                .collect()
        };
        // Only the grid's three contacted: the village (3 and 5) and the grid (3 and 0) pass,
        // and the village minus the grid leaves 0 contacted and 5 overdue: shown.
        let d = Disclosure::compute_with_service(&ds, &asg, policy, &[], Some(&facts(&[13, 14, 15])));
        assert!(d.unit(Family::Overdue, v3) && d.grid(0) && d.grid_family(Family::Overdue, 0));
        // One more contacted outside the grid: the village (4 and 4) and the grid (3 and 0)
        // still pass alone, but the village minus the grid would leave 1 contacted: the grid
        // is withheld, the village stays.
        let d = Disclosure::compute_with_service(&ds, &asg, policy, &[], Some(&facts(&[13, 14, 15, 16])));
        assert!(d.unit(Family::Overdue, v3) && d.grid(0));
        assert!(!d.grid_family(Family::Overdue, 0));
    }

    #[test]
    fn families_are_listed_after_their_parents() {
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
            if let Some(p) = f.parent() {
                assert!(p.index() < i);
            }
        }
    }
}
