//! Training: optimiser settings and learning-rate schedule, the training step of each method, and
//! the run that trains, evaluates and records one experiment, and its learning curve.

pub mod checkpoint;
pub mod curve;
pub mod feed;
pub mod run;
pub mod schedule;
pub mod sgd;
pub mod step;

pub use step::{with_trainer, StepReport, Trainer, TrainerState, TrainerTask};
