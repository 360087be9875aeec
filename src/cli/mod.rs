//! The `gridcover` command line (I/O): one file per command, each owning its arguments, its
//! progress lines, the files it reads and writes, and nothing else; the stages below
//! ([`crate::ingest`] … [`crate::serve`]) know nothing of clap, spinners or exit codes.
//!
//! | command | file |
//! |---|---|
//! | `generate` | [`generate`] |
//! | `analyze` | [`analyze`] |
//! | `report` | [`report`] |
//! | `scenario` | [`scenario`] |
//! | `grids` | [`grids`] |
//! | `plan` | [`plan`] |
//! | `serve` | [`serve`] |
//! | `tiles` | [`tiles`] |
//! | `import` | [`import`] |
//! | `contacts import` | [`contacts`] |
//! | `user add`, `user list`, `user revoke` | [`user`] |
//!
//! [`data`] finds the data folder (the bundled one, generated on first use, when `--data` is not
//! given) and [`progress`] draws the spinners. Every command returns a [`CliError`], and
//! [`CliError::exit_code`] is the one place that turns it into the process's exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the run failed: a result could not be written, the store could not be written, the server could not listen |
//! | 2 | bad usage, or input that makes going on impossible: a missing folder, file or column, a bad row where a bad row stops the command (a what-if's stations, a plan's candidates), a bad argument, a store written by a newer gridcover |
//!
//! A bad row of a data folder or a ledger does not stop `analyze`, `import`, `contacts import` or `serve`: it is set aside,
//! named in `rejects.csv` or on stderr, and the command succeeds.

pub mod analyze;
pub mod contacts;
pub mod data;
pub mod generate;
pub mod grids;
pub mod import;
pub mod plan;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod serve;
pub mod tiles;
pub mod user;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::design::DesignError;
use crate::generate::GenerateError;
use crate::ingest::sites::InputError;
use crate::ingest::IngestError;
use crate::output::OutputError;
use crate::plan::{PlanError, PlanErrorKind};
use crate::store::StoreError;

pub use data::data_dir;

/// The command line.
#[derive(Parser)]
#[command(
    name = "gridcover",
    version,
    about = "How a network of service stations covers the people it serves, and where gaps are.\n\nWithout --data, commands use the bundled Gansu data (data/gansu), generating its stations, households and grids into data/generated/gansu on first use.\n\nExit codes: 0 success; 1 the run failed (a result or the store could not be written); 2 bad usage or input that makes going on impossible (a missing folder, file or column, a bad row of a what-if or a plan's candidates, a store from a newer gridcover)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a complete synthetic data folder (stations, households, grids, derived township and
    /// village boundaries) from real boundaries and divisions, deterministically.
    Generate(generate::GenerateArgs),
    /// Assign every household, measure coverage at all five levels, find the gaps, and write
    /// assignments.parquet, coverage_<level>.csv, gaps.geojson, workload.csv, rejects.csv,
    /// code_mismatches.csv and summary.json.
    Analyze(analyze::AnalyzeArgs),
    /// Print a readable coverage table of one level, worst first.
    Report(report::ReportArgs),
    /// What if stations open and close: coverage before and after for every admin unit at every
    /// level (OUT/scenario_<level>.csv, all units, with a `changed` column), the households that
    /// gain or lose coverage (OUT/scenario_households.csv) and OUT/scenario_summary.json.
    Scenario(scenario::ScenarioArgs),
    /// Partition the households of a township or village into compact grids under caps, inside
    /// the unit's boundary; writes OUT/grids.geojson (workers left empty, to assign) and
    /// OUT/grids_summary.json, and prints the sizes.
    Grids(grids::GridsArgs),
    /// Serve the data folder over HTTP: OGC API - Features under /api, vector tiles under
    /// /tiles, the coverage report, and the web viewer at / (bearer tokens; see the README).
    Serve(serve::ServeArgs),
    /// Write the vector tiles of every aggregate layer (admin levels, stations, grids, gaps,
    /// household cells) into a folder OUT/{layer}/{z}/{x}/{y}.mvt with a TileJSON per layer,
    /// for offline use.
    Tiles(tiles::TilesArgs),
    /// Load the data folder's stations, households and grids into its store (gridcover.sqlite),
    /// in one transaction; importing the same files again changes nothing.
    Import(import::ImportArgs),
    /// Service records from files: `contacts import FILE` brings a station's ledger of contacts
    /// (台账, .csv or .xlsx) into the store.
    #[command(subcommand)]
    Contacts(contacts::ContactsCommand),
    /// Manage the users of the server (tokens and roles).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Site new stations (MCLP, LSCP, p-median, capacitated) with a bound and gap; writes
    /// plan.geojson, plan.csv and plan_summary.json.
    Plan(plan::PlanArgs),
}

