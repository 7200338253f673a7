//! Held-out identities: open-set evaluation needs people never seen in training, so a data set is
//! split by identity, never by image.

use std::sync::Arc;

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

use crate::data::images::{Channels, FaceImages};
use crate::error::{Error, Result};

/// Identity indices of the two parts, each sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySplit {
    pub train: Vec<usize>,
    pub held_out: Vec<usize>,
}

/// Holds out `held_out` of `num_identities` identities, chosen by `seed`; the same seed gives
/// the same split.
pub fn split_identities(
    num_identities: usize,
    held_out: usize,
    seed: u64,
) -> Result<IdentitySplit> {
    if held_out >= num_identities {
        return Err(Error::Other(format!(
            "cannot hold out {held_out} of {num_identities} identities: at least one must remain for training"
        )));
    }
    let mut order: Vec<usize> = (0..num_identities).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut held = order[..held_out].to_vec();
    let mut train = order[held_out..].to_vec();
    held.sort_unstable();
    train.sort_unstable();
    Ok(IdentitySplit {
        train,
        held_out: held,
    })
}

/// Some identities of a data set, renumbered 0..n in the order given.
#[derive(Clone)]
pub struct IdentitySubset {
    inner: Arc<dyn FaceImages>,
    ids: Vec<usize>,
}

impl IdentitySubset {
    /// The identities `ids` of `inner`.
    pub fn new(inner: Arc<dyn FaceImages>, ids: Vec<usize>) -> Self {
        assert!(ids.iter().all(|&i| i < inner.num_identities()));
        IdentitySubset { inner, ids }
    }

    /// The index in the whole data set of identity `i` of the subset.
    pub fn original(&self, i: usize) -> usize {
        self.ids[i]
    }
}

impl FaceImages for IdentitySubset {
    fn num_identities(&self) -> usize {
        self.ids.len()
    }

    fn num_instances(&self, identity: usize) -> usize {
        self.inner.num_instances(self.ids[identity])
    }

    fn identity_name(&self, identity: usize) -> &str {
        self.inner.identity_name(self.ids[identity])
    }

    fn channels(&self) -> Channels {
        self.inner.channels()
    }

    fn load(&self, identity: usize, instance: usize, flip: bool, out: &mut [f32]) -> Result<()> {
        self.inner.load(self.ids[identity], instance, flip, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_identity_deterministically() {
        let s = split_identities(40, 10, 7).unwrap();
        assert_eq!((s.train.len(), s.held_out.len()), (30, 10));
        let mut all: Vec<usize> = s.train.iter().chain(&s.held_out).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..40).collect::<Vec<_>>());
        assert_eq!(s, split_identities(40, 10, 7).unwrap());
        assert_ne!(s, split_identities(40, 10, 8).unwrap());
        assert!(split_identities(5, 5, 0).is_err());
    }
}
