//! The Dynamic Class Pool (DCP) of F²C: Q slots of gallery features, an identity → slot map with
//! LRU (reference) or FIFO eviction, and two rows per slot written alternately (reference) or one.
//! It owns no trainable parameter; its memory is Q·rows·D floats and nothing grows with N.

use std::collections::HashMap;

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

    /// The capacity as a fraction of `num_identities`: as written for `Fraction`, Q/N for `Count`.
    pub fn fraction_of(&self, num_identities: usize) -> f64 {
        match *self {
            Capacity::Fraction(f) => f,
            Capacity::Count(q) => q as f64 / num_identities as f64,
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

crate::sweepable!(PoolConfig { capacity, rows, eviction } nested {});

impl PoolConfig {
    /// The identity → slot map of a pool with these settings over `num_identities` training identities.
    ///
    /// # Panics
    /// If the capacity resolves to 0 slots (`Capacity::Count(0)`); experiment validation rejects that first.
    pub fn slot_map(&self, num_identities: usize) -> SlotMap {
        SlotMap::new(
            self.capacity.slots(num_identities),
            self.rows,
            self.eviction,
        )
    }
}

/// Marks "no slot" in the recency list links.
const NIL: usize = usize::MAX;

/// Where one gallery feature goes, as decided by [`SlotMap::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotWrite {
    /// The slot (column of the `(rows, Q, D)` buffer) that now belongs to the identity.
    pub slot: usize,
    /// The row of that slot to overwrite: 0 on arrival, then alternating 1, 0, 1, … (`Rows::Two`); always 0 (`Rows::One`).
    pub row: usize,
    /// Whether the identity was already resident before this write (the reference adds such slots to
    /// `ones_idx`, whose second loss term reads row 1).
    pub was_resident: bool,
    /// The identity that gave up the slot, when the pool was full and the identity new.
    pub evicted: Option<usize>,
}

/// The identity → slot bookkeeping of the dynamic class pool, reproducing tiandunx/FFC `ffc_ddp.py`
/// (`forward_impl`: LRU `get` plus `queue_position_dict`) and `lru_python_impl.py` (`try_get`,
/// `view`, `rollback_steps`).
///
/// Slots are handed out 0, 1, 2, … until all Q are used; after that a new identity takes the slot of
/// the identity at the old end of a recency list. Under `Eviction::Lru` every write moves the written
/// identity to the new end; under `Eviction::Fifo` only arrival does. The list is doubly linked
/// through per-slot index arrays (a slot holds exactly one identity, so slots are the nodes), which
/// makes every write O(1) and the memory O(Q) whatever the number of identities.
///
/// A write can be made tentative: [`begin_trial`](Self::begin_trial), writes, then
/// [`rollback`](Self::rollback) (the reference's first direction of each step) or
/// [`commit`](Self::commit). Equality compares the whole state, so a rolled-back map equals a clone
/// taken before the trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    rows: Rows,
    eviction: Eviction,
    /// Resident identity → its slot.
    slot_of: HashMap<usize, usize>,
    /// Slot → its identity, for the slots handed out so far (the reference's `cur_idx` is its length).
    identity_of: Vec<usize>,
    /// Per slot, the row its next write of a resident identity uses (`queue_position_dict`, starts at 0).
    next_row: Vec<u8>,
    /// Per slot, the neighbour towards the new end of the recency list (NIL at the new end or unlinked).
    newer: Vec<usize>,
    /// Per slot, the neighbour towards the old end (NIL at the old end or unlinked).
    older: Vec<usize>,
    /// The most recently written (Lru) / inserted (Fifo) slot, NIL when empty.
    newest: usize,
    /// The slot evicted next, NIL when empty.
    oldest: usize,
    /// Whether writes are being logged for a rollback.
    in_trial: bool,
    /// One entry per write since `begin_trial`, undone last-first.
    undo_log: Vec<Undo>,
}

