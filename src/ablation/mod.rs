//! Ablation matrices: expansion of `ablations/*.ron` into runs, the resumable runner, the
//! per-matrix summary and its reference points (raw features, untrained network).

pub mod matrix;
pub mod references;
pub mod runner;
pub mod summary;
pub mod verify;
