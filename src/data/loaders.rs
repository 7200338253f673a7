//! F²C's Dual Loaders: an identity-based loader (each item one identity and two of its instances;
//! every training identity visited once per pass, in shuffled order) and the ordinary
//! instance-based loader (each instance once per pass, shuffled). A step takes `identities` items
//! from the first and `instances` from the second.
//!
//! Neither loader stores a shuffled list: each pass's order is a seeded pseudorandom permutation
//! computed on demand, so memory stays small at millions of identities and tens of millions of
//! instances. Reference: tiandunx/FFC `main.py` (the two loaders and the batch split) and
//! `PairLMDBDatasetV2` (the identity items).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::synthetic::{mix64, stream_key, CounterRng, SyntheticFaces, INPUT_DIM};

/// What the loaders need of a training set: its identities, how many instances each has, and
/// the label each instance is trained under. The synthetic benchmark and image data sets both
/// provide it, so the loaders run unchanged on either.
pub trait TrainingIdentities: Sync {
    /// Number of training identities N (labels are 0..N).
    fn num_train_identities(&self) -> usize;

    /// Instances of training identity `identity`.
    fn instances_of(&self, identity: usize) -> usize;

    /// The label of (identity, instance): the identity, unless labels are noisy.
    fn train_label(&self, identity: usize, instance: usize) -> usize;
}

impl TrainingIdentities for SyntheticFaces {
    fn num_train_identities(&self) -> usize {
        SyntheticFaces::num_train_identities(self)
    }

    fn instances_of(&self, identity: usize) -> usize {
        SyntheticFaces::instances_of(self, identity)
    }

    fn train_label(&self, identity: usize, instance: usize) -> usize {
        SyntheticFaces::train_label(self, identity, instance)
    }
}

impl<T: super::images::FaceImages + ?Sized> TrainingIdentities for T {
    fn num_train_identities(&self) -> usize {
        self.num_identities()
    }

    fn instances_of(&self, identity: usize) -> usize {
        self.num_instances(identity)
    }

    fn train_label(&self, identity: usize, _instance: usize) -> usize {
        identity
    }
}

/// How many items each loader contributes to one training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Identities per step from the identity loader (each brings 2 instances); 0 = instance-only.
    pub identities: usize,
    /// Instances per step from the instance loader; 0 = identity-only. Must be even for F²C.
    pub instances: usize,
}

crate::sweepable!(LoaderConfig { identities, instances } nested {});

impl LoaderConfig {
    /// Samples per step: two per identity item plus the instances.
    pub fn batch_size(&self) -> usize {
        2 * self.identities + self.instances
    }
}

/// Stream tags of the loaders' randomness, apart from the benchmark's own (which use 1..=8).
mod stream {
    pub const IDENTITY_ORDER: u64 = 101;
    pub const IDENTITY_PAIR: u64 = 102;
    pub const INSTANCE_ORDER: u64 = 103;
}

/// Identities per checkpoint of the instance index: the index holds one u64 per block, and a
/// lookup recomputes at most this many instance counts (≈ 30 ns each).
const INDEX_BLOCK: usize = 16;

/// Feistel rounds of [`Permutation`]; four rounds of a strong round function give a pseudorandom
/// permutation (Luby–Rackoff), which is all a shuffle needs.
const FEISTEL_ROUNDS: usize = 4;

/// Which loader a batch row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// One of the two instances of an identity-loader item.
    Identity,
    /// An instance-loader sample.
    Instance,
}

/// One training sample: which identity, which of its instances, and whether it is mirrored (the
/// usual augmentation of face images; never for the synthetic vectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sample {
    pub identity: usize,
    pub instance: usize,
    /// Horizontal flip.
    pub flip: bool,
}

