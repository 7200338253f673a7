//! Classification heads over L2-normalised embeddings: full FC, Partial FC and F²C's dynamic class
//! pool. Each head takes the probe embeddings of a step and returns the loss and its gradient with
//! respect to those embeddings; the training step back-propagates that gradient into the probe net.

pub mod backend;
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

/// The training method a head implements: the typed key of summaries, bench rows and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "fc")]
    Fc,
    #[serde(rename = "pfc")]
    PartialFc,
    #[serde(rename = "f2c")]
    F2c,
    #[serde(rename = "dcq")]
    Dcq,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 4] = [Method::Fc, Method::PartialFc, Method::F2c, Method::Dcq];

    /// Short name used in run ids, file names and CSV cells: `fc`, `pfc`, `f2c`, `dcq`.
    pub fn key(self) -> &'static str {
        match self {
            Method::Fc => "fc",
            Method::PartialFc => "pfc",
            Method::F2c => "f2c",
            Method::Dcq => "dcq",
        }
    }

    /// Readable name for tables and figures.
    pub fn label(self) -> &'static str {
        match self {
            Method::Fc => "Full FC",
            Method::PartialFc => "Partial FC",
            Method::F2c => "F²C",
            Method::Dcq => "DCQ",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.key() == s)
            .ok_or_else(|| format!("unknown method `{s}`: expected one of fc, pfc, f2c, dcq"))
    }
}

impl HeadConfig {
    /// The method this head trains.
    pub fn method(&self) -> Method {
        match self {
            HeadConfig::Fc { .. } => Method::Fc,
            HeadConfig::PartialFc { .. } => Method::PartialFc,
            HeadConfig::F2c(_) => Method::F2c,
        }
    }
}
