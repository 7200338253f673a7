//! F²C's losses of probe features against the dynamic class pool (tiandunx/FFC `add_margin` and
//! the two evaluations of `forward_impl`): a probe whose identity is resident gets the margin
//! softmax over its cosines with all Q slots (target: its slot); one that is not gets the mean of
//! its k largest clipped cosines. With [`PoolEval::TwoRow`] (the reference) this is evaluated
//! against row 0 of every slot and again against the mix that takes row 1 for the slots refreshed
//! this batch, and the two losses are summed.

use serde::{Deserialize, Serialize};

use super::backend::{Backend, LossParts, LossSpec, Targets};
use super::class_pool::FeaturePool;
use super::Margin;
use crate::error::Result;

/// Which pool rows the losses are evaluated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolEval {
    /// The reference: once against row 0 of every slot and once against the mix that uses row 1
    /// for slots refreshed (and already resident) in this batch; the two losses are summed.
    TwoRow,
    /// Only the first term: against row 0 of every slot.
    Row0,
}

/// Settings of one pool-loss evaluation.
#[derive(Debug, Clone, Copy)]
pub struct PoolLossSpec {
    pub margin: Margin,
    pub scale: f32,
    /// k of the negative loss.
    pub k: usize,
    pub eval: PoolEval,
}

/// Work buffers of [`pool_loss_with`], kept by the head between steps so that a step allocates
/// nothing of size B × Q (100 MB at Q = 100k): grown when a batch is larger than any before.
pub struct PoolLossWork<B: Backend> {
    /// Rows and slots the buffers hold.
    batch: usize,
    slots: usize,
    emb: B::Buf,
    /// (B, Q) cosines, then dL/dcos.
    cos: B::Buf,
    /// (B, D) dL/d(emb).
    grad: B::Buf,
}

impl<B: Backend> PoolLossWork<B> {
    fn ensure(
        be: &B,
        work: &mut Option<Self>,
        batch: usize,
        slots: usize,
        dim: usize,
    ) -> Result<()> {
        if work
            .as_ref()
            .is_some_and(|w| w.batch >= batch && w.slots >= slots)
        {
            return Ok(());
        }
        let (batch, slots) = work
            .as_ref()
            .map_or((batch, slots), |w| (w.batch.max(batch), w.slots.max(slots)));
        // Drop the old buffers first: at the peak only one set is alive.
        *work = None;
        *work = Some(PoolLossWork {
            batch,
            slots,
            emb: be.zeros(batch * dim)?,
            cos: be.zeros(batch * slots)?,
            grad: be.zeros(batch * dim)?,
        });
        Ok(())
    }
}

/// A stable reordering of the probe rows with the positive rows (target ≥ 0) first, so that the
/// negative rows — whose dL/dcos has at most k non-zeros — form one block the backend can treat
/// as sparse. Row-wise losses and gradients do not depend on the order; the gradient is put back
/// in the caller's order.
struct PositivesFirst {
    /// `order[i]` = the caller's row placed at position i.
    order: Vec<usize>,
}

impl PositivesFirst {
    fn new(targets: &[i64]) -> Self {
        let (mut order, neg): (Vec<usize>, Vec<usize>) =
            (0..targets.len()).partition(|&i| targets[i] >= 0);
        order.extend(neg);
        PositivesFirst { order }
    }

    fn targets(&self, targets: &[i64]) -> Vec<i64> {
        self.order.iter().map(|&i| targets[i]).collect()
    }

    fn rows(&self, x: &[f32], d: usize) -> Vec<f32> {
        self.order
            .iter()
            .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
            .collect()
    }

    fn restore(&self, x: &[f32], d: usize) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        for (pos, &i) in self.order.iter().enumerate() {
            out[i * d..(i + 1) * d].copy_from_slice(&x[pos * d..(pos + 1) * d]);
        }
        out
    }
}

