//! The resumable matrix runner behind `f2c ablate`: trains every run of an expanded matrix that
//! has no record yet, writing each record atomically to `results/<matrix>/runs/<run_id>.json`
//! as soon as it finishes, so a killed matrix loses at most the run in progress and a rerun picks
//! up where it stopped. A run that diverges or fails is recorded as failed and the matrix goes on.
//! At the end `results/<matrix>/summary.csv` gets one row per (group, run).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::ablation::matrix::{Matrix, Plan};
use crate::ablation::references::{compute_plan_references, write_references, REFERENCES_CSV};
use crate::ablation::summary::{write_csv, SummaryRow};
use crate::error::{Error, Result};
use crate::results::record::{code_revision, peak_memory_bytes};
use crate::results::{RunRecord, RunStatus};
use crate::train::run::{run_experiment, CheckpointOptions, RunOptions};
use crate::Experiment;

/// How to run a matrix; none of it changes a run's numbers.
#[derive(Debug, Clone)]
pub struct MatrixOptions {
    /// Folder holding one folder per matrix (normally `results`).
    pub results_root: PathBuf,
    /// Expand and report the runs without training anything or writing any file.
    pub dry_run: bool,
    /// Show the overall progress bar (drawn only on a terminal) and one line per finished run.
    pub progress: bool,
    /// Train again the runs whose record says failed (by default every existing record is kept,
    /// since a diverged run diverges again; use this after fixing the cause of an error).
    pub retry_failed: bool,
    /// Runs trained side by side (1: one after another). Results do not depend on it: each run
    /// is a pure function of its experiment; only its wall-clock fields (step times) do.
    pub jobs: usize,
    /// Options passed unchanged to every run.
    pub run: RunOptions,
}

impl Default for MatrixOptions {
    fn default() -> Self {
        MatrixOptions {
            results_root: PathBuf::from("results"),
            dry_run: false,
            progress: true,
            retry_failed: false,
            jobs: 1,
            run: RunOptions::default(),
        }
    }
}

/// Where a run stands after [`run_matrix`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// No record (only after a dry run).
    Pending,
    /// Recorded as finished, in this call (`trained: true`) or an earlier one.
    Done { trained: bool },
    /// Recorded as failed with this reason, in this call or an earlier one.
    Failed { trained: bool, reason: String },
}

/// What a call to [`run_matrix`] found and did.
#[derive(Debug, Clone)]
pub struct MatrixOutcome {
    /// The expanded matrix.
    pub plan: Plan,
    /// `results_root/<matrix name>`.
    pub dir: PathBuf,
    /// One state per run of `plan.runs`, same order.
    pub states: Vec<RunState>,
    /// The summary written, `None` after a dry run.
    pub summary: Option<PathBuf>,
}

impl MatrixOutcome {
    /// Runs trained by this call (finished or failed).
    pub fn trained(&self) -> usize {
        self.states
            .iter()
            .filter(|s| {
                matches!(
                    s,
                    RunState::Done { trained: true } | RunState::Failed { trained: true, .. }
                )
            })
            .count()
    }

    /// Runs trained by this call that failed.
    pub fn failed_now(&self) -> usize {
        self.states
            .iter()
            .filter(|s| matches!(s, RunState::Failed { trained: true, .. }))
            .count()
    }

    /// Runs recorded as failed, now or earlier.
    pub fn failed(&self) -> usize {
        self.states
            .iter()
            .filter(|s| matches!(s, RunState::Failed { .. }))
            .count()
    }

    /// The runs, one line each: index, run id, groups, seed, label, then `todo`, `done` or `failed: <reason>`.
    pub fn listing(&self) -> String {
        self.plan
            .listing()
            .lines()
            .zip(&self.states)
            .map(|(line, state)| {
                let tag = match state {
                    RunState::Pending => "todo".to_string(),
                    RunState::Done { .. } => "done".to_string(),
                    RunState::Failed { reason, .. } => format!("failed: {reason}"),
                };
                format!("{line}  [{tag}]\n")
            })
            .collect()
    }
}

/// The record file of a run: `<results_root>/<matrix name>/runs/<run_id>.json`.
pub fn record_path(results_root: &Path, matrix_name: &str, run_id: &str) -> PathBuf {
    record_in(&results_root.join(matrix_name), run_id)
}

