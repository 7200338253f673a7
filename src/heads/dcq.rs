//! DCQ, the Dynamic Class Queue (Li et al., "Dynamic Class Queue for Large Scale Face Recognition
//! in the Wild", CVPR 2021; the authors' `dcq.py`): a second sampling baseline beside Partial FC.
//!
//! Instead of N trainable centres, the class weights of a step are a FIFO queue of K key features
//! with their labels, written by a momentum key encoder (the trainer's second network,
//! k ← m·k + (1 − m)·q before the keys are computed). Each query (probe embedding) gets a
//! margin softmax over 1 + K logits: the positive is its cosine with the key of *another instance
//! of the same identity* minus the margin, the negatives its cosines with the queue, entries of
//! the query's own identity masked out; all × s, cross-entropy with the positive as target. Then
//! the step's keys and labels are enqueued at the pointer, wrapping around. The queue starts as
//! random unit rows whose labels match no identity, as the authors' random label buffer does.
//!
//! One matrix product gives positives and negatives: the keys of the step are appended to the
//! queue in one bank of K + B rows, so query i's positive is column K + i; the other queries' keys
//! are masked like same-identity entries, leaving exactly the authors' 1 + K logits.

use std::collections::HashMap;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::backend::{Backend, LossSpec};
use super::class_pool::Capacity;
use super::{
    check_len, gather_rows, scatter_rows, BenchBatch, ClassifierHead, Halves, HeadColumns,
    HeadContext, HeadState, HeadStats, Margin, Method, Naming, PairedInput, StepCost, StepInput,
    StepOutput,
};
use crate::binary::{Parsed, Reader, Writer};
use crate::data::loaders::LoaderConfig;
use crate::error::{Error, FieldResult, Result};

/// The cosine written over masked logits (the authors' −1e9): after scaling, its exponential is 0.
const MASKED: f32 = -1e9;

/// Settings of the DCQ method (authors' defaults: CosFace(0.3), s = 50, momentum 0.999, a queue
/// of about 10 % of the identities — 8,192 for MS1MV2's 85k).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcqConfig {
    /// Margin on the positive logit (authors: CosFace(0.3)).
    pub margin: Margin,
    /// Logit scale s (authors: 50).
    pub scale: f32,
    /// Queue length K: `Fraction(f)` of the training identities or `Count(k)`.
    pub queue: Capacity,
    /// Momentum m of the key encoder: k ← m·k + (1 − m)·q (authors: 0.999).
    pub momentum: f32,
}

crate::sweepable!(DcqConfig { margin, scale, queue, momentum } nested {});

impl DcqConfig {
    /// Range checks of DCQ's own fields (paths relative to the head).
    pub fn validate(&self, ctx: &HeadContext) -> FieldResult {
        self.queue
            .validate(ctx.classes)
            .map_err(|e| e.within("queue"))?;
        crate::config::check_unit("momentum", self.momentum)?;
        self.queue
            .check_room(
                ctx.classes,
                ctx.pairs_per_step,
                "queue entries",
                "keys",
                "every step would overwrite its own keys",
            )
            .map_err(|e| e.within("queue"))
    }

    /// The plan's line: queue entries and the key encoder's momentum.
    pub fn describe(&self, classes: usize) -> String {
        format!(
            "DCQ, queue K = {} of N = {classes} identities, key momentum m = {}",
            self.queue.slots(classes),
            self.momentum
        )
    }

    /// DCQ's summary columns: the queue fills the pool column, the key encoder's momentum the
    /// EMA column.
    pub fn summary_columns(&self, classes: usize) -> HeadColumns {
        HeadColumns {
            pool_fraction: Some(self.queue.fraction_of(classes)),
            ema_momentum: Some(self.momentum as f64),
            ..HeadColumns::default()
        }
    }

