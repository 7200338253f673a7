//! One timed training step of a classification head, in isolation: forward, backward into the
//! embeddings and the head's own update (FC / Partial FC: the SGD step on the centres; F²C: the
//! pool write). The cases mirror `shared/bench/torch_heads.py`, the PyTorch peer whose timings are
//! the targets: fixed random unit embeddings, fresh random labels every step.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::heads::backend::{Backend, SgdParams};
use crate::heads::class_pool::{Capacity, Eviction, PoolConfig, Rows};
use crate::heads::f2c::{F2cConfig, F2cHead, PoolEval, TopK};
use crate::heads::full_fc::FullFc;
use crate::heads::partial_fc::PartialFc;
use crate::heads::pfc_sampler::num_sample;
use crate::heads::Margin;

/// Margin and scale of every case, the peer's CosFace(0.4) at s = 32.
const MARGIN: Margin = Margin::CosFace(0.4);
const SCALE: f32 = 32.0;

/// The peer's optimiser: SGD, lr 0.1, momentum 0.9, weight decay 5e-4.
const SGD: SgdParams = SgdParams {
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 5e-4,
    nesterov: false,
};

/// Which head step is timed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeadCase {
    /// Full FC over all N centres.
    Fc,
    /// Partial FC with sample rate r.
    Pfc { sample_rate: f32 },
    /// F²C with a pool of Q = max(⌊fraction·N⌋, B) slots. `reference: false` is the peer's step
    /// (one direction, all B probes against row 0, the first half of the batch written to the pool);
    /// `reference: true` is the reference configuration (two rows, both directions of B/2 probes,
    /// the first rolled back).
    F2c { pool_fraction: f64, reference: bool },
}

impl HeadCase {
    /// `fc`, `pfc` or `f2c`.
    pub fn head(&self) -> &'static str {
        match self {
            HeadCase::Fc => "fc",
            HeadCase::Pfc { .. } => "pfc",
            HeadCase::F2c { .. } => "f2c",
        }
    }

    /// Sample rate or pool fraction; 1 for FC.
    pub fn param(&self) -> f64 {
        match *self {
            HeadCase::Fc => 1.0,
            // Through the decimal text so that 0.1f32 reads as 0.1, not 0.100000001.
            HeadCase::Pfc { sample_rate } => sample_rate.to_string().parse().unwrap_or(f64::NAN),
            HeadCase::F2c { pool_fraction, .. } => pool_fraction,
        }
    }

    /// What is timed, in words: `peer` for the step the PyTorch figures time, else the F²C reference.
    pub fn variant(&self) -> &'static str {
        match self {
            HeadCase::F2c {
                reference: true, ..
            } => "tworow-symmetric",
            HeadCase::F2c {
                reference: false, ..
            } => "row0-one-direction",
            _ => "peer",
        }
    }

    /// Pool slots Q of an F²C case, as the peer sizes them.
    pub fn pool_slots(&self, classes: usize, batch: usize) -> usize {
        match *self {
            HeadCase::F2c { pool_fraction, .. } => {
                ((pool_fraction * classes as f64) as usize).max(batch)
            }
            _ => 0,
        }
    }

    /// Columns of the logit matrix per step (sampled centres for Partial FC: at least r·N).
    pub fn columns(&self, classes: usize, batch: usize) -> usize {
        match *self {
            HeadCase::Fc => classes,
            HeadCase::Pfc { sample_rate } => num_sample(classes, sample_rate),
            HeadCase::F2c { .. } => self.pool_slots(classes, batch),
        }
    }

    /// Floating-point operations of the step's GEMMs: 2·rows·cols·D per GEMM. FC / Partial FC run
    /// three (logits, dL/d(emb), dL/d(centres)); F²C two per evaluation (logits, dL/d(emb)), with
    /// B probes once (peer) or B/2 probes × two directions × two rows (reference). Counted dense, as
    /// the PyTorch peer computes them; our F²C backward skips the negative rows' zeros.
    pub fn gemm_flops(&self, classes: usize, dim: usize, batch: usize) -> f64 {
        let cols = self.columns(classes, batch) as f64;
        let (b, d) = (batch as f64, dim as f64);
        match self {
            HeadCase::Fc | HeadCase::Pfc { .. } => 3.0 * 2.0 * b * cols * d,
            HeadCase::F2c {
                reference: false, ..
            } => 2.0 * 2.0 * b * cols * d,
            HeadCase::F2c {
                reference: true, ..
            } => 2.0 * 2.0 * 2.0 * 2.0 * (b / 2.0) * cols * d,
        }
    }
}

/// A head ready to be stepped, with its inputs.
pub struct HeadBench<B: Backend> {
    be: B,
    head: Head<B>,
    classes: usize,
    batch: usize,
    /// (B, D) unit probe embeddings.
    probe: Vec<f32>,
    /// (B, D) unit gallery embeddings.
    gallery: Vec<f32>,
    labels: Vec<usize>,
    rng: rand::rngs::StdRng,
}

enum Head<B: Backend> {
    Fc(FullFc<B>),
    Pfc(PartialFc<B>),
    F2c { head: F2cHead<B>, reference: bool },
}

fn unit_rows(rng: &mut impl Rng, rows: usize, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..rows * dim)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    for r in v.chunks_mut(dim) {
        let n = r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        r.iter_mut().for_each(|x| *x /= n);
    }
    v
}

