//! F²C's head: the EMA gallery features written into the dynamic class pool, and the positive and
//! negative losses of the probe features against the pool (tiandunx/FFC `ffc_ddp.py`).

use serde::{Deserialize, Serialize};

use super::class_pool::PoolConfig;
use super::margin::Margin;

/// How many of the largest pool cosines the negative loss averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopK {
    /// The reference rule k = min(max(⌊0.0002·Q⌋, 3), 10).
    Auto,
    /// A fixed k ≥ 1 (capped at Q).
    Fixed(usize),
}

impl TopK {
    /// k for a pool of `q` slots.
    pub fn k(&self, q: usize) -> usize {
        let k = match *self {
            TopK::Auto => ((0.0002 * q as f64).floor() as usize).clamp(3, 10),
            TopK::Fixed(k) => k,
        };
        k.min(q).max(1)
    }
}

/// Which pool rows the losses are evaluated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolEval {
    /// The reference: once against row 0 of every slot and once against the mix that uses row 1
    /// for slots refreshed (and already resident) in this batch; the two losses are summed.
    TwoRow,
    /// Only against the newest feature of each slot.
    Newest,
}

/// Settings of the F²C method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct F2cConfig {
    /// Margin of the positive loss (reference script: CosFace(0.5)).
    pub margin: Margin,
    /// Logit scale s of the positive loss (reference: 32).
    pub scale: f32,
    /// The dynamic class pool.
    pub pool: PoolConfig,
    /// EMA momentum m of the gallery net: g ← m·g + (1−m)·p. 0 = gallery equals probe, 1 = frozen.
    pub ema_momentum: f32,
    /// k of the negative loss.
    pub top_k: TopK,
    /// Which pool rows the losses use (reference: `TwoRow`).
    pub pool_eval: PoolEval,
    /// Run the step in both directions (half A probe / half B gallery, then the reverse), rolling
    /// back the first direction's pool update, as the reference does.
    pub symmetric: bool,
}