    /// Two GEMMs (logits, dL/d(query)) of the B/2 queries against the bank of K queue entries and
    /// the step's B/2 keys; memory: the bank and the (B/2, K + B/2) cosines.
    pub fn cost(&self, classes: usize, dim: usize, batch: usize) -> StepCost {
        let columns = self.queue.slots(classes) + batch / 2;
        let (cols, d, b) = (columns as u64, dim as u64, batch as u64);
        StepCost {
            rows: batch / 2,
            columns,
            evals: 1,
            gemms: 2,
            floats: cols * d + b / 2 * cols,
        }
    }
}

/// Writes the queue's features, its labels (u64::MAX for the random initial rows, which have
/// none) and its pointer in the checkpoint layout.
pub fn write_state(w: &mut Writer, queue: &[f32], labels: &[Option<usize>], pointer: usize) {
    w.f32s(queue);
    w.u64(labels.len() as u64);
    labels
        .iter()
        .for_each(|l| w.u64(l.map_or(u64::MAX, |l| l as u64)));
    w.u64(pointer as u64);
}

/// Reads what [`write_state`] wrote.
pub fn read_state(r: &mut Reader) -> Parsed<HeadState> {
    let queue = r.f32s()?;
    let n = r.count(8)?;
    let labels = (0..n)
        .map(|_| Ok(r.u64()?).map(|l| (l != u64::MAX).then_some(l as usize)))
        .collect::<Parsed<_>>()?;
    Ok(HeadState::Dcq {
        queue,
        labels,
        pointer: r.u64()? as usize,
    })
}

/// DCQ's name: `DCQ` in tables, with its queue size short (`DCQ 10 %`).
pub fn run_name(cols: &HeadColumns, naming: Naming) -> String {
    let label = Method::Dcq.label();
    match (cols.pool_fraction, naming) {
        (Some(f), Naming::Short) => format!("{label} {} %", 100.0 * f),
        _ => label.into(),
    }
}

/// DCQ's head-benchmark series at queue fraction `param`.
pub fn series_name(param: f64) -> String {
    format!("DCQ queue {}%", param * 100.0)
}

/// The head benchmark's batch: `batch` / 2 identity pairs, queries in the first half and their
/// keys in the second.
pub fn bench_batch(batch: usize) -> BenchBatch {
    BenchBatch {
        loaders: LoaderConfig {
            identities: batch / 2,
            instances: 0,
        },
        halves: Halves {
            a: (0..batch / 2).collect(),
            b: (batch / 2..batch).collect(),
        },
    }
}

/// The queue and the work buffers of a step (kept between steps so that no step allocates).
pub struct DcqHead<B: Backend> {
    be: B,
    dim: usize,
    margin: Margin,
    scale: f32,
    /// Queue length K.
    len: usize,
    /// (K + room, D): the queue's key features, then room for one step's keys.
    bank: B::Buf,
    room: usize,
    /// Label of each queue entry; `None` for the random initial entries.
    labels: Vec<Option<usize>>,
    /// Next queue row to overwrite.
    ptr: usize,
    /// (B, D) queries and keys of the step, (B, K + B) cosines / dL/dcos, (B, D) dL/dq.
    queries: B::Buf,
    keys: B::Buf,
    cos: B::Buf,
    grad: B::Buf,
}

