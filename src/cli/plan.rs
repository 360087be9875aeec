//! `gridcover plan`: its arguments and what it runs (reads the data folder, solves, writes).

use std::path::{Path, PathBuf};

use clap::Args;

use super::data::{load_analysed, load_for_plan_within};
use super::progress::bar;
use super::CliError;
use crate::model::Level;
use crate::output::plan::write_plan;
use crate::plan::{parse_sites_csv, solve_with_progress, CandidateSource, PlanError, PlanRequest, Problem};

/// Arguments of `gridcover plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Data folder (default: the bundled Gansu data, generated on first use).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// mclp (most veterans newly covered by K new sites), lscp (fewest sites covering all
    /// coverable veterans or --target) or pmedian (least mean distance with K new sites).
    #[arg(long, default_value = "mclp")]
    pub problem: Problem,
    /// Level of the new stations: province, city, county, township or village.
    #[arg(long, default_value = "village")]
    pub level: Level,
    /// New sites K (mclp, pmedian; for lscp an optional upper limit).
    #[arg(long = "new")]
    pub new: Option<usize>,
    /// Service radius in metres (default: the standard radius of the level).
    #[arg(long)]
    pub radius: Option<f64>,
    /// Capacity of every station, in veterans (mclp): veterans beyond it spill to the next
    /// station within the radius; only served veterans count.
    #[arg(long)]
    pub capacity: Option<u32>,
    /// Only candidates and households within this admin unit (statistical code); only what
    /// can be in it is read (every division and station, its households, boundaries and grids
    /// and those that decide what lies in it): the same plan as on the whole folder. The
    /// summary lists this unit and the units below it.
    #[arg(long)]
    pub within: Option<String>,
    /// At most this many new sites per county.
    #[arg(long)]
    pub max_per_county: Option<usize>,
    /// Candidate sites: villages (default: villages/communities without a station of the
    /// level), grids (grid centroids), h3 or h3:RES (H3 cells over uncovered households), or a
    /// CSV file with columns id,lon,lat.
    #[arg(long, default_value = "villages")]
    pub candidates: String,
    /// lscp: share (0–1] of the veterans in scope to cover (default: every coverable veteran).
    #[arg(long)]
    pub target: Option<f64>,
    /// Candidate ids every plan must contain (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub require: Vec<String>,
    /// Candidate ids no plan may contain (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Output folder (created): plan.geojson, plan.csv, plan_summary.json.
    #[arg(long, default_value = "out/plan")]
    pub out: PathBuf,
    /// csv (plan.geojson, plan.csv, plan_summary.json) or xlsx (the same, and the summary's
    /// table of units as plan_summary.xlsx: Chinese headers, codes as text).
    #[arg(long, value_enum, default_value_t = super::report::Format::Csv)]
    pub format: super::report::Format,
}

/// Parses `--candidates`.
///
/// # Errors
/// A bad H3 resolution (exit 2), or a CSV file that cannot be read or has a bad row
/// ([`PlanError::BadCandidateFile`], exit 2).
pub fn candidate_source(s: &str) -> Result<CandidateSource, CliError> {
    let t = s.trim();
    Ok(match t.to_ascii_lowercase().as_str() {
        "villages" | "village" => CandidateSource::Villages,
        "grids" | "grid" => CandidateSource::Grids,
        "h3" => CandidateSource::H3 { resolution: None },
        l if l.starts_with("h3:") => {
            let r: u8 =
                l[3..].parse().map_err(|_| CliError::Usage(format!("bad H3 resolution in --candidates {t}")))?;
            CandidateSource::H3 { resolution: Some(r) }
        }
        _ => CandidateSource::Sites { sites: read_sites(Path::new(t))? },
    })
}

/// Reads candidate sites from a CSV file (`id,lon,lat`; see [`parse_sites_csv`]).
fn read_sites(path: &Path) -> Result<Vec<crate::plan::Site>, PlanError> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| PlanError::BadCandidateFile {
        file: name.clone(),
        row: 0,
        reason: e.to_string(),
    })?;
    parse_sites_csv(std::io::BufReader::new(f), &name)
}

impl PlanArgs {
    /// The library request these arguments describe.
    ///
    /// # Errors
    /// See [`candidate_source`].
    pub fn request(&self) -> Result<PlanRequest, CliError> {
        let trim = |v: &[String]| v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        Ok(PlanRequest {
            problem: self.problem,
            level: self.level,
            new: self.new,
            radius_m: self.radius,
            capacity: self.capacity,
            within: self.within.clone(),
            max_per_county: self.max_per_county,
            candidates: candidate_source(&self.candidates)?,
            target: self.target,
            require: trim(&self.require),
            exclude: trim(&self.exclude),
        })
    }
}

/// Runs `gridcover plan`: solves with a progress bar, writes [`crate::output::plan`]'s files,
/// prints the objective, bound and gap.
///
/// # Errors
/// Bad arguments or data ([`PlanError`], exit 2); unwritable results (1).
pub fn run(a: &PlanArgs) -> Result<(), CliError> {
    if a.format == super::report::Format::Text {
        return Err(CliError::Usage("plan --format: csv or xlsx (a plan is written as files into --out)".into()));
    }
    let req = a.request()?;
    // Within one unit, only what can be in it or decide what is (the same plan, less to read).
    let (ds, an) = match &a.within {
        Some(code) => load_for_plan_within(a.data.as_deref(), code)?,
        None => load_analysed(a.data.as_deref())?,
    };
    let pb = bar();
    let res = solve_with_progress(&ds, &an, &req, &mut |msg, done, total| {
        pb.set_message(msg.to_string());
        pb.set_length(total);
        pb.set_position(done);
    });
    pb.finish_and_clear();
    let res = res?;
    write_plan(&a.out, &res)?;
    if a.format == super::report::Format::Xlsx {
        crate::output::plan::plan_summary_table(&res).write(&a.out.join("plan_summary.xlsx"))?;
    }
    for n in &res.notes {
        eprintln!("note: {n}");
    }
    println!(
        "{} {} sites at {} level, radius {} m: {} = {:.4}, bound {:.4}, gap {:.3}%",
        res.request.problem.as_str(),
        res.sites.len(),
        res.request.level,
        res.radius_m,
        res.objective_name,
        res.objective,
        res.bound,
        res.gap * 100.0
    );
    println!(
        "coverage of {} veterans in scope: {:.2}% before, {:.2}% after; {} candidates; {:.2} s",
        res.veterans,
        res.covered_before as f64 / (res.veterans.max(1)) as f64 * 100.0,
        res.covered_after as f64 / (res.veterans.max(1)) as f64 * 100.0,
        res.candidates,
        res.seconds
    );
    println!("results in {}", a.out.display());
    Ok(())
}
