//! The training side of an image data set: the dual loaders choose each step's rows over the
//! training identities exactly as on the synthetic benchmark, and a [`Prefetcher`] decodes the
//! next steps' images on another thread while the current step trains.
//!
//! Everything a batch holds is fixed by the loader state and the step number: the rows by the
//! loaders, each row's horizontal flip by a counter-based hash of (seed, step, row). So a run is
//! reproducible, and resuming from a saved [`LoaderState`] and step gives the same batches.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::data::images::{FaceImages, IdentitySubset, Prefetcher, Sample};
use crate::data::loaders::{Batch, DualLoader, LoaderConfig, LoaderState, Source};
use crate::data::synthetic::mix64;
use crate::error::{Error, Result};

/// Steps decoded ahead of the one training.
const AHEAD: usize = 2;

/// A step pushed to the prefetcher and not yet taken.
struct Pending {
    /// The loader state before this step's rows were drawn.
    before: LoaderState,
    labels: Vec<usize>,
    source: Vec<Source>,
    samples: Vec<Sample>,
}

/// Batches of training images for the dual loaders.
pub struct ImageFeed {
    images: Arc<IdentitySubset>,
    loader: DualLoader,
    prefetcher: Prefetcher,
    pending: VecDeque<Pending>,
    /// The step whose rows are drawn next.
    next_step: u64,
    seed: u64,
    flip: bool,
    rows: Batch,
}

impl ImageFeed {
    /// The loaders over `images` (the training identities), seeded by `seed`; `flip` mirrors a
    /// pseudorandom half of the training images.
    pub fn new(images: Arc<IdentitySubset>, cfg: LoaderConfig, seed: u64, flip: bool) -> Self {
        let loader = DualLoader::new(&*images, cfg, seed);
        ImageFeed {
            prefetcher: Prefetcher::new(images.clone() as Arc<dyn FaceImages>, AHEAD),
            images,
            loader,
            pending: VecDeque::new(),
            next_step: 0,
            seed,
            flip,
            rows: Batch::default(),
        }
    }

    /// The training identities.
    pub fn images(&self) -> &IdentitySubset {
        &self.images
    }

    /// Whether training images are mirrored at random.
    pub fn flips(&self) -> bool {
        self.flip
    }

    /// Fills `out` with the next step's images (CHW rows), labels and sources.
    pub fn next_batch(&mut self, out: &mut Batch) -> Result<()> {
        self.fill()?;
        let step = self
            .pending
            .pop_front()
            .expect("fill leaves a step pending");
        let decoded = self.prefetcher.pop()?;
        out.inputs = decoded.data;
        out.labels = step.labels;
        out.source = step.source;
        out.samples = step.samples;
        // Start decoding the step after, so it overlaps this one's training.
        self.fill()
    }

    /// Fills `out` with the next step's labels, sources and samples (flips included) without
    /// decoding any image, for inputs already on the device; `out.inputs` is emptied. A feed
    /// takes its batches one way or the other, never both.
    ///
    /// # Panics
    /// If [`ImageFeed::next_batch`] has queued batches for decoding.
    pub fn next_rows(&mut self, out: &mut Batch) {
        assert!(
            self.pending.is_empty(),
            "ImageFeed::next_rows after next_batch: the feed has batches decoding"
        );
        let samples = self.draw();
        out.inputs.clear();
        out.labels.clone_from(&self.rows.labels);
        out.source.clone_from(&self.rows.source);
        out.samples = samples;
    }

    /// Where the loaders stand after the batches taken so far (batches decoded ahead are not
    /// counted).
    pub fn state(&self) -> LoaderState {
        self.pending
            .front()
            .map_or_else(|| self.loader.state(), |p| p.before)
    }

    /// Moves the feed to where [`ImageFeed::state`] found a feed of the same data and seed
    /// after `step` batches.
    pub fn restore(&mut self, state: &LoaderState, step: usize) -> Result<()> {
        self.loader.restore(state)?;
        // Batches decoded ahead belong to the old position: drop them with their decoder.
        self.prefetcher = Prefetcher::new(self.images.clone() as Arc<dyn FaceImages>, AHEAD);
        self.pending.clear();
        self.next_step = step as u64;
        Ok(())
    }

