//! Open-set evaluation on held-out identities: verification (ROC, TAR at fixed FAR, 10-fold
//! best-threshold accuracy) and rank-1 identification. Metric code is plain functions over
//! embeddings and scores, apart from the training loop.
//!
//! Modules depend one way: [`layout`] (the held-out rows) ← [`verification`], [`identification`]
//! ← [`protocol`] (the one call the trainer makes).

pub mod identification;
pub mod layout;
pub mod pair_list;
pub mod protocol;
pub mod verification;

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, FieldResult};

/// Default cap on the impostor pairs scored: above every held-out set this project renders
/// (3,000 rows give 4.5 million pairs), so they are all scored exactly.
pub const DEFAULT_IMPOSTOR_CAP: u64 = 20_000_000;

/// The smallest cap accepted: 10⁶ impostor pairs put 100 accepted impostors under TAR@FAR=1e-4.
pub const MIN_IMPOSTOR_CAP: u64 = layout::IMPOSTORS_FOR_1E4;

/// Which impostor pairs the TARs are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImpostorPairs {
    /// Every pair of held-out rows of different identities.
    All,
    /// Every pair when there are at most this many, else a seeded sample of exactly this many
    /// distinct pairs (without replacement).
    AtMost(u64),
}

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Impostor pairs scored for TAR@FAR; every genuine pair is always scored.
    pub impostors: ImpostorPairs,
    /// Folds of the best-threshold accuracy (LFW protocol: 10).
    pub folds: usize,
    /// Which identities a run is scored on: the held-out test identities (default), or the
    /// validation identities of the training population (`data.validation_identities`), for
    /// choosing hyperparameters without looking at the test identities.
    #[serde(default, skip_serializing_if = "EvalSplit::is_test")]
    pub split: EvalSplit,
}

/// The identities a model is scored on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EvalSplit {
    /// The held-out test identities, never seen in training or tuning.
    #[default]
    Test,
    /// The validation identities held out of the training population.
    Validation,
}

impl EvalSplit {
    fn is_test(&self) -> bool {
        *self == EvalSplit::Test
    }
}

crate::sweepable!(EvalConfig { impostors, folds, split } nested {});

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            impostors: ImpostorPairs::AtMost(DEFAULT_IMPOSTOR_CAP), // all pairs of any set we render
            folds: 10,                                              // the LFW protocol
            split: EvalSplit::Test,
        }
    }
}

impl EvalConfig {
    /// Checks the values on their own; field names are relative to this config (`folds`,
    /// `impostors`). Whether the held-out set has at least `folds` genuine pairs depends on the
    /// data config: see [`layout::genuine_pair_count`].
    pub fn validate(&self) -> FieldResult {
        if self.folds < 2 {
            return Err(FieldError::new(
                "folds",
                format!(
                    "expected at least 2 folds (the LFW protocol uses 10), got {}",
                    self.folds
                ),
            ));
        }
        if let ImpostorPairs::AtMost(n) = self.impostors {
            if n < MIN_IMPOSTOR_CAP {
                return Err(FieldError::new(
                    "impostors",
                    format!(
                        "AtMost({n}) would let TAR@FAR=1e-4 rest on fewer than 100 impostor pairs; \
                         expected AtMost(n) with n ≥ {MIN_IMPOSTOR_CAP}, or All"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The open-set metrics of one trained model.
///
/// The pair counts say what each rate rests on; they are 0 in records written before they were
/// recorded (the evaluation then drew a fixed number of pairs with replacement).
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
    /// Genuine pairs the TARs rest on (every one of the held-out set).
    #[serde(default)]
    pub genuine_pairs: u64,
    /// Impostor pairs the thresholds rest on (all, or the seeded sample).
    #[serde(default)]
    pub impostor_pairs: u64,
    /// Impostor pairs strictly above the TAR@FAR=1e-4 threshold (⌊1e-4 · impostor_pairs⌋ unless
    /// impostors tie at the threshold).
    #[serde(default)]
    pub impostors_above_far_1e4: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_field() {
        assert_eq!(EvalConfig::default().validate(), Ok(()));
        let all = EvalConfig {
            impostors: ImpostorPairs::All,
            folds: 2,
            split: EvalSplit::Test,
        };
        assert_eq!(all.validate(), Ok(()));
        let one_fold = EvalConfig { folds: 1, ..all };
        assert_eq!(one_fold.validate().unwrap_err().field, "folds");
        let small = EvalConfig {
            impostors: ImpostorPairs::AtMost(999_999),
            folds: 10,
            split: EvalSplit::Test,
        };
        assert_eq!(small.validate().unwrap_err().field, "impostors");
    }

    #[test]
    fn ron_syntax_and_old_records() {
        let cfg: EvalConfig = ron::from_str("EvalConfig(impostors: AtMost(20000000), folds: 10)")
            .expect("new syntax parses");
        assert_eq!(cfg, EvalConfig::default());
        let all: EvalConfig = ron::from_str("(impostors: All, folds: 10)").unwrap();
        assert_eq!(all.impostors, ImpostorPairs::All);
        assert!(ron::from_str::<EvalConfig>("(pairs: 50000, folds: 10)").is_err());
        // A record written before the pair counts existed still reads, with counts 0.
        let old = r#"{"tar_far_1e2":0.9,"tar_far_1e3":0.8,"tar_far_1e4":0.7,"accuracy":0.95,
                      "accuracy_std":0.01,"rank1":0.5}"#;
        let m: Metrics = serde_json::from_str(old).unwrap();
        assert_eq!(
            (m.tar_far_1e3, m.genuine_pairs, m.impostor_pairs),
            (0.8, 0, 0)
        );
    }
}
