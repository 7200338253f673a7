//! CPU agreement of a device's [`Backend`]: every operation and the FC, Partial FC, F²C and DCQ
//! head steps give the same numbers on `CpuBackend` and on the device from the same inputs and
//! seeds. The bodies are generic over the device; `cuda_agreement` runs them on a GPU and
//! `kernel_emulation` on the CUDA kernels emulated on the CPU.
//!
//! Tolerances, and why they are not zero: a GPU sums in a different order (cuBLAS's blocked
//! sgemm, the kernels' tree reductions against the CPU's sequential sums) and CUDA's `expf`/`logf`
//! differ from the host's by up to 2 ulp; everything else is the same f32 arithmetic in the same
//! order (the kernels are compiled without FMA contraction). Single operations therefore agree to
//! ~1e-6 relative and are checked at 1e-5 of the largest magnitude of the array compared; head
//! steps chain a few of them and are checked at 1e-4 relative on losses and 1e-3 of the largest
//! magnitude on gradients and updated weights.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use f2c::heads::backend::{Backend, CpuBackend, LossSpec, SgdParams};
use f2c::heads::class_pool::{Capacity, Eviction, PoolConfig, Rows};
use f2c::heads::dcq::{DcqConfig, DcqHead};
use f2c::heads::f2c::{F2cConfig, F2cHead, PoolEval, TopK};
use f2c::heads::full_fc::FullFc;
use f2c::heads::partial_fc::PartialFc;
use f2c::heads::{CentreUpdate, Halves, Margin, PairedInput, StepOutput};

/// Every entry of `dev` within `tol` × (largest |cpu| entry) of `cpu`.
pub fn assert_close(what: &str, cpu: &[f32], dev: &[f32], tol: f32) {
    assert_eq!(cpu.len(), dev.len(), "{what}: lengths differ");
    let scale = cpu.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
    for (i, (a, b)) in cpu.iter().zip(dev).enumerate() {
        assert!(
            (a - b).abs() <= tol * scale,
            "{what}[{i}]: cpu {a} vs dev {b} (tolerance {tol} × max|cpu| {scale})"
        );
    }
}

pub fn assert_rel(what: &str, cpu: f64, dev: f64, tol: f64) {
    assert!(
        (cpu - dev).abs() <= tol * cpu.abs().max(1e-12),
        "{what}: cpu {cpu} vs dev {dev} (relative tolerance {tol})"
    );
}

pub fn normal(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<f32> {
    let n = Normal::new(0.0f32, 1.0).unwrap();
    (0..len).map(|_| n.sample(rng)).collect()
}

/// `rows` unit vectors of dimension `dim`.
fn unit_rows(rng: &mut rand::rngs::StdRng, rows: usize, dim: usize) -> Vec<f32> {
    let mut v = normal(rng, rows * dim);
    for r in v.chunks_mut(dim) {
        let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        r.iter_mut().for_each(|x| *x /= n);
    }
    v
}

pub fn matmuls_agree<B: Backend>(be: &B) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    // Odd sizes, k above a cuBLAS tile, and buffers longer than the matrices (as the heads' work
    // buffers are).
    let (m, n, k) = (7, 13, 133);
    let a = normal(&mut rng, m * k + 5);
    let bt = normal(&mut rng, n * k + 3); // (n×k) for abt; (k×n) for ab
    let c0 = normal(&mut rng, m * n + 2);
    let (ga, gb) = (be.upload(&a).unwrap(), be.upload(&bt).unwrap());

    let mut c = c0.clone();
    CpuBackend.matmul_abt(m, n, k, &a, &bt, &mut c).unwrap();
    let mut gc = be.upload(&c0).unwrap();
    be.matmul_abt(m, n, k, &ga, &gb, &mut gc).unwrap();
    assert_close("abt", &c, &be.download(&gc).unwrap(), 1e-5);

    for accumulate in [false, true] {
        let mut c = c0.clone();
        CpuBackend
            .matmul_ab(m, n, k, &a, &bt, &mut c, accumulate)
            .unwrap();
        let mut gc = be.upload(&c0).unwrap();
        be.matmul_ab(m, n, k, &ga, &gb, &mut gc, accumulate)
            .unwrap();
        assert_close(
            &format!("ab (accumulate {accumulate})"),
            &c,
            &be.download(&gc).unwrap(),
            1e-5,
        );
    }

    // aᵀ·b with a (k×m) and b (k×n): here a = the first k·m floats, b = the first k·n.
    let mut c = c0.clone();
    CpuBackend.matmul_atb(m, n, k, &a, &bt, &mut c).unwrap();
    let mut gc = be.upload(&c0).unwrap();
    be.matmul_atb(m, n, k, &ga, &gb, &mut gc).unwrap();
    assert_close("atb", &c, &be.download(&gc).unwrap(), 1e-5);
    // The tail beyond m·n is untouched on both.
    assert_eq!(&be.download(&gc).unwrap()[m * n..], &c0[m * n..]);
}