    /// Draws and queues steps until [`AHEAD`] are decoding.
    fn fill(&mut self) -> Result<()> {
        while self.pending.len() < AHEAD {
            let before = self.loader.state();
            let step = self.next_step;
            let samples = self.draw();
            self.prefetcher
                .push(samples.clone())
                .map_err(|e| Error::Other(format!("queueing the images of step {step}: {e}")))?;
            self.pending.push_back(Pending {
                before,
                labels: self.rows.labels.clone(),
                source: self.rows.source.clone(),
                samples,
            });
        }
        Ok(())
    }

    /// Draws the next step's rows into `self.rows` and returns its samples with their flips.
    fn draw(&mut self) -> Vec<Sample> {
        self.loader.next_rows(&*self.images, &mut self.rows);
        let step = self.next_step;
        self.next_step += 1;
        let (flip, seed) = (self.flip, self.seed);
        self.rows
            .samples
            .iter()
            .enumerate()
            .map(|(r, s)| Sample {
                flip: flip && flips(seed, step, r),
                ..*s
            })
            .collect()
    }
}

/// Whether row `row` of step `step` is mirrored: one bit of a hash of (seed, step, row).
fn flips(seed: u64, step: u64, row: usize) -> bool {
    mix64(mix64(seed ^ 0x666c_6970) ^ mix64(step) ^ (row as u64).rotate_left(32)) & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::test_images::pgm;
    use crate::data::images::{Channels, ImageFolder};

    fn subset(ids: usize, per: usize) -> (tempfile::TempDir, Arc<IdentitySubset>) {
        let dir = tempfile::tempdir().unwrap();
        for id in 0..ids {
            let d = dir.path().join(format!("p{id}"));
            std::fs::create_dir(&d).unwrap();
            for k in 0..per {
                std::fs::write(
                    d.join(format!("{k}.pgm")),
                    pgm(112, 112, |x, y| {
                        ((3 * x + y + 31 * id + 11 * k) % 256) as u8
                    }),
                )
                .unwrap();
            }
        }
        let all: Arc<dyn FaceImages> =
            Arc::new(ImageFolder::open(dir.path(), Channels::Grey).unwrap());
        let sub = Arc::new(IdentitySubset::new(all, (0..ids).collect()));
        (dir, sub)
    }

    const CFG: LoaderConfig = LoaderConfig {
        identities: 2,
        instances: 2,
    };

    #[test]
    fn batches_hold_the_rows_images_and_resume_identically() {
        let (_dir, images) = subset(5, 3);
        let mut feed = ImageFeed::new(images.clone(), CFG, 9, true);
        let mut batches = Vec::new();
        let mut states = Vec::new();
        for _ in 0..6 {
            states.push(feed.state());
            let mut b = Batch::default();
            feed.next_batch(&mut b).unwrap();
            assert_eq!(b.labels.len(), 6);
            assert_eq!(b.inputs.len(), 6 * 112 * 112);
            // Identity pairs first, each pair one label.
            assert_eq!(b.labels[0], b.labels[1]);
            batches.push(b);
        }
        // The loaders draw the same rows as on any other training set, and each row is its
        // image, mirrored when the row's flip bit says so (both outcomes occur).
        let mut loader = DualLoader::new(&*images, CFG, 9);
        let mut rows = Batch::default();
        let mut seen = [false; 2];
        let len = 112 * 112;
        for (step, b) in batches.iter().enumerate() {
            let drawn = loader.next_rows(&*images, &mut rows).to_vec();
            assert_eq!(rows.labels, b.labels);
            for (r, &(_, identity, instance)) in drawn.iter().enumerate() {
                let flip = flips(9, step as u64, r);
                seen[flip as usize] = true;
                let mut want = vec![0.0; len];
                images.load(identity, instance, flip, &mut want).unwrap();
                assert_eq!(&b.inputs[r * len..(r + 1) * len], &want[..]);
            }
        }
        assert!(seen[0] && seen[1], "both flip outcomes in six steps");
        // Without decoding, a twin feed draws the same rows, flips included.
        let mut rows_only = ImageFeed::new(images.clone(), CFG, 9, true);
        for b in &batches {
            let mut got = Batch::default();
            rows_only.next_rows(&mut got);
            assert_eq!(
                (&got.labels, &got.source, &got.samples),
                (&b.labels, &b.source, &b.samples)
            );
            assert!(got.inputs.is_empty());
        }
        // Resuming after step 3 gives steps 3.. again.
        let mut resumed = ImageFeed::new(images, CFG, 9, true);
        resumed.restore(&states[3], 3).unwrap();
        for b in &batches[3..] {
            let mut got = Batch::default();
            resumed.next_batch(&mut got).unwrap();
            assert_eq!(&got, b);
        }
    }
}
