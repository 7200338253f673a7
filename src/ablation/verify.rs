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
    /// The same status; the largest metric difference is within the tolerance.
    Within(Gap),
    /// The largest metric difference exceeds the tolerance (`None`: neither record has metrics,
    /// and their final losses differ).
    Differs(Option<Gap>),
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

/// The metric on which a fresh record differs most from the committed one.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// The metric's name, as the tables write it.
    pub metric: &'static str,
    /// Its committed value, as a fraction.
    pub committed: f64,
    /// Its value in the fresh run, as a fraction.
    pub fresh: f64,
}

impl Gap {
    /// The absolute difference, as a fraction.
    pub fn size(&self) -> f64 {
        (self.fresh - self.committed).abs()
    }
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max |Δ| {:.4} pt: {} {:.2} % committed, {:.2} % now",
            100.0 * self.size(),
            self.metric,
            100.0 * self.committed,
            100.0 * self.fresh
        )
    }
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agreement::Identical => write!(f, "identical"),
            Agreement::Within(gap) => write!(f, "within tolerance ({gap})"),
            Agreement::Differs(Some(gap)) => write!(f, "DIFFERS ({gap})"),
            Agreement::Differs(None) => write!(f, "DIFFERS (no metrics; final losses differ)"),
            Agreement::StatusDiffers { committed, fresh } => {
                write!(f, "DIFFERS: committed {committed}, now {fresh}")
            }
            Agreement::Missing => write!(f, "NO COMMITTED RECORD"),
        }
    }
}

/// The metrics compared, with their names, as fractions.
fn values(m: &Metrics) -> [(&'static str, f64); 5] {
    [
        ("TAR@FAR=1e-2", m.tar_far_1e2),
        ("TAR@FAR=1e-3", m.tar_far_1e3),
        ("TAR@FAR=1e-4", m.tar_far_1e4),
        ("accuracy", m.accuracy),
        ("rank-1", m.rank1),
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
            let gap = values(a)
                .into_iter()
                .zip(values(b))
                .map(|((metric, committed), (_, fresh))| Gap {
                    metric,
                    committed,
                    fresh,
                })
                // The first of equal gaps: the order of `values`.
                .reduce(|max, g| if g.size() > max.size() { g } else { max })
                .expect("five metrics");
            if gap.size() <= tolerance {
                Agreement::Within(gap)
            } else {
                Agreement::Differs(Some(gap))
            }
        }
        _ if committed.final_loss.to_bits() == fresh.final_loss.to_bits() => Agreement::Identical,
        _ => Agreement::Differs(None),
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
            Agreement::Within(Gap {
                metric: "TAR@FAR=1e-2",
                committed: 0.5,
                fresh: 0.505
            })
        );
        assert!(!compare(&a, &record(0.52, RunStatus::Ok), 0.01).reproduced());
        assert!(matches!(
            compare(&a, &record(0.5, RunStatus::Failed("nan".into())), 0.01),
            Agreement::StatusDiffers { .. }
        ));
    }

    #[test]
    fn a_difference_names_the_metric_that_differs_most() {
        let a = record(0.5, RunStatus::Ok);
        let mut b = record(0.5, RunStatus::Ok);
        let m = b.metrics.as_mut().unwrap();
        m.tar_far_1e2 = 0.501;
        m.tar_far_1e3 = 0.4893;
        m.rank1 = 0.51;
        let agreement = compare(&a, &b, 0.0);
        assert!(!agreement.reproduced());
        assert_eq!(
            agreement.to_string(),
            "DIFFERS (max |Δ| 1.0700 pt: TAR@FAR=1e-3 50.00 % committed, 48.93 % now)"
        );
        let no_metrics = RunRecord {
            metrics: None,
            ..record(0.5, RunStatus::Failed("nan".into()))
        };
        let other_loss = RunRecord {
            final_loss: 2.0,
            ..no_metrics.clone()
        };
        assert_eq!(
            compare(&no_metrics, &no_metrics.clone(), 0.0),
            Agreement::Identical
        );
        assert_eq!(
            compare(&no_metrics, &other_loss, 0.0),
            Agreement::Differs(None)
        );
    }
}
