//! F²C's head: the EMA gallery features written into the dynamic class pool, and the positive and
//! negative losses of the probe features against the pool (tiandunx/FFC `ffc_ddp.py`).

use serde::{Deserialize, Serialize};

use super::class_pool::PoolConfig;
use super::margin::Margin;
pub use super::pool_loss::PoolEval;

/// How many of the largest pool cosines the negative loss averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopK {
    /// The reference rule k = min(max(⌊0.0002·Q⌋, 3), 10).
    Auto,
    /// A fixed k ≥ 1 (capped at Q).
    Fixed(usize),
}

impl TopK {
    /// k for a pool of `q` slots.
    pub fn k(&self, q: usize) -> usize {
        let k = match *self {
            TopK::Auto => ((0.0002 * q as f64).floor() as usize).clamp(3, 10),
            TopK::Fixed(k) => k,
        };
        k.min(q).max(1)
    }
}

/// Settings of the F²C method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct F2cConfig {
    /// Margin of the positive loss (reference script: CosFace(0.5)).
    pub margin: Margin,
    /// Logit scale s of the positive loss (reference: 32).
    pub scale: f32,
    /// The dynamic class pool.
    pub pool: PoolConfig,
    /// EMA momentum m of the gallery net: g ← m·g + (1−m)·p. 0 = gallery equals probe, 1 = frozen.
    pub ema_momentum: f32,
    /// k of the negative loss.
    pub top_k: TopK,
    /// Which pool rows the losses use (reference: `TwoRow`).
    pub pool_eval: PoolEval,
    /// Run the step in both directions (half A probe / half B gallery, then the reverse), rolling
    /// back the first direction's pool update, as the reference does.
    pub symmetric: bool,
}

crate::sweepable!(F2cConfig {
    margin, scale, ema_momentum, top_k, pool_eval, symmetric,
} nested { pool });

use super::backend::{Backend, LossParts};
use super::class_pool::{Capacity, Eviction, FeaturePool, Rows, SlotMap, SlotMapState};
use super::pool_loss::{pool_loss_with, PoolLossSpec, PoolLossWork};
use super::{
    check_len, gather_rows, scatter_rows, BenchBatch, ClassifierHead, Halves, HeadColumns,
    HeadContext, HeadState, HeadStats, Method, Naming, PairedInput, StepCost, StepInput,
    StepOutput,
};
use crate::binary::{Parsed, Reader, Writer};
use crate::data::loaders::LoaderConfig;
use crate::error::{FieldError, FieldResult, Result};
use crate::numbers::short_percent;

/// [`F2cConfig::bench_variant`] of the authors' step: two rows per slot, both directions.
pub const REFERENCE_STEP: &str = "tworow-symmetric";
/// [`F2cConfig::bench_variant`] of the PyTorch peer's simpler step: one direction, against row 0.
pub const ONE_DIRECTION_STEP: &str = "row0-one-direction";

impl F2cConfig {
    /// Range checks of F²C's own fields (paths relative to the head).
    pub fn validate(&self, ctx: &HeadContext) -> FieldResult {
        let capacity = &self.pool.capacity;
        let within = |e: FieldError| e.within("pool.capacity");
        capacity.validate(ctx.classes).map_err(within)?;
        crate::config::check_unit("ema_momentum", self.ema_momentum)?;
        if let TopK::Fixed(0) = self.top_k {
            return Err(FieldError::new(
                "top_k",
                "Fixed(k) needs k ≥ 1; use Auto for the reference rule",
            ));
        }
        let written = ctx.pairs_per_step + ctx.instances_per_step / 2;
        capacity
            .check_room(
                ctx.classes,
                written,
                "pool slots",
                "gallery features",
                "every step would evict its own identities",
            )
            .map_err(within)
    }

