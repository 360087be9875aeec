//! Analyses (pure). To be written.
