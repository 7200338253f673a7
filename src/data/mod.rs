//! Data: the embedded synthetic identity benchmark and the identity/instance loaders that feed
//! the training step; real face images from disk ([`images`]).

pub mod images;
pub mod loaders;
pub mod synthetic;
