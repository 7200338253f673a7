//! The CUDA backend's kernels, run on the CPU by [`KernelEmulator`] (the CUDA C of `kernels.cu`
//! compiled as C++ and run in CUDA's block model), against `CpuBackend`: the checks the GPU runs in
//! `cuda_agreement`, with the same tolerances. Needs a C++ compiler (`c++`, or the one in CXX).

use f2c::heads::backend::{Backend, KernelEmulator};

use crate::backend_agreement as agreement;

fn emulator() -> KernelEmulator {
    let be = KernelEmulator::new().expect("the kernel emulator builds and starts");
    eprintln!("running on {}", be.name());
    be
}

#[test]
fn emulated_kernels_matmuls_agree_with_cpu() {
    agreement::matmuls_agree(&emulator());
}

#[test]
fn emulated_kernels_buffers_normalisation_sgd_and_row_copies_agree_with_cpu() {
    agreement::buffers_normalisation_sgd_and_row_copies_agree(&emulator());
}

#[test]
fn emulated_kernels_margin_loss_agrees_with_cpu() {
    agreement::margin_loss_agrees(&emulator());
}

#[test]
fn emulated_kernels_fc_and_partial_fc_steps_agree_with_cpu() {
    agreement::fc_and_partial_fc_steps_agree(&emulator());
}

#[test]
fn emulated_kernels_f2c_head_steps_agree_with_cpu() {
    agreement::f2c_head_steps_agree(&emulator());
}

#[test]
fn emulated_kernels_dcq_head_steps_agree_with_cpu() {
    agreement::dcq_head_steps_agree(&emulator());
}
