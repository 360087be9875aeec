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
    /// What if stations open and close: coverage before and after for every admin unit at every
    /// level (OUT/scenario_<level>.csv, all units, with a `changed` column), the households that
    /// gain or lose coverage (OUT/scenario_households.csv) and OUT/scenario_summary.json.
    Scenario(ScenarioArgs),
    /// Partition the households of a township or village into compact grids under caps, inside
    /// the unit's boundary; writes OUT/grids.geojson (workers left empty, to assign) and
    /// OUT/grids_summary.json, and prints the sizes.
    Grids(GridsArgs),
    /// Serve the data folder over HTTP: OGC API - Features under /api, vector tiles under
    /// /tiles, the coverage report, and the web viewer at / (bearer tokens; see the README).
    Serve(ServeArgs),
    /// Write the vector tiles of every aggregate layer (admin levels, stations, grids, gaps,
    /// household cells) into a folder OUT/{layer}/{z}/{x}/{y}.mvt with a TileJSON per layer,
    /// for offline use.
    Tiles(TilesArgs),
    /// Load the data folder's stations, households and grids into its store (gridcover.sqlite),
    /// in one transaction; importing the same files again changes nothing.
    Import(ImportArgs),
    /// Manage the users of the server (tokens and roles).
    #[command(subcommand)]
    User(UserCommand),
    /// Site new stations (MCLP, LSCP, p-median, capacitated) with a bound and gap; writes
    /// plan.geojson, plan.csv and plan_summary.json.
    Plan(gridcover::plan::cli::PlanArgs),
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    data: DataArg,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print their token once, alone on the last line (only its hash is stored).
    Add(UserAddArgs),
    /// List every user: id, name, role, grids, created, expires, revoked (never a token or its
    /// hash); a table, or JSON with --json.
    List(UserListArgs),
    /// Revoke every active token of the user(s) of this name; a running server refuses them
    /// within a second. Exit 2 when the name holds no active token. Recorded in the audit log.
    Revoke(UserRevokeArgs),
}

#[derive(Args)]
struct UserListArgs {
    /// Print JSON (an array of {id, name, role, grids, created_at, expires_at, revoked_at,
    /// state}) instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArg,
}

#[derive(Args)]
struct UserRevokeArgs {
    /// The user's name, as `user list` shows it.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    data: DataArg,
}

/// `--expires-in`: `N` followed by `d` (days), `h` (hours) or `m` (minutes); more than zero,
/// at most ten years.
fn parse_expiry(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a duration: write N followed by d, h or m (e.g. 90d, 12h, 30m)");
    let unit = s.chars().last().ok_or_else(bad)?;
    let per: u64 = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        _ => return Err(bad()),
    };
    let digits = &s[..s.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let max = gridcover::store::MAX_EXPIRY;
    let too_long = || {
        format!("{s} is too long: a token expires at most {} days (ten years) after it is made", max.as_secs() / 86_400)
    };
    let n: u64 = digits.parse().map_err(|_| too_long())?;
    if n == 0 {
        return Err(format!("{s} is no time at all: a token must stay valid for more than zero (omit --expires-in for a token that never expires)"));
    }
    let secs = n.checked_mul(per).ok_or_else(too_long)?;
    if secs > max.as_secs() {
        return Err(too_long());
    }
    Ok(Duration::from_secs(secs))
}

#[derive(Args)]
struct UserAddArgs {
    /// Display name.
    #[arg(long)]
    name: String,
    /// Role: leader, planner or grid_worker.
    #[arg(long)]
    role: gridcover::store::Role,
    /// A grid the grid worker serves (repeat for several).
    #[arg(long = "grid")]
    grids: Vec<String>,
    /// The token expires this long after now: N followed by d, h or m (e.g. 90d; at most
    /// 3650d). Without it, the token stays valid until revoked.
    #[arg(long, value_name = "DURATION", value_parser = parse_expiry)]
    expires_in: Option<Duration>,
    #[command(flatten)]
    data: DataArg,
}

#[derive(Args)]
struct ScenarioArgs {
    #[command(flatten)]
    data: DataArg,
    /// Stations to open: CSV id,name,level,lon,lat[,code,demonstration,mobile,radius_m] (WGS84;
    /// without a code a station serves the unit of its level containing it).
    #[arg(long)]
    add: Option<PathBuf>,
    /// Ids of stations to close, comma separated.
    #[arg(long)]
    remove: Option<String>,
    /// Output folder (created).
    #[arg(long, default_value = "out/scenario")]
    out: PathBuf,
}

#[derive(Args)]
struct GridsArgs {
    #[command(flatten)]
    data: DataArg,
    /// Code of the township (9 digits) or village (12 digits) to partition.
    #[arg(long)]
    within: String,
    /// Most households in one grid.
    #[arg(long)]
    max_households: u32,
    /// Most veterans in one grid.
    #[arg(long)]
    max_veterans: Option<u32>,
    /// Only households outside every existing grid; the new grids fill the unit less the
    /// existing grids. Without it, all households of the unit and the whole unit.
    #[arg(long)]
    ungridded_only: bool,
    /// Output folder (created).
    #[arg(long, default_value = "out/grids")]
    out: PathBuf,
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

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataArg,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Folder of the web viewer (default: web/ of the repository).
    #[arg(long)]
    web: Option<PathBuf>,
}

