//! An experiment's data at run time, behind one interface whatever its kind: the synthetic
//! benchmark rendered on the fly, or face images decoded from disk. Both feed the same dual
//! loaders and give the held-out identities for open-set evaluation.

use crate::data::images::config::ImageSplit;
use crate::data::images::feed::ImageFeed;
use crate::data::images::prefetch::load_batch;
use crate::data::images::{FaceImages, IdentitySubset, Sample};
use crate::data::loaders::{render_samples, Batch, DualLoader, LoaderState, TrainingIdentities};
use crate::data::resident::{ResidentLayout, SetSize};
use crate::data::synthetic::SyntheticFaces;
use crate::error::{Error, Result};
use crate::eval::EvalSplit;
use crate::nets::network::BackboneInput;
use crate::Experiment;

/// The training batches and evaluation sets of one experiment.
pub struct TrainingData {
    kind: Kind,
    batch: Batch,
}

// One per run, moved rarely: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Kind {
    Synthetic {
        faces: SyntheticFaces,
        loader: DualLoader,
    },
    Images {
        split: ImageSplit,
        feed: ImageFeed,
        eval_instances: Option<usize>,
        what: String,
    },
}

fn no_data(exp: &Experiment) -> Error {
    Error::Other(format!(
        "experiment `{}` has neither `data` (synthetic) nor `images`",
        exp.name
    ))
}

fn open_split(exp: &Experiment) -> Result<ImageSplit> {
    let cfg = exp.images.as_ref().ok_or_else(|| no_data(exp))?;
    let BackboneInput::Images(channels) = exp.backbone.input() else {
        return Err(Error::Other(format!(
            "backbone {:?} reads synthetic vectors, not images: choose TinyIResNet or IResNet18",
            exp.backbone
        )));
    };
    cfg.split(cfg.open(channels)?, exp.seed)
}

impl TrainingData {
    /// The data of `exp`, with its loaders seeded from the experiment.
    pub fn new(exp: &Experiment) -> Result<Self> {
        let loader_seed = exp.seed.wrapping_add(1);
        let kind = match (&exp.data, &exp.images) {
            (Some(cfg), _) => {
                let faces = SyntheticFaces::new(cfg, exp.seed);
                let loader = DualLoader::new(&faces, exp.train.loaders, loader_seed);
                Kind::Synthetic { faces, loader }
            }
            (None, Some(cfg)) => {
                let split = open_split(exp)?;
                let feed = ImageFeed::new(
                    split.train.clone(),
                    exp.train.loaders,
                    loader_seed,
                    cfg.flip,
                );
                Kind::Images {
                    split,
                    feed,
                    eval_instances: cfg.eval_instances,
                    what: format!("{} ({:?})", cfg.root.display(), cfg.layout),
                }
            }
            (None, None) => return Err(no_data(exp)),
        };
        Ok(TrainingData {
            kind,
            batch: Batch::default(),
        })
    }

    /// The next training batch.
    pub fn next_batch(&mut self) -> Result<&Batch> {
        match &mut self.kind {
            Kind::Synthetic { faces, loader } => loader.next_batch(faces, &mut self.batch),
            Kind::Images { feed, .. } => feed.next_batch(&mut self.batch)?,
        }
        Ok(&self.batch)
    }

    /// The next training batch without its inputs (`inputs` empty): labels, sources and samples,
    /// for inputs kept on the device. A run takes its batches one way or the other, never both.
    pub fn next_rows(&mut self) -> Result<&Batch> {
        match &mut self.kind {
            Kind::Synthetic { faces, loader } => {
                loader.next_rows(faces, &mut self.batch);
                self.batch.inputs.clear();
            }
            Kind::Images { feed, .. } => feed.next_rows(&mut self.batch),
        }
        Ok(&self.batch)
    }

    /// The size of the training set kept on the device, with rows of `row_len` floats (the
    /// network's input size), without laying it out.
    pub fn resident_size(&self, row_len: usize) -> SetSize {
        match &self.kind {
            Kind::Synthetic { faces, .. } => SetSize::of(faces, false, row_len),
            Kind::Images { feed, .. } => SetSize::of(feed.images(), feed.flips(), row_len),
        }
    }

