//! Networks: the probe net (trained by gradient descent) and the EMA gallery net (F²C).

pub mod gallery;
pub mod probe;
