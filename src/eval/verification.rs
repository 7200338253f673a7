//! Verification: deciding whether two faces are the same identity by thresholding their cosine
//! score. Holds the exact pair enumeration of the held-out set (every genuine pair; every impostor
//! pair, or a seeded sample of distinct ones when there are more than a cap), the ROC read at fixed
//! false-accept rates (TAR@FAR) from a streamed tail of the impostor scores, and the k-fold
//! best-threshold accuracy of the LFW protocol (reference behaviour: insightface
//! `eval/verification.py`, which picks each fold's threshold on the other folds and reports the
//! mean and standard deviation of the held-out accuracies).
//!
//! A pair is accepted when its score is strictly greater than the threshold, everywhere in this
//! file, so that the ROC and the accuracy agree on what a threshold means.
//!
//! Why a tail and not every score: 3,000 held-out rows give 4.5 million impostor pairs, and the
//! threshold at FAR f is the (⌊f·m⌋ + 1)-th largest of the m impostor scores. Only the largest
//! ⌊10⁻²·m⌋ + 1 scores can ever be a threshold, so the pass over the impostor pairs keeps just
//! those ([`TopK`]), exactly, in a few hundred kilobytes, and never stores the rest.

use std::ops::Range;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::layout::{genuine_pair_count, impostor_pair_count};

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

/// Scores of every genuine pair (rows i < j of one identity), identity by identity, in row order.
pub fn genuine_scores(embeddings: &[f32], dim: usize, blocks: &[Range<usize>]) -> Vec<f32> {
    let row = |i: usize| &embeddings[i * dim..(i + 1) * dim];
    let scores: Vec<f32> = blocks
        .par_iter()
        .flat_map_iter(|b| {
            b.clone()
                .flat_map(move |i| (i + 1..b.end).map(move |j| score(row(i), row(j))))
        })
        .collect();
    debug_assert_eq!(scores.len() as u64, genuine_pair_count(blocks));
    scores
}

/// Which impostor pairs a pass scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImpostorSelection {
    /// Every pair of rows of different identities.
    All,
    /// `count` distinct impostor pairs drawn uniformly without replacement, a pure function of
    /// `(layout, count, seed)`; every pair when `count` is at least their number.
    Sample { count: u64, seed: u64 },
}

/// A seed derived from `seed` for the independent random stream `stream` (splitmix64 of both), so
/// that the sample, the accuracy pairs and the fold shuffle of one evaluation do not share draws.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    mix(seed ^ mix(stream))
}

/// For each row, the first row of the identities after its own: row i's impostor partners
/// (j > i, other identity) are exactly `partner_start[i]..n`, a contiguous range, which is what
/// lets a row's pairs be sampled and scored without a table of pairs.
fn partner_starts(blocks: &[Range<usize>]) -> Vec<usize> {
    blocks
        .iter()
        .flat_map(|b| std::iter::repeat_n(b.end, b.len()))
        .collect()
}

/// How many of `count` sampled pairs fall in each row's partner range, by selection sampling
/// (Knuth's Algorithm S) over the pairs in row order: the t-th of N pairs is taken with probability
/// (draws left)/(N − t), which gives every subset of `count` pairs the same probability, so the
/// per-row counts have the exact joint law of a uniform sample without replacement. One uniform
/// draw per pair (O(N) time, O(rows) memory), short-cut once a row is decided; it runs only when
/// the pairs outnumber the cap, or for the small balanced sample of the accuracy.
fn row_sample_counts(starts: &[usize], count: u64, seed: u64) -> Vec<u64> {
    let n = starts.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut left_pairs: u64 = starts.iter().map(|&s| (n - s) as u64).sum();
    let mut left_draws = count.min(left_pairs);
    let counts = starts
        .iter()
        .map(|&s| {
            let len = (n - s) as u64;
            let mut k = 0;
            for t in 0..len {
                if left_draws == 0 {
                    break;
                }
                if left_draws == left_pairs - t {
                    // Every remaining pair is needed: take the rest of the row.
                    k += len - t;
                    left_draws -= len - t;
                    break;
                }
                if rng.gen::<f64>() * ((left_pairs - t) as f64) < left_draws as f64 {
                    k += 1;
                    left_draws -= 1;
                }
            }
            left_pairs -= len;
            k
        })
        .collect();
    assert_eq!(left_draws, 0, "impostor sampling: draws left over");
    counts
}

