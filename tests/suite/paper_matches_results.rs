//! The committed `paper/` is what `f2c tables results/default` regenerates from the committed
//! results: no hand-edited number, no stale table.

use std::path::Path;

#[test]
fn committed_paper_is_regenerated_from_committed_results() {
    let root = tempfile::tempdir().unwrap();
    let bench = Path::new("results/bench/heads.csv");
    if bench.exists() {
        std::fs::create_dir_all(root.path().join("results/bench")).unwrap();
        std::fs::copy(bench, root.path().join("results/bench/heads.csv")).unwrap();
    }
    let written = f2c::report::regenerate(Path::new("results/default"), root.path()).unwrap();
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
}
