//! Full FC and Partial FC through the public API: Partial FC at r = 1 samples every class, so its
//! sparse path (gathered rows, row-wise momentum) must reproduce the dense full-FC step; at r < 1
//! it must leave unsampled centres untouched, unless every centre steps (Partial FC v2 under
//! PyTorch's SGD), where the unsampled ones take weight decay and momentum alone.

use f2c::heads::backend::{CpuBackend, SgdParams};
use f2c::heads::full_fc::FullFc;
use f2c::heads::partial_fc::PartialFc;
use f2c::heads::{CentreUpdate, ClassifierHead, HeadState, Margin};

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

#[test]
fn partial_fc_stepping_all_rows_moves_unsampled_centres_by_decay_and_momentum_alone() {
    let (n, d, b) = (1000, 8, 4);
    let build = |update| {
        PartialFc::new(CpuBackend, n, d, Margin::CosFace(0.4), 32.0, 0.01, 3)
            .unwrap()
            .with_update(update)
    };
    // Both heads draw the same class samples (same seed, same labels); the one that moves only
    // the sampled centres shows which they were.
    let (mut sampled, mut all) = (
        build(CentreUpdate::SampledRows),
        build(CentreUpdate::AllRows),
    );
    let state = |h: &PartialFc<CpuBackend>| match h.save_state().unwrap() {
        HeadState::PartialFc {
            weight, velocity, ..
        } => (weight, velocity),
        other => panic!("{other:?}"),
    };
    let w0 = all.weights().unwrap();
    let labels = [[5usize, 500, 999, 5], [6, 7, 8, 9], [5, 500, 1, 2]];
    for (step, labels) in labels.iter().enumerate() {
        let emb = embeddings(b, d, step as f32 + 0.5);
        let before = sampled.weights().unwrap();
        let (w, v) = state(&all);
        let a = sampled.step(&emb, labels, &SGD).unwrap();
        let c = all.step(&emb, labels, &SGD).unwrap();
        if step == 0 {
            // From the same centres, the same loss and gradient: the update comes after them.
            assert_eq!(a.loss, c.loss);
            assert_eq!(a.grad, c.grad);
        }
        let after = sampled.weights().unwrap();
        let stepped: Vec<usize> = (0..n)
            .filter(|&r| after[r * d..(r + 1) * d] != before[r * d..(r + 1) * d])
            .collect();
        assert_eq!(stepped.len(), 10, "step {step}");
        // Every other centre: g = λw; v ← μv + g; w ← w − lr·(g + μv) (Nesterov).
        let (got_w, got_v) = state(&all);
        for r in (0..n).filter(|r| !stepped.contains(r)) {
            for j in r * d..(r + 1) * d {
                let g = SGD.weight_decay * w[j];
                let vj = SGD.momentum * v[j] + g;
                assert_eq!(got_v[j], vj, "step {step}, row {r}: momentum");
                assert_eq!(
                    got_w[j],
                    w[j] - SGD.lr * (g + SGD.momentum * vj),
                    "step {step}, row {r}"
                );
            }
        }
        if step == 0 {
            // Decay alone shrinks a centre that was never sampled, by lr·λ·(1 + μ) at first.
            let r = (0..n).find(|r| !stepped.contains(r)).unwrap();
            let ratio = got_w[r * d] / w0[r * d];
            assert!((ratio - (1.0 - 0.1 * 5e-4 * 1.9)).abs() < 1e-6, "{ratio}");
        }
    }
}