pub fn buffers_normalisation_sgd_and_row_copies_agree<B: Backend>(be: &B) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    // dim above the block size, so that the kernels' strided loops take several turns.
    let (rows, dim) = (40, 300);
    let w0 = normal(&mut rng, rows * dim);
    let v0 = normal(&mut rng, rows * dim);

    // Round trips, zeros, length and copies are exact.
    let dw = be.upload(&w0).unwrap();
    assert_eq!(be.download(&dw).unwrap(), w0);
    assert_eq!(be.len(&dw), rows * dim);
    assert_eq!(be.download(&be.duplicate(&dw).unwrap()).unwrap(), w0);
    assert_eq!(be.download(&be.zeros(17).unwrap()).unwrap(), vec![0.0; 17]);
    assert!(be.download(&be.zeros(0).unwrap()).unwrap().is_empty());
    be.synchronize().unwrap();

    for sel in [None, Some(vec![0usize, 3, 4, 17, 39])] {
        let count = sel.as_ref().map_or(rows, |s| s.len());
        // Each list is uploaded once and read by both row operations, as in a step.
        let cpu_rows = sel.clone().map(|s| CpuBackend.upload_rows(s).unwrap());
        let dev_rows = sel.clone().map(|s| be.upload_rows(s).unwrap());
        let (mut un, mut nn) = (vec![0.0; count * dim], vec![0.0; count]);
        CpuBackend
            .gather_normalize(&w0, dim, cpu_rows.as_ref(), &mut un, &mut nn)
            .unwrap();
        let (mut gu, mut gn) = (be.zeros(count * dim).unwrap(), be.zeros(count).unwrap());
        be.gather_normalize(&dw, dim, dev_rows.as_ref(), &mut gu, &mut gn)
            .unwrap();
        assert_close("normalised rows", &un, &be.download(&gu).unwrap(), 1e-5);
        assert_close("norms", &nn, &be.download(&gn).unwrap(), 1e-5);

        let g = normal(&mut rng, count * dim);
        for nesterov in [false, true] {
            let sgd = sgd_with(nesterov);
            let (mut w, mut v) = (w0.clone(), v0.clone());
            CpuBackend
                .sgd_normalized_rows(&mut w, &mut v, dim, cpu_rows.as_ref(), &g, &un, &nn, &sgd)
                .unwrap();
            let (mut dw2, mut dv2) = (be.upload(&w0).unwrap(), be.upload(&v0).unwrap());
            be.sgd_normalized_rows(
                &mut dw2,
                &mut dv2,
                dim,
                dev_rows.as_ref(),
                &be.upload(&g).unwrap(),
                &gu,
                &gn,
                &sgd,
            )
            .unwrap();
            let (gw_host, gv_host) = (be.download(&dw2).unwrap(), be.download(&dv2).unwrap());
            assert_close(
                &format!("sgd weights (nesterov {nesterov})"),
                &w,
                &gw_host,
                1e-5,
            );
            assert_close(
                &format!("sgd momentum (nesterov {nesterov})"),
                &v,
                &gv_host,
                1e-5,
            );
            if let Some(s) = &sel {
                // Rows not listed are neither read nor written.
                for r in (0..rows).filter(|r| !s.contains(r)) {
                    assert_eq!(
                        &gw_host[r * dim..(r + 1) * dim],
                        &w0[r * dim..(r + 1) * dim],
                        "row {r}"
                    );
                }
            }
        }
    }

    // The zero-gradient step of the rows a step did not reach (Partial FC's unsampled centres
    // when every centre steps): the same f32 expressions everywhere, so exact. Some rows skipped,
    // none skipped, all skipped.
    for nesterov in [false, true] {
        let sgd = sgd_with(nesterov);
        let all: Vec<usize> = (0..rows).collect();
        for skip in [&[0usize, 3, 4, 17, 39][..], &[], &all] {
            let (mut w, mut v) = (w0.clone(), v0.clone());
            let cpu_skip = CpuBackend.upload_rows(skip.to_vec()).unwrap();
            CpuBackend
                .sgd_idle_rows(&mut w, &mut v, dim, &cpu_skip, &sgd)
                .unwrap();
            let (mut dw2, mut dv2) = (be.upload(&w0).unwrap(), be.upload(&v0).unwrap());
            let dev_skip = be.upload_rows(skip.to_vec()).unwrap();
            be.sgd_idle_rows(&mut dw2, &mut dv2, dim, &dev_skip, &sgd)
                .unwrap();
            let what = format!("idle rows (nesterov {nesterov}, {} skipped)", skip.len());
            assert_eq!(be.download(&dw2).unwrap(), w, "{what}: weights");
            assert_eq!(be.download(&dv2).unwrap(), v, "{what}: momentum");
            for r in 0..rows {
                let moved = w[r * dim..(r + 1) * dim] != w0[r * dim..(r + 1) * dim];
                assert_eq!(moved, !skip.contains(&r), "{what}: row {r}");
            }
        }
    }

    // Row copies, with a destination repeated: the later write wins, as on the CPU. Then sides
    // in order (rows 0, 1, 2, …), which the CUDA backend does not upload: the sources, the
    // destinations, both.
    let mut d = v0.clone();
    let mut gd = be.upload(&v0).unwrap();
    for (src_rows, dst_rows) in [
        (&[5usize, 0, 9, 2][..], &[1usize, 7, 1, 3][..]),
        (&[0, 1, 2], &[11, 30, 4]),
        (&[6, 13, 25, 39], &[0, 1, 2, 3]),
        (&[0, 1, 2], &[0, 1, 2]),
    ] {
        CpuBackend
            .copy_rows(&w0, src_rows, &mut d, dst_rows, dim)
            .unwrap();
        be.copy_rows(&dw, src_rows, &mut gd, dst_rows, dim).unwrap();
        assert_eq!(be.download(&gd).unwrap(), d, "{src_rows:?} to {dst_rows:?}");
    }
    // An empty copy (a pool row without writes) is a no-op.
    be.copy_rows(&dw, &[], &mut gd, &[], dim).unwrap();
    assert_eq!(be.download(&gd).unwrap(), d);

    // Row swaps between two buffers (F²C's two-row mix), and back; none is a no-op.
    let swapped = [4usize, 0, 17];
    let (mut a, mut b) = (w0.clone(), v0.clone());
    let on_cpu = CpuBackend.upload_rows(swapped.to_vec()).unwrap();
    CpuBackend.swap_rows(&mut a, &mut b, &on_cpu, dim).unwrap();
    assert_eq!(&a[4 * dim..5 * dim], &v0[4 * dim..5 * dim]);
    assert_eq!(&b[17 * dim..18 * dim], &w0[17 * dim..18 * dim]);
    assert_eq!(&a[5 * dim..17 * dim], &w0[5 * dim..17 * dim]);
    let (mut da, mut db) = (be.upload(&w0).unwrap(), be.upload(&v0).unwrap());
    let (listed, none) = (
        be.upload_rows(swapped.to_vec()).unwrap(),
        be.upload_rows(Vec::new()).unwrap(),
    );
    be.swap_rows(&mut da, &mut db, &listed, dim).unwrap();
    assert_eq!(be.download(&da).unwrap(), a);
    assert_eq!(be.download(&db).unwrap(), b);
    be.swap_rows(&mut da, &mut db, &listed, dim).unwrap();
    be.swap_rows(&mut da, &mut db, &none, dim).unwrap();
    assert_eq!(be.download(&da).unwrap(), w0);
    assert_eq!(be.download(&db).unwrap(), v0);

    // Filling flat indices (DCQ's mask), one of them twice; none is a no-op.
    let at = [0usize, 301, 7, 301, rows * dim - 1];
    CpuBackend.fill_at(&mut d, &at, -1e9).unwrap();
    be.fill_at(&mut gd, &at, -1e9).unwrap();
    be.fill_at(&mut gd, &[], 5.0).unwrap();
    assert_eq!(be.download(&gd).unwrap(), d);
}

