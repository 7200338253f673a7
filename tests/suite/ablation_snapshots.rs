//! Snapshot tests (insta) of what the ablation runner produces: the expansion of every committed
//! matrix file, and the metric table of the tiny matrix run end to end. Numbers are rounded to one
//! decimal of a percent and nothing machine-dependent (times, paths) enters a snapshot. CI runs
//! with `CI=true`, where insta never writes snapshots: a changed snapshot fails the build.

use std::path::Path;

use f2c::ablation::matrix::Matrix;
use f2c::ablation::runner::{run_matrix, MatrixOptions};
use f2c::ablation::summary::read_csv;
use f2c::train::run::RunOptions;

#[test]
fn committed_matrices_expand_as_snapshotted() {
    let mut files: Vec<_> = std::fs::read_dir("ablations")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected the committed matrices in ablations/"
    );
    for path in files {
        let matrix = Matrix::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let plan = matrix.expand(&path).unwrap_or_else(|e| panic!("{e}"));
        let name = format!("expansion_{}", path.file_stem().unwrap().to_string_lossy());
        insta::assert_snapshot!(
            name,
            format!("{} runs\n{}", plan.runs.len(), plan.listing())
        );
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}", 100.0 * v))
}

#[test]
fn tiny_matrix_end_to_end_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let opts = MatrixOptions {
        results_root: dir.path().to_path_buf(),
        dry_run: false,
        progress: false,
        retry_failed: false,
        jobs: 2,
        run: RunOptions::default(),
    };
    let outcome = run_matrix(Path::new("ablations/tiny.ron"), &opts).unwrap();
    // The reference points are written beside the summary: per seed, raw features and the
    // untrained network.
    let refs =
        f2c::ablation::references::read_references(&outcome.dir.join("references.csv")).unwrap();
    assert_eq!(refs.len(), 2 * 2);
    assert_eq!(outcome.failed(), 0);
    let rows = read_csv(&outcome.summary.unwrap()).unwrap();
    let mut table = String::from(
        "run_id | group | label | seed | TAR@1e-2 | TAR@1e-3 | TAR@1e-4 | rank-1 | status\n",
    );
    for r in &rows {
        table += &format!(
            "{} | {} | {} | {} | {} | {} | {} | {} | {}\n",
            r.run_id,
            r.group,
            r.label,
            r.seed,
            pct(r.tar_far_1e2),
            pct(r.tar_far_1e3),
            pct(r.tar_far_1e4),
            pct(r.rank1),
            r.status
        );
    }
    insta::assert_snapshot!("tiny_matrix_metrics", table);

    // Rerunning the finished matrix trains nothing.
    let again = run_matrix(Path::new("ablations/tiny.ron"), &opts).unwrap();
    assert_eq!(again.trained(), 0);

    // Reproduction as a command: seed 1 retrained elsewhere gives the records bit for bit
    // (with one job instead of two), and a tampered record is caught.
    let verify = |root: &Path| {
        f2c::ablation::verify::verify_plan(
            &outcome.plan,
            &[1],
            &root.join("scratch"),
            &MatrixOptions {
                jobs: 1,
                ..opts.clone()
            },
            0.0,
            f2c::train::run::run_experiment,
        )
        .unwrap()
    };
    let report = verify(dir.path());
    assert!(report.reproduced(), "{report}");
    assert!(report.verdict().starts_with("REPRODUCED"), "{report}");
    let first = &report.runs[0].0;
    let path = f2c::ablation::runner::record_path(dir.path(), "tiny", first);
    let mut rec = f2c::results::RunRecord::read(&path).unwrap();
    rec.metrics.as_mut().unwrap().tar_far_1e3 += 1e-9;
    rec.write_atomic(&path).unwrap();
    let report = verify(dir.path());
    assert!(!report.reproduced(), "{report}");
    assert!(report.to_string().contains("DIFFERS"), "{report}");
    assert!(
        report.verdict().starts_with("NOT REPRODUCED: 1 of"),
        "{report}"
    );
}
