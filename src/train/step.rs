//! The training step as library API: a [`Trainer`] holds the probe network, the head's second
//! network (F²C's EMA gallery, DCQ's momentum key encoder), the head and the optimiser, and takes
//! one step on a batch the caller provides — from the dual loaders ([`crate::train::run`]) or from
//! a researcher's own data.
//!
//! The step is written out in full, dfdx style: forward on a traced input → the second network
//! moved by EMA and run on the same batch without a tape → the head's loss and its gradient with
//! respect to the L2-normalised probe embeddings → back-propagation of that gradient through the
//! probe net (as the gradient of Σ emb ⊙ grad) → optimiser update → zero grads.
//!
//! Backbones are compile-time types and devices are types, so code that needs a trainer for an
//! experiment implements [`TrainerTask`] and calls [`with_trainer`], which picks the types once
//! for every caller (the run, the benchmark).

use dfdx::prelude::*;

use crate::data::loaders::{split_probe_gallery, Batch};
use crate::data::TrainingData;
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::heads::backend::{Backend, CpuBackend, LossParts, Metered, SgdParams};
use crate::heads::{ClassifierHead, Halves, HeadState, HeadStats, StepInput};
use crate::nets::gallery::Gallery;
use crate::nets::network::{
    download, upload_rows, Backbone, IResNet18Arch, MlpArch, Network, Rows, TinyArch,
};
use crate::nets::params::{export_params, import_params, ParamTensor};
use crate::train::schedule::TrainConfig;
use crate::train::sgd::{MomentumSgd, SgdRule};
use crate::Experiment;

/// What one training step reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The head's loss parts.
    pub loss: LossParts,
    /// The head's statistics (e.g. F²C's pool hit rate).
    pub stats: HeadStats,
}

/// What a trainer carries from one step to the next, on the host: enough to continue exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState {
    /// The probe net's parameters.
    pub probe: Vec<ParamTensor>,
    /// The optimiser's velocity, one tensor per probe parameter.
    pub velocity: Vec<ParamTensor>,
    /// The second network's parameters, when the head has one.
    pub second: Option<Vec<ParamTensor>>,
    /// The head's state.
    pub head: HeadState,
}

/// The networks, head and optimiser of one experiment.
///
/// `A` is the architecture ([`Network`]), `E` its embedding dimension.
pub struct Trainer<A: Network<E, D>, const E: usize, D: Device<f32>, B: Backend> {
    dev: D,
    train: TrainConfig,
    probe: A::Net,
    second: Option<Gallery<A::Net>>,
    evaluate_second: bool,
    head: Box<dyn ClassifierHead<B>>,
    opt: MomentumSgd<A::Net>,
    grads: Option<Gradients<f32, D>>,
}

impl<A: Network<E, D>, const E: usize, D: Device<f32>, B: Backend> Trainer<A, E, D, B> {
    /// The probe net (initialised from `dev`'s seeded generator), the head of `exp` built for its
    /// `classes` training identities on `be`, and the second network when the head has one.
    pub fn new(exp: &Experiment, classes: usize, dev: D, be: B) -> Result<Self> {
        let probe = A::build(&dev);
        let head = exp.head.build(be, classes, E, exp.seed.wrapping_add(2))?;
        Ok(Self::from_parts(exp, dev, probe, head))
    }

    /// A trainer of `exp` with a head built by the caller (e.g. an F²C head whose pool was
    /// filled beforehand); the head must be of the method `exp.head` names.
    pub fn with_head(exp: &Experiment, dev: D, head: Box<dyn ClassifierHead<B>>) -> Self {
        let probe = A::build(&dev);
        Self::from_parts(exp, dev, probe, head)
    }

    fn from_parts(
        exp: &Experiment,
        dev: D,
        probe: A::Net,
        head: Box<dyn ClassifierHead<B>>,
    ) -> Self {
        let t = &exp.train;
        let opt = MomentumSgd::new(
            &probe,
            SgdRule {
                momentum: t.momentum,
                nesterov: t.nesterov,
                weight_decay: t.weight_decay,
            },
        );
        let second = exp.head.second_net();
        Trainer {
            grads: Some(probe.alloc_grads()),
            second: second.map(|s| Gallery::new(&probe, s.momentum)),
            evaluate_second: second.is_some_and(|s| s.evaluated),
            train: t.clone(),
            dev,
            probe,
            head,
            opt,
        }
    }

