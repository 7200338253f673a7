//! SGD settings and the learning-rate schedule (linear warm-up, then step decay as in the authors'
//! script: ×0.1 at fixed fractions of training).

use serde::{Deserialize, Serialize};

use crate::data::loaders::LoaderConfig;

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

impl TrainConfig {
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
