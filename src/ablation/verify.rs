//! Reproduction as a command: retrain runs whose records are committed (a matrix, a subset of its
//! seeds, or one experiment) into a scratch folder and say, run by run, whether the committed
//! metrics come back — bit for bit, within a stated tolerance (other hardware, other thread
//! counts), or not at all.

use std::fmt;
use std::path::Path;

use crate::ablation::matrix::{Plan, PlanRow};
use crate::ablation::runner::{record_path, run_plan_with, MatrixOptions};
use crate::error::Result;
use crate::eval::Metrics;
use crate::results::{RunRecord, RunStatus};
use crate::train::run::RunOptions;
use crate::Experiment;

/// How a fresh run compares with its committed record.
#[derive(Debug, Clone, PartialEq)]
pub enum Agreement {
    /// The same status and bit-identical metrics.
    Identical,
    /// The same status; the largest metric difference (absolute, in fractions) is within the
    /// tolerance.
    Within(f64),
    /// The largest metric difference exceeds the tolerance.
    Differs(f64),
    /// One run finished and the other failed, or they failed for different reasons.
    StatusDiffers { committed: String, fresh: String },
    /// There is no committed record of this run.
    Missing,
}

impl Agreement {
    /// Whether this counts as reproduced.
    pub fn reproduced(&self) -> bool {
        matches!(self, Agreement::Identical | Agreement::Within(_))
    }
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agreement::Identical => write!(f, "identical"),
            Agreement::Within(d) => write!(f, "within tolerance (max |Δ| {:.4} pt)", 100.0 * d),
            Agreement::Differs(d) => write!(f, "DIFFERS (max |Δ| {:.4} pt)", 100.0 * d),
            Agreement::StatusDiffers { committed, fresh } => {
                write!(f, "DIFFERS: committed {committed}, now {fresh}")
            }
            Agreement::Missing => write!(f, "NO COMMITTED RECORD"),
        }
    }
}

/// The metrics compared, as fractions.
fn values(m: &Metrics) -> [f64; 5] {
    [
        m.tar_far_1e2,
        m.tar_far_1e3,
        m.tar_far_1e4,
        m.accuracy,
        m.rank1,
    ]
}

fn status_text(s: &RunStatus) -> String {
    match s {
        RunStatus::Ok => "ok".into(),
        RunStatus::Failed(why) => format!("failed ({why})"),
    }
}

/// Compares a fresh record with the committed one; `tolerance` bounds the absolute difference of
/// each metric (TARs, accuracy, rank-1, as fractions).
pub fn compare(committed: &RunRecord, fresh: &RunRecord, tolerance: f64) -> Agreement {
    if committed.status != fresh.status {
        return Agreement::StatusDiffers {
            committed: status_text(&committed.status),
            fresh: status_text(&fresh.status),
        };
    }
    match (&committed.metrics, &fresh.metrics) {
        (Some(a), Some(b)) if a == b => Agreement::Identical,
        (Some(a), Some(b)) => {
            let d = values(a)
                .iter()
                .zip(values(b))
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            if d <= tolerance {
                Agreement::Within(d)
            } else {
                Agreement::Differs(d)
            }
        }
        _ if committed.final_loss.to_bits() == fresh.final_loss.to_bits() => Agreement::Identical,
        _ => Agreement::Differs(f64::NAN),
    }
}

/// The outcome of a verification: one line per run.
#[derive(Debug, Clone)]
pub struct Verification {
    pub runs: Vec<(String, String, Agreement)>,
    pub tolerance: f64,
}

impl Verification {
    /// Whether every run was reproduced.
    pub fn reproduced(&self) -> bool {
        self.runs.iter().all(|(_, _, a)| a.reproduced())
    }

