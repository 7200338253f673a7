//! Data: the embedded synthetic identity benchmark and the identity/instance loaders that feed
//! the training step; real face images from disk ([`images`]); [`TrainingData`], either kind
//! behind one interface; and the training set kept on the device ([`resident`]).

pub mod images;
pub mod loaders;
pub mod resident;
pub mod source;
pub mod synthetic;

pub use source::TrainingData;
