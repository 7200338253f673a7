//! Classification heads over L2-normalised embeddings: full FC, Partial FC and F²C's dynamic class
//! pool. Each head takes the probe embeddings of a step and returns the loss and its gradient with
//! respect to those embeddings; the training step back-propagates that gradient into the probe net.

pub mod backend;
#[cfg(feature = "cuda")]
pub mod backend_cuda;
pub mod class_pool;
pub mod f2c;
pub mod full_fc;
pub mod margin;
pub mod partial_fc;
pub mod pfc_sampler;
pub mod pool_loss;

use serde::{Deserialize, Serialize};

pub use margin::Margin;

/// Which head an experiment trains, with that head's own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum HeadConfig {
    /// Full fully-connected margin softmax over all N training identities.
    Fc {
        /// Margin on the target cosine.
        margin: Margin,
        /// Logit scale s.
        scale: f32,
    },
    /// Partial FC (An et al.): all positive centres of the batch plus uniform negatives, r·N in all.
    PartialFc {
        /// Margin on the target cosine.
        margin: Margin,
        /// Logit scale s.
        scale: f32,
        /// Fraction r of the N centres used per step, in (0, 1].
        sample_rate: f32,
    },
    /// F²C: EMA gallery net + dynamic class pool + positive/negative losses.
    F2c(f2c::F2cConfig),
}

impl HeadConfig {
    /// Short method name used in summaries: `fc`, `pfc` or `f2c`.
    pub fn method(&self) -> &'static str {
        match self {
            HeadConfig::Fc { .. } => "fc",
            HeadConfig::PartialFc { .. } => "pfc",
            HeadConfig::F2c(_) => "f2c",
        }
    }
}
