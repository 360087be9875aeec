//! Synthetic data folders from real boundaries and divisions. To be written.

/// Why a data folder could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// Placeholder until the generator lands.
    #[error("{0}")]
    Other(String),
}
