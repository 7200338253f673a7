//! Networks: the probe net (trained by gradient descent; an MLP, or a CNN for real faces), the EMA gallery net (F²C), and their parameters as host arrays.

pub mod cnn;
pub mod gallery;
pub mod network;
pub mod params;
pub mod probe;
