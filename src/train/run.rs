//! One experiment end to end: build the data and the [`Trainer`]; train on the dual loaders with
//! a progress bar; evaluate open-set on the held-out identities; return the record.
//!
//! Runs of hours survive interruption: with [`RunOptions::checkpoint`] set, the run writes a
//! [`Checkpoint`] every few minutes of wall time, continues from it when started again (the
//! resumed run's record equals the uninterrupted one's apart from wall-clock fields), and deletes
//! it once the record exists.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dfdx::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint::{checkpoint_path, Checkpoint};
use super::feed::DeviceFeed;
use super::step::{with_trainer, Trainer, TrainerTask};
use crate::data::resident::InputStaging;
use crate::data::TrainingData;
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::eval::pair_list::{evaluate_pair_list, PairListMetrics};
use crate::eval::protocol::evaluate;
use crate::heads::backend::Backend;
use crate::nets::network::{BackboneInput, Network};
use crate::results::record::{code_revision, peak_memory_bytes, run_id};
use crate::results::{RunRecord, RunStatus};
use crate::Experiment;

/// Options of a run that are not part of the experiment (they do not change its numbers).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show a progress bar (and a line when resuming) on stderr.
    pub progress: bool,
    /// Checkpoints of the run; `None`: none are read or written.
    pub checkpoint: Option<CheckpointOptions>,
    /// Stop after this many steps (counted from step 0, a resumed run included), writing a
    /// checkpoint, instead of finishing: interruption made deterministic, for tests.
    pub stop_after: Option<usize>,
    /// Write the trained probe network as safetensors to this file (see
    /// [`Trainer::export_probe`]).
    pub export_probe: Option<PathBuf>,
    /// Where the training inputs live: uploaded per step, or kept on the device.
    pub inputs: InputStaging,
    /// Print the resolved plan ([`describe_plan`]) on stderr before training.
    pub plan: bool,
}

/// Where and how often a run checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointOptions {
    /// Folder of the checkpoint, `<dir>/<run_id>.ckpt` (the train command uses results/train).
    pub dir: PathBuf,
    /// Wall time between checkpoints. Each costs about the head's state and three copies of the
    /// probe's parameters in bytes of writing.
    pub every: Duration,
    /// Continue from the run's checkpoint when there is one; `false` starts afresh (and
    /// overwrites it).
    pub resume: bool,
}

impl CheckpointOptions {
    /// Checkpoints in `dir` every 5 minutes, resuming from an existing one.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CheckpointOptions {
            dir: dir.into(),
            every: Duration::from_secs(300),
            resume: true,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
// One per run: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum RunOutcome {
    /// Trained and evaluated (or diverged): the record.
    Finished(RunRecord),
    /// Stopped after `step` steps as [`RunOptions::stop_after`] asked, its state in `checkpoint`.
    Stopped { step: usize, checkpoint: PathBuf },
}

/// Trains, evaluates and returns the record of `exp`. A diverged run (non-finite loss) is
/// returned as `Ok` with `RunStatus::Failed`; `Err` is for problems that are not the run's result
/// (unavailable device, I/O, an unusable checkpoint) and for a stop that
/// [`RunOptions::stop_after`] asked for (use [`run_until`] to take that as an outcome).
pub fn run_experiment(exp: &Experiment, opts: &RunOptions) -> Result<RunRecord> {
    code_revision(); // fixed now, before training, for the record
    match run_until(exp, opts)? {
        RunOutcome::Finished(record) => Ok(record),
        RunOutcome::Stopped { step, checkpoint } => Err(Error::Other(format!(
            "stopped after step {step} as asked (stop_after); resume from {}",
            checkpoint.display()
        ))),
    }
}

/// [`run_experiment`], with a requested stop as an outcome.
pub fn run_until(exp: &Experiment, opts: &RunOptions) -> Result<RunOutcome> {
    if opts.stop_after.is_some() && opts.checkpoint.is_none() {
        return Err(Error::Other(
            "stop_after needs RunOptions::checkpoint: a stopped run is only of use if it can \
             resume"
                .into(),
        ));
    }
    with_trainer(exp, Run { exp, opts })
}