    /// The one-line verdict.
    pub fn verdict(&self) -> String {
        let n = self.runs.len();
        let identical = self
            .runs
            .iter()
            .filter(|(_, _, a)| *a == Agreement::Identical)
            .count();
        let within = self
            .runs
            .iter()
            .filter(|(_, _, a)| matches!(a, Agreement::Within(_)))
            .count();
        if self.reproduced() {
            format!(
                "REPRODUCED: {n} of {n} runs ({identical} bit-identical, {within} within {} pt)",
                100.0 * self.tolerance
            )
        } else {
            format!(
                "NOT REPRODUCED: {} of {n} runs differ from their committed records",
                n - identical - within
            )
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (id, label, a) in &self.runs {
            writeln!(f, "{id}  {label}  {a}")?;
        }
        write!(f, "{}", self.verdict())
    }
}

/// Retrains the runs of `plan` whose seed is in `seeds` (all when empty) into `scratch` and
/// compares each with its record under `opts.results_root`; `opts` otherwise as for the matrix
/// (jobs, progress). `train` is the trainer ([`crate::train::run::run_experiment`]).
pub fn verify_plan<F>(
    plan: &Plan,
    seeds: &[u64],
    scratch: &Path,
    opts: &MatrixOptions,
    tolerance: f64,
    train: F,
) -> Result<Verification>
where
    F: Fn(&Experiment, &RunOptions) -> Result<RunRecord> + Sync,
{
    let keep: Vec<usize> = (0..plan.runs.len())
        .filter(|&i| seeds.is_empty() || seeds.contains(&plan.runs[i].experiment.seed))
        .collect();
    let subset = Plan {
        name: plan.name.clone(),
        runs: keep
            .iter()
            .enumerate()
            .map(|(new, &old)| {
                let mut run = plan.runs[old].clone();
                run.index = new;
                run
            })
            .collect(),
        rows: plan
            .rows
            .iter()
            .filter_map(|row| {
                keep.iter()
                    .position(|&k| k == row.run)
                    .map(|run| PlanRow { run, ..row.clone() })
            })
            .collect(),
    };
    let fresh_opts = MatrixOptions {
        results_root: scratch.to_path_buf(),
        dry_run: false,
        retry_failed: false,
        ..opts.clone()
    };
    let _ = std::fs::remove_dir_all(scratch.join(&plan.name));
    run_plan_with(subset.clone(), &fresh_opts, train)?;
    let runs = subset
        .runs
        .iter()
        .map(|run| {
            let fresh = RunRecord::read(&record_path(scratch, &plan.name, &run.run_id))?;
            let committed = record_path(&opts.results_root, &plan.name, &run.run_id);
            let agreement = if committed.exists() {
                compare(&RunRecord::read(&committed)?, &fresh, tolerance)
            } else {
                Agreement::Missing
            };
            Ok((run.run_id.clone(), run.label.clone(), agreement))
        })
        .collect::<Result<_>>()?;
    Ok(Verification { runs, tolerance })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tar: f64, status: RunStatus) -> RunRecord {
        let exp = crate::config::embedded::load("experiments/tiny.ron").unwrap();
        RunRecord {
            run_id: "r".into(),
            experiment: exp,
            status,
            metrics: Some(Metrics {
                tar_far_1e2: tar,
                tar_far_1e3: tar,
                tar_far_1e4: tar,
                accuracy: tar,
                accuracy_std: 0.0,
                rank1: tar,
                genuine_pairs: 10,
                impostor_pairs: 100,
                impostors_above_far_1e4: 0,
            }),
            wall_time_s: 1.0,
            median_step_ms: 1.0,
            samples_per_s: 1.0,
            peak_memory_bytes: 0,
            head_state_bytes: 0,
            final_loss: 1.0,
            code_revision: "x".into(),
            machine: "m".into(),
            train_identities: None,
            pair_list: None,
            traffic_per_step: None,
            resident_input_bytes: None,
        }
    }

    #[test]
    fn agreement_levels() {
        let a = record(0.5, RunStatus::Ok);
        // Wall-clock fields may differ; the metrics decide.
        let same = RunRecord {
            wall_time_s: 9.0,
            ..record(0.5, RunStatus::Ok)
        };
        assert_eq!(compare(&a, &same, 0.0), Agreement::Identical);
        assert_eq!(
            compare(&a, &record(0.505, RunStatus::Ok), 0.01),
            Agreement::Within(0.505 - 0.5)
        );
        assert!(!compare(&a, &record(0.52, RunStatus::Ok), 0.01).reproduced());
        assert!(matches!(
            compare(&a, &record(0.5, RunStatus::Failed("nan".into())), 0.01),
            Agreement::StatusDiffers { .. }
        ));
    }
}
