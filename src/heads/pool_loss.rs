//! F²C's losses of probe features against the dynamic class pool (tiandunx/FFC `add_margin` and
//! the two evaluations of `forward_impl`): a probe whose identity is resident gets the margin
//! softmax over its cosines with all Q slots (target: its slot); one that is not gets the mean of
//! its k largest clipped cosines. With [`PoolEval::TwoRow`] (the reference) this is evaluated
//! against row 0 of every slot and again against the mix that takes row 1 for the slots refreshed
//! this batch, and the two losses are summed.

use super::backend::{Backend, LossParts, LossSpec};
use super::class_pool::FeaturePool;
use super::f2c::PoolEval;
use super::Margin;
use crate::error::Result;

/// Settings of one pool-loss evaluation.
#[derive(Debug, Clone, Copy)]
pub struct PoolLossSpec {
    pub margin: Margin,
    pub scale: f32,
    /// k of the negative loss.
    pub k: usize,
    pub eval: PoolEval,
}

/// Loss of probe embeddings `emb` (B, D) against `pool`; `targets[i]` is the probe's slot or −1.
/// `refreshed` are the slots written this batch that were already resident. Returns the loss and
/// dL/d(emb), (B, D).
pub fn pool_loss<B: Backend>(be: &B, pool: &FeaturePool<B>, emb: &[f32], targets: &[i64], refreshed: &[usize], spec: &PoolLossSpec) -> Result<(LossParts, Vec<f32>)> {
    let (b, d, q) = (targets.len(), pool.dim, pool.map.capacity());
    assert_eq!(emb.len(), b * d, "embeddings must be (B, D)");
    let n_pos = targets.iter().filter(|&&t| t >= 0).count();
    let n_neg = b - n_pos;
    // Means over the positive rows (cross_entropy's mean) and over the (n_neg × k) selected
    // negatives (torch.mean of the gathered top-k), as in `add_margin`.
    let loss_spec = LossSpec {
        margin: spec.margin,
        scale: spec.scale,
        ce_weight: if n_pos > 0 { 1.0 / n_pos as f32 } else { 0.0 },
        neg_k: spec.k,
        neg_weight: if n_neg > 0 { 1.0 / (n_neg * spec.k) as f32 } else { 0.0 },
    };
    let e = be.upload(emb)?;
    let mut cos = be.zeros(b * q)?;
    let mut grad = be.zeros(b * d)?;
    let mut total = LossParts::default();
    let mut against = |weights: &B::Buf, accumulate: bool, cos: &mut B::Buf, grad: &mut B::Buf| -> Result<()> {
        be.matmul_abt(b, q, d, &e, weights, cos)?; // (B, Q)
        let parts = be.margin_loss(cos, b, q, targets, &loss_spec)?;
        be.matmul_ab(b, d, q, cos, weights, grad, accumulate)?; // (B, D)
        total.ce += parts.ce;
        total.neg += parts.neg;
        Ok(())
    };
    against(&pool.features[0], false, &mut cos, &mut grad)?;
    if spec.eval == PoolEval::TwoRow {
        match pool.features.get(1) {
            Some(row1) => {
                let mut mix = be.duplicate(&pool.features[0])?;
                be.copy_rows(row1, refreshed, &mut mix, refreshed, d)?;
                against(&mix, true, &mut cos, &mut grad)?;
            }
            // One row per slot: the mix is row 0 itself, so the second term equals the first.
            None => {
                total.ce *= 2.0;
                total.neg *= 2.0;
                let g = be.download(&grad)?;
                let doubled: Vec<f32> = g.iter().map(|x| 2.0 * x).collect();
                return Ok((total, doubled));
            }
        }
    }
    Ok((total, be.download(&grad)?))
}
