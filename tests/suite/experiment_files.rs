//! Experiment files: the committed ones load; malformed ones are rejected with the file, the
//! field (or line/column) and a hint; the CLI then exits non-zero and writes nothing.

use std::path::Path;

use f2c::Experiment;

fn base_text() -> String {
    std::fs::read_to_string("experiments/base.ron").unwrap()
}

fn error_of(text: &str) -> String {
    Experiment::from_ron_str(text, Path::new("bad.ron"))
        .unwrap_err()
        .to_string()
}

/// Runs the `f2c` executable with `args`, checks that it exits non-zero and gives its stderr.
fn cli_error(args: &[&str]) -> String {
    let res = std::process::Command::new(env!("CARGO_BIN_EXE_f2c"))
        .args(args)
        .output()
        .unwrap();
    assert!(!res.status.success(), "f2c {args:?} succeeded");
    String::from_utf8_lossy(&res.stderr).into_owned()
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
    let text = base_text().replace("noise: 0.3,", "noise: 0.3,\n        nosie: 0.1,");
    let msg = error_of(&text);
    assert!(msg.contains("bad.ron:") && msg.contains("nosie"), "{msg}");
    assert!(msg.contains("remove it or fix its spelling"), "{msg}");
}

#[test]
fn missing_field_is_named() {
    let text = base_text().replace("label_noise: 0.0,", "");
    let msg = error_of(&text);
    assert!(msg.contains("label_noise"), "{msg}");
}

#[test]
fn wrong_type_is_reported_with_position() {
    let text = base_text().replace("steps: 1500,", "steps: \"many\",");
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
            "milestones: [0.421, 0.737, 0.895]",
            "milestones: [0.737, 0.421, 0.895]",
            "train.milestones",
        ),
        ("scale: 32.0,", "scale: 0.0,", "head.scale"),
        (
            "margin: CosFace(0.4)",
            "margin: CosFace(2.0)",
            "head.margin",
        ),
        ("folds: 10,", "folds: 1,", "eval.folds"),
        (
            "identities: 32,",
            "identities: 5000,",
            "train.loaders.identities",
        ),
    ];
    for (from, to, field) in cases {
        let text = base_text().replace(from, to);
        assert_ne!(text, base_text(), "{from} not found in base.ron");
        let msg = error_of(&text);
        assert!(msg.contains(&format!("field `{field}`")), "{to}: {msg}");
    }
}

#[test]
fn f2c_specific_checks() {
    let f2c = base_text();
    let msg = error_of(&f2c.replace("ema_momentum: 0.99,", "ema_momentum: 1.2,"));
    assert!(msg.contains("head.ema_momentum"), "{msg}");
    let msg = error_of(&f2c.replace("capacity: Fraction(0.1),", "capacity: Fraction(0.0),"));
    assert!(msg.contains("head.pool.capacity"), "{msg}");
    let msg = error_of(&f2c.replace("capacity: Fraction(0.1),", "capacity: Count(40),"));
    assert!(
        msg.contains("head.pool.capacity") && msg.contains("evict its own identities"),
        "{msg}"
    );
    let msg = error_of(&f2c.replace("instances: 32,", "instances: 31,"));
    assert!(msg.contains("train.loaders.instances"), "{msg}");
}

#[test]
fn cli_rejects_a_bad_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ron");
    std::fs::write(&bad, base_text().replace("seed: 1,", "seed: 1, colour: 3,")).unwrap();
    let out = dir.path().join("out");
    let stderr = cli_error(&[
        "train",
        bad.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("bad.ron") && stderr.contains("colour"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing may be written for a bad file");
}

#[test]
fn cli_names_a_missing_file_and_its_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.ron");
    let stderr = cli_error(&["train", missing.to_str().unwrap(), "--quiet"]);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("missing.ron"),
        "{stderr}"
    );
    // The OS's own wording ("No such file or directory (os error 2)") appears once, not again as
    // a "caused by" line.
    assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");
    assert!(!stderr.contains("caused by"), "{stderr}");
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let stderr = cli_error(&[
        "train",
        "experiments/fc.ron",
        "--quiet",
        "--device",
        "cuda:0",
    ]);
    assert!(stderr.contains("without the `cuda` feature"), "{stderr}");
}

