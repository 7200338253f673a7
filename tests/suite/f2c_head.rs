//! F²C's pool losses and pool writes, checked on hand-computed cases and against finite
//! differences, through the public head API.

use f2c::heads::backend::CpuBackend;
use f2c::heads::class_pool::{Capacity, Eviction, FeaturePool, PoolConfig, Rows};
use f2c::heads::f2c::{F2cConfig, F2cHead, PoolEval, TopK};
use f2c::heads::pool_loss::{pool_loss, PoolLossSpec};
use f2c::heads::{Halves, Margin, PairedInput};

fn config(q: usize, rows: Rows, eval: PoolEval, symmetric: bool) -> F2cConfig {
    F2cConfig {
        margin: Margin::CosFace(0.2),
        scale: 2.0,
        pool: PoolConfig {
            capacity: Capacity::Count(q),
            rows,
            eviction: Eviction::Lru,
        },
        ema_momentum: 0.99,
        top_k: TopK::Auto,
        pool_eval: eval,
        symmetric,
    }
}

#[test]
fn positive_and_negative_losses_by_hand() {
    let mut head = F2cHead::new(
        CpuBackend,
        &config(2, Rows::Two, PoolEval::TwoRow, false),
        10,
        2,
        0,
    )
    .unwrap();
    // Gallery writes identities 7 → slot 0 = [1, 0] and 9 → slot 1 = [0, 1] (row 0; both new).
    let gallery = [1.0, 0.0, 0.0, 1.0];
    // Probe p = [0.6, 0.8] of identity 7 (resident, target slot 0) and of identity 5 (not resident).
    let probe = [0.6, 0.8, 0.6, 0.8];
    let (loss, _, positives) = head
        .direction(&probe, &[7, 5], &gallery, &[7, 9], false)
        .unwrap();
    assert_eq!(positives, 1);
    // Positive: cos = [0.6, 0.8], logits s·[0.6 − 0.2, 0.8] = [0.8, 1.6];
    // CE = ln(e^0.8 + e^1.6) − 0.8 = 1.171101. No slot was refreshed, so the mix is row 0 and the
    // reference's second evaluation repeats the first: 2.342201.
    assert!((loss.ce - 2.342_201).abs() < 1e-5, "{loss:?}");
    // Negative: k = min(max(⌊0.0002·2⌋, 3), 10) = 3, capped at Q = 2: mean(0.8, 0.6) = 0.7, twice.
    assert!((loss.neg - 1.4).abs() < 1e-6, "{loss:?}");

    // Identity 7 again with g = [0, 1]: resident → its slot's row 1; slot 0 is "refreshed", so the
    // second evaluation uses row 1 for slot 0: cos1 = [0.6, 0.8], cos2 = [0.8, 0.8].
    let (loss, _, _) = head
        .direction(&probe[..2], &[7], &[0.0, 1.0], &[7], false)
        .unwrap();
    // CE1 = 1.171101; CE2 = ln(e^1.2 + e^1.6) − 1.2 = 0.913015.
    assert!((loss.ce - (1.171_101 + 0.913_015)).abs() < 1e-5, "{loss:?}");
}

#[test]
fn row0_evaluation_is_the_first_term_only() {
    let mut head = F2cHead::new(
        CpuBackend,
        &config(2, Rows::Two, PoolEval::Row0, false),
        10,
        2,
        0,
    )
    .unwrap();
    let (loss, _, _) = head
        .direction(&[0.6, 0.8], &[7], &[1.0, 0.0, 0.0, 1.0], &[7, 9], false)
        .unwrap();
    assert!((loss.ce - 1.171_101).abs() < 1e-5, "{loss:?}");
}

