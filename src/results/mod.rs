//! Result records: one JSON file per finished (or failed) run, written atomically; CSV files of
//! typed rows.

pub mod csv_rows;
pub mod record;

pub use record::{RunRecord, RunStatus};
