//! Classification heads over L2-normalised embeddings: full FC, Partial FC, F²C's dynamic class
//! pool and DCQ's dynamic class queue, behind one interface ([`ClassifierHead`]): each head takes
//! the embeddings of a step ([`StepInput`]) and returns the loss and its gradient with respect to
//! the probe embeddings ([`StepOutput`]); the training step back-propagates that gradient into the
//! probe net. The trainer and the benchmark both build heads from a [`HeadConfig`] with
//! [`HeadConfig::build`], so they cannot disagree about what a head is.
//!
//! Everything the rest of the suite knows of one method lives in that method's file and is reached
//! through [`HeadConfig`] and [`Method`]: the plan's line ([`HeadConfig::describe`]), the run
//! summary's columns ([`HeadConfig::summary_columns`]) and the run's names ([`Method::run_name`],
//! [`Method::series_name`]), and what the head benchmark times and counts
//! ([`HeadConfig::bench_batch`], [`HeadConfig::cost`]), and its state's checkpoint layout
//! ([`HeadState::write`]). Other modules compare methods (the paper's claims set F²C against
//! FC) but never dispatch on one.
//!
//! Adding a head: its file here (the head and its config struct, implementing [`ClassifierHead`],
//! and the functions above), a [`HeadConfig`] variant and a [`Method`] variant; the compiler then
//! points at the matches in this file that need an arm, and nowhere else.

pub mod backend;
pub mod class_pool;
pub mod cost;
pub mod dcq;
pub mod f2c;
pub mod full_fc;
pub mod margin;
pub mod partial_fc;
pub mod pfc_sampler;
pub mod pool_loss;

use std::any::Any;

use serde::{Deserialize, Serialize};

use crate::binary::{Parsed, Reader, Writer};
use crate::data::loaders::LoaderConfig;
use crate::error::{FieldError, FieldResult, Result};
use backend::{Backend, LossParts, SgdParams};
use class_pool::Capacity;
pub use cost::StepCost;
pub use margin::Margin;
pub use partial_fc::CentreUpdate;

/// Which head an experiment trains, with that head's own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum HeadConfig {
    /// Full fully-connected margin softmax over all N training identities.
    Fc {
        /// Margin on the target cosine.
        margin: Margin,
        /// Logit scale s.
        scale: f32,
    },
    /// Partial FC (An et al.): all positive centres of the batch plus uniform negatives, r·N in all.
    PartialFc {
        /// Margin on the target cosine.
        margin: Margin,
        /// Logit scale s.
        scale: f32,
        /// Fraction r of the N centres used per step, in (0, 1].
        sample_rate: f32,
        /// Which centres step: only the sampled ones (the default, left out of experiment files
        /// and of run ids) or all N.
        #[serde(default, skip_serializing_if = "CentreUpdate::is_sampled_rows")]
        update: CentreUpdate,
    },
    /// F²C: EMA gallery net + dynamic class pool + positive/negative losses.
    F2c(f2c::F2cConfig),
    /// DCQ: momentum key encoder + FIFO queue of key features as the class weights.
    Dcq(dcq::DcqConfig),
}

