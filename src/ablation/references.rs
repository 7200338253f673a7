//! `results/<matrix>/references.csv`: the reference points of a matrix, one row per data set,
//! seed and kind, evaluated on the same held-out set as the runs of that seed and data: `raw` (the
//! input features themselves, evaluated exactly like a run's embeddings) and `untrained` (the probe
//! network at its initialisation). Columns:
//! `seed,data_id,kind,tar_far_1e-2,tar_far_1e-3,tar_far_1e-4,rank1`, where `data_id` is the
//! [`data_id`] of the runs the row serves (empty in files written before it was recorded: the row
//! then serves every run of its seed).
//!
//! Collapse rule: a trained run is *collapsed* when its TAR@FAR=1e-3 is at or below that of the
//! untrained network of the same seed and data: training did not produce a better embedding than
//! the one it started from, so its numbers say nothing about the method's accuracy. The comparison
//! is per seed and data because together they fix the training set and the held-out set; TAR@FAR=1e-3
//! is the metric every verdict uses. Runs without an `untrained` row of their seed and data are left
//! as they are.

use std::path::Path;

use dfdx::prelude::Device;
use serde::{Deserialize, Serialize};

use crate::ablation::matrix::PlannedRun;
use crate::ablation::summary::{RowStatus, SummaryRow};
use crate::data::TrainingData;
use crate::error::Result;
use crate::eval::protocol::evaluate;
use crate::eval::Metrics;
use crate::heads::backend::Backend;
use crate::nets::network::Network;
use crate::results::record::{data_id, same_id};
use crate::train::{with_trainer, Trainer, TrainerTask};
use crate::Experiment;

/// What a reference row evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReferenceKind {
    /// The raw input features.
    #[serde(rename = "raw")]
    Raw,
    /// The probe network before training.
    #[serde(rename = "untrained")]
    Untrained,
}

impl ReferenceKind {
    /// Every kind, in table order.
    pub const ALL: [ReferenceKind; 2] = [ReferenceKind::Raw, ReferenceKind::Untrained];

    /// Readable name for tables.
    pub fn label(self) -> &'static str {
        match self {
            ReferenceKind::Raw => "Raw input features",
            ReferenceKind::Untrained => "Untrained network",
        }
    }
}

/// One reference point: a kind evaluated on the held-out set of one seed and data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRow {
    pub seed: u64,
    /// The [`data_id`] of the runs this row serves; `None` (files written before it was recorded):
    /// every run of the seed.
    #[serde(default)]
    pub data_id: Option<String>,
    pub kind: ReferenceKind,
    #[serde(rename = "tar_far_1e-2")]
    pub tar_far_1e2: f64,
    #[serde(rename = "tar_far_1e-3")]
    pub tar_far_1e3: f64,
    #[serde(rename = "tar_far_1e-4")]
    pub tar_far_1e4: f64,
    pub rank1: f64,
}

/// File name of the reference points, next to `summary.csv`.
pub const REFERENCES_CSV: &str = "references.csv";

/// Reads `references.csv`.
pub fn read_references(path: &Path) -> Result<Vec<ReferenceRow>> {
    crate::results::csv_rows::read_rows(
        path,
        "columns seed,data_id,kind,tar_far_1e-2,tar_far_1e-3,tar_far_1e-4,rank1 with kind `raw` or `untrained`",
    )
}

impl ReferenceRow {
    fn new(exp: &Experiment, kind: ReferenceKind, m: &Metrics) -> Self {
        ReferenceRow {
            seed: exp.seed,
            data_id: Some(data_id(exp)),
            kind,
            tar_far_1e2: m.tar_far_1e2,
            tar_far_1e3: m.tar_far_1e3,
            tar_far_1e4: m.tar_far_1e4,
            rank1: m.rank1,
        }
    }
}

