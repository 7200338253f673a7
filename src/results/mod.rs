//! Result records: one JSON file per finished (or failed) run, written atomically.

pub mod record;

pub use record::{RunRecord, RunStatus};
