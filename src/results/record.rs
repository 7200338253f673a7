//! The record of one run: the resolved experiment, its seed, metrics, timings, memory and the code
//! revision, so that any number in a table can be traced back and rerun.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::eval::Metrics;
use crate::Experiment;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunStatus {
    /// Trained and evaluated.
    Ok,
    /// Diverged or failed; the reason is kept so the matrix can go on and the table can say why.
    Failed(String),
}

/// Everything recorded about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Stable id derived from the resolved config (see [`run_id`]).
    pub run_id: String,
    /// The resolved experiment that ran.
    pub experiment: Experiment,
    /// Ok or failed with a reason.
    pub status: RunStatus,
    /// Open-set metrics (absent for failed runs).
    pub metrics: Option<Metrics>,
    /// Wall time of the whole run, seconds.
    pub wall_time_s: f64,
    /// Median wall time of one training step, milliseconds.
    pub median_step_ms: f64,
    /// Training throughput, samples per second.
    pub samples_per_s: f64,
    /// Peak resident memory of the process, bytes (Linux VmHWM; 0 where unknown).
    pub peak_memory_bytes: u64,
    /// Bytes of head state: FC/PFC centres + momentum; F²C pool + gallery net.
    pub head_state_bytes: u64,
    /// Mean training loss over the last 10% of steps.
    pub final_loss: f64,
    /// `git describe` of the code that ran (with `-dirty` when uncommitted changes existed).
    pub code_revision: String,
    /// Machine description (OS, cores, device).
    pub machine: String,
    /// Training identities N of an image data set, found on opening it; absent for synthetic
    /// data, whose config states N (see [`RunRecord::num_train_identities`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_identities: Option<usize>,
    /// The pair-list benchmark's result, when the experiment names one (`images.pairs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_list: Option<crate::eval::pair_list::PairListMetrics>,
    /// Host↔device traffic per training step ([`crate::traffic`]), averaged over the steps this
    /// process trained (a resumed run: those after the checkpoint). Absent in records written
    /// before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_per_step: Option<crate::traffic::Traffic>,
    /// Bytes of the training set the run kept on the device, uploaded once before training
    /// ([`crate::data::resident`]; not part of `traffic_per_step`). Absent when each batch was
    /// uploaded, and in records written before inputs could stay on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_input_bytes: Option<u64>,
}

/// A stable id of a resolved experiment: method, name and the first 12 hex digits of SHA-256 of
/// its RON serialisation. The same config always gets the same id.
pub fn run_id(exp: &Experiment) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(exp.to_ron().as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{hex}", exp.head.method(), exp.name)
}

/// A stable id of what a run is trained and scored on, apart from its seed: the first 12 hex
/// digits of SHA-256 of the RON of its data (`data` or `images`) and evaluation settings. Two runs
/// of one seed with the same id saw the same training set and are scored on the same held-out
/// pairs, so their metrics pair; runs whose ids differ do not (a matrix axis over `data.families`,
/// say, changes the identities themselves).
pub fn data_id(exp: &Experiment) -> String {
    #[derive(Serialize)]
    struct Scored<'a> {
        data: &'a Option<crate::data::synthetic::SyntheticConfig>,
        images: &'a Option<crate::data::images::ImagesConfig>,
        eval: &'a crate::eval::EvalConfig,
    }
    short_hash(&Scored {
        data: &exp.data,
        images: &exp.images,
        eval: &exp.eval,
    })
}

/// A stable id of how a run trains, apart from its head and the head's sampling: the first 12 hex
/// digits of SHA-256 of the RON of its network and optimiser settings (backbone, steps, learning
/// rate and its schedule, momentum, weight decay), the loaders left out. Two methods with the same
/// id differ only in the head and how its batches are drawn: a like-for-like comparison.
pub fn recipe_id(exp: &Experiment) -> String {
    #[derive(Serialize)]
    struct Recipe<'a> {
        backbone: &'a crate::nets::network::Backbone,
        train: crate::train::schedule::TrainConfig,
    }
    let mut train = exp.train.clone();
    train.loaders = crate::data::loaders::LoaderConfig {
        identities: 0,
        instances: 0,
    };
    short_hash(&Recipe {
        backbone: &exp.backbone,
        train,
    })
}

