//! Experiment configuration: RON files in `experiments/`, parsed strictly (unknown fields are
//! errors) and range-checked before anything runs.

pub mod experiment;