pub fn margin_loss_agrees<B: Backend>(be: &B) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    // c above the block size; rows with targets (CE) and without (negative top-k).
    let (b, c) = (12, 777);
    let mut cos: Vec<f32> = (0..b * c).map(|_| rng.gen_range(-0.9f32..0.9)).collect();
    let targets: Vec<i64> = (0..b)
        .map(|i| {
            if i % 3 == 2 {
                -1
            } else {
                rng.gen_range(0..c as i64)
            }
        })
        .collect();
    // Row 0's target far below cos(π − m): ArcFace's fallback branch. Row 2 (negative): ties at
    // the top, which both backends must break towards the earlier column.
    cos[targets[0] as usize] = -0.97;
    for j in [10usize, 400, 700] {
        cos[2 * c + j] = 0.95;
    }
    // Row 5 (negative): 40 equal top values spread over the row, so that k = 20's second pass of
    // the selection starts inside the tie and must go on from the first pass's last column.
    for j in 0..40 {
        cos[5 * c + 19 * j + 3] = 0.93;
    }
    // k = 16 is one full pass of the kernel's selection, 20 takes two. (k = 0 is left out: the CPU
    // backend's `neg_row` indexes `top[top.len() - 1]` of an empty list for it.)
    for (margin, neg_k) in [
        (Margin::CosFace(0.4), 3),
        (Margin::ArcFace(0.5), 2),
        (Margin::CosFace(0.35), 16),
        (Margin::ArcFace(0.5), 20),
    ] {
        let spec = LossSpec {
            margin,
            scale: 32.0,
            ce_weight: 1.0 / 8.0,
            neg_k,
            neg_weight: 1.0 / (4.0 * neg_k as f32),
        };
        let what = format!("{margin:?}, k = {neg_k}");
        let mut grad = cos.clone();
        let on_cpu = CpuBackend.upload_targets(targets.to_vec()).unwrap();
        let parts = CpuBackend
            .margin_loss(&mut grad, b, c, &on_cpu, &spec)
            .unwrap();
        let mut g = be.upload(&cos).unwrap();
        let listed = be.upload_targets(targets.to_vec()).unwrap();
        let dparts = be.margin_loss(&mut g, b, c, &listed, &spec).unwrap();
        let dgrad = be.download(&g).unwrap();
        assert_rel(&format!("{what}: ce"), parts.ce, dparts.ce, 1e-5);
        // The negative part sums the same selected values in the same order.
        assert_rel(&format!("{what}: neg"), parts.neg, dparts.neg, 1e-6);
        // CE gradient entries are w·s·p_j and w·s·(p_t − 1)·dφ/dc: their errors scale with w·s, not
        // with the row's largest entry (p_t − 1 cancels when p_t is near 1).
        let ce_tol = 1e-5 * spec.ce_weight * spec.scale;
        for (i, &t) in targets.iter().enumerate() {
            let (cpu_row, dev_row) = (&grad[i * c..(i + 1) * c], &dgrad[i * c..(i + 1) * c]);
            if t >= 0 {
                for (j, (x, y)) in cpu_row.iter().zip(dev_row).enumerate() {
                    assert!(
                        (x - y).abs() <= ce_tol,
                        "{what}: ce gradient row {i} column {j}: cpu {x} vs dev {y} (tolerance {ce_tol})"
                    );
                }
            } else {
                // The negative gradient is 0 or the weight: the same columns must be selected.
                assert_eq!(cpu_row, dev_row, "{what}: negative gradient row {i}");
            }
        }
    }
}