/// A [`SlotMap`]'s state between steps as plain arrays (a checkpoint's part of F²C's pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMapState {
    /// Slot → its identity, for the slots handed out so far.
    pub identity_of: Vec<usize>,
    /// Per slot (all Q), the row its next write of a resident identity uses.
    pub next_row: Vec<u8>,
    /// The handed-out slots from the most recently written (Lru) / inserted (Fifo) to the one
    /// evicted next.
    pub recency: Vec<usize>,
}

/// A slot's neighbours in the recency list before a move, so that the move can be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    newer: usize,
    older: usize,
}

/// What one write changed, enough to undo it (the reference's `Op` records `Add`, `Overflow`, `Get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// A never-used slot was handed out; it is the last of `identity_of` and sits at the new end.
    Took { slot: usize, next_row: u8 },
    /// `identity` was evicted from `slot`, which was at `place`.
    Evicted {
        slot: usize,
        identity: usize,
        next_row: u8,
        place: Place,
    },
    /// A resident identity was written again; `place` is `None` when the write did not move it (Fifo).
    Refreshed {
        slot: usize,
        next_row: u8,
        place: Option<Place>,
    },
}

impl SlotMap {
    /// An empty pool of `capacity` slots.
    ///
    /// # Panics
    /// If `capacity` is 0: a pool without slots cannot hold any identity.
    pub fn new(capacity: usize, rows: Rows, eviction: Eviction) -> Self {
        assert!(
            capacity >= 1,
            "class pool: capacity must be at least 1 slot, got 0; raise `capacity`"
        );
        SlotMap {
            rows,
            eviction,
            slot_of: HashMap::with_capacity(capacity),
            identity_of: Vec::with_capacity(capacity),
            next_row: vec![0; capacity],
            newer: vec![NIL; capacity],
            older: vec![NIL; capacity],
            newest: NIL,
            oldest: NIL,
            in_trial: false,
            undo_log: Vec::new(),
        }
    }

    /// Number of slots Q.
    pub fn capacity(&self) -> usize {
        self.next_row.len()
    }

    /// Number of resident identities (at most Q; equal to Q once every slot has been handed out).
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    /// Whether no identity is resident.
    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Rows per slot.
    pub fn rows(&self) -> Rows {
        self.rows
    }

    /// Eviction policy.
    pub fn eviction(&self) -> Eviction {
        self.eviction
    }

    /// The slot of a resident identity, without touching recency (the reference's `LRU.view`, used for
    /// the probe targets).
    pub fn slot_of(&self, identity: usize) -> Option<usize> {
        self.slot_of.get(&identity).copied()
    }

    /// The identity resident in `slot`, if the slot has been handed out.
    pub fn identity_at(&self, slot: usize) -> Option<usize> {
        self.identity_of.get(slot).copied()
    }

    /// Whether writes are currently logged for a rollback.
    pub fn in_trial(&self) -> bool {
        self.in_trial
    }

    /// Resident `(identity, slot)` pairs from the most recently written (Lru) / inserted (Fifo) to
    /// the one evicted next.
    pub fn residents(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut slot = self.newest;
        std::iter::from_fn(move || {
            if slot == NIL {
                return None;
            }
            let here = slot;
            slot = self.older[here];
            Some((self.identity_of[here], here))
        })
    }

