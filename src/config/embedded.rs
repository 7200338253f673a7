//! The shipped experiment files, compiled in, so that commands that start from them (the
//! benchmark's whole-step throughput) run from any directory. Derived files resolve their bases
//! among these.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::Experiment;

/// (path relative to the repository root, text) of every shipped experiment file.
pub const EXPERIMENTS: [(&str, &str); 19] = [
    (
        "experiments/base.ron",
        include_str!("../../experiments/base.ron"),
    ),
    (
        "experiments/f2c.ron",
        include_str!("../../experiments/f2c.ron"),
    ),
    (
        "experiments/fc.ron",
        include_str!("../../experiments/fc.ron"),
    ),
    (
        "experiments/pfc.ron",
        include_str!("../../experiments/pfc.ron"),
    ),
    (
        "experiments/dcq.ron",
        include_str!("../../experiments/dcq.ron"),
    ),
    (
        "experiments/ablation.ron",
        include_str!("../../experiments/ablation.ron"),
    ),
    (
        "experiments/paper.ron",
        include_str!("../../experiments/paper.ron"),
    ),
    (
        "experiments/tiny.ron",
        include_str!("../../experiments/tiny.ron"),
    ),
    (
        "experiments/curve-fc.ron",
        include_str!("../../experiments/curve-fc.ron"),
    ),
    (
        "experiments/curve-pfc.ron",
        include_str!("../../experiments/curve-pfc.ron"),
    ),
    (
        "experiments/curve-f2c.ron",
        include_str!("../../experiments/curve-f2c.ron"),
    ),
    (
        "experiments/curve-dcq.ron",
        include_str!("../../experiments/curve-dcq.ron"),
    ),
    (
        "experiments/tuning.ron",
        include_str!("../../experiments/tuning.ron"),
    ),
    (
        "experiments/orl-base.ron",
        include_str!("../../experiments/orl-base.ron"),
    ),
    (
        "experiments/orl-f2c.ron",
        include_str!("../../experiments/orl-f2c.ron"),
    ),
    (
        "experiments/orl-fc.ron",
        include_str!("../../experiments/orl-fc.ron"),
    ),
    (
        "experiments/orl-pfc.ron",
        include_str!("../../experiments/orl-pfc.ron"),
    ),
    (
        "experiments/orl-dcq.ron",
        include_str!("../../experiments/orl-dcq.ron"),
    ),
    (
        "experiments/scale.ron",
        include_str!("../../experiments/scale.ron"),
    ),
];

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