/// Row `i`'s sampled partner offsets: `k` distinct offsets in `0..len`, from the row's own stream.
fn row_offsets(seed: u64, i: usize, len: usize, k: u64) -> rand::seq::index::IndexVec {
    let mut rng = StdRng::seed_from_u64(derive_seed(seed, i as u64));
    rand::seq::index::sample(&mut rng, len, k as usize)
}

/// The impostor pairs of `selection` as row pairs `(i, j)`, `i < j`, sorted; for small samples
/// (the balanced pairs of the accuracy), since it stores every pair.
pub fn impostor_pairs(
    blocks: &[Range<usize>],
    selection: ImpostorSelection,
) -> Vec<(usize, usize)> {
    let starts = partner_starts(blocks);
    let n = starts.len();
    match selection {
        ImpostorSelection::All => (0..n)
            .flat_map(|i| (starts[i]..n).map(move |j| (i, j)))
            .collect(),
        ImpostorSelection::Sample { count, seed } => {
            let counts = row_sample_counts(&starts, count, seed);
            let mut pairs = Vec::with_capacity(count.min(impostor_pair_count(blocks)) as usize);
            for (i, &k) in counts.iter().enumerate() {
                let mut offsets = row_offsets(seed, i, n - starts[i], k).into_vec();
                offsets.sort_unstable();
                pairs.extend(offsets.into_iter().map(|o| (i, starts[i] + o)));
            }
            pairs
        }
    }
}

/// The `keep` largest of a stream of scores, exactly (ties kept as values: the multiset of the
/// `keep` largest values is always right, whichever of equal scores is kept).
///
/// Values are buffered; when the buffer reaches twice `keep`, a selection keeps the `keep`
/// largest and raises the floor below which nothing can enter any more: O(1) amortised per value,
/// and a single comparison for the vast majority of impostor scores, which sit below the floor.
#[derive(Debug, Clone)]
pub struct TopK {
    keep: usize,
    buf: Vec<f32>,
    /// The `keep`-th largest value seen at the last compaction; values ≤ it cannot change the answer.
    floor: f32,
}

impl TopK {
    /// An empty tail that keeps the `keep` largest values.
    pub fn new(keep: usize) -> Self {
        TopK {
            keep,
            buf: Vec::new(),
            floor: f32::NEG_INFINITY,
        }
    }

    /// Offers one value.
    pub fn push(&mut self, x: f32) {
        if self.keep > 0 && x > self.floor {
            self.buf.push(x);
            if self.buf.len() >= 2 * self.keep {
                self.compact();
            }
        }
    }

    /// The union of two tails (as if every value had been offered to one).
    pub fn merge(mut self, other: TopK) -> TopK {
        self.buf.extend(other.buf);
        // Each side holds `keep` values at least as large as its floor, so the union does too.
        self.floor = self.floor.max(other.floor);
        if self.buf.len() >= 2 * self.keep {
            self.compact();
        }
        self
    }

    fn compact(&mut self) {
        if self.buf.len() > self.keep {
            let k = self.keep - 1;
            self.buf.select_nth_unstable_by(k, |a, b| b.total_cmp(a));
            self.buf.truncate(self.keep);
            self.floor = self.buf[k];
        }
    }

    /// The kept values, largest first (at most `keep` of them).
    pub fn into_sorted_desc(mut self) -> Vec<f32> {
        self.compact();
        self.buf.sort_unstable_by(|a, b| b.total_cmp(a));
        self.buf
    }
}

/// The top of the impostor score distribution: how many pairs were scored, and the largest
/// scores among them, largest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpostorTail {
    /// Impostor pairs scored (m).
    pub scored: u64,
    /// The largest scores, descending; `top.len() = min(keep, scored)`.
    pub top: Vec<f32>,
}

