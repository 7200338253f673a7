//! An image data set as an experiment's data: where it lies, its layout, and how its identities
//! are split into training, validation and held-out test identities (by identity, never by
//! image, so evaluation is open-set).

use std::path::PathBuf;
use std::sync::Arc;

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::data::images::{Channels, FaceImages, IdentitySubset, ImageFolder, RecordIo};
use crate::error::{Error, FieldError, FieldResult, Result};

/// How the data set is laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageLayout {
    /// One folder per identity holding its images.
    Folder,
    /// insightface's RecordIO pack: `train.rec` + `train.idx` in the folder.
    RecordIo,
}

/// Face images from disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    /// The data set's folder; a relative path is taken from the working directory.
    pub root: PathBuf,
    /// `Folder` or `RecordIo`.
    pub layout: ImageLayout,
    /// Identities held out for the open-set test, never trained on.
    pub eval_identities: usize,
    /// Further identities held out for choosing hyperparameters (0 = none).
    #[serde(default)]
    pub validation_identities: usize,
    /// Images scored per held-out identity: the first n in the data set's order, or all (`None`).
    #[serde(default)]
    pub eval_instances: Option<usize>,
    /// Random horizontal flips of training images (insightface's augmentation).
    #[serde(default = "flip_default")]
    pub flip: bool,
    /// A verification benchmark scored after training besides the open-set test, e.g. LFW.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<PairBenchmark>,
}

/// A pair-list benchmark: a folder of images (one sub-folder per identity, e.g. LFW unpacked) and
/// its pair list in LFW's `pairs.txt` format (image numbers count from 1 in file-name order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairBenchmark {
    /// The benchmark's image folder; a relative path is taken from the working directory.
    pub root: PathBuf,
    /// The pair list.
    pub list: PathBuf,
}

fn flip_default() -> bool {
    true
}

crate::sweepable!(ImagesConfig {
    root,
    layout,
    eval_identities,
    validation_identities,
    eval_instances,
    flip,
    pairs,
} nested {});

/// The three parts of an image data set, identities renumbered from 0 within each.
#[derive(Clone)]
pub struct ImageSplit {
    /// Identities trained on; labels are their indices here.
    pub train: Arc<IdentitySubset>,
    /// Identities held out for choosing hyperparameters (may be empty).
    pub validation: IdentitySubset,
    /// Identities held out for the open-set test.
    pub test: IdentitySubset,
}

impl ImagesConfig {
    /// Range checks that need no data on disk.
    pub fn validate(&self) -> FieldResult {
        if self.root.as_os_str().is_empty() {
            return Err(FieldError::new(
                "root",
                "empty path: give the data set's folder",
            ));
        }
        if self.eval_identities < 2 {
            return Err(FieldError::new(
                "eval_identities",
                format!(
                    "{}: open-set evaluation needs at least 2 held-out identities (impostor pairs)",
                    self.eval_identities
                ),
            ));
        }
        if let Some(n) = self.eval_instances {
            if n < 2 {
                return Err(FieldError::new(
                    "eval_instances",
                    format!("Some({n}): at least 2 images per identity make a genuine pair; or None for all"),
                ));
            }
        }
        Ok(())
    }