/// One training step's samples.
///
/// Row order is fixed: first the `identities` pairs as `[id0 inst a, id0 inst b, id1 inst a,
/// id1 inst b, …]`, then the `instances` samples. [`split_probe_gallery`] relies on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// (B, INPUT_LEN), row-major: the synthetic vectors, or CHW images of an image data set.
    pub inputs: Vec<f32>,
    /// (B,): the training label of each row (the identity it is filed under).
    pub labels: Vec<usize>,
    /// (B,): which loader each row came from.
    pub source: Vec<Source>,
    /// (B,): which training sample each row is, so that inputs kept on the device can be picked
    /// by index instead of uploaded ([`crate::data::resident`]).
    pub samples: Vec<Sample>,
}

impl Batch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch has no row.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A seeded pseudorandom permutation of `0..n` that needs no table: a balanced Feistel network on
/// the smallest even number of bits covering `n`, with cycle-walking back into range (fewer than 4
/// steps on average, since the domain is under 4n). Shuffles 10^7 or 10^9 items in O(1) memory.
#[derive(Debug, Clone, Copy)]
struct Permutation {
    n: u64,
    half_bits: u32,
    keys: [u64; FEISTEL_ROUNDS],
}

impl Permutation {
    fn new(n: u64, key: u64) -> Self {
        assert!(n >= 1, "permutation of an empty range");
        let bits = 64 - (n - 1).leading_zeros(); // values 0..n fit in `bits` bits
        let half_bits = bits.div_ceil(2).max(1);
        let mut rng = CounterRng::new(key);
        let keys = std::array::from_fn(|_| rng.next_u64());
        Permutation { n, half_bits, keys }
    }

    fn apply(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        let mask = (1u64 << self.half_bits) - 1;
        let mut x = i;
        loop {
            let (mut l, mut r) = (x >> self.half_bits, x & mask);
            for k in self.keys {
                (l, r) = (r, l ^ (mix64(r ^ k) & mask));
            }
            x = (l << self.half_bits) | r;
            if x < self.n {
                return x;
            }
        }
    }
}

/// The identity-based loader: every training identity once per pass, in a fresh shuffled order
/// each pass, with two distinct random instances of it (the reference's `PairLMDBDatasetV2`;
/// it repeats the one instance of a single-instance identity, which cannot happen here since
/// `min_instances ≥ 2`).
#[derive(Debug, Clone)]
struct IdentityLoader {
    seed: u64,
    identities: usize,
    pass: u64,
    position: usize,
    order: Permutation,
}

impl IdentityLoader {
    fn new(identities: usize, seed: u64) -> Self {
        IdentityLoader {
            seed,
            identities,
            pass: 0,
            position: 0,
            order: Self::order(identities, seed, 0),
        }
    }

    fn order(identities: usize, seed: u64, pass: u64) -> Permutation {
        Permutation::new(
            identities as u64,
            stream_key(seed, stream::IDENTITY_ORDER, pass, 0),
        )
    }

    /// The next (identity, instance a, instance b).
    fn next(&mut self, faces: &(impl TrainingIdentities + ?Sized)) -> (usize, usize, usize) {
        if self.position == self.identities {
            self.pass += 1;
            self.position = 0;
            self.order = Self::order(self.identities, self.seed, self.pass);
        }
        let identity = self.order.apply(self.position as u64) as usize;
        let mut rng = CounterRng::new(stream_key(
            self.seed,
            stream::IDENTITY_PAIR,
            self.pass,
            self.position as u64,
        ));
        self.position += 1;
        let n = faces.instances_of(identity) as u64;
        if n == 1 {
            return (identity, 0, 0);
        }
        let a = rng.below(n);
        let b = rng.below(n - 1);
        (
            identity,
            a as usize,
            (if b >= a { b + 1 } else { b }) as usize,
        )
    }
}

/// The instance-based loader: every (identity, instance) once per pass, in a fresh shuffled order
/// each pass.
///
/// Chosen design: a [`Permutation`] of `0..total` and a checkpoint index (cumulative instance
/// count every [`INDEX_BLOCK`] identities) that maps a global index back to (identity, instance)
/// by binary search plus a short walk. Memory is 8 bytes per 16 identities (0.5 MB at 10^6
/// identities, 50 MB at 10^8) whatever the instance count, where a shuffled Vec of (u32, u32)
/// pairs would take 8 bytes per instance (80 MB at 10^7, 6 GB at the validated maximum).
#[derive(Debug, Clone)]
struct InstanceLoader {
    seed: u64,
    /// checkpoints[b] = number of instances of identities 0 .. b·INDEX_BLOCK; last = total.
    checkpoints: Vec<u64>,
    total: u64,
    pass: u64,
    position: u64,
    order: Permutation,
}

