//! Analyses (pure computation on an in-memory [`Dataset`]; no I/O).
//!
//! - [`assign`](mod@assign): every household to its admin units, grid and nearest station of each level.
//! - [`coverage`](mod@coverage): the figures of every admin unit at every level, and the two rules.
//! - [`gaps`](mod@gaps): uncovered households clustered into ranked gap areas.
//! - [`workload`](mod@workload): households and veterans per grid worker.
//! - [`effective`](mod@effective): effective coverage as of a day: contacts and needs per unit, grid and worker.
//! - [`live`]: the analysis kept up to date as stations are added, moved and closed.
//! - [`scenario`](mod@scenario): coverage before and after opening and closing a set of stations.
//!
//! [`analyze`] runs them all and times each phase; [`analyze_for_plan`] only what a plan needs.

pub mod assign;
pub mod coverage;
pub mod effective;
pub mod gaps;
pub mod live;
pub mod scenario;
pub mod workload;

pub use assign::{assign, Assignment, CodeMismatch, Indexes, LevelNearest, Located, Nearest, UnitSource};
pub use coverage::{coverage, Coverage, HouseholdContribution, UnitCoverage};
pub use effective::{effective, Effective, ServiceConfig, ServiceFigures};
pub use gaps::{gaps, Gap};
pub use live::{Live, LiveError, StationChange};
pub use scenario::{scenario, scenario_in_place, ScenarioResult};
pub use workload::{workload, GridLoad};

use std::time::Instant;

use crate::model::Dataset;

/// Everything the analyses produce for one data set.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The spatial indexes (kept for queries and incremental updates).
    pub indexes: Indexes,
    /// Per-household assignment.
    pub assignment: Assignment,
    /// Per-unit coverage.
    pub coverage: Coverage,
    /// Gap areas, largest first.
    pub gaps: Vec<Gap>,
    /// Per-grid workload.
    pub workload: Vec<GridLoad>,
    /// Seconds spent in each phase, in order.
    pub timings: Vec<(&'static str, f64)>,
}

/// Runs every analysis on `ds`.
pub fn analyze(ds: &Dataset) -> Analysis {
    let t = Instant::now();
    let indexes = Indexes::build(ds);
    analyze_indexed(ds, indexes, t)
}

/// As [`analyze`], for a caller that needs no polygons afterwards (`gridcover analyze`): the
/// boundaries' and grids' polygons are dropped from `ds` ([`Dataset::drop_polygons`]) as soon
/// as they are indexed, so that they are not held twice, as polygons and as indexed edges, at
/// the peak of a national run (about 0.8 GB).
///
/// `beside(ds, assignment)` runs as soon as the assignment is made, at the same time as
/// coverage, gaps and workload (`gridcover analyze` writes `assignments.parquet` there); its
/// result is returned with the analysis.
pub fn analyze_dropping_polygons<R: Send>(
    ds: &mut Dataset,
    beside: impl FnOnce(&Dataset, &Assignment) -> R + Send,
) -> (Analysis, R) {
    let t = Instant::now();
    let indexes = Indexes::build(ds);
    ds.drop_polygons();
    analyze_indexed_beside(ds, indexes, t, beside)
}

/// The analyses after indexing (which began at `t`).
fn analyze_indexed(ds: &Dataset, indexes: Indexes, t: Instant) -> Analysis {
    analyze_indexed_beside(ds, indexes, t, |_, _| ()).0
}

/// [`analyze_indexed`], with `beside` run on the assignment while coverage, gaps and workload
/// are found ([`analyze_dropping_polygons`]).
fn analyze_indexed_beside<R: Send>(
    ds: &Dataset,
    indexes: Indexes,
    t: Instant,
    beside: impl FnOnce(&Dataset, &Assignment) -> R + Send,
) -> (Analysis, R) {
    let mut timings = vec![("index", t.elapsed().as_secs_f64())];
    let t = Instant::now();
    let assignment = assign(ds, &indexes);
    timings.push(("assign", t.elapsed().as_secs_f64()));
    analyze_assigned(ds, indexes, assignment, timings, beside)
}

/// The analyses of `ds` given its `indexes` and its `assignment` (the caller vouches that it is
/// [`assign()`]'s of them, e.g. kept from an earlier start of the server on the same inputs):
/// coverage, gaps and workload, their seconds appended to `timings` (those of the index and
/// the assignment, as the caller made them).
///
/// `beside(ds, assignment)` runs at the same time as those (the server keeps the assignment
/// there); its result is returned with the analysis.
pub fn analyze_assigned<R: Send>(
    ds: &Dataset,
    indexes: Indexes,
    assignment: Assignment,
    mut timings: Vec<(&'static str, f64)>,
    beside: impl FnOnce(&Dataset, &Assignment) -> R + Send,
) -> (Analysis, R) {
    let (r, (coverage, gaps, workload)) =
        rayon::join(|| beside(ds, &assignment), || measure(ds, &indexes, &assignment, &mut timings));
    (Analysis { indexes, assignment, coverage, gaps, workload, timings }, r)
}

/// Coverage, gaps and workload of an assignment, each phase's seconds appended to `timings`.
fn measure(
    ds: &Dataset,
    indexes: &Indexes,
    assignment: &Assignment,
    timings: &mut Vec<(&'static str, f64)>,
) -> (Coverage, Vec<Gap>, Vec<GridLoad>) {
    let mut t = Instant::now();
    let mut lap = |name: &'static str, timings: &mut Vec<(&'static str, f64)>| {
        timings.push((name, t.elapsed().as_secs_f64()));
        t = Instant::now();
    };
    let coverage = coverage(ds, assignment);
    lap("coverage", timings);
    let gaps = gaps(ds, assignment, &indexes.stations);
    lap("gaps", timings);
    let workload = workload(ds, assignment);
    lap("workload", timings);
    (coverage, gaps, workload)
}

/// The indexes and the assignment alone — all a plan reads of an [`Analysis`]
/// ([`crate::plan`]) —, for `gridcover plan --within`: coverage, gaps and workload are left
/// empty (the unit figures of a whole folder are what a scoped read cannot give).
pub fn analyze_for_plan(ds: &Dataset) -> Analysis {
    let t = Instant::now();
    let indexes = Indexes::build(ds);
    let index = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let assignment = assign(ds, &indexes);
    let timings = vec![("index", index), ("assign", t.elapsed().as_secs_f64())];
    Analysis { indexes, assignment, coverage: Coverage::default(), gaps: Vec::new(), workload: Vec::new(), timings }
}