/// What [`time_training_steps`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTimes {
    /// Wall seconds of each timed step.
    pub seconds: Vec<f64>,
    /// Host↔device traffic per timed step.
    pub traffic: crate::traffic::Traffic,
    /// Bytes of the training set kept on the device (uploaded before the first step), if it was.
    pub resident_bytes: Option<u64>,
    /// Bytes of the head's state after the timed steps.
    pub head_state_bytes: u64,
}

/// Wall seconds of each of `steps` training steps of `exp` (data, probe net, second net and
/// head; no evaluation) after `warmup` untimed ones, on the experiment's device, and their
/// host↔device traffic: the benchmark's whole-step throughput, through the same trainer as a run,
/// its inputs staged as `inputs` says.
pub fn time_training_steps(
    exp: &Experiment,
    warmup: usize,
    steps: usize,
    inputs: InputStaging,
) -> Result<StepTimes> {
    with_trainer(
        exp,
        TimeSteps {
            exp,
            warmup,
            steps,
            inputs,
        },
    )
}

/// A number of passes over the data with two decimals, or four between 0 and 0.1 (a short run at
/// 10⁷ identities is 0.0049 epochs, not 0.00).
fn passes(x: f64) -> String {
    if x > 0.0 && x < 0.1 {
        format!("{x:.4}")
    } else {
        format!("{x:.2}")
    }
}

/// The resolved plan of `exp`, printed before training: sizes and schedule derived from the
/// config (nothing here is written back into it).
pub fn describe_plan(exp: &Experiment, data: &TrainingData) -> String {
    let n = data.num_train_identities();
    let instances = data.num_train_instances();
    let t = &exp.train;
    let per_step = t.loaders.batch_size();
    let epochs = (t.steps * per_step) as f64 / instances as f64;
    let id_passes = (t.steps * t.loaders.identities) as f64 / n as f64;
    let milestones: Vec<String> = t
        .milestones
        .iter()
        .map(|m| format!("{}", (m * t.steps as f32).round() as usize))
        .collect();
    let head = exp.head.describe(n);
    let held_out = match (&exp.data, &exp.images) {
        (Some(d), _) => format!(
            "{} held-out identities × {} instances",
            d.eval_identities, d.eval_instances
        ),
        (None, Some(i)) => format!(
            "{} held-out identities × {} images",
            i.eval_identities,
            i.eval_instances
                .map_or_else(|| "all their".to_string(), |n| format!("≤ {n}"))
        ),
        (None, None) => String::new(),
    };
    format!(
        "{}\n{head}\n{} training instances; {per_step} samples per step ({} identity pairs + {} \
         instances); {} steps = {} epochs ({} identity passes)\n\
         lr {} (warm-up {} steps), ×{} at steps [{}]; {held_out}",
        data.describe(),
        instances,
        t.loaders.identities,
        t.loaders.instances,
        t.steps,
        passes(epochs),
        passes(id_passes),
        t.lr,
        t.warmup_steps,
        t.decay,
        milestones.join(", "),
    )
}

/// The progress bar of a training loop over `steps` steps (hidden unless `show`).
pub(crate) fn step_bar(name: &str, steps: usize, show: bool) -> ProgressBar {
    let bar = if show {
        ProgressBar::new(steps as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps  {msg}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar
}

struct TimeSteps<'a> {
    exp: &'a Experiment,
    warmup: usize,
    steps: usize,
    inputs: InputStaging,
}

impl TrainerTask for TimeSteps<'_> {
    type Output = StepTimes;

    fn run<A: Network<E, D>, const E: usize, D: Device<f32>, B: Backend>(
        self,
        mut trainer: Trainer<A, E, D, B>,
        mut data: TrainingData,
    ) -> Result<StepTimes> {
        let lr = self.exp.train.lr;
        let total = self.warmup + self.steps;
        let samples = (total * self.exp.train.loaders.batch_size()) as u64;
        let feed = DeviceFeed::new(self.inputs, &data, trainer.device(), A::INPUT_LEN, samples)?;
        let mut seconds = Vec::with_capacity(self.steps);
        for i in 0..total {
            if i == self.warmup {
                crate::traffic::take();
            }
            let t0 = Instant::now();
            feed.step(&mut data, &mut trainer, lr)?;
            if i >= self.warmup {
                seconds.push(t0.elapsed().as_secs_f64());
            }
        }
        Ok(StepTimes {
            seconds,
            traffic: crate::traffic::take().per(self.steps as u64),
            resident_bytes: feed.resident_bytes(),
            head_state_bytes: trainer.head().state_bytes(),
        })
    }
}

