//! SGD settings and the learning-rate schedule: an optional linear warm-up (the authors use none),
//! then step decay at fractions of training (the authors' script: ×0.1 at epochs 8, 14 and 17 of 19,
//! script: ×0.1 at fixed fractions of training).

use serde::{Deserialize, Serialize};

use crate::data::loaders::LoaderConfig;
use crate::error::{FieldError, FieldResult};

/// Optimiser and length of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Number of optimiser steps.
    pub steps: usize,
    /// What each step draws from the identity and instance loaders.
    pub loaders: LoaderConfig,
    /// Peak learning rate (after warm-up).
    pub lr: f32,
    /// SGD momentum.
    pub momentum: f32,
    /// Nesterov momentum (the authors' setting).
    pub nesterov: bool,
    /// L2 weight decay, applied to the probe net and to FC / Partial FC centres.
    pub weight_decay: f32,
    /// Steps of linear warm-up from 0 to `lr`.
    pub warmup_steps: usize,
    /// Fractions of `steps` at which the learning rate is multiplied by `decay`.
    pub milestones: Vec<f32>,
    /// Multiplier applied at each milestone.
    pub decay: f32,
}

crate::sweepable!(TrainConfig {
    steps, lr, momentum, nesterov, weight_decay, warmup_steps, milestones, decay,
} nested { loaders });

impl TrainConfig {
    /// Range checks (field paths relative to this config) for `classes` training identities.
    pub fn validate(&self, classes: usize) -> FieldResult {
        let bad = |field: &str, msg: String| Err(FieldError::new(field, msg));
        if self.steps == 0 {
            return bad("steps", "expected at least 1".into());
        }
        if self.loaders.batch_size() == 0 {
            return bad(
                "loaders",
                "identities and instances are both 0: a step would see no sample".into(),
            );
        }
        if self.loaders.identities > classes {
            return bad(
                "loaders.identities",
                format!(
                    "more identities per step ({}) than training identities ({classes})",
                    self.loaders.identities
                ),
            );
        }
        if !(self.lr > 0.0 && self.lr <= 10.0) {
            return bad("lr", format!("expected 0 < lr ≤ 10, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(
                "momentum",
                format!("expected 0.0 ..< 1.0, got {}", self.momentum),
            );
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay < 1.0) {
            return bad(
                "weight_decay",
                format!("expected 0.0 ..< 1.0, got {}", self.weight_decay),
            );
        }
        if self.warmup_steps > self.steps {
            return bad(
                "warmup_steps",
                format!(
                    "longer than training ({} > {} steps)",
                    self.warmup_steps, self.steps
                ),
            );
        }
        if let Some(m) = self.milestones.iter().find(|m| !(**m > 0.0 && **m < 1.0)) {
            return bad(
                "milestones",
                format!("milestones are fractions of training in (0, 1), got {m}"),
            );
        }
        if self.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return bad("milestones", "milestones must increase".into());
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return bad(
                "decay",
                format!("expected 0 < decay ≤ 1, got {}", self.decay),
            );
        }
        Ok(())
    }

    /// Learning rate at `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f32 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f32 / self.warmup_steps as f32;
        }
        let done = step as f32 / self.steps as f32;
        let passed = self.milestones.iter().filter(|&&m| done >= m).count();
        self.lr * self.decay.powi(passed as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_step_decay() {
        let t = TrainConfig {
            steps: 100,
            loaders: LoaderConfig {
                identities: 0,
                instances: 8,
            },
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            warmup_steps: 10,
            milestones: vec![0.5, 0.8],
            decay: 0.1,
        };
        assert!((t.lr_at(0) - 0.01).abs() < 1e-7);
        assert!((t.lr_at(9) - 0.1).abs() < 1e-7);
        assert!((t.lr_at(49) - 0.1).abs() < 1e-7);
        assert!((t.lr_at(50) - 0.01).abs() < 1e-7);
        assert!((t.lr_at(80) - 0.001).abs() < 1e-8);
    }
}