/// Impostor scores kept so that every rate in `fars` can be read exactly from `m` impostor
/// scores: the largest ⌊far·m⌋ + 1 over the rates, at most m.
pub fn tail_size(m: u64, fars: &[f64]) -> usize {
    fars.iter()
        .map(|&far| accepted_at(far, m) + 1)
        .max()
        .unwrap_or(0)
        .min(m) as usize
}

/// Scores the impostor pairs of `selection` in parallel (one row's partners per task) and keeps
/// the `keep` largest scores.
///
/// # Panics
/// If `dim` is 0 or `embeddings` does not hold the rows of `blocks`.
pub fn impostor_tail(
    embeddings: &[f32],
    dim: usize,
    blocks: &[Range<usize>],
    selection: ImpostorSelection,
    keep: usize,
) -> ImpostorTail {
    let starts = partner_starts(blocks);
    let n = starts.len();
    assert!(
        dim > 0 && embeddings.len() == n * dim,
        "impostor scores: {} values for {n} rows of dim {dim}",
        embeddings.len()
    );
    let total = impostor_pair_count(blocks);
    let sample = match selection {
        ImpostorSelection::Sample { count, seed } if count < total => {
            Some((row_sample_counts(&starts, count, seed), seed))
        }
        _ => None,
    };
    let row = |i: usize| &embeddings[i * dim..(i + 1) * dim];
    let top = (0..n)
        .into_par_iter()
        .fold(
            || TopK::new(keep),
            |mut top, i| {
                let a = row(i);
                match &sample {
                    None => (starts[i]..n).for_each(|j| top.push(score(a, row(j)))),
                    Some((counts, seed)) => {
                        for o in row_offsets(*seed, i, n - starts[i], counts[i]).iter() {
                            top.push(score(a, row(starts[i] + o)));
                        }
                    }
                }
                top
            },
        )
        .reduce(|| TopK::new(keep), TopK::merge)
        .into_sorted_desc();
    let scored = match &sample {
        Some((counts, _)) => counts.iter().sum(),
        None => total,
    };
    ImpostorTail { scored, top }
}

/// The impostors a threshold at rate `far` may accept out of `m`: ⌊far·m⌋, with a 1e-9 slack in
/// the floor that keeps e.g. `0.29 * 100`, which is 28.999… in floating point, at 29.
fn accepted_at(far: f64, m: u64) -> u64 {
    assert!(
        (0.0..=1.0).contains(&far),
        "tar at far: far = {far} is not a rate in [0, 1]"
    );
    (far * m as f64 + 1e-9).floor() as u64
}

/// One point of the ROC read at a fixed false-accept rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocPoint {
    pub far: f64,
    /// The decision threshold (a pair is accepted when its score is strictly above it); `None`
    /// when the rate allows every impostor, so every pair is accepted.
    pub threshold: Option<f32>,
    /// Fraction of genuine pairs strictly above the threshold.
    pub tar: f64,
    /// Impostor pairs strictly above the threshold: at most ⌊far·m⌋, fewer when impostors tie
    /// at the threshold.
    pub impostors_above: u64,
}

/// The ROC at each of `fars`, from the genuine scores sorted ascending and the impostor tail.
///
/// Definition, for each `far` with m impostor scores: at most `k = ⌊far·m⌋` impostors may be
/// accepted, so the threshold `t` is the (k + 1)-th largest impostor score; TAR is the fraction
/// of genuine scores strictly greater than `t`. Tie rule: a score equal to `t` is rejected, for
/// genuine and impostor pairs alike, so impostors tied with the (k + 1)-th are rejected too and
/// the realised false-accept rate (`impostors_above / m`) is at most `far`, never above it.
///
/// With fewer than 1/far impostors, k = 0: `t` is the highest impostor score and TAR is the
/// fraction of genuine pairs above every impostor ("no impostor accepted"), a lower bound on the
/// TAR at that rate. When k ≥ m (only `far = 1` with the slack) no threshold is needed: TAR is 1.
///
/// # Panics
/// If `genuine_sorted` or the tail is empty, or the tail is shorter than the largest k + 1.
pub fn roc_points(genuine_sorted: &[f32], tail: &ImpostorTail, fars: &[f64]) -> Vec<RocPoint> {
    assert!(
        !genuine_sorted.is_empty() && tail.scored > 0,
        "tar at far: need genuine and impostor scores"
    );
    let n = genuine_sorted.len();
    fars.iter()
        .map(|&far| {
            let k = accepted_at(far, tail.scored);
            if k >= tail.scored {
                return RocPoint {
                    far,
                    threshold: None,
                    tar: 1.0,
                    impostors_above: tail.scored,
                };
            }
            let t = *tail.top.get(k as usize).unwrap_or_else(|| {
                panic!(
                    "tar at far: the tail keeps {} scores, far {far} needs {}",
                    tail.top.len(),
                    k + 1
                )
            });
            let rejected = genuine_sorted.partition_point(|&g| g <= t);
            RocPoint {
                far,
                threshold: Some(t),
                tar: (n - rejected) as f64 / n as f64,
                impostors_above: tail.top.partition_point(|&x| x > t) as u64,
            }
        })
        .collect()
}

