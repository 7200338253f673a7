//! Experiment files: the committed ones load; malformed ones are rejected with the file, the
//! field (or line/column) and a hint; the CLI then exits non-zero and writes nothing.

use std::path::Path;

use f2c::Experiment;

fn fc_text() -> String {
    std::fs::read_to_string("experiments/fc.ron").unwrap()
}

fn error_of(text: &str) -> String {
    Experiment::from_ron_str(text, Path::new("bad.ron"))
        .unwrap_err()
        .to_string()
}

#[test]
fn committed_experiments_load() {
    for entry in std::fs::read_dir("experiments").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ron") {
            Experiment::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn unknown_field_is_named_with_its_position() {
    let text = fc_text().replace("noise: 0.3,", "noise: 0.3,\n        nosie: 0.1,");
    let msg = error_of(&text);
    assert!(msg.contains("bad.ron:") && msg.contains("nosie"), "{msg}");
    assert!(msg.contains("remove it or fix its spelling"), "{msg}");
}

#[test]
fn missing_field_is_named() {
    let text = fc_text().replace("label_noise: 0.0,", "");
    let msg = error_of(&text);
    assert!(msg.contains("label_noise"), "{msg}");
}

#[test]
fn wrong_type_is_reported_with_position() {
    let text = fc_text().replace("steps: 1500,", "steps: \"many\",");
    let msg = error_of(&text);
    assert!(msg.starts_with("bad.ron:"), "{msg}");
}

#[test]
fn out_of_range_values_name_the_field() {
    let cases = [
        (
            "min_instances: 2,",
            "min_instances: 1,",
            "data.min_instances",
        ),
        ("lr: 0.1,", "lr: -0.1,", "train.lr"),
        ("momentum: 0.9,", "momentum: 1.5,", "train.momentum"),
        (
            "milestones: [0.6, 0.85]",
            "milestones: [0.85, 0.6]",
            "train.milestones",
        ),
        ("scale: 32.0,", "scale: 0.0,", "head.scale"),
        (
            "margin: CosFace(0.4)",
            "margin: CosFace(2.0)",
            "head.margin",
        ),
        ("folds: 10,", "folds: 1,", "eval.folds"),
        ("instances: 128,", "instances: 0,", "train.loaders"),
    ];
    for (from, to, field) in cases {
        let text = fc_text().replace(from, to);
        assert_ne!(text, fc_text(), "{from} not found in fc.ron");
        let msg = error_of(&text);
        assert!(msg.contains(&format!("field `{field}`")), "{to}: {msg}");
    }
}

#[test]
fn f2c_specific_checks() {
    let f2c = std::fs::read_to_string("experiments/f2c.ron").unwrap();
    let msg = error_of(&f2c.replace("ema_momentum: 0.99,", "ema_momentum: 1.2,"));
    assert!(msg.contains("head.ema_momentum"), "{msg}");
    let msg = error_of(&f2c.replace("capacity: Fraction(0.1),", "capacity: Fraction(0.0),"));
    assert!(msg.contains("head.pool.capacity"), "{msg}");
    let msg = error_of(&f2c.replace("capacity: Fraction(0.1),", "capacity: Count(50),"));
    assert!(
        msg.contains("head.pool.capacity") && msg.contains("evict its own identities"),
        "{msg}"
    );
    let msg = error_of(&f2c.replace("instances: 64,", "instances: 63,"));
    assert!(msg.contains("train.loaders.instances"), "{msg}");
}

#[test]
fn cli_rejects_a_bad_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ron");
    std::fs::write(&bad, fc_text().replace("seed: 1,", "seed: 1, colour: 3,")).unwrap();
    let out = dir.path().join("out");
    let res = std::process::Command::new(env!("CARGO_BIN_EXE_f2c"))
        .args([
            "train",
            bad.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("bad.ron") && stderr.contains("colour"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing may be written for a bad file");
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let res = std::process::Command::new(env!("CARGO_BIN_EXE_f2c"))
        .args([
            "train",
            "experiments/fc.ron",
            "--quiet",
            "--device",
            "cuda:0",
        ])
        .output()
        .unwrap();
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("without the `cuda` feature"), "{stderr}");
}