/// The training method a head implements: the typed key of summaries, bench rows and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "fc")]
    Fc,
    #[serde(rename = "pfc")]
    PartialFc,
    #[serde(rename = "f2c")]
    F2c,
    #[serde(rename = "dcq")]
    Dcq,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 4] = [Method::Fc, Method::PartialFc, Method::F2c, Method::Dcq];

    /// Short name used in run ids, file names and CSV cells: `fc`, `pfc`, `f2c`, `dcq`.
    pub fn key(self) -> &'static str {
        match self {
            Method::Fc => "fc",
            Method::PartialFc => "pfc",
            Method::F2c => "f2c",
            Method::Dcq => "dcq",
        }
    }

    /// Readable name for tables and figures.
    pub fn label(self) -> &'static str {
        match self {
            Method::Fc => "Full FC",
            Method::PartialFc => "Partial FC",
            Method::F2c => "F²C",
            Method::Dcq => "DCQ",
        }
    }

    /// The name of a run of this method with the summary columns `cols`, in tables
    /// (`Partial FC r=0.1`, `F²C pool 10%, FIFO`) or short (`PFC 0.1`, `F²C 10 %`).
    pub fn run_name(self, cols: &HeadColumns, naming: Naming) -> String {
        match self {
            Method::Fc => full_fc::run_name(naming),
            Method::PartialFc => partial_fc::run_name(cols, naming),
            Method::F2c => f2c::run_name(cols, naming),
            Method::Dcq => dcq::run_name(cols, naming),
        }
    }

    /// The name of a head-benchmark series: the method, its size `param` (sample rate, pool or
    /// queue fraction) and, where the method has more than one, the form of its step `variant`
    /// ([`HeadConfig::bench_variant`]).
    pub fn series_name(self, variant: &str, param: f64) -> String {
        match self {
            Method::Fc => full_fc::series_name(),
            Method::PartialFc => partial_fc::series_name(variant, param),
            Method::F2c => f2c::series_name(variant, param),
            Method::Dcq => dcq::series_name(param),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.key() == s)
            .ok_or_else(|| {
                let keys: Vec<&str> = Method::ALL.iter().map(|m| m.key()).collect();
                format!("unknown method `{s}`: expected one of {}", keys.join(", "))
            })
    }
}

impl HeadConfig {
    /// The method this head trains.
    pub fn method(&self) -> Method {
        match self {
            HeadConfig::Fc { .. } => Method::Fc,
            HeadConfig::PartialFc { .. } => Method::PartialFc,
            HeadConfig::F2c(_) => Method::F2c,
            HeadConfig::Dcq(_) => Method::Dcq,
        }
    }

    /// The method's size parameter for `classes` identities: 1 for full FC, the sample rate r for
    /// Partial FC, the pool fraction Q/N for F²C and the queue fraction K/N for DCQ.
    pub fn size_fraction(&self, classes: usize) -> f64 {
        match self {
            HeadConfig::Fc { .. } => 1.0,
            // Through the decimal text so that 0.1f32 reads as 0.1, not 0.100000001.
            HeadConfig::PartialFc { sample_rate, .. } => {
                sample_rate.to_string().parse().unwrap_or(f64::NAN)
            }
            HeadConfig::F2c(f) => f.pool.capacity.fraction_of(classes),
            HeadConfig::Dcq(d) => d.queue.fraction_of(classes),
        }
    }

    /// The second network the head needs, if any: F²C's EMA gallery net, DCQ's momentum key
    /// encoder. Both follow the probe by g ← m·g + (1 − m)·p at the start of each step.
    pub fn second_net(&self) -> Option<SecondNet> {
        match self {
            HeadConfig::Fc { .. } | HeadConfig::PartialFc { .. } => None,
            HeadConfig::F2c(f) => Some(SecondNet {
                momentum: f.ema_momentum,
                evaluated: false,
            }),
            HeadConfig::Dcq(d) => Some(SecondNet {
                momentum: d.momentum,
                evaluated: true,
            }),
        }
    }

    /// Range checks of the head's own fields, in the context of the run (field paths relative to
    /// the head, e.g. `pool.capacity`).
    pub fn validate(&self, ctx: &HeadContext) -> FieldResult {
        let (margin, scale) = match self {
            HeadConfig::Fc { margin, scale } | HeadConfig::PartialFc { margin, scale, .. } => {
                (*margin, *scale)
            }
            HeadConfig::F2c(f) => (f.margin, f.scale),
            HeadConfig::Dcq(d) => (d.margin, d.scale),
        };
        margin.validate().map_err(|e| e.within("margin"))?;
        if !(scale > 0.0 && scale <= 128.0) {
            return Err(FieldError::new(
                "scale",
                format!("expected 0 < s ≤ 128 (F²C and CosFace 32, DCQ 50), got {scale}"),
            ));
        }
        match self {
            HeadConfig::Fc { .. } => Ok(()),
            HeadConfig::PartialFc { sample_rate, .. } => {
                if *sample_rate > 0.0 && *sample_rate <= 1.0 {
                    Ok(())
                } else {
                    Err(FieldError::new(
                        "sample_rate",
                        format!("expected a fraction in (0, 1], got {sample_rate}"),
                    ))
                }
            }
            HeadConfig::F2c(f) => f.validate(ctx),
            HeadConfig::Dcq(d) => d.validate(ctx),
        }
    }

