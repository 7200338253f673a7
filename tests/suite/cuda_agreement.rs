//! CPU/GPU agreement (feature `cuda`): every [`Backend`] operation, the FC, Partial FC and F²C head
//! steps, the dfdx operations of the training step, and a short training run give the same numbers
//! on `CpuBackend`/`Cpu` and `CudaBackend`/`Cuda` from the same inputs and seeds.
//!
//! Each test needs an NVIDIA GPU with its driver; without one (no driver, or only the link stub
//! that the CUDA build recipe uses) it prints why it is skipping and passes.
//!
//! Tolerances, and why they are not zero: the GPU sums in a different order (cuBLAS's blocked
//! sgemm, the kernels' tree reductions against the CPU's sequential sums) and CUDA's `expf`/`logf`
//! differ from the host's by up to 2 ulp; everything else is the same f32 arithmetic in the same
//! order (the kernels are compiled without FMA contraction). Single operations therefore agree to
//! ~1e-6 relative and are checked at 1e-5 of the largest magnitude of the array compared; head
//! steps chain a few of them and are checked at 1e-4 relative on losses and 1e-3 of the largest
//! magnitude on gradients and updated weights. A training run feeds these differences back
//! through hundreds of SGD steps and an evaluation with thresholds, so its checks are on
//! outcomes: final loss within 1% relative and each metric within 0.02 absolute (about 4 of the
//! 200 rank-1 probes), where an implementation error moves them by far more.

#![cfg(feature = "cuda")]

use std::path::Path;

use dfdx::optim::{Momentum, Sgd, SgdConfig, WeightDecay};
use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use f2c::data::resident::InputStaging::{PerStep, Resident};
use f2c::data::synthetic::INPUT_DIM;
use f2c::device::DeviceChoice;
use f2c::heads::backend::{Backend, CpuBackend, CudaBackend, LossSpec, SgdParams};
use f2c::heads::class_pool::{Capacity, Eviction, PoolConfig, Rows};
use f2c::heads::f2c::{F2cConfig, F2cHead, PoolEval, TopK};
use f2c::heads::full_fc::FullFc;
use f2c::heads::partial_fc::PartialFc;
use f2c::heads::{Halves, Margin, PairedInput};
use f2c::nets::gallery::Gallery;
use f2c::nets::probe::{embed, inputs, l2_normalize, Net};
use f2c::results::RunStatus;
use f2c::train::run::{run_experiment, RunOptions};
use f2c::Experiment;

/// The GPU backend, or `None` after printing why the test is skipped.
fn gpu(test: &str) -> Option<CudaBackend> {
    match CudaBackend::new(0) {
        Ok(be) => {
            eprintln!("{test}: running on {}", be.name());
            Some(be)
        }
        Err(e) => {
            eprintln!("{test}: SKIPPED, no usable GPU: {e}");
            None
        }
    }
}

/// Every entry of `gpu` within `tol` × (largest |cpu| entry) of `cpu`.
fn assert_close(what: &str, cpu: &[f32], gpu: &[f32], tol: f32) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: lengths differ");
    let scale = cpu.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
    for (i, (a, b)) in cpu.iter().zip(gpu).enumerate() {
        assert!(
            (a - b).abs() <= tol * scale,
            "{what}[{i}]: cpu {a} vs gpu {b} (tolerance {tol} × max|cpu| {scale})"
        );
    }
}

fn assert_rel(what: &str, cpu: f64, gpu: f64, tol: f64) {
    assert!(
        (cpu - gpu).abs() <= tol * cpu.abs().max(1e-12),
        "{what}: cpu {cpu} vs gpu {gpu} (relative tolerance {tol})"
    );
}