fn sgd() -> SgdParams {
    sgd_with(true)
}

/// lr 0.1, momentum 0.9, weight decay 5e-4, with or without Nesterov.
fn sgd_with(nesterov: bool) -> SgdParams {
    SgdParams {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov,
    }
}

/// One head step's loss (1e-4 relative) and embedding gradient (1e-3 of its largest entry) on
/// the CPU and on the device.
fn step_agrees(what: &str, cpu: &StepOutput, dev: &StepOutput) {
    assert_rel(
        &format!("{what}: loss"),
        cpu.loss.total(),
        dev.loss.total(),
        1e-4,
    );
    assert_close(
        &format!("{what}: embedding gradient"),
        &cpu.grad,
        &dev.grad,
        1e-3,
    );
}

pub fn fc_and_partial_fc_steps_agree<B: Backend>(be: &B) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let (n, d, batch) = (500, 64, 48);
    for margin in [Margin::CosFace(0.4), Margin::ArcFace(0.5)] {
        let mut cpu = FullFc::new(CpuBackend, n, d, margin, 32.0, 7).unwrap();
        let mut dev = FullFc::new(be.clone(), n, d, margin, 32.0, 7).unwrap();
        let mut cpu_p = PartialFc::new(CpuBackend, n, d, margin, 32.0, 0.3, 7).unwrap();
        let mut dev_p = PartialFc::new(be.clone(), n, d, margin, 32.0, 0.3, 7).unwrap();
        // Partial FC v2's update: every centre steps, the unsampled ones without a gradient.
        let mut cpu_a = PartialFc::new(CpuBackend, n, d, margin, 32.0, 0.3, 7)
            .unwrap()
            .with_update(CentreUpdate::AllRows);
        let mut dev_a = PartialFc::new(be.clone(), n, d, margin, 32.0, 0.3, 7)
            .unwrap()
            .with_update(CentreUpdate::AllRows);
        for step in 0..3 {
            let emb = unit_rows(&mut rng, batch, d);
            let labels: Vec<usize> = (0..batch).map(|_| rng.gen_range(0..n)).collect();
            let what = format!("{margin:?} step {step}");
            step_agrees(
                &format!("fc {what}"),
                &cpu.step(&emb, &labels, &sgd()).unwrap(),
                &dev.step(&emb, &labels, &sgd()).unwrap(),
            );
            for (name, cpu_h, dev_h) in [
                ("pfc", &mut cpu_p, &mut dev_p),
                ("pfc all rows", &mut cpu_a, &mut dev_a),
            ] {
                step_agrees(
                    &format!("{name} {what}"),
                    &cpu_h.step(&emb, &labels, &sgd()).unwrap(),
                    &dev_h.step(&emb, &labels, &sgd()).unwrap(),
                );
            }
        }
        for (name, on_cpu, on_dev) in [
            ("fc", cpu.weights(), dev.weights()),
            ("pfc", cpu_p.weights(), dev_p.weights()),
            ("pfc all rows", cpu_a.weights(), dev_a.weights()),
        ] {
            assert_close(
                &format!("{name} {margin:?}: centres"),
                &on_cpu.unwrap(),
                &on_dev.unwrap(),
                1e-3,
            );
        }
    }
}

