//! Class sampling of Partial FC (An et al., "Partial FC: Training 10 Million Identities on a Single
//! Machine"), reproducing insightface `recognition/arcface_torch/partial_fc_v2.py`
//! (`PartialFC_V2.__init__`'s `num_sample` and `PartialFC_V2.sample`): each step keeps the centre of
//! every class in the batch plus uniformly random other centres, `num_sample` in all, sorted, and
//! relabels the batch to positions in that subset (`torch.searchsorted`).
//!
//! insightface draws a random key per class and takes the top `num_sample`, which costs O(N) per step;
//! here the negatives are drawn with Floyd's subset sampling over the non-batch classes, so a step
//! costs O(B log B + S log S) for batch size B and sample size S, independent of N. The distribution
//! is the same (a uniform subset of the negatives), not the random stream.

use std::collections::HashSet;

use rand::Rng;

/// The class centres one Partial FC step uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSample {
    /// Sampled class ids, sorted ascending and unique; every class of the batch is among them.
    pub classes: Vec<usize>,
    /// Per label of the batch, in order, its position in `classes` (the logit column of its centre).
    pub targets: Vec<usize>,
}

/// Number of centres sampled per step: insightface's `int(sample_rate * num_local)` (truncation of a
/// Python float product), clamped to `[1, num_classes]` so that a tiny rate still samples one class
/// and a rate above 1 means all of them (insightface would fail in `topk` instead). With one process
/// `num_local` is all `num_classes`.
///
/// # Panics
/// If `num_classes` is 0.
pub fn num_sample(num_classes: usize, sample_rate: f32) -> usize {
    assert!(
        num_classes >= 1,
        "partial fc: num_classes must be at least 1, got 0"
    );
    // Rates are written in decimal and parsed into f32. Widening that f32 to f64 gives e.g.
    // 0.699999988 for 0.7, and ⌊0.699999988 · 10⌋ = 6 where Python's float gives ⌊7.000000000000001⌋
    // = 7. The f32's shortest decimal form is the text that was written, so reading it as f64
    // recovers the Python float. NaN and negative rates truncate to 0 and clamp to 1.
    let rate: f64 = sample_rate.to_string().parse().unwrap_or(f64::NAN);
    ((rate * num_classes as f64).floor() as usize).clamp(1, num_classes)
}

/// Samples the class centres of one step for the batch `labels` (class ids in `0..num_classes`).
///
/// All distinct labels (the positives) are kept. If they already number `num_sample` or more, the
/// sample is exactly the positives and nothing is drawn, as in insightface. Otherwise
/// `num_sample − #positives` distinct negatives are added, every such subset of the non-batch classes
/// being equally likely.
///
/// # Panics
/// If a label is not below `num_classes`, or if `num_sample > num_classes`.
pub fn sample_classes<R: Rng + ?Sized>(
    labels: &[usize],
    num_classes: usize,
    num_sample: usize,
    rng: &mut R,
) -> ClassSample {
    sample_with(labels, num_classes, num_sample, rng, floyd_subset)
}

/// [`sample_classes`] with the subset-drawing step passed in, so tests can run the same pipeline with a
/// deliberately wrong subset sampler.
fn sample_with<R: Rng + ?Sized>(
    labels: &[usize],
    num_classes: usize,
    num_sample: usize,
    rng: &mut R,
    subset: fn(usize, usize, &mut R) -> Vec<usize>,
) -> ClassSample {
    let mut positives = labels.to_vec();
    positives.sort_unstable();
    positives.dedup();
    if let Some(&max) = positives.last() {
        assert!(
            max < num_classes,
            "partial fc: label {max} is out of range for {num_classes} classes"
        );
    }
    let classes = if positives.len() >= num_sample {
        positives
    } else {
        assert!(
            num_sample <= num_classes,
            "partial fc: cannot sample {num_sample} of {num_classes} classes; lower `sample_rate`"
        );
        let negatives = num_classes - positives.len();
        let mut ranks = subset(negatives, num_sample - positives.len(), rng);
        ranks.sort_unstable();
        merge_with_negatives(&positives, &ranks)
    };
    let targets = labels
        .iter()
        .map(|label| {
            classes
                .binary_search(label)
                .expect("every label is a sampled class")
        })
        .collect();
    ClassSample { classes, targets }
}