struct Run<'a> {
    exp: &'a Experiment,
    opts: &'a RunOptions,
}

impl TrainerTask for Run<'_> {
    type Output = RunOutcome;

    fn run<A: Network<E, D>, const E: usize, D: Device<f32>, B: Backend>(
        self,
        mut trainer: Trainer<A, E, D, B>,
        mut data: TrainingData,
    ) -> Result<RunOutcome> {
        let (exp, opts) = (self.exp, self.opts);
        let start = Instant::now();
        let id = run_id(exp);
        if opts.plan {
            eprintln!("{}", describe_plan(exp, &data));
        }
        let steps = exp.train.steps;
        let samples_per_step = exp.train.loaders.batch_size();
        let ckpt_path = opts
            .checkpoint
            .as_ref()
            .map(|c| checkpoint_path(&c.dir, &id));
        let mut step_times = Vec::with_capacity(steps);
        let mut losses = Vec::with_capacity(steps);
        let mut earlier_s = 0.0; // wall seconds before the checkpoint resumed from
        let mut first = 0;
        if let (Some(path), Some(c)) = (&ckpt_path, &opts.checkpoint) {
            if c.resume && path.exists() {
                let ckpt = Checkpoint::read_for(path, &id)?;
                trainer.load_state(&ckpt.trainer)?;
                data.restore(&ckpt.loader, ckpt.step)?;
                (first, earlier_s) = (ckpt.step, ckpt.elapsed_s);
                (losses, step_times) = (ckpt.losses, ckpt.step_times);
                if opts.progress {
                    eprintln!(
                        "{id}: resumed at step {first} of {steps} from {}",
                        path.display()
                    );
                }
            }
        }
        let save = |trainer: &Trainer<A, E, D, B>,
                    data: &TrainingData,
                    step: usize,
                    losses: &[f64],
                    step_times: &[f64]|
         -> Result<PathBuf> {
            let path = ckpt_path.clone().expect("checkpoint options are set");
            let trainer = crate::traffic::uncounted(|| trainer.save_state())?;
            Checkpoint {
                run_id: id.clone(),
                step,
                elapsed_s: earlier_s + start.elapsed().as_secs_f64(),
                losses: losses.to_vec(),
                step_times: step_times.to_vec(),
                loader: data.state(),
                trainer,
            }
            .write_atomic(&path)?;
            Ok(path)
        };
        let samples = (steps * samples_per_step) as u64;
        let staged = Instant::now();
        let feed = DeviceFeed::new(opts.inputs, &data, trainer.device(), A::INPUT_LEN, samples)?;
        if let (Some(bytes), true) = (feed.resident_bytes(), opts.progress) {
            eprintln!(
                "{id}: training set kept on the device: {} in {:.1} s",
                crate::report::tables::human_bytes(bytes),
                staged.elapsed().as_secs_f64()
            );
        }
        let bar = step_bar(&exp.name, steps, opts.progress);
        bar.set_position(first as u64);
        let mut last_save = Instant::now();
        let mut failure = None;
        crate::traffic::take();
        for step in first..steps {
            if opts.stop_after == Some(step) {
                bar.finish_and_clear();
                let checkpoint = save(&trainer, &data, step, &losses, &step_times)?;
                return Ok(RunOutcome::Stopped { step, checkpoint });
            }
            let t0 = Instant::now();
            let report = feed.step(&mut data, &mut trainer, exp.train.lr_at(step))?;
            step_times.push(t0.elapsed().as_secs_f64());
            let loss = report.loss.total();
            if !loss.is_finite() {
                failure = Some(format!("non-finite loss {loss} at step {step}"));
                break;
            }
            losses.push(loss);
            if step % 10 == 0 || step + 1 == steps {
                let recent = &step_times[step_times.len().saturating_sub(20)..];
                let rate =
                    samples_per_step as f64 * recent.len() as f64 / recent.iter().sum::<f64>();
                bar.set_message(format!("loss {loss:.4}  {rate:.0} samples/s"));
            }
            bar.inc(1);
            if let Some(c) = &opts.checkpoint {
                if last_save.elapsed() >= c.every && step + 1 < steps {
                    save(&trainer, &data, step + 1, &losses, &step_times)?;
                    last_save = Instant::now();
                }
            }
        }
        bar.finish_and_clear();
        let trained_here = (losses.len() + failure.is_some() as usize).saturating_sub(first);
        let traffic = crate::traffic::take().per(trained_here as u64);
        if let Some(path) = &opts.export_probe {
            trainer.export_probe(path)?;
        }
        let train_time: f64 = step_times.iter().sum();
        let median_step_ms = median(&mut step_times.clone()) * 1e3;
        let tail = &losses[losses.len() - (losses.len() / 10).max(1).min(losses.len())..];
        let final_loss = if tail.is_empty() {
            f64::NAN
        } else {
            tail.iter().sum::<f64>() / tail.len() as f64
        };
        let (status, metrics, pair_list) = match failure {
            Some(why) => (RunStatus::Failed(why), None, None),
            None => {
                let (x, labels) = data.split_set(exp.eval.split)?;
                let emb = trainer.embed(&x);
                let metrics = evaluate(&emb, E, &labels, &exp.eval, exp.seed);
                (RunStatus::Ok, Some(metrics), pair_list(exp, &trainer)?)
            }
        };
        let record = RunRecord {
            run_id: id,
            experiment: exp.clone(),
            status,
            metrics,
            wall_time_s: earlier_s + start.elapsed().as_secs_f64(),
            median_step_ms,
            samples_per_s: samples_per_step as f64 * step_times.len() as f64
                / train_time.max(1e-12),
            peak_memory_bytes: peak_memory_bytes(),
            head_state_bytes: trainer.state_bytes(),
            final_loss,
            code_revision: code_revision(),
            machine: machine_description(exp.device),
            train_identities: exp.images.as_ref().map(|_| data.num_train_identities()),
            pair_list,
            traffic_per_step: (trained_here > 0).then_some(traffic),
            resident_input_bytes: feed.resident_bytes(),
        };
        // The run has its result (a diverged run would diverge again): the checkpoint has served.
        if let Some(path) = &ckpt_path {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(path, e))
                }
                _ => {}
            }
        }
        Ok(RunOutcome::Finished(record))
    }
}

/// The experiment's pair-list benchmark scored with the trained network, if it names one.
fn pair_list<A: Network<E, D>, const E: usize, D: Device<f32>, B: Backend>(
    exp: &Experiment,
    trainer: &Trainer<A, E, D, B>,
) -> Result<Option<PairListMetrics>> {
    let (Some(cfg), BackboneInput::Images(channels)) = (&exp.images, exp.backbone.input()) else {
        return Ok(None);
    };
    let Some((images, pairs)) = cfg.open_pairs(channels)? else {
        return Ok(None);
    };
    evaluate_pair_list(&pairs, &images, exp.eval.folds, E, &|x| trainer.embed(x)).map(Some)
}

fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn machine_description(device: DeviceChoice) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{} {}, {cores} cores, device {device}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_keep_small_fractions_visible() {
        assert_eq!(passes(0.0), "0.00");
        assert_eq!(passes(0.00486), "0.0049");
        assert_eq!(passes(12.2249), "12.22");
    }
}
