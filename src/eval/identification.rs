//! Closed-gallery rank-1 identification over held-out identities: the first instance of each
//! identity is its gallery entry, every other instance is a probe, and a probe is identified when
//! its most similar gallery entry (cosine score) is its own identity.

use rayon::prelude::*;

use super::layout::identity_blocks;
use super::verification::score;

/// Probes per parallel task: 32 rows of 128 floats (16 KiB) stay in L1 while a gallery block streams past.
const PROBE_BLOCK: usize = 32;
/// Gallery rows per block: 256 rows of 128 floats (128 KiB) stay in L2 across a probe block.
const GALLERY_BLOCK: usize = 256;

/// For each probe row, the index of its most similar gallery row.
///
/// Ties go to the lowest gallery index (a later entry replaces the best only when strictly
/// greater), so the answer does not depend on blocking or thread count. A probe whose scores are
/// all NaN gets `usize::MAX`, which matches no gallery entry.
///
/// # Panics
/// If `dim` is 0 or either matrix's length is not a multiple of `dim`.
pub fn nearest_gallery(gallery: &[f32], probes: &[f32], dim: usize) -> Vec<usize> {
    assert!(
        dim > 0 && gallery.len().is_multiple_of(dim) && probes.len().is_multiple_of(dim),
        "nearest gallery: gallery ({}) and probes ({}) do not form rows of dim {dim}",
        gallery.len(),
        probes.len()
    );
    let mut nearest = vec![usize::MAX; probes.len() / dim];
    probes
        .par_chunks(PROBE_BLOCK * dim)
        .zip(nearest.par_chunks_mut(PROBE_BLOCK))
        .for_each(|(probe_block, nearest)| {
            let mut best = vec![f32::NEG_INFINITY; nearest.len()];
            // Gallery blocks in increasing order keep "lowest index wins" on ties.
            for (b, gallery_block) in gallery.chunks(GALLERY_BLOCK * dim).enumerate() {
                for (j, g) in gallery_block.chunks_exact(dim).enumerate() {
                    for (p, probe) in probe_block.chunks_exact(dim).enumerate() {
                        let s = score(probe, g);
                        if s > best[p] {
                            best[p] = s;
                            nearest[p] = b * GALLERY_BLOCK + j;
                        }
                    }
                }
            }
        });
    nearest
}

/// Rank-1 identification rate over held-out embeddings (layout of [`identity_blocks`]): the
/// fraction of probes (every instance but each identity's first) whose nearest gallery entry (each
/// identity's first instance) is their own identity; ties go to the lowest gallery index, i.e. the
/// identity appearing first.
///
/// # Panics
/// If `embeddings.len() != labels.len() * dim`, `dim == 0`, or the layout is broken.
pub fn rank1(embeddings: &[f32], dim: usize, labels: &[usize]) -> f64 {
    assert!(
        dim > 0 && embeddings.len() == labels.len() * dim,
        "rank-1: {} values for {} labels of dim {dim}",
        embeddings.len(),
        labels.len()
    );
    let row = |i: usize| &embeddings[i * dim..(i + 1) * dim];
    let blocks = identity_blocks(labels);
    let gallery: Vec<f32> = blocks.iter().flat_map(|b| row(b.start)).copied().collect(); // (G, dim)
    let mut probes = Vec::with_capacity(embeddings.len() - gallery.len()); // (P, dim)
    let mut truth = Vec::with_capacity(labels.len() - blocks.len()); // gallery index of each probe
    for (g, block) in blocks.iter().enumerate() {
        for i in block.start + 1..block.end {
            probes.extend_from_slice(row(i));
            truth.push(g);
        }
    }
    let nearest = nearest_gallery(&gallery, &probes, dim);
    let hits = nearest.iter().zip(&truth).filter(|(n, t)| n == t).count();
    hits as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank1_three_identities_by_hand() {
        let h = std::f32::consts::FRAC_1_SQRT_2;
        // Identity labels 7, 3, 5 (any values work); gallery rows 0, 3, 6 = (1,0), (0,1), (-1,0).
        #[rustfmt::skip]
        let e = [
            1.0, 0.0,   // 0: id 7 gallery
            0.8, 0.6,   // 1: id 7, scores .8 .6 -.8 -> g0, right
            h, h,       // 2: id 7, scores h h -h, tie g0/g1 -> g0, right
            0.0, 1.0,   // 3: id 3 gallery
            0.6, 0.8,   // 4: id 3, scores .6 .8 -.6 -> g1, right
            0.8, 0.6,   // 5: id 3, scores .8 .6 -.8 -> g0, wrong
            -1.0, 0.0,  // 6: id 5 gallery
            -0.6, 0.8,  // 7: id 5, scores -.6 .8 .6 -> g1, wrong
            0.0, -1.0,  // 8: id 5, scores 0 -1 0, tie g0/g2 -> g0, wrong
            -0.6, -0.8, // 9: id 5, scores -.6 -.8 .6 -> g2, right
        ];
        let labels = [7, 7, 7, 3, 3, 3, 5, 5, 5, 5];
        // 7 probes, 4 right.
        assert_eq!(rank1(&e, 2, &labels), 4.0 / 7.0);
    }

    #[test]
    fn nearest_crosses_block_boundaries_and_keeps_first_tie() {
        // 600 gallery rows (3 blocks) in 1 dim, all 0 except rows 300 and 599 = 1; 70 probes
        // (3 probe blocks) of value 1: best score 1, first at row 300 (in the second block).
        let mut gallery = vec![0.0f32; 600];
        gallery[300] = 1.0;
        gallery[599] = 1.0;
        let probes = vec![1.0f32; 70];
        assert_eq!(nearest_gallery(&gallery, &probes, 1), vec![300; 70]);
        // Probe -1 prefers the zeros; the first of them is row 0.
        assert_eq!(nearest_gallery(&gallery, &[-1.0], 1), vec![0]);
    }
}
