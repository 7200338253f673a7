//! F²C's Dual Loaders: an identity-based loader (each item one identity and two of its instances;
//! every training identity visited once per pass, in shuffled order) and the ordinary
//! instance-based loader (each instance once per pass, shuffled). A step takes `identities` items
//! from the first and `instances` from the second.

use serde::{Deserialize, Serialize};

/// How many items each loader contributes to one training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Identities per step from the identity loader (each brings 2 instances); 0 = instance-only.
    pub identities: usize,
    /// Instances per step from the instance loader; 0 = identity-only. Must be even for F²C.
    pub instances: usize,
}

impl LoaderConfig {
    /// Samples per step: two per identity item plus the instances.
    pub fn batch_size(&self) -> usize {
        2 * self.identities + self.instances
    }
}
