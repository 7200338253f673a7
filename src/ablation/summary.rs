//! `results/<matrix>/summary.csv`: one row per run of a matrix, the table every statistic, paper
//! table and figure is computed from.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::heads::HeadConfig;
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
    /// `fc`, `pfc` or `f2c`.
    pub method: String,
    pub seed: u64,
    /// Partial FC sample rate.
    pub sample_rate: Option<f64>,
    /// F²C pool size as a fraction of the training identities.
    pub pool_fraction: Option<f64>,
    pub ema_momentum: Option<f64>,
    /// F²C pool rows per slot (1 or 2).
    pub pool_rows: Option<u8>,
    /// F²C eviction policy (`lru` / `fifo`).
    pub eviction: Option<String>,
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
    /// `ok` or `failed: <reason>`.
    pub status: String,
}

impl SummaryRow {
    /// Flattens a record; `config_id`, `group` and `label` come from the matrix expansion.
    pub fn from_record(rec: &RunRecord, config_id: &str, group: &str, label: &str) -> Self {
        let exp = &rec.experiment;
        let n = exp.data.train_identities;
        let (sample_rate, pool_fraction, ema, rows, eviction) = match &exp.head {
            HeadConfig::Fc { .. } => (None, None, None, None, None),
            HeadConfig::PartialFc { sample_rate, .. } => {
                (Some(*sample_rate as f64), None, None, None, None)
            }
            // DCQ's queue fraction and key-encoder momentum fill the pool and EMA columns.
            HeadConfig::Dcq(d) => (
                None,
                Some(exp.head.size_fraction(n)),
                Some(d.momentum as f64),
                None,
                None,
            ),
            HeadConfig::F2c(f) => {
                let frac = exp.head.size_fraction(n);
                let rows = match f.pool.rows {
                    crate::heads::class_pool::Rows::One => 1,
                    crate::heads::class_pool::Rows::Two => 2,
                };
                let ev = match f.pool.eviction {
                    crate::heads::class_pool::Eviction::Lru => "lru",
                    crate::heads::class_pool::Eviction::Fifo => "fifo",
                };
                (
                    None,
                    Some(frac),
                    Some(f.ema_momentum as f64),
                    Some(rows),
                    Some(ev.to_string()),
                )
            }
        };
        let ok = rec.status == RunStatus::Ok;
        let m = rec.metrics.filter(|_| ok);
        SummaryRow {
            run_id: rec.run_id.clone(),
            config_id: config_id.to_string(),
            group: group.to_string(),
            label: label.to_string(),
            method: exp.head.method().to_string(),
            seed: exp.seed,
            sample_rate,
            pool_fraction,
            ema_momentum: ema,
            pool_rows: rows,
            eviction,
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
                RunStatus::Ok => "ok".into(),
                RunStatus::Failed(why) => format!("failed: {why}"),
            },
        }
    }
}

/// Writes the rows as CSV (header first), atomically.
pub fn write_csv(path: &Path, rows: &[SummaryRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)
            .map_err(|e| Error::Other(format!("summary row: {e}")))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Other(format!("summary csv: {e}")))?;
    crate::results::record::write_atomic(path, &bytes)
}

/// Reads a summary written by [`write_csv`].
pub fn read_csv(path: &Path) -> Result<Vec<SummaryRow>> {
    let mut r = csv::Reader::from_path(path)
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    r.deserialize()
        .map(|row| row.map_err(|e| Error::Other(format!("{}: {e}", path.display()))))
        .collect()
}
