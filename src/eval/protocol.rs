//! The open-set evaluation protocol: the layout of the held-out embeddings it expects, and the one
//! call that turns them into the reported [`Metrics`] (TAR at FAR 1e-2/1e-3/1e-4 on seeded pairs,
//! k-fold best-threshold accuracy on the same pairs, rank-1 identification on all instances).
//!
//! Layout: `embeddings` is row-major (n, dim), rows L2-normalised; `labels[i]` is row `i`'s
//! identity; the rows of one identity are contiguous, in instance order, and every identity has at
//! least two instances (one for the gallery, at least one probe, and a genuine pair to draw).

use std::collections::HashSet;
use std::ops::Range;

use super::identification::rank1;
use super::verification::{best_threshold_accuracy, pair_scores, sample_pairs, tars_at_fars};
use super::{EvalConfig, Metrics};

/// The false-accept rates reported, in the order of the `tar_far_*` fields of [`Metrics`].
pub const FARS: [f64; 3] = [1e-2, 1e-3, 1e-4];

/// The row range of each identity, in order of first appearance.
///
/// # Panics
/// If an identity's rows are not contiguous or an identity has fewer than two rows: the held-out
/// set was assembled wrongly, and every metric would silently mean something else.
pub fn identity_blocks(labels: &[usize]) -> Vec<Range<usize>> {
    let mut blocks: Vec<Range<usize>> = Vec::new();
    let mut seen = HashSet::new();
    for (row, &label) in labels.iter().enumerate() {
        match blocks.last_mut() {
            Some(block) if labels[block.start] == label => block.end = row + 1,
            _ => {
                assert!(
                    seen.insert(label),
                    "held-out layout: identity {label} reappears at row {row}; keep each identity's rows contiguous"
                );
                blocks.push(row..row + 1);
            }
        }
    }
    for block in &blocks {
        assert!(
            block.len() >= 2,
            "held-out layout: identity {} has {} instance at row {}; evaluation needs at least 2 per identity",
            labels[block.start],
            block.len(),
            block.start
        );
    }
    blocks
}

/// All open-set metrics of one model's held-out embeddings, a pure function of its arguments.
///
/// `cfg.pairs` genuine and as many impostor pairs are drawn with `seed` ([`sample_pairs`]); the
/// TARs ([`tars_at_fars`]) and the `cfg.folds`-fold accuracy ([`best_threshold_accuracy`]) are read
/// from their scores. With fewer than 1/FAR impostor pairs (e.g. under 10,000 for 1e-4), that TAR
/// is the conservative "no impostor accepted" point. Rank-1 ([`rank1`]) uses every row.
///
/// # Panics
/// If `embeddings.len() != labels.len() * dim`, `dim == 0`, the layout is broken
/// ([`identity_blocks`]), there are fewer than two identities, or `cfg.pairs < cfg.folds` or
/// `cfg.folds < 2`.
pub fn evaluate(
    embeddings: &[f32],
    dim: usize,
    labels: &[usize],
    cfg: &EvalConfig,
    seed: u64,
) -> Metrics {
    assert!(
        dim > 0 && embeddings.len() == labels.len() * dim,
        "evaluate: {} values for {} labels of dim {dim}",
        embeddings.len(),
        labels.len()
    );
    let pairs = sample_pairs(labels, cfg.pairs, seed);
    let genuine = pair_scores(embeddings, dim, &pairs.genuine);
    let impostor = pair_scores(embeddings, dim, &pairs.impostor);
    let tars = tars_at_fars(&genuine, &impostor, &FARS);
    let (accuracy, accuracy_std) = best_threshold_accuracy(&genuine, &impostor, cfg.folds);
    Metrics {
        tar_far_1e2: tars[0],
        tar_far_1e3: tars[1],
        tar_far_1e4: tars[2],
        accuracy,
        accuracy_std,
        rank1: rank1(embeddings, dim, labels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn normalised(mut v: Vec<f32>, dim: usize) -> Vec<f32> {
        for row in v.chunks_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    /// `ids` identities of `per` instances each, in contiguous blocks.
    fn labels(ids: usize, per: usize) -> Vec<usize> {
        (0..ids * per).map(|i| i / per).collect()
    }

    #[test]
    fn blocks_follow_the_rows() {
        assert_eq!(
            identity_blocks(&[5, 5, 5, 2, 2, 9, 9]),
            vec![0..3, 3..5, 5..7]
        );
    }

    #[test]
    #[should_panic(expected = "reappears at row 4")]
    fn blocks_reject_split_identity() {
        identity_blocks(&[1, 1, 2, 2, 1, 1]);
    }

    #[test]
    #[should_panic(expected = "has 1 instance")]
    fn blocks_reject_single_instance() {
        identity_blocks(&[1, 1, 2]);
    }

    #[test]
    fn random_embeddings_score_near_chance() {
        // 200 identities × 5 instances of independent random directions in 64 dims: genuine and
        // impostor scores share one distribution, so TAR@FAR ≈ FAR, accuracy ≈ 0.5 and rank-1 ≈
        // 1/200. Bounds are loose enough for sampling noise and tight enough to catch a metric
        // that leaks identity (which would push them towards 1).
        let (ids, per, dim) = (200, 5, 64);
        let mut rng = StdRng::seed_from_u64(1);
        let e = normalised(
            (0..ids * per * dim)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect(),
            dim,
        );
        let m = evaluate(
            &e,
            dim,
            &labels(ids, per),
            &EvalConfig {
                pairs: 3000,
                folds: 10,
            },
            3,
        );
        assert!(m.tar_far_1e2 < 0.05, "{m:?}");
        assert!(
            m.tar_far_1e4 <= m.tar_far_1e3 && m.tar_far_1e3 <= m.tar_far_1e2,
            "{m:?}"
        );
        assert!((0.45..0.56).contains(&m.accuracy), "{m:?}");
        assert!(m.rank1 < 0.02, "{m:?}");
    }

    #[test]
    fn clustered_embeddings_score_perfectly() {
        // 50 identities, each a random direction in 32 dims; instances add noise of ±0.05 per
        // coordinate, so genuine scores stay near 1 while impostor scores of random directions
        // stay far below: every metric is perfect.
        let (ids, per, dim) = (50, 4, 32);
        let mut rng = StdRng::seed_from_u64(2);
        let centres: Vec<f32> = (0..ids * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let centres = normalised(centres, dim);
        let e: Vec<f32> = (0..ids * per)
            .flat_map(|row| (0..dim).map(move |k| (row / per) * dim + k))
            .map(|c| centres[c] + rng.gen_range(-0.05..0.05))
            .collect();
        let e = normalised(e, dim);
        let m = evaluate(
            &e,
            dim,
            &labels(ids, per),
            &EvalConfig {
                pairs: 1000,
                folds: 10,
            },
            4,
        );
        let perfect = Metrics {
            tar_far_1e2: 1.0,
            tar_far_1e3: 1.0,
            tar_far_1e4: 1.0,
            accuracy: 1.0,
            accuracy_std: 0.0,
            rank1: 1.0,
        };
        assert_eq!(m, perfect);
    }

    #[test]
    fn evaluate_is_a_function_of_its_seed() {
        let (ids, per, dim) = (20, 3, 8);
        let mut rng = StdRng::seed_from_u64(5);
        let e = normalised(
            (0..ids * per * dim)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect(),
            dim,
        );
        let cfg = EvalConfig {
            pairs: 200,
            folds: 10,
        };
        let l = labels(ids, per);
        assert_eq!(
            evaluate(&e, dim, &l, &cfg, 9),
            evaluate(&e, dim, &l, &cfg, 9)
        );
    }
}