    /// The plan's line: pool slots, k of the negative loss and the gallery's momentum.
    pub fn describe(&self, classes: usize) -> String {
        let q = self.pool.capacity.slots(classes);
        format!(
            "F²C, pool Q = {q} slots of N = {classes} identities, top-k k = {}, EMA m = {}",
            self.top_k.k(q),
            self.ema_momentum
        )
    }

    /// F²C's summary columns: the pool as a fraction, the gallery's momentum, the pool's rows
    /// and eviction.
    pub fn summary_columns(&self, classes: usize) -> HeadColumns {
        HeadColumns {
            sample_rate: None,
            pool_fraction: Some(self.pool.capacity.fraction_of(classes)),
            ema_momentum: Some(self.ema_momentum as f64),
            pool_rows: Some(match self.pool.rows {
                Rows::One => 1,
                Rows::Two => 2,
            }),
            eviction: Some(
                match self.pool.eviction {
                    Eviction::Lru => "lru",
                    Eviction::Fifo => "fifo",
                }
                .to_string(),
            ),
            centre_update: None,
        }
    }

    /// [`REFERENCE_STEP`] for the authors' symmetric step, else [`ONE_DIRECTION_STEP`].
    pub fn bench_variant(&self) -> &'static str {
        if self.symmetric {
            REFERENCE_STEP
        } else {
            ONE_DIRECTION_STEP
        }
    }

    /// The head benchmark's batch: `batch` instances. The symmetric step splits them into probe
    /// and gallery halves; the peer's one-direction step probes every row against the first
    /// half's gallery features.
    pub fn bench_batch(&self, batch: usize) -> BenchBatch {
        let (a, b) = if self.symmetric {
            (0..batch / 2, batch / 2..batch)
        } else {
            (0..batch, 0..batch / 2)
        };
        BenchBatch {
            loaders: LoaderConfig {
                identities: 0,
                instances: batch,
            },
            halves: Halves {
                a: a.collect(),
                b: b.collect(),
            },
        }
    }

    /// For the whole-step benchmark at `batch` samples: half of them from identity pairs, half
    /// instances; a pool written as a count (sized for the shipped identities) becomes 10 % of the
    /// benchmark's.
    pub fn resize_for_bench(&mut self, batch: usize) -> LoaderConfig {
        if let Capacity::Count(_) = self.pool.capacity {
            self.pool.capacity = Capacity::Fraction(0.1);
        }
        LoaderConfig {
            identities: batch / 4,
            instances: batch - 2 * (batch / 4),
        }
    }

    /// Two GEMMs (logits, dL/d(emb)) per evaluation against the Q pool slots: B probes once
    /// (the peer's step) or B/2 probes × two directions × two rows (the authors'). Counted dense,
    /// as the PyTorch peer computes them; our backward skips the negative rows' zeros. Memory: the
    /// pool's rows and the probes' cosines against them, twice for the two-row mix.
    pub fn cost(&self, classes: usize, dim: usize, batch: usize) -> StepCost {
        let q = self.pool.capacity.slots(classes);
        let (rows, evals) = if self.symmetric {
            (batch / 2, 4)
        } else {
            (batch, 1)
        };
        let pool_rows: u64 = if self.pool.rows == Rows::Two { 2 } else { 1 };
        let (cols, d, b) = (q as u64, dim as u64, batch as u64);
        StepCost {
            rows,
            columns: q,
            evals,
            gemms: 2,
            floats: pool_rows * cols * d + 2 * b * cols,
        }
    }
}

/// Writes the pool's feature rows and its slot map in the checkpoint layout.
pub fn write_state(w: &mut Writer, features: &[Vec<f32>], map: &SlotMapState) {
    w.u64(features.len() as u64);
    features.iter().for_each(|f| w.f32s(f));
    w.usizes(&map.identity_of);
    w.u64(map.next_row.len() as u64);
    w.bytes(&map.next_row);
    w.usizes(&map.recency);
}

