//! Open-set evaluation on held-out identities: verification (ROC, TAR at fixed FAR, 10-fold
//! best-threshold accuracy) and rank-1 identification. Metric code is plain functions over
//! embeddings and scores, apart from the training loop.

pub mod identification;
pub mod protocol;
pub mod verification;

use serde::{Deserialize, Serialize};

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Number of genuine (same-identity) pairs; the same number of impostor pairs is drawn.
    pub pairs: usize,
    /// Folds of the best-threshold accuracy (LFW protocol: 10).
    pub folds: usize,
}

crate::sweepable!(EvalConfig { pairs, folds } nested {});

impl EvalConfig {
    /// Range checks (field paths relative to this config).
    pub fn validate(&self) -> crate::error::FieldResult {
        use crate::error::FieldError;
        if self.pairs == 0 {
            return Err(FieldError::new("pairs", "expected at least 1"));
        }
        if self.folds < 2 || self.folds > self.pairs {
            return Err(FieldError::new(
                "folds",
                format!("expected 2 ..= pairs ({}), got {}", self.pairs, self.folds),
            ));
        }
        Ok(())
    }
}

/// The open-set metrics of one trained model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// True-accept rate at false-accept rate 1e-2.
    pub tar_far_1e2: f64,
    /// True-accept rate at false-accept rate 1e-3.
    pub tar_far_1e3: f64,
    /// True-accept rate at false-accept rate 1e-4.
    pub tar_far_1e4: f64,
    /// Mean best-threshold verification accuracy over the folds.
    pub accuracy: f64,
    /// Standard deviation of that accuracy over the folds.
    pub accuracy_std: f64,
    /// Rank-1 identification rate (first instance of each identity as gallery, the rest as probes).
    pub rank1: f64,
}