    /// Checks of the loaders against what the head needs (paths relative to the loader config).
    pub fn check_loaders(&self, loaders: &LoaderConfig) -> FieldResult {
        match self {
            HeadConfig::Fc { .. } | HeadConfig::PartialFc { .. } => Ok(()),
            HeadConfig::F2c(_) if loaders.instances % 2 == 1 => Err(FieldError::new(
                "instances",
                format!(
                    "F²C splits instances between probe and gallery: use an even number, got {}",
                    loaders.instances
                ),
            )),
            HeadConfig::F2c(_) => Ok(()),
            HeadConfig::Dcq(_) if loaders.instances != 0 => Err(FieldError::new(
                "instances",
                format!(
                    "DCQ trains on query/key pairs of one identity, which only the identity loader \
                     yields: set instances to 0 (got {})",
                    loaders.instances
                ),
            )),
            HeadConfig::Dcq(_) if loaders.identities == 0 => Err(FieldError::new(
                "identities",
                "DCQ needs query/key pairs: set identities to at least 1",
            )),
            HeadConfig::Dcq(_) => Ok(()),
        }
    }

    /// The name of the variant, as written in experiment files (`Fc`, `PartialFc`, `F2c`, `Dcq`).
    pub fn variant_name(&self) -> &'static str {
        match self {
            HeadConfig::Fc { .. } => "Fc",
            HeadConfig::PartialFc { .. } => "PartialFc",
            HeadConfig::F2c(_) => "F2c",
            HeadConfig::Dcq(_) => "Dcq",
        }
    }

    /// The method's head with its authors' settings: CosFace(0.4) at s = 32 for FC (insightface's
    /// CosFace), Partial FC at r = 0.1, F²C's reference step with a 10 % pool and CosFace(0.5)
    /// (the authors' script), DCQ's CosFace(0.3) at s = 50 with momentum 0.999 and a 10 % queue.
    pub fn authors(method: Method) -> HeadConfig {
        match method {
            Method::Fc => HeadConfig::Fc {
                margin: Margin::CosFace(0.4),
                scale: 32.0,
            },
            Method::PartialFc => HeadConfig::PartialFc {
                margin: Margin::CosFace(0.4),
                scale: 32.0,
                sample_rate: 0.1,
                update: CentreUpdate::SampledRows,
            },
            Method::F2c => HeadConfig::F2c(f2c::F2cConfig {
                margin: Margin::CosFace(0.5),
                scale: 32.0,
                pool: class_pool::PoolConfig {
                    capacity: Capacity::Fraction(0.1),
                    rows: class_pool::Rows::Two,
                    eviction: class_pool::Eviction::Lru,
                },
                ema_momentum: 0.99,
                top_k: f2c::TopK::Auto,
                pool_eval: f2c::PoolEval::TwoRow,
                symmetric: true,
            }),
            Method::Dcq => HeadConfig::Dcq(dcq::DcqConfig {
                margin: Margin::CosFace(0.3),
                scale: 50.0,
                queue: Capacity::Fraction(0.1),
                momentum: 0.999,
            }),
        }
    }

    /// The plan's line for this head over `classes` training identities: its sizes as resolved
    /// (centres sampled, pool slots, queue entries) and its own settings.
    pub fn describe(&self, classes: usize) -> String {
        match self {
            HeadConfig::Fc { .. } => full_fc::describe(classes),
            HeadConfig::PartialFc {
                sample_rate,
                update,
                ..
            } => partial_fc::describe(*sample_rate, *update, classes),
            HeadConfig::F2c(f) => f.describe(classes),
            HeadConfig::Dcq(d) => d.describe(classes),
        }
    }

    /// The head's columns in a run summary, over `classes` training identities.
    pub fn summary_columns(&self, classes: usize) -> HeadColumns {
        match self {
            HeadConfig::Fc { .. } => HeadColumns::default(),
            HeadConfig::PartialFc {
                sample_rate,
                update,
                ..
            } => partial_fc::summary_columns(*sample_rate, *update),
            HeadConfig::F2c(f) => f.summary_columns(classes),
            HeadConfig::Dcq(d) => d.summary_columns(classes),
        }
    }

    /// The form of the step the head benchmark times: [`PEER_STEP`] where it is the step the
    /// PyTorch peer times, else the head's own name for it.
    pub fn bench_variant(&self) -> &'static str {
        match self {
            HeadConfig::Fc { .. } | HeadConfig::Dcq(_) => PEER_STEP,
            HeadConfig::PartialFc { update, .. } => partial_fc::bench_variant(*update),
            HeadConfig::F2c(f) => f.bench_variant(),
        }
    }

    /// How the head benchmark lays out a batch of `batch` samples with random labels for this
    /// head.
    pub fn bench_batch(&self, batch: usize) -> BenchBatch {
        match self {
            HeadConfig::Fc { .. } | HeadConfig::PartialFc { .. } => full_fc::bench_batch(batch),
            HeadConfig::F2c(f) => f.bench_batch(batch),
            HeadConfig::Dcq(_) => dcq::bench_batch(batch),
        }
    }

    /// Readies the head of a shipped experiment for the whole-training-step benchmark at `batch`
    /// samples per step, and returns the loaders it trains on there.
    pub fn resize_for_bench(&mut self, batch: usize) -> LoaderConfig {
        match self {
            HeadConfig::Fc { .. } | HeadConfig::PartialFc { .. } => {
                full_fc::bench_batch(batch).loaders
            }
            HeadConfig::F2c(f) => f.resize_for_bench(batch),
            HeadConfig::Dcq(_) => dcq::bench_batch(batch).loaders,
        }
    }

    /// The GEMMs and memory of one step at `classes` identities, dimension `dim` and `batch`
    /// samples, as the head benchmark counts them.
    pub fn cost(&self, classes: usize, dim: usize, batch: usize) -> StepCost {
        match self {
            HeadConfig::Fc { .. } => full_fc::cost(classes, dim, batch),
            HeadConfig::PartialFc { sample_rate, .. } => {
                partial_fc::cost(*sample_rate, classes, dim, batch)
            }
            HeadConfig::F2c(f) => f.cost(classes, dim, batch),
            HeadConfig::Dcq(d) => d.cost(classes, dim, batch),
        }
    }

    /// The head of this config for `classes` training identities of dimension `dim` on `be`;
    /// `seed` drives its initialisation and sampling.
    pub fn build<B: Backend>(
        &self,
        be: B,
        classes: usize,
        dim: usize,
        seed: u64,
    ) -> Result<Box<dyn ClassifierHead<B>>> {
        Ok(match self {
            HeadConfig::Fc { margin, scale } => Box::new(full_fc::FullFc::new(
                be, classes, dim, *margin, *scale, seed,
            )?),
            HeadConfig::PartialFc {
                margin,
                scale,
                sample_rate,
                update,
            } => Box::new(
                partial_fc::PartialFc::new(be, classes, dim, *margin, *scale, *sample_rate, seed)?
                    .with_update(*update),
            ),
            HeadConfig::F2c(cfg) => Box::new(f2c::F2cHead::new(be, cfg, classes, dim, seed)?),
            HeadConfig::Dcq(cfg) => Box::new(dcq::DcqHead::new(be, cfg, classes, dim, seed)?),
        })
    }
}

