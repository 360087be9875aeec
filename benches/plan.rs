//! Criterion benches of siting on the bundled Gansu data (800,000 households, 17,233 village
//! stations): MCLP, LSCP and p-median at village level, radius 2 km, with K = 10, 100 and
//! 1,000 new sites. The default candidates (villages without a village station) number 485, so
//! K = 1,000 uses H3 cells (resolution 8) over the uncovered households instead.
//!
//! `cargo bench --bench plan` (a few minutes). Each plan's objective, bound and gap are printed
//! once before it is timed. The comparison with PySAL spopt is `benches/compare/spopt_run.sh`.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use gridcover::analysis::analyze;
use gridcover::plan::{solve, CandidateSource, PlanRequest, Problem};

fn request(problem: Problem, k: Option<usize>, candidates: CandidateSource) -> PlanRequest {
    PlanRequest { problem, new: k, candidates, ..Default::default() }
}

fn bench(c: &mut Criterion) {
    let ds = common::dataset();
    let an = analyze(&ds);
    let h3 = || CandidateSource::H3 { resolution: None };
    let cases: Vec<(&str, String, PlanRequest)> = vec![
        ("mclp", "villages/K=10".into(), request(Problem::Mclp, Some(10), CandidateSource::Villages)),
        ("mclp", "villages/K=100".into(), request(Problem::Mclp, Some(100), CandidateSource::Villages)),
        ("mclp", "h3/K=10".into(), request(Problem::Mclp, Some(10), h3())),
        ("mclp", "h3/K=100".into(), request(Problem::Mclp, Some(100), h3())),
        ("mclp", "h3/K=1000".into(), request(Problem::Mclp, Some(1000), h3())),
        ("lscp", "villages/all".into(), request(Problem::Lscp, None, CandidateSource::Villages)),
        ("lscp", "h3/all".into(), request(Problem::Lscp, None, h3())),
        ("pmedian", "villages/K=10".into(), request(Problem::Pmedian, Some(10), CandidateSource::Villages)),
        ("pmedian", "villages/K=100".into(), request(Problem::Pmedian, Some(100), CandidateSource::Villages)),
        ("pmedian", "h3/K=1000".into(), request(Problem::Pmedian, Some(1000), h3())),
    ];
    for (group, name, req) in &cases {
        let r = solve(&ds, &an, req).expect("plan");
        eprintln!(
            "{group} {name}: {} sites, objective {:.3}, bound {:.3}, gap {:.4}%, {} candidates, {} demand points, {:.3} s",
            r.sites.len(),
            r.objective,
            r.bound,
            r.gap * 100.0,
            r.candidates,
            r.demand_points,
            r.seconds
        );
    }
    for g in ["mclp", "lscp", "pmedian"] {
        let mut grp = c.benchmark_group(format!("plan_{g}"));
        grp.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
        for (group, name, req) in cases.iter().filter(|c| c.0 == g) {
            let _ = group;
            grp.bench_with_input(BenchmarkId::from_parameter(name), req, |b, req| {
                b.iter(|| solve(&ds, &an, req).expect("plan"))
            });
        }
        grp.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
