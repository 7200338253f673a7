//! The integration tests, one binary with a module per area (each module links the library once
//! between them all): matrices and their runner, snapshots of expansions and of a tiny matrix's
//! metrics, the centre heads, checkpoints and resumed runs, the GPU backend's agreement with the
//! CPU (on a GPU, skipped without one, and with its kernels emulated on the CPU), end-to-end
//! training, experiment files, the F²C head against the reference, `paper/` against `results/`,
//! and the report's tables.

mod ablation_matrix;
mod ablation_snapshots;
mod backend_agreement;
mod centre_heads;
mod checkpoint_resume;
mod cuda_agreement;
mod end_to_end;
mod experiment_files;
mod f2c_head;
mod image_data;
mod kernel_emulation;
mod paper_matches_results;
mod report_tables;
