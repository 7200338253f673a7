//! Ablation matrices end to end: expansion order and ids, crossed and paired axes, the errors that
//! name the axis, and the resumable runner with a fake trainer (no training happens here).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use f2c::ablation::matrix::{set_field, Matrix, Plan};
use f2c::ablation::runner::{record_path, run_matrix_with, run_plan_with, MatrixOptions, RunState};
use f2c::ablation::summary::read_csv;
use f2c::config::sweep::Sweep;
use f2c::eval::Metrics;
use f2c::results::record::run_id;
use f2c::results::{RunRecord, RunStatus};
use f2c::train::run::RunOptions;
use f2c::{Error, Experiment};

/// A small valid F²C experiment (1000 identities, pool of 10%).
const BASE: &str = r#"Experiment(
    name: "tiny",
    seed: 7,
    data: SyntheticConfig(
        train_identities: 1000,
        eval_identities: 20,
        min_instances: 2,
        max_instances: 6,
        tail_exponent: 1.0,
        eval_instances: 4,
        identity_dim: 8,
        nuisance_dim: 4,
        nuisance_scale: 0.5,
        noise: 0.1,
        label_noise: 0.0,
    ),
    backbone: Mlp256x64,
    head: F2c(F2cConfig(
        margin: CosFace(0.5),
        scale: 32.0,
        pool: PoolConfig(capacity: Fraction(0.1), rows: Two, eviction: Lru),
        ema_momentum: 0.99,
        top_k: Auto,
        pool_eval: TwoRow,
        symmetric: true,
    )),
    train: TrainConfig(
        steps: 20,
        loaders: LoaderConfig(identities: 8, instances: 16),
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.0001,
        warmup_steps: 2,
        milestones: [0.5, 0.8],
        decay: 0.1,
    ),
    eval: EvalConfig(impostors: All, folds: 10),
)"#;

fn base() -> Experiment {
    Experiment::from_ron_str(BASE, Path::new("base.ron")).unwrap()
}

/// A matrix with an inline base and the given seeds and groups (RON text).
fn matrix_text(seeds: &str, groups: &str) -> String {
    format!("Matrix(name: \"m\", base: Inline({BASE}), seeds: {seeds}, groups: [{groups}])")
}

fn expand(seeds: &str, groups: &str) -> Result<Plan, Error> {
    let path = Path::new("ablations/m.ron");
    Matrix::from_ron_str(&matrix_text(seeds, groups), path)?.expand(path)
}

fn expand_err(groups: &str) -> String {
    expand("[1]", groups)
        .expect_err("expansion should fail")
        .to_string()
}

const TWO_GROUPS: &str = r#"
    Group(name: "main", axes: [
        Sweep(field: "head", values: [
            "Fc(margin: CosFace(0.4), scale: 32.0)",
            "PartialFc(margin: CosFace(0.4), scale: 32.0, sample_rate: 0.1)",
        ], label: Some("head")),
    ]),
    Group(name: "pool_size", axes: [
        Sweep(field: "head.pool.capacity", values: ["Fraction(0.05)", "Fraction(0.2)"], label: Some("pool")),
        Sweep(field: "head.ema_momentum", values: ["0.9", "0.99"]),
    ]),
"#;