impl InstanceLoader {
    fn new(faces: &(impl TrainingIdentities + ?Sized), seed: u64) -> Self {
        let n = faces.num_train_identities();
        let blocks = n.div_ceil(INDEX_BLOCK);
        // Each block's count, after a leading 0, then summed in place: one vector at 10⁷ identities.
        let mut checkpoints = Vec::with_capacity(blocks + 1);
        checkpoints.push(0u64);
        checkpoints.par_extend((0..blocks).into_par_iter().map(|b| {
            (b * INDEX_BLOCK..((b + 1) * INDEX_BLOCK).min(n))
                .map(|c| faces.instances_of(c) as u64)
                .sum::<u64>()
        }));
        let mut total = 0;
        for c in &mut checkpoints {
            total += *c;
            *c = total;
        }
        InstanceLoader {
            seed,
            checkpoints,
            total,
            pass: 0,
            position: 0,
            order: Self::order(total, seed, 0),
        }
    }

    fn order(total: u64, seed: u64, pass: u64) -> Permutation {
        Permutation::new(total, stream_key(seed, stream::INSTANCE_ORDER, pass, 0))
    }

    /// (identity, instance) of global index `g` (identity-major order).
    fn locate(&self, faces: &(impl TrainingIdentities + ?Sized), g: u64) -> (usize, usize) {
        // Last block starting at or before g.
        let block = self.checkpoints.partition_point(|&c| c <= g) - 1;
        let mut start = self.checkpoints[block];
        let mut identity = block * INDEX_BLOCK;
        loop {
            let count = faces.instances_of(identity) as u64;
            if g < start + count {
                return (identity, (g - start) as usize);
            }
            start += count;
            identity += 1;
        }
    }

    fn next(&mut self, faces: &(impl TrainingIdentities + ?Sized)) -> (usize, usize) {
        if self.position == self.total {
            self.pass += 1;
            self.position = 0;
            self.order = Self::order(self.total, self.seed, self.pass);
        }
        let g = self.order.apply(self.position);
        self.position += 1;
        self.locate(faces, g)
    }
}

/// Where the two loaders of a [`DualLoader`] stand: (pass, position within the pass) of the
/// identity loader and, if there is one, of the instance loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderState {
    pub identity: (u64, u64),
    pub instance: Option<(u64, u64)>,
}

/// F²C's Dual Loaders: each step takes `cfg.identities` items from the identity loader and
/// `cfg.instances` samples from the instance loader. The two run independently, each starting a
/// new shuffled pass when it runs out (the reference restarts its identity iterator whenever it is
/// exhausted within the instance loader's epoch).
#[derive(Debug, Clone)]
pub struct DualLoader {
    cfg: LoaderConfig,
    identity: IdentityLoader,
    instance: Option<InstanceLoader>,
    /// Reused per-step list of (label, identity, instance) to render.
    rows: Vec<(usize, usize, usize)>,
}

impl DualLoader {
    /// Builds both loaders. The instance index visits every identity once (in parallel); it is
    /// skipped when `cfg.instances == 0`.
    pub fn new(faces: &(impl TrainingIdentities + ?Sized), cfg: LoaderConfig, seed: u64) -> Self {
        let instance = (cfg.instances > 0).then(|| InstanceLoader::new(faces, seed));
        DualLoader {
            cfg,
            identity: IdentityLoader::new(faces.num_train_identities(), seed),
            instance,
            rows: Vec::with_capacity(cfg.batch_size()),
        }
    }

    /// The loader settings.
    pub fn config(&self) -> LoaderConfig {
        self.cfg
    }

