//! One timed training step of a classification head, in isolation: forward, backward into the
//! embeddings and the head's own update (FC / Partial FC: the SGD step on the centres; F²C: the
//! pool write; DCQ: the enqueue). A case is a [`HeadConfig`], built by [`HeadConfig::build`] and
//! checked by the same validation as a training run, so the bench and the trainer cannot disagree
//! about what a head is. The cases mirror `scripts/torch_heads.py`, the PyTorch peer: fixed random
//! unit embeddings, fresh random labels every step.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::heads::backend::{Backend, SgdParams};
use crate::heads::class_pool::{Capacity, Rows};
use crate::heads::f2c::PoolEval;
use crate::heads::{
    BenchBatch, CentreUpdate, ClassifierHead, Halves, HeadConfig, HeadContext, Margin, Method,
    StepInput,
};

/// The peer's optimiser: SGD, lr 0.1, momentum 0.9, weight decay 5e-4.
const SGD: SgdParams = SgdParams {
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 5e-4,
    nesterov: false,
};

/// One timed head: its config, whose sizes are fractions of the identity count.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadCase {
    pub head: HeadConfig,
}

impl HeadCase {
    /// Full FC, CosFace(0.4) at s = 32 (the peer's).
    pub fn fc() -> Self {
        HeadCase {
            head: HeadConfig::Fc {
                margin: Margin::CosFace(0.4),
                scale: 32.0,
            },
        }
    }

    /// Partial FC at sample rate `r`, the peer's margin and scale, moving the centres `update`
    /// names.
    pub fn pfc(sample_rate: f32, update: CentreUpdate) -> Self {
        HeadCase {
            head: HeadConfig::PartialFc {
                margin: Margin::CosFace(0.4),
                scale: 32.0,
                sample_rate,
                update,
            },
        }
    }

    /// F²C with a pool of `fraction`·N slots. `reference: false` is the peer's step (one row per
    /// slot, one direction, all B probes against row 0, the first half of the batch written);
    /// `reference: true` the authors' (two rows, both directions of B/2 probes, the first rolled
    /// back).
    pub fn f2c(fraction: f64, reference: bool) -> Self {
        let HeadConfig::F2c(mut cfg) = HeadConfig::authors(Method::F2c) else {
            unreachable!("authors(F2c) is an F²C head")
        };
        cfg.margin = Margin::CosFace(0.4);
        cfg.pool.capacity = Capacity::Fraction(fraction);
        if !reference {
            cfg.pool.rows = Rows::One;
            cfg.pool_eval = PoolEval::Row0;
            cfg.symmetric = false;
        }
        HeadCase {
            head: HeadConfig::F2c(cfg),
        }
    }

    /// DCQ with a queue of `fraction`·N entries, its authors' other settings.
    pub fn dcq(fraction: f64) -> Self {
        let HeadConfig::Dcq(mut cfg) = HeadConfig::authors(Method::Dcq) else {
            unreachable!("authors(Dcq) is a DCQ head")
        };
        cfg.queue = Capacity::Fraction(fraction);
        HeadCase {
            head: HeadConfig::Dcq(cfg),
        }
    }

    /// The method's key: `fc`, `pfc`, `f2c` or `dcq`.
    pub fn head(&self) -> &'static str {
        self.head.method().key()
    }

    /// Sample rate, pool or queue fraction; 1 for FC.
    pub fn param(&self) -> f64 {
        // Cases give their sizes as fractions, which do not depend on N.
        self.head.size_fraction(1)
    }

    /// What is timed, in words ([`HeadConfig::bench_variant`]).
    pub fn variant(&self) -> &'static str {
        self.head.bench_variant()
    }
}

/// A head ready to be stepped, with its inputs.
pub struct HeadBench<B: Backend> {
    be: B,
    head: Box<dyn ClassifierHead<B>>,
    /// Identity pairs of the batch: row `halves.b[i]` has the label of `halves.a[i]` for i below.
    pairs: usize,
    classes: usize,
    halves: Halves,
    /// (B, D) unit probe embeddings.
    probe: Vec<f32>,
    /// (B, D) unit gallery (key) embeddings, for heads with a second network.
    gallery: Option<Vec<f32>>,
    labels: Vec<usize>,
    rng: rand::rngs::StdRng,
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
    /// A case that a training run with the same batch would reject (e.g. a pool smaller than the
    /// features a step writes) is an error.
    pub fn new(
        be: B,
        case: &HeadCase,
        classes: usize,
        dim: usize,
        batch: usize,
        seed: u64,
    ) -> Result<Self> {
        let BenchBatch { loaders, halves } = case.head.bench_batch(batch);
        let ctx = HeadContext {
            classes,
            pairs_per_step: loaders.identities,
            instances_per_step: loaders.instances,
        };
        let invalid = |e: crate::error::FieldError| e.within("head").at("<bench case>");
        case.head
            .check_loaders(&loaders)
            .map_err(|e| invalid(e.within("train.loaders")))?;
        case.head.validate(&ctx).map_err(invalid)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let probe = unit_rows(&mut rng, batch, dim);
        let gallery = unit_rows(&mut rng, batch, dim);
        Ok(HeadBench {
            head: case.head.build(be.clone(), classes, dim, seed)?,
            be,
            pairs: loaders.identities,
            classes,
            halves,
            probe,
            gallery: case.head.second_net().map(|_| gallery),
            labels: vec![0; batch],
            rng,
        })
    }