impl crate::config::sweep::Sweep for HeadConfig {
    fn set_path(&mut self, path: &str, text: &str) -> FieldResult {
        use crate::config::sweep::{parse_into, split, unknown};
        let (first, rest) = split(path);
        let not_here = unknown(path, &*self);
        let set = match (self, rest) {
            (HeadConfig::F2c(f), _) => return f.set_path(path, text),
            (HeadConfig::Dcq(d), _) => return d.set_path(path, text),
            (_, Some(_)) => return Err(not_here),
            (HeadConfig::Fc { margin, scale }, None) => match first {
                "margin" => parse_into(margin, text),
                "scale" => parse_into(scale, text),
                _ => return Err(not_here),
            },
            (
                HeadConfig::PartialFc {
                    margin,
                    scale,
                    sample_rate,
                    update,
                },
                None,
            ) => match first {
                "margin" => parse_into(margin, text),
                "scale" => parse_into(scale, text),
                "sample_rate" => parse_into(sample_rate, text),
                "update" => parse_into(update, text),
                _ => return Err(not_here),
            },
        };
        set.map_err(|e| e.within(first))
    }

    fn paths(&self) -> Vec<String> {
        match self {
            HeadConfig::Fc { .. } => vec!["margin".into(), "scale".into()],
            HeadConfig::PartialFc { .. } => {
                vec![
                    "margin".into(),
                    "scale".into(),
                    "sample_rate".into(),
                    "update".into(),
                ]
            }
            HeadConfig::F2c(f) => f.paths(),
            HeadConfig::Dcq(d) => d.paths(),
        }
    }
}