/// The first 12 hex digits of SHA-256 of `value`'s compact RON.
fn short_hash<T: Serialize>(value: &T) -> String {
    use sha2::{Digest, Sha256};
    let text = ron::ser::to_string(value).expect("settings serialise");
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Whether two recorded ids ([`data_id`], [`recipe_id`]) agree; a side without one (a file
/// written before it was recorded) matches any.
pub fn same_id(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

impl RunRecord {
    /// Training identities N of the run.
    pub fn num_train_identities(&self) -> usize {
        self.experiment
            .data
            .as_ref()
            .map(|d| d.train_identities)
            .or(self.train_identities)
            .unwrap_or(0)
    }

    /// Writes the record as pretty JSON, atomically (temp file + rename), so an interrupted run
    /// never leaves a partial record.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(path, json.as_bytes())
    }

    /// Reads a record written by [`RunRecord::write_atomic`].
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Other(format!("{}: not a run record: {e}", path.display())))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The `.json` files of the folder `dir`, sorted by name; none when the folder is missing.
pub fn json_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    paths
}

/// `F2C_CODE_REVISION` where set (a packed build run outside its checkout, as
/// `scripts/gpu-check.sh` runs it), else `git describe --always --dirty` of the working
/// directory, or `unknown`.
pub fn code_revision() -> String {
    // Read once per process, when the first run starts: edits made to the tree while a long
    // matrix trains do not relabel the code that is running.
    static REVISION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    REVISION
        .get_or_init(|| {
            if let Some(r) = std::env::var("F2C_CODE_REVISION")
                .ok()
                .filter(|r| !r.trim().is_empty())
            {
                return r.trim().to_string();
            }
            std::process::Command::new("git")
                .args(["describe", "--always", "--dirty"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_else(|| "unknown".into())
        })
        .clone()
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), 0 elsewhere.
pub fn peak_memory_bytes() -> u64 {
    memory_status("VmHWM:")
}

/// A `/proc/self/status` memory field (`VmRSS:`, `VmHWM:`) in bytes; 0 where unavailable.
pub fn memory_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A short human-readable report of a record.
pub fn summary_text(rec: &RunRecord) -> String {
    let e = &rec.experiment;
    let mut s = format!(
        "{} ({}, seed {}, {} training identities)\n",
        e.name,
        e.head.method(),
        e.seed,
        rec.num_train_identities()
    );
    match (&rec.status, &rec.metrics) {
        (RunStatus::Ok, Some(m)) => {
            s += &format!(
                "  TAR@FAR=1e-2 {:.2}%  TAR@FAR=1e-3 {:.2}%  TAR@FAR=1e-4 {:.2}%\n  (exact: {} genuine, {} impostor pairs; {} impostors above the 1e-4 threshold)\n  accuracy {:.2}% ± {:.2}  rank-1 {:.2}%\n",
                100.0 * m.tar_far_1e2,
                100.0 * m.tar_far_1e3,
                100.0 * m.tar_far_1e4,
                m.genuine_pairs,
                m.impostor_pairs,
                m.impostors_above_far_1e4,
                100.0 * m.accuracy,
                100.0 * m.accuracy_std,
                100.0 * m.rank1
            );
        }
        (RunStatus::Failed(why), _) => s += &format!("  FAILED: {why}\n"),
        _ => {}
    }
    if let Some(p) = &rec.pair_list {
        s += &format!(
            "  pair list: accuracy {:.2}% ± {:.2} over {} pairs, {} folds\n",
            100.0 * p.accuracy,
            100.0 * p.accuracy_std,
            p.pairs,
            p.folds
        );
    }
    s += &format!(
        "  wall {:.1} s, median step {:.2} ms, {:.0} samples/s, final loss {:.4}\n  head state {:.2} MiB, peak memory {:.0} MiB, code {}",
        rec.wall_time_s,
        rec.median_step_ms,
        rec.samples_per_s,
        rec.final_loss,
        rec.head_state_bytes as f64 / 1048576.0,
        rec.peak_memory_bytes as f64 / 1048576.0,
        rec.code_revision
    );
    if let Some(t) = &rec.traffic_per_step {
        s += &format!("\n  host↔device per step: {}", t.describe());
    }
    if let Some(bytes) = rec.resident_input_bytes {
        s += &format!(
            "\n  training set kept on the device: {}, uploaded once",
            crate::report::tables::human_bytes(bytes)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_bit_for_bit() {
        // A value whose shortest decimal form a fast float parser reads back one ulp off: summaries
        // rebuilt from records on disk must equal those built from the records in memory.
        let exp = crate::config::embedded::load("experiments/tiny.ron").unwrap();
        let tricky = 0.48355555555555557_f64;
        let metrics = crate::eval::Metrics {
            tar_far_1e2: 0.9291111111111111,
            tar_far_1e3: 0.7464444444444445,
            tar_far_1e4: tricky,
            accuracy: 0.9718888888888889,
            accuracy_std: 0.0,
            rank1: 0.8273333333333334,
            genuine_pairs: 4500,
            impostor_pairs: 1_614_600,
            impostors_above_far_1e4: 161,
        };
        let rec = RunRecord {
            run_id: run_id(&exp),
            experiment: exp,
            status: RunStatus::Ok,
            metrics: Some(metrics),
            wall_time_s: 1.0,
            median_step_ms: 5.6032210000000005,
            samples_per_s: 16928.51259026323,
            peak_memory_bytes: 0,
            head_state_bytes: 0,
            final_loss: 1.0,
            code_revision: "x".into(),
            machine: "m".into(),
            train_identities: None,
            pair_list: None,
            traffic_per_step: None,
            resident_input_bytes: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        rec.write_atomic(&path).unwrap();
        let back = RunRecord::read(&path).unwrap();
        assert_eq!(
            back.metrics.unwrap().tar_far_1e4.to_bits(),
            tricky.to_bits()
        );
        assert_eq!(back, rec);
    }

    #[test]
    fn the_data_id_follows_the_data_and_evaluation_not_the_method_or_seed() {
        let exp = crate::config::embedded::load("experiments/tiny.ron").unwrap();
        let id = data_id(&exp);
        let mut other = exp.clone();
        other.seed += 1;
        other.train.lr *= 2.0;
        other.head = crate::config::embedded::load("experiments/fc.ron")
            .unwrap()
            .head;
        assert_eq!(
            data_id(&other),
            id,
            "seed, schedule and head are not the data"
        );
        let with = |f: &dyn Fn(&mut Experiment)| {
            let mut e = exp.clone();
            f(&mut e);
            data_id(&e)
        };
        let data = |e: &mut Experiment| e.data.as_mut().expect("synthetic data").families.size = 8;
        assert_ne!(with(&data), id, "look-alike families change the identities");
        let split = |e: &mut Experiment| e.eval.split = crate::eval::EvalSplit::Validation;
        assert_ne!(with(&split), id, "another held-out set");
        assert_eq!(id.len(), 12);
    }

    #[test]
    fn the_recipe_id_follows_the_network_and_optimiser_not_the_head_or_its_sampling() {
        let exp = crate::config::embedded::load("experiments/tiny.ron").unwrap();
        let id = recipe_id(&exp);
        let mut other = exp.clone();
        other.seed += 1;
        other.head = crate::config::embedded::load("experiments/fc.ron")
            .unwrap()
            .head;
        other.train.loaders.identities = 0;
        other.train.loaders.instances = 96;
        assert_eq!(
            recipe_id(&other),
            id,
            "seed, head and loaders are not the recipe"
        );
        other.train.weight_decay *= 5.0;
        assert_ne!(recipe_id(&other), id, "another weight decay");
        let mut lr = exp.clone();
        lr.train.lr *= 2.0;
        assert_ne!(recipe_id(&lr), id, "another learning rate");
    }
}