    /// Records that the gallery feature of `identity` is written into the pool and says where.
    /// Repeated identities in one batch are simply consecutive writes, as in the reference loop.
    pub fn write(&mut self, identity: usize) -> SlotWrite {
        if let Some(&slot) = self.slot_of.get(&identity) {
            let old_next_row = self.next_row[slot];
            let row = match self.rows {
                Rows::One => 0,
                Rows::Two => {
                    self.next_row[slot] = 1 - old_next_row;
                    usize::from(old_next_row)
                }
            };
            // FIFO keeps arrival order: a refresh must not postpone the identity's eviction.
            let place = match self.eviction {
                Eviction::Lru => Some(self.move_to_newest(slot)),
                Eviction::Fifo => None,
            };
            self.log(Undo::Refreshed {
                slot,
                next_row: old_next_row,
                place,
            });
            return SlotWrite {
                slot,
                row,
                was_resident: true,
                evicted: None,
            };
        }
        let (slot, evicted) = if self.identity_of.len() < self.capacity() {
            let slot = self.identity_of.len();
            self.identity_of.push(identity);
            self.link_newest(slot);
            self.log(Undo::Took {
                slot,
                next_row: self.next_row[slot],
            });
            (slot, None)
        } else {
            let slot = self.oldest;
            let old = self.identity_of[slot];
            let place = self.move_to_newest(slot);
            self.slot_of.remove(&old);
            self.identity_of[slot] = identity;
            self.log(Undo::Evicted {
                slot,
                identity: old,
                next_row: self.next_row[slot],
                place,
            });
            (slot, Some(old))
        };
        self.slot_of.insert(identity, slot);
        // A newcomer's first feature goes to row 0, so its next write goes to row 1, whatever the slot's
        // previous owner left (the reference sets `queue_position_dict[idx] = 1`).
        self.next_row[slot] = match self.rows {
            Rows::One => 0,
            Rows::Two => 1,
        };
        SlotWrite {
            slot,
            row: 0,
            was_resident: false,
            evicted,
        }
    }

    /// Starts logging writes so that [`rollback`](Self::rollback) can undo them.
    ///
    /// # Panics
    /// If a trial is already open (trials do not nest).
    pub fn begin_trial(&mut self) {
        assert!(
            !self.in_trial,
            "class pool: begin_trial called while a trial is open; commit or roll back first"
        );
        self.in_trial = true;
    }

    /// Keeps the writes of the open trial and stops logging.
    ///
    /// # Panics
    /// If no trial is open.
    pub fn commit(&mut self) {
        assert!(
            self.in_trial,
            "class pool: commit called without begin_trial"
        );
        self.in_trial = false;
        self.undo_log.clear();
    }

    /// Undoes every write of the open trial, last first, restoring the map, the recency (or arrival)
    /// order and the next-row states exactly; cost proportional to the number of writes.
    ///
    /// # Panics
    /// If no trial is open.
    pub fn rollback(&mut self) {
        assert!(
            self.in_trial,
            "class pool: rollback called without begin_trial"
        );
        while let Some(undo) = self.undo_log.pop() {
            match undo {
                Undo::Took { slot, next_row } => {
                    self.unlink(slot);
                    let identity = self
                        .identity_of
                        .pop()
                        .expect("a taken slot is the last handed out");
                    debug_assert_eq!(self.identity_of.len(), slot);
                    self.slot_of.remove(&identity);
                    self.next_row[slot] = next_row;
                }
                Undo::Evicted {
                    slot,
                    identity,
                    next_row,
                    place,
                } => {
                    self.unlink(slot);
                    self.link_at(slot, place);
                    self.slot_of.remove(&self.identity_of[slot]);
                    self.slot_of.insert(identity, slot);
                    self.identity_of[slot] = identity;
                    self.next_row[slot] = next_row;
                }
                Undo::Refreshed {
                    slot,
                    next_row,
                    place,
                } => {
                    if let Some(place) = place {
                        self.unlink(slot);
                        self.link_at(slot, place);
                    }
                    self.next_row[slot] = next_row;
                }
            }
        }
        self.in_trial = false;
    }

    /// The map's state, to be saved (between steps: no trial may be open).
    ///
    /// # Panics
    /// If a trial is open: its undo log is not part of the state.
    pub fn state(&self) -> SlotMapState {
        assert!(
            !self.in_trial,
            "class pool: state taken while a trial is open; commit or roll back first"
        );
        SlotMapState {
            identity_of: self.identity_of.clone(),
            next_row: self.next_row.clone(),
            recency: self.residents().map(|(_, slot)| slot).collect(),
        }
    }