#[test]
fn derived_files_resolve_their_base_and_name_bad_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.ron"), base_text()).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ok = write(
        "ok.ron",
        r#"// a comment first
        Derived(base: "base.ron", set: [("name", "small"), ("train.steps", "700")])"#,
    );
    let exp = Experiment::load(&ok).unwrap();
    assert_eq!((exp.name.as_str(), exp.train.steps), ("small", 700));
    // A derived file may itself be a base.
    let chained = write(
        "chained.ron",
        r#"Derived(base: "ok.ron", set: [("seed", "4")])"#,
    );
    let exp = Experiment::load(&chained).unwrap();
    assert_eq!(
        (exp.name.as_str(), exp.seed, exp.train.steps),
        ("small", 4, 700)
    );

    let err = |name: &str, text: &str| {
        Experiment::load(&write(name, text))
            .unwrap_err()
            .to_string()
    };
    let msg = err("nobase.ron", r#"Derived(base: "missing.ron", set: [])"#);
    assert!(
        msg.contains("field `base`") && msg.contains("missing.ron"),
        "{msg}"
    );
    let msg = err(
        "badpath.ron",
        r#"Derived(base: "base.ron", set: [("train.stpes", "7")])"#,
    );
    assert!(
        msg.contains("train.stpes") && msg.contains("train.steps"),
        "{msg}"
    );
    let msg = err(
        "badvalue.ron",
        r#"Derived(base: "base.ron", set: [("train.steps", "x")])"#,
    );
    assert!(
        msg.contains("train.steps") && msg.contains("whole number"),
        "{msg}"
    );
    // The resolved experiment is validated.
    let msg = err(
        "invalid.ron",
        r#"Derived(base: "base.ron", set: [("train.lr", "-1.0")])"#,
    );
    assert!(msg.contains("field `train.lr`"), "{msg}");
    let msg = err("cycle.ron", r#"Derived(base: "cycle.ron", set: [])"#);
    assert!(msg.contains("cycle"), "{msg}");
}

#[test]
fn shipped_experiments_resolve_to_the_committed_records() {
    // Each method's committed single-run record (`results/train/<method>-<name>-<hash>.json`) was
    // trained from the shipped file: the same resolved config, hence the same run id.
    for name in ["fc", "pfc", "f2c", "dcq"] {
        let exp = Experiment::load(Path::new(&format!("experiments/{name}.ron"))).unwrap();
        let prefix = format!("{name}-{name}-");
        let records: Vec<_> = std::fs::read_dir("results/train")
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(&prefix))
            })
            .collect();
        assert_eq!(records.len(), 1, "{name}: {records:?}");
        let rec = f2c::results::RunRecord::read(&records[0]).unwrap();
        assert_eq!(exp, rec.experiment, "{name}");
        assert_eq!(f2c::results::record::run_id(&exp), rec.run_id, "{name}");
    }
}

#[test]
fn scoring_on_validation_identities_needs_some() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.ron"), base_text()).unwrap();
    let path = dir.path().join("v.ron");
    std::fs::write(
        &path,
        r#"Derived(base: "base.ron", set: [("eval.split", "Validation")])"#,
    )
    .unwrap();
    let msg = Experiment::load(&path).unwrap_err().to_string();
    assert!(
        msg.contains("eval.split") && msg.contains("validation_identities"),
        "{msg}"
    );
    std::fs::write(
        &path,
        r#"Derived(base: "base.ron", set: [("eval.split", "Validation"), ("data.validation_identities", "50")])"#,
    )
    .unwrap();
    let exp = Experiment::load(&path).unwrap();
    assert_eq!(exp.eval.split, f2c::eval::EvalSplit::Validation);
    // The default split is not written out: configs that never set it keep their run ids.
    assert!(!Experiment::load(Path::new("experiments/fc.ron"))
        .unwrap()
        .to_ron()
        .contains("split"));
}