fn loss_spec(targets: &[i64], spec: &PoolLossSpec) -> LossSpec {
    let b = targets.len();
    let n_pos = targets.iter().filter(|&&t| t >= 0).count();
    let n_neg = b - n_pos;
    // Means over the positive rows (cross_entropy's mean) and over the (n_neg × k) selected
    // negatives (torch.mean of the gathered top-k), as in `add_margin`.
    LossSpec {
        margin: spec.margin,
        scale: spec.scale,
        ce_weight: if n_pos > 0 { 1.0 / n_pos as f32 } else { 0.0 },
        neg_k: spec.k,
        neg_weight: if n_neg > 0 {
            1.0 / (n_neg * spec.k) as f32
        } else {
            0.0
        },
    }
}

/// One evaluation against the (Q, D) `weights`: cosines, fused loss, dL/d(emb) written to (or, with
/// `accumulate`, added onto) `w.grad`.
#[allow(clippy::too_many_arguments)]
fn against<B: Backend>(
    be: &B,
    w: &mut PoolLossWork<B>,
    weights: &B::Buf,
    accumulate: bool,
    b: usize,
    q: usize,
    d: usize,
    targets: &Targets<B::Labels>,
    spec: &LossSpec,
    total: &mut LossParts,
) -> Result<()> {
    be.matmul_abt(b, q, d, &w.emb, weights, &mut w.cos)?; // (B, Q)
    let parts = be.margin_loss(&mut w.cos, b, q, targets, spec)?;
    // Rows come positives first (see `positives_first`): the negative rows of dL/dcos hold at
    // most k non-zeros each, which the backend may exploit.
    let n_pos = targets.host().iter().take_while(|&&t| t >= 0).count();
    be.matmul_ab_sparse_tail(n_pos, b, d, q, &w.cos, weights, &mut w.grad, accumulate)?; // (B, D)
    total.ce += parts.ce;
    total.neg += parts.neg;
    Ok(())
}

/// The start both entry points share: the rows put positives first and uploaded with their
/// targets, and the first term, against row 0 of every slot, evaluated into `w`. Returns the order
/// (to restore the gradient's rows), the reordered targets (on the device, for the second term
/// too), the loss's spec and the first term.
#[allow(clippy::too_many_arguments)]
fn first_term<B: Backend>(
    be: &B,
    w: &mut PoolLossWork<B>,
    row0: &B::Buf,
    emb: &[f32],
    targets: &[i64],
    q: usize,
    d: usize,
    spec: &PoolLossSpec,
) -> Result<(PositivesFirst, Targets<B::Labels>, LossSpec, LossParts)> {
    let order = PositivesFirst::new(targets);
    let targets = be.upload_targets(order.targets(targets))?;
    w.emb = be.upload(&order.rows(emb, d))?;
    let ls = loss_spec(targets.host(), spec);
    let mut total = LossParts::default();
    let b = targets.len();
    against(be, w, row0, false, b, q, d, &targets, &ls, &mut total)?;
    Ok((order, targets, ls, total))
}

/// The loss and dL/d(emb) out of the work buffers; doubled when the second term equals the first.
fn finish<B: Backend>(
    be: &B,
    w: &PoolLossWork<B>,
    b: usize,
    d: usize,
    mut total: LossParts,
    double: bool,
) -> Result<(LossParts, Vec<f32>)> {
    let mut g = be.download(&w.grad)?;
    g.truncate(b * d);
    if double {
        // One row per slot: the mix is row 0 itself, so the second term equals the first.
        total.ce *= 2.0;
        total.neg *= 2.0;
        g.iter_mut().for_each(|x| *x *= 2.0);
    }
    Ok((total, g))
}