/// A head's columns in a run summary (`summary.csv`); `None` where they do not apply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeadColumns {
    /// Partial FC's sample rate.
    pub sample_rate: Option<f64>,
    /// F²C's pool or DCQ's queue, as a fraction of the training identities.
    pub pool_fraction: Option<f64>,
    /// F²C's gallery EMA momentum or DCQ's key-encoder momentum.
    pub ema_momentum: Option<f64>,
    /// F²C's pool rows per slot (1 or 2).
    pub pool_rows: Option<u8>,
    /// F²C's eviction policy (`lru` / `fifo`).
    pub eviction: Option<String>,
    /// Partial FC's centre update where every centre steps (`all`); empty for the default.
    pub centre_update: Option<String>,
}

/// Which name of a run [`Method::run_name`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// The tables' and figures' name, e.g. `Partial FC r=0.1`, `F²C pool 10%, 1 row/slot`.
    Table,
    /// The README's short name, e.g. `PFC 0.1`, `F²C 10 %`.
    Short,
}

/// [`HeadConfig::bench_variant`] of a head whose benchmarked step is the PyTorch peer's.
pub const PEER_STEP: &str = "peer";

/// How the head benchmark lays out one step's batch for a head ([`HeadConfig::bench_batch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchBatch {
    /// The loaders a training run with this batch would take, against which the case is
    /// validated. The first `identities` rows of half `a` and of half `b` are pairs: the
    /// benchmark gives `b[i]` the label of `a[i]`, as the identity loader would.
    pub loaders: LoaderConfig,
    /// The batch's halves.
    pub halves: Halves,
}

/// The second network of a head ([`HeadConfig::second_net`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondNet {
    /// EMA momentum m: g ← m·g + (1 − m)·p.
    pub momentum: f32,
    /// Whether the finished model is this network rather than the probe (DCQ's authors evaluate
    /// the key encoder; F²C's evaluate the probe).
    pub evaluated: bool,
}

/// What a head's validation needs to know about the rest of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadContext {
    /// Training identities N.
    pub classes: usize,
    /// Identity-loader items per step (each brings a pair of samples).
    pub pairs_per_step: usize,
    /// Instance-loader samples per step.
    pub instances_per_step: usize,
}