/// Floyd's algorithm: a uniformly random `k`-subset of `0..m` with exactly `k` draws, in no
/// particular order (ascending when the chosen set is a bitset).
///
/// Why it is uniform, by induction over the loop: before the iteration for `j` (`j` from `m − k` to
/// `m − 1`), S is a uniform random s-subset of `0..j`, s = j − (m − k) (true at the start: S = ∅).
/// The iteration draws t uniform in `0..=j` and adds t, or j when t is already in S (j ∉ S since
/// S ⊆ `0..j`). Take any (s+1)-subset T of `0..=j`. If j ∈ T, S' = T exactly when S = T∖{j} and t is
/// one of the s+1 values of S ∪ {j}: probability (s+1) / ((j+1)·C(j,s)). If j ∉ T, S' = T exactly
/// when S = T∖{x} for one of the s+1 elements x of T and t = x: again (s+1) / ((j+1)·C(j,s)). Every
/// (s+1)-subset of `0..=j` is equally likely, so after the last iteration S is a uniform k-subset of
/// `0..m`.
///
/// The chosen set is only queried, so how it is stored adds no randomness: the same draws give the
/// same subset. A bitset of `m` bits when that is at most four words per draw (Partial FC's rates:
/// at N = 10⁷ and r = 0.1, 1.2 MiB, and no hash of a million keys nor their sort), else a hash set.
fn floyd_subset<R: Rng + ?Sized>(m: usize, k: usize, rng: &mut R) -> Vec<usize> {
    debug_assert!(k <= m);
    if m.div_ceil(64) <= 4 * k {
        floyd_bitset(m, k, rng)
    } else {
        floyd_hashed(m, k, rng)
    }
}

/// [`floyd_subset`] with the chosen set in a hash set; the picks in the order drawn.
fn floyd_hashed<R: Rng + ?Sized>(m: usize, k: usize, rng: &mut R) -> Vec<usize> {
    let mut chosen = HashSet::with_capacity(k);
    let mut picks = Vec::with_capacity(k);
    for j in (m - k)..m {
        let t = rng.gen_range(0..=j);
        let pick = if chosen.contains(&t) { j } else { t };
        chosen.insert(pick);
        picks.push(pick);
    }
    picks
}

/// [`floyd_subset`] with the chosen set in a bitset; the picks ascending, read off its set bits.
fn floyd_bitset<R: Rng + ?Sized>(m: usize, k: usize, rng: &mut R) -> Vec<usize> {
    let mut bits = vec![0u64; m.div_ceil(64)];
    let has = |bits: &[u64], i: usize| bits[i / 64] >> (i % 64) & 1 == 1;
    for j in (m - k)..m {
        let t = rng.gen_range(0..=j);
        let pick = if has(&bits, t) { j } else { t };
        bits[pick / 64] |= 1 << (pick % 64);
    }
    let mut picks = Vec::with_capacity(k);
    for (w, &word) in bits.iter().enumerate() {
        let mut rest = word;
        while rest != 0 {
            picks.push(w * 64 + rest.trailing_zeros() as usize);
            rest &= rest - 1;
        }
    }
    picks
}

