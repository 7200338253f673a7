//! Ablation matrices: expansion of `ablations/*.ron` into runs, the resumable runner, and the
//! per-matrix summary.

pub mod matrix;
pub mod runner;
pub mod summary;