    /// The map of `capacity` slots that [`SlotMap::state`] described, or what is inconsistent
    /// about `state`.
    pub fn from_state(
        capacity: usize,
        rows: Rows,
        eviction: Eviction,
        state: &SlotMapState,
    ) -> Result<Self, String> {
        let mut map = SlotMap::new(capacity, rows, eviction);
        let n = state.identity_of.len();
        if n > capacity || state.next_row.len() != capacity {
            return Err(format!(
                "{n} slots handed out and {} next rows for a pool of {capacity} slots",
                state.next_row.len()
            ));
        }
        let max_row = match rows {
            Rows::One => 0,
            Rows::Two => 1,
        };
        if let Some(r) = state.next_row.iter().find(|&&r| r > max_row) {
            return Err(format!("next row {r} in a pool of {rows:?} rows"));
        }
        let mut seen = vec![false; n];
        for &slot in &state.recency {
            if slot >= n || std::mem::replace(&mut seen[slot], true) {
                return Err(format!(
                    "the recency order lists slot {slot} twice or beyond the {n} handed out"
                ));
            }
        }
        if state.recency.len() != n {
            return Err(format!(
                "the recency order lists {} of the {n} handed-out slots",
                state.recency.len()
            ));
        }
        for (slot, &identity) in state.identity_of.iter().enumerate() {
            if map.slot_of.insert(identity, slot).is_some() {
                return Err(format!("identity {identity} is resident twice"));
            }
        }
        map.identity_of.clone_from(&state.identity_of);
        map.next_row.clone_from(&state.next_row);
        for &slot in state.recency.iter().rev() {
            map.link_newest(slot);
        }
        Ok(map)
    }

    fn log(&mut self, undo: Undo) {
        if self.in_trial {
            self.undo_log.push(undo);
        }
    }

    /// Moves a linked slot to the new end and returns where it was.
    fn move_to_newest(&mut self, slot: usize) -> Place {
        let place = self.unlink(slot);
        self.link_newest(slot);
        place
    }

    /// Takes a linked slot out of the list, leaving its own links NIL, and returns where it was.
    fn unlink(&mut self, slot: usize) -> Place {
        let place = Place {
            newer: self.newer[slot],
            older: self.older[slot],
        };
        match place.newer {
            NIL => self.newest = place.older,
            n => self.older[n] = place.older,
        }
        match place.older {
            NIL => self.oldest = place.newer,
            o => self.newer[o] = place.newer,
        }
        self.newer[slot] = NIL;
        self.older[slot] = NIL;
        place
    }

    /// Puts an unlinked slot at the new end.
    fn link_newest(&mut self, slot: usize) {
        self.link_at(
            slot,
            Place {
                newer: NIL,
                older: self.newest,
            },
        );
    }

    /// Puts an unlinked slot between two neighbours that are adjacent now (NIL meaning an end).
    fn link_at(&mut self, slot: usize, place: Place) {
        self.newer[slot] = place.newer;
        self.older[slot] = place.older;
        match place.newer {
            NIL => self.newest = slot,
            n => self.older[n] = slot,
        }
        match place.older {
            NIL => self.oldest = slot,
            o => self.newer[o] = slot,
        }
    }
}

/// The pool's features: `rows` buffers of (Q, D) gallery features beside the [`SlotMap`].
/// Like the reference (`torch.rand(2, Q, D)` normalised) every row starts as a random unit vector
/// with non-negative entries, until the slot is written.
pub struct FeaturePool<B: crate::heads::backend::Backend> {
    /// Identity → slot bookkeeping.
    pub map: SlotMap,
    /// One (Q, D) buffer per row.
    pub features: Vec<B::Buf>,
    /// Embedding dimension D.
    pub dim: usize,
}

/// What [`FeaturePool::write_batch`] did, for the losses and for a later rollback.
pub struct BatchWrite<B: crate::heads::backend::Backend> {
    /// Slots that were already resident when written this batch (the reference's `ones_idx`),
    /// sorted and distinct.
    pub refreshed: Vec<usize>,
    /// The overwritten features, per row: (slots, previous features), to restore on rollback.
    /// They stay in the device's memory: a rollback copies them back without a round trip.
    saved: Vec<(Vec<usize>, B::Buf)>,
}