/// The reference rows of `base` for each of `seeds`: its held-out set evaluated as raw input
/// features (rows L2-normalised) and through its untrained network (the evaluated network of
/// [`Trainer::embed`] at initialisation), with the experiment's own evaluation settings.
pub fn compute_references(base: &Experiment, seeds: &[u64]) -> Result<Vec<ReferenceRow>> {
    let mut rows = Vec::with_capacity(2 * seeds.len());
    for &seed in seeds {
        let exp = Experiment {
            seed,
            ..base.clone()
        };
        let (raw, untrained) = with_trainer(&exp, References { exp: &exp })?;
        rows.push(ReferenceRow::new(&exp, ReferenceKind::Raw, &raw));
        rows.push(ReferenceRow::new(
            &exp,
            ReferenceKind::Untrained,
            &untrained,
        ));
    }
    Ok(rows)
}

/// The reference rows every run of a matrix is checked against: for each data set its runs train
/// and are scored on ([`data_id`]), in first-seen order, `base` with that data and evaluation,
/// for each seed some run of that data has (ascending). The network is `base`'s.
pub fn compute_plan_references(
    base: &Experiment,
    runs: &[PlannedRun],
) -> Result<Vec<ReferenceRow>> {
    let mut sets: Vec<(String, &Experiment, Vec<u64>)> = Vec::new();
    for run in runs {
        let exp = &run.experiment;
        let id = data_id(exp);
        match sets.iter_mut().find(|(d, _, _)| *d == id) {
            Some((_, _, seeds)) => seeds.push(exp.seed),
            None => sets.push((id, exp, vec![exp.seed])),
        }
    }
    let mut rows = Vec::new();
    for (_, exp, mut seeds) in sets {
        seeds.sort_unstable();
        seeds.dedup();
        let on_data = Experiment {
            data: exp.data.clone(),
            images: exp.images.clone(),
            eval: exp.eval.clone(),
            ..base.clone()
        };
        rows.extend(compute_references(&on_data, &seeds)?);
    }
    Ok(rows)
}

/// Whether reference `x` serves `row`: the same seed and data set (a side without a recorded
/// data set matches any).
pub fn serves(x: &ReferenceRow, row: &SummaryRow) -> bool {
    x.seed == row.seed && same_id(x.data_id.as_deref(), row.data_id.as_deref())
}

/// Evaluates the held-out set as raw features and through a freshly built trainer's network.
struct References<'a> {
    exp: &'a Experiment,
}

impl TrainerTask for References<'_> {
    type Output = (Metrics, Metrics);

    fn run<A: Network<E, D>, const E: usize, D: Device<f32>, B: Backend>(
        self,
        trainer: Trainer<A, E, D, B>,
        data: TrainingData,
    ) -> Result<(Metrics, Metrics)> {
        let exp = self.exp;
        let (x, labels) = data.split_set(exp.eval.split)?;
        let dim = x.len() / labels.len().max(1);
        let mut raw = x.clone();
        for row in raw.chunks_mut(dim) {
            let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|v| *v /= n);
        }
        Ok((
            evaluate(&raw, dim, &labels, &exp.eval, exp.seed),
            evaluate(&trainer.embed(&x), E, &labels, &exp.eval, exp.seed),
        ))
    }
}

/// Writes `references.csv` atomically.
pub fn write_references(path: &Path, rows: &[ReferenceRow]) -> Result<()> {
    crate::results::csv_rows::write_rows(path, rows)
}

/// Whether a run with TAR@FAR=1e-3 `tar_1e3` is collapsed against the untrained network's
/// `untrained_1e3` on the same seed and data: at or below it.
pub fn is_collapsed(tar_1e3: f64, untrained_1e3: f64) -> bool {
    tar_1e3 <= untrained_1e3
}

/// Marks as [`RowStatus::Collapsed`] every `ok` row whose TAR@FAR=1e-3 is at or below the
/// untrained network's on its seed and data; returns how many were marked. Failed rows and rows
/// without an `untrained` reference are left alone.
pub fn mark_collapsed(rows: &mut [SummaryRow], refs: &[ReferenceRow]) -> usize {
    let mut marked = 0;
    for r in rows.iter_mut().filter(|r| r.status == RowStatus::Ok) {
        let untrained = refs
            .iter()
            .find(|x| x.kind == ReferenceKind::Untrained && serves(x, r));
        if let (Some(u), Some(tar)) = (untrained, r.tar_far_1e3) {
            if is_collapsed(tar, u.tar_far_1e3) {
                r.status = RowStatus::Collapsed;
                marked += 1;
            }
        }
    }
    marked
}