/// `--data DIR`, shared by every command that reads a data folder.
#[derive(Args)]
pub struct DataArg {
    /// Data folder (default: the bundled Gansu data, generated on first use).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Why a command stopped. Each variant is a stage's own error, or the command line's.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An argument that cannot be used (a value out of range, nothing to do).
    #[error("{0}")]
    Usage(String),
    /// `--data` was not given and the bundled data folder is not there.
    #[error("the bundled data folder data/gansu was not found (run from the repository, or pass --data DIR)")]
    NoBundledData,
    /// A file given on the command line has a bad row or column (a what-if's stations).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The data folder cannot be read.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A data folder cannot be generated or written.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// A grid design cannot be made.
    #[error(transparent)]
    Design(#[from] DesignError),
    /// A plan cannot be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A result cannot be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A vector tile cannot be encoded.
    #[error(transparent)]
    Tile(#[from] crate::serve::tiles::TileError),
    /// The server cannot start or stopped on an error.
    #[error("cannot serve on {addr}: {source}")]
    Serve {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// Exit code of a run that failed (a result or the store could not be written).
pub const FAILED: u8 = 1;
/// Exit code of bad usage or input that makes going on impossible.
pub const BAD_INPUT: u8 = 2;

impl CliError {
    /// The process's exit code for this error ([`FAILED`] or [`BAD_INPUT`]): the one mapping,
    /// an exhaustive match down to each stage's variants, so a new variant is a decision.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::NoBundledData | CliError::Input(_) => BAD_INPUT,
            CliError::Ingest(e) => ingest_exit_code(e),
            CliError::Generate(e) => match e {
                GenerateError::InvalidParams { .. }
                | GenerateError::UnknownUnit { .. }
                | GenerateError::NoCountyBoundaries
                | GenerateError::NoVillageAreas { .. }
                | GenerateError::WouldOverwriteInput { .. }
                | GenerateError::UnitNotInDivisions { .. } => BAD_INPUT,
                GenerateError::Io { .. } | GenerateError::Csv { .. } | GenerateError::Parquet { .. } => FAILED,
            },
            CliError::Design(e) => match e {
                DesignError::UnknownCode(_)
                | DesignError::WrongLevel { .. }
                | DesignError::NoBoundary(_)
                | DesignError::BadCap(_)
                | DesignError::NoHouseholds(_) => BAD_INPUT,
            },
            CliError::Plan(e) => match e.kind() {
                PlanErrorKind::BadRequest | PlanErrorKind::TooLarge => BAD_INPUT,
                PlanErrorKind::OutOfTime => FAILED,
            },
            CliError::Store(e) => match e {
                StoreError::TooNew { .. }
                | StoreError::NotFound { .. }
                | StoreError::Exists { .. }
                | StoreError::Conflict { .. }
                | StoreError::NoActiveToken { .. }
                | StoreError::Invalid(_) => BAD_INPUT,
                StoreError::Ingest(e) => ingest_exit_code(e),
                StoreError::Open { .. } | StoreError::Db { .. } => FAILED,
            },
            CliError::Output(e) => match e {
                OutputError::Io { .. } | OutputError::Encode { .. } => FAILED,
            },
            CliError::Tile(_) | CliError::Serve { .. } => FAILED,
        }
    }
}

fn ingest_exit_code(e: &IngestError) -> u8 {
    match e {
        IngestError::Io { .. }
        | IngestError::MissingInput { .. }
        | IngestError::AmbiguousInput { .. }
        | IngestError::Csv { .. }
        | IngestError::Xlsx { .. }
        | IngestError::GeoJson { .. }
        | IngestError::Parquet { .. }
        | IngestError::MissingColumn { .. }
        | IngestError::ColumnType { .. }
        | IngestError::Config { .. }
        | IngestError::Crs { .. }
        | IngestError::NoProvince { .. } => BAD_INPUT,
    }
}

/// Runs the command line: parses the arguments, runs the command, prints an error on stderr
/// and returns the exit code ([`CliError::exit_code`]).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server's 500s are logged on stderr with their request id (see serve::error).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .try_init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one parsed command.
///
/// # Errors
/// The command's [`CliError`].
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Generate(a) => generate::run(&a),
        Command::Analyze(a) => analyze::run(&a),
        Command::Report(a) => report::run(&a),
        Command::Scenario(a) => scenario::run(&a),
        Command::Grids(a) => grids::run(&a),
        Command::Serve(a) => serve::run(a),
        Command::Tiles(a) => tiles::run(&a),
        Command::Import(a) => import::run(&a),
        Command::Contacts(c) => contacts::run(c),
        Command::User(c) => user::run(c),
        Command::Plan(a) => plan::run(&a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_carrying_bad_input_exits_2_and_a_failed_write_1() {
        // The promise README makes, which a transparent wrapper once broke: an import of a
        // folder without households is bad input, whatever layer reports it.
        let missing = IngestError::MissingInput { dir: "d".into(), what: "households", expected: vec![] };
        assert_eq!(CliError::Store(StoreError::Ingest(missing)).exit_code(), BAD_INPUT);
        let too_new = StoreError::TooNew { path: "s".into(), found: 9, known: 3 };
        assert_eq!(CliError::Store(too_new).exit_code(), BAD_INPUT);
        let open = StoreError::Open { path: "s".into(), message: "read-only".into() };
        assert_eq!(CliError::Store(open).exit_code(), FAILED);
        let io = std::io::Error::other("disk full");
        assert_eq!(CliError::Output(OutputError::Io { path: "o".into(), source: io }).exit_code(), FAILED);
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
