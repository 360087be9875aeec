//! gridcover's integration tests, in one test binary.
//!
//! Each module was once its own file under `tests/`; they are linked into one binary so that
//! the debug build links (and stores) the whole engine once rather than fifteen times. Run
//! one module with a filter, e.g. `cargo test --test it web_viewer`, or the ignored
//! whole-province plan with `cargo test --release --test it plan_bundled -- --ignored`.

mod abuse;
mod analyze_cli;
mod common;
mod exit_codes;
mod fuzz_http;
mod fuzz_inputs;
mod generate;
mod grids_cli;
mod ingest;
mod ledger_import;
mod openapi_fuzz;
mod plan_bundled;
mod plan_cli;
mod plan_engine;
mod plan_scoped;
mod privacy_attacks;
mod report_xlsx;
mod scenario_cli;
mod serve_gdal;
mod serve_router;
mod store_crash;
mod store_edits;
mod tokens;
mod web_viewer;
mod worker_names;
mod worker_to_visit;
