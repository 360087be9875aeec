//! `gridcover analyze`: assign, measure coverage, find gaps, write every result file.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::data::load;
use super::progress::phase;
use super::{CliError, DataArg};
use crate::analysis::analyze_dropping_polygons;
use crate::output::{write_all_but_assignments, write_assignments};

/// Arguments of `gridcover analyze`.
#[derive(Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    data: DataArg,
    /// Output folder (created).
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Also write effective coverage (`effective_<level>.csv` and `effective_workers.csv`) from
    /// the folder's service records (its store, else contacts.csv and needs.csv). Written
    /// without this flag too when the folder has a store (gridcover.sqlite), as of today.
    #[arg(long)]
    effective: bool,
    /// The day of effective coverage, YYYY-MM-DD (default: today, UTC).
    #[arg(long, requires = "effective", value_parser = parse_day)]
    as_of: Option<crate::model::Day>,
}

fn parse_day(s: &str) -> Result<crate::model::Day, String> {
    crate::model::service::parse_day(s)
}

/// Runs `gridcover analyze`: writes [`crate::output`]'s files into `--out` and prints the totals.
///
/// # Errors
/// The data folder cannot be read (exit 2); a result cannot be written (1).
pub fn run(a: &AnalyzeArgs) -> Result<(), CliError> {
    let t = Instant::now();
    let dir = super::data::data_dir(a.data.data.as_deref())?;
    let store = dir.join(crate::store::STORE_FILE).exists();
    // The service records files of a folder without a store are hashed (their cache's key;
    // seconds for a national contacts.csv) on a thread of their own while the folder is read
    // and analysed.
    let ahead = (a.effective && !store).then(|| {
        let dir = dir.clone();
        std::thread::spawn(move || crate::store::HashedFiles::of_folder(&dir))
    });
    let mut ds = load(a.data.data.as_deref())?;
    let read_s = t.elapsed().as_secs_f64();
    // No output of analyze draws a polygon: they are let go once indexed. The big file is
    // written as soon as the assignment is made, while coverage, gaps and workload are found.
    std::fs::create_dir_all(&a.out).map_err(|source| crate::output::OutputError::Io { path: a.out.clone(), source })?;
    let (an, big) = phase("analysing", || {
        analyze_dropping_polygons(&mut ds, |ds, asg| {
            let t = Instant::now();
            write_assignments(&a.out.join("assignments.parquet"), ds, asg).map(|()| t.elapsed().as_secs_f64())
        })
    });
    let mut timings = vec![("read", read_s)];
    timings.extend(an.timings.iter().copied());
    timings.push(("write_assignments", big?));
    let s = phase("writing results", || write_all_but_assignments(&a.out, &ds, &an, &timings))?;
    if a.effective || store {
        let ahead = ahead.and_then(|h| h.join().ok());
        let records = super::data::service_records(&dir, &ds, ahead)?;
        let day = a.as_of.unwrap_or_else(super::data::today);
        let e =
            phase("effective coverage", || crate::analysis::effective(&ds, &an.assignment, &records, day, &ds.service));
        crate::output::effective::write_effective(&a.out, &ds, &e)?;
    }
    let tot = &s["totals"];
    println!(
        "{} households, {} veterans, {:.2}% covered; {} gap areas; {} rejects; {} code mismatches",
        tot["households"],
        tot["veterans"],
        tot["coverage_share"].as_f64().unwrap_or(f64::NAN) * 100.0,
        tot["gaps"],
        s["rejects"]["total"],
        tot["code_mismatches"],
    );
    println!("results in {} ({:.2} s)", a.out.display(), t.elapsed().as_secs_f64());
    Ok(())
}
