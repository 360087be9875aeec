//! The `gridcover` binary: the command line of [`gridcover::cli`], which owns the commands and
//! their exit codes (0 success; 1 the run failed; 2 bad usage or input that makes going on
//! impossible).
//!
//! The binary allocates with mimalloc: reading a national folder makes tens of millions of
//! small allocations (rings, ids, properties), and glibc's allocator spent a fifth of
//! `analyze`'s time in them (README, "National scale").

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gridcover::cli::main()
}