impl<B: crate::heads::backend::Backend> FeaturePool<B> {
    /// An empty pool of `cfg.capacity` slots for `num_identities` training identities.
    pub fn new(
        be: &B,
        cfg: &PoolConfig,
        num_identities: usize,
        dim: usize,
        seed: u64,
    ) -> crate::Result<Self> {
        use rand::{Rng, SeedableRng};
        let map = cfg.slot_map(num_identities);
        let q = map.capacity();
        let n_rows = match map.rows() {
            Rows::One => 1,
            Rows::Two => 2,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut features = Vec::with_capacity(n_rows);
        for _ in 0..n_rows {
            let mut host: Vec<f32> = (0..q * dim).map(|_| rng.gen::<f32>()).collect();
            for row in host.chunks_mut(dim) {
                let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|x| *x /= norm);
            }
            features.push(be.upload_owned(host)?);
        }
        Ok(FeaturePool { map, features, dim })
    }

    /// Bytes of pool state: Q·rows·D floats (the slot map's O(Q) integers are not counted).
    pub fn state_bytes(&self) -> u64 {
        (self.features.len() * self.map.capacity() * self.dim * 4) as u64
    }

    /// Writes the gallery features `gallery` (n, D) of `labels` in order, as the reference does
    /// (`self.queue[r, c] = g`; when one (row, slot) is written twice in a batch the later write
    /// wins). With `save`, keeps what it overwrote so that [`FeaturePool::restore`] can undo it.
    pub fn write_batch(
        &mut self,
        be: &B,
        gallery: &[f32],
        labels: &[usize],
        save: bool,
    ) -> crate::Result<BatchWrite<B>> {
        let d = self.dim;
        let mut last: HashMap<(usize, usize), usize> = HashMap::with_capacity(labels.len());
        let mut refreshed = Vec::new();
        for (i, &label) in labels.iter().enumerate() {
            let w = self.map.write(label);
            last.insert((w.row, w.slot), i);
            if w.was_resident {
                refreshed.push(w.slot);
            }
        }
        refreshed.sort_unstable();
        refreshed.dedup();
        let src = be.upload(gallery)?;
        let mut saved = Vec::new();
        for (r, feats) in self.features.iter_mut().enumerate() {
            let mut pairs: Vec<(usize, usize)> = last
                .iter()
                .filter(|((row, _), _)| *row == r)
                .map(|((_, slot), &i)| (*slot, i))
                .collect();
            pairs.sort_unstable();
            let slots: Vec<usize> = pairs.iter().map(|p| p.0).collect();
            let srcs: Vec<usize> = pairs.iter().map(|p| p.1).collect();
            if save {
                let mut old = be.zeros(slots.len() * d)?;
                let idx: Vec<usize> = (0..slots.len()).collect();
                be.copy_rows(feats, &slots, &mut old, &idx, d)?;
                saved.push((slots.clone(), old));
            }
            be.copy_rows(&src, &srcs, feats, &slots, d)?;
        }
        Ok(BatchWrite { refreshed, saved })
    }

