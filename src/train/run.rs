//! One experiment end to end: build the data, the probe (and for F²C the gallery) network and the
//! head; train with a progress bar; evaluate open-set on the held-out identities; return the record.
//!
//! The training step is written out in full, dfdx style: forward on a traced input → the head's
//! loss and its gradient with respect to the L2-normalised embeddings → back-propagation of that
//! gradient through the probe net (as the gradient of Σ emb ⊙ grad) → optimiser update → zero
//! grads. For F²C the gallery net is first moved by EMA and embeds the same batch without a tape.

use std::time::Instant;

use dfdx::optim::{Momentum, Sgd, SgdConfig, WeightDecay};
use dfdx::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use super::schedule::TrainConfig;
use crate::data::loaders::{split_probe_gallery, Batch, DualLoader};
use crate::data::synthetic::SyntheticFaces;
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::eval::protocol::evaluate;
use crate::heads::backend::{Backend, CpuBackend, LossParts, SgdParams};
use crate::heads::f2c::F2cHead;
use crate::heads::full_fc::FullFc;
use crate::heads::partial_fc::PartialFc;
use crate::heads::HeadConfig;
use crate::nets::gallery::Gallery;
use crate::nets::probe::{embed, inputs, l2_normalize, Backbone, Inputs, Net};
use crate::results::record::{code_revision, peak_memory_bytes, run_id};
use crate::results::{RunRecord, RunStatus};
use crate::Experiment;

/// Options of a run that are not part of the experiment (they do not change its numbers).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Trains, evaluates and returns the record of `exp`. A diverged run (non-finite loss) is
/// returned as `Ok` with `RunStatus::Failed`; `Err` is for problems that are not the run's result
/// (unavailable device, I/O).
pub fn run_experiment(exp: &Experiment, opts: &RunOptions) -> Result<RunRecord> {
    crate::device::check_available(exp.device)?;
    match exp.device {
        DeviceChoice::Cpu => with_backbone(exp, opts, Cpu::seed_from_u64(exp.seed), CpuBackend),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(ordinal) => {
            // The backend first: it reports a missing driver or GPU as an error, where cudarc's
            // device constructor inside dfdx would panic.
            let be = crate::heads::backend_cuda::CudaBackend::new(ordinal)?;
            let dev = Cuda::try_build(ordinal, exp.seed)
                .map_err(|e| Error::Device(format!("cuda:{ordinal} could not be opened: {e:?}")))?;
            with_backbone(exp, opts, dev, be)
        }
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => unreachable!("check_available rejects cuda without the feature"),
    }
}

fn with_backbone<D: Device<f32>, B: Backend>(
    exp: &Experiment,
    opts: &RunOptions,
    dev: D,
    be: B,
) -> Result<RunRecord> {
    match exp.backbone {
        Backbone::Mlp256x64 => Trainer::<256, 64, D, B>::new(exp, dev, be)?.run(opts),
        Backbone::Mlp512x128 => Trainer::<512, 128, D, B>::new(exp, dev, be)?.run(opts),
    }
}

/// Wall seconds of each of `steps` training steps of `exp` (data, probe net, gallery net and head;
/// no evaluation) after `warmup` untimed ones, on the CPU: the benchmark's whole-step throughput.
pub fn time_training_steps(exp: &Experiment, warmup: usize, steps: usize) -> Result<Vec<f64>> {
    if exp.device != DeviceChoice::Cpu {
        return Err(Error::Device(format!(
            "time_training_steps runs on the cpu only, got `{}`; use `--device cpu`",
            exp.device
        )));
    }
    let dev = Cpu::seed_from_u64(exp.seed);
    match exp.backbone {
        Backbone::Mlp256x64 => Trainer::<256, 64, Cpu, CpuBackend>::new(exp, dev, CpuBackend)?
            .time_steps(warmup, steps),
        Backbone::Mlp512x128 => Trainer::<512, 128, Cpu, CpuBackend>::new(exp, dev, CpuBackend)?
            .time_steps(warmup, steps),
    }
}

