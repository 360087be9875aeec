//! Spatial indexes (pure). To be written.
