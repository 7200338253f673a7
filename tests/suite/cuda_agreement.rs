//! CPU/GPU agreement (feature `cuda`): every [`Backend`] operation, the FC, Partial FC, F²C and DCQ head
//! steps, the dfdx operations of the training step, and a short training run give the same numbers
//! on `CpuBackend`/`Cpu` and `CudaBackend`/`Cuda` from the same inputs and seeds.
//!
//! Each test needs an NVIDIA GPU with its driver; without one (no driver, or only the link stub
//! that the CUDA build recipe uses) it prints why it is skipping and passes, unless
//! `F2C_REQUIRE_GPU` is set.
//!
//! The backend and head checks are `backend_agreement`'s, with their tolerances. A training run
//! feeds those differences back through hundreds of SGD steps and an evaluation with thresholds, so
//! its checks are on outcomes: final loss within 1% relative and each metric within 0.02 absolute
//! (about 4 of the 200 rank-1 probes), where an implementation error moves them by far more.

#![cfg(feature = "cuda")]

use std::path::Path;

use dfdx::optim::{Momentum, Sgd, SgdConfig, WeightDecay};
use dfdx::prelude::*;
use rand::SeedableRng;

use f2c::data::resident::InputStaging::{PerStep, Resident};
use f2c::data::synthetic::INPUT_DIM;
use f2c::device::DeviceChoice;
use f2c::heads::backend::{Backend, CudaBackend};
use f2c::nets::gallery::Gallery;
use f2c::nets::probe::{embed, inputs, l2_normalize, Net};
use f2c::results::RunStatus;
use f2c::train::run::{run_experiment, RunOptions};
use f2c::Experiment;

use crate::backend_agreement::{self as agreement, assert_close, assert_rel, normal};

/// The GPU backend, or `None` after printing why the test is skipped. With `F2C_REQUIRE_GPU` set
/// (as `gpu-check.sh` sets it on a GPU machine) a GPU that cannot be opened fails the test instead:
/// there, a skip would pass for agreement.
fn gpu(test: &str) -> Option<CudaBackend> {
    match CudaBackend::new(0) {
        Ok(be) => {
            eprintln!("{test}: running on {}", be.name());
            Some(be)
        }
        Err(e) if std::env::var_os("F2C_REQUIRE_GPU").is_some_and(|v| !v.is_empty()) => {
            panic!("{test}: F2C_REQUIRE_GPU is set, but the GPU cannot be used: {e}")
        }
        Err(e) => {
            eprintln!("{test}: SKIPPED, no usable GPU: {e}");
            None
        }
    }
}

#[test]
fn cuda_matmuls_agree_with_cpu() {
    if let Some(be) = gpu("cuda_matmuls_agree_with_cpu") {
        agreement::matmuls_agree(&be);
    }
}

#[test]
fn cuda_buffers_normalisation_sgd_and_row_copies_agree_with_cpu() {
    if let Some(be) = gpu("cuda_buffers_normalisation_sgd_and_row_copies_agree_with_cpu") {
        agreement::buffers_normalisation_sgd_and_row_copies_agree(&be);
    }
}

#[test]
fn cuda_margin_loss_agrees_with_cpu() {
    if let Some(be) = gpu("cuda_margin_loss_agrees_with_cpu") {
        agreement::margin_loss_agrees(&be);
    }
}

#[test]
fn cuda_fc_and_partial_fc_steps_agree_with_cpu() {
    if let Some(be) = gpu("cuda_fc_and_partial_fc_steps_agree_with_cpu") {
        agreement::fc_and_partial_fc_steps_agree(&be);
    }
}

#[test]
fn cuda_f2c_head_steps_agree_with_cpu() {
    if let Some(be) = gpu("cuda_f2c_head_steps_agree_with_cpu") {
        agreement::f2c_head_steps_agree(&be);
    }
}

#[test]
fn cuda_dcq_head_steps_agree_with_cpu() {
    if let Some(be) = gpu("cuda_dcq_head_steps_agree_with_cpu") {
        agreement::dcq_head_steps_agree(&be);
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

/// A committed experiment shrunk to seconds ([`crate::end_to_end::tiny`]), trained for 60 steps on
/// `device`.
fn tiny(file: &str, device: DeviceChoice) -> Experiment {
    let mut e = crate::end_to_end::tiny(file);
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