impl<B: Backend> DcqHead<B> {
    /// A queue of `cfg.queue` entries over `classes` identities, of dimension `dim`, initialised
    /// with seeded random unit rows.
    pub fn new(be: B, cfg: &DcqConfig, classes: usize, dim: usize, seed: u64) -> Result<Self> {
        let len = cfg.queue.slots(classes);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut host: Vec<f32> = (0..len * dim)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        for row in host.chunks_mut(dim) {
            let n = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= n);
        }
        Ok(DcqHead {
            bank: be.upload_owned(host)?,
            queries: be.zeros(0)?,
            keys: be.zeros(0)?,
            cos: be.zeros(0)?,
            grad: be.zeros(0)?,
            be,
            dim,
            margin: cfg.margin,
            scale: cfg.scale,
            len,
            room: 0,
            labels: vec![None; len],
            ptr: 0,
        })
    }

    /// Queue length K.
    pub fn queue_len(&self) -> usize {
        self.len
    }

    /// The queue's features (K, D) and labels, oldest entry first once it has wrapped.
    pub fn queue(&self) -> Result<(Vec<f32>, Vec<Option<usize>>)> {
        let mut rows = self.be.download(&self.bank)?;
        rows.truncate(self.len * self.dim);
        Ok((rows, self.labels.clone()))
    }

    /// Next queue row to be overwritten.
    pub fn pointer(&self) -> usize {
        self.ptr
    }

    /// Room for `m` keys after the queue, and work buffers for `m` queries.
    fn ensure(&mut self, m: usize) -> Result<()> {
        let (be, d, n) = (&self.be, self.dim, self.len + m);
        if m > self.room {
            let mut host = be.download(&self.bank)?;
            // The old bank goes before the larger one is made, and the host copy grows by what
            // is asked only (not to double): the queue is never held twice.
            self.bank = be.zeros(0)?;
            host.reserve_exact(n * d - host.len());
            host.resize(n * d, 0.0);
            self.bank = be.upload_owned(host)?;
            self.room = m;
        }
        if be.len(&self.cos) != m * n {
            self.cos = be.zeros(m * n)?;
            self.grad = be.zeros(m * d)?;
        }
        Ok(())
    }

    /// One DCQ step: queries `probe` rows `a[i]`, keys `gallery` rows `b[i]` (the same identity),
    /// with `a` and `b` the input's halves. Returns the loss, dL/d(probe) for all rows (zero
    /// outside `a`) and the fraction of queries whose identity had an entry in the queue (masked).
    pub fn step_pairs(&mut self, input: PairedInput<'_>) -> Result<StepOutput> {
        let (a, b) = input.halves();
        let labels = input.labels;
        let d = self.dim;
        let m = a.len();
        let pair_ok = a.len() == b.len() && a.iter().zip(b).all(|(&q, &k)| labels[q] == labels[k]);
        if !pair_ok {
            return Err(Error::Other(
                "DCQ needs each query row a[i] paired with a key row b[i] of the same identity; \
                 train it with the identity loader only (train.loaders.instances: 0)"
                    .into(),
            ));
        }
        let mut out = vec![0.0f32; input.probe.len()];
        if m == 0 {
            return Ok(StepOutput {
                loss: Default::default(),
                grad: out,
                stats: HeadStats::default(),
            });
        }
        self.ensure(m)?;
        let k = self.len;
        let n = k + m;
        let be = &self.be;
        self.queries = be.upload(&gather_rows(input.probe, a, d))?; // (m, D)
        self.keys = be.upload(&gather_rows(input.gallery, b, d))?; // (m, D)
        let step_rows: Vec<usize> = (0..m).collect();
        let bank_rows: Vec<usize> = (k..n).collect();
        be.copy_rows(&self.keys, &step_rows, &mut self.bank, &bank_rows, d)?;
        be.matmul_abt(m, n, d, &self.queries, &self.bank, &mut self.cos)?; // (m, K + m)

        // Mask the other queries' keys and the queue entries of each query's identity.
        let mut of_label: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, &q) in a.iter().enumerate() {
            of_label.entry(labels[q]).or_default().push(i);
        }
        let mut masked = Vec::with_capacity(m * (m - 1));
        for i in 0..m {
            masked.extend((0..m).filter(|&j| j != i).map(|j| i * n + k + j));
        }
        let mut hit = vec![false; m];
        for (j, label) in self.labels.iter().enumerate() {
            if let Some(queries) = label.and_then(|l| of_label.get(&l)) {
                for &i in queries {
                    masked.push(i * n + j);
                    hit[i] = true;
                }
            }
        }
        be.fill_at(&mut self.cos, &masked, MASKED)?;

        let targets: Vec<i64> = (0..m).map(|i| (k + i) as i64).collect();
        let spec = LossSpec::mean_cross_entropy(self.margin, self.scale, m);
        let targets = be.upload_targets(targets)?;
        let loss = be.margin_loss(&mut self.cos, m, n, &targets, &spec)?; // cos ← dL/dcos
        be.matmul_ab(m, d, n, &self.cos, &self.bank, &mut self.grad, false)?; // (m, D)
        let g = be.download(&self.grad)?;
        scatter_rows(&g, a, &mut out, d);

        // Enqueue the step's keys and labels at the pointer, wrapping around.
        let dst: Vec<usize> = (0..m).map(|i| (self.ptr + i) % k).collect();
        be.copy_rows(&self.keys, &step_rows, &mut self.bank, &dst, d)?;
        for (&row, &key) in dst.iter().zip(b) {
            self.labels[row] = Some(labels[key]);
        }
        self.ptr = (self.ptr + m) % k;
        Ok(StepOutput {
            loss,
            grad: out,
            stats: HeadStats {
                hit_rate: Some(hit.iter().filter(|&&h| h).count() as f64 / m as f64),
            },
        })
    }
}

