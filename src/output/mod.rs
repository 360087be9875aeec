//! Writing analysis results (I/O). To be written.

/// Why results could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// Placeholder until the writers land.
    #[error("{0}")]
    Other(String),
}
