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
use super::class_pool::{FeaturePool, SlotMap};
use super::pool_loss::{pool_loss_with, PoolLossSpec, PoolLossWork};
use super::{
    check_len, ClassifierHead, HeadContext, HeadState, HeadStats, Method, StepInput, StepOutput,
};
use crate::error::{FieldError, FieldResult, Result};

impl F2cConfig {
    /// Range checks of F²C's own fields (paths relative to the head).
    pub fn validate(&self, ctx: &HeadContext) -> FieldResult {
        self.pool
            .capacity
            .validate(ctx.classes)
            .map_err(|e| e.within("pool.capacity"))?;
        crate::config::check_unit("ema_momentum", self.ema_momentum)?;
        if let TopK::Fixed(0) = self.top_k {
            return Err(FieldError::new(
                "top_k",
                "Fixed(k) needs k ≥ 1; use Auto for the reference rule",
            ));
        }
        let q = self.pool.capacity.slots(ctx.classes);
        let written = ctx.pairs_per_step + ctx.instances_per_step / 2;
        if q < written {
            return Err(FieldError::new(
                "pool.capacity",
                format!(
                    "the pool has {q} slots but each step writes {written} gallery features: every \
                     step would evict its own identities; raise the capacity or lower train.loaders"
                ),
            ));
        }
        Ok(())
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

    /// One training step over a batch split in halves `a` and `b` (row indices): with `symmetric`,
    /// A probes against B's gallery features (rolled back) and then B against A's (kept), as the
    /// reference's `forward`; otherwise only A against B, kept. `probe` and `gallery` are the
    /// (n, D) embeddings of the whole batch by the two networks.
    pub fn step(
        &mut self,
        probe: &[f32],
        gallery: &[f32],
        labels: &[usize],
        a: &[usize],
        b: &[usize],
    ) -> Result<F2cOutput> {
        let d = self.pool.dim;
        let pick = |emb: &[f32], rows: &[usize]| -> Vec<f32> {
            rows.iter()
                .flat_map(|&r| emb[r * d..(r + 1) * d].iter().copied())
                .collect()
        };
        let labels_of =
            |rows: &[usize]| -> Vec<usize> { rows.iter().map(|&r| labels[r]).collect() };
        let mut grad = vec![0.0f32; probe.len()];
        let mut loss = LossParts::default();
        let mut positives = 0;
        let mut probes = 0;
        let mut scatter = |rows: &[usize], g: &[f32]| {
            for (i, &r) in rows.iter().enumerate() {
                grad[r * d..(r + 1) * d].copy_from_slice(&g[i * d..(i + 1) * d]);
            }
        };
        let directions: &[(&[usize], &[usize], bool)] = if self.symmetric {
            &[(a, b, true), (b, a, false)]
        } else {
            &[(a, b, false)]
        };
        for &(p, g, trial) in directions {
            let (l, gr, pos) = self.direction(
                &pick(probe, p),
                &labels_of(p),
                &pick(gallery, g),
                &labels_of(g),
                trial,
            )?;
            loss.ce += l.ce;
            loss.neg += l.neg;
            positives += pos;
            probes += p.len();
            scatter(p, &gr);
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
        let gallery = input.gallery_or_err("F²C")?;
        let out = F2cHead::step(
            self,
            input.probe,
            gallery,
            input.labels,
            &input.halves.a,
            &input.halves.b,
        )?;
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

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
