//! A verification benchmark given as a list of image pairs (LFW's `pairs.txt`, read by
//! [`crate::data::images::read_pairs`]): every image of the list is embedded once, each pair scored
//! by cosine similarity, and the best-threshold accuracy cross-validated over folds that are
//! consecutive blocks of the list — LFW's ten folds of 300 same and 300 different pairs when the
//! list is LFW's.

use serde::{Deserialize, Serialize};

use crate::data::images::prefetch::load_batch;
use crate::data::images::{FaceImages, Pair, Sample};
use crate::error::{Error, Result};
use crate::eval::verification::{accuracy_on_folds, score};

/// The result of a pair-list benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairListMetrics {
    /// Pairs scored (same + different).
    pub pairs: u64,
    /// Folds of the cross-validated threshold.
    pub folds: usize,
    /// Mean best-threshold accuracy over the folds.
    pub accuracy: f64,
    /// Population standard deviation over the folds.
    pub accuracy_std: f64,
}

/// Scores `pairs` of `images` with the embeddings `embed` gives (rows of `dim` floats, one per
/// input image, in order).
pub fn evaluate_pair_list(
    pairs: &[Pair],
    images: &dyn FaceImages,
    folds: usize,
    dim: usize,
    embed: &dyn Fn(&[f32]) -> Vec<f32>,
) -> Result<PairListMetrics> {
    if pairs.len() < 2 * folds {
        return Err(Error::Other(format!(
            "pair list: {} pairs for {folds} folds; each fold needs pairs of both kinds",
            pairs.len()
        )));
    }
    // Each distinct image once, in first-use order.
    let mut index = std::collections::HashMap::new();
    let mut samples = Vec::new();
    let mut slot = |img: (usize, usize)| {
        *index.entry(img).or_insert_with(|| {
            samples.push(Sample {
                identity: img.0,
                instance: img.1,
                flip: false,
            });
            samples.len() - 1
        })
    };
    let rows: Vec<(usize, usize)> = pairs.iter().map(|p| (slot(p.a), slot(p.b))).collect();
    let emb = embed(&load_batch(images, samples)?.data);
    let n = pairs.len();
    let scored: Vec<(f32, bool, usize)> = rows
        .iter()
        .zip(pairs)
        .enumerate()
        .map(|(k, (&(a, b), p))| {
            let s = score(&emb[a * dim..(a + 1) * dim], &emb[b * dim..(b + 1) * dim]);
            (s, p.same, k * folds / n)
        })
        .collect();
    for fold in 0..folds {
        let kinds = scored.iter().filter(|s| s.2 == fold).map(|s| s.1);
        if !(kinds.clone().any(|same| same) && kinds.clone().any(|same| !same)) {
            return Err(Error::Other(format!(
                "pair list: fold {fold} (pairs {}..{} of the list) lacks same or different pairs; \
                 the folds are consecutive blocks, as in LFW",
                fold * n / folds,
                (fold + 1) * n / folds
            )));
        }
    }
    let (accuracy, accuracy_std) = accuracy_on_folds(&scored, folds);
    Ok(PairListMetrics {
        pairs: n as u64,
        folds,
        accuracy,
        accuracy_std,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::test_images::pgm;
    use crate::data::images::{read_pairs, Channels, ImageFolder};

    #[test]
    fn separable_pairs_score_perfectly_on_their_folds() {
        let dir = tempfile::tempdir().unwrap();
        for (name, shade) in [("ann", 20u8), ("bob", 230u8)] {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).unwrap();
            for k in 1..=2 {
                std::fs::write(
                    d.join(format!("{name}_{k:04}.pgm")),
                    pgm(112, 112, |_, _| shade),
                )
                .unwrap();
            }
        }
        let images = ImageFolder::open(dir.path(), Channels::Grey).unwrap();
        let list = dir.path().join("pairs.txt");
        std::fs::write(&list, "2 2\nann 1 2\nbob 1 2\nann 1 bob 2\nbob 1 ann 2\n").unwrap();
        let pairs = read_pairs(&list, &images).unwrap();
        // The embedding of an image: its mean pixel, as a 2-d direction.
        let embed = |x: &[f32]| -> Vec<f32> {
            x.chunks(112 * 112)
                .flat_map(|img| {
                    let m = img.iter().sum::<f32>() / img.len() as f32;
                    [m.cos(), m.sin()]
                })
                .collect()
        };
        // Folds are consecutive blocks: [same, same] | [diff, diff] lacks a kind per fold.
        let err = evaluate_pair_list(&pairs, &images, 2, 2, &embed).unwrap_err();
        assert!(err.to_string().contains("lacks"), "{err}");
        let mixed = [pairs[0], pairs[2], pairs[1], pairs[3]];
        let m = evaluate_pair_list(&mixed, &images, 2, 2, &embed).unwrap();
        assert_eq!(
            (m.pairs, m.folds, m.accuracy, m.accuracy_std),
            (4, 2, 1.0, 0.0)
        );
    }
}