#[test]
fn expansion_is_group_then_grid_then_seed_with_stable_ids() {
    let plan = expand("[1, 2]", TWO_GROUPS).unwrap();
    // main: 2 heads × 2 seeds; pool_size: 2 × 2 grid × 2 seeds.
    assert_eq!(plan.runs.len(), 4 + 8);
    assert_eq!(plan.rows.len(), 12);
    let listed: Vec<(String, String, u64)> = plan
        .rows
        .iter()
        .map(|r| {
            (
                r.group.clone(),
                r.label.clone(),
                plan.runs[r.run].experiment.seed,
            )
        })
        .collect();
    let fc = "head=Fc(margin: CosFace(0.4), scale: 32.0)".to_string();
    let pfc = "head=PartialFc(margin: CosFace(0.4), scale: 32.0, sample_rate: 0.1)".to_string();
    let main = "main".to_string();
    let pool = "pool_size".to_string();
    assert_eq!(listed[0], (main.clone(), fc.clone(), 1));
    assert_eq!(listed[1], (main.clone(), fc, 2));
    assert_eq!(listed[2], (main.clone(), pfc, 1));
    // The first axis varies slowest, the seed fastest.
    assert_eq!(
        listed[4],
        (
            pool.clone(),
            "pool=Fraction(0.05), ema_momentum=0.9".into(),
            1
        )
    );
    assert_eq!(
        listed[6],
        (
            pool.clone(),
            "pool=Fraction(0.05), ema_momentum=0.99".into(),
            1
        )
    );
    assert_eq!(
        listed[8],
        (
            pool.clone(),
            "pool=Fraction(0.2), ema_momentum=0.9".into(),
            1
        )
    );
    assert_eq!(
        listed[11],
        (pool, "pool=Fraction(0.2), ema_momentum=0.99".into(), 2)
    );

    // Each id is the run id of the resolved config, built here by hand.
    let mut exp = base();
    set_field(&mut exp, "head.pool.capacity", "Fraction(0.2)").unwrap();
    set_field(&mut exp, "head.ema_momentum", "0.9").unwrap();
    exp.seed = 2;
    assert_eq!(plan.runs[9].run_id, run_id(&exp));
    assert!(plan.runs[9].run_id.starts_with("f2c-tiny-"));
    assert!(plan.runs[0].run_id.starts_with("fc-tiny-"));
    // The seeds of a point share the config id, which is the run id at seed 0.
    assert_eq!(plan.runs[8].config_id, plan.runs[9].config_id);
    assert_ne!(plan.runs[8].run_id, plan.runs[9].run_id);
    exp.seed = 0;
    assert_eq!(plan.runs[9].config_id, run_id(&exp));
    // Indices follow the order, and expanding again gives the same plan.
    assert!(plan.runs.iter().enumerate().all(|(i, r)| r.index == i));
    assert_eq!(plan, expand("[1, 2]", TWO_GROUPS).unwrap());
}

#[test]
fn zipped_axes_pair_values_and_crossed_axes_multiply() {
    let crossed = r#"Group(name: "g", axes: [
        Sweep(field: "train.loaders.identities", values: ["0", "8", "16"]),
        Sweep(field: "train.loaders.instances", values: ["16", "32", "64"]),
    ])"#;
    let zipped = r#"Group(name: "g", axes: [Zip([
        Sweep(field: "train.loaders.identities", values: ["0", "8", "16"]),
        Sweep(field: "train.loaders.instances", values: ["16", "32", "64"]),
    ])])"#;
    assert_eq!(expand("[1, 2]", crossed).unwrap().runs.len(), 3 * 3 * 2);
    let plan = expand("[1, 2]", zipped).unwrap();
    assert_eq!(plan.runs.len(), 3 * 2);
    let pairs: Vec<(usize, usize)> = plan
        .runs
        .iter()
        .map(|r| {
            (
                r.experiment.train.loaders.identities,
                r.experiment.train.loaders.instances,
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![(0, 16), (0, 16), (8, 32), (8, 32), (16, 64), (16, 64)]
    );
    assert_eq!(plan.runs[2].label, "identities=8, instances=32");
}

#[test]
fn a_zip_pairs_each_method_with_its_own_settings() {
    // Partial FC with an instance-only loader, F²C with the dual loaders: 2 runs, not 4.
    let plan = expand(
        "[3]",
        r#"Group(name: "main", axes: [Zip([
            Sweep(field: "head", values: ["PartialFc(margin: CosFace(0.4), scale: 32.0, sample_rate: 0.1)", "F2c(F2cConfig(margin: CosFace(0.5), scale: 32.0, pool: PoolConfig(capacity: Fraction(0.1), rows: Two, eviction: Lru), ema_momentum: 0.99, top_k: Auto, pool_eval: TwoRow, symmetric: true))"], label: Some("method")),
            Sweep(field: "train.loaders", values: ["LoaderConfig(identities: 0, instances: 32)", "LoaderConfig(identities: 8, instances: 16)"]),
        ])])"#,
    )
    .unwrap();
    let got: Vec<(&str, usize)> = plan
        .runs
        .iter()
        .map(|r| {
            (
                r.experiment.head.method().key(),
                r.experiment.train.loaders.identities,
            )
        })
        .collect();
    assert_eq!(got, vec![("pfc", 0), ("f2c", 8)]);
    // A later axis may set a field of the head chosen by an earlier one.
    let plan = expand(
        "[3]",
        r#"Group(name: "pfc", axes: [
            Sweep(field: "head", values: ["PartialFc(margin: CosFace(0.4), scale: 32.0, sample_rate: 1.0)"], label: Some("method")),
            Sweep(field: "head.sample_rate", values: ["0.1", "0.3"], label: Some("r")),
        ])"#,
    )
    .unwrap();
    let heads: Vec<String> = plan
        .runs
        .iter()
        .map(|r| format!("{:?}", r.experiment.head))
        .collect();
    assert!(
        heads[0].contains("sample_rate: 0.1") && heads[1].contains("sample_rate: 0.3"),
        "{heads:?}"
    );
    assert!(
        plan.runs[1].label.ends_with(", r=0.3"),
        "{}",
        plan.runs[1].label
    );
}

