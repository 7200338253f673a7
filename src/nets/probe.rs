//! The probe network: an MLP backbone over the synthetic input producing L2-normalised embeddings.
//! dfdx's `Linear` sizes are compile-time constants, so the architecture is one of a few
//! monomorphised choices.

use serde::{Deserialize, Serialize};

/// The backbone architecture (hidden width × embedding dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backbone {
    /// 64 → 256 → 256 → 64.
    Mlp256x64,
    /// 64 → 512 → 512 → 128.
    Mlp512x128,
}

impl Backbone {
    /// Embedding dimension D.
    pub fn embedding_dim(&self) -> usize {
        match self {
            Backbone::Mlp256x64 => 64,
            Backbone::Mlp512x128 => 128,
        }
    }
}