    /// Completed passes of the identity loader (its epoch count), counted when the next pass
    /// begins.
    pub fn identity_passes(&self) -> u64 {
        self.identity.pass
    }

    /// Completed passes of the instance loader (the usual epoch count; 0 if instance-free),
    /// counted when the next pass begins.
    pub fn instance_passes(&self) -> u64 {
        self.instance.as_ref().map_or(0, |l| l.pass)
    }

    /// Where both loaders stand, to be saved: the rest (seed, shuffles, instance index) follows
    /// from the data and the seed the loader is built with, each pass's order being recomputed
    /// from the seed and the pass number.
    pub fn state(&self) -> LoaderState {
        LoaderState {
            identity: (self.identity.pass, self.identity.position as u64),
            instance: self.instance.as_ref().map(|l| (l.pass, l.position)),
        }
    }

    /// Moves a loader built like the saved one to where [`DualLoader::state`] found it.
    pub fn restore(&mut self, state: &LoaderState) -> crate::Result<()> {
        let bad = |what: &str| {
            crate::error::Error::Other(format!(
                "loader state: {what}; was it saved for another experiment?"
            ))
        };
        let (pass, position) = state.identity;
        if position > self.identity.identities as u64 {
            return Err(bad("the identity loader's position is beyond its pass"));
        }
        let instance = match (self.instance.as_mut(), state.instance) {
            (Some(l), Some((pass, position))) if position <= l.total => Some((l, pass, position)),
            (None, None) => None,
            _ => return Err(bad("the instance loader does not match")),
        };
        let id = &mut self.identity;
        id.pass = pass;
        id.position = position as usize;
        id.order = IdentityLoader::order(id.identities, id.seed, pass);
        if let Some((l, pass, position)) = instance {
            l.pass = pass;
            l.position = position;
            l.order = InstanceLoader::order(l.total, l.seed, pass);
        }
        Ok(())
    }

    /// Fills `out` with the next step's `cfg.batch_size()` rows in the documented order (see
    /// [`Batch`]). Reuses `out`'s buffers; rows are rendered in parallel, each from its own random
    /// stream, so the bytes do not depend on the thread count.
    pub fn next_batch(&mut self, faces: &SyntheticFaces, out: &mut Batch) {
        self.next_rows(faces, out);
        render_samples(faces, &out.samples, &mut out.inputs);
    }

    /// The next step's rows without their inputs: fills `out.labels` and `out.source` (leaving
    /// `out.inputs` alone) and returns (label, identity, instance) of each row, in batch order.
    pub fn next_rows(
        &mut self,
        faces: &(impl TrainingIdentities + ?Sized),
        out: &mut Batch,
    ) -> &[(usize, usize, usize)] {
        self.rows.clear();
        out.source.clear();
        out.samples.clear();
        for _ in 0..self.cfg.identities {
            let (identity, a, b) = self.identity.next(faces);
            let label_a = faces.train_label(identity, a);
            let label_b = faces.train_label(identity, b);
            self.rows.push((label_a, identity, a));
            self.rows.push((label_b, identity, b));
            out.source.extend([Source::Identity, Source::Identity]);
        }
        if let Some(loader) = self.instance.as_mut() {
            for _ in 0..self.cfg.instances {
                let (identity, instance) = loader.next(faces);
                self.rows
                    .push((faces.train_label(identity, instance), identity, instance));
                out.source.push(Source::Instance);
            }
        }
        out.labels.clear();
        out.labels.extend(self.rows.iter().map(|r| r.0));
        out.samples
            .extend(self.rows.iter().map(|&(_, identity, instance)| Sample {
                identity,
                instance,
                flip: false,
            }));
        &self.rows
    }
}

/// Renders the training `samples` of `faces` into `out` (resized to their rows), in parallel,
/// each row from its own random stream, so the bytes do not depend on the thread count.
pub fn render_samples(faces: &SyntheticFaces, samples: &[Sample], out: &mut Vec<f32>) {
    out.resize(samples.len() * INPUT_DIM, 0.0);
    out.par_chunks_mut(INPUT_DIM)
        .zip(samples.par_iter())
        .for_each(|(x, s)| faces.render_train(s.identity, s.instance, x));
}

