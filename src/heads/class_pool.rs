//! The Dynamic Class Pool (DCP) of F²C: Q slots of gallery features, an identity → slot map with
//! LRU (reference) or FIFO eviction, and two rows per slot written alternately (reference) or one.
//! It owns no trainable parameter; its memory is Q·rows·D floats and nothing grows with N.

use serde::{Deserialize, Serialize};

/// Pool capacity Q: an absolute slot count or a fraction of the training identities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Capacity {
    /// Q slots.
    Count(usize),
    /// Q = round(fraction · N), at least 1.
    Fraction(f64),
}

impl Capacity {
    /// The slot count for `num_identities` training identities.
    pub fn slots(&self, num_identities: usize) -> usize {
        match *self {
            Capacity::Count(q) => q,
            Capacity::Fraction(f) => ((f * num_identities as f64).round() as usize).max(1),
        }
    }
}

/// How many gallery features each slot keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rows {
    /// One row per slot, overwritten on every write.
    One,
    /// Two rows per slot written alternately (the reference: each identity keeps its two newest features).
    Two,
}

/// Which resident identity gives up its slot when a new identity arrives and the pool is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Eviction {
    /// Least recently written (the reference).
    Lru,
    /// Oldest inserted, regardless of later writes (DCQ-style queue).
    Fifo,
}

/// Settings of the dynamic class pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Number of slots Q.
    pub capacity: Capacity,
    /// Rows per slot (reference: `Two`).
    pub rows: Rows,
    /// Eviction policy (reference: `Lru`).
    pub eviction: Eviction,
}
