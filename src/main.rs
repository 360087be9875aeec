//! The `gridcover` command line: generate a data folder, analyse it, print a report.
//!
//! Exit codes: 0 success; 1 the run failed (e.g. a result could not be written);
//! 2 bad usage or input that makes going on impossible (missing file or column, …).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use gridcover::analysis::{analyze, Analysis};
use gridcover::app;
use gridcover::crs::Crs;
use gridcover::generate::GenerateParams;
use gridcover::ingest::read_data_folder;
use gridcover::model::{Dataset, Level};
use gridcover::output::{report_table, write_all};

#[derive(Parser)]
#[command(
    name = "gridcover",
    version,
    about = "How a network of service stations covers the people it serves, and where gaps are.\n\nWithout --data, commands use the bundled Gansu data (data/gansu), generating its stations, households and grids into data/generated/gansu on first use."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a complete synthetic data folder (stations, households, grids, derived township and
    /// village boundaries) from real boundaries and divisions, deterministically.
    Generate(GenerateArgs),
    /// Assign every household, measure coverage at all five levels, find the gaps, and write
    /// assignments.parquet, coverage_<level>.csv, gaps.geojson, workload.csv, rejects.csv,
    /// code_mismatches.csv and summary.json.
    Analyze(AnalyzeArgs),
    /// Print a readable coverage table of one level, worst first.
    Report(ReportArgs),
}

#[derive(Args)]
struct GenerateArgs {
    /// Admin boundaries (GeoJSON with code, name, level, parent).
    #[arg(long)]
    boundaries: PathBuf,
    /// Statistical divisions (CSV code,name,level,parent_code).
    #[arg(long)]
    divisions: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of households to generate.
    #[arg(long, default_value_t = app::BUNDLED_HOUSEHOLDS)]
    households: usize,
    /// CRS of the boundaries file: wgs84, cgcs2000, gcj02, bd09 or EPSG:n.
    #[arg(long, default_value = "wgs84")]
    crs: Crs,
    /// Output data folder (created).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct DataArg {
    /// Data folder (default: the bundled Gansu data, generated on first use).
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Args)]
struct AnalyzeArgs {
    #[command(flatten)]
    data: DataArg,
    /// Output folder (created).
    #[arg(long, default_value = "out")]
    out: PathBuf,
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    data: DataArg,
    /// Level of the table: province, city, county, township or village.
    #[arg(long, default_value = "county")]
    level: Level,
    /// Rows at most.
    #[arg(long, default_value_t = 30)]
    limit: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e.chain().any(|c| c.downcast_ref::<gridcover::ingest::IngestError>().is_some());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Generate(a) => {
            let params = GenerateParams::new(a.seed, a.households);
            app::generate_folder(&a.boundaries, &a.divisions, &a.crs, &params, &a.out, &spin)?;
            eprintln!("wrote {}", a.out.display());
        }
        Command::Analyze(a) => {
            let t = Instant::now();
            let ds = load(&a.data)?;
            let read_s = t.elapsed().as_secs_f64();
            let an = phase("analysing", || analyze(&ds));
            let mut timings = vec![("read", read_s)];
            timings.extend(an.timings.iter().copied());
            let s = phase("writing results", || write_all(&a.out, &ds, &an, &timings))?;
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
        }
        Command::Report(a) => {
            let ds = load(&a.data)?;
            let an: Analysis = phase("analysing", || analyze(&ds));
            print!("{}", report_table(&ds, &an, a.level, a.limit));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `f` under a spinner on stderr (hidden when stderr is not a terminal).
fn phase<T>(msg: &str, f: impl FnOnce() -> T) -> T {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"));
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    let r = f();
    pb.finish_and_clear();
    r
}

/// `phase` in the shape the library's glue takes.
fn spin(msg: &str, f: &mut dyn FnMut()) {
    phase(msg, f)
}

fn load(data: &DataArg) -> anyhow::Result<Dataset> {
    let dir = app::data_dir(data.data.as_deref(), &spin)?;
    let ds = phase("reading data", || read_data_folder(&dir))?;
    Ok(ds)
}