pub fn f2c_head_steps_agree<B: Backend>(be: &B) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (ids, d, batch) = (200, 64, 48);
    let configs = [
        // The reference settings.
        (
            Margin::CosFace(0.4),
            TopK::Auto,
            PoolEval::TwoRow,
            true,
            Rows::Two,
        ),
        // The variants, with a k above one kernel pass (16).
        (
            Margin::ArcFace(0.5),
            TopK::Fixed(20),
            PoolEval::Row0,
            false,
            Rows::One,
        ),
    ];
    for (margin, top_k, pool_eval, symmetric, rows) in configs {
        let cfg = F2cConfig {
            margin,
            scale: 32.0,
            pool: PoolConfig {
                capacity: Capacity::Count(100),
                rows,
                eviction: Eviction::Lru,
            },
            ema_momentum: 0.9,
            top_k,
            pool_eval,
            symmetric,
        };
        let mut cpu = F2cHead::new(CpuBackend, &cfg, ids, d, 11).unwrap();
        let mut dev = F2cHead::new(be.clone(), &cfg, ids, d, 11).unwrap();
        let halves = Halves {
            a: (0..batch).step_by(2).collect(),
            b: (1..batch).step_by(2).collect(),
        };
        for step in 0..4 {
            let probe = unit_rows(&mut rng, batch, d);
            let gallery = unit_rows(&mut rng, batch, d);
            let labels: Vec<usize> = (0..batch).map(|_| rng.gen_range(0..ids)).collect();
            let what = format!("{margin:?} {top_k:?} {pool_eval:?} step {step}");
            let input = PairedInput {
                probe: &probe,
                gallery: &gallery,
                labels: &labels,
                halves: &halves,
            };
            let x = cpu.step(input).unwrap();
            let y = dev.step(input).unwrap();
            assert_eq!(x.positive_fraction, y.positive_fraction, "{what}");
            assert_rel(&format!("{what}: ce"), x.loss.ce, y.loss.ce, 1e-4);
            assert_rel(&format!("{what}: neg"), x.loss.neg, y.loss.neg, 1e-4);
            assert_close(&format!("{what}: probe gradient"), &x.grad, &y.grad, 1e-3);
        }
        // The pools hold the same gallery features (copied, never computed: exactly).
        for (r, (f_cpu, f_dev)) in cpu
            .pool()
            .features
            .iter()
            .zip(&dev.pool().features)
            .enumerate()
        {
            assert_eq!(
                f_cpu,
                &be.download(f_dev).unwrap(),
                "{margin:?}: pool row {r}"
            );
        }
    }
}