/// Reads what [`write_state`] wrote.
pub fn read_state(r: &mut Reader) -> Parsed<HeadState> {
    let rows = r.count(8)?;
    let features = (0..rows).map(|_| r.f32s()).collect::<Parsed<_>>()?;
    let identity_of = r.usizes()?;
    let n = r.count(1)?;
    let next_row = r.take(n)?.to_vec();
    let recency = r.usizes()?;
    Ok(HeadState::F2c {
        features,
        map: SlotMapState {
            identity_of,
            next_row,
            recency,
        },
    })
}

/// F²C's name with its pool size and any non-reference pool: `F²C pool 10%, FIFO` in tables,
/// `F²C 10 %` short.
pub fn run_name(cols: &HeadColumns, naming: Naming) -> String {
    let label = Method::F2c.label();
    match naming {
        Naming::Table => {
            let mut s = match cols.pool_fraction {
                Some(f) => format!("{label} pool {}%", short_percent(f)),
                None => label.into(),
            };
            if cols.pool_rows == Some(1) {
                s.push_str(", 1 row/slot");
            }
            if cols.eviction.as_deref() == Some("fifo") {
                s.push_str(", FIFO");
            }
            s
        }
        Naming::Short => match cols.pool_fraction {
            Some(f) => format!("{label} {} %", 100.0 * f),
            None => label.into(),
        },
    }
}

/// F²C's head-benchmark series at pool fraction `param`, naming the authors' step.
pub fn series_name(variant: &str, param: f64) -> String {
    if variant == REFERENCE_STEP {
        format!("F²C {}% (reference: 2 rows, symmetric)", param * 100.0)
    } else {
        format!("F²C {}%", param * 100.0)
    }
}

/// F²C's head state: the dynamic class pool (the gallery net lives with the networks).
pub struct F2cHead<B: Backend> {
    be: B,
    pool: FeaturePool<B>,
    spec: PoolLossSpec,
    symmetric: bool,
    /// The loss's work buffers, reused across steps.
    work: Option<PoolLossWork<B>>,
}

/// Loss of one F²C step and the gradient for every probe row.
#[derive(Debug, Clone, PartialEq)]
pub struct F2cOutput {
    pub loss: LossParts,
    /// dL/d(probe embedding), (B, D), for all rows of the step's batch.
    pub grad: Vec<f32>,
    /// Fraction of probe samples whose identity was resident (got the positive loss).
    pub positive_fraction: f64,
}

impl<B: Backend> F2cHead<B> {
    /// A pool for `num_identities` training identities of dimension `dim`.
    pub fn new(
        be: B,
        cfg: &F2cConfig,
        num_identities: usize,
        dim: usize,
        seed: u64,
    ) -> Result<Self> {
        let pool = FeaturePool::new(&be, &cfg.pool, num_identities, dim, seed)?;
        let spec = PoolLossSpec {
            margin: cfg.margin,
            scale: cfg.scale,
            k: cfg.top_k.k(pool.map.capacity()),
            eval: cfg.pool_eval,
        };
        Ok(F2cHead {
            be,
            pool,
            spec,
            symmetric: cfg.symmetric,
            work: None,
        })
    }

    /// The pool (inspection and tests).
    pub fn pool(&self) -> &FeaturePool<B> {
        &self.pool
    }

    /// k of the negative loss.
    pub fn top_k(&self) -> usize {
        self.spec.k
    }

    /// Bytes of the pool's features.
    pub fn pool_bytes(&self) -> u64 {
        self.pool.state_bytes()
    }