/// The head being trained, with its state.
enum Head<B: Backend> {
    Fc(FullFc<B>),
    Pfc(PartialFc<B>),
    F2c(F2cHead<B>),
}

/// What one training step reports.
struct StepReport {
    loss: LossParts,
}

/// Everything one run holds.
struct Trainer<'a, const H: usize, const E: usize, D: Device<f32>, B: Backend> {
    exp: &'a Experiment,
    dev: D,
    faces: SyntheticFaces,
    loader: DualLoader,
    probe: Net<H, E, D>,
    gallery: Option<Gallery<Net<H, E, D>>>,
    head: Head<B>,
    opt: Sgd<Net<H, E, D>, f32, D>,
    grads: Option<Gradients<f32, D>>,
    batch: Batch,
}

impl<'a, const H: usize, const E: usize, D: Device<f32>, B: Backend> Trainer<'a, H, E, D, B> {
    fn new(exp: &'a Experiment, dev: D, be: B) -> Result<Self> {
        let faces = SyntheticFaces::new(&exp.data, exp.seed);
        let n = faces.num_train_identities();
        let loader = DualLoader::new(&faces, exp.train.loaders, exp.seed.wrapping_add(1));
        let probe = <Net<H, E, D> as BuildModule<D, f32>>::build(&dev);
        let head_seed = exp.seed.wrapping_add(2);
        let (head, gallery) = match &exp.head {
            HeadConfig::Fc { margin, scale } => (
                Head::Fc(FullFc::new(be, n, E, *margin, *scale, head_seed)?),
                None,
            ),
            HeadConfig::PartialFc {
                margin,
                scale,
                sample_rate,
            } => (
                Head::Pfc(PartialFc::new(
                    be,
                    n,
                    E,
                    *margin,
                    *scale,
                    *sample_rate,
                    head_seed,
                )?),
                None,
            ),
            HeadConfig::F2c(cfg) => (
                Head::F2c(F2cHead::new(be, cfg, n, E, head_seed)?),
                Some(Gallery::new(&probe, cfg.ema_momentum)),
            ),
        };
        let t = &exp.train;
        let opt = Sgd::new(
            &probe,
            SgdConfig {
                lr: t.lr as f64,
                momentum: Some(if t.nesterov {
                    Momentum::Nesterov(t.momentum as f64)
                } else {
                    Momentum::Classic(t.momentum as f64)
                }),
                weight_decay: Some(WeightDecay::L2(t.weight_decay as f64)),
            },
        );
        let grads = Some(probe.alloc_grads());
        Ok(Trainer {
            exp,
            dev,
            faces,
            loader,
            probe,
            gallery,
            head,
            opt,
            grads,
            batch: Batch::default(),
        })
    }

    fn head_state_bytes(&self) -> u64 {
        match &self.head {
            Head::Fc(h) => h.state_bytes(),
            Head::Pfc(h) => h.state_bytes(),
            Head::F2c(h) => h.pool_bytes() + 4 * self.probe.num_trainable_params() as u64,
        }
    }

