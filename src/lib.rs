//! f2c — a reproduction suite for F²C ("Faster Face Classification", Wang et al., CVPR 2022).
//!
//! Data flows one way, and the modules follow it:
//! experiment config ([`config`]) → synthetic identities and loaders ([`data`]) → probe and EMA
//! gallery networks ([`nets`]) → classification heads: full FC, Partial FC, dynamic class pool
//! ([`heads`]) → the training step ([`train`]) → open-set evaluation ([`eval`]) → result records
//! ([`results`]) → the ablation runner ([`ablation`]) → statistics, tables and figures ([`report`]).
//! [`bench`] times the heads in isolation, reusing them.

pub mod ablation;
pub mod bench;
pub mod binary;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod heads;
pub mod nets;
pub mod numbers;
pub mod report;
pub mod results;
pub mod traffic;
pub mod train;

pub use config::experiment::Experiment;
pub use error::{Error, Result};