impl<B: Backend> HeadBench<B> {
    /// Builds the head of `case` for `classes` identities; `seed` fixes inputs and initialisation.
    pub fn new(
        be: B,
        case: HeadCase,
        classes: usize,
        dim: usize,
        batch: usize,
        seed: u64,
    ) -> Result<Self> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let probe = unit_rows(&mut rng, batch, dim);
        let gallery = unit_rows(&mut rng, batch, dim);
        let head = match case {
            HeadCase::Fc => Head::Fc(FullFc::new(be.clone(), classes, dim, MARGIN, SCALE, seed)?),
            HeadCase::Pfc { sample_rate } => Head::Pfc(PartialFc::new(
                be.clone(),
                classes,
                dim,
                MARGIN,
                SCALE,
                sample_rate,
                seed,
            )?),
            HeadCase::F2c { reference, .. } => {
                let cfg = F2cConfig {
                    margin: MARGIN,
                    scale: SCALE,
                    // The peer writes and reads only row 0 of its (2, Q, D) buffer, so its step is
                    // the one-row pool; the reference keeps two rows per slot.
                    pool: PoolConfig {
                        capacity: Capacity::Count(case.pool_slots(classes, batch)),
                        rows: if reference { Rows::Two } else { Rows::One },
                        eviction: Eviction::Lru,
                    },
                    ema_momentum: 0.99,
                    top_k: TopK::Auto,
                    pool_eval: if reference {
                        PoolEval::TwoRow
                    } else {
                        PoolEval::Row0
                    },
                    symmetric: reference,
                };
                Head::F2c {
                    head: F2cHead::new(be.clone(), &cfg, classes, dim, seed)?,
                    reference,
                }
            }
        };
        Ok(HeadBench {
            be,
            head,
            classes,
            batch,
            probe,
            gallery,
            labels: vec![0; batch],
            rng,
        })
    }

    /// Bytes of head state: centres and momentum (FC, Partial FC) or pool features (F²C).
    pub fn state_bytes(&self) -> u64 {
        match &self.head {
            Head::Fc(h) => h.state_bytes(),
            Head::Pfc(h) => h.state_bytes(),
            Head::F2c { head, .. } => head.pool_bytes(),
        }
    }

    /// Runs one step on fresh labels and returns its wall time in seconds (device synchronised).
    pub fn step(&mut self) -> Result<f64> {
        let n = self.classes;
        for l in self.labels.iter_mut() {
            *l = self.rng.gen_range(0..n);
        }
        let t0 = Instant::now();
        let loss = match &mut self.head {
            Head::Fc(h) => h.step(&self.probe, &self.labels, &SGD)?.loss,
            Head::Pfc(h) => h.step(&self.probe, &self.labels, &SGD)?.loss,
            Head::F2c { head, reference } => {
                let b = self.batch;
                let (a, g): (Vec<usize>, Vec<usize>) = if *reference {
                    ((0..b / 2).collect(), (b / 2..b).collect())
                } else {
                    ((0..b).collect(), (0..b / 2).collect())
                };
                head.step(&self.probe, &self.gallery, &self.labels, &a, &g)?
                    .loss
            }
        };
        self.be.synchronize()?;
        let dt = t0.elapsed().as_secs_f64();
        debug_assert!(
            loss.total().is_finite(),
            "bench step produced a non-finite loss"
        );
        Ok(dt)
    }
}

/// Median of `xs` (upper median for an even count), NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::backend::CpuBackend;

    #[test]
    fn gemm_flops_by_hand() {
        // FC: 3 GEMMs × 2·B·N·D = 6·4·10·8 = 1920. PFC r = 0.5: 5 columns → 960.
        assert_eq!(HeadCase::Fc.gemm_flops(10, 8, 4), 1920.0);
        assert_eq!(
            HeadCase::Pfc { sample_rate: 0.5 }.gemm_flops(10, 8, 4),
            960.0
        );
        // F²C 10% of 100 with B = 4: Q = max(10, 4) = 10; peer: 4·B·Q·D = 4·4·10·8 = 1280;
        // reference: 2 directions × 2 rows × 4·(B/2)·Q·D = 2560. 1% of 100 → Q = max(1, 4) = 4.
        assert_eq!(
            HeadCase::F2c {
                pool_fraction: 0.1,
                reference: false
            }
            .gemm_flops(100, 8, 4),
            1280.0
        );
        assert_eq!(
            HeadCase::F2c {
                pool_fraction: 0.1,
                reference: true
            }
            .gemm_flops(100, 8, 4),
            2560.0
        );
        assert_eq!(
            HeadCase::F2c {
                pool_fraction: 0.01,
                reference: false
            }
            .pool_slots(100, 4),
            4
        );
    }

    #[test]
    fn every_case_steps_and_reports_state() {
        for case in [
            HeadCase::Fc,
            HeadCase::Pfc { sample_rate: 0.1 },
            HeadCase::F2c {
                pool_fraction: 0.1,
                reference: false,
            },
            HeadCase::F2c {
                pool_fraction: 0.1,
                reference: true,
            },
        ] {
            let mut h = HeadBench::new(CpuBackend, case, 200, 8, 16, 3).unwrap();
            for _ in 0..3 {
                assert!(h.step().unwrap() >= 0.0);
            }
            // FC / PFC: 2·200·8·4 bytes; F²C: rows (1 peer, 2 reference) · max(20, 16) · 8 · 4.
            let want = match case {
                HeadCase::F2c {
                    reference: false, ..
                } => 20 * 8 * 4,
                HeadCase::F2c {
                    reference: true, ..
                } => 2 * 20 * 8 * 4,
                _ => 2 * 200 * 8 * 4,
            };
            assert_eq!(h.state_bytes(), want, "{case:?}");
        }
    }

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
    }
}