fn normal(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<f32> {
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

#[test]
fn cuda_matmuls_agree_with_cpu() {
    let Some(be) = gpu("cuda_matmuls_agree_with_cpu") else {
        return;
    };
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

#[test]
fn cuda_buffers_normalisation_sgd_and_row_copies_agree_with_cpu() {
    let Some(be) = gpu("cuda_buffers_normalisation_sgd_and_row_copies_agree_with_cpu") else {
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    // dim above the block size, so that the kernels' strided loops take several turns.
    let (rows, dim) = (40, 300);
    let w0 = normal(&mut rng, rows * dim);
    let v0 = normal(&mut rng, rows * dim);

    // Round trips, zeros, length and copies are exact.
    let gw = be.upload(&w0).unwrap();
    assert_eq!(be.download(&gw).unwrap(), w0);
    assert_eq!(be.len(&gw), rows * dim);
    assert_eq!(be.download(&be.duplicate(&gw).unwrap()).unwrap(), w0);
    assert_eq!(be.download(&be.zeros(17).unwrap()).unwrap(), vec![0.0; 17]);
    assert!(be.download(&be.zeros(0).unwrap()).unwrap().is_empty());
    be.synchronize().unwrap();

    for sel in [None, Some(vec![0usize, 3, 4, 17, 39])] {
        let count = sel.as_ref().map_or(rows, |s| s.len());
        let (mut un, mut nn) = (vec![0.0; count * dim], vec![0.0; count]);
        CpuBackend
            .gather_normalize(&w0, dim, sel.as_deref(), &mut un, &mut nn)
            .unwrap();
        let (mut gu, mut gn) = (be.zeros(count * dim).unwrap(), be.zeros(count).unwrap());
        be.gather_normalize(&gw, dim, sel.as_deref(), &mut gu, &mut gn)
            .unwrap();
        assert_close("normalised rows", &un, &be.download(&gu).unwrap(), 1e-5);
        assert_close("norms", &nn, &be.download(&gn).unwrap(), 1e-5);

        let g = normal(&mut rng, count * dim);
        for nesterov in [false, true] {
            let sgd = SgdParams {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 5e-4,
                nesterov,
            };
            let (mut w, mut v) = (w0.clone(), v0.clone());
            CpuBackend
                .sgd_normalized_rows(&mut w, &mut v, dim, sel.as_deref(), &g, &un, &nn, &sgd)
                .unwrap();
            let (mut gw2, mut gv2) = (be.upload(&w0).unwrap(), be.upload(&v0).unwrap());
            be.sgd_normalized_rows(
                &mut gw2,
                &mut gv2,
                dim,
                sel.as_deref(),
                &be.upload(&g).unwrap(),
                &gu,
                &gn,
                &sgd,
            )
            .unwrap();
            let (gw_host, gv_host) = (be.download(&gw2).unwrap(), be.download(&gv2).unwrap());
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

    // Row copies, with a destination repeated: the later write wins, as on the CPU.
    let src_rows = [5usize, 0, 9, 2];
    let dst_rows = [1usize, 7, 1, 3];
    let mut d = v0.clone();
    CpuBackend
        .copy_rows(&w0, &src_rows, &mut d, &dst_rows, dim)
        .unwrap();
    let mut gd = be.upload(&v0).unwrap();
    be.copy_rows(&gw, &src_rows, &mut gd, &dst_rows, dim)
        .unwrap();
    assert_eq!(be.download(&gd).unwrap(), d);
    // An empty copy (a pool row without writes) is a no-op.
    be.copy_rows(&gw, &[], &mut gd, &[], dim).unwrap();
    assert_eq!(be.download(&gd).unwrap(), d);

    // Filling flat indices (DCQ's mask), one of them twice; none is a no-op.
    let at = [0usize, 301, 7, 301, rows * dim - 1];
    CpuBackend.fill_at(&mut d, &at, -1e9).unwrap();
    be.fill_at(&mut gd, &at, -1e9).unwrap();
    be.fill_at(&mut gd, &[], 5.0).unwrap();
    assert_eq!(be.download(&gd).unwrap(), d);
}

#[test]
fn cuda_margin_loss_agrees_with_cpu() {
    let Some(be) = gpu("cuda_margin_loss_agrees_with_cpu") else {
        return;
    };
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
        let parts = CpuBackend
            .margin_loss(&mut grad, b, c, &targets, &spec)
            .unwrap();
        let mut g = be.upload(&cos).unwrap();
        let gparts = be.margin_loss(&mut g, b, c, &targets, &spec).unwrap();
        let ggrad = be.download(&g).unwrap();
        assert_rel(&format!("{what}: ce"), parts.ce, gparts.ce, 1e-5);
        // The negative part sums the same selected values in the same order.
        assert_rel(&format!("{what}: neg"), parts.neg, gparts.neg, 1e-6);
        // CE gradient entries are w·s·p_j and w·s·(p_t − 1)·dφ/dc: their errors scale with w·s, not
        // with the row's largest entry (p_t − 1 cancels when p_t is near 1).
        let ce_tol = 1e-5 * spec.ce_weight * spec.scale;
        for (i, &t) in targets.iter().enumerate() {
            let (cpu_row, gpu_row) = (&grad[i * c..(i + 1) * c], &ggrad[i * c..(i + 1) * c]);
            if t >= 0 {
                for (j, (x, y)) in cpu_row.iter().zip(gpu_row).enumerate() {
                    assert!(
                        (x - y).abs() <= ce_tol,
                        "{what}: ce gradient row {i} column {j}: cpu {x} vs gpu {y} (tolerance {ce_tol})"
                    );
                }
            } else {
                // The negative gradient is 0 or the weight: the same columns must be selected.
                assert_eq!(cpu_row, gpu_row, "{what}: negative gradient row {i}");
            }
        }
    }
}

fn sgd() -> SgdParams {
    SgdParams {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: true,
    }
}

#[test]
fn cuda_fc_and_partial_fc_steps_agree_with_cpu() {
    let Some(be) = gpu("cuda_fc_and_partial_fc_steps_agree_with_cpu") else {
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let (n, d, batch) = (500, 64, 48);
    for margin in [Margin::CosFace(0.4), Margin::ArcFace(0.5)] {
        let mut cpu = FullFc::new(CpuBackend, n, d, margin, 32.0, 7).unwrap();
        let mut gpu = FullFc::new(be.clone(), n, d, margin, 32.0, 7).unwrap();
        let mut cpu_p = PartialFc::new(CpuBackend, n, d, margin, 32.0, 0.3, 7).unwrap();
        let mut gpu_p = PartialFc::new(be.clone(), n, d, margin, 32.0, 0.3, 7).unwrap();
        for step in 0..3 {
            let emb = unit_rows(&mut rng, batch, d);
            let labels: Vec<usize> = (0..batch).map(|_| rng.gen_range(0..n)).collect();
            let what = format!("{margin:?} step {step}");
            let (a, b) = (
                cpu.step(&emb, &labels, &sgd()).unwrap(),
                gpu.step(&emb, &labels, &sgd()).unwrap(),
            );
            assert_rel(
                &format!("fc {what}: loss"),
                a.loss.total(),
                b.loss.total(),
                1e-4,
            );
            assert_close(
                &format!("fc {what}: embedding gradient"),
                &a.grad,
                &b.grad,
                1e-3,
            );
            let (a, b) = (
                cpu_p.step(&emb, &labels, &sgd()).unwrap(),
                gpu_p.step(&emb, &labels, &sgd()).unwrap(),
            );
            assert_rel(
                &format!("pfc {what}: loss"),
                a.loss.total(),
                b.loss.total(),
                1e-4,
            );
            assert_close(
                &format!("pfc {what}: embedding gradient"),
                &a.grad,
                &b.grad,
                1e-3,
            );
        }
        assert_close(
            &format!("fc {margin:?}: centres"),
            &cpu.weights().unwrap(),
            &gpu.weights().unwrap(),
            1e-3,
        );
        assert_close(
            &format!("pfc {margin:?}: centres"),
            &cpu_p.weights().unwrap(),
            &gpu_p.weights().unwrap(),
            1e-3,
        );
    }
}

#[test]
fn cuda_f2c_head_steps_agree_with_cpu() {
    let Some(be) = gpu("cuda_f2c_head_steps_agree_with_cpu") else {
        return;
    };
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
        let mut gpu = F2cHead::new(be.clone(), &cfg, ids, d, 11).unwrap();
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
            let y = gpu.step(input).unwrap();
            assert_eq!(x.positive_fraction, y.positive_fraction, "{what}");
            assert_rel(&format!("{what}: ce"), x.loss.ce, y.loss.ce, 1e-4);
            assert_rel(&format!("{what}: neg"), x.loss.neg, y.loss.neg, 1e-4);
            assert_close(&format!("{what}: probe gradient"), &x.grad, &y.grad, 1e-3);
        }
        // The pools hold the same gallery features (copied, never computed: exactly).
        for (r, (f_cpu, f_gpu)) in cpu
            .pool()
            .features
            .iter()
            .zip(&gpu.pool().features)
            .enumerate()
        {
            assert_eq!(
                f_cpu,
                &be.download(f_gpu).unwrap(),
                "{margin:?}: pool row {r}"
            );
        }
    }
}

/// The dfdx operations of one training step (see `Trainer::step` in src/train/run.rs): forward of
/// the probe MLP on a traced input, `l2_normalize` (square, sum over an axis, sqrt,
/// `broadcast_like`, div), `tensor_from_vec`, `as_vec`, backward of Σ emb ⊙ g, the SGD update,
/// zeroing the gradients, the EMA of the gallery net and the tape-free `embed`.
struct StepOutcome {
    emb: Vec<f32>,
    grad_w0: Vec<f32>,
    w0: Vec<f32>,
    b4: Vec<f32>,
    gallery_w4: Vec<f32>,
    gallery_emb: Vec<f32>,
}

fn dfdx_step<D: Device<f32>>(dev: D, x: &[f32], g: &[f32]) -> StepOutcome {
    let mut probe = <Net<256, 64, D> as BuildModule<D, f32>>::build(&dev);
    let mut gallery = Gallery::new(&probe, 0.9);
    let mut opt = Sgd::new(
        &probe,
        SgdConfig {
            lr: 0.1,
            momentum: Some(Momentum::Nesterov(0.9)),
            weight_decay: Some(WeightDecay::L2(5e-4)),
        },
    );
    let b = x.len() / INPUT_DIM;
    let grads = probe.alloc_grads();
    let emb = l2_normalize(probe.forward_mut(inputs(&dev, x).traced(grads)));
    let emb_host = emb.as_vec();
    let gt = dev.tensor_from_vec(g.to_vec(), (b, Const::<64>));
    let mut grads = (emb * gt).sum().backward();
    let grad_w0 = grads.get(&probe.0.weight).as_vec();
    opt.update(&mut probe, &grads)
        .expect("every parameter has a gradient");
    probe.zero_grads(&mut grads);
    gallery.update::<D>(&probe);
    StepOutcome {
        emb: emb_host,
        grad_w0,
        w0: probe.0.weight.as_vec(),
        b4: probe.4.bias.as_vec(),
        gallery_w4: gallery.net.4.weight.as_vec(),
        gallery_emb: embed::<256, 64, D>(&gallery.net, &dev, x),
    }
}

#[test]
fn cuda_dfdx_training_step_ops_agree_with_cpu() {
    if gpu("cuda_dfdx_training_step_ops_agree_with_cpu").is_none() {
        return;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let b = 33;
    let x = normal(&mut rng, b * INPUT_DIM);
    let g = normal(&mut rng, b * 64);
    // dfdx's Cuda draws its initial weights from a host generator seeded like Cpu's: the same start.
    let cpu = dfdx_step(Cpu::seed_from_u64(9), &x, &g);
    let gpu = dfdx_step(Cuda::try_build(0, 9).expect("the GPU opened above"), &x, &g);
    assert_close("embeddings", &cpu.emb, &gpu.emb, 1e-5);
    assert_close(
        "gradient of layer 0's weight",
        &cpu.grad_w0,
        &gpu.grad_w0,
        1e-4,
    );
    assert_close("layer 0's weight after SGD", &cpu.w0, &gpu.w0, 1e-5);
    assert_close("layer 4's bias after SGD", &cpu.b4, &gpu.b4, 1e-5);
    assert_close(
        "gallery layer 4 after EMA",
        &cpu.gallery_w4,
        &gpu.gallery_w4,
        1e-5,
    );
    assert_close(
        "gallery embeddings",
        &cpu.gallery_emb,
        &gpu.gallery_emb,
        1e-5,
    );
}

/// A committed experiment shrunk to seconds ([`crate::end_to_end::tiny`]; DCQ's queue raised to
/// two steps of keys), trained for 60 steps on `device`.
fn tiny(file: &str, device: DeviceChoice) -> Experiment {
    let mut e = crate::end_to_end::tiny(file);
    if let f2c::heads::HeadConfig::Dcq(d) = &mut e.head {
        d.queue = f2c::heads::class_pool::Capacity::Count(2 * e.train.loaders.identities);
    }
    e.device = device;
    e.train.steps = 60;
    e.train.warmup_steps = 10;
    e.validate(Path::new(file)).unwrap();
    e
}

/// Also the test that every dfdx operation of the trainer works on the GPU (through
/// `run_experiment`): the probe and, for F²C, the EMA gallery net train and embed on `Cuda`, on
/// batches picked from the training set kept in GPU memory (the CPU run uploads each batch).
#[test]
fn cuda_training_run_agrees_with_cpu() {
    if gpu("cuda_training_run_agrees_with_cpu").is_none() {
        return;
    }
    for file in [
        "experiments/fc.ron",
        "experiments/pfc.ron",
        "experiments/f2c.ron",
        "experiments/dcq.ron",
    ] {
        let staged = |inputs| RunOptions {
            inputs,
            ..RunOptions::default()
        };
        let cpu = run_experiment(&tiny(file, DeviceChoice::Cpu), &staged(PerStep)).unwrap();
        let gpu = run_experiment(&tiny(file, DeviceChoice::Cuda(0)), &staged(Resident)).unwrap();
        assert!(gpu.resident_input_bytes.is_some(), "{file}");
        assert_eq!(cpu.status, RunStatus::Ok, "{file} on the cpu");
        assert_eq!(gpu.status, RunStatus::Ok, "{file} on the gpu");
        assert!(gpu.machine.contains("cuda:0"), "{}", gpu.machine);
        assert_rel(
            &format!("{file}: final loss"),
            cpu.final_loss,
            gpu.final_loss,
            1e-2,
        );
        let (a, b) = (cpu.metrics.unwrap(), gpu.metrics.unwrap());
        eprintln!("{file}: cpu {a:?}\n{file}: gpu {b:?}");
        for (name, x, y) in [
            ("tar@far=1e-2", a.tar_far_1e2, b.tar_far_1e2),
            ("tar@far=1e-3", a.tar_far_1e3, b.tar_far_1e3),
            ("accuracy", a.accuracy, b.accuracy),
            ("rank-1", a.rank1, b.rank1),
        ] {
            assert!((x - y).abs() <= 0.02, "{file}: {name}: cpu {x} vs gpu {y}");
        }
    }
}
