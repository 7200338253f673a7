//! Verification: deciding whether two faces are the same identity by thresholding their cosine
//! score. Holds the seeded genuine/impostor pair sampling, the ROC read at fixed false-accept rates
//! (TAR@FAR), and the k-fold best-threshold accuracy of the LFW protocol (reference behaviour:
//! insightface `eval/verification.py`, which picks each fold's threshold on the other folds and
//! reports the mean and standard deviation of the held-out accuracies).
//!
//! A pair is accepted when its score is strictly greater than the threshold, everywhere in this
//! file, so that the ROC and the accuracy agree on what a threshold means.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::protocol::identity_blocks;

/// Row pairs to score, as indices into the embedding matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairs {
    /// Two different instances of one identity.
    pub genuine: Vec<(usize, usize)>,
    /// One instance each of two different identities.
    pub impostor: Vec<(usize, usize)>,
}

/// Draws `pairs` genuine and `pairs` impostor pairs, a pure function of `(labels, pairs, seed)`.
///
/// Genuine pair: an identity uniformly (not weighted by its instance count, so that identities
/// with many instances do not dominate), then two different instances of it uniformly.
/// Impostor pair: two different identities uniformly, then one instance of each uniformly.
/// Pairs are drawn independently (with replacement), all genuine pairs first, then all impostor
/// pairs, from one `StdRng::seed_from_u64(seed)`; the stream is fixed for a given `rand` version,
/// which `Cargo.lock` pins. The order within a pair is the order drawn.
///
/// # Panics
/// If `labels` breaks the held-out layout (see [`identity_blocks`]), or if `pairs > 0` and there
/// are fewer than two identities (no impostor pair exists).
pub fn sample_pairs(labels: &[usize], pairs: usize, seed: u64) -> Pairs {
    let blocks = identity_blocks(labels);
    assert!(
        pairs == 0 || blocks.len() >= 2,
        "pair sampling: {} held-out identities, need at least 2 to form impostor pairs; hold out more identities",
        blocks.len()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let genuine = (0..pairs)
        .map(|_| {
            let block = &blocks[rng.gen_range(0..blocks.len())];
            let a = rng.gen_range(0..block.len());
            // Drawing from len - 1 and skipping `a` gives a uniform second instance that differs.
            let mut b = rng.gen_range(0..block.len() - 1);
            if b >= a {
                b += 1;
            }
            (block.start + a, block.start + b)
        })
        .collect();
    let impostor = (0..pairs)
        .map(|_| {
            let i = rng.gen_range(0..blocks.len());
            let mut j = rng.gen_range(0..blocks.len() - 1);
            if j >= i {
                j += 1;
            }
            let a = rng.gen_range(blocks[i].clone());
            let b = rng.gen_range(blocks[j].clone());
            (a, b)
        })
        .collect();
    Pairs { genuine, impostor }
}

/// Cosine similarity of two L2-normalised embeddings, i.e. their dot product.
///
/// Eight partial sums in a fixed order: the compiler vectorises it, and the result does not
/// depend on the thread that computes it.
pub fn score(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "score: embeddings of different lengths");
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Scores of `pairs` over row-major `embeddings` of shape (n, dim).
///
/// # Panics
/// If `dim` is 0, `embeddings.len()` is not a multiple of `dim`, or a row index is out of range.
pub fn pair_scores(embeddings: &[f32], dim: usize, pairs: &[(usize, usize)]) -> Vec<f32> {
    assert!(
        dim > 0 && embeddings.len().is_multiple_of(dim),
        "pair scores: {} values do not form rows of dim {dim}",
        embeddings.len()
    );
    let row = |i: usize| &embeddings[i * dim..(i + 1) * dim];
    pairs.iter().map(|&(a, b)| score(row(a), row(b))).collect()
}

/// True-accept rate at false-accept rate `far`; see [`tars_at_fars`] for the definition.
pub fn tar_at_far(genuine: &[f32], impostor: &[f32], far: f64) -> f64 {
    tars_at_fars(genuine, impostor, &[far])[0]
}

/// True-accept rates at several false-accept rates, from one sort of each score list
/// (O(n log n) overall, plus O(log n) per rate).
///
/// Definition, for each `far`: the threshold `t` is the smallest impostor score such that the
/// fraction of impostor scores strictly greater than `t` is at most `far`; TAR is the fraction of
/// genuine scores strictly greater than `t`. With `m` impostors, at most `k = floor(far * m)`
/// of them may lie above `t`, so `t` is the `(k + 1)`-th largest impostor score (a 1e-9 slack in
/// the floor keeps e.g. `0.29 * 100`, which is 28.999… in floating point, at `k = 29`).
///
/// With fewer than `1 / far` impostors, `k = 0`: `t` is the highest impostor score and TAR is the
/// fraction of genuine pairs scoring above every impostor ("no impostor accepted"). This is the
/// usual conservative reading; such a TAR is a lower bound on the TAR a larger impostor sample
/// would measure at that FAR, and equals the TAR at FAR `1 / m` or below. When `k >= m` (only
/// `far = 1` with the slack), no threshold is needed and TAR is 1. Genuine scores equal to `t`
/// are rejected.
///
/// # Panics
/// If `genuine` or `impostor` is empty, a score is not finite, or a `far` is outside `[0, 1]`.
pub fn tars_at_fars(genuine: &[f32], impostor: &[f32], fars: &[f64]) -> Vec<f64> {
    assert!(
        !genuine.is_empty() && !impostor.is_empty(),
        "tar at far: need genuine and impostor scores"
    );
    assert!(
        genuine.iter().chain(impostor).all(|s| s.is_finite()),
        "tar at far: non-finite score; check the embeddings for NaN"
    );
    let mut gen = genuine.to_vec();
    gen.sort_unstable_by(f32::total_cmp);
    let mut imp = impostor.to_vec();
    imp.sort_unstable_by(|a, b| b.total_cmp(a)); // descending: imp[k] is the (k + 1)-th largest
    fars.iter()
        .map(|&far| {
            assert!(
                (0.0..=1.0).contains(&far),
                "tar at far: far = {far} is not a rate in [0, 1]"
            );
            let allowed = (far * imp.len() as f64 + 1e-9).floor() as usize;
            if allowed >= imp.len() {
                return 1.0;
            }
            let t = imp[allowed];
            let rejected = gen.partition_point(|&g| g <= t);
            (gen.len() - rejected) as f64 / gen.len() as f64
        })
        .collect()
}

/// A scored pair, tagged with its kind and fold, for the accuracy sweeps.
#[derive(Debug, Clone, Copy)]
struct Scored {
    score: f32,
    genuine: bool,
    fold: usize,
}

/// Best-threshold verification accuracy with `folds`-fold cross-validation, as in LFW: for each
/// fold, the threshold that maximises accuracy on the other folds' pairs is applied to the fold's
/// own pairs. Returns `(mean, std)` of the held-out accuracies; the std is the population one
/// (divides by `folds`), as insightface's `np.std` reports.
///
/// Folds: genuine score `i` and impostor score `i` go to fold `i % folds`. The pairs of
/// [`sample_pairs`] are independent draws, so this is as good as a seeded shuffle, and every fold
/// holds a balanced share of both kinds.
///
/// Threshold: accuracy only changes at score values, so the sweep looks at the gaps between
/// consecutive distinct training scores (plus the two unbounded ends) and takes the midpoint of the
/// best gap (−∞ for "accept all", +∞ for "reject all"); on ties the lowest gap wins.
///
/// # Panics
/// If `folds < 2`, if either list has fewer than `folds` scores (a fold would lack a kind), or a
/// score is not finite.
pub fn best_threshold_accuracy(genuine: &[f32], impostor: &[f32], folds: usize) -> (f64, f64) {
    assert!(
        folds >= 2,
        "best-threshold accuracy: {folds} folds, need at least 2"
    );
    assert!(
        genuine.len() >= folds && impostor.len() >= folds,
        "best-threshold accuracy: {} genuine and {} impostor scores for {folds} folds; draw at least one pair of each kind per fold",
        genuine.len(),
        impostor.len()
    );
    assert!(
        genuine.iter().chain(impostor).all(|s| s.is_finite()),
        "best-threshold accuracy: non-finite score; check the embeddings for NaN"
    );
    let tag = |genuine: bool| {
        move |(i, &score): (usize, &f32)| Scored {
            score,
            genuine,
            fold: i % folds,
        }
    };
    let mut scored: Vec<Scored> = genuine
        .iter()
        .enumerate()
        .map(tag(true))
        .chain(impostor.iter().enumerate().map(tag(false)))
        .collect();
    scored.sort_by(|a, b| a.score.total_cmp(&b.score));

    let accuracies: Vec<f64> = (0..folds)
        .map(|fold| {
            let t = best_threshold(scored.iter().filter(|s| s.fold != fold));
            let held_out = scored.iter().filter(|s| s.fold == fold);
            let (mut right, mut total) = (0usize, 0usize);
            for s in held_out {
                right += usize::from((s.score as f64 > t) == s.genuine);
                total += 1;
            }
            right as f64 / total as f64
        })
        .collect();
    let mean = accuracies.iter().sum::<f64>() / folds as f64;
    let var = accuracies
        .iter()
        .map(|a| (a - mean) * (a - mean))
        .sum::<f64>()
        / folds as f64;
    (mean, var.sqrt())
}

/// The accuracy-maximising threshold over `sorted` (ascending scores): the midpoint of the best gap
/// between consecutive distinct scores, −∞ or +∞ at the ends, lowest gap on ties.
fn best_threshold<'a>(sorted: impl Iterator<Item = &'a Scored> + Clone) -> f64 {
    // Right decisions with the threshold below everything: every genuine pair accepted.
    let mut right = sorted.clone().filter(|s| s.genuine).count() as i64;
    let mut best = (right, f64::NEG_INFINITY);
    let mut prev: Option<f32> = None;
    for s in sorted {
        if let Some(v) = prev {
            // All scores <= v are on the reject side, so `right` is the count for the gap (v, s).
            if s.score > v && right > best.0 {
                best = (right, (v as f64 + s.score as f64) / 2.0);
            }
        }
        // Moving the threshold past this score rejects it: right for an impostor, wrong for a genuine.
        right += if s.genuine { -1 } else { 1 };
        prev = Some(s.score);
    }
    if prev.is_some() && right > best.0 {
        best = (right, f64::INFINITY);
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(x: f64) -> f64 {
        (x * 1e6).round() / 1e6
    }

    // Genuine 0.9 0.8 0.7 0.6 0.5; ten impostors, descending 0.75 0.65 0.4 0.3 ... -0.3.
    const GEN: [f32; 5] = [0.9, 0.8, 0.7, 0.6, 0.5];
    const IMP: [f32; 10] = [0.3, 0.75, 0.0, 0.4, -0.1, 0.65, 0.2, -0.2, 0.1, -0.3];

    #[test]
    fn tar_at_far_hand_cases() {
        // far 0.1, m = 10: k = 1 impostor may pass, t = 2nd largest = 0.65; genuine > 0.65: 0.9 0.8 0.7.
        assert_eq!(tar_at_far(&GEN, &IMP, 0.1), 0.6);
        // far 0.2: k = 2, t = 0.4; every genuine > 0.4.
        assert_eq!(tar_at_far(&GEN, &IMP, 0.2), 1.0);
        // far 0.05 < 1/10: k = 0, t = max impostor 0.75; genuine > 0.75: 0.9 0.8.
        assert_eq!(tar_at_far(&GEN, &IMP, 0.05), 0.4);
        // far 1e-4 and 0 read the same "no impostor accepted" point.
        assert_eq!(tar_at_far(&GEN, &IMP, 1e-4), 0.4);
        assert_eq!(tar_at_far(&GEN, &IMP, 0.0), 0.4);
        // far 1: k = m, no threshold, all accepted.
        assert_eq!(tar_at_far(&GEN, &IMP, 1.0), 1.0);
        // One sort, several rates: the same numbers.
        assert_eq!(
            tars_at_fars(&GEN, &IMP, &[0.1, 0.2, 0.05]),
            vec![0.6, 1.0, 0.4]
        );
    }

    #[test]
    fn tar_at_far_ties_are_rejected() {
        // m = 4, far 0.25: k = 1, t = 2nd largest = 0.5 (tied with the largest, so 0 impostors
        // lie above it); genuine strictly above 0.5: only 0.6, the 0.5 genuine is rejected: 1/3.
        let tar = tar_at_far(&[0.6, 0.5, 0.3], &[0.5, 0.5, 0.2, 0.1], 0.25);
        assert_eq!(round(tar), round(1.0 / 3.0));
    }

    #[test]
    fn tar_at_far_keeps_integer_counts_under_rounding() {
        // Impostors 0.00, 0.01, ..., 0.99. far 0.29 allows k = 29 above t, so t = 30th largest
        // = 0.70; genuine 0.705 passes, 0.695 does not: 0.5. Without the slack, 0.29 * 100 =
        // 28.999… would floor to 28, t = 0.71, and TAR would be 0.
        let imp: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        assert_eq!(tar_at_far(&[0.705, 0.695], &imp, 0.29), 0.5);
    }

    #[test]
    fn accuracy_is_one_on_separable_scores() {
        let gen: Vec<f32> = (0..40).map(|i| 0.5 + i as f32 / 100.0).collect();
        let imp: Vec<f32> = (0..40).map(|i| -0.3 + i as f32 / 100.0).collect(); // max 0.09
        assert_eq!(best_threshold_accuracy(&gen, &imp, 10), (1.0, 0.0));
    }

    #[test]
    fn accuracy_hand_case() {
        // 2 folds. Fold 0: genuine {0.9, 0.3}, impostor {0.1, 0.2}; fold 1: genuine {0.8, 0.7},
        // impostor {0.6, 0.4}.
        // Held-out fold 0: trained on fold 1, gap (0.6, 0.7) gets all 4 right, t = 0.65; fold 0:
        // 0.9 accepted (right), 0.3 rejected (wrong), 0.1 and 0.2 rejected (right): 3/4.
        // Held-out fold 1: trained on fold 0, gap (0.2, 0.3) gets all 4 right, t = 0.25; fold 1:
        // both genuine accepted (right), both impostors accepted (wrong): 2/4.
        // mean 0.625, population std 0.125.
        let (mean, std) = best_threshold_accuracy(&[0.9, 0.8, 0.3, 0.7], &[0.1, 0.6, 0.2, 0.4], 2);
        assert_eq!((round(mean), round(std)), (0.625, 0.125));
    }

    #[test]
    fn best_threshold_takes_lowest_gap_on_ties() {
        // Ascending 0.1 imp, 0.3 gen, 0.5 imp, 0.9 gen. Right counts: below all 2, gap (0.1, 0.3)
        // 3, gap (0.3, 0.5) 2, gap (0.5, 0.9) 3, above all 2. Best 3, lowest gap: t = 0.2.
        let s = |score, genuine| Scored {
            score,
            genuine,
            fold: 0,
        };
        let sorted = [s(0.1, false), s(0.3, true), s(0.5, false), s(0.9, true)];
        assert_eq!(round(best_threshold(sorted.iter())), 0.2);
        // All genuine: accepting everything is right, threshold −∞.
        let sorted = [s(0.1, true), s(0.3, true)];
        assert_eq!(best_threshold(sorted.iter()), f64::NEG_INFINITY);
        // All impostor: rejecting everything is right, threshold +∞.
        let sorted = [s(0.1, false), s(0.3, false)];
        assert_eq!(best_threshold(sorted.iter()), f64::INFINITY);
    }

    #[test]
    fn pair_sampling_is_deterministic_and_valid() {
        // Identities 10, 4, 7, 2 with 2, 3, 2, 4 instances.
        let labels = [10, 10, 4, 4, 4, 7, 7, 2, 2, 2, 2];
        let a = sample_pairs(&labels, 500, 42);
        assert_eq!(a, sample_pairs(&labels, 500, 42));
        assert_ne!(a, sample_pairs(&labels, 500, 43));
        assert_eq!((a.genuine.len(), a.impostor.len()), (500, 500));
        for &(x, y) in &a.genuine {
            assert!(x != y && labels[x] == labels[y], "genuine pair ({x}, {y})");
        }
        for &(x, y) in &a.impostor {
            assert_ne!(labels[x], labels[y], "impostor pair ({x}, {y})");
        }
    }

    #[test]
    fn genuine_identities_are_uniform_not_instance_weighted() {
        // Identity 0 has 2 instances, identity 1 has 8. Uniform over identities gives ~2000 each
        // of 4000; weighting by instances would give identity 1 about 80 %.
        let labels = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
        let pairs = sample_pairs(&labels, 4000, 7);
        let first = pairs
            .genuine
            .iter()
            .filter(|&&(x, _)| labels[x] == 0)
            .count();
        assert!(
            (1800..2200).contains(&first),
            "{first} of 4000 genuine pairs from identity 0"
        );
    }

    #[test]
    fn pair_scores_are_dot_products() {
        // Rows (1, 0, 0), (0.6, 0.8, 0), (0, 0, 1): dots 0.6, 0, 0.
        let e = [1.0, 0.0, 0.0, 0.6, 0.8, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(
            pair_scores(&e, 3, &[(0, 1), (1, 2), (0, 2)]),
            vec![0.6, 0.0, 0.0]
        );
        // The 8-lane path: 10 values of 1 dotted with 1..=10 sums to 55.
        let ones = [1.0f32; 10];
        let ramp: Vec<f32> = (1..=10).map(|i| i as f32).collect();
        assert_eq!(score(&ones, &ramp), 55.0);
    }
}
