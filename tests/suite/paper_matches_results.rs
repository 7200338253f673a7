//! The committed `paper/` and the README's measured figures are what `f2c tables results/default`
//! regenerates from the committed results (the scale study's table too, once `results/scale/`
//! exists): no hand-edited number, no stale table.

use std::path::Path;

#[test]
fn committed_paper_is_regenerated_from_committed_results() {
    let root = tempfile::tempdir().unwrap();
    // The bench (head steps and whole steps): its main table and every separately benchmarked
    // study beside it.
    let mut benches = vec![Path::new("results/bench").to_path_buf()];
    if let Ok(dirs) = std::fs::read_dir("results/bench") {
        benches.extend(dirs.map(|d| d.unwrap().path()).filter(|p| p.is_dir()));
    }
    for dir in benches {
        for file in ["heads.csv", "training.csv", "bench.json"] {
            let bench = dir.join(file);
            if bench.exists() {
                std::fs::create_dir_all(root.path().join(&dir)).unwrap();
                std::fs::copy(&bench, root.path().join(&dir).join(file)).unwrap();
            }
        }
    }
    // The README block reads the single-run records and the matrix's timing.
    std::fs::copy("README.md", root.path().join("README.md")).unwrap();
    std::fs::create_dir_all(root.path().join("results/train")).unwrap();
    for entry in std::fs::read_dir("results/train").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(
                &path,
                root.path()
                    .join("results/train")
                    .join(path.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    std::fs::create_dir_all(root.path().join("results/curves")).unwrap();
    if let Ok(curves) = std::fs::read_dir("results/curves") {
        for entry in curves {
            let path = entry.unwrap().path();
            std::fs::copy(
                &path,
                root.path()
                    .join("results/curves")
                    .join(path.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    // The report's tuning section reads the tuning matrix's summary and records.
    let tuning = Path::new("results/tuning");
    if tuning.join("summary.csv").exists() {
        let to = root.path().join("results/tuning/runs");
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(
            tuning.join("summary.csv"),
            to.parent().unwrap().join("summary.csv"),
        )
        .unwrap();
        for entry in std::fs::read_dir(tuning.join("runs")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
    // The default matrix (the tuning section reads from its records the point each method of
    // `main` trains at), the scale study, its learning-rate check, its study of F²C's parts and
    // the real-face study, when they have run: summary, reference points, timing and records (N,
    // steps and seeds are read from the records).
    for study in [
        "default",
        f2c::report::scale::MATRIX,
        f2c::report::scale::TUNING_MATRIX,
        f2c::report::scale::COMPONENTS_MATRIX,
        f2c::report::orl::MATRIX,
    ] {
        let dir = Path::new("results").join(study);
        if !dir.join("summary.csv").exists() {
            continue;
        }
        let to = root.path().join(&dir);
        std::fs::create_dir_all(to.join("runs")).unwrap();
        for name in ["summary.csv", "references.csv", "timing.json"] {
            if dir.join(name).exists() {
                std::fs::copy(dir.join(name), to.join(name)).unwrap();
            }
        }
        for entry in std::fs::read_dir(dir.join("runs")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, to.join("runs").join(path.file_name().unwrap())).unwrap();
        }
    }
    // What the GPU check brought back (its benchmarks, matrix and single runs) and the GPU's runs
    // of the scale study and the default matrix, set beside the CPU records copied above.
    for dir in ["results/gpu", "results/scale-gpu", "results/default-gpu"] {
        copy_tree(Path::new(dir), &root.path().join(dir));
    }
    let matrix = root.path().join("results/default");
    let written = f2c::report::regenerate(&matrix, root.path()).unwrap();
    assert!(!written.is_empty());
    for path in written {
        let rel = path.strip_prefix(root.path()).unwrap();
        let fresh = std::fs::read_to_string(&path).unwrap();
        let committed = std::fs::read_to_string(rel).unwrap_or_else(|e| {
            panic!(
                "{} is not committed: {e}; run `f2c tables results/default`",
                rel.display()
            )
        });
        assert!(
            fresh == committed,
            "{} differs from what `f2c tables results/default` writes",
            rel.display()
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.path().join("README.md")).unwrap(),
        std::fs::read_to_string("README.md").unwrap(),
        "README.md's measured figures are stale: run `f2c tables results/default`"
    );
}

/// Copies the folder `from` with everything in it to `to`; nothing when `from` is missing.
fn copy_tree(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    std::fs::create_dir_all(to).unwrap();
    for entry in entries {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        match path.is_dir() {
            true => copy_tree(&path, &target),
            false => {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
}
