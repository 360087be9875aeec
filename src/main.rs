//! The `gridcover` command line.
fn main() {}
