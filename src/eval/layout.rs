//! The layout of the held-out embeddings every evaluation reads, and the pair counts it implies.
//!
//! Layout: `embeddings` is row-major (n, dim), rows L2-normalised; `labels[i]` is row `i`'s
//! identity; the rows of one identity are contiguous, in instance order, and every identity has at
//! least two instances (one for the gallery, at least one probe, and a genuine pair to score).
//!
//! With I identities of k instances each there are I·C(k, 2) genuine pairs and
//! C(I·k, 2) − I·C(k, 2) = C(I, 2)·k² impostor pairs. TAR at FAR f rests on f·(impostor pairs)
//! accepted impostors; [`min_identities_for_impostors`] says how many identities a held-out set
//! needs for that count to be meaningful (10⁶ impostor pairs put 100 above the 1e-4 threshold).

use std::collections::HashSet;
use std::ops::Range;

/// Impostor pairs for TAR@FAR=1e-4 to rest on 100 accepted impostors.
pub const IMPOSTORS_FOR_1E4: u64 = 1_000_000;

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

/// Number of genuine pairs (i < j within one identity) of `blocks`: Σ C(n_i, 2).
pub fn genuine_pair_count(blocks: &[Range<usize>]) -> u64 {
    blocks.iter().map(|b| choose2(b.len() as u64)).sum()
}

/// Number of impostor pairs (i < j across identities) of `blocks`: C(n, 2) − Σ C(n_i, 2).
pub fn impostor_pair_count(blocks: &[Range<usize>]) -> u64 {
    let n: u64 = blocks.iter().map(|b| b.len() as u64).sum();
    choose2(n) - genuine_pair_count(blocks)
}

/// Impostor pairs of a held-out set of `identities` × `instances`: C(identities, 2)·instances².
pub fn impostor_pairs_of(identities: usize, instances: usize) -> u64 {
    choose2(identities as u64) * (instances as u64).pow(2)
}

/// The fewest identities of `instances` each whose held-out set has at least `impostors` impostor
/// pairs (at least 2 identities).
///
/// # Panics
/// If `instances` is 0.
pub fn min_identities_for_impostors(instances: usize, impostors: u64) -> usize {
    assert!(instances > 0, "min identities: 0 instances per identity");
    // C(I, 2) grows monotonically, so a doubling search then bisection finds the least I.
    let enough = |i: usize| impostor_pairs_of(i, instances) >= impostors;
    let mut hi = 2;
    while !enough(hi) {
        hi *= 2;
    }
    let mut lo = hi / 2;
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if enough(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi.max(2)
}

fn choose2(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn pair_counts_by_hand() {
        // Blocks of 3, 2, 2 rows: genuine 3 + 1 + 1 = 5; all pairs C(7, 2) = 21; impostor 16
        // (= 3·2 + 3·2 + 2·2 across the three block pairs).
        let blocks = identity_blocks(&[5, 5, 5, 2, 2, 9, 9]);
        assert_eq!(genuine_pair_count(&blocks), 5);
        assert_eq!(impostor_pair_count(&blocks), 16);
        // 300 identities × 6: C(300, 2)·36 = 44,850·36 = 1,614,600.
        assert_eq!(impostor_pairs_of(300, 6), 1_614_600);
    }

    #[test]
    fn held_out_sizes_for_a_million_impostor_pairs() {
        // C(I, 2)·k² ≥ 10⁶, by hand: k = 2: I(I−1) ≥ 500,000 → 707·706 = 499,142 < 500,000 ≤
        // 708·707 = 500,556 → 708. k = 6: I(I−1) ≥ 55,555.6 → 236·235 = 55,460 < 237·236 = 55,932
        // → 237. k = 10: I(I−1) ≥ 20,000 → 141·140 = 19,740 < 142·141 = 20,022 → 142.
        assert_eq!(min_identities_for_impostors(2, IMPOSTORS_FOR_1E4), 708);
        assert_eq!(min_identities_for_impostors(6, IMPOSTORS_FOR_1E4), 237);
        assert_eq!(min_identities_for_impostors(10, IMPOSTORS_FOR_1E4), 142);
        assert!(impostor_pairs_of(707, 2) < IMPOSTORS_FOR_1E4);
        assert_eq!(min_identities_for_impostors(1, 0), 2);
    }
}