    /// One direction of the reference step (`forward_impl`): write the gallery features into the
    /// pool, then the losses of the probe features against it. With `trial` the pool is rolled
    /// back afterwards (`forward_impl_rollback`).
    pub fn direction(
        &mut self,
        probe: &[f32],
        probe_labels: &[usize],
        gallery: &[f32],
        gallery_labels: &[usize],
        trial: bool,
    ) -> Result<(LossParts, Vec<f32>, usize)> {
        if trial {
            self.pool.map.begin_trial();
        }
        let write = self
            .pool
            .write_batch(&self.be, gallery, gallery_labels, trial)?;
        // Targets are looked up after all the batch's writes, like `self.lru.view(pl)`.
        let targets: Vec<i64> = probe_labels
            .iter()
            .map(|&l| self.pool.map.slot_of(l).map_or(-1, |s| s as i64))
            .collect();
        let positives = targets.iter().filter(|&&t| t >= 0).count();
        let (loss, grad) = pool_loss_with(
            &self.be,
            &mut self.work,
            &mut self.pool,
            probe,
            &targets,
            &write.refreshed,
            &self.spec,
        )?;
        if trial {
            self.pool.restore(&self.be, write)?;
            self.pool.map.rollback();
        }
        Ok((loss, grad, positives))
    }

    /// One training step over a batch split in halves A and B: with `symmetric`, A probes
    /// against B's gallery features (rolled back) and then B against A's (kept), as the
    /// reference's `forward`; otherwise only A against B, kept. The input's embeddings are those of
    /// the whole batch by the two networks.
    pub fn step(&mut self, input: PairedInput<'_>) -> Result<F2cOutput> {
        let d = self.pool.dim;
        let (a, b) = input.halves();
        let labels_of =
            |rows: &[usize]| -> Vec<usize> { rows.iter().map(|&r| input.labels[r]).collect() };
        let mut grad = vec![0.0f32; input.probe.len()];
        let mut loss = LossParts::default();
        let mut positives = 0;
        let mut probes = 0;
        let directions: &[(&[usize], &[usize], bool)] = if self.symmetric {
            &[(a, b, true), (b, a, false)]
        } else {
            &[(a, b, false)]
        };
        for &(p, g, trial) in directions {
            let (l, gr, pos) = self.direction(
                &gather_rows(input.probe, p, d),
                &labels_of(p),
                &gather_rows(input.gallery, g, d),
                &labels_of(g),
                trial,
            )?;
            loss.ce += l.ce;
            loss.neg += l.neg;
            positives += pos;
            probes += p.len();
            scatter_rows(&gr, p, &mut grad, d);
        }
        Ok(F2cOutput {
            loss,
            grad,
            positive_fraction: positives as f64 / probes.max(1) as f64,
        })
    }
}

impl<B: Backend> ClassifierHead<B> for F2cHead<B> {
    fn step(&mut self, input: &StepInput<'_>) -> Result<StepOutput> {
        let out = F2cHead::step(self, input.paired("F²C")?)?;
        Ok(StepOutput {
            loss: out.loss,
            grad: out.grad,
            stats: HeadStats {
                hit_rate: Some(out.positive_fraction),
            },
        })
    }

    fn state_bytes(&self) -> u64 {
        self.pool_bytes()
    }

    fn save_state(&self) -> Result<HeadState> {
        let features = self
            .pool
            .features
            .iter()
            .map(|f| self.be.download(f))
            .collect::<Result<_>>()?;
        Ok(HeadState::F2c {
            features,
            map: self.pool.map.state(),
        })
    }

    fn load_state(&mut self, state: &HeadState) -> Result<()> {
        let HeadState::F2c { features, map } = state else {
            return Err(state.wrong_method(Method::F2c));
        };
        let old = &self.pool.map;
        let (q, d) = (old.capacity(), self.pool.dim);
        check_len("the pool's rows", features.len(), self.pool.features.len())?;
        for f in features {
            check_len("a pool row", f.len(), q * d)?;
        }
        let map = SlotMap::from_state(q, old.rows(), old.eviction(), map)
            .map_err(|e| crate::error::Error::Other(format!("head state: slot map: {e}")))?;
        self.pool.features = features
            .iter()
            .map(|f| self.be.upload(f))
            .collect::<Result<_>>()?;
        self.pool.map = map;
        Ok(())
    }
}