    /// Bytes of head state: centres and momentum (FC, Partial FC), pool (F²C) or queue (DCQ).
    pub fn state_bytes(&self) -> u64 {
        self.head.state_bytes()
    }

    /// Runs one step on fresh labels and returns its wall time in seconds (device synchronised).
    pub fn step(&mut self) -> Result<f64> {
        let n = self.classes;
        for l in self.labels.iter_mut() {
            *l = self.rng.gen_range(0..n);
        }
        // The second row of an identity pair (e.g. DCQ's key) is another instance of the first's.
        for (&a, &b) in self.halves.a.iter().zip(&self.halves.b).take(self.pairs) {
            self.labels[b] = self.labels[a];
        }
        let t0 = Instant::now();
        let out = self.head.step(&StepInput {
            probe: &self.probe,
            gallery: self.gallery.as_deref(),
            labels: &self.labels,
            halves: &self.halves,
            sgd: &SGD,
        })?;
        self.be.synchronize()?;
        let dt = t0.elapsed().as_secs_f64();
        debug_assert!(
            out.loss.total().is_finite(),
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
        let flops = |c: HeadCase, n| c.head.cost(n, 8, 4).gemm_flops(8);
        // FC: 3 GEMMs × 2·B·N·D = 6·4·10·8 = 1920. PFC r = 0.5: 5 columns → 960.
        assert_eq!(flops(HeadCase::fc(), 10), 1920.0);
        assert_eq!(
            flops(HeadCase::pfc(0.5, CentreUpdate::SampledRows), 10),
            960.0
        );
        // F²C 10% of 100: Q = 10; peer: 4·B·Q·D = 4·4·10·8 = 1280; reference: 2 directions ×
        // 2 rows × 4·(B/2)·Q·D = 2560.
        assert_eq!(flops(HeadCase::f2c(0.1, false), 100), 1280.0);
        assert_eq!(flops(HeadCase::f2c(0.1, true), 100), 2560.0);
        // DCQ 10% of 100: K + B/2 = 12 columns, 2 GEMMs of B/2 = 2 queries: 4·2·12·8 = 768.
        assert_eq!(HeadCase::dcq(0.1).head.cost(100, 8, 4).columns, 12);
        assert_eq!(flops(HeadCase::dcq(0.1), 100), 768.0);
    }

    #[test]
    fn memory_estimate_by_hand() {
        let bytes = |c: HeadCase, n, d, b| c.head.cost(n, d, b).memory_bytes(d, b);
        // FC, N 10, D 8, B 4: centres + momentum 160, normalised rows + gradient 160, norms 10,
        // cosines 40, embeddings and their buffers 128 floats: 498 × 4 bytes.
        assert_eq!(bytes(HeadCase::fc(), 10, 8, 4), 4 * 498);
        // At 10M identities, D 128, B 256 full FC needs about 30 GiB; F²C with a 10% pool about 3.
        let gib = |c: HeadCase| bytes(c, 10_000_000, 128, 256) as f64 / (1u64 << 30) as f64;
        assert!(gib(HeadCase::fc()) > 24.0, "{}", gib(HeadCase::fc()));
        assert!(gib(HeadCase::f2c(0.1, true)) < 4.0);
    }

    #[test]
    fn every_case_steps_and_reports_state() {
        for case in [
            HeadCase::fc(),
            HeadCase::pfc(0.1, CentreUpdate::SampledRows),
            HeadCase::pfc(0.1, CentreUpdate::AllRows),
            HeadCase::f2c(0.1, false),
            HeadCase::f2c(0.1, true),
            HeadCase::dcq(0.1),
        ] {
            let mut h = HeadBench::new(CpuBackend, &case, 200, 8, 16, 3).unwrap();
            for _ in 0..3 {
                assert!(h.step().unwrap() >= 0.0);
            }
            // FC / PFC: 2·200·8·4 bytes; F²C: rows (1 peer, 2 reference) · 20 · 8 · 4; DCQ:
            // 20 entries · (8 floats + an 8-byte label).
            let want = match (case.head(), case.variant()) {
                ("f2c", "row0-one-direction") => 20 * 8 * 4,
                ("f2c", _) => 2 * 20 * 8 * 4,
                ("dcq", _) => 20 * (8 * 4 + 8),
                _ => 2 * 200 * 8 * 4,
            };
            assert_eq!(h.state_bytes(), want, "{case:?}");
        }
    }

    #[test]
    fn a_case_a_training_run_would_reject_is_an_error() {
        // A 1% pool of 200 identities has 2 slots, fewer than the 8 features a step of 16 writes.
        let err = HeadBench::new(CpuBackend, &HeadCase::f2c(0.01, false), 200, 8, 16, 3)
            .err()
            .expect("rejected")
            .to_string();
        assert!(err.contains("head.pool.capacity"), "{err}");
    }

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
    }
}
