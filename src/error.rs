//! The crate's top-level error: one variant per stage, each wrapping that stage's own error.

/// Any error gridcover's library can return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a data folder failed.
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    /// Generating a data folder failed.
    #[error(transparent)]
    Generate(#[from] crate::generate::GenerateError),
    /// Writing results failed.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// A coordinate reference system could not be used.
    #[error(transparent)]
    Crs(#[from] crate::crs::CrsError),
}