/// The seeds of the `rows` that have no `untrained` reference of their seed and data, ascending
/// and distinct: the runs that could not be checked for collapse.
pub fn unchecked_seeds(rows: &[SummaryRow], refs: &[ReferenceRow]) -> Vec<u64> {
    let mut seeds: Vec<u64> = rows
        .iter()
        .filter(|r| {
            !refs
                .iter()
                .any(|x| x.kind == ReferenceKind::Untrained && serves(x, r))
        })
        .map(|r| r.seed)
        .collect();
    seeds.sort_unstable();
    seeds.dedup();
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(seed: u64, kind: ReferenceKind, tar: f64) -> ReferenceRow {
        ReferenceRow {
            seed,
            data_id: None,
            kind,
            tar_far_1e2: tar,
            tar_far_1e3: tar,
            tar_far_1e4: tar,
            rank1: tar,
        }
    }

    #[test]
    fn reads_the_documented_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REFERENCES_CSV);
        std::fs::write(
            &path,
            "seed,kind,tar_far_1e-2,tar_far_1e-3,tar_far_1e-4,rank1\n1,raw,0.5,0.3,0.1,0.4\n1,untrained,0.2,0.05,0.01,0.1\n",
        )
        .unwrap();
        let rows = read_references(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].kind, rows[0].tar_far_1e3),
            (ReferenceKind::Raw, 0.3)
        );
        assert_eq!((rows[1].seed, rows[1].kind), (1, ReferenceKind::Untrained));
        std::fs::write(
            &path,
            "seed,kind,tar_far_1e-2,tar_far_1e-3,tar_far_1e-4,rank1\n1,random,0,0,0,0\n",
        )
        .unwrap();
        let err = read_references(&path).unwrap_err().to_string();
        assert!(err.contains("kind `raw` or `untrained`"), "{err}");
    }

    #[test]
    fn collapse_is_at_or_below_the_untrained_network_of_the_same_seed() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/summary.csv");
        let mut rows = crate::ablation::summary::read_csv(&path).unwrap();
        rows.truncate(3); // Full FC, seeds 0, 1, 2: TAR@1e-3 .8812 .8745 .8891
        let refs = [
            reference(0, ReferenceKind::Untrained, 0.8812), // equal: collapsed
            reference(1, ReferenceKind::Untrained, 0.5),    // below: fine
            reference(1, ReferenceKind::Raw, 0.95),         // raw does not decide collapse
        ];
        assert_eq!(mark_collapsed(&mut rows, &refs), 1);
        let status: Vec<String> = rows.iter().map(|r| r.status.to_string()).collect();
        assert_eq!(status, ["collapsed", "ok", "ok"]);
        assert_eq!(unchecked_seeds(&rows, &refs), vec![2]);
    }

    #[test]
    fn a_reference_serves_only_the_runs_of_its_own_data() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/summary.csv");
        let mut rows = crate::ablation::summary::read_csv(&path).unwrap();
        rows.truncate(2); // Full FC, seeds 0 and 1: TAR@1e-3 .8812 .8745
        rows[0].data_id = Some("a".into());
        rows[1].data_id = Some("b".into());
        let on = |seed, data: &str, tar| ReferenceRow {
            data_id: Some(data.into()),
            ..reference(seed, ReferenceKind::Untrained, tar)
        };
        // Seed 0: the untrained network of data `b` would collapse the run, but it ran on `a`.
        // Seed 1: only data `a` has a reference, so the run on `b` stays unchecked.
        let refs = [on(0, "a", 0.5), on(0, "b", 0.95), on(1, "a", 0.95)];
        assert_eq!(mark_collapsed(&mut rows, &refs), 0);
        assert_eq!(unchecked_seeds(&rows, &refs), vec![1]);
        // A row without a recorded data set (an older summary) takes its seed's reference.
        rows[1].data_id = None;
        assert_eq!(mark_collapsed(&mut rows, &refs), 1);
        assert_eq!(rows[1].status, RowStatus::Collapsed);
    }
}