/// Which rows of a step's batch play which part: in F²C's step, half `a` is embedded by the probe
/// and half `b` by the gallery net (and then the reverse, with `symmetric`); in DCQ's, `a[i]` is a
/// query and `b[i]` its key, an instance of the same identity. FC and Partial FC use every row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Halves {
    pub a: Vec<usize>,
    pub b: Vec<usize>,
}

/// One step's input to a head. Rows are the batch's samples; embeddings are L2-normalised.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// (n, D) probe embeddings, row-major.
    pub probe: &'a [f32],
    /// (n, D) embeddings by the head's second network ([`HeadConfig::second_net`]); `None` for
    /// heads that have none.
    pub gallery: Option<&'a [f32]>,
    /// (n,) training labels in 0..N.
    pub labels: &'a [usize],
    /// The batch's halves.
    pub halves: &'a Halves,
    /// Optimiser settings for heads with trainable state (FC and Partial FC centres).
    pub sgd: &'a SgdParams,
}

impl<'a> StepInput<'a> {
    /// The input of a head with a second network, or an error naming the head that needs it.
    pub fn paired(&self, head: &str) -> Result<PairedInput<'a>> {
        let gallery = self.gallery.ok_or_else(|| {
            crate::error::Error::Other(format!(
                "the {head} head needs second-network embeddings in its step input"
            ))
        })?;
        Ok(PairedInput {
            probe: self.probe,
            gallery,
            labels: self.labels,
            halves: self.halves,
        })
    }
}

/// One step's input to a head with a second network (F²C, DCQ): [`StepInput`] with its gallery
/// embeddings present.
#[derive(Debug, Clone, Copy)]
pub struct PairedInput<'a> {
    /// (n, D) probe embeddings, row-major.
    pub probe: &'a [f32],
    /// (n, D) embeddings of the same rows by the second network.
    pub gallery: &'a [f32],
    /// (n,) training labels in 0..N.
    pub labels: &'a [usize],
    /// Which rows play which part.
    pub halves: &'a Halves,
}

impl<'a> PairedInput<'a> {
    /// Halves A and B.
    pub fn halves(&self) -> (&'a [usize], &'a [usize]) {
        (&self.halves.a, &self.halves.b)
    }
}

/// Rows `rows` of the (n, `dim`) row-major matrix `m`: (rows.len(), `dim`).
pub(crate) fn gather_rows(m: &[f32], rows: &[usize], dim: usize) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| m[r * dim..(r + 1) * dim].iter().copied())
        .collect()
}

/// Writes the (rows.len(), `dim`) matrix `src` into rows `rows` of `dst`.
pub(crate) fn scatter_rows(src: &[f32], rows: &[usize], dst: &mut [f32], dim: usize) {
    for (i, &r) in rows.iter().enumerate() {
        dst[r * dim..(r + 1) * dim].copy_from_slice(&src[i * dim..(i + 1) * dim]);
    }
}

/// What a head step returns.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// Loss parts (cross-entropy and, for F²C, negative).
    pub loss: LossParts,
    /// dL/d(probe embedding), (n, D) row-major; zero rows for samples the head did not use.
    pub grad: Vec<f32>,
    /// Head-specific statistics of the step.
    pub stats: HeadStats,
}

/// Head-specific statistics of one step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HeadStats {
    /// F²C: fraction of probe samples whose identity was resident in the pool (positive loss).
    /// DCQ: fraction of queries whose identity had at least one entry in the queue (masked).
    pub hit_rate: Option<f64>,
}