    /// Puts back the features a saved [`FeaturePool::write_batch`] overwrote (the slot map is
    /// rolled back separately, through [`SlotMap::rollback`]).
    pub fn restore(&mut self, be: &B, write: BatchWrite<B>) -> crate::Result<()> {
        for (feats, (slots, old)) in self.features.iter_mut().zip(write.saved) {
            let idx: Vec<usize> = (0..slots.len()).collect();
            be.copy_rows(&old, &idx, feats, &slots, self.dim)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// `(slot, row, was_resident, evicted)` of one write, for compact scripts.
    fn w(map: &mut SlotMap, identity: usize) -> (usize, usize, bool, Option<usize>) {
        let s = map.write(identity);
        (s.slot, s.row, s.was_resident, s.evicted)
    }

    fn order(map: &SlotMap) -> Vec<usize> {
        map.residents().map(|(identity, _)| identity).collect()
    }

    /// Checks the internal links against the map: a bijection between residents and handed-out slots,
    /// a list walked the same way from both ends, never more than Q residents.
    fn check_invariants(map: &SlotMap) {
        assert!(map.len() <= map.capacity());
        assert_eq!(map.len(), map.identity_of.len());
        let forward: Vec<(usize, usize)> = map.residents().collect();
        assert_eq!(forward.len(), map.len());
        let mut backward = Vec::new();
        let mut slot = map.oldest;
        while slot != NIL {
            backward.push((map.identity_of[slot], slot));
            slot = map.newer[slot];
        }
        backward.reverse();
        assert_eq!(forward, backward);
        for &(identity, slot) in &forward {
            assert_eq!(map.slot_of(identity), Some(slot));
            assert_eq!(map.identity_at(slot), Some(identity));
        }
        for slot in map.len()..map.capacity() {
            assert_eq!(
                (map.newer[slot], map.older[slot], map.next_row[slot]),
                (NIL, NIL, 0)
            );
        }
    }

    #[test]
    fn lru_script() {
        let mut map = SlotMap::new(3, Rows::Two, Eviction::Lru);
        assert_eq!(w(&mut map, 10), (0, 0, false, None)); // slots handed out in order
        assert_eq!(w(&mut map, 20), (1, 0, false, None));
        assert_eq!(w(&mut map, 10), (0, 1, true, None)); // second feature of 10 → row 1, refreshes 10
        assert_eq!(w(&mut map, 30), (2, 0, false, None));
        assert_eq!(order(&map), vec![30, 10, 20]);
        // Full: 20 is least recently written (10 was refreshed after it).
        assert_eq!(w(&mut map, 40), (1, 0, false, Some(20)));
        assert_eq!(order(&map), vec![40, 30, 10]);
        assert_eq!(w(&mut map, 10), (0, 0, true, None)); // rows alternate 0, 1, 0, …
        assert_eq!(w(&mut map, 20), (2, 0, false, Some(30)));
        assert_eq!(order(&map), vec![20, 10, 40]);
        assert_eq!(map.len(), 3);
        check_invariants(&map);
    }

    #[test]
    fn fifo_script_differs_after_refresh() {
        let mut map = SlotMap::new(3, Rows::Two, Eviction::Fifo);
        assert_eq!(w(&mut map, 10), (0, 0, false, None));
        assert_eq!(w(&mut map, 20), (1, 0, false, None));
        assert_eq!(w(&mut map, 10), (0, 1, true, None)); // rows alternate as under LRU, but no refresh
        assert_eq!(w(&mut map, 30), (2, 0, false, None));
        assert_eq!(order(&map), vec![30, 20, 10]);
        // Full: 10 arrived first, so it leaves although it was written after 20 (LRU evicts 20 here).
        assert_eq!(w(&mut map, 40), (0, 0, false, Some(10)));
        assert_eq!(w(&mut map, 10), (1, 0, false, Some(20)));
        assert_eq!(order(&map), vec![10, 40, 30]);
        check_invariants(&map);
    }

    #[test]
    fn repeated_labels_in_one_batch_are_consecutive_writes() {
        let mut map = SlotMap::new(4, Rows::Two, Eviction::Lru);
        let batch = [5, 5, 7, 5, 7];
        let got: Vec<_> = batch.iter().map(|&l| w(&mut map, l)).collect();
        assert_eq!(
            got,
            vec![
                (0, 0, false, None),
                (0, 1, true, None),
                (1, 0, false, None),
                (0, 0, true, None),
                (1, 1, true, None)
            ]
        );
    }

    #[test]
    fn evicted_slot_restarts_at_row_zero() {
        // Capacity 1 makes every newcomer evict. 1 is written twice (slot's next row back to 0), 2 once
        // (next row 1): either way the newcomer writes row 0 and then row 1.
        let mut map = SlotMap::new(1, Rows::Two, Eviction::Lru);
        assert_eq!(w(&mut map, 1), (0, 0, false, None));
        assert_eq!(w(&mut map, 1), (0, 1, true, None));
        assert_eq!(w(&mut map, 2), (0, 0, false, Some(1)));
        assert_eq!(w(&mut map, 3), (0, 0, false, Some(2)));
        assert_eq!(w(&mut map, 3), (0, 1, true, None));
        assert_eq!(w(&mut map, 3), (0, 0, true, None));
    }

    #[test]
    fn one_row_always_writes_row_zero() {
        let mut map = SlotMap::new(2, Rows::One, Eviction::Lru);
        let rows: Vec<usize> = [1, 1, 1, 2, 2, 3, 1, 3]
            .iter()
            .map(|&l| map.write(l).row)
            .collect();
        assert_eq!(rows, vec![0; 8]);
        // Eviction is unaffected by the row count: 3 evicted 1 (written before 2), then 1 evicted 2.
        assert_eq!(order(&map), vec![3, 1]);
    }

    #[test]
    fn slot_of_does_not_refresh() {
        let mut map = SlotMap::new(2, Rows::Two, Eviction::Lru);
        map.write(1);
        map.write(2);
        assert_eq!(map.slot_of(1), Some(0));
        assert_eq!(map.slot_of(9), None);
        // Had slot_of refreshed 1, the newcomer would evict 2.
        assert_eq!(map.write(3).evicted, Some(1));
    }

    #[test]
    fn rollback_restores_exactly() {
        for eviction in [Eviction::Lru, Eviction::Fifo] {
            let mut map = SlotMap::new(4, Rows::Two, eviction);
            for l in [1, 2, 1, 3] {
                map.write(l);
            }
            let before = map.clone();
            map.begin_trial();
            // Refresh, take the last free slot, evict (under both policies 8 evicts 4, whose slot was
            // taken inside the trial), bring an evicted identity back, repeat labels.
            for l in [2, 4, 5, 6, 5, 7, 8, 2, 2] {
                map.write(l);
            }
            assert_ne!(map, before);
            assert_eq!(map.slot_of(8), Some(3));
            map.rollback();
            assert_eq!(map, before);
            assert_eq!(order(&map), order(&before));
            check_invariants(&map);
            // Same future behaviour as the untouched clone.
            let mut twin = before.clone();
            for l in [7, 3, 8, 1, 9, 1, 3] {
                assert_eq!(map.write(l), twin.write(l));
            }
            assert_eq!(map, twin);
        }
    }

    #[test]
    fn commit_keeps_writes() {
        let mut map = SlotMap::new(2, Rows::Two, Eviction::Lru);
        let mut plain = map.clone();
        map.begin_trial();
        for l in [1, 2, 1, 3] {
            assert_eq!(map.write(l), plain.write(l));
        }
        map.commit();
        assert!(!map.in_trial());
        assert_eq!(map, plain);
    }

    /// The semantics written the slow, obvious way: a Vec in recency order, newest first.
    #[derive(Clone)]
    struct Naive {
        rows: Rows,
        eviction: Eviction,
        capacity: usize,
        order: Vec<(usize, usize)>,
        next_row: Vec<usize>,
        used: usize,
    }

    impl Naive {
        fn write(&mut self, identity: usize) -> SlotWrite {
            if let Some(i) = self.order.iter().position(|&(id, _)| id == identity) {
                let slot = self.order[i].1;
                let row = if self.rows == Rows::Two {
                    self.next_row[slot]
                } else {
                    0
                };
                self.next_row[slot] = if self.rows == Rows::Two { 1 - row } else { 0 };
                if self.eviction == Eviction::Lru {
                    let entry = self.order.remove(i);
                    self.order.insert(0, entry);
                }
                return SlotWrite {
                    slot,
                    row,
                    was_resident: true,
                    evicted: None,
                };
            }
            let (slot, evicted) = if self.used < self.capacity {
                self.used += 1;
                (self.used - 1, None)
            } else {
                let (old, slot) = self.order.pop().unwrap();
                (slot, Some(old))
            };
            self.order.insert(0, (identity, slot));
            self.next_row[slot] = if self.rows == Rows::Two { 1 } else { 0 };
            SlotWrite {
                slot,
                row: 0,
                was_resident: false,
                evicted,
            }
        }
    }

    #[test]
    fn matches_naive_model_with_trials_on_random_sequences() {
        let mut rng = StdRng::seed_from_u64(7);
        for rows in [Rows::One, Rows::Two] {
            for eviction in [Eviction::Lru, Eviction::Fifo] {
                for capacity in [1, 3, 17] {
                    let mut map = SlotMap::new(capacity, rows, eviction);
                    let mut naive = Naive {
                        rows,
                        eviction,
                        capacity,
                        order: Vec::new(),
                        next_row: vec![0; capacity],
                        used: 0,
                    };
                    for step in 0..300 {
                        // Alternate trial-then-rollback and committed batches, as the reference's two directions.
                        let trial = step % 2 == 0;
                        let (saved_map, saved_naive) = (map.clone(), naive.clone());
                        if trial {
                            map.begin_trial();
                        }
                        for _ in 0..rng.gen_range(1..12) {
                            let identity = rng.gen_range(0..(3 * capacity + 2));
                            assert_eq!(map.write(identity), naive.write(identity));
                        }
                        let order_naive: Vec<_> = naive.order.clone();
                        assert_eq!(map.residents().collect::<Vec<_>>(), order_naive);
                        check_invariants(&map);
                        if trial {
                            map.rollback();
                            naive = saved_naive;
                            assert_eq!(map, saved_map);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn never_exceeds_capacity_and_memory_does_not_grow_with_identities() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut map = SlotMap::new(64, Rows::Two, Eviction::Lru);
        let mut evictions = 0;
        for _ in 0..20_000 {
            // Identities up to 10^8: nothing may be indexed by identity.
            let s = map.write(rng.gen_range(0..100_000_000));
            assert!(s.slot < 64);
            evictions += usize::from(s.evicted.is_some());
        }
        assert_eq!(map.len(), 64);
        // 20 000 draws from 10^8 are almost surely distinct: all but the first 64 evict.
        assert!(evictions >= 20_000 - 64 - 5, "evictions {evictions}");
        assert!(
            map.slot_of.capacity() < 4 * 64,
            "map grew to {}",
            map.slot_of.capacity()
        );
        check_invariants(&map);
    }

    #[test]
    fn state_round_trips_and_continues_alike() {
        let mut rng = StdRng::seed_from_u64(21);
        for (rows, eviction) in [(Rows::Two, Eviction::Lru), (Rows::One, Eviction::Fifo)] {
            let mut map = SlotMap::new(7, rows, eviction);
            for round in 0..40 {
                let ids: Vec<usize> = (0..3).map(|_| rng.gen_range(0..12)).collect();
                if round % 3 == 0 {
                    map.begin_trial();
                    for &i in &ids {
                        map.write(i);
                    }
                    map.rollback();
                }
                for &i in &ids {
                    map.write(i);
                }
                let mut copy = SlotMap::from_state(7, rows, eviction, &map.state()).unwrap();
                assert_eq!(copy, map, "round {round}");
                for i in 0..12 {
                    assert_eq!(copy.write(i), map.write(i));
                }
                check_invariants(&map);
            }
        }
    }

    #[test]
    fn inconsistent_state_is_rejected() {
        let mut map = SlotMap::new(3, Rows::Two, Eviction::Lru);
        map.write(4);
        map.write(5);
        let good = map.state();
        let mut bad = good.clone();
        bad.recency = vec![0, 0];
        assert!(SlotMap::from_state(3, Rows::Two, Eviction::Lru, &bad).is_err());
        let mut bad = good.clone();
        bad.identity_of = vec![4, 4];
        assert!(SlotMap::from_state(3, Rows::Two, Eviction::Lru, &bad).is_err());
        assert!(SlotMap::from_state(2, Rows::Two, Eviction::Lru, &good).is_err());
        assert!(SlotMap::from_state(3, Rows::One, Eviction::Lru, &good).is_err());
    }

    #[test]
    #[should_panic(expected = "capacity must be at least 1")]
    fn zero_capacity_is_rejected() {
        SlotMap::new(0, Rows::Two, Eviction::Lru);
    }

    #[test]
    fn config_builds_a_map() {
        let config = PoolConfig {
            capacity: Capacity::Fraction(0.01),
            rows: Rows::Two,
            eviction: Eviction::Fifo,
        };
        let map = config.slot_map(1_000);
        assert_eq!(
            (map.capacity(), map.rows(), map.eviction(), map.len()),
            (10, Rows::Two, Eviction::Fifo, 0)
        );
    }
}