/// Splits a batch's rows into halves A and B as the reference does: of each identity pair the
/// first row goes to A and the second to B; of the instance rows the first half (the larger half,
/// ⌈n/2⌉, if n is odd) goes to A and the rest to B. Each half lists its identity rows first, then
/// its instance rows, in batch order.
///
/// In F²C, A is the probe half and B the gallery half for one direction, and the roles swap for
/// the other; every identity row of A thus has its partner, of the same label, in B.
///
/// # Panics
/// If identity rows are not first and in consecutive pairs.
pub fn split_probe_gallery(batch: &Batch) -> (Vec<usize>, Vec<usize>) {
    let pair_rows = batch
        .source
        .iter()
        .take_while(|s| **s == Source::Identity)
        .count();
    assert!(
        pair_rows % 2 == 0,
        "split: {pair_rows} identity rows, expected pairs"
    );
    assert!(
        batch.source[pair_rows..]
            .iter()
            .all(|s| *s == Source::Instance),
        "split: identity rows must all come before instance rows"
    );
    let instances = batch.source.len() - pair_rows;
    let first_half = instances.div_ceil(2);
    let mut a: Vec<usize> = (0..pair_rows).step_by(2).collect();
    let mut b: Vec<usize> = (1..pair_rows).step_by(2).collect();
    a.extend(pair_rows..pair_rows + first_half);
    b.extend(pair_rows + first_half..pair_rows + instances);
    (a, b)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::data::synthetic::SyntheticConfig;

    fn faces(train_identities: usize, seed: u64) -> SyntheticFaces {
        let cfg = SyntheticConfig {
            train_identities,
            eval_identities: 10,
            min_instances: 2,
            max_instances: 12,
            tail_exponent: 1.5,
            eval_instances: 4,
            identity_dim: 16,
            nuisance_dim: 6,
            nuisance_scale: 1.0,
            noise: 0.3,
            label_noise: 0.1,
            families: Default::default(),
            validation_identities: 0,
        };
        SyntheticFaces::new(&cfg, seed)
    }

    #[test]
    fn permutation_is_a_bijection() {
        for n in [1u64, 2, 3, 17, 1000, 4097] {
            let p = Permutation::new(n, 42);
            let image: HashSet<u64> = (0..n).map(|i| p.apply(i)).collect();
            assert_eq!(image.len() as u64, n, "n = {n}");
            assert!(image.iter().all(|&x| x < n));
        }
        // Another key, another order (for 1000 items a repeat is a 1/1000! event).
        let (a, b) = (Permutation::new(1000, 1), Permutation::new(1000, 2));
        assert_ne!(
            (0..1000).map(|i| a.apply(i)).collect::<Vec<_>>(),
            (0..1000).map(|i| b.apply(i)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn permutation_looks_shuffled() {
        // A shuffle of 0..10000 leaves about 1 fixed point and moves items far: the mean
        // displacement of a uniform permutation is n/3 ≈ 3333.
        let p = Permutation::new(10_000, 7);
        let fixed = (0..10_000).filter(|&i| p.apply(i) == i).count();
        let mean_shift = (0..10_000)
            .map(|i| (p.apply(i) as f64 - i as f64).abs())
            .sum::<f64>()
            / 10_000.0;
        assert!(fixed <= 6, "{fixed} fixed points");
        assert!(
            (mean_shift - 3333.0).abs() < 150.0,
            "mean displacement {mean_shift}"
        );
    }

    #[test]
    fn identity_loader_visits_every_identity_once_per_pass() {
        let f = faces(257, 1);
        let mut loader = IdentityLoader::new(257, 5);
        let mut orders = Vec::new();
        for pass in 0..3 {
            let mut order = Vec::new();
            for _ in 0..257 {
                let (identity, a, b) = loader.next(&f);
                let n = f.instances_of(identity);
                assert!(
                    a < n && b < n && a != b,
                    "identity {identity}: instances {a}, {b} of {n}"
                );
                order.push(identity);
            }
            assert_eq!(loader.pass, pass);
            assert_eq!(order.iter().collect::<HashSet<_>>().len(), 257);
            orders.push(order);
        }
        assert_ne!(orders[0], orders[1], "each pass reshuffles");
        // The pass counter moves when the next pass starts.
        loader.next(&f);
        assert_eq!(loader.pass, 3);
    }

    #[test]
    fn pair_instances_cover_all_instances() {
        // Over many passes the two instances are uniform over distinct pairs: for identity 0,
        // every instance appears.
        let f = faces(5, 1);
        let mut loader = IdentityLoader::new(5, 9);
        let mut seen = HashSet::new();
        for _ in 0..5 * 400 {
            let (identity, a, b) = loader.next(&f);
            if identity == 0 {
                seen.extend([a, b]);
            }
        }
        assert_eq!(seen.len(), f.instances_of(0));
    }

    #[test]
    fn instance_index_matches_enumeration() {
        let f = faces(300, 3);
        let loader = InstanceLoader::new(&f, 1);
        let naive: Vec<(usize, usize)> = (0..300)
            .flat_map(|c| (0..f.instances_of(c)).map(move |i| (c, i)))
            .collect();
        assert_eq!(loader.total as usize, naive.len());
        assert_eq!(loader.total as usize, f.num_train_instances());
        for (g, &expected) in naive.iter().enumerate() {
            assert_eq!(loader.locate(&f, g as u64), expected, "global index {g}");
        }
    }

    #[test]
    fn instance_loader_visits_every_instance_once_per_pass() {
        let f = faces(300, 3);
        let mut loader = InstanceLoader::new(&f, 8);
        let total = f.num_train_instances();
        let mut passes = Vec::new();
        for pass in 0..2 {
            let order: Vec<(usize, usize)> = (0..total).map(|_| loader.next(&f)).collect();
            assert_eq!(loader.pass, pass);
            assert_eq!(order.iter().collect::<HashSet<_>>().len(), total);
            assert!(order.iter().all(|&(c, i)| i < f.instances_of(c)));
            passes.push(order);
        }
        assert_ne!(passes[0], passes[1]);
    }

    #[test]
    fn batch_layout_labels_and_rows() {
        let f = faces(100, 2);
        let mut loader = DualLoader::new(
            &f,
            LoaderConfig {
                identities: 3,
                instances: 4,
            },
            6,
        );
        let mut batch = Batch::default();
        for _ in 0..5 {
            loader.next_batch(&f, &mut batch);
            assert_eq!(batch.len(), 10);
            assert_eq!(batch.inputs.len(), 10 * INPUT_DIM);
            assert_eq!(&batch.source[..6], &[Source::Identity; 6]);
            assert_eq!(&batch.source[6..], &[Source::Instance; 4]);
            for (row, &(label, identity, instance)) in loader.rows.iter().enumerate() {
                assert_eq!(batch.labels[row], label);
                assert_eq!(label, f.train_label(identity, instance));
                let mut expected = [0f32; INPUT_DIM];
                f.render_train(identity, instance, &mut expected);
                assert_eq!(
                    &batch.inputs[row * INPUT_DIM..(row + 1) * INPUT_DIM],
                    &expected[..]
                );
            }
            for p in 0..3 {
                let (a, b) = (loader.rows[2 * p], loader.rows[2 * p + 1]);
                assert_eq!(a.1, b.1, "a pair is one identity");
                assert_ne!(a.2, b.2, "two distinct instances");
                assert_eq!(
                    batch.labels[2 * p],
                    batch.labels[2 * p + 1],
                    "a pair shares its label"
                );
            }
        }
    }

    #[test]
    fn loader_passes_count() {
        // 100 identities, 10 per step: the identity loader completes a pass every 10 steps.
        let f = faces(100, 2);
        let mut loader = DualLoader::new(
            &f,
            LoaderConfig {
                identities: 10,
                instances: 0,
            },
            6,
        );
        let mut batch = Batch::default();
        for _ in 0..21 {
            loader.next_batch(&f, &mut batch);
        }
        assert_eq!(loader.identity_passes(), 2);
        assert_eq!(loader.instance_passes(), 0);
        assert_eq!(batch.len(), 20);
    }

    #[test]
    fn same_seed_same_batches_different_seed_differs() {
        let f = faces(200, 2);
        let cfg = LoaderConfig {
            identities: 4,
            instances: 6,
        };
        let run = |seed: u64| {
            let mut loader = DualLoader::new(&f, cfg, seed);
            let mut batch = Batch::default();
            let mut all = Vec::new();
            for _ in 0..3 {
                loader.next_batch(&f, &mut batch);
                all.extend(batch.inputs.iter().map(|v| v.to_bits()));
                all.extend(batch.labels.iter().map(|&l| l as u32));
            }
            all
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn restored_loader_continues_alike() {
        let f = faces(60, 2);
        let cfg = LoaderConfig {
            identities: 7,
            instances: 9,
        };
        let mut a = DualLoader::new(&f, cfg, 3);
        let mut batch = Batch::default();
        // Past a pass of each loader, then mid-pass.
        for _ in 0..23 {
            a.next_batch(&f, &mut batch);
        }
        let mut b = DualLoader::new(&f, cfg, 3);
        b.restore(&a.state()).unwrap();
        assert_eq!(b.state(), a.state());
        let mut other = Batch::default();
        for _ in 0..30 {
            a.next_batch(&f, &mut batch);
            b.next_batch(&f, &mut other);
            assert_eq!(batch, other);
        }
        let no_instances = DualLoader::new(
            &f,
            LoaderConfig {
                identities: 7,
                instances: 0,
            },
            3,
        );
        assert!(b.restore(&no_instances.state()).is_err());
    }

    #[test]
    fn split_pairs_and_halves() {
        let batch = |identities: usize, instances: usize| Batch {
            inputs: vec![0.0; (2 * identities + instances) * INPUT_DIM],
            labels: vec![0; 2 * identities + instances],
            source: [
                vec![Source::Identity; 2 * identities],
                vec![Source::Instance; instances],
            ]
            .concat(),
            samples: Vec::new(),
        };
        // Rows: 0,1 = pair 0; 2,3 = pair 1; 4..8 = instances.
        assert_eq!(
            split_probe_gallery(&batch(2, 4)),
            (vec![0, 2, 4, 5], vec![1, 3, 6, 7])
        );
        // Odd instance count: A takes the larger half, as torch.chunk does.
        assert_eq!(
            split_probe_gallery(&batch(1, 3)),
            (vec![0, 2, 3], vec![1, 4])
        );
        assert_eq!(split_probe_gallery(&batch(0, 2)), (vec![0], vec![1]));
        assert_eq!(
            split_probe_gallery(&batch(3, 0)),
            (vec![0, 2, 4], vec![1, 3, 5])
        );
    }

    #[test]
    fn split_of_a_real_batch_pairs_labels() {
        let f = faces(50, 4);
        let mut loader = DualLoader::new(
            &f,
            LoaderConfig {
                identities: 5,
                instances: 6,
            },
            1,
        );
        let mut batch = Batch::default();
        loader.next_batch(&f, &mut batch);
        let (a, b) = split_probe_gallery(&batch);
        assert_eq!((a.len(), b.len()), (8, 8));
        for p in 0..5 {
            assert_eq!(batch.labels[a[p]], batch.labels[b[p]]);
        }
        let all: HashSet<usize> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), batch.len());
    }

    #[test]
    #[should_panic(expected = "before instance rows")]
    fn split_rejects_interleaved_rows() {
        let batch = Batch {
            inputs: vec![0.0; 4 * INPUT_DIM],
            labels: vec![0; 4],
            source: vec![
                Source::Identity,
                Source::Identity,
                Source::Instance,
                Source::Identity,
            ],
            samples: Vec::new(),
        };
        split_probe_gallery(&batch);
    }
}