/// A classification head: its state, one training step, and its size. Every method implements
/// it; [`HeadConfig::build`] makes one from its config.
pub trait ClassifierHead<B: Backend>: Send + ConcreteHead<B> {
    /// One training step: the loss of `input`, its gradient with respect to the probe
    /// embeddings, and the head's own update (centres, pool or queue).
    fn step(&mut self, input: &StepInput<'_>) -> Result<StepOutput>;

    /// Bytes of the head's own state (centres and momentum, pool or queue features); a second
    /// network is counted by the trainer that holds it.
    fn state_bytes(&self) -> u64;

    /// The head's state between steps, on the host (for a checkpoint).
    fn save_state(&self) -> Result<HeadState>;

    /// Puts back a state [`save_state`](Self::save_state) gave, of a head built from the same
    /// config; the head then continues exactly as the saved one would. A state of another method
    /// or of other sizes is an error, and leaves the head unchanged.
    fn load_state(&mut self, state: &HeadState) -> Result<()>;
}

/// The concrete head behind a `dyn ClassifierHead`, to reach its state (e.g. the pool of an F²C
/// head); every head has it without writing it.
pub trait ConcreteHead<B: Backend> {
    /// The concrete head, to downcast.
    fn as_any(&self) -> &dyn Any;

    /// The concrete head, mutably.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

// Only for heads, so that a `Box<dyn ClassifierHead>` does not answer for itself.
impl<B: Backend, T: ClassifierHead<B> + 'static> ConcreteHead<B> for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The tag of each method's [`HeadState`] in a checkpoint. A new method takes a new tag; a tag is
/// never reused or renumbered, so that checkpoints stay readable.
pub const STATE_TAGS: [(Method, u64); 4] = [
    (Method::Fc, 0),
    (Method::PartialFc, 1),
    (Method::F2c, 2),
    (Method::Dcq, 3),
];

/// A head's state between steps, on the host: everything its later steps depend on (scratch
/// buffers excepted).
#[derive(Debug, Clone, PartialEq)]
pub enum HeadState {
    /// Full FC: the (N, D) centres and their SGD momentum.
    Fc {
        weight: Vec<f32>,
        velocity: Vec<f32>,
    },
    /// Partial FC: the centres as for FC, and where the class sampler's generator stands.
    PartialFc {
        weight: Vec<f32>,
        velocity: Vec<f32>,
        sampler: partial_fc::SamplerState,
    },
    /// F²C: the pool's feature rows, each (Q, D), and its slot map.
    F2c {
        features: Vec<Vec<f32>>,
        map: class_pool::SlotMapState,
    },
    /// DCQ: the queue's (K, D) key features, their labels (`None` for the random initial rows)
    /// and the next row to overwrite.
    Dcq {
        queue: Vec<f32>,
        labels: Vec<Option<usize>>,
        pointer: usize,
    },
}

impl HeadState {
    /// The method whose head this state is.
    pub fn method(&self) -> Method {
        match self {
            HeadState::Fc { .. } => Method::Fc,
            HeadState::PartialFc { .. } => Method::PartialFc,
            HeadState::F2c { .. } => Method::F2c,
            HeadState::Dcq { .. } => Method::Dcq,
        }
    }

    /// Appends the state in the checkpoint layout: its method's tag ([`STATE_TAGS`]), then what
    /// the method's file writes.
    pub fn write(&self, w: &mut Writer) {
        let method = self.method();
        w.u64(
            STATE_TAGS
                .iter()
                .find(|(m, _)| *m == method)
                .expect("every method has a tag")
                .1,
        );
        match self {
            HeadState::Fc { weight, velocity } => full_fc::write_state(w, weight, velocity),
            HeadState::PartialFc {
                weight,
                velocity,
                sampler,
            } => partial_fc::write_state(w, weight, velocity, sampler),
            HeadState::F2c { features, map } => f2c::write_state(w, features, map),
            HeadState::Dcq {
                queue,
                labels,
                pointer,
            } => dcq::write_state(w, queue, labels, *pointer),
        }
    }