    /// One optimiser step at learning rate `lr` on `batch` (rows: identity pairs first, then
    /// instances, as [`Batch`] documents), its inputs uploaded once for both networks.
    pub fn step(&mut self, batch: &Batch, lr: f32) -> Result<StepReport> {
        let x = upload_rows(&self.dev, &batch.inputs, A::INPUT_LEN);
        self.step_on(x, batch, lr)
    }

    /// [`Trainer::step`] on inputs already on the device: `x` holds the rows of `batch`, whose
    /// `inputs` are not read (e.g. rows picked from a training set kept on the device).
    pub fn step_on(&mut self, x: Rows<D>, batch: &Batch, lr: f32) -> Result<StepReport> {
        assert_eq!(
            *x.shape(),
            (batch.len(), A::INPUT_LEN),
            "the device rows do not match the batch"
        );
        let t = &self.train;
        let b = batch.labels.len();
        let sgd = SgdParams {
            lr,
            momentum: t.momentum,
            weight_decay: t.weight_decay,
            nesterov: t.nesterov,
        };
        let halves = if self.second.is_some() {
            let (a, b) = split_probe_gallery(batch);
            Halves { a, b }
        } else {
            Halves::default()
        };

        // Forward through the probe net on a traced input.
        let grads = self
            .grads
            .take()
            .expect("gradients are returned every step");
        let emb = A::forward_traced(&mut self.probe, x.clone(), grads); // (B, E)
        let emb_host = download(&emb);

        // The second network follows the probe, then embeds the same batch without a tape.
        let gallery = match &mut self.second {
            Some(g) => {
                g.update::<D>(&self.probe);
                Some(A::embed_second(&mut g.net, x))
            }
            None => None,
        };

        // The head: loss and dL/d(emb).
        let out = self.head.step(&StepInput {
            probe: &emb_host,
            gallery: gallery.as_deref(),
            labels: &batch.labels,
            halves: &halves,
            sgd: &sgd,
        })?;

        // Back-propagate the head's gradient through the probe net: d(Σ emb ⊙ g)/d(emb) = g.
        crate::traffic::to_device(4 * out.grad.len());
        let g = self.dev.tensor_from_vec(out.grad, (b, Const::<E>));
        let mut grads = (emb * g).sum().backward();
        self.opt.update(&mut self.probe, &grads, lr)?;
        self.probe.zero_grads(&mut grads);
        self.grads = Some(grads);
        Ok(StepReport {
            loss: out.loss,
            stats: out.stats,
        })
    }

    /// L2-normalised embeddings of `x` (row-major, `A::INPUT_LEN` floats per row) by the network that is the
    /// finished model: the probe, or DCQ's key encoder as its authors evaluate.
    pub fn embed(&self, x: &[f32]) -> Vec<f32> {
        match (&self.second, self.evaluate_second) {
            (Some(g), true) => A::embed(&g.net, &self.dev, x),
            _ => A::embed(&self.probe, &self.dev, x),
        }
    }

    /// The probe network.
    pub fn probe(&self) -> &A::Net {
        &self.probe
    }

    /// The probe network, mutably (e.g. to load weights).
    pub fn probe_mut(&mut self) -> &mut A::Net {
        &mut self.probe
    }

    /// The second network (F²C's gallery, DCQ's key encoder), if the head has one.
    pub fn second_net(&self) -> Option<&A::Net> {
        self.second.as_ref().map(|g| &g.net)
    }

    /// The head.
    pub fn head(&self) -> &dyn ClassifierHead<B> {
        self.head.as_ref()
    }

    /// The head, mutably.
    pub fn head_mut(&mut self) -> &mut dyn ClassifierHead<B> {
        self.head.as_mut()
    }

