//! Coordinate reference systems. To be written.

/// Why a coordinate could not be converted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrsError {
    /// Placeholder until the conversions land.
    #[error("{0}")]
    Other(String),
}
