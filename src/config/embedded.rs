//! The shipped experiment files, compiled in, so that commands that start from them (the
//! benchmark's whole-step throughput) run from any directory. Derived files resolve their bases
//! among these. build.rs lists every file of `experiments/`, so a new one needs no edit here.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::Experiment;

// `EXPERIMENTS`: (path relative to the repository root, text) of every `experiments/*.ron`,
// listed by build.rs.
include!(concat!(env!("OUT_DIR"), "/experiments.rs"));

/// The text of the shipped file at `path` (relative to the repository root).
fn text(path: &Path) -> Result<String> {
    let normal: PathBuf = path.components().collect();
    EXPERIMENTS
        .iter()
        .find(|(p, _)| Path::new(p) == normal)
        .map(|(_, t)| t.to_string())
        .ok_or_else(|| {
            Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a shipped experiment"),
            )
        })
}

/// Loads the shipped experiment `path` (e.g. `experiments/fc.ron`) from the compiled-in files.
pub fn load(path: &str) -> Result<Experiment> {
    let path = Path::new(path);
    Experiment::from_ron_with(&text(path)?, path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_files_equal_the_files_on_disk_and_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk: Vec<String> = std::fs::read_dir(root.join("experiments"))
            .unwrap()
            .map(|e| format!("experiments/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|p| p.ends_with(".ron"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = EXPERIMENTS.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk, "every experiment file is compiled in");
        for (path, text) in EXPERIMENTS {
            assert_eq!(std::fs::read_to_string(root.join(path)).unwrap(), text);
            load(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }
}