/// The record file of a run of the matrix whose results are in `matrix_dir`:
/// `<matrix_dir>/runs/<run_id>.json`.
pub fn record_in(matrix_dir: &Path, run_id: &str) -> PathBuf {
    matrix_dir.join("runs").join(format!("{run_id}.json"))
}

/// Runs the matrix file at `matrix_path` with the real trainer ([`run_experiment`]), then writes
/// its reference points (`references.csv`: raw features and the untrained network of the base
/// experiment, per seed and data set of its runs) beside the summary.
///
/// Runs checkpoint into `<matrix folder>/checkpoints/` (unless `opts.run` says otherwise), so an
/// interrupted matrix resumes its unfinished runs mid-way; a finished run removes its checkpoint.
pub fn run_matrix(matrix_path: &Path, opts: &MatrixOptions) -> Result<MatrixOutcome> {
    code_revision(); // the revision every record of this call carries, read before training
    let matrix = Matrix::load(matrix_path)?;
    let mut opts = opts.clone();
    if opts.run.checkpoint.is_none() {
        let dir = opts.results_root.join(&matrix.name).join("checkpoints");
        opts.run.checkpoint = Some(CheckpointOptions::new(&dir));
    }
    let base = matrix.base_experiment(matrix_path)?;
    let plan = matrix.expand_from(&base, matrix_path)?;
    let outcome = run_plan_with(plan, &opts, run_experiment)?;
    if !opts.dry_run {
        let refs = compute_plan_references(&base, &outcome.plan.runs)?;
        write_references(&outcome.dir.join(REFERENCES_CSV), &refs)?;
    }
    Ok(outcome)
}

/// [`run_matrix`] with the trainer given, so that tests can count and fake the runs.
pub fn run_matrix_with<F>(
    matrix_path: &Path,
    opts: &MatrixOptions,
    train: F,
) -> Result<MatrixOutcome>
where
    F: Fn(&Experiment, &RunOptions) -> Result<RunRecord> + Sync,
{
    let plan = Matrix::load(matrix_path)?.expand(matrix_path)?;
    run_plan_with(plan, opts, train)
}

/// Runs an expanded matrix: skips the runs already recorded, trains the rest in expansion order
/// (`opts.jobs` at a time), then writes the summary. A trainer that returns `Err` is recorded as a
/// failed run; a trainer that panics stops the matrix (like a kill), leaving the records written
/// so far.
pub fn run_plan_with<F>(plan: Plan, opts: &MatrixOptions, train: F) -> Result<MatrixOutcome>
where
    F: Fn(&Experiment, &RunOptions) -> Result<RunRecord> + Sync,
{
    let dir = opts.results_root.join(&plan.name);
    // Records already on disk; `None` for runs still to train.
    let mut records: Vec<Option<RunRecord>> = plan
        .runs
        .iter()
        .map(|run| {
            let path = record_path(&opts.results_root, &plan.name, &run.run_id);
            if !path.exists() {
                return Ok(None);
            }
            let rec = RunRecord::read(&path)?;
            let retry = opts.retry_failed && matches!(rec.status, RunStatus::Failed(_));
            Ok((!retry).then_some(rec))
        })
        .collect::<Result<_>>()?;
    let mut trained = vec![false; plan.runs.len()];

    if !opts.dry_run {
        let todo: Vec<usize> = (0..plan.runs.len())
            .filter(|&i| records[i].is_none())
            .collect();
        let bar = progress_bar(plan.runs.len(), plan.runs.len() - todo.len(), opts.progress);
        // Trains run `i`, writes its record and reports it.
        let one = |i: usize| -> Result<RunRecord> {
            let run = &plan.runs[i];
            let started = Instant::now();
            let rec = match train(&run.experiment, &opts.run) {
                Ok(rec) if rec.run_id != run.run_id => {
                    return Err(Error::Other(format!(
                        "the trainer returned the record of `{}` while running `{}`; it must not change the experiment",
                        rec.run_id, run.run_id
                    )));
                }
                Ok(rec) => rec,
                Err(e) => failed_record(
                    run.run_id.clone(),
                    &run.experiment,
                    format!("error: {e}"),
                    started.elapsed(),
                ),
            };
            rec.write_atomic(&record_path(&opts.results_root, &plan.name, &run.run_id))?;
            if opts.progress {
                let status = match &rec.status {
                    RunStatus::Ok => "ok".to_string(),
                    RunStatus::Failed(why) => format!("failed: {why}"),
                };
                // Printed around the bar so that logs kept without a terminal still show each run.
                bar.suspend(|| {
                    eprintln!(
                        "[{}/{}] {} ({}, {}): {status} in {:.1} s",
                        i + 1,
                        plan.runs.len(),
                        run.run_id,
                        run.groups.join(","),
                        run.label,
                        started.elapsed().as_secs_f64()
                    )
                });
            }
            bar.inc(1);
            Ok(rec)
        };
        for (i, rec) in run_all(&todo, opts.jobs, one)? {
            records[i] = Some(rec);
            trained[i] = true;
        }
        bar.finish_and_clear();
    }

    let states: Vec<RunState> = records
        .iter()
        .zip(&trained)
        .map(|(rec, &trained)| match rec {
            None => RunState::Pending,
            Some(RunRecord {
                status: RunStatus::Ok,
                ..
            }) => RunState::Done { trained },
            Some(RunRecord {
                status: RunStatus::Failed(reason),
                ..
            }) => RunState::Failed {
                trained,
                reason: reason.clone(),
            },
        })
        .collect();

    let summary = if opts.dry_run {
        None
    } else {
        let rows: Vec<SummaryRow> = plan
            .rows
            .iter()
            .map(|row| {
                let run = &plan.runs[row.run];
                let rec = records[row.run]
                    .as_ref()
                    .expect("every run is recorded after the loop");
                SummaryRow::from_record(rec, &run.config_id, &row.group, &row.label)
            })
            .collect();
        let path = dir.join("summary.csv");
        write_csv(&path, &rows)?;
        Some(path)
    };
    Ok(MatrixOutcome {
        plan,
        dir,
        states,
        summary,
    })
}