/// True-accept rate at false-accept rate `far`; see [`roc_points`] for the definition.
pub fn tar_at_far(genuine: &[f32], impostor: &[f32], far: f64) -> f64 {
    tars_at_fars(genuine, impostor, &[far])[0]
}

/// True-accept rates at several false-accept rates from complete score lists, by sorting both:
/// the reference the streamed evaluation is tested against; same definition ([`roc_points`]).
///
/// # Panics
/// If `genuine` or `impostor` is empty, a score is not finite, or a `far` is outside `[0, 1]`.
pub fn tars_at_fars(genuine: &[f32], impostor: &[f32], fars: &[f64]) -> Vec<f64> {
    assert!(
        genuine.iter().chain(impostor).all(|s| s.is_finite()),
        "tar at far: non-finite score; check the embeddings for NaN"
    );
    let mut gen = genuine.to_vec();
    gen.sort_unstable_by(f32::total_cmp);
    let mut top = impostor.to_vec();
    top.sort_unstable_by(|a, b| b.total_cmp(a));
    let tail = ImpostorTail {
        scored: top.len() as u64,
        top,
    };
    roc_points(&gen, &tail, fars)
        .into_iter()
        .map(|p| p.tar)
        .collect()
}

/// `scores` in a seeded random order: the fold assignment `i % folds` of
/// [`best_threshold_accuracy`] is then a random partition, not one by identity or row.
pub fn shuffled(mut scores: Vec<f32>, seed: u64) -> Vec<f32> {
    scores.shuffle(&mut StdRng::seed_from_u64(seed));
    scores
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
/// Folds: genuine score `i` and impostor score `i` go to fold `i % folds`, so every fold holds a
/// balanced share of both kinds; callers pass the scores in a seeded random order ([`shuffled`])
/// so that the folds are a random partition.
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
    let scored: Vec<Scored> = genuine
        .iter()
        .enumerate()
        .map(tag(true))
        .chain(impostor.iter().enumerate().map(tag(false)))
        .collect();
    accuracy_over_folds(scored, folds)
}

/// [`best_threshold_accuracy`] with the folds given: `(score, genuine, fold)` per pair, folds
/// numbered 0..`folds` (e.g. the consecutive blocks of an LFW pair list). Every fold needs pairs
/// of both kinds for its threshold to mean something; scores must be finite.
pub fn accuracy_on_folds(pairs: &[(f32, bool, usize)], folds: usize) -> (f64, f64) {
    assert!(
        pairs.iter().all(|p| p.0.is_finite() && p.2 < folds),
        "accuracy on folds: non-finite score or fold out of range"
    );
    let scored = pairs
        .iter()
        .map(|&(score, genuine, fold)| Scored {
            score,
            genuine,
            fold,
        })
        .collect();
    accuracy_over_folds(scored, folds)
}