    /// One optimiser step at learning rate `lr`.
    fn step(&mut self, lr: f32) -> Result<StepReport> {
        let t: &TrainConfig = &self.exp.train;
        self.loader.next_batch(&self.faces, &mut self.batch);
        let b = self.batch.labels.len();
        let sgd = SgdParams {
            lr,
            momentum: t.momentum,
            weight_decay: t.weight_decay,
            nesterov: t.nesterov,
        };
        self.opt.cfg.lr = lr as f64;

        // Forward through the probe net on a traced input.
        let grads = self
            .grads
            .take()
            .expect("gradients are returned every step");
        let x: Inputs<D> = inputs(&self.dev, &self.batch.inputs);
        let emb = l2_normalize(self.probe.forward_mut(x.traced(grads))); // (B, E)
        let emb_host = emb.as_vec();

        // The head: loss and dL/d(emb).
        let (loss, grad) = match &mut self.head {
            Head::Fc(h) => {
                let out = h.step(&emb_host, &self.batch.labels, &sgd)?;
                (out.loss, out.grad)
            }
            Head::Pfc(h) => {
                let out = h.step(&emb_host, &self.batch.labels, &sgd)?;
                (out.loss, out.grad)
            }
            Head::F2c(h) => {
                let gallery = self.gallery.as_mut().expect("F²C has a gallery net");
                gallery.update::<D>(&self.probe);
                let gal = embed::<H, E, D>(&gallery.net, &self.dev, &self.batch.inputs);
                let (a, bh) = split_probe_gallery(&self.batch);
                let out = h.step(&emb_host, &gal, &self.batch.labels, &a, &bh)?;
                (out.loss, out.grad)
            }
        };

        // Back-propagate the head's gradient through the probe net: d(Σ emb ⊙ g)/d(emb) = g.
        let g = self.dev.tensor_from_vec(grad, (b, Const::<E>));
        let mut grads = (emb * g).sum().backward();
        self.opt
            .update(&mut self.probe, &grads)
            .map_err(|e| Error::Other(format!("optimiser: {e:?}")))?;
        self.probe.zero_grads(&mut grads);
        self.grads = Some(grads);
        Ok(StepReport { loss })
    }

    /// Seconds of each of `steps` steps after `warmup` untimed ones, at the peak learning rate.
    fn time_steps(mut self, warmup: usize, steps: usize) -> Result<Vec<f64>> {
        let lr = self.exp.train.lr;
        let mut times = Vec::with_capacity(steps);
        for i in 0..warmup + steps {
            let t0 = Instant::now();
            self.step(lr)?;
            if i >= warmup {
                times.push(t0.elapsed().as_secs_f64());
            }
        }
        Ok(times)
    }

    fn run(mut self, opts: &RunOptions) -> Result<RunRecord> {
        let exp = self.exp;
        let start = Instant::now();
        let steps = exp.train.steps;
        let samples_per_step = exp.train.loaders.batch_size();
        let bar = if opts.progress {
            ProgressBar::new(steps as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps  {msg}  ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(exp.name.clone());
        let mut step_times = Vec::with_capacity(steps);
        let mut losses = Vec::with_capacity(steps);
        let mut failure = None;
        for step in 0..steps {
            let t0 = Instant::now();
            let report = self.step(exp.train.lr_at(step))?;
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
        }
        bar.finish_and_clear();
        let train_time: f64 = step_times.iter().sum();
        let median_step_ms = median(&mut step_times.clone()) * 1e3;
        let tail = &losses[losses.len() - (losses.len() / 10).max(1).min(losses.len())..];
        let final_loss = if tail.is_empty() {
            f64::NAN
        } else {
            tail.iter().sum::<f64>() / tail.len() as f64
        };
        let (status, metrics) = match failure {
            Some(why) => (RunStatus::Failed(why), None),
            None => {
                let (x, labels) = self.faces.eval_set();
                let emb = embed::<H, E, D>(&self.probe, &self.dev, &x);
                (
                    RunStatus::Ok,
                    Some(evaluate(&emb, E, &labels, &exp.eval, exp.seed)),
                )
            }
        };
        Ok(RunRecord {
            run_id: run_id(exp),
            experiment: exp.clone(),
            status,
            metrics,
            wall_time_s: start.elapsed().as_secs_f64(),
            median_step_ms,
            samples_per_s: samples_per_step as f64 * step_times.len() as f64
                / train_time.max(1e-12),
            peak_memory_bytes: peak_memory_bytes(),
            head_state_bytes: self.head_state_bytes(),
            final_loss,
            code_revision: code_revision(),
            machine: machine_description(exp.device),
        })
    }
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