#[derive(Args)]
struct TilesArgs {
    #[command(flatten)]
    data: DataArg,
    /// Output folder (created).
    #[arg(long, default_value = "tiles")]
    out: PathBuf,
    /// Deepest zoom written (at most 16).
    #[arg(long, default_value_t = 10)]
    max_zoom: u8,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server's 500s are logged on stderr with their request id (see serve::error).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .try_init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e.chain().any(|c| {
                c.downcast_ref::<gridcover::ingest::IngestError>().is_some()
                    || c.downcast_ref::<gridcover::whatif::InputError>().is_some()
                    || c.downcast_ref::<gridcover::design::DesignError>().is_some()
                    || c.downcast_ref::<gridcover::plan::PlanError>().is_some()
            });
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
        Command::Serve(a) => gridcover::serve::cli::serve(a.data.data.as_deref(), a.addr, a.web)?,
        Command::Tiles(a) => {
            gridcover::serve::cli::tiles(a.data.data.as_deref(), &a.out, a.max_zoom)?;
        }
        Command::Import(a) => {
            let dir = app::data_dir(a.data.data.as_deref(), &spin)?;
            let rep = phase("importing", || gridcover::store::Store::open(&dir).and_then(|s| s.import(&dir)))?;
            for r in &rep.rejects {
                eprintln!("reject: {} row {}: {} ({})", r.file, r.row, r.reason, r.id);
            }
            println!("{}", rep.summary());
        }
        Command::User(c) => return user_command(c),
        Command::Scenario(a) => {
            let ds = load(&a.data)?;
            let mut live = phase("analysing", || gridcover::analysis::Live::new(ds));
            print!("{}", gridcover::whatif::run(&mut live, a.add.as_deref(), a.remove.as_deref(), &a.out)?);
            println!("results in {}", a.out.display());
        }
        Command::Grids(a) => {
            let ds = load(&a.data)?;
            let an = phase("analysing", || analyze(&ds));
            print!(
                "{}",
                gridcover::design::write::run(
                    &ds,
                    &an,
                    &a.within,
                    a.max_households,
                    a.max_veterans,
                    a.ungridded_only,
                    &a.out
                )?
            );
            println!("results in {}", a.out.display());
        }
        Command::Plan(a) => gridcover::plan::cli::run(&a, &spin)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `gridcover user …`. A refusal of the input (an empty name, an unknown grid, no active
/// token to revoke) is printed and exits 2; other failures (the store cannot be opened or
/// written) go up and exit 1.
fn user_command(c: UserCommand) -> anyhow::Result<ExitCode> {
    use gridcover::store::{Store, StoreError};
    let data = match &c {
        UserCommand::Add(a) => &a.data,
        UserCommand::List(a) => &a.data,
        UserCommand::Revoke(a) => &a.data,
    };
    let dir = app::data_dir(data.data.as_deref(), &spin)?;
    let store = Store::open(&dir)?;
    let done = match c {
        UserCommand::Add(a) => store.add_user_expiring(&a.name, a.role, &a.grids, a.expires_in).map(|token| {
            let expiry = match a.expires_in {
                Some(d) => format!("expires in {} min", d.as_secs() / 60),
                None => "never expires".to_string(),
            };
            eprintln!(
                "user {} ({}) added to {}; the token {expiry}; it is shown once:",
                a.name.trim(),
                a.role,
                store.path().display()
            );
            println!("{token}");
        }),
        UserCommand::List(a) => store.users().map(|users| {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&users).expect("users serialise"));
            } else {
                print!("{}", users_table(&users));
                if users.is_empty() {
                    eprintln!("no users in {} (add one with `gridcover user add`)", store.path().display());
                }
            }
        }),
        UserCommand::Revoke(a) => store.revoke_user(&a.name).map(|revoked| {
            for u in &revoked {
                eprintln!(
                    "revoked the token of user {} {} ({}) at {}",
                    u.id,
                    u.name,
                    u.role,
                    u.revoked_at.as_deref().unwrap_or("?")
                );
            }
            println!("{} token(s) of {} revoked", revoked.len(), a.name.trim());
        }),
    };
    match done {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ (StoreError::Invalid(_) | StoreError::NoActiveToken { .. })) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

/// The users as a table: one line each, columns aligned (names by display width).
fn users_table(users: &[gridcover::store::UserInfo]) -> String {
    use unicode_width::UnicodeWidthStr;
    let time = |t: &str| match t.split_once('.') {
        Some((s, _)) => format!("{s}Z"),
        None => t.to_string(),
    };
    let mut rows = vec![["id", "name", "role", "grids", "created", "expires", "revoked"].map(String::from)];
    for u in users {
        let expires = match (&u.expires_at, u.state) {
            (None, _) => "never".to_string(),
            (Some(t), "expired") => format!("{} (expired)", time(t)),
            (Some(t), _) => time(t),
        };
        rows.push([
            u.id.to_string(),
            u.name.clone(),
            u.role.to_string(),
            if u.grids.is_empty() { "-".to_string() } else { u.grids.join(",") },
            time(&u.created_at),
            expires,
            u.revoked_at.as_deref().map_or_else(|| "no".to_string(), time),
        ]);
    }
    let widths: Vec<usize> = (0..7).map(|k| rows.iter().map(|r| r[k].width()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (k, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if k + 1 < r.len() {
                line.push_str(&" ".repeat(widths[k] - cell.width() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
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