/// Calls `one` on every index of `todo`, `jobs` at a time (in order on this thread when `jobs` is
/// 1), and returns the results by index. The first error stops the handing out of new indices and
/// is returned once the calls under way have finished; a panic propagates.
fn run_all<T: Send>(
    todo: &[usize],
    jobs: usize,
    one: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<(usize, T)>> {
    if jobs <= 1 {
        return todo.iter().map(|&i| Ok((i, one(i)?))).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let done = std::sync::Mutex::new(Vec::with_capacity(todo.len()));
    let worker = || -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        while !failed.load(SeqCst) {
            let Some(&i) = todo.get(next.fetch_add(1, SeqCst)) else {
                break;
            };
            match one(i) {
                Ok(out) => done.lock().expect("no worker panicked").push((i, out)),
                Err(e) => {
                    failed.store(true, SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(())
    };
    let outcomes: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs.min(todo.len()))
            .map(|_| scope.spawn(worker))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    outcomes.into_iter().collect::<Result<()>>()?;
    let mut done = done.into_inner().expect("no worker panicked");
    done.sort_by_key(|(i, _)| *i);
    Ok(done)
}

/// The record of a run whose trainer returned an error: no metrics, the reason kept.
fn failed_record(run_id: String, exp: &Experiment, reason: String, took: Duration) -> RunRecord {
    RunRecord {
        run_id,
        experiment: exp.clone(),
        status: RunStatus::Failed(reason),
        metrics: None,
        wall_time_s: took.as_secs_f64(),
        median_step_ms: 0.0,
        samples_per_s: 0.0,
        peak_memory_bytes: peak_memory_bytes(),
        head_state_bytes: 0,
        final_loss: 0.0,
        code_revision: code_revision(),
        train_identities: None,
        pair_list: None,
        traffic_per_step: None,
        resident_input_bytes: None,
        machine: format!(
            "{} {}, {} cores, {}",
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            exp.device
        ),
    }
}

/// Runs done / total, the current run id and the ETA; hidden when `show` is false, and by
/// indicatif when stderr is not a terminal.
fn progress_bar(total: usize, done: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {pos}/{len} runs  {elapsed_precise} (eta {eta})  {msg}",
        )
        .expect("valid progress template"),
    );
    bar.set_position(done as u64);
    // Runs found on disk took no time now: measure the rate from here.
    bar.reset_eta();
    bar
}
