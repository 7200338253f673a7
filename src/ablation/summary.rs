//! `results/<matrix>/summary.csv`: one row per run of a matrix, the table every statistic, paper
//! table and figure is computed from.
//!
//! The status column is `ok`, `collapsed` or `failed: <reason>`. The runner writes `ok` or
//! `failed`; `collapsed` is decided when the summary is read for the report
//! ([`crate::ablation::references::mark_collapsed`]), from the reference points of the same
//! matrix, so the rule can be applied to any summary without retraining.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::heads::{HeadColumns, Method};
use crate::results::record::{data_id, recipe_id};
use crate::results::{RunRecord, RunStatus};

/// One run of a matrix, flattened. Optional columns are empty where they do not apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Stable id of the resolved config (seed included).
    pub run_id: String,
    /// Id of the config without its seed: runs that differ only in seed share it.
    pub config_id: String,
    /// The matrix group (ablation axis) the run belongs to, e.g. `main`, `pool_size`.
    pub group: String,
    /// Human-readable values of the group's axes for this run, e.g. `pool=0.01`.
    pub label: String,
    /// The method, written as its key (`fc`, `pfc`, `f2c`, `dcq`).
    pub method: Method,
    pub seed: u64,
    /// What the run was trained and scored on ([`crate::results::record::data_id`]): rows of one
    /// seed pair only when it is the same. Empty in summaries written before it was recorded,
    /// whose rows are all taken to share one data set.
    #[serde(default)]
    pub data_id: Option<String>,
    /// How the run trained apart from its head and loaders ([`crate::results::record::recipe_id`]):
    /// a Full FC of the same data and recipe is the like-for-like reference. Empty in summaries
    /// written before it was recorded.
    #[serde(default)]
    pub recipe_id: Option<String>,
    // The head's columns ([`HeadColumns`]), flat for the CSV.
    /// Partial FC sample rate.
    pub sample_rate: Option<f64>,
    /// F²C pool or DCQ queue size as a fraction of the training identities.
    pub pool_fraction: Option<f64>,
    /// F²C gallery EMA momentum or DCQ key-encoder momentum.
    pub ema_momentum: Option<f64>,
    /// F²C pool rows per slot (1 or 2).
    pub pool_rows: Option<u8>,
    /// F²C eviction policy (`lru` / `fifo`).
    pub eviction: Option<String>,
    /// Partial FC's centre update where every centre steps (`all`); empty for the default, only
    /// the sampled centres.
    #[serde(default)]
    pub centre_update: Option<String>,
    pub id_per_step: usize,
    pub inst_per_step: usize,
    #[serde(rename = "tar_far_1e-2")]
    pub tar_far_1e2: Option<f64>,
    #[serde(rename = "tar_far_1e-3")]
    pub tar_far_1e3: Option<f64>,
    #[serde(rename = "tar_far_1e-4")]
    pub tar_far_1e4: Option<f64>,
    pub rank1: Option<f64>,
    pub accuracy: Option<f64>,
    pub median_step_ms: Option<f64>,
    pub samples_per_s: Option<f64>,
    pub head_state_bytes: Option<u64>,
    pub wall_time_s: Option<f64>,
    /// `ok`, `collapsed` or `failed: <reason>`.
    pub status: RowStatus,
}

/// What became of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowStatus {
    /// Trained and evaluated.
    Ok,
    /// Trained and evaluated, but no better than the untrained network on TAR@FAR=1e-3 (see
    /// [`crate::ablation::references`]): the numbers are those of a model that learnt nothing.
    Collapsed,
    /// Did not finish; the reason.
    Failed(String),
}

impl std::fmt::Display for RowStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowStatus::Ok => f.write_str("ok"),
            RowStatus::Collapsed => f.write_str("collapsed"),
            RowStatus::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl std::str::FromStr for RowStatus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ok" => Ok(RowStatus::Ok),
            "collapsed" => Ok(RowStatus::Collapsed),
            _ => match s.strip_prefix("failed") {
                Some(rest) => Ok(RowStatus::Failed(
                    rest.trim_start_matches(':').trim().to_string(),
                )),
                None => Err(format!(
                    "unknown status `{s}`: expected `ok`, `collapsed` or `failed: <reason>`"
                )),
            },
        }
    }
}

/// Compares with the CSV text of the status (`"ok"`, `"failed: …"`).
impl PartialEq<&str> for RowStatus {
    fn eq(&self, other: &&str) -> bool {
        match self {
            RowStatus::Ok => *other == "ok",
            RowStatus::Collapsed => *other == "collapsed",
            RowStatus::Failed(why) => other.strip_prefix("failed: ") == Some(why.as_str()),
        }
    }
}

