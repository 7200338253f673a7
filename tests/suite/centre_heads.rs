//! Full FC and Partial FC through the public API: Partial FC at r = 1 samples every class, so its
//! sparse path (gathered rows, row-wise momentum) must reproduce the dense full-FC step; at r < 1
//! it must leave unsampled centres untouched.

use f2c::heads::backend::{CpuBackend, SgdParams};
use f2c::heads::full_fc::FullFc;
use f2c::heads::partial_fc::PartialFc;
use f2c::heads::Margin;

const SGD: SgdParams = SgdParams {
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 5e-4,
    nesterov: true,
};

fn embeddings(b: usize, d: usize, salt: f32) -> Vec<f32> {
    let mut v: Vec<f32> = (0..b * d)
        .map(|i| (i as f32 * 0.731 + salt).sin())
        .collect();
    for r in v.chunks_mut(d) {
        let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        r.iter_mut().for_each(|x| *x /= n);
    }
    v
}

#[test]
fn partial_fc_at_rate_one_is_full_fc() {
    let (n, d, b) = (40, 8, 6);
    for margin in [Margin::CosFace(0.35), Margin::ArcFace(0.5)] {
        let mut fc = FullFc::new(CpuBackend, n, d, margin, 16.0, 9).unwrap();
        let mut pfc = PartialFc::new(CpuBackend, n, d, margin, 16.0, 1.0, 9).unwrap();
        assert_eq!(pfc.num_sample(), n);
        for step in 0..4 {
            let emb = embeddings(b, d, step as f32);
            let labels: Vec<usize> = (0..b).map(|i| (i * 7 + step * 3) % n).collect();
            let a = fc.step(&emb, &labels, &SGD).unwrap();
            let p = pfc.step(&emb, &labels, &SGD).unwrap();
            assert!(
                (a.loss.ce - p.loss.ce).abs() < 1e-6,
                "{margin:?} step {step}: {:?} vs {:?}",
                a.loss,
                p.loss
            );
            for (x, y) in a.grad.iter().zip(&p.grad) {
                assert!((x - y).abs() < 1e-6, "{margin:?} step {step}");
            }
        }
        for (x, y) in fc
            .weights()
            .unwrap()
            .iter()
            .zip(pfc.weights().unwrap().iter())
        {
            assert!((x - y).abs() < 1e-6, "{margin:?}: centres differ");
        }
    }
}

#[test]
fn partial_fc_updates_only_sampled_centres() {
    let (n, d, b) = (1000, 8, 4);
    let mut pfc = PartialFc::new(CpuBackend, n, d, Margin::CosFace(0.4), 32.0, 0.01, 3).unwrap();
    assert_eq!(pfc.num_sample(), 10);
    let before = pfc.weights().unwrap();
    let labels = [5usize, 500, 999, 5];
    pfc.step(&embeddings(b, d, 0.5), &labels, &SGD).unwrap();
    let after = pfc.weights().unwrap();
    let changed: Vec<usize> = (0..n)
        .filter(|&c| before[c * d..(c + 1) * d] != after[c * d..(c + 1) * d])
        .collect();
    // 10 sampled centres, all three positives among them; nothing else moved (no dense momentum
    // or weight-decay sweep over the N centres).
    assert_eq!(changed.len(), 10, "{changed:?}");
    for c in [5, 500, 999] {
        assert!(changed.contains(&c));
    }
}
