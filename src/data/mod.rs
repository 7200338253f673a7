//! Data: the embedded synthetic identity benchmark and the identity/instance loaders that feed
//! the training step.

pub mod loaders;
pub mod synthetic;
