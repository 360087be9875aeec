//! The `gridcover` binary: the command line of [`gridcover::cli`], which owns the commands and
//! their exit codes (0 success; 1 the run failed; 2 bad usage or input that makes going on
//! impossible).

fn main() -> std::process::ExitCode {
    gridcover::cli::main()
}