    /// Reads a state [`HeadState::write`] wrote.
    pub fn read(r: &mut Reader) -> Parsed<Self> {
        let tag = r.u64()?;
        let method = STATE_TAGS
            .iter()
            .find(|(_, t)| *t == tag)
            .ok_or_else(|| format!("unknown head tag {tag}"))?
            .0;
        match method {
            Method::Fc => full_fc::read_state(r),
            Method::PartialFc => partial_fc::read_state(r),
            Method::F2c => f2c::read_state(r),
            Method::Dcq => dcq::read_state(r),
        }
    }

    /// The error of loading this state into a head of `method`.
    pub(crate) fn wrong_method(&self, method: Method) -> crate::error::Error {
        crate::error::Error::Other(format!(
            "head state: it belongs to a {} head, this head is {}",
            self.method().label(),
            method.label()
        ))
    }
}

/// Checks that a saved buffer has the length the head expects.
pub(crate) fn check_len(what: &str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(crate::error::Error::Other(format!(
            "head state: {what} has {got} values, this head expects {expected}; was it saved for \
             another experiment?"
        )))
    }
}

impl Capacity {
    /// Checks that the capacity over `classes` identities holds the `written` rows each step
    /// writes into it; `slots`, `rows` and `consequence` (of too few slots) word the error.
    pub fn check_room(
        &self,
        classes: usize,
        written: usize,
        slots: &str,
        rows: &str,
        consequence: &str,
    ) -> FieldResult {
        let places = self.slots(classes);
        if places >= written {
            return Ok(());
        }
        Err(FieldError::new(
            "",
            format!(
                "{places} {slots} for the {written} {rows} each step writes: {consequence}; \
                 raise it or lower train.loaders"
            ),
        ))
    }

    /// Range check of a capacity over `classes` identities (field path relative to it).
    pub fn validate(&self, classes: usize) -> FieldResult {
        match *self {
            Capacity::Fraction(x) if !(x > 0.0 && x <= 1.0) => Err(FieldError::new(
                "",
                format!("Fraction must be in (0, 1], got {x}"),
            )),
            Capacity::Count(q) if q == 0 || q > classes => Err(FieldError::new(
                "",
                format!("Count must be 1 ..= train_identities ({classes}), got {q}"),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backend::CpuBackend;
    use super::*;

    #[test]
    fn a_boxed_head_downcasts_to_its_concrete_type() {
        for method in Method::ALL {
            let mut head: Box<dyn ClassifierHead<CpuBackend>> = HeadConfig::authors(method)
                .build(CpuBackend, 100, 8, 1)
                .unwrap();
            // Called on the box, as the trainer does: the head answers, not the box.
            let is = |any: &dyn Any| match method {
                Method::Fc => any.is::<full_fc::FullFc<CpuBackend>>(),
                Method::PartialFc => any.is::<partial_fc::PartialFc<CpuBackend>>(),
                Method::F2c => any.is::<f2c::F2cHead<CpuBackend>>(),
                Method::Dcq => any.is::<dcq::DcqHead<CpuBackend>>(),
            };
            assert!(is(head.as_any()), "{method}");
            assert!(is(head.as_any_mut()), "{method}");
        }
    }

    #[test]
    fn every_method_has_its_own_state_tag() {
        let mut tags: Vec<u64> = Method::ALL
            .iter()
            .map(|m| STATE_TAGS.iter().find(|(t, _)| t == m).expect("tagged").1)
            .collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), Method::ALL.len());
    }

    #[test]
    fn every_method_describes_itself() {
        for method in Method::ALL {
            let head = HeadConfig::authors(method);
            let cols = head.summary_columns(1000);
            assert!(!head.describe(1000).is_empty());
            assert!(method
                .run_name(&cols, Naming::Table)
                .starts_with(method.label()));
            let cost = head.cost(1000, 8, 16);
            assert!(cost.columns >= 1 && cost.gemm_flops(8) > 0.0 && cost.memory_bytes(8, 16) > 0);
            let batch = head.bench_batch(16);
            assert_eq!(batch.loaders.batch_size(), 16, "{method}");
        }
    }
}
