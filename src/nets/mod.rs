//! Networks: the probe net (trained by gradient descent; an MLP, or a CNN for real faces) and the EMA gallery net (F²C).

pub mod cnn;
pub mod gallery;
pub mod probe;
