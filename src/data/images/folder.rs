//! The image-folder layout: one sub-folder per identity under a root, the identity's images
//! inside (`root/<identity>/<image>.{jpg,jpeg,png,pgm,ppm,pnm,bmp}`), as torchvision's
//! `ImageFolder` and most face sets unpacked from archives (ORL, LFW). Identities and images are
//! ordered by file name (byte order), so the numbering does not depend on the file system.

use std::path::{Path, PathBuf};

use crate::data::images::{check_index, Channels, Decoder, FaceImages};
use crate::error::{Error, Result};

/// File-name extensions read as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "pgm", "ppm", "pnm", "bmp"];

/// A folder of identity folders.
#[derive(Debug)]
pub struct ImageFolder {
    root: PathBuf,
    names: Vec<String>,
    /// Image paths per identity, sorted.
    files: Vec<Vec<PathBuf>>,
    decoder: Decoder,
}

impl ImageFolder {
    /// Lists `root`. Fails, naming the folder, when `root` has no identity folder or an identity
    /// folder has no image; files with other extensions and hidden entries are ignored.
    pub fn open(root: impl AsRef<Path>, channels: Channels) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let mut dirs = Vec::new();
        for entry in sorted_entries(&root)? {
            if entry.is_dir() {
                dirs.push(entry);
            }
        }
        if dirs.is_empty() {
            return Err(Error::dataset(
                &root,
                "no identity folders: expected one sub-folder per identity holding its images",
            ));
        }
        let mut names = Vec::with_capacity(dirs.len());
        let mut files = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let images: Vec<PathBuf> = sorted_entries(&dir)?
                .into_iter()
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            if images.is_empty() {
                return Err(Error::dataset(
                    &dir,
                    format!(
                        "identity folder holds no image (looked for {}); add its images or remove the folder",
                        IMAGE_EXTENSIONS.join(", ")
                    ),
                ));
            }
            names.push(dir.file_name().unwrap().to_string_lossy().into_owned());
            files.push(images);
        }
        Ok(ImageFolder {
            root,
            names,
            files,
            decoder: Decoder::new(channels),
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of one image.
    pub fn path(&self, identity: usize, instance: usize) -> &Path {
        &self.files[identity][instance]
    }
}

impl FaceImages for ImageFolder {
    fn num_identities(&self) -> usize {
        self.files.len()
    }

    fn num_instances(&self, identity: usize) -> usize {
        self.files[identity].len()
    }

    fn identity_name(&self, identity: usize) -> &str {
        &self.names[identity]
    }

    fn channels(&self) -> Channels {
        self.decoder.channels()
    }

    fn load(&self, identity: usize, instance: usize, flip: bool, out: &mut [f32]) -> Result<()> {
        check_index(self, &self.root, identity, instance)?;
        let path = &self.files[identity][instance];
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.decoder.decode(&bytes, path, "", flip, out)
    }
}

/// Non-hidden entries of `dir`, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::test_images::pgm;

    /// root/b/{2,10}.pgm (value 20·k), root/a/1.pgm, root/a/notes.txt.
    fn tiny_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (id, files) in [("b", vec!["2.pgm", "10.pgm"]), ("a", vec!["1.pgm"])] {
            std::fs::create_dir(dir.path().join(id)).unwrap();
            for f in files {
                let v: u8 = f.split('.').next().unwrap().parse::<u8>().unwrap() * 20;
                std::fs::write(dir.path().join(id).join(f), pgm(112, 112, |_, _| v)).unwrap();
            }
        }
        std::fs::write(dir.path().join("a/notes.txt"), "not an image").unwrap();
        dir
    }

    #[test]
    fn lists_identities_and_images_in_name_order() {
        let dir = tiny_folder();
        let f = ImageFolder::open(dir.path(), Channels::Grey).unwrap();
        assert_eq!(f.num_identities(), 2);
        assert_eq!((f.identity_name(0), f.identity_name(1)), ("a", "b"));
        assert_eq!((f.num_instances(0), f.num_instances(1)), (1, 2));
        assert_eq!(f.num_images(), 3);
        // Byte order: "10.pgm" < "2.pgm".
        let mut out = vec![0.0; Channels::Grey.sample_len()];
        f.load(1, 0, false, &mut out).unwrap();
        assert!((out[0] - (200.0 / 127.5 - 1.0)).abs() < 1e-6);
        f.load(1, 1, false, &mut out).unwrap();
        assert!((out[0] - (40.0 / 127.5 - 1.0)).abs() < 1e-6);
        assert!(f.load(1, 2, false, &mut out).is_err());
    }

    #[test]
    fn empty_identity_folder_is_an_error_naming_it() {
        let dir = tiny_folder();
        std::fs::create_dir(dir.path().join("c")).unwrap();
        let err = ImageFolder::open(dir.path(), Channels::Grey)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/c: identity folder holds no image"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = ImageFolder::open(empty.path(), Channels::Grey)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no identity folders"), "{err}");
    }

    #[test]
    fn unreadable_image_is_an_error_naming_the_file() {
        let dir = tiny_folder();
        std::fs::write(dir.path().join("a/0.png"), b"\x89PNG\r\n\x1a\ntruncated").unwrap();
        let f = ImageFolder::open(dir.path(), Channels::Rgb).unwrap();
        let mut out = vec![0.5; Channels::Rgb.sample_len()];
        let err = f.load(0, 0, false, &mut out).unwrap_err().to_string();
        assert!(err.contains("a/0.png: cannot decode the image"), "{err}");
        assert!(out.iter().all(|&v| v == 0.5), "nothing written");
    }

    /// The ORL set as `scripts/fetch-orl.sh` leaves it; skipped when it has not been fetched.
    #[test]
    fn reads_orl_when_fetched() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/orl");
        if !root.is_dir() {
            eprintln!(
                "skipped: {} is absent (run scripts/fetch-orl.sh)",
                root.display()
            );
            return;
        }
        let f = ImageFolder::open(&root, Channels::Grey).unwrap();
        assert_eq!(f.num_identities(), 40);
        assert_eq!(f.num_images(), 400);
        assert_eq!(f.identity_name(0), "s01");
        let mut out = vec![0.0; Channels::Grey.sample_len()];
        for id in 0..40 {
            for k in 0..10 {
                f.load(id, k, false, &mut out).unwrap();
            }
        }
        assert!(out.iter().all(|v| v.abs() <= 1.0));
    }
}