    /// Opens the data set, decoding to `channels`.
    pub fn open(&self, channels: Channels) -> Result<Arc<dyn FaceImages>> {
        if !self.root.is_dir() {
            let hint = if self.root.starts_with("data/orl") {
                " (run `bash scripts/fetch-orl.sh` first)"
            } else {
                ""
            };
            return Err(Error::dataset(
                &self.root,
                format!(
                    "no such folder{hint}; a relative root is taken from the working directory {}",
                    std::env::current_dir()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(match self.layout {
            ImageLayout::Folder => Arc::new(ImageFolder::open(&self.root, channels)?),
            ImageLayout::RecordIo => Arc::new(RecordIo::open_dir(&self.root, channels)?),
        })
    }

    /// The pair benchmark's images (decoded to `channels`) and its pairs, when there is one.
    pub fn open_pairs(
        &self,
        channels: Channels,
    ) -> Result<Option<(ImageFolder, Vec<crate::data::images::Pair>)>> {
        let Some(bench) = &self.pairs else {
            return Ok(None);
        };
        let images = ImageFolder::open(&bench.root, channels)?;
        let pairs = crate::data::images::read_pairs(&bench.list, &images)?;
        Ok(Some((images, pairs)))
    }

    /// Splits `images` by identity, chosen by `seed`: `eval_identities` test identities, then
    /// `validation_identities` validation identities, the rest for training. Held-out identities
    /// need two images (a genuine pair); the split fails, naming one, otherwise.
    pub fn split(&self, images: Arc<dyn FaceImages>, seed: u64) -> Result<ImageSplit> {
        let n = images.num_identities();
        let held = self.eval_identities + self.validation_identities;
        if held >= n {
            return Err(Error::dataset(
                &self.root,
                format!(
                    "{n} identities: holding out {} for the test and {} for validation leaves none \
                     to train on; lower eval_identities / validation_identities",
                    self.eval_identities, self.validation_identities
                ),
            ));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let sorted = |ids: &[usize]| {
            let mut v = ids.to_vec();
            v.sort_unstable();
            v
        };
        let test = sorted(&order[..self.eval_identities]);
        let validation = sorted(&order[self.eval_identities..held]);
        let train = sorted(&order[held..]);
        for &i in test.iter().chain(&validation) {
            if images.num_instances(i) < 2 {
                return Err(Error::dataset(
                    &self.root,
                    format!(
                        "identity `{}` was held out for evaluation but has one image: no genuine \
                         pair; another seed gives another split, or remove single-image identities",
                        images.identity_name(i)
                    ),
                ));
            }
        }
        Ok(ImageSplit {
            train: Arc::new(IdentitySubset::new(images.clone(), train)),
            validation: IdentitySubset::new(images.clone(), validation),
            test: IdentitySubset::new(images, test),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::test_images::pgm;

    fn folder(ids: usize, per: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for id in 0..ids {
            let d = dir.path().join(format!("p{id:02}"));
            std::fs::create_dir(&d).unwrap();
            for k in 0..per {
                std::fs::write(
                    d.join(format!("{k}.pgm")),
                    pgm(112, 112, |x, y| ((x + y + 7 * id + k) % 256) as u8),
                )
                .unwrap();
            }
        }
        dir
    }

    fn config(root: &std::path::Path) -> ImagesConfig {
        ImagesConfig {
            root: root.to_path_buf(),
            layout: ImageLayout::Folder,
            eval_identities: 3,
            validation_identities: 2,
            eval_instances: None,
            flip: true,
            pairs: None,
        }
    }

    #[test]
    fn splits_by_identity_into_three_disjoint_parts() {
        let dir = folder(10, 2);
        let cfg = config(dir.path());
        let images = cfg.open(Channels::Grey).unwrap();
        let s = cfg.split(images.clone(), 4).unwrap();
        let names = |p: &dyn FaceImages| -> Vec<String> {
            (0..p.num_identities())
                .map(|i| p.identity_name(i).to_string())
                .collect()
        };
        let (tr, va, te) = (names(&*s.train), names(&s.validation), names(&s.test));
        assert_eq!((tr.len(), va.len(), te.len()), (5, 2, 3));
        let mut all: Vec<String> = tr.iter().chain(&va).chain(&te).cloned().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10);
        let again = cfg.split(images, 4).unwrap();
        assert_eq!(names(&again.test), te);
    }

    #[test]
    fn bad_settings_fail_clearly() {
        let dir = folder(4, 2);
        let mut cfg = config(dir.path());
        let images = cfg.open(Channels::Grey).unwrap();
        let msg = cfg.split(images, 0).err().unwrap().to_string();
        assert!(msg.contains("leaves none"), "{msg}");
        cfg.eval_identities = 1;
        assert_eq!(cfg.validate().unwrap_err().field, "eval_identities");
        cfg.root = dir.path().join("absent");
        let msg = cfg.open(Channels::Grey).err().unwrap().to_string();
        assert!(msg.contains("no such folder"), "{msg}");
    }

    #[test]
    fn a_held_out_identity_with_one_image_is_named() {
        let dir = folder(6, 1);
        let cfg = config(dir.path());
        let images = cfg.open(Channels::Grey).unwrap();
        let msg = cfg.split(images, 0).err().unwrap().to_string();
        assert!(msg.contains("has one image"), "{msg}");
    }
}
