//! Real face images: data sets of aligned faces grouped by identity, read from disk.
//!
//! Two layouts are read, behind one trait ([`FaceImages`]): insightface's RecordIO pack
//! (`train.rec` + `train.idx`, [`recordio`]) and a folder per identity ([`folder`]). Images come
//! out as CHW `f32` at [`FACE_SIZE`]×[`FACE_SIZE`] — the aligned 112×112 crops insightface trains
//! on — with insightface's pixel normalisation (x/255 − 0.5)/0.5, so values lie in [−1, 1]. Other
//! sizes are resized (bilinear), with one message per data set saying so. [`split`] holds identities
//! out (never single images), [`pairs`] reads LFW-style verification pairs, and [`prefetch`]
//! decodes batches off the training thread.

pub mod config;
pub mod feed;
pub mod folder;
pub mod pairs;
pub mod prefetch;
pub mod recordio;
pub mod split;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use crate::data::loaders::Sample;
pub use config::{ImageLayout, ImagesConfig, PairBenchmark};
pub use folder::ImageFolder;
pub use pairs::{read_pairs, Pair};
pub use prefetch::{Batch, Prefetcher};
pub use recordio::RecordIo;
pub use split::{split_identities, IdentitySplit, IdentitySubset};

/// Side of the square aligned face crop every image is delivered at.
pub const FACE_SIZE: usize = 112;

/// The colour layout images are delivered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channels {
    /// One channel, luma (grey-level sources such as ORL stay as they are).
    Grey,
    /// Three channels, R, G, B (grey sources are replicated).
    Rgb,
}

impl Channels {
    /// Number of channels C.
    pub fn count(&self) -> usize {
        match self {
            Channels::Grey => 1,
            Channels::Rgb => 3,
        }
    }

    /// Floats of one image, C·112·112.
    pub fn sample_len(&self) -> usize {
        self.count() * FACE_SIZE * FACE_SIZE
    }
}

/// A set of face images grouped by identity. Identities are numbered 0..[`num_identities`], the
/// images of each 0..[`num_instances`], both in an order fixed by the data on disk.
///
/// [`num_identities`]: FaceImages::num_identities
/// [`num_instances`]: FaceImages::num_instances
pub trait FaceImages: Send + Sync {
    /// Number of identities.
    fn num_identities(&self) -> usize;

    /// Number of images of `identity`.
    fn num_instances(&self, identity: usize) -> usize;

    /// The identity's name on disk (folder name, or the label of a RecordIO pack).
    fn identity_name(&self, identity: usize) -> &str;

    /// The channel layout [`load`](FaceImages::load) writes.
    fn channels(&self) -> Channels;

    /// Decodes one image into `out` (CHW, length [`Channels::sample_len`]), mirrored if `flip`.
    /// On error `out` is left untouched.
    fn load(&self, identity: usize, instance: usize, flip: bool, out: &mut [f32]) -> Result<()>;

    /// Total number of images.
    fn num_images(&self) -> usize {
        (0..self.num_identities())
            .map(|i| self.num_instances(i))
            .sum()
    }
}

/// Turns encoded image bytes (JPEG, PNG, PNM, BMP) into normalised CHW floats.
#[derive(Debug)]
pub(crate) struct Decoder {
    channels: Channels,
    /// Whether the one-time "resizing" message was printed for this data set.
    told_resize: AtomicBool,
}

impl Decoder {
    pub(crate) fn new(channels: Channels) -> Self {
        Decoder {
            channels,
            told_resize: AtomicBool::new(false),
        }
    }

    pub(crate) fn channels(&self) -> Channels {
        self.channels
    }

