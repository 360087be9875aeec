//! Reading a data folder (I/O). To be written.

/// Why a data folder could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// Placeholder until the reader lands.
    #[error("{0}")]
    Other(String),
}