/// Loss of probe embeddings `emb` (B, D) against `pool`; `targets[i]` is the probe's slot or −1.
/// `refreshed` are the slots written this batch that were already resident. Returns the loss and
/// dL/d(emb), (B, D). Allocates its buffers (and, for the two-row mix, a copy of row 0) per call;
/// the head uses [`pool_loss_with`].
pub fn pool_loss<B: Backend>(
    be: &B,
    pool: &FeaturePool<B>,
    emb: &[f32],
    targets: &[i64],
    refreshed: &[usize],
    spec: &PoolLossSpec,
) -> Result<(LossParts, Vec<f32>)> {
    let (b, d, q) = (targets.len(), pool.dim, pool.map.capacity());
    assert_eq!(emb.len(), b * d, "embeddings must be (B, D)");
    let mut work = None;
    PoolLossWork::ensure(be, &mut work, b, q, d)?;
    let w = work.as_mut().expect("work buffers");
    let (order, targets, ls, mut total) =
        first_term(be, w, &pool.features[0], emb, targets, q, d, spec)?;
    let targets = &targets;
    let mut double = false;
    if spec.eval == PoolEval::TwoRow {
        match pool.features.get(1) {
            Some(row1) => {
                let mut mix = be.duplicate(&pool.features[0])?;
                be.copy_rows(row1, refreshed, &mut mix, refreshed, d)?;
                against(be, w, &mix, true, b, q, d, targets, &ls, &mut total)?;
            }
            None => double = true,
        }
    }
    let (total, grad) = finish(be, w, b, d, total, double)?;
    Ok((total, order.restore(&grad, d)))
}

