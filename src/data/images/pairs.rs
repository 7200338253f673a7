//! LFW-style verification pairs (`pairs.txt`): `name n1 n2` for two images of one identity,
//! `name1 n1 name2 n2` for images of two identities; an optional first line of counts
//! (`folds pairs_per_fold`) is skipped. Image numbers count from 1 in the identity's image order
//! (LFW's `Name_0001.jpg` is the first file of `Name/`).

use std::collections::HashMap;
use std::path::Path;

use crate::data::images::FaceImages;
use crate::error::{Error, Result};

/// One pair as (identity, instance) indices into a [`FaceImages`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub a: (usize, usize),
    pub b: (usize, usize),
    /// Both images show the same identity.
    pub same: bool,
}

/// Reads `path`, resolving names and numbers against `images`.
pub fn read_pairs(path: impl AsRef<Path>, images: &dyn FaceImages) -> Result<Vec<Pair>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let ids: HashMap<&str, usize> = (0..images.num_identities())
        .map(|i| (images.identity_name(i), i))
        .collect();
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |msg: String| Error::dataset(path, format!("line {}: {msg}", n + 1));
        let t: Vec<&str> = line.split_whitespace().collect();
        let image = |name: &str, num: &str| -> Result<(usize, usize)> {
            let &id = ids
                .get(name)
                .ok_or_else(|| at(format!("identity `{name}` is not in the data set")))?;
            let k: usize = num
                .parse()
                .map_err(|_| at(format!("`{num}` is not an image number")))?;
            let count = images.num_instances(id);
            if k == 0 || k > count {
                return Err(at(format!(
                    "image {k} of `{name}` does not exist: numbers run from 1 to {count}"
                )));
            }
            Ok((id, k - 1))
        };
        let header = n == 0 && t.len() <= 2 && t.iter().all(|s| s.parse::<usize>().is_ok());
        match t.len() {
            _ if header => {}
            0 => {}
            3 => pairs.push(Pair {
                a: image(t[0], t[1])?,
                b: image(t[0], t[2])?,
                same: true,
            }),
            4 => pairs.push(Pair {
                a: image(t[0], t[1])?,
                b: image(t[2], t[3])?,
                same: false,
            }),
            k => {
                return Err(at(format!(
                    "{k} fields; expected `name n1 n2` (same) or `name1 n1 name2 n2` (different)"
                )))
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::{test_images::pgm, Channels, ImageFolder};

    #[test]
    fn reads_same_and_different_pairs() {
        let dir = tempfile::tempdir().unwrap();
        for (name, n) in [("Ann", 2), ("Bob", 1)] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            for k in 1..=n {
                let f = dir.path().join(name).join(format!("{name}_{k:04}.pgm"));
                std::fs::write(f, pgm(4, 4, |_, _| 0)).unwrap();
            }
        }
        let images = ImageFolder::open(dir.path(), Channels::Grey).unwrap();
        let pairs = dir.path().join("pairs.txt");
        std::fs::write(&pairs, "1\t2\nAnn\t1\t2\nAnn 2 Bob 1\n").unwrap();
        let got = read_pairs(&pairs, &images).unwrap();
        assert_eq!(
            got,
            [
                Pair {
                    a: (0, 0),
                    b: (0, 1),
                    same: true
                },
                Pair {
                    a: (0, 1),
                    b: (1, 0),
                    same: false
                }
            ]
        );
        std::fs::write(&pairs, "Ann 1 2\nBob 1 Ann 3\n").unwrap();
        let err = read_pairs(&pairs, &images).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "pairs.txt: line 2: image 3 of `Ann` does not exist: numbers run from 1 to 2"
            ),
            "{err}"
        );
        std::fs::write(&pairs, "Cy 1 2\n").unwrap();
        let err = read_pairs(&pairs, &images).unwrap_err().to_string();
        assert!(
            err.contains("line 1: identity `Cy` is not in the data set"),
            "{err}"
        );
    }
}