    /// Where each training sample sits in the set kept on the device; rows of `row_len` floats
    /// (the network's input size).
    pub fn resident_layout(&self, row_len: usize) -> ResidentLayout {
        match &self.kind {
            Kind::Synthetic { faces, .. } => ResidentLayout::new(faces, false, row_len),
            Kind::Images { feed, .. } => ResidentLayout::new(feed.images(), feed.flips(), row_len),
        }
    }

    /// Every row of `layout` (which [`TrainingData::resident_layout`] gave), rendered or decoded
    /// in parallel, each row the floats a batch would hold for its sample.
    pub fn render_all(&self, layout: &ResidentLayout) -> Result<Vec<f32>> {
        let samples = layout.samples();
        match &self.kind {
            Kind::Synthetic { faces, .. } => {
                let mut out = Vec::new();
                render_samples(faces, &samples, &mut out);
                Ok(out)
            }
            Kind::Images { feed, .. } => Ok(load_batch(feed.images(), samples)?.data),
        }
    }

    /// Where the loaders stand after the batches taken so far.
    pub fn state(&self) -> LoaderState {
        match &self.kind {
            Kind::Synthetic { loader, .. } => loader.state(),
            Kind::Images { feed, .. } => feed.state(),
        }
    }

    /// Moves the loaders to `state`, saved after `step` batches of the same experiment.
    pub fn restore(&mut self, state: &LoaderState, step: usize) -> Result<()> {
        match &mut self.kind {
            Kind::Synthetic { loader, .. } => loader.restore(state),
            Kind::Images { feed, .. } => feed.restore(state, step),
        }
    }

    /// Inputs and labels of the held-out identities of `split`: the test identities, or the
    /// validation identities.
    pub fn split_set(&self, split: EvalSplit) -> Result<(Vec<f32>, Vec<usize>)> {
        match &self.kind {
            Kind::Synthetic { faces, .. } => Ok(faces.split_set(split)),
            Kind::Images {
                split: parts,
                eval_instances,
                ..
            } => {
                let ids = match split {
                    EvalSplit::Test => &parts.test,
                    EvalSplit::Validation => &parts.validation,
                };
                held_out_images(ids, *eval_instances)
            }
        }
    }

    /// The synthetic benchmark, when the data is synthetic.
    pub fn synthetic(&self) -> Option<&SyntheticFaces> {
        match &self.kind {
            Kind::Synthetic { faces, .. } => Some(faces),
            Kind::Images { .. } => None,
        }
    }

    /// Number of training identities N.
    pub fn num_train_identities(&self) -> usize {
        match &self.kind {
            Kind::Synthetic { faces, .. } => faces.num_train_identities(),
            Kind::Images { split, .. } => split.train.num_identities(),
        }
    }

    /// Number of training instances (images).
    pub fn num_train_instances(&self) -> usize {
        match &self.kind {
            Kind::Synthetic { faces, .. } => faces.num_train_instances(),
            Kind::Images { split, .. } => split.train.num_images(),
        }
    }

    /// One line on where the data comes from, for the plan printed before training.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Synthetic { .. } => "synthetic identity benchmark".into(),
            Kind::Images { split, what, .. } => format!(
                "images {what}: {} training, {} validation, {} test identities",
                split.train.num_identities(),
                split.validation.num_identities(),
                split.test.num_identities()
            ),
        }
    }
}

/// Every image (the first `at_most` of each identity, when given) of `ids`, unmirrored, with
/// the identity index as label.
fn held_out_images(ids: &IdentitySubset, at_most: Option<usize>) -> Result<(Vec<f32>, Vec<usize>)> {
    let mut samples = Vec::new();
    let mut labels = Vec::new();
    for identity in 0..ids.num_identities() {
        let n = ids.instances_of(identity);
        for instance in 0..at_most.map_or(n, |m| m.min(n)) {
            samples.push(Sample {
                identity,
                instance,
                flip: false,
            });
            labels.push(identity);
        }
    }
    Ok((load_batch(ids, samples)?.data, labels))
}