#[test]
fn pool_loss_gradient_matches_finite_differences() {
    let d = 4;
    let be = CpuBackend;
    let cfg = PoolConfig {
        capacity: Capacity::Count(6),
        rows: Rows::Two,
        eviction: Eviction::Lru,
    };
    let mut pool = FeaturePool::new(&be, &cfg, 100, d, 3).unwrap();
    // Irregular values: no cosine sits exactly on the clip at 0 or on a top-k tie, where the loss has kinks.
    // Rows are unit vectors, so cosines stay in [−1, 1] where ArcFace's angle is defined.
    let unit = |v: Vec<f32>| -> Vec<f32> {
        v.chunks(d)
            .flat_map(|r| {
                let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
                r.iter().map(move |x| x / n)
            })
            .collect()
    };
    let gallery = unit((0..5 * d).map(|i| (i as f32 * 1.37 + 0.3).sin()).collect());
    let write = pool
        .write_batch(&be, &gallery, &[1, 2, 3, 1, 4], false)
        .unwrap();
    let targets = [0i64, -1, 2, -1, 1];
    let emb = unit((0..5 * d).map(|i| (i as f32 * 2.11 + 1.1).cos()).collect());
    for (margin, eval) in [
        (Margin::CosFace(0.3), PoolEval::TwoRow),
        (Margin::ArcFace(0.4), PoolEval::Row0),
    ] {
        let spec = PoolLossSpec {
            margin,
            scale: 4.0,
            k: 3,
            eval,
        };
        let (_, grad) = pool_loss(&be, &pool, &emb, &targets, &write.refreshed, &spec).unwrap();
        for i in 0..emb.len() {
            let h = 1e-3;
            let (mut a, mut b) = (emb.clone(), emb.clone());
            a[i] += h;
            b[i] -= h;
            let la = pool_loss(&be, &pool, &a, &targets, &write.refreshed, &spec)
                .unwrap()
                .0
                .total();
            let lb = pool_loss(&be, &pool, &b, &targets, &write.refreshed, &spec)
                .unwrap()
                .0
                .total();
            let fd = (la - lb) / (2.0 * h as f64);
            assert!(
                (fd - grad[i] as f64).abs() < 5e-3,
                "{margin:?} {eval:?} entry {i}: fd {fd} vs {}",
                grad[i]
            );
        }
    }
}

#[test]
fn trial_direction_leaves_the_pool_as_it_was() {
    let mut head = F2cHead::new(
        CpuBackend,
        &config(3, Rows::Two, PoolEval::TwoRow, true),
        50,
        2,
        0,
    )
    .unwrap();
    head.direction(&[1.0, 0.0], &[1], &[1.0, 0.0, 0.0, 1.0], &[1, 2], false)
        .unwrap();
    let before_map = head.pool().map.clone();
    let before_rows: Vec<Vec<f32>> = head.pool().features.clone();
    // A trial that refreshes 1, adds 3 and evicts (capacity 3) when adding 4.
    head.direction(
        &[0.0, 1.0],
        &[3],
        &[0.6, 0.8, 0.8, 0.6, 0.0, -1.0],
        &[1, 3, 4],
        true,
    )
    .unwrap();
    assert_eq!(head.pool().map, before_map);
    assert_eq!(head.pool().features, before_rows);
}

#[test]
fn symmetric_step_keeps_only_the_second_direction() {
    let cfg = config(4, Rows::Two, PoolEval::TwoRow, true);
    let mut head = F2cHead::new(CpuBackend, &cfg, 50, 2, 0).unwrap();
    // Rows 0, 1 are half A (identities 10, 11), rows 2, 3 half B (identities 12, 13).
    let probe = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8, 0.8, 0.6];
    let gallery = probe;
    let out = head
        .step(PairedInput {
            probe: &probe,
            gallery: &gallery,
            labels: &[10, 11, 12, 13],
            halves: &Halves {
                a: vec![0, 1],
                b: vec![2, 3],
            },
        })
        .unwrap();
    // The kept direction writes A's gallery features: 10 and 11 are resident, 12 and 13 are not.
    let map = &head.pool().map;
    assert!(map.slot_of(10).is_some() && map.slot_of(11).is_some());
    assert!(map.slot_of(12).is_none() && map.slot_of(13).is_none());
    // No probe of either direction had its identity in the pool (different identities per half).
    assert_eq!(out.positive_fraction, 0.0);
    assert_eq!(out.grad.len(), probe.len());
    assert!(out.grad.iter().any(|g| *g != 0.0));
}