fn accuracy_over_folds(mut scored: Vec<Scored>, folds: usize) -> (f64, f64) {
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
    use crate::eval::layout::identity_blocks;

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

    #[test]
    fn roc_with_ties_by_hand() {
        // Impostors, descending: 0.8 0.8 0.8 0.5 0.4 0.3 0.2 0.1 0.0 -0.1 (m = 10); genuine
        // 0.9 0.8 0.6 0.5 (n = 4).
        // far 0.1: k = 1, t = 2nd largest = 0.8 (tied with the 1st and 3rd): no impostor is
        // strictly above, so the realised FAR is 0; genuine strictly above 0.8: only 0.9 → 1/4.
        // far 0.3: k = 3, t = 4th largest = 0.5: three impostors above; genuine above 0.5: 0.9,
        // 0.8, 0.6 → 3/4 (the genuine 0.5 ties with t and is rejected).
        // far 0.05: k = 0, t = 0.8, as for 0.1.
        let imp: [f32; 10] = [0.8, 0.2, 0.8, 0.5, 0.0, 0.8, 0.4, -0.1, 0.3, 0.1];
        let mut gen = vec![0.6f32, 0.9, 0.5, 0.8];
        gen.sort_unstable_by(f32::total_cmp);
        let mut top = imp.to_vec();
        top.sort_unstable_by(|a, b| b.total_cmp(a));
        let tail = ImpostorTail { scored: 10, top };
        let pts = roc_points(&gen, &tail, &[0.1, 0.3, 0.05, 1.0]);
        let read: Vec<(Option<f32>, f64, u64)> = pts
            .iter()
            .map(|p| (p.threshold, p.tar, p.impostors_above))
            .collect();
        assert_eq!(
            read,
            vec![
                (Some(0.8), 0.25, 0),
                (Some(0.5), 0.75, 3),
                (Some(0.8), 0.25, 0),
                (None, 1.0, 10)
            ]
        );
    }

    #[test]
    fn top_k_equals_a_full_sort() {
        // Values on a coarse grid so that many tie; offered one by one, and split into three
        // streams merged afterwards (as rayon's fold/reduce does): both keep exactly the largest
        // `keep` values of a full sort, for every `keep` including 0 and more than there are.
        let mut rng = StdRng::seed_from_u64(11);
        let xs: Vec<f32> = (0..5000)
            .map(|_| rng.gen_range(-50..50) as f32 / 10.0)
            .collect();
        let mut sorted = xs.clone();
        sorted.sort_unstable_by(|a, b| b.total_cmp(a));
        for keep in [0, 1, 2, 7, 50, 333, 4999, 5000, 6000] {
            let mut one = TopK::new(keep);
            xs.iter().for_each(|&x| one.push(x));
            let want = sorted[..keep.min(xs.len())].to_vec();
            assert_eq!(one.into_sorted_desc(), want, "keep {keep}");
            let parts: Vec<TopK> = xs
                .chunks(1700)
                .map(|c| {
                    let mut t = TopK::new(keep);
                    c.iter().for_each(|&x| t.push(x));
                    t
                })
                .collect();
            let merged = parts.into_iter().fold(TopK::new(keep), TopK::merge);
            assert_eq!(merged.into_sorted_desc(), want, "keep {keep}, merged");
        }
    }

    /// `ids` identities with the instance counts `per`, random unit rows of `dim`.
    fn random_set(per: &[usize], dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let labels: Vec<usize> = per
            .iter()
            .enumerate()
            .flat_map(|(id, &k)| std::iter::repeat_n(id, k))
            .collect();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut e: Vec<f32> = (0..labels.len() * dim)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        for row in e.chunks_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        (e, labels)
    }

    /// Every pair by brute force: (genuine scores, impostor scores).
    fn brute_force(e: &[f32], dim: usize, labels: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let (mut gen, mut imp) = (Vec::new(), Vec::new());
        for i in 0..labels.len() {
            for j in i + 1..labels.len() {
                let s = score(&e[i * dim..(i + 1) * dim], &e[j * dim..(j + 1) * dim]);
                if labels[i] == labels[j] {
                    gen.push(s);
                } else {
                    imp.push(s);
                }
            }
        }
        (gen, imp)
    }

    #[test]
    fn exact_enumeration_scores_every_pair_once() {
        // Identities of 2, 5, 3, 2, 4 instances: n = 16, n_g = 1 + 10 + 3 + 1 + 6 = 21,
        // n_i = C(16, 2) − 21 = 120 − 21 = 99.
        let (e, labels) = random_set(&[2, 5, 3, 2, 4], 8, 3);
        let blocks = identity_blocks(&labels);
        let (mut want_gen, mut want_imp) = brute_force(&e, 8, &labels);
        let mut gen = genuine_scores(&e, 8, &blocks);
        assert_eq!(gen.len(), 21);
        gen.sort_unstable_by(f32::total_cmp);
        want_gen.sort_unstable_by(f32::total_cmp);
        assert_eq!(gen, want_gen);
        let tail = impostor_tail(&e, 8, &blocks, ImpostorSelection::All, 1000);
        assert_eq!(tail.scored, 99);
        want_imp.sort_unstable_by(|a, b| b.total_cmp(a));
        assert_eq!(tail.top, want_imp);
        // A short tail is the head of the full sort, and reads the same ROC as the full lists.
        let fars = [0.05, 0.02, 0.01];
        let keep = tail_size(99, &fars);
        assert_eq!(keep, 5); // ⌊0.05·99⌋ + 1 = 4 + 1
        let short = impostor_tail(&e, 8, &blocks, ImpostorSelection::All, keep);
        assert_eq!(short.top, want_imp[..5].to_vec());
        let tars: Vec<f64> = roc_points(&gen, &short, &fars)
            .iter()
            .map(|p| p.tar)
            .collect();
        assert_eq!(tars, tars_at_fars(&want_gen, &want_imp, &fars));
        // Every listed impostor pair is one, once.
        let pairs = impostor_pairs(&blocks, ImpostorSelection::All);
        assert_eq!(pairs.len(), 99);
        assert!(pairs.iter().all(|&(i, j)| i < j && labels[i] != labels[j]));
    }

    #[test]
    fn sampled_impostors_are_distinct_seeded_and_counted() {
        let (e, labels) = random_set(&[2, 5, 3, 2, 4], 8, 3);
        let blocks = identity_blocks(&labels);
        let sel = |count, seed| ImpostorSelection::Sample { count, seed };
        let a = impostor_pairs(&blocks, sel(40, 1));
        assert_eq!(a.len(), 40);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
        assert!(a.iter().all(|&(i, j)| i < j && labels[i] != labels[j]));
        assert_eq!(a, impostor_pairs(&blocks, sel(40, 1)));
        assert_ne!(a, impostor_pairs(&blocks, sel(40, 2)));
        // Asking for at least all of them gives all of them.
        assert_eq!(
            impostor_pairs(&blocks, sel(99, 5)),
            impostor_pairs(&blocks, ImpostorSelection::All)
        );
        assert_eq!(impostor_pairs(&blocks, sel(500, 5)).len(), 99);
        // The streamed pass over a sample scores the same pairs as the listed sample.
        let tail = impostor_tail(&e, 8, &blocks, sel(40, 1), 40);
        let mut want: Vec<f32> = a
            .iter()
            .map(|&(i, j)| score(&e[i * 8..(i + 1) * 8], &e[j * 8..(j + 1) * 8]))
            .collect();
        want.sort_unstable_by(|x, y| y.total_cmp(x));
        assert_eq!((tail.scored, tail.top), (40, want));
    }

    #[test]
    fn sampling_is_uniform_over_pairs() {
        // Blocks of 2, 8 and 2 rows: C(12, 2) − (1 + 28 + 1) = 36 impostor pairs; rows of the
        // first block have 10 partners each, rows of the middle one 2, rows of the last none.
        // Drawing 20 of the 36 pairs 2000 times, the first row's share of the draws must be
        // 10/36 = 0.278 (standard error 0.0015), far from a row-uniform 1/10.
        let labels: Vec<usize> = [0, 0].into_iter().chain([1; 8]).chain([2, 2]).collect();
        let blocks = identity_blocks(&labels);
        assert_eq!(impostor_pair_count(&blocks), 36);
        let (mut first_row, mut total) = (0usize, 0usize);
        for seed in 0..2000 {
            let pairs = impostor_pairs(&blocks, ImpostorSelection::Sample { count: 20, seed });
            first_row += pairs.iter().filter(|p| p.0 == 0).count();
            total += pairs.len();
        }
        let share = first_row as f64 / total as f64;
        assert!((share - 10.0 / 36.0).abs() < 0.01, "share {share}");
    }
}