/// [`pool_loss`] with reused work buffers, and the two-row mix made in place: the refreshed slots'
/// rows 0 and 1 are swapped for the second term and swapped back — O(|refreshed|·D) instead of a
/// copy of the whole (Q, D) row. The pool is unchanged on return.
pub fn pool_loss_with<B: Backend>(
    be: &B,
    work: &mut Option<PoolLossWork<B>>,
    pool: &mut FeaturePool<B>,
    emb: &[f32],
    targets: &[i64],
    refreshed: &[usize],
    spec: &PoolLossSpec,
) -> Result<(LossParts, Vec<f32>)> {
    let (b, d, q) = (targets.len(), pool.dim, pool.map.capacity());
    assert_eq!(emb.len(), b * d, "embeddings must be (B, D)");
    PoolLossWork::ensure(be, work, b, q, d)?;
    let w = work.as_mut().expect("work buffers");
    let (order, targets, ls, mut total) =
        first_term(be, w, &pool.features[0], emb, targets, q, d, spec)?;
    let targets = &targets;
    let mut double = false;
    if spec.eval == PoolEval::TwoRow {
        if pool.features.len() > 1 {
            let (row0, rest) = pool.features.split_at_mut(1);
            let (row0, row1) = (&mut row0[0], &mut rest[0]);
            let refreshed = be.upload_rows(refreshed.to_vec())?;
            be.swap_rows(row0, row1, &refreshed, d)?;
            let result = against(be, w, row0, true, b, q, d, targets, &ls, &mut total);
            // Swap back whatever the evaluation returned.
            be.swap_rows(row0, row1, &refreshed, d)?;
            result?;
        } else {
            double = true;
        }
    }
    let (total, grad) = finish(be, w, b, d, total, double)?;
    Ok((total, order.restore(&grad, d)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::backend::CpuBackend;
    use crate::heads::class_pool::{Capacity, Eviction, PoolConfig, Rows};

    fn unit_rows(n: usize, d: usize, salt: f32) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n * d)
            .map(|i| (i as f32 * 0.618 + salt).sin())
            .collect();
        for r in v.chunks_mut(d) {
            let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            r.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    #[test]
    fn reused_buffers_match_fresh_evaluation_across_batch_shapes() {
        // A 2-row pool of 12 slots, D 4; batches of 6, then 2, then 9 probes (buffers grow, shrink in
        // use, grow again). Each call must equal the allocating `pool_loss` bit for bit, and leave
        // the pool exactly as it found it.
        let (q, d) = (12, 4);
        let cfg = PoolConfig {
            capacity: Capacity::Count(q),
            rows: Rows::Two,
            eviction: Eviction::Lru,
        };
        let mut pool = FeaturePool::new(&CpuBackend, &cfg, 100, d, 5).unwrap();
        let spec = PoolLossSpec {
            margin: Margin::CosFace(0.3),
            scale: 16.0,
            k: 3,
            eval: PoolEval::TwoRow,
        };
        let mut work = None;
        for (step, b) in [6usize, 2, 9].into_iter().enumerate() {
            let labels: Vec<usize> = (0..b).map(|i| (i * 3 + step) % 20).collect();
            pool.write_batch(&CpuBackend, &unit_rows(b, d, step as f32), &labels, false)
                .unwrap();
            // Second write of the same identities: every slot is refreshed (row 1 differs from row 0).
            let write2 = pool
                .write_batch(
                    &CpuBackend,
                    &unit_rows(b, d, 10.0 + step as f32),
                    &labels,
                    false,
                )
                .unwrap();
            let mut targets: Vec<i64> = labels
                .iter()
                .map(|&l| pool.map.slot_of(l).map_or(-1, |s| s as i64))
                .collect();
            targets[0] = -1; // one negative row
            let emb = unit_rows(b, d, 20.0 + step as f32);
            let fresh =
                pool_loss(&CpuBackend, &pool, &emb, &targets, &write2.refreshed, &spec).unwrap();
            let before = pool.features.clone();
            let reused = pool_loss_with(
                &CpuBackend,
                &mut work,
                &mut pool,
                &emb,
                &targets,
                &write2.refreshed,
                &spec,
            )
            .unwrap();
            assert_eq!(fresh, reused, "batch {b}");
            assert_eq!(pool.features, before, "pool restored after batch {b}");
            assert!(!write2.refreshed.is_empty());
        }
    }

    #[test]
    fn the_two_row_term_reads_the_first_terms_uploads() {
        // Five probes against a 2-row pool whose written slots are all refreshed: the probes'
        // embeddings, their targets and the refreshed slots each cross to the device once, though
        // both terms read the targets and both swaps the slots; back come the gradient and each
        // term's two loss parts per row.
        use crate::heads::backend::Metered;
        use crate::traffic;
        let (q, d, b) = (12, 4, 5);
        let be = Metered(CpuBackend);
        let cfg = PoolConfig {
            capacity: Capacity::Count(q),
            rows: Rows::Two,
            eviction: Eviction::Lru,
        };
        let mut pool = FeaturePool::new(&be, &cfg, 100, d, 5).unwrap();
        let labels: Vec<usize> = (0..b).collect();
        pool.write_batch(&be, &unit_rows(b, d, 0.0), &labels, false)
            .unwrap();
        let refreshed = pool
            .write_batch(&be, &unit_rows(b, d, 1.0), &labels, false)
            .unwrap()
            .refreshed;
        assert_eq!(refreshed.len(), b);
        let targets: Vec<i64> = labels
            .iter()
            .map(|&l| pool.map.slot_of(l).map_or(-1, |s| s as i64))
            .collect();
        let spec = PoolLossSpec {
            margin: Margin::CosFace(0.3),
            scale: 16.0,
            k: 3,
            eval: PoolEval::TwoRow,
        };
        traffic::take();
        let emb = unit_rows(b, d, 2.0);
        pool_loss_with(&be, &mut None, &mut pool, &emb, &targets, &refreshed, &spec).unwrap();
        let t = traffic::take();
        let (b, d) = (b as u64, d as u64);
        assert_eq!(
            (t.to_device_copies, t.to_device_bytes),
            (3, 4 * b * d + 8 * b + 8 * b)
        );
        assert_eq!(
            (t.to_host_copies, t.to_host_bytes),
            (3, 4 * b * d + 2 * 8 * b)
        );
    }
}