    /// Decodes `bytes` into `out`. `path` and `what` (e.g. `record 17`, or empty) name the image in
    /// errors and in the resize message.
    pub(crate) fn decode(
        &self,
        bytes: &[u8],
        path: &Path,
        what: &str,
        flip: bool,
        out: &mut [f32],
    ) -> Result<()> {
        let at = if what.is_empty() {
            String::new()
        } else {
            format!("{what}: ")
        };
        if out.len() != self.channels.sample_len() {
            return Err(Error::Other(format!(
                "image buffer holds {} floats, expected {} (C·112·112 for {:?})",
                out.len(),
                self.channels.sample_len(),
                self.channels
            )));
        }
        let img = image::load_from_memory(bytes).map_err(|e| {
            Error::dataset(
                path,
                format!("{at}cannot decode the image ({e}); the file is corrupt or not a JPEG/PNG/PNM/BMP image — replace or remove it"),
            )
        })?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        if (w, h) != (FACE_SIZE, FACE_SIZE) && !self.told_resize.swap(true, Ordering::Relaxed) {
            eprintln!(
                "note: {}: {at}images are {w}×{h}, resizing to {FACE_SIZE}×{FACE_SIZE} (the aligned-face convention); \
                 further images of this data set are resized without notice",
                path.display()
            );
        }
        let n = FACE_SIZE as u32;
        let filter = image::imageops::FilterType::Triangle;
        let plane = FACE_SIZE * FACE_SIZE;
        let normalise = |v: u8| (v as f32 / 255.0 - 0.5) / 0.5;
        match self.channels {
            Channels::Grey => {
                let mut g = img.to_luma8();
                if (w, h) != (FACE_SIZE, FACE_SIZE) {
                    g = image::imageops::resize(&g, n, n, filter);
                }
                for (i, p) in g.pixels().enumerate() {
                    out[mirror(i, flip)] = normalise(p.0[0]);
                }
            }
            Channels::Rgb => {
                let mut c = img.to_rgb8();
                if (w, h) != (FACE_SIZE, FACE_SIZE) {
                    c = image::imageops::resize(&c, n, n, filter);
                }
                for (i, p) in c.pixels().enumerate() {
                    let j = mirror(i, flip);
                    for (ch, &v) in p.0.iter().enumerate() {
                        out[ch * plane + j] = normalise(v);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Position in the plane of pixel `i` (row-major), mirrored left–right if `flip`.
fn mirror(i: usize, flip: bool) -> usize {
    if flip {
        let (y, x) = (i / FACE_SIZE, i % FACE_SIZE);
        y * FACE_SIZE + FACE_SIZE - 1 - x
    } else {
        i
    }
}

/// Checks that `identity`/`instance` exist in `images`, naming `path` otherwise.
pub(crate) fn check_index(
    images: &dyn FaceImages,
    path: &Path,
    identity: usize,
    instance: usize,
) -> Result<()> {
    if identity >= images.num_identities() {
        return Err(Error::dataset(
            path,
            format!(
                "identity {identity} out of range: the data set has {} identities",
                images.num_identities()
            ),
        ));
    }
    let n = images.num_instances(identity);
    if instance >= n {
        return Err(Error::dataset(
            path,
            format!(
                "image {instance} of identity `{}` out of range: it has {n} images",
                images.identity_name(identity)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_images {
    //! Tiny encoders for tests: images written with known pixels.

    /// A binary PGM (P5) of `w`×`h` with pixel (x, y) = f(x, y).
    pub fn pgm(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        let mut v = format!("P5\n{w} {h}\n255\n").into_bytes();
        for y in 0..h {
            for x in 0..w {
                v.push(f(x, y));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_normalises_and_flips() {
        let d = Decoder::new(Channels::Grey);
        // Pixel value = x (column), so a flip maps column x to 111 − x.
        let bytes = test_images::pgm(112, 112, |x, _| x as u8);
        let mut out = vec![0.0; Channels::Grey.sample_len()];
        d.decode(&bytes, Path::new("a.pgm"), "", false, &mut out)
            .unwrap();
        assert_eq!(out[0], -1.0);
        assert!((out[5] - (5.0 / 127.5 - 1.0)).abs() < 1e-6);
        d.decode(&bytes, Path::new("a.pgm"), "", true, &mut out)
            .unwrap();
        assert!((out[0] - (111.0 / 127.5 - 1.0)).abs() < 1e-6);
        assert!((out[112 + 111] + 1.0).abs() < 1e-6);

        let rgb = Decoder::new(Channels::Rgb);
        let mut out = vec![0.0; Channels::Rgb.sample_len()];
        rgb.decode(&bytes, Path::new("a.pgm"), "", false, &mut out)
            .unwrap();
        // Grey replicated into R, G and B.
        let plane = FACE_SIZE * FACE_SIZE;
        assert_eq!(out[7], out[plane + 7]);
        assert_eq!(out[7], out[2 * plane + 7]);
    }

    #[test]
    fn resizes_other_sizes_and_names_corrupt_files() {
        let d = Decoder::new(Channels::Grey);
        let bytes = test_images::pgm(92, 112, |_, _| 255);
        let mut out = vec![0.0; Channels::Grey.sample_len()];
        d.decode(&bytes, Path::new("orl.pgm"), "", false, &mut out)
            .unwrap();
        assert!(out.iter().all(|&v| (v - 1.0).abs() < 1e-6));

        let before = out.clone();
        let err = d
            .decode(
                b"P5\n92 112\n255\n\x01\x02",
                Path::new("bad.pgm"),
                "",
                false,
                &mut out,
            )
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.pgm: cannot decode"), "{err}");
        assert_eq!(out, before, "nothing written on error");
    }
}