    /// The head as its concrete type, e.g. `head_as::<F2cHead<CpuBackend>>()`.
    pub fn head_as<T: 'static>(&self) -> Option<&T> {
        self.head.as_any().downcast_ref()
    }

    /// The device the networks live on.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The state between steps (see [`TrainerState`]).
    pub fn save_state(&self) -> Result<TrainerState> {
        Ok(TrainerState {
            probe: export_params(&self.probe),
            velocity: export_params(self.opt.velocity()),
            second: self.second.as_ref().map(|g| export_params(&g.net)),
            head: self.head.save_state()?,
        })
    }

    /// Puts back a state [`Trainer::save_state`] gave, of a trainer of the same experiment.
    pub fn load_state(&mut self, state: &TrainerState) -> Result<()> {
        match (&mut self.second, &state.second) {
            (Some(g), Some(params)) => import_params(&mut g.net, params)?,
            (None, None) => {}
            (mine, _) => {
                return Err(Error::Other(format!(
                    "trainer state: {} a second network, this trainer {}",
                    if state.second.is_some() {
                        "it has"
                    } else {
                        "it lacks"
                    },
                    if mine.is_some() {
                        "has one"
                    } else {
                        "has none"
                    }
                )))
            }
        }
        import_params(&mut self.probe, &state.probe)?;
        import_params(self.opt.velocity_mut(), &state.velocity)?;
        self.head.load_state(&state.head)
    }

    /// Writes the probe network as safetensors, tensors named by dfdx's field paths (for an MLP
    /// `0.weight` (H, INPUT_DIM), `0.bias` (H), `2.weight`, `2.bias`, `4.weight` (E, H),
    /// `4.bias` (E); a CNN's batch-norm running statistics included), f32 little-endian.
    pub fn export_probe(&self, path: &std::path::Path) -> Result<()> {
        self.probe
            .save_safetensors(path)
            .map_err(|e| Error::Other(format!("{}: writing safetensors: {e}", path.display())))
    }

    /// Bytes of method state beside the probe: the head's, plus the second network's parameters.
    pub fn state_bytes(&self) -> u64 {
        let second = self
            .second
            .as_ref()
            .map_or(0, |g| 4 * g.net.num_trainable_params() as u64);
        self.head.state_bytes() + second
    }
}

/// Work that needs the [`Trainer`] of an experiment, whatever its backbone and device.
pub trait TrainerTask {
    /// What the work returns.
    type Output;

    /// Does the work with the freshly built trainer of the experiment and its data, opened once
    /// (an image set is read from disk once, for the trainer's N and for the work).
    fn run<A: Network<E, D>, const E: usize, D: Device<f32>, B: Backend>(
        self,
        trainer: Trainer<A, E, D, B>,
        data: TrainingData,
    ) -> Result<Self::Output>;
}

/// Opens the data of `exp`, builds its trainer on its device with its backbone and hands both to
/// `task`.
pub fn with_trainer<T: TrainerTask>(exp: &Experiment, task: T) -> Result<T::Output> {
    crate::device::check_available(exp.device)?;
    let data = TrainingData::new(exp)?;
    match exp.device {
        DeviceChoice::Cpu => by_backbone(
            exp,
            data,
            Cpu::seed_from_u64(exp.seed),
            Metered(CpuBackend),
            task,
        ),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(ordinal) => {
            // The backend first: it reports a missing driver or GPU as an error, where cudarc's
            // device constructor inside dfdx would panic.
            let be = crate::heads::backend::CudaBackend::new(ordinal)?;
            let dev = Cuda::try_build(ordinal, exp.seed)
                .map_err(|e| Error::Device(format!("cuda:{ordinal} could not be opened: {e:?}")))?;
            by_backbone(exp, data, dev, Metered(be), task)
        }
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => Err(Error::Device(
            "this build has no CUDA support; rebuild with `--features cuda` (scripts/build-cuda.sh)"
                .into(),
        )),
    }
}

fn by_backbone<D: Device<f32>, B: Backend, T: TrainerTask>(
    exp: &Experiment,
    data: TrainingData,
    dev: D,
    be: B,
    task: T,
) -> Result<T::Output> {
    let n = data.num_train_identities();
    if exp.images.is_some() {
        // The checks that need N ran at load time for synthetic data; an image set's N is known
        // only now.
        exp.check_classes(n).map_err(|e| {
            Error::Other(format!(
                "experiment `{}` with {n} training identities: {}: {}",
                exp.name, e.field, e.msg
            ))
        })?;
    }
    match exp.backbone {
        Backbone::Mlp256x64 => task.run(
            Trainer::<MlpArch<256, 64>, 64, D, B>::new(exp, n, dev, be)?,
            data,
        ),
        Backbone::Mlp512x128 => task.run(
            Trainer::<MlpArch<512, 128>, 128, D, B>::new(exp, n, dev, be)?,
            data,
        ),
        Backbone::TinyIResNet => {
            task.run(Trainer::<TinyArch, 64, D, B>::new(exp, n, dev, be)?, data)
        }
        Backbone::IResNet18 => task.run(
            Trainer::<IResNet18Arch, 512, D, B>::new(exp, n, dev, be)?,
            data,
        ),
    }
}