/// Sorted union of the sorted `positives` and the negatives whose ranks (0-based positions among the
/// classes not in `positives`) are `ranks`, sorted. One sweep: the rank-r negative is r plus the
/// number of positives before it, i.e. the number of i with `positives[i] − i ≤ r` (non-decreasing in i).
fn merge_with_negatives(positives: &[usize], ranks: &[usize]) -> Vec<usize> {
    let mut classes = Vec::with_capacity(positives.len() + ranks.len());
    let mut i = 0;
    for &rank in ranks {
        while i < positives.len() && positives[i] - i <= rank {
            classes.push(positives[i]);
            i += 1;
        }
        classes.push(rank + i);
    }
    classes.extend_from_slice(&positives[i..]);
    classes
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};
    use statrs::distribution::{ChiSquared, ContinuousCDF};

    #[test]
    fn num_sample_truncates_like_insightface() {
        assert_eq!(num_sample(1_000, 0.1), 100);
        // int(0.1 · 93431) = int(9343.1) = 9343.
        assert_eq!(num_sample(93_431, 0.1), 9_343);
        // int(0.7 · 10) = int(7.000000000000001) = 7 in Python; the widened f32 would give 6.
        assert_eq!(((0.7f32 as f64) * 10.0).floor(), 6.0);
        assert_eq!(num_sample(10, 0.7), 7);
        assert_eq!(num_sample(5, 1.0), 5);
        // Clamped: int(0.3 · 3) = 0 → 1; rates above 1 → all classes.
        assert_eq!(num_sample(3, 0.3), 1);
        assert_eq!(num_sample(5, 0.0), 1);
        assert_eq!(num_sample(5, 1.5), 5);
    }

    #[test]
    fn merge_places_negatives_around_positives() {
        // Classes not in {1, 4, 5}: 0, 2, 3, 6, 7, 8, … so ranks 0..5 are 0, 2, 3, 6, 7.
        assert_eq!(
            merge_with_negatives(&[1, 4, 5], &[0, 1, 2, 3, 4]),
            vec![0, 1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(merge_with_negatives(&[1, 4, 5], &[3]), vec![1, 4, 5, 6]);
        assert_eq!(merge_with_negatives(&[0, 1], &[0]), vec![0, 1, 2]);
        assert_eq!(merge_with_negatives(&[7], &[0, 2]), vec![0, 2, 7]);
    }

    #[test]
    fn sample_contains_positives_and_has_exact_size() {
        let mut rng = StdRng::seed_from_u64(3);
        for (num_classes, labels, size) in [
            (1_000, vec![999, 0, 5, 5, 999, 17], 100),
            (20, vec![3, 3, 3], 19),
            (10, vec![], 4),
            (100_000_000, vec![42, 99_999_999, 42], 64),
        ] {
            for _ in 0..50 {
                let s = sample_classes(&labels, num_classes, size, &mut rng);
                assert_eq!(s.classes.len(), size);
                assert!(
                    s.classes.windows(2).all(|p| p[0] < p[1]),
                    "not sorted unique: {:?}",
                    s.classes
                );
                assert!(*s.classes.last().unwrap() < num_classes);
                assert_eq!(s.targets.len(), labels.len());
                for (label, &target) in labels.iter().zip(&s.targets) {
                    assert_eq!(s.classes[target], *label);
                }
            }
        }
    }

    #[test]
    fn the_bitset_and_the_hash_set_pick_the_same_subset_from_the_same_draws() {
        for (m, k) in [
            (1, 1),
            (64, 3),
            (65, 65),
            (1_000, 100),
            (10_007, 9_000),
            (100_000, 10),
        ] {
            for seed in 0..20 {
                let mut hashed = floyd_hashed(m, k, &mut StdRng::seed_from_u64(seed));
                hashed.sort_unstable();
                let bitset = floyd_bitset(m, k, &mut StdRng::seed_from_u64(seed));
                assert_eq!(hashed, bitset, "m {m}, k {k}, seed {seed}");
            }
        }
        // Which one runs: the bitset while it is at most four words per draw.
        let mut a = StdRng::seed_from_u64(1);
        let mut b = a.clone();
        assert_eq!(
            floyd_subset(64_000, 250, &mut a),
            floyd_bitset(64_000, 250, &mut b)
        );
        assert_eq!(
            floyd_subset(64_000, 249, &mut a),
            floyd_hashed(64_000, 249, &mut b)
        );
    }

    #[test]
    fn full_rate_takes_every_class() {
        let mut rng = StdRng::seed_from_u64(5);
        let s = sample_classes(&[4, 1], 6, 6, &mut rng);
        assert_eq!(s.classes, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(s.targets, vec![4, 1]);
    }

    #[test]
    fn enough_positives_means_no_negatives_and_no_draws() {
        let mut rng = StdRng::seed_from_u64(9);
        let s = sample_classes(&[9, 3, 9, 5], 10, 2, &mut rng);
        assert_eq!(
            s,
            ClassSample {
                classes: vec![3, 5, 9],
                targets: vec![2, 0, 2, 1]
            }
        );
        // The generator was not advanced.
        assert_eq!(rng.gen::<u64>(), StdRng::seed_from_u64(9).gen::<u64>());
    }

    #[test]
    fn same_seed_same_sample() {
        let labels = [12, 400, 12, 7];
        let draw = |seed| sample_classes(&labels, 1_000, 50, &mut StdRng::seed_from_u64(seed));
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1).classes, draw(2).classes);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn label_out_of_range_is_rejected() {
        sample_classes(&[10], 10, 5, &mut StdRng::seed_from_u64(0));
    }

    /// Floyd's algorithm with the classic off-by-one (t drawn from `0..j` instead of `0..=j`): it still
    /// returns k distinct values, but the high ones are under-drawn.
    fn off_by_one_floyd(m: usize, k: usize, rng: &mut StdRng) -> Vec<usize> {
        let mut chosen = HashSet::new();
        for j in (m - k)..m {
            let t = rng.gen_range(0..j);
            let pick = if chosen.contains(&t) { j } else { t };
            chosen.insert(pick);
        }
        chosen.into_iter().collect()
    }

    /// p-value of "each negative class is drawn equally often" over `draws` samples of 10 of 50 classes
    /// with positives {3, 17, 42}, so 7 of the 47 negatives per draw.
    ///
    /// Pearson's X² assumes multinomial counts; here each draw takes k distinct of M cells, whose
    /// per-draw covariance is k(M−k)/(M(M−1)) · (I − J/M) instead of the multinomial (k/M)(I − J/M)
    /// per unit of expected count. So X² · (M−1)/(M−k) is asymptotically χ² with M − 1 degrees of freedom.
    fn negative_uniformity_p_value(
        subset: fn(usize, usize, &mut StdRng) -> Vec<usize>,
        draws: usize,
    ) -> f64 {
        let (num_classes, size, labels) = (50, 10, [3, 17, 17, 42]);
        let mut rng = StdRng::seed_from_u64(2022);
        let mut counts = vec![0usize; num_classes];
        for _ in 0..draws {
            let s = sample_with(&labels, num_classes, size, &mut rng, subset);
            assert_eq!(s.classes.len(), size);
            for c in s.classes {
                counts[c] += 1;
            }
        }
        for p in [3, 17, 42] {
            assert_eq!(counts[p], draws);
        }
        let (m, k) = (47.0, 7.0);
        let expected = draws as f64 * k / m;
        let x2: f64 = (0..num_classes)
            .filter(|c| ![3, 17, 42].contains(c))
            .map(|c| (counts[c] as f64 - expected).powi(2) / expected)
            .sum();
        ChiSquared::new(m - 1.0)
            .unwrap()
            .sf(x2 * (m - 1.0) / (m - k))
    }

    #[test]
    fn negatives_are_uniform() {
        let p = negative_uniformity_p_value(floyd_subset, 20_000);
        assert!(p > 0.001, "p = {p}");
    }

    #[test]
    fn uniformity_test_rejects_a_biased_sampler() {
        let p = negative_uniformity_p_value(off_by_one_floyd, 20_000);
        assert!(p < 1e-6, "p = {p}");
    }

    /// p-value of "every 2-subset of the 5 negatives is equally likely" for 3 of 6 classes with
    /// positive {2}: 10 subsets, plain multinomial, 9 degrees of freedom.
    fn subset_uniformity_p_value(subset: fn(usize, usize, &mut StdRng) -> Vec<usize>) -> f64 {
        let draws = 20_000;
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..draws {
            let s = sample_with(&[2], 6, 3, &mut rng, subset);
            *counts.entry(s.classes).or_insert(0usize) += 1;
        }
        assert!(counts.len() <= 10);
        let expected = draws as f64 / 10.0;
        // Subsets never drawn contribute (0 − E)²/E = E each.
        let x2: f64 = counts
            .values()
            .map(|&o| (o as f64 - expected).powi(2) / expected)
            .sum::<f64>()
            + (10 - counts.len()) as f64 * expected;
        ChiSquared::new(9.0).unwrap().sf(x2)
    }

    #[test]
    fn negative_subsets_are_uniform() {
        let p = subset_uniformity_p_value(floyd_subset);
        assert!(p > 0.001, "p = {p}");
        let p = subset_uniformity_p_value(off_by_one_floyd);
        assert!(p < 1e-6, "p = {p}");
    }
}