impl Serialize for RowStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RowStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl SummaryRow {
    /// Flattens a record; `config_id`, `group` and `label` come from the matrix expansion.
    pub fn from_record(rec: &RunRecord, config_id: &str, group: &str, label: &str) -> Self {
        let exp = &rec.experiment;
        let HeadColumns {
            sample_rate,
            pool_fraction,
            ema_momentum,
            pool_rows,
            eviction,
            centre_update,
        } = exp.head.summary_columns(rec.num_train_identities());
        let ok = rec.status == RunStatus::Ok;
        let m = rec.metrics.filter(|_| ok);
        SummaryRow {
            run_id: rec.run_id.clone(),
            config_id: config_id.to_string(),
            group: group.to_string(),
            label: label.to_string(),
            method: exp.head.method(),
            seed: exp.seed,
            data_id: Some(data_id(exp)),
            recipe_id: Some(recipe_id(exp)),
            sample_rate,
            pool_fraction,
            ema_momentum,
            pool_rows,
            eviction,
            centre_update,
            id_per_step: exp.train.loaders.identities,
            inst_per_step: exp.train.loaders.instances,
            tar_far_1e2: m.map(|m| m.tar_far_1e2),
            tar_far_1e3: m.map(|m| m.tar_far_1e3),
            tar_far_1e4: m.map(|m| m.tar_far_1e4),
            rank1: m.map(|m| m.rank1),
            accuracy: m.map(|m| m.accuracy),
            median_step_ms: ok.then_some(rec.median_step_ms),
            samples_per_s: ok.then_some(rec.samples_per_s),
            head_state_bytes: Some(rec.head_state_bytes),
            wall_time_s: Some(rec.wall_time_s),
            status: match &rec.status {
                RunStatus::Ok => RowStatus::Ok,
                RunStatus::Failed(why) => RowStatus::Failed(why.clone()),
            },
        }
    }
}

impl SummaryRow {
    /// The head's columns of the row, for its name ([`Method::run_name`]).
    pub fn head_columns(&self) -> HeadColumns {
        HeadColumns {
            sample_rate: self.sample_rate,
            pool_fraction: self.pool_fraction,
            ema_momentum: self.ema_momentum,
            pool_rows: self.pool_rows,
            eviction: self.eviction.clone(),
            centre_update: self.centre_update.clone(),
        }
    }
}

/// Writes the rows as CSV (header first), atomically.
pub fn write_csv(path: &Path, rows: &[SummaryRow]) -> Result<()> {
    crate::results::csv_rows::write_rows(path, rows)
}

/// Reads a summary written by [`write_csv`].
pub fn read_csv(path: &Path) -> Result<Vec<SummaryRow>> {
    crate::results::csv_rows::read_rows(
        path,
        "the columns of a summary.csv written by `f2c ablate`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_its_text() {
        for (text, status) in [
            ("ok", RowStatus::Ok),
            ("collapsed", RowStatus::Collapsed),
            (
                "failed: loss is NaN at step 3",
                RowStatus::Failed("loss is NaN at step 3".into()),
            ),
        ] {
            assert_eq!(text.parse::<RowStatus>(), Ok(status.clone()));
            assert_eq!(status.to_string(), text);
        }
        assert!("fine".parse::<RowStatus>().is_err());
    }

    #[test]
    fn the_csv_keeps_its_text() {
        // Method and status are typed in memory and written as the same text as before.
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/summary.csv");
        let text = std::fs::read_to_string(&path).unwrap();
        let rows = read_csv(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("summary.csv");
        write_csv(&out, &rows).unwrap();
        let again = std::fs::read_to_string(&out).unwrap();
        let column = |t: &str, name: &str| -> Vec<String> {
            let mut r = csv::Reader::from_reader(t.as_bytes());
            let i = r.headers().unwrap().iter().position(|h| h == name).unwrap();
            r.records().map(|rec| rec.unwrap()[i].to_string()).collect()
        };
        for name in ["method", "status"] {
            assert_eq!(column(&text, name), column(&again, name), "{name}");
        }
        // A summary written before Partial FC's centre update had a column reads as the default.
        assert!(!text.lines().next().unwrap().contains("centre_update"));
        assert!(rows.iter().all(|r| r.centre_update.is_none()));
        assert_eq!(rows[0].method, Method::Fc);
    }
}