impl<B: Backend> ClassifierHead<B> for DcqHead<B> {
    fn step(&mut self, input: &StepInput<'_>) -> Result<StepOutput> {
        self.step_pairs(input.paired("DCQ")?)
    }

    /// The queue's features and labels.
    fn state_bytes(&self) -> u64 {
        (self.len * (self.dim * 4 + 8)) as u64
    }

    fn save_state(&self) -> Result<HeadState> {
        let (queue, labels) = self.queue()?;
        Ok(HeadState::Dcq {
            queue,
            labels,
            pointer: self.ptr,
        })
    }

    fn load_state(&mut self, state: &HeadState) -> Result<()> {
        let HeadState::Dcq {
            queue,
            labels,
            pointer,
        } = state
        else {
            return Err(state.wrong_method(Method::Dcq));
        };
        check_len("the queue", queue.len(), self.len * self.dim)?;
        check_len("the queue's labels", labels.len(), self.len)?;
        if *pointer >= self.len {
            return Err(Error::Other(format!(
                "head state: queue pointer {pointer} beyond the queue of {}",
                self.len
            )));
        }
        // The room after the queue is rewritten by every step before it is read.
        self.bank = self.be.upload(queue)?;
        self.room = 0;
        self.labels.clone_from(labels);
        self.ptr = *pointer;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::backend::CpuBackend;

    fn cfg(queue: usize) -> DcqConfig {
        DcqConfig {
            margin: Margin::CosFace(0.3),
            scale: 50.0,
            queue: Capacity::Count(queue),
            momentum: 0.999,
        }
    }

    /// One step of `h`: queries `probe` rows `a[i]`, keys `gallery` rows `b[i]`.
    fn step(
        h: &mut DcqHead<CpuBackend>,
        probe: &[f32],
        gallery: &[f32],
        labels: &[usize],
        a: &[usize],
        b: &[usize],
    ) -> Result<StepOutput> {
        let halves = Halves {
            a: a.to_vec(),
            b: b.to_vec(),
        };
        h.step_pairs(PairedInput {
            probe,
            gallery,
            labels,
            halves: &halves,
        })
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// A head whose queue holds `rows` (unit, D = 2) with `labels`.
    fn head_with(rows: &[[f32; 2]], labels: &[Option<usize>]) -> DcqHead<CpuBackend> {
        let mut h = DcqHead::new(CpuBackend, &cfg(rows.len()), 10, 2, 1).unwrap();
        h.bank = rows.iter().flat_map(|r| unit(r)).collect();
        h.labels = labels.to_vec();
        h
    }

    /// The authors' logits written out naively in f64: [q·k − m, q·queue_j (masked when same
    /// label)] × s, cross-entropy with target 0, mean over queries.
    fn naive_loss(
        q: &[Vec<f32>],
        k: &[Vec<f32>],
        ql: &[usize],
        queue: &[Vec<f32>],
        qlab: &[Option<usize>],
    ) -> f64 {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
        let (s, m) = (50.0, 0.3);
        let mut total = 0.0;
        for i in 0..q.len() {
            let mut logits = vec![s * (dot(&q[i], &k[i]) - m)];
            for (j, e) in queue.iter().enumerate() {
                let c = if qlab[j] == Some(ql[i]) {
                    -1e9
                } else {
                    dot(&q[i], e)
                };
                logits.push(s * c);
            }
            let max = logits.iter().cloned().fold(f64::MIN, f64::max);
            let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            total += lse - logits[0];
        }
        total / q.len() as f64
    }

    #[test]
    fn one_query_by_hand() {
        // q = (1, 0), its key (0.8, 0.6): positive cosine 0.8 → logit 50·(0.8 − 0.3) = 25.
        // Queue: (0.6, 0.8) label 7 → logit 30; (1, 0) label 3 (the query's identity) → masked.
        // Loss = ln(e^25 + e^30) − 25 = ln(1 + e^5) = 5.0067153.
        let mut h = head_with(&[[0.6, 0.8], [1.0, 0.0]], &[Some(7), Some(3)]);
        let probe = vec![1.0, 0.0, 0.0, 0.0];
        let gallery = vec![0.0, 0.0, 0.8, 0.6];
        let out = step(&mut h, &probe, &gallery, &[3, 3], &[0], &[1]).unwrap();
        assert!((out.loss.ce - 5.0067153).abs() < 1e-5, "{}", out.loss.ce);
        assert_eq!(out.stats.hit_rate, Some(1.0));
        // Without the mask the (1, 0) entry gives logit 50: ln(e^25 + e^30 + e^50) − 25 ≈ 25.
        let mut unmasked = head_with(&[[0.6, 0.8], [1.0, 0.0]], &[Some(7), Some(4)]);
        let out = step(&mut unmasked, &probe, &gallery, &[3, 3], &[0], &[1]).unwrap();
        assert!((out.loss.ce - 25.0).abs() < 1e-3, "{}", out.loss.ce);
        assert_eq!(out.stats.hit_rate, Some(0.0));
    }

    #[test]
    fn loss_with_masking_matches_the_naive_logits() {
        let queue: Vec<Vec<f32>> = [[0.6, 0.8], [-1.0, 0.2], [0.3, -0.9], [0.9, 0.1]]
            .iter()
            .map(|r| unit(r))
            .collect();
        let qlab = [Some(1), Some(2), None, Some(1)];
        let rows: Vec<[f32; 2]> = queue.iter().map(|r| [r[0], r[1]]).collect();
        let mut h = head_with(&rows, &qlab);
        // Batch rows: 0 = query of id 1, 1 = its key, 2 = query of id 2, 3 = its key.
        let emb: Vec<Vec<f32>> = [[0.7, 0.7], [0.5, 0.9], [-0.8, 0.5], [-0.9, 0.3]]
            .iter()
            .map(|r| unit(r))
            .collect();
        let flat: Vec<f32> = emb.concat();
        let labels = [1, 1, 2, 2];
        let out = step(&mut h, &flat, &flat, &labels, &[0, 2], &[1, 3]).unwrap();
        let want = naive_loss(
            &[emb[0].clone(), emb[2].clone()],
            &[emb[1].clone(), emb[3].clone()],
            &[1, 2],
            &queue,
            &qlab,
        );
        assert!(
            (out.loss.ce - want).abs() < 1e-4 * want.max(1.0),
            "{} vs {want}",
            out.loss.ce
        );
        // Key rows get no gradient.
        assert!(out.grad[2..4]
            .iter()
            .chain(&out.grad[6..8])
            .all(|&g| g == 0.0));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let queue = [[0.6f32, 0.8], [-1.0, 0.2], [0.3, -0.9]];
        let qlab = [Some(5), None, Some(1)];
        let labels = [1, 1, 2, 2];
        let base = [0.7f32, 0.7, 0.5, 0.9, -0.8, 0.5, -0.9, 0.3];
        let loss_at = |probe: &[f32]| {
            let mut h = head_with(&queue, &qlab);
            h.scale = 4.0; // a soft softmax, so that every logit moves the loss
            step(&mut h, probe, &base, &labels, &[0, 2], &[1, 3]).unwrap()
        };
        let g = loss_at(&base).grad;
        let eps = 1e-3f32;
        for i in [0usize, 1, 4, 5] {
            let (mut up, mut down) = (base, base);
            up[i] += eps;
            down[i] -= eps;
            let fd = (loss_at(&up).loss.ce - loss_at(&down).loss.ce) / (2.0 * eps as f64);
            assert!(
                (fd - g[i] as f64).abs() < 2e-3,
                "coordinate {i}: {fd} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn queue_wraps_around_in_fifo_order() {
        let mut h = DcqHead::new(CpuBackend, &cfg(3), 10, 2, 1).unwrap();
        let emb: Vec<f32> = (0..4).flat_map(|i| unit(&[1.0, i as f32])).collect();
        let steps: [[usize; 2]; 3] = [[0, 1], [2, 3], [4, 5]];
        for labs in steps {
            let labels = [labs[0], labs[0], labs[1], labs[1]];
            step(&mut h, &emb, &emb, &labels, &[0, 2], &[1, 3]).unwrap();
        }
        // Keys enqueued: labels 0, 1 → rows 0, 1; 2, 3 → rows 2, 0; 4, 5 → rows 1, 2.
        let (rows, labels) = h.queue().unwrap();
        assert_eq!(labels, vec![Some(3), Some(4), Some(5)]);
        assert_eq!(h.pointer(), 0);
        // Keys are batch rows 1 and 3: row 0 holds the last step-2 key, rows 1 and 2 step 3's.
        assert_eq!(&rows[0..2], &emb[6..8]);
        assert_eq!(&rows[2..4], &emb[2..4]);
        assert_eq!(&rows[4..6], &emb[6..8]);
    }

    #[test]
    fn unpaired_rows_are_rejected() {
        let mut h = DcqHead::new(CpuBackend, &cfg(3), 10, 2, 1).unwrap();
        let emb = vec![1.0f32, 0.0, 0.0, 1.0];
        let err = step(&mut h, &emb, &emb, &[1, 2], &[0], &[1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("same identity"), "{err}");
    }

    #[test]
    fn validation_needs_pairs_only_and_a_queue_longer_than_a_step_of_keys() {
        let ctx = |pairs, instances| HeadContext {
            classes: 100,
            pairs_per_step: pairs,
            instances_per_step: instances,
        };
        assert!(cfg(10).validate(&ctx(8, 0)).is_ok());
        let head = crate::heads::HeadConfig::Dcq(cfg(10));
        let loaders = |identities, instances| crate::data::loaders::LoaderConfig {
            identities,
            instances,
        };
        assert!(head.check_loaders(&loaders(8, 0)).is_ok());
        assert_eq!(
            head.check_loaders(&loaders(8, 4)).unwrap_err().field,
            "instances"
        );
        assert_eq!(
            head.check_loaders(&loaders(0, 0)).unwrap_err().field,
            "identities"
        );
        assert_eq!(cfg(4).validate(&ctx(8, 0)).unwrap_err().field, "queue");
        let mut c = cfg(10);
        c.momentum = 1.5;
        assert_eq!(c.validate(&ctx(8, 0)).unwrap_err().field, "momentum");
    }
}
