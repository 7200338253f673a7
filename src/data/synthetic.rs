//! The embedded synthetic identity benchmark. Every identity has a latent identity code; every
//! instance passes that code together with shared nuisance factors (pose/illumination-like
//! variation common to all identities) through a fixed random non-linear "renderer", plus noise.
//! All of it is a pure function of (seed, identity, instance), so a million identities cost
//! nothing until they are used.

use serde::{Deserialize, Serialize};

/// Width of a rendered sample: the probe net's input size.
pub const INPUT_DIM: usize = 64;

/// Settings of the synthetic benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Number of training identities N (the classes of the FC head).
    pub train_identities: usize,
    /// Number of held-out identities used only for open-set evaluation (disjoint from training).
    pub eval_identities: usize,
    /// Fewest instances of a training identity (≥ 2).
    pub min_instances: usize,
    /// Most instances of a training identity.
    pub max_instances: usize,
    /// Long-tail exponent: instance counts follow a Zipf-like law with this exponent (0 = uniform).
    pub tail_exponent: f64,
    /// Instances rendered per evaluation identity (≥ 2).
    pub eval_instances: usize,
    /// Dimension of the latent identity code.
    pub identity_dim: usize,
    /// Dimension of the shared nuisance factors.
    pub nuisance_dim: usize,
    /// Scale of the nuisance factors relative to the identity code.
    pub nuisance_scale: f32,
    /// Standard deviation of the per-pixel noise added after rendering.
    pub noise: f32,
    /// Fraction of training instances whose label is replaced by a random other identity.
    pub label_noise: f64,
}