#[test]
fn a_config_named_by_two_groups_runs_once_and_is_reported_in_both() {
    // The base pool (0.1) appears in `main` (no axes) and in `pool_size`.
    let plan = expand(
        "[1, 2]",
        r#"Group(name: "main", axes: []),
           Group(name: "pool_size", axes: [Sweep(field: "head.pool.capacity", values: ["Fraction(0.05)", "Fraction(0.1)"])])"#,
    )
    .unwrap();
    assert_eq!(plan.rows.len(), 2 + 4);
    assert_eq!(plan.runs.len(), 4);
    assert_eq!(plan.rows[0].label, "base");
    // Rows 4 and 5 (pool 0.1, seeds 1 and 2) are runs 0 and 1 of `main`.
    assert_eq!((plan.rows[4].run, plan.rows[5].run), (0, 1));
    assert_eq!(
        plan.runs[0].groups,
        vec!["main".to_string(), "pool_size".to_string()]
    );
    assert_eq!(plan.runs[2].groups, vec!["pool_size".to_string()]);
}

#[test]
fn an_unknown_field_path_is_an_error_naming_the_axis() {
    let msg = expand_err(
        r#"Group(name: "pool_size", axes: [Sweep(field: "head.pool.size", values: ["Count(3)"])])"#,
    );
    assert!(
        msg.contains("`head.pool.size`") && msg.contains("pool_size"),
        "{msg}"
    );
    assert!(
        msg.contains("head.pool.capacity"),
        "the message lists the known paths: {msg}"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_naming_the_axis() {
    let msg = expand_err(
        r#"Group(name: "g", axes: [Sweep(field: "head.pool.capacity", values: ["Fraction(0.05)", "0.01"])])"#,
    );
    assert!(
        msg.contains("`head.pool.capacity`")
            && msg.contains("`0.01`")
            && msg.contains("a `Capacity`"),
        "{msg}"
    );
    let msg =
        expand_err(r#"Group(name: "g", axes: [Sweep(field: "train.steps", values: ["1.5"])])"#);
    assert!(
        msg.contains("`train.steps`") && msg.contains("whole number"),
        "{msg}"
    );
}

#[test]
fn a_field_the_head_lacks_is_an_error_naming_the_axis() {
    let msg = expand_err(
        r#"Group(name: "g", axes: [Sweep(field: "head.sample_rate", values: ["0.1"])])"#,
    );
    assert!(
        msg.contains("`head.sample_rate`") && msg.contains("PartialFc") && msg.contains("F2c"),
        "{msg}"
    );
    let msg = expand_err(
        r#"Group(name: "g", axes: [
            Sweep(field: "head", values: ["Fc(margin: CosFace(0.4), scale: 32.0)"]),
            Sweep(field: "head.ema_momentum", values: ["0.9"]),
        ])"#,
    );
    assert!(
        msg.contains("`head.ema_momentum`") && msg.contains("is Fc"),
        "{msg}"
    );
}

#[test]
fn an_invalid_resolved_run_is_an_error_naming_the_field_and_the_run() {
    // F²C needs an even instance count.
    let msg = expand_err(
        r#"Group(name: "loaders", axes: [Sweep(field: "train.loaders.instances", values: ["16", "15"])])"#,
    );
    assert!(
        msg.contains("`train.loaders.instances`")
            && msg.contains("instances=15")
            && msg.contains("loaders"),
        "{msg}"
    );
    // A value valid on its own but not with the rest (here: fewer identities than the pool and
    // a step need). The run label names the axis that caused it.
    let msg = expand_err(
        r#"Group(name: "g", axes: [Sweep(field: "data.train_identities", values: ["5"])])"#,
    );
    assert!(
        msg.contains("group `g`: run `train_identities=5` (seed 1) is invalid"),
        "{msg}"
    );
}

#[test]
fn malformed_axes_are_errors() {
    let msg = expand_err(
        r#"Group(name: "g", axes: [Zip([Sweep(field: "train.lr", values: ["0.1", "0.2"]), Sweep(field: "train.decay", values: ["0.1"])])])"#,
    );
    assert!(
        msg.contains("`train.decay`") && msg.contains("has 1 values and the first has 2"),
        "{msg}"
    );
    let msg = expand_err(r#"Group(name: "g", axes: [Sweep(field: "seed", values: ["1"])])"#);
    assert!(msg.contains("`seeds` list"), "{msg}");
    let msg = expand_err(r#"Group(name: "g", axes: [Sweep(field: "train.lr", values: []) ])"#);
    assert!(
        msg.contains("`train.lr`") && msg.contains("without values"),
        "{msg}"
    );
    let msg =
        expand_err(r#"Group(name: "g", axes: [Sweep(field: "train.lr", values: ["0.1", "0.1"])])"#);
    assert!(msg.contains("`0.1` is listed twice"), "{msg}");
    let msg = expand_err(
        r#"Group(name: "g", axes: [Sweep(field: "train.lr", values: ["0.1"]), Sweep(field: "train.lr", values: ["0.2"])])"#,
    );
    assert!(msg.contains("two axes"), "{msg}");
    // `0.1` and `0.10` are different texts but the same config.
    let msg = expand_err(
        r#"Group(name: "g", axes: [Sweep(field: "train.lr", values: ["0.1", "0.10"])])"#,
    );
    assert!(msg.contains("same config"), "{msg}");
    let msg = expand("[]", r#"Group(name: "g", axes: [])"#)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`seeds`"), "{msg}");
    let msg = expand(
        "[1]",
        r#"Group(name: "g", axes: []), Group(name: "g", axes: [])"#,
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("used twice"), "{msg}");
    let msg = Matrix::from_ron_str("Matrix(name: \"m\", bogus: 1)", Path::new("x.ron"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("x.ron:1:") && msg.contains("bogus"),
        "{msg}"
    );
}

#[test]
fn every_derived_field_path_has_a_setter() {
    // One value per path, different from the base; `head.sample_rate` needs a PartialFc head.
    let samples: &[(&str, &str)] = &[
        ("name", "\"other\""),
        ("seed", "9"),
        ("device", "Cuda(1)"),
        ("data", "SyntheticConfig(train_identities: 50, eval_identities: 10, min_instances: 2, max_instances: 4, tail_exponent: 0.0, eval_instances: 2, identity_dim: 4, nuisance_dim: 0, nuisance_scale: 0.0, noise: 0.0, label_noise: 0.0)"),
        ("data.train_identities", "200"),
        ("data.eval_identities", "30"),
        ("data.min_instances", "3"),
        ("data.max_instances", "8"),
        ("data.tail_exponent", "0.5"),
        ("data.eval_instances", "5"),
        ("data.identity_dim", "16"),
        ("data.nuisance_dim", "8"),
        ("data.nuisance_scale", "1.0"),
        ("data.noise", "0.2"),
        ("data.label_noise", "0.1"),
        ("data.families", "Families(size: 4, spread: 0.5)"),
        ("data.families.size", "3"),
        ("data.families.spread", "0.25"),
        ("data.validation_identities", "40"),
        ("backbone", "Mlp512x128"),
        ("head", "Fc(margin: ArcFace(0.5), scale: 64.0)"),
        ("head.margin", "ArcFace(0.3)"),
        ("head.scale", "16"),
        ("head.sample_rate", "0.2"),
        ("head.pool", "PoolConfig(capacity: Count(5), rows: One, eviction: Fifo)"),
        ("head.pool.capacity", "Count(7)"),
        ("head.pool.rows", "One"),
        ("head.pool.eviction", "Fifo"),
        ("head.ema_momentum", "0.5"),
        ("head.top_k", "Fixed(4)"),
        ("head.pool_eval", "Row0"),
        ("head.symmetric", "false"),
        ("train", "TrainConfig(steps: 5, loaders: LoaderConfig(identities: 0, instances: 8), lr: 0.01, momentum: 0.0, nesterov: false, weight_decay: 0.0, warmup_steps: 0, milestones: [], decay: 1.0)"),
        ("train.steps", "30"),
        ("train.loaders", "LoaderConfig(identities: 4, instances: 4)"),
        ("train.loaders.identities", "2"),
        ("train.loaders.instances", "6"),
        ("train.lr", "0.05"),
        ("train.momentum", "0.5"),
        ("train.nesterov", "false"),
        ("train.weight_decay", "0.001"),
        ("train.warmup_steps", "3"),
        ("train.milestones", "[0.25, 0.75]"),
        ("train.decay", "0.5"),
        ("eval", "EvalConfig(impostors: All, folds: 4)"),
        ("eval.impostors", "AtMost(2000000)"),
        ("eval.folds", "5"),
        ("eval.split", "Validation"),
        // Images in place of the synthetic data (the nested paths exist once `images` is set).
        ("images", "ImagesConfig(root: \"data/orl\", layout: Folder, eval_identities: 10)"),
    ];
    // The derived paths of the F²C base, plus the one path only a Partial FC head has.
    let mut listed = base().paths();
    listed.push("head.sample_rate".into());
    listed.sort();
    let mut sampled: Vec<String> = samples.iter().map(|(p, _)| p.to_string()).collect();
    sampled.sort();
    assert_eq!(sampled, listed);
    for (path, value) in samples {
        let mut exp = base();
        if *path == "head.sample_rate" {
            set_field(
                &mut exp,
                "head",
                "PartialFc(margin: CosFace(0.4), scale: 32.0, sample_rate: 0.1)",
            )
            .unwrap();
        }
        let before = exp.clone();
        set_field(&mut exp, path, value).unwrap_or_else(|e| panic!("{path} = {value}: {e}"));
        assert_ne!(exp, before, "{path} = {value} changed nothing");
    }
    // Spot checks that the value lands in the named field.
    let mut exp = base();
    set_field(&mut exp, "train.loaders.identities", "3").unwrap();
    set_field(&mut exp, "name", "bare-name").unwrap();
    assert_eq!(
        (
            exp.train.loaders.identities,
            exp.train.loaders.instances,
            exp.name.as_str()
        ),
        (3, 16, "bare-name")
    );
}

// ---- the runner, with a fake trainer ----

/// The record a successful fake run returns: metrics derived from the seed so rows differ.
fn fake_ok(exp: &Experiment) -> RunRecord {
    fake_record(exp, 0.8, exp.seed as f64 / 10.0, 1.0)
}

/// A successful record of `exp` without training: TAR@FAR=1e-2 / 1e-3 / 1e-4 of `tar` + 0.1 /
/// `tar` / `tar` − 0.1, rank-1 `rank1`, `wall_s` seconds; the rest fixed.
pub(crate) fn fake_record(exp: &Experiment, tar: f64, rank1: f64, wall_s: f64) -> RunRecord {
    RunRecord {
        run_id: run_id(exp),
        experiment: exp.clone(),
        status: RunStatus::Ok,
        metrics: Some(Metrics {
            tar_far_1e2: tar + 0.1,
            tar_far_1e3: tar,
            tar_far_1e4: tar - 0.1,
            accuracy: 0.95,
            accuracy_std: 0.01,
            rank1,
            genuine_pairs: 1000,
            impostor_pairs: 1_000_000,
            impostors_above_far_1e4: 100,
        }),
        wall_time_s: wall_s,
        median_step_ms: 2.0,
        samples_per_s: 100.0,
        peak_memory_bytes: 0,
        head_state_bytes: 1000,
        final_loss: 0.5,
        code_revision: "test".into(),
        machine: "test".into(),
        train_identities: None,
        pair_list: None,
        traffic_per_step: None,
        resident_input_bytes: None,
    }
}

/// Writes the matrix file (with a `File` base) into `dir` and returns its path.
fn write_matrix(dir: &Path, groups: &str) -> PathBuf {
    let base_path = dir.join("base.ron");
    std::fs::write(&base_path, BASE).unwrap();
    let text = format!(
        "Matrix(name: \"resume\", base: File({:?}), seeds: [1, 2], groups: [{groups}])",
        base_path.to_str().unwrap()
    );
    let path = dir.join("resume.ron");
    std::fs::write(&path, text).unwrap();
    path
}

fn options(root: &Path) -> MatrixOptions {
    MatrixOptions {
        results_root: root.to_path_buf(),
        progress: false,
        ..MatrixOptions::default()
    }
}

const RESUME_GROUPS: &str = r#"
    Group(name: "main", axes: []),
    Group(name: "pool_size", axes: [Sweep(field: "head.pool.capacity", values: ["Fraction(0.05)", "Fraction(0.1)", "Fraction(0.2)"], label: Some("pool"))]),
"#;

#[test]
fn a_killed_matrix_resumes_with_only_the_runs_left() {
    let tmp = tempfile::tempdir().unwrap();
    let matrix = write_matrix(tmp.path(), RESUME_GROUPS);
    let root = tmp.path().join("results");
    let opts = options(&root);
    // 2 + 6 rows; pool 0.1 is the base, so 6 distinct runs.
    let calls = AtomicUsize::new(0);
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_matrix_with(&matrix, &opts, |exp: &Experiment, _: &RunOptions| {
            calls.fetch_add(1, SeqCst);
            if calls.load(SeqCst) == 4 {
                panic!("killed");
            }
            Ok(fake_ok(exp))
        })
    }));
    assert!(killed.is_err());
    assert_eq!(calls.load(SeqCst), 4);
    let runs_dir = root.join("resume").join("runs");
    // Three finished runs were recorded; the killed one left nothing, not even a temp file.
    let files: Vec<_> = std::fs::read_dir(&runs_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(!root.join("resume").join("summary.csv").exists());

    let seen = AtomicUsize::new(0);
    let outcome = run_matrix_with(&matrix, &opts, |exp: &Experiment, _: &RunOptions| {
        seen.fetch_add(1, SeqCst);
        Ok(fake_ok(exp))
    })
    .unwrap();
    assert_eq!(seen.load(SeqCst), 3);
    assert_eq!(outcome.plan.runs.len(), 6);
    assert_eq!(outcome.trained(), 3);
    assert_eq!(
        outcome
            .states
            .iter()
            .filter(|s| **s == RunState::Done { trained: false })
            .count(),
        3
    );
    for run in &outcome.plan.runs {
        let rec = RunRecord::read(&record_path(&root, "resume", &run.run_id)).unwrap();
        assert_eq!(rec.experiment, run.experiment);
    }
    let rows = read_csv(outcome.summary.as_ref().unwrap()).unwrap();
    let listed: Vec<(String, String, u64)> = rows
        .iter()
        .map(|r| (r.group.clone(), r.label.clone(), r.seed))
        .collect();
    assert_eq!(listed.len(), 8);
    assert_eq!(listed[0], ("main".into(), "base".into(), 1));
    assert_eq!(
        listed[2],
        ("pool_size".into(), "pool=Fraction(0.05)".into(), 1)
    );
    assert_eq!(
        listed[5],
        ("pool_size".into(), "pool=Fraction(0.1)".into(), 2)
    );
    // The base config's row in `pool_size` is the same run as in `main`.
    assert_eq!(rows[4].run_id, rows[0].run_id);
    assert_eq!(rows[4].config_id, rows[5].config_id);
    assert_eq!(rows[5].rank1, Some(0.2));

    // A third call finds everything done.
    let again = run_matrix_with(
        &matrix,
        &opts,
        |_: &Experiment, _: &RunOptions| -> f2c::Result<RunRecord> {
            panic!("nothing should train")
        },
    )
    .unwrap();
    assert_eq!(again.trained(), 0);
}

#[test]
fn failed_runs_are_recorded_with_their_reason_and_the_matrix_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let matrix = write_matrix(tmp.path(), RESUME_GROUPS);
    let root = tmp.path().join("results");
    let opts = options(&root);
    let calls = AtomicUsize::new(0);
    // Run 1 diverges (Ok with Failed), run 2 errors, the rest succeed.
    let outcome = run_matrix_with(&matrix, &opts, |exp: &Experiment, _: &RunOptions| {
        calls.fetch_add(1, SeqCst);
        match calls.load(SeqCst) {
            2 => Ok(RunRecord {
                status: RunStatus::Failed("loss is NaN at step 3".into()),
                metrics: None,
                ..fake_ok(exp)
            }),
            3 => Err(Error::Device("cuda:1 not found".into())),
            _ => Ok(fake_ok(exp)),
        }
    })
    .unwrap();
    assert_eq!(calls.load(SeqCst), 6);
    assert_eq!((outcome.failed(), outcome.failed_now()), (2, 2));
    assert_eq!(
        outcome.states[1],
        RunState::Failed {
            trained: true,
            reason: "loss is NaN at step 3".into()
        }
    );
    let errored =
        RunRecord::read(&record_path(&root, "resume", &outcome.plan.runs[2].run_id)).unwrap();
    assert_eq!(
        errored.status,
        RunStatus::Failed("error: device: cuda:1 not found".into())
    );
    assert_eq!(errored.metrics, None);
    let rows = read_csv(outcome.summary.as_ref().unwrap()).unwrap();
    assert_eq!(rows[1].status, "failed: loss is NaN at step 3");
    assert_eq!(rows[1].tar_far_1e2, None);
    assert_eq!(rows[0].status, "ok");

    // Failed records are kept on a rerun unless asked to retry them.
    let count = AtomicUsize::new(0);
    let counting = |exp: &Experiment, _: &RunOptions| {
        count.fetch_add(1, SeqCst);
        Ok(fake_ok(exp))
    };
    let rerun = run_matrix_with(&matrix, &opts, counting).unwrap();
    assert_eq!(count.load(SeqCst), 0);
    // Still recorded as failed, but not by this call (whose exit status is then zero).
    assert_eq!((rerun.failed(), rerun.failed_now()), (2, 0));
    let retry = MatrixOptions {
        retry_failed: true,
        ..options(&root)
    };
    let outcome = run_matrix_with(&matrix, &retry, counting).unwrap();
    assert_eq!((count.load(SeqCst), outcome.failed()), (2, 0));
}

#[test]
fn a_dry_run_lists_the_runs_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let matrix = write_matrix(tmp.path(), RESUME_GROUPS);
    let root = tmp.path().join("results");
    let opts = MatrixOptions {
        dry_run: true,
        ..options(&root)
    };
    let outcome = run_matrix_with(
        &matrix,
        &opts,
        |_: &Experiment, _: &RunOptions| -> f2c::Result<RunRecord> {
            panic!("a dry run trains nothing")
        },
    )
    .unwrap();
    assert!(!root.exists());
    assert_eq!(outcome.summary, None);
    assert!(outcome.states.iter().all(|s| *s == RunState::Pending));
    let listing = outcome.listing();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 6);
    let first = &outcome.plan.runs[0];
    assert!(
        lines[0].starts_with("   0  ") && lines[0].contains(&first.run_id),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("main,pool_size")
            && lines[0].contains("seed 1")
            && lines[0].ends_with("base  [todo]"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_trainer_that_changes_the_experiment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = Plan::load(&write_matrix(
        tmp.path(),
        r#"Group(name: "main", axes: [])"#,
    ))
    .unwrap();
    let err = run_plan_with(
        plan,
        &options(&tmp.path().join("results")),
        |exp: &Experiment, _: &RunOptions| {
            Ok(fake_ok(&Experiment {
                seed: exp.seed + 100,
                ..exp.clone()
            }))
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("must not change the experiment"),
        "{err}"
    );
}

#[test]
fn runs_side_by_side_give_the_same_records_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let matrix = write_matrix(tmp.path(), RESUME_GROUPS);
    let summaries: Vec<String> = [1, 3]
        .into_iter()
        .map(|jobs| {
            let root = tmp.path().join(format!("results-{jobs}"));
            let opts = MatrixOptions {
                jobs,
                ..options(&root)
            };
            let calls = AtomicUsize::new(0);
            let outcome = run_matrix_with(&matrix, &opts, |exp: &Experiment, _: &RunOptions| {
                calls.fetch_add(1, SeqCst);
                Ok(fake_ok(exp))
            })
            .unwrap();
            assert_eq!(
                (calls.load(SeqCst), outcome.trained()),
                (6, 6),
                "jobs {jobs}"
            );
            std::fs::read_to_string(outcome.summary.unwrap()).unwrap()
        })
        .collect();
    assert_eq!(summaries[0], summaries[1]);
    // An error stops the matrix with that error, whatever the number of jobs.
    let root = tmp.path().join("results-err");
    let opts = MatrixOptions {
        jobs: 2,
        ..options(&root)
    };
    let err = run_matrix_with(&matrix, &opts, |exp: &Experiment, _: &RunOptions| {
        Ok(RunRecord {
            run_id: "someone-else".into(),
            ..fake_ok(exp)
        })
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("must not change the experiment"), "{err}");
}

#[test]
fn a_group_may_run_its_own_seeds() {
    let plan = expand(
        "[1, 2]",
        r#"Group(name: "main", axes: [], seeds: Some([1, 2, 3, 4])),
           Group(name: "pool_size", axes: [Sweep(field: "head.pool.capacity", values: ["Fraction(0.2)"])])"#,
    )
    .unwrap();
    let seeds = |group: &str| -> Vec<u64> {
        plan.rows
            .iter()
            .filter(|r| r.group == group)
            .map(|r| plan.runs[r.run].experiment.seed)
            .collect()
    };
    assert_eq!(seeds("main"), [1, 2, 3, 4]);
    assert_eq!(seeds("pool_size"), [1, 2]);
    let msg = expand("[1]", r#"Group(name: "g", axes: [], seeds: Some([2, 2]))"#)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("each once"), "{msg}");
}