pub fn dcq_head_steps_agree<B: Backend>(be: &B) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // A queue of 60 keys filled over the steps (24 pairs each: it wraps in the third), identities
    // drawn from 40 so that queries meet their own identity's keys in the queue (masked).
    let (ids, d, pairs) = (40, 64, 24);
    let cfg = DcqConfig {
        margin: Margin::CosFace(0.3),
        scale: 50.0,
        queue: Capacity::Count(60),
        momentum: 0.999,
    };
    let mut cpu = DcqHead::new(CpuBackend, &cfg, ids, d, 13).unwrap();
    let mut dev = DcqHead::new(be.clone(), &cfg, ids, d, 13).unwrap();
    let halves = Halves {
        a: (0..pairs).collect(),
        b: (pairs..2 * pairs).collect(),
    };
    for step in 0..4 {
        let probe = unit_rows(&mut rng, 2 * pairs, d);
        let gallery = unit_rows(&mut rng, 2 * pairs, d);
        let mut labels: Vec<usize> = (0..pairs).map(|_| rng.gen_range(0..ids)).collect();
        labels.extend_from_within(..);
        let input = PairedInput {
            probe: &probe,
            gallery: &gallery,
            labels: &labels,
            halves: &halves,
        };
        let (x, y) = (
            cpu.step_pairs(input).unwrap(),
            dev.step_pairs(input).unwrap(),
        );
        let what = format!("dcq step {step}");
        assert_eq!(x.stats, y.stats, "{what}: queue hit rate");
        assert_rel(&format!("{what}: loss"), x.loss.ce, y.loss.ce, 1e-4);
        assert_close(&format!("{what}: query gradient"), &x.grad, &y.grad, 1e-3);
    }
}
