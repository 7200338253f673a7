//! Snapshot tests of the paper tables, figures and reproduction report, rendered from the fixed
//! summary `tests/fixtures/summary.csv` (3 seeds of Full FC, Partial FC and F²C in `main`, the
//! `pool_size`, `ema`, `loaders` (dual, instance-only, identity-only) and `dcp_variant` ablations,
//! two failed runs and one single-seed configuration), statistics on hand-computed cases, and the
//! collapse marking from reference points.

use std::path::{Path, PathBuf};

use f2c::ablation::references::{mark_collapsed, ReferenceKind, ReferenceRow};
use f2c::ablation::summary::{read_csv, RowStatus, SummaryRow};
use f2c::heads::Method;
use f2c::report::figures::write_figures;
use f2c::report::reproduction::{render_report, write_report, BenchFiles, Verdict};
use f2c::report::stats::{config_stats, summarize, Metric};
use f2c::report::tables::{render_group, render_tables, write_tables, Format};

fn fixture() -> Vec<SummaryRow> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/summary.csv");
    read_csv(&path).expect("fixture summary parses")
}

fn r4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

#[test]
fn main_table_markdown() {
    let stats = config_stats(&fixture());
    insta::assert_snapshot!(render_group(&stats, "main", Format::Markdown));
}

#[test]
fn main_table_latex() {
    let stats = config_stats(&fixture());
    insta::assert_snapshot!(render_group(&stats, "main", Format::Latex));
}

#[test]
fn ablation_tables_markdown() {
    let all: Vec<String> = render_tables(&fixture())
        .into_iter()
        .filter(|(g, _, _)| g != "main")
        .map(|(_, md, _)| md)
        .collect();
    insta::assert_snapshot!(all.join("\n"));
}

#[test]
fn ablation_table_latex_with_failures_and_single_seed() {
    let stats = config_stats(&fixture());
    insta::assert_snapshot!(render_group(&stats, "dcp_variant", Format::Latex));
}

#[test]
fn reproduction_report() {
    // `tests/fixtures/heads.csv` and `training.csv`: the benchmark's columns at 1e4 and 1e5
    // identities; F²C's head is faster and smaller than FC's and the gap grows with N; its whole
    // step is slower than FC's at 1e4 (two networks) and 2.9× faster at 1e5.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let bench = BenchFiles {
        heads: f2c::bench::read_rows(&fixtures.join("heads.csv")).unwrap(),
        training: f2c::bench::training_step::read_rows(&fixtures.join("training.csv")).unwrap(),
    };
    let text = render_report(&fixture(), None, Some(&bench), None).unwrap();
    insta::assert_snapshot!(text);
}

#[test]
fn failed_runs_are_counted_not_dropped() {
    let (_, md, tex) = render_tables(&fixture())
        .into_iter()
        .find(|(g, _, _)| g == "pool_size")
        .unwrap();
    assert!(md.contains("| pool=0.001 | 2/3 ok |"), "{md}");
    assert!(
        md.contains("`f2c-pool-0001-s1`: failed: training diverged at step 812"),
        "{md}"
    );
    assert!(tex.contains(r"pool=0.001 & 2/3 ok &"), "{tex}");
}

#[test]
fn stats_of_the_fixture_match_hand_values() {
    let stats = config_stats(&fixture());
    let fc = stats.iter().find(|c| c.is_fc_reference).unwrap();
    // FC TAR@FAR=1e-3 over seeds: .8812 .8745 .8891 → mean .881600; deviations −.0004 −.0071 .0075;
    // squares 1.6e-7 + 5.041e-5 + 5.625e-5 = 1.0682e-4; /2 → 5.341e-5; s = .0073082;
    // CI = 4.302653·.0073082/√3 = .0181545.
    let s = fc.summary(Metric::TarFar1e3).unwrap();
    assert_eq!(
        (s.n, r4(s.mean), r4(s.std.unwrap()), r4(s.ci95.unwrap())),
        (3, 0.8816, 0.0073, 0.0182)
    );
    // The failed seed of pool=0.001 is counted but not in the statistic.
    let p0 = stats
        .iter()
        .find(|c| c.config_id == "f2c-pool-0001")
        .unwrap();
    assert_eq!(
        (p0.runs(), p0.ok(), p0.summary(Metric::TarFar1e3).unwrap().n),
        (3, 2, 2)
    );
    // Single successful seed: no interval.
    let one = stats
        .iter()
        .find(|c| c.config_id == "f2c-dcp-1lru")
        .unwrap();
    assert_eq!(one.summary(Metric::TarFar1e3).unwrap().ci95, None);
    assert!(fc.vs_fc.is_none());
    // F²C of `main` against FC, paired by seed: F²C .8694 .8718 .8612 − FC .8812 .8745 .8891
    // = −.0118 −.0027 −.0279; mean −.014133; deviations .002333 .011433 −.013767; squares
    // 5.444e-6 + 1.30721e-4 + 1.89521e-4 = 3.25687e-4; /2 → 1.62843e-4; sd = .012761;
    // CI half-width 4.302653·.012761/√3 = .031700: [−.045833, .017567].
    let f2c = stats
        .iter()
        .find(|c| c.group == "main" && c.first().method == Method::F2c)
        .unwrap();
    let v = f2c.vs_fc.as_ref().unwrap();
    let (lo, hi) = v.ci95.unwrap();
    assert_eq!(
        (v.n(), r4(v.mean_diff), r4(v.sd.unwrap()), r4(lo), r4(hi)),
        (3, -0.0141, 0.0128, -0.0458, 0.0176)
    );
}

#[test]
fn stats_hand_cases() {
    // 0.80, 0.82, 0.84: mean 0.82, s = 0.02, CI = 4.302653·0.02/√3 = 0.049683.
    let s = summarize(&[0.80, 0.82, 0.84]).unwrap();
    assert_eq!(
        (r4(s.mean), r4(s.std.unwrap()), r4(s.ci95.unwrap())),
        (0.82, 0.02, 0.0497)
    );
}

#[test]
fn no_fc_means_no_p_values() {
    let rows: Vec<SummaryRow> = fixture()
        .into_iter()
        .filter(|r| r.method != Method::Fc)
        .collect();
    let stats = config_stats(&rows);
    assert!(stats
        .iter()
        .all(|c| c.vs_fc.is_none() && !c.is_fc_reference));
    let md = render_group(&stats, "main", Format::Markdown);
    assert!(md.contains("no Full FC run"), "{md}");
    let report = render_report(&rows, None, None, None).unwrap();
    assert!(
        report.contains(&format!("Verdict: **{}**", Verdict::NotTested)),
        "{report}"
    );
}

#[test]
fn each_configuration_is_compared_with_full_fc_on_its_own_data() {
    // `main` (recipe `tuned`) and `pool_size` (recipe `defaults`) on data `base`; a group `hard`
    // with its own Full FC on data `hard`, its F²C on `hard` and on `other` (no Full FC there); a
    // group `defaults` with its own Full FC on `base`, all at recipe `defaults`. TAR@FAR=1e-3 moves
    // by a fixed step per copy, so every paired difference is known.
    let on = |r: &SummaryRow, group: &str, config: &str, data: &str, shift: f64| SummaryRow {
        group: group.into(),
        config_id: config.into(),
        label: format!("{config} on {data}"),
        data_id: Some(data.into()),
        recipe_id: Some("defaults".into()),
        tar_far_1e3: r.tar_far_1e3.map(|t| t + shift),
        ..r.clone()
    };
    let mut rows: Vec<SummaryRow> = fixture()
        .into_iter()
        .filter(|r| r.group == "main" || r.group == "pool_size")
        .map(|r| SummaryRow {
            data_id: Some("base".into()),
            recipe_id: Some(
                if r.group == "main" {
                    "tuned"
                } else {
                    "defaults"
                }
                .into(),
            ),
            ..r
        })
        .collect();
    let main_of = |m: Method| -> Vec<SummaryRow> {
        rows.iter()
            .filter(|r| r.group == "main" && r.method == m)
            .cloned()
            .collect()
    };
    let (fc, f2c) = (main_of(Method::Fc), main_of(Method::F2c));
    let fc_id = fc[0].config_id.clone();
    for r in &fc {
        rows.push(on(r, "hard", "fc-hard", "hard", -0.20));
        rows.push(on(r, "defaults", "fc-def", "base", -0.05));
    }
    for (r, c) in f2c.iter().zip(&fc) {
        // The F²C rows carry F²C's method; their values are Full FC's plus the step, so the
        // difference against the reference of the same data is the step exactly.
        let f = |shift| SummaryRow {
            tar_far_1e3: c.tar_far_1e3.map(|t| t + shift),
            ..r.clone()
        };
        rows.push(on(&f(0.0), "hard", "f2c-hard", "hard", -0.17));
        rows.push(on(&f(0.0), "hard", "f2c-other", "other", -0.30));
        rows.push(on(&f(0.0), "defaults", "f2c-def", "base", -0.04));
    }
    let stats = config_stats(&rows);
    let get = |group: &str, config: &str| {
        stats
            .iter()
            .find(|c| c.group == group && c.config_id == config)
            .unwrap_or_else(|| panic!("{group}/{config}"))
    };
    let diff = |group: &str, config: &str| r4(get(group, config).vs_fc.as_ref().unwrap().mean_diff);
    assert!(get("hard", "fc-hard").is_fc_reference);
    assert!(get("defaults", "fc-def").is_fc_reference);
    let reference = |group: &str, config: &str| {
        get(group, config)
            .reference
            .as_ref()
            .map(|k| k.config_id.clone())
    };
    assert_eq!(reference("hard", "f2c-hard").as_deref(), Some("fc-hard"));
    assert_eq!(diff("hard", "f2c-hard"), 0.03);
    assert_eq!(reference("defaults", "f2c-def").as_deref(), Some("fc-def"));
    assert_eq!(diff("defaults", "f2c-def"), 0.01);
    // No Full FC ran on `other`: no test, and the table says why.
    let other = get("hard", "f2c-other");
    assert!(other.reference.is_none() && other.vs_fc.is_none() && !other.is_fc_reference);
    let md = render_group(&stats, "hard", Format::Markdown);
    assert!(
        md.contains("against the Full FC of this group trained on the same data (ref)"),
        "{md}"
    );
    assert!(
        md.contains("No test for f2c-other on other: no Full FC was trained on the same data"),
        "{md}"
    );
    // A group on other data with no Full FC at all says so, not that `main` has none.
    let md = render_group(
        &config_stats(
            &rows
                .iter()
                .filter(|r| r.config_id != "fc-hard")
                .cloned()
                .collect::<Vec<_>>(),
        ),
        "hard",
        Format::Markdown,
    );
    assert!(
        md.contains("p: no Full FC was trained on this group's data, in this group or in the `main` group, so no test against it."),
        "{md}"
    );
    // `main`'s F²C stays against `main`'s Full FC, not the one of its own recipe elsewhere.
    let main_f2c = get("main", &f2c[0].config_id);
    assert_eq!(main_f2c.reference.as_ref().unwrap().config_id, fc_id);
    // A group without a Full FC of its own is compared with the Full FC of its recipe…
    let pool = stats.iter().find(|c| c.group == "pool_size").unwrap();
    let key = pool.reference.as_ref().unwrap();
    assert_eq!(
        (key.group.as_str(), key.config_id.as_str()),
        ("defaults", "fc-def")
    );
    let md = render_group(&stats, "pool_size", Format::Markdown);
    assert!(
        md.contains("against Full FC of the `defaults` group, trained on the same data with the same network and optimiser settings (ref)"),
        "{md}"
    );
    // … else with `main`'s.
    for r in rows.iter_mut().filter(|r| r.group == "pool_size") {
        r.recipe_id = Some("other".into());
    }
    let stats = config_stats(&rows);
    let pool = stats.iter().find(|c| c.group == "pool_size").unwrap();
    assert_eq!(pool.reference.as_ref().unwrap().config_id, fc_id);
    let md = render_group(&stats, "pool_size", Format::Markdown);
    assert!(
        md.contains("against Full FC of the `main` group, trained on the same data (ref)"),
        "{md}"
    );
}

#[test]
fn the_report_applies_claim_1s_rule_on_look_alike_identities_against_their_own_full_fc() {
    // The fixture plus a `hard_negatives` group on other identities: its Full FC is main's Full FC
    // less 0.20, its F²C that plus 0.03, 0.01, 0.02 by seed: +2.00 [−0.48, +4.48] pp (t_{0.975,2}
    // 4.302653 · 0.01/√3 = 0.0248), above −2: holds. Against main's Full FC it would read −18.
    let mut rows = fixture();
    let fc: Vec<SummaryRow> = rows
        .iter()
        .filter(|r| r.group == "main" && r.method == Method::Fc)
        .cloned()
        .collect();
    let f2c = rows
        .iter()
        .find(|r| r.group == "main" && r.method == Method::F2c)
        .cloned()
        .unwrap();
    let families = "families=Families(size: 8, spread: 0.75)";
    for (r, up) in fc.iter().zip([0.03, 0.01, 0.02]) {
        let hard = SummaryRow {
            group: "hard_negatives".into(),
            config_id: "fc-hard".into(),
            label: format!("method=fc, {families}"),
            data_id: Some("hard".into()),
            tar_far_1e3: r.tar_far_1e3.map(|t| t - 0.20),
            ..r.clone()
        };
        rows.push(SummaryRow {
            config_id: "f2c-hard".into(),
            label: format!("method=f2c, {families}"),
            method: Method::F2c,
            pool_fraction: f2c.pool_fraction,
            tar_far_1e3: hard.tar_far_1e3.map(|t| t + up),
            ..hard.clone()
        });
        rows.push(hard);
    }
    let report = render_report(&rows, None, None, None).unwrap();
    let section = &report[report
        .find("On look-alike identities")
        .expect("the section")..];
    let line = |config: &str| {
        section
            .lines()
            .find(|l| l.contains(config))
            .unwrap_or_else(|| panic!("{config} in {section}"))
            .to_string()
    };
    assert!(line("fc-hard").starts_with("| Families(size: 8, spread: 0.75) | Full FC |"));
    let f2c_line = line("f2c-hard");
    assert!(
        f2c_line.contains("| +2.00 [-0.48, +4.48] (n=3) |"),
        "{f2c_line}"
    );
    assert!(
        f2c_line.ends_with(&format!("| {} |", Verdict::Holds)),
        "{f2c_line}"
    );
}

#[test]
fn writes_tables_figures_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let rows = fixture();
    let rel = |ps: Vec<PathBuf>| -> Vec<String> {
        ps.iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect()
    };
    let tables = rel(write_tables(&rows, &dir.path().join("paper/tables")).unwrap());
    assert_eq!(tables.len(), 10);
    assert_eq!(tables[0], "paper/tables/main.md");
    assert_eq!(tables[9], "paper/tables/dcp_variant.tex");
    let figs = write_figures(&rows, &dir.path().join("paper/figures")).unwrap();
    assert_eq!(
        rel(figs.clone()),
        [
            "paper/figures/tar_vs_pool_fraction.svg",
            "paper/figures/tar_vs_ema_momentum.svg"
        ]
    );
    let pool_svg = std::fs::read_to_string(&figs[0]).unwrap();
    assert!(
        pool_svg.starts_with("<svg") && pool_svg.contains("<text"),
        "svg with text elements"
    );
    assert!(
        pool_svg.contains("Full FC") && pool_svg.contains("Partial FC r=0.1"),
        "reference lines in the legend"
    );
    let ema_svg = std::fs::read_to_string(&figs[1]).unwrap();
    // plotters writes each text on its own line between the tags.
    for tick in ["0", "0.9", "0.99", "0.999"] {
        assert!(
            ema_svg.contains(&format!(">\n{tick}\n</text>")),
            "ema tick {tick}"
        );
    }
    let report = write_report(&rows, None, None, &Default::default(), dir.path()).unwrap();
    let text = std::fs::read_to_string(report).unwrap();
    assert!(
        text.contains("results/bench/heads.csv` does not exist"),
        "no bench file in a fresh dir"
    );
    // With the benchmark in place, claim 2 is read from it.
    let bench_dir = dir.path().join("results/bench");
    std::fs::create_dir_all(&bench_dir).unwrap();
    let fixture_bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/heads.csv");
    std::fs::copy(fixture_bench, bench_dir.join("heads.csv")).unwrap();
    let text = std::fs::read_to_string(
        write_report(&rows, None, None, &Default::default(), dir.path()).unwrap(),
    )
    .unwrap();
    assert!(
        text.contains("| Claim 2: faster training and far less memory than FC, the gap growing with N | **holds** |"),
        "{text}"
    );
}

#[test]
fn figures_are_skipped_without_their_groups() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<SummaryRow> = fixture()
        .into_iter()
        .filter(|r| r.group == "main")
        .collect();
    let figures = dir.path().join("paper/figures");
    assert!(write_figures(&rows, &figures).unwrap().is_empty());
    assert!(!figures.exists());
}

/// Reference points for seeds 0, 1, 2: raw features at 0.5 and the untrained network at `untrained`
/// on every rate.
fn references(untrained: f64) -> Vec<ReferenceRow> {
    (0..3)
        .flat_map(|seed| {
            [
                (ReferenceKind::Raw, 0.5),
                (ReferenceKind::Untrained, untrained),
            ]
            .map(|(kind, v)| ReferenceRow {
                seed,
                data_id: None,
                kind,
                tar_far_1e2: v,
                tar_far_1e3: v,
                tar_far_1e4: v,
                rank1: v,
            })
        })
        .collect()
}

#[test]
fn collapsed_runs_are_marked_counted_and_support_nothing() {
    // The untrained network at 0.79: the fixture's m = 0 runs (TAR@1e-3 .7611 .78 .7498) and the
    // two successful pool=0.001 runs (.7405 .729) are at or below it, every other run is above.
    let mut rows = fixture();
    let refs = references(0.79);
    let marked = mark_collapsed(&mut rows, &refs);
    let collapsed: Vec<(&str, u64)> = rows
        .iter()
        .filter(|r| r.status == RowStatus::Collapsed)
        .map(|r| (r.label.as_str(), r.seed))
        .collect();
    assert_eq!(marked, 5);
    assert_eq!(
        collapsed,
        [
            ("pool=0.001", 0),
            ("pool=0.001", 2),
            ("ema=0.0", 0),
            ("ema=0.0", 1),
            ("ema=0.0", 2)
        ]
    );
    let (_, md, _) = render_tables(&rows)
        .into_iter()
        .find(|(g, _, _)| g == "ema")
        .unwrap();
    assert!(md.contains("| ema=0.0 | 0/3 ok, 3 collapsed |"), "{md}");
    let report = render_report(&rows, Some(&refs), None, None).unwrap();
    // The collapsed m = 0 is named once, with the other collapsed arms.
    assert_eq!(
        report
            .matches("`ema=0.0` collapsed on seeds 0, 1, 2 (3/3 runs): at or below the untrained network")
            .count(),
        1,
        "{report}"
    );
    assert!(
        !report.contains("m = 0 (no averaging) collapsed"),
        "{report}"
    );
    assert!(
        report.contains("| Raw input features (reference, mean) | 3 seeds | 50.00 |"),
        "{report}"
    );
    assert!(
        report.contains("| Untrained network (reference, mean) | 3 seeds | 79.00 |"),
        "{report}"
    );
    assert!(report.contains("5 collapsed, 2 failed"), "{report}");
    // The collapsed arm has no verdict of its own in claim 4: it is not supported by it.
    assert!(
        report.contains("| ema=0.0 | — | — | n/a | not supported (an arm collapsed) |"),
        "{report}"
    );
    // The untrained network everywhere above every run: the F²C arm of claim 1 collapsed.
    let mut all = fixture();
    let high = references(0.99);
    mark_collapsed(&mut all, &high);
    let report = render_report(&all, Some(&high), None, None).unwrap();
    assert!(
        report.contains("| Claim 1: accuracy comparable to full FC while the pool is a small fraction of N | **not supported (an arm collapsed)** |"),
        "{report}"
    );
    assert!(
        report.contains("Not supported: F²C pool 10% collapsed on seeds 0, 1, 2"),
        "{report}"
    );
}

#[test]
fn without_references_collapse_is_not_checked() {
    let report = render_report(&fixture(), None, None, None).unwrap();
    assert!(report.contains("collapse could not be checked"), "{report}");
}

#[test]
fn a_claim_without_its_group_is_an_error() {
    let rows: Vec<SummaryRow> = fixture().into_iter().filter(|r| r.group != "ema").collect();
    let err = render_report(&rows, None, None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`ema`"), "{err}");
}

#[test]
fn run_counts_are_the_runs_present() {
    // The fixture's 42 rows hold 33 distinct runs: the `main` F²C runs (f2c-main-b914, 3 seeds)
    // are also the reference rows of `pool_size`, `ema` and `loaders` (9 repeated rows).
    let report = render_report(&fixture(), None, None, None).unwrap();
    assert!(
        report.contains("(33 runs of 12 configurations: 31 ok, 0 collapsed, 2 failed;"),
        "{}",
        &report[..400]
    );
    // Drop one seed of one configuration: the count is of runs, not configurations × seeds.
    let mut rows = fixture();
    let total = 33;
    let gone = rows.iter().position(|r| r.group == "ema").unwrap();
    rows.remove(gone);
    let report = render_report(&rows, None, None, None).unwrap();
    assert!(
        report.contains(&format!("({} runs of", total - 1)),
        "{}",
        &report[..400]
    );
}

// ---- the scale study ----

/// A fake run of the scale test's matrix: TAR@FAR=1e-3 from the method, N and seed, with a
/// seed-dependent wobble so that the paired differences vary.
fn fake_scale_run(
    exp: &f2c::Experiment,
    _: &f2c::train::run::RunOptions,
) -> f2c::error::Result<f2c::results::RunRecord> {
    let base = match exp.head.method() {
        Method::Fc => 0.80,
        Method::PartialFc => 0.74,
        Method::F2c => 0.79,
        Method::Dcq => 0.70,
    };
    let s = exp.seed as f64;
    let tar = base - exp.data.as_ref().unwrap().train_identities as f64 / 1e5
        + 0.01 * s
        + 0.003 * (s * s % 3.0);
    Ok(crate::ablation_matrix::fake_record(
        exp,
        tar,
        tar,
        120.0 * exp.seed as f64,
    ))
}

/// The scale study's matrix on the tiny experiment at two N: Partial FC and F²C on three seeds in
/// one group, Full FC on two in another, as `ablations/scale.ron` schedules them.
const SCALE_MATRIX: &str = r#"Matrix(name: "scale", base: File("BASE"), seeds: [1, 2, 3], groups: [
    Group(name: "scale", axes: [
        Sweep(field: "data.train_identities", label: Some("N"), values: ["200", "400"]),
        Zip([
            Sweep(field: "head", label: Some("method"), values: [
                "PartialFc(margin: CosFace(0.4), scale: 32.0, sample_rate: 0.1)",
                "F2c(F2cConfig(margin: CosFace(0.4), scale: 32.0, pool: PoolConfig(capacity: Fraction(0.2), rows: Two, eviction: Lru), ema_momentum: 0.99, top_k: Auto, pool_eval: TwoRow, symmetric: true))",
            ]),
            Sweep(field: "train.loaders", label: Some("loaders"), values: [
                "LoaderConfig(identities: 0, instances: 48)",
                "LoaderConfig(identities: 16, instances: 32)",
            ]),
        ]),
    ]),
    Group(name: "scale_fc", seeds: Some([1, 2]), axes: [
        Sweep(field: "data.train_identities", label: Some("N"), values: ["200", "400"]),
        Sweep(field: "head", label: Some("method"), values: ["Fc(margin: CosFace(0.4), scale: 32.0)"]),
        Sweep(field: "train.loaders", label: Some("loaders"), values: ["LoaderConfig(identities: 0, instances: 48)"]),
    ]),
])"#;

/// Trains the matrix `text` (`BASE`: the tiny experiment) with `run` into `<root>/results/`.
fn run_fake_matrix(
    root: &Path,
    file: &str,
    text: &str,
    run: fn(
        &f2c::Experiment,
        &f2c::train::run::RunOptions,
    ) -> f2c::error::Result<f2c::results::RunRecord>,
) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/tiny.ron");
    let matrix_path = root.join(file);
    std::fs::write(&matrix_path, text.replace("BASE", base.to_str().unwrap())).unwrap();
    let plan = f2c::ablation::matrix::Matrix::load(&matrix_path)
        .unwrap()
        .expand(&matrix_path)
        .unwrap();
    let opts = f2c::ablation::runner::MatrixOptions {
        results_root: root.join("results"),
        progress: false,
        ..Default::default()
    };
    f2c::ablation::runner::run_plan_with(plan, &opts, run).unwrap();
}

/// A scale table's rows: "Full FC ×2" (method and runs).
fn row_names(part: &f2c::report::scale::Part) -> Vec<String> {
    part.stats
        .iter()
        .map(|c| {
            let name = f2c::report::tables::method_name(c.first());
            format!("{name} ×{}", c.runs())
        })
        .collect()
}

#[test]
fn scale_study_tables_pair_each_n_with_its_full_fc_and_the_report_cites_them() {
    use f2c::report::scale;
    let root = tempfile::tempdir().unwrap();
    assert_eq!(
        scale::load(root.path()).unwrap(),
        None,
        "no study, nothing read"
    );
    run_fake_matrix(root.path(), "scale.ron", SCALE_MATRIX, fake_scale_run);

    let study = scale::load(root.path()).unwrap().unwrap();
    let parts: Vec<(usize, usize, Vec<String>)> = study
        .parts
        .iter()
        .map(|p| (p.identities, p.steps, row_names(p)))
        .collect();
    // One table per N, Full FC (two seeds) first as the reference of the rows after it.
    let names = vec![
        "Full FC ×2".to_string(),
        "Partial FC r=0.1 ×3".into(),
        "F²C pool 20% ×3".into(),
    ];
    assert_eq!(parts, vec![(200, 300, names.clone()), (400, 300, names)]);
    let part = &study.parts[0];
    assert!(part.stats[0].is_fc_reference);
    // Paired on the two seeds Full FC has: F²C − FC = −0.01 on both → p = 0.
    let f2c = &part.stats[2].vs_fc.as_ref().unwrap();
    assert_eq!((f2c.seeds.clone(), r4(f2c.mean_diff)), (vec![1, 2], -0.01));
    insta::assert_snapshot!(scale::render(&study, Format::Markdown));
    assert!(scale::render(&study, Format::Latex).contains(r"\label{tab:scale_400}"));

    // Written beside the default tables, and cited by claims 1 and 2 of the report.
    let written = scale::write_tables(&study, root.path()).unwrap();
    assert!(written[0].ends_with("paper/tables/scale.md"));
    let report = render_report(&fixture(), None, None, Some(&study)).unwrap();
    for cited in [
        "At scale (`paper/tables/scale.md`, from `results/scale/`): the same rule",
        "At scale (`paper/tables/scale.md`, from `results/scale/`), the whole training step",
        "| 400 | F²C pool 20% |",
        "are in `paper/tables/scale.md` and `.tex`",
    ] {
        assert!(report.contains(cited), "{cited}");
    }
    // Without the study the report is what it was.
    let without = render_report(&fixture(), None, None, None).unwrap();
    assert!(!without.contains("scale.md"));
}

/// A fake run of the learning-rate check at scale: the scale study's run, plus 2 points at lr 0.2
/// for F²C and minus 1 point there for Full FC.
fn fake_lr_check_run(
    exp: &f2c::Experiment,
    opts: &f2c::train::run::RunOptions,
) -> f2c::error::Result<f2c::results::RunRecord> {
    let mut rec = fake_scale_run(exp, opts)?;
    let shift = match (exp.head.method(), exp.train.lr > 0.15) {
        (Method::F2c, true) => 0.02,
        (Method::Fc, true) => -0.01,
        _ => 0.0,
    };
    rec.metrics.as_mut().unwrap().tar_far_1e3 += shift;
    Ok(rec)
}

/// The learning-rate check of the scale study: Full FC and F²C at lr 0.1 (the tiny experiment's,
/// at which the scale matrix trains them) and 0.2, at N = 200, two seeds.
const LR_CHECK_MATRIX: &str = r#"Matrix(name: "scale-tuning", base: File("BASE"), seeds: [1, 2], groups: [
    Group(name: "tune", axes: [
        Sweep(field: "data.train_identities", label: Some("N"), values: ["200"]),
        Zip([
            Sweep(field: "head", label: Some("method"), values: [
                "Fc(margin: CosFace(0.4), scale: 32.0)",
                "F2c(F2cConfig(margin: CosFace(0.4), scale: 32.0, pool: PoolConfig(capacity: Fraction(0.2), rows: Two, eviction: Lru), ema_momentum: 0.99, top_k: Auto, pool_eval: TwoRow, symmetric: true))",
            ]),
            Sweep(field: "train.loaders", label: Some("loaders"), values: [
                "LoaderConfig(identities: 0, instances: 48)",
                "LoaderConfig(identities: 16, instances: 32)",
            ]),
        ]),
        Sweep(field: "train.lr", label: Some("lr"), values: ["0.1", "0.2"]),
    ]),
])"#;

/// Trains [`LR_CHECK_MATRIX`] beside a scale study in `root` and reads the study again.
fn run_lr_check(root: &Path) -> f2c::report::scale::Study {
    run_fake_matrix(root, "tuning.ron", LR_CHECK_MATRIX, fake_lr_check_run);
    f2c::report::scale::load(root).unwrap().unwrap()
}

#[test]
fn the_learning_rate_check_at_scale_is_cited_beside_claim_1s_rows() {
    use f2c::report::scale;
    let root = tempfile::tempdir().unwrap();
    run_fake_matrix(root.path(), "scale.ron", SCALE_MATRIX, fake_scale_run);
    let before = scale::load(root.path()).unwrap().unwrap();
    assert!(before.lr_check.is_empty(), "not run, not read");
    let report = render_report(&fixture(), None, None, Some(&before)).unwrap();
    assert!(!report.contains("The learning-rate check"));

    let study = run_lr_check(root.path());
    // Full FC at lr 0.1 scores 0.80 − 0.002 + 0.01·s + 0.003·(s² mod 3): 81.1 % and 82.1 %.
    assert_eq!(
        study.lr_check,
        vec![
            "Full FC: the defaults are its best point (81.60), the grid's smallest learning rate \
             (a smaller one is untested)."
                .to_string(),
            "F²C pool 20%: best at lr 0.2, weight decay 0.0001 (82.60), 2.00 points above the \
             defaults (80.60), the grid's largest learning rate (a larger one is untested)."
                .into(),
        ]
    );
    assert!(study
        .tuning
        .contains("| Full FC | 0.2 | 0.0001 | 80.60 | 2 |"));
    let report = render_report(&fixture(), None, None, Some(&study)).unwrap();
    assert!(report.contains(
        "Every row trains at the learning rate tuned at 5,000 identities. The learning-rate check \
         at the study's N (validation identities; `paper/tables/scale.md`, \"Learning rate at this \
         N\"): Full FC: the defaults are its best point (81.60), the grid's smallest learning \
         rate (a smaller one is untested). F²C pool 20%: best at lr 0.2"
    ));
}

/// The scale test's matrix and a group at the learning rates "tuned at N" (at N = 200): Full FC at
/// lr 0.2 (not its best point in the fake check), Partial FC at 0.1 (not in the check) and F²C at
/// 0.2 (its best).
const TUNED_AT_N_GROUP: &str = r#"
    Group(name: "scale_tuned_at_n", axes: [
        Sweep(field: "data.train_identities", label: Some("N"), values: ["200"]),
        Zip([
            Sweep(field: "head", label: Some("method"), values: [
                "Fc(margin: CosFace(0.4), scale: 32.0)",
                "PartialFc(margin: CosFace(0.4), scale: 32.0, sample_rate: 0.1)",
                "F2c(F2cConfig(margin: CosFace(0.4), scale: 32.0, pool: PoolConfig(capacity: Fraction(0.2), rows: Two, eviction: Lru), ema_momentum: 0.99, top_k: Auto, pool_eval: TwoRow, symmetric: true))",
            ]),
            Sweep(field: "train.loaders", label: Some("loaders"), values: [
                "LoaderConfig(identities: 0, instances: 48)",
                "LoaderConfig(identities: 0, instances: 48)",
                "LoaderConfig(identities: 16, instances: 32)",
            ]),
            Sweep(field: "train.lr", label: Some("lr"), values: ["0.2", "0.1", "0.2"]),
        ]),
    ]),
])"#;

#[test]
fn each_method_at_its_learning_rate_tuned_at_n_gets_tables_of_its_own() {
    use f2c::report::scale;
    let root = tempfile::tempdir().unwrap();
    let matrix = SCALE_MATRIX.strip_suffix("])").unwrap().to_string() + TUNED_AT_N_GROUP;
    run_fake_matrix(root.path(), "scale.ron", &matrix, fake_lr_check_run);
    let study = scale::load(root.path()).unwrap().unwrap();
    let parts: Vec<(String, Vec<String>)> = study
        .parts
        .iter()
        .map(|p| (p.name(), row_names(p)))
        .collect();
    // The tables at the 5,000-identity values are the scale test's; the tuned group's runs, Full
    // FC's included, make a table of their own after them at their N.
    let defaults = vec![
        "Full FC ×2".to_string(),
        "Partial FC r=0.1 ×3".into(),
        "F²C pool 20% ×3".into(),
    ];
    assert_eq!(
        parts,
        vec![
            ("200".to_string(), defaults.clone()),
            (
                "200, lr tuned at this N".to_string(),
                vec![
                    "Full FC ×3".to_string(),
                    "Partial FC r=0.1 ×3".into(),
                    "F²C pool 20% ×3".into()
                ]
            ),
            ("400".to_string(), defaults),
        ]
    );
    let tuned = &study.parts[1];
    assert!(tuned.stats[0].is_fc_reference);
    // Against the tuned group's Full FC (lr 0.2, 1 point down), not the first table's: F²C at
    // lr 0.2 is 2 points up, so −0.01 + 0.02 + 0.01 on every seed.
    let f2c = tuned.stats[2].vs_fc.as_ref().unwrap();
    assert_eq!(
        (f2c.seeds.clone(), r4(f2c.mean_diff)),
        (vec![1, 2, 3], 0.02)
    );
    let wd = "weight decay 0.0001";
    let not_checked = vec![
        format!("Full FC: lr 0.2, {wd}, its method is not in the check"),
        format!("Partial FC r=0.1: lr 0.1, {wd}, its method is not in the check"),
        format!("F²C pool 20%: lr 0.2, {wd}, its method is not in the check"),
    ];
    assert!(tuned.tuned_at_n && !study.parts[0].tuned_at_n);
    assert_eq!(tuned.points, not_checked);
    assert!(
        study.parts[0].points.is_empty(),
        "no 5,000-identity grid, no lines"
    );

    // Once the check has run, each point is read against its method's best.
    let study = run_lr_check(root.path());
    let lines = vec![
        format!("Full FC: lr 0.2, {wd}, not its method's best point in the check (lr 0.1, {wd})"),
        format!("Partial FC r=0.1: lr 0.1, {wd}, its method is not in the check"),
        format!("F²C pool 20%: lr 0.2, {wd}, its method's best point in the check"),
    ];
    assert_eq!(study.parts[1].points, lines);
    // The defaults the check compares with are the first tables' (lr 0.1), not the tuned group's.
    assert!(study.lr_check[0].starts_with("Full FC: the defaults are its best point (81.60)"));
    let md = scale::render(&study, Format::Markdown);
    assert!(
        md.contains(
            "Scale: N = 200 training identities, 300 steps (19.3–28.4 epochs), each method at its \
         learning rate tuned at this N"
        ),
        "{md}"
    );
    assert!(md.contains(&lines[2]));
    assert!(scale::render(&study, Format::Latex).contains(r"\label{tab:scale_200_tuned_at_n}"));

    // The first tables' points are read against the 5,000-identity grid once it has run (here
    // the check's grid, run as the tuning matrix).
    let grid_5k = LR_CHECK_MATRIX.replace("\"scale-tuning\"", "\"tuning\"");
    run_fake_matrix(root.path(), "tuning-5k.ron", &grid_5k, fake_lr_check_run);
    let study = scale::load(root.path()).unwrap().unwrap();
    let grid = "the 5,000-identity grid";
    assert_eq!(
        study.parts[0].points,
        vec![
            format!("Full FC: lr 0.1, {wd}, its method's best point in {grid}"),
            format!("Partial FC r=0.1: lr 0.1, {wd}, its method is not in {grid}"),
            format!(
                "F²C pool 20%: lr 0.1, {wd}, not its method's best point in {grid} (lr 0.2, {wd})"
            ),
        ]
    );
    assert_eq!(
        study.parts[1].points, lines,
        "the tuned table reads the check"
    );
    assert!(scale::render(&study, Format::Markdown)
        .contains("The rows of this table train at learning rates tuned at 5,000 identities."));

    let report = render_report(&fixture(), None, None, Some(&study)).unwrap();
    for expected in [
        "| 200, lr tuned at this N | F²C pool 20% |",
        "200, lr tuned at this N: F²C pool 20% holds",
        "those marked \"lr tuned at this N\" at their method's best point",
    ] {
        assert!(report.contains(expected), "missing: {expected}");
    }
    // A learning rate does not change a step's cost: claim 2 reads the first tables only (the
    // tuned group's Full FC has three runs, the first table's two).
    assert!(report.contains("| 200 | Full FC | 2/2 ok |"));
    assert!(!report.contains("| 200 | Full FC | 3/3 ok |"));
}

/// A fake run of the components test's matrix: the scale test's F²C at that N and seed, lowered
/// by the setting. Instance-only loaders lose 30 points and identity-only 2 to 2.2 on every seed
/// (claim 3 holds); m = 0.9 loses 5 points and m = 0.999 wobbles by ±0.4 around the reference
/// (claim 4 inconclusive); m = 0 loses 50.
fn fake_components_run(
    exp: &f2c::Experiment,
    opts: &f2c::train::run::RunOptions,
) -> f2c::error::Result<f2c::results::RunRecord> {
    let mut rec = fake_scale_run(exp, opts)?;
    let f2c::heads::HeadConfig::F2c(head) = &exp.head else {
        panic!("the components study trains F²C only")
    };
    let loaders = &exp.train.loaders;
    let s = exp.seed as f64;
    let m = head.ema_momentum as f64;
    let drop = if loaders.identities == 0 {
        0.30
    } else if loaders.instances == 0 {
        0.02 + 0.002 * (s % 2.0)
    } else if m < 0.5 {
        0.50
    } else if (m - 0.9).abs() < 1e-6 {
        0.05
    } else if (m - 0.999).abs() < 1e-6 {
        0.004
            * if exp.seed.is_multiple_of(2) {
                1.0
            } else {
                -1.0
            }
    } else {
        0.0
    };
    let metrics = rec.metrics.as_mut().unwrap();
    metrics.tar_far_1e3 -= drop;
    Ok(rec)
}

/// The study of F²C's parts at scale, on the tiny experiment: for each of two pools the reference
/// run in `main`, the loaders and momenta around it, four seeds.
const COMPONENTS_MATRIX: &str = r#"Matrix(name: "scale-components", base: File("BASE"), seeds: [1, 2, 3, 4], groups: [
    Group(name: "main", axes: [POOLS]),
    Group(name: "loaders", axes: [
        POOLS,
        Zip([
            Sweep(field: "train.loaders.identities", label: Some("id"), values: ["0", "16", "32"]),
            Sweep(field: "train.loaders.instances", label: Some("inst"), values: ["64", "32", "0"]),
        ]),
    ]),
    Group(name: "ema", axes: [
        POOLS,
        Sweep(field: "head.ema_momentum", label: Some("m"), values: ["0.0", "0.9", "0.99", "0.999"]),
    ]),
])"#;

/// The pool sizes of [`COMPONENTS_MATRIX`]: listed largest first, reported smallest first.
const COMPONENTS_POOLS: &str = r#"Sweep(field: "head.pool.capacity", label: Some("pool"), values: ["Fraction(0.3)", "Fraction(0.2)"])"#;

#[test]
fn claims_3_and_4_apply_their_rules_to_the_study_of_f2cs_parts_at_scale() {
    use f2c::report::scale;
    let root = tempfile::tempdir().unwrap();
    run_fake_matrix(root.path(), "scale.ron", SCALE_MATRIX, fake_scale_run);
    let study = scale::load(root.path()).unwrap().unwrap();
    assert!(study.components.is_empty(), "not run, not read");
    let before = render_report(&fixture(), None, None, Some(&study)).unwrap();
    assert!(before.contains(
        "| Claim 3: the dual loaders make pool updating more efficient than a single loader \
         | **inconclusive at the 95% CI** | not studied at scale |"
    ));

    let matrix = COMPONENTS_MATRIX.replace("POOLS", COMPONENTS_POOLS);
    run_fake_matrix(root.path(), "components.ron", &matrix, fake_components_run);
    let study = scale::load(root.path()).unwrap().unwrap();
    let pools: Vec<(usize, usize, String, usize)> = study
        .components
        .iter()
        .map(|c| (c.identities, c.steps, c.describe(), c.stats.len()))
        .collect();
    // One study per pool, each with its reference (in `main`), 3 loader and 4 momentum settings.
    let describe = |pool| format!("N = 200 training identities, 300 steps, pool {pool}% of N");
    assert_eq!(
        pools,
        vec![
            (200, 300, describe(20), 1 + 3 + 4),
            (200, 300, describe(30), 1 + 3 + 4)
        ]
    );

    let report = render_report(&fixture(), None, None, Some(&study)).unwrap();
    for expected in [
        // The verdicts at scale beside the default matrix's, which they leave as they were.
        "| Claim 3: the dual loaders make pool updating more efficient than a single loader \
         | **inconclusive at the 95% CI** | 200, pool 20%: holds; 200, pool 30%: holds |",
        "| Claim 4: the EMA gallery net matters | **holds** | 200, pool 20%: inconclusive at the \
         95% CI; 200, pool 30%: inconclusive at the 95% CI |",
        "| Claim 1: accuracy comparable to full FC while the pool is a small fraction of N \
         | **inconclusive at the 95% CI** | 200: F²C pool 20% holds; 400: F²C pool 20% holds |",
        // The fake runs all step in 2 ms with 1,000 bytes of head state.
        "| **not tested (runs missing)** | whole step against Full FC, no rule: 200: F²C pool 20% \
         1.00× faster, 1.00× smaller; 400: F²C pool 20% 1.00× faster, 1.00× smaller |",
        "At scale (`results/scale-components/`, `ablations/scale-components.ron`): the same rule \
         on the `loaders` group of F²C at N = 200 training identities, 300 steps, pool 20% of N",
        "Verdict at this N: **holds**",
        // Paired over the four seeds: dual − instance-only = +30 points on every seed.
        "| pool=Fraction(0.2), id=0, inst=64 | +30.00 [+30.00, +30.00] (n=4) |",
        "| pool=Fraction(0.3), m=0.9 | +5.00 [+5.00, +5.00] (n=4) |",
        "Whether m = 0 (no averaging) collapsed could not be checked: no reference points.",
    ] {
        assert!(report.contains(expected), "missing: {expected}\n{report}");
    }
    assert_eq!(
        report
            .matches("At scale (`results/scale-components/`")
            .count(),
        4
    );

    // Runs of two sizes cannot be paired with each other: an error, not a silent table.
    let other = COMPONENTS_MATRIX
        .replacen(
            "POOLS",
            r#"Sweep(field: "data.train_identities", values: ["400"])"#,
            1,
        )
        .replace("POOLS", COMPONENTS_POOLS);
    run_fake_matrix(root.path(), "components.ron", &other, fake_components_run);
    let err = scale::load(root.path()).unwrap_err().to_string();
    assert!(err.contains("compares runs of one N and length"), "{err}");
}

#[test]
fn ablate_regenerates_the_paper_from_the_default_matrix_after_a_side_study() {
    use f2c::report::paper_results;
    let results = Path::new("results");
    assert_eq!(
        paper_results(&results.join("scale")),
        results.join("default")
    );
    assert_eq!(
        paper_results(&results.join("tuning")),
        results.join("default")
    );
    assert_eq!(paper_results(&results.join("paper")), results.join("paper"));
    assert_eq!(
        paper_results(&results.join("default")),
        results.join("default")
    );
}

/// A fake run of the tuning grid test: the scale study's run, F²C with a pool of 30 % 2 points
/// up at lr 0.2 and with a pool of 20 % 2 points down, Full FC 1 point down.
fn fake_pool_grid_run(
    exp: &f2c::Experiment,
    opts: &f2c::train::run::RunOptions,
) -> f2c::error::Result<f2c::results::RunRecord> {
    let mut rec = fake_scale_run(exp, opts)?;
    let shift = match (&exp.head, exp.train.lr > 0.15) {
        (f2c::heads::HeadConfig::F2c(h), true) => match h.pool.capacity {
            f2c::heads::class_pool::Capacity::Fraction(f) if f > 0.25 => 0.02,
            _ => -0.02,
        },
        (f2c::heads::HeadConfig::Fc { .. }, true) => -0.01,
        _ => 0.0,
    };
    rec.metrics.as_mut().unwrap().tar_far_1e3 += shift;
    Ok(rec)
}

/// The tuning grid: F²C with pools of 30 % and 20 % and Full FC at lr 0.1 and 0.2.
const POOL_GRID_MATRIX: &str = r#"Matrix(name: "tuning", base: File("BASE"), seeds: [1, 2], groups: [
    Group(name: "grid", axes: [
        Zip([
            Sweep(field: "head", label: Some("method"), values: [
                "Fc(margin: CosFace(0.4), scale: 32.0)",
                "F2c(F2cConfig(margin: CosFace(0.4), scale: 32.0, pool: PoolConfig(capacity: Fraction(0.3), rows: Two, eviction: Lru), ema_momentum: 0.99, top_k: Auto, pool_eval: TwoRow, symmetric: true))",
                "F2c(F2cConfig(margin: CosFace(0.4), scale: 32.0, pool: PoolConfig(capacity: Fraction(0.2), rows: Two, eviction: Lru), ema_momentum: 0.99, top_k: Auto, pool_eval: TwoRow, symmetric: true))",
            ]),
            Sweep(field: "train.loaders", label: Some("loaders"), values: [
                "LoaderConfig(identities: 0, instances: 48)",
                "LoaderConfig(identities: 16, instances: 32)",
                "LoaderConfig(identities: 16, instances: 32)",
            ]),
        ]),
        Sweep(field: "train.lr", label: Some("lr"), values: ["0.1", "0.2"]),
    ]),
])"#;

/// The default matrix's `main` group of the tuning grid test: Full FC at lr 0.2, F²C pool 20 %
/// at 0.1.
const POOL_MAIN_MATRIX: &str = r#"Matrix(name: "default", base: File("BASE"), seeds: [1], groups: [
    Group(name: "main", axes: [
        Zip([
            Sweep(field: "head", label: Some("method"), values: [
                "Fc(margin: CosFace(0.4), scale: 32.0)",
                "F2c(F2cConfig(margin: CosFace(0.4), scale: 32.0, pool: PoolConfig(capacity: Fraction(0.2), rows: Two, eviction: Lru), ema_momentum: 0.99, top_k: Auto, pool_eval: TwoRow, symmetric: true))",
            ]),
            Sweep(field: "train.loaders", label: Some("loaders"), values: [
                "LoaderConfig(identities: 0, instances: 48)",
                "LoaderConfig(identities: 16, instances: 32)",
            ]),
            Sweep(field: "train.lr", label: Some("lr"), values: ["0.2", "0.1"]),
        ]),
    ]),
])"#;

#[test]
fn the_tuning_grid_keeps_each_pool_apart_and_checks_mains_points() {
    use f2c::report::tuning;
    let root = tempfile::tempdir().unwrap();
    run_fake_matrix(
        root.path(),
        "tuning.ron",
        POOL_GRID_MATRIX,
        fake_pool_grid_run,
    );
    run_fake_matrix(root.path(), "default.ron", POOL_MAIN_MATRIX, fake_scale_run);
    let dir = root.path().join("results/default");
    let rows = f2c::ablation::summary::read_csv(&dir.join("summary.csv")).unwrap();
    let main = tuning::trained_points(&dir, &rows, "main").unwrap();
    let text = tuning::section(root.path(), (0.1, 1e-4), &main).unwrap();
    // Each pool has its own grid and its own best point.
    for line in [
        "| F²C pool 30% | 0.2 | 0.0001 | **",
        "| F²C pool 20% | 0.1 | 0.0001 | **",
        "- F²C pool 20%: the defaults are its best point",
        "- F²C pool 30%: best at lr 0.2",
        "- Full FC: lr 0.2, weight decay 0.0001, not its method's best point in the grid (lr 0.1, \
         weight decay 0.0001).",
        "- F²C pool 20%: lr 0.1, weight decay 0.0001, its method's best point in the grid.",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("- F²C pool 30%: lr"), "not in `main`");
    // Without `main`'s runs the section has no such lines.
    let without = tuning::section(root.path(), (0.1, 1e-4), &Default::default()).unwrap();
    assert!(!without.contains("`main` group"));
}

/// Writes `rec` as a run record into `dir`, under its run id.
fn put_record(dir: &Path, rec: &f2c::results::RunRecord) {
    std::fs::create_dir_all(dir).unwrap();
    rec.write_atomic(&dir.join(format!("{}.json", rec.run_id)))
        .unwrap();
}

#[test]
fn gpu_runs_are_set_beside_their_cpu_twins_and_the_matrix_time_is_estimated_from_them() {
    use f2c::device::DeviceChoice;
    use f2c::report::gpu::{estimate_matrix, method_times, pairs, render};
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    assert!(render(r).unwrap().is_none(), "no results/gpu, no table");
    let load = |file: &str, seed: u64, device: DeviceChoice| {
        let mut e = f2c::Experiment::load(Path::new(file)).unwrap();
        e.seed = seed;
        e.device = device;
        e
    };
    let gpu = DeviceChoice::Cuda(0);
    let fake = crate::ablation_matrix::fake_record;
    // The default matrix: two Full FC runs and one F²C run on the CPU; Full FC seed 1 on the GPU
    // (ten times faster, 0.02 higher), and a GPU run with no CPU twin.
    let cpu_dir = r.join("results/default/runs");
    let gpu_dir = r.join("results/default-gpu/runs");
    let runs = [
        (
            &cpu_dir,
            "experiments/fc.ron",
            1,
            DeviceChoice::Cpu,
            0.80,
            100.0,
        ),
        (
            &cpu_dir,
            "experiments/fc.ron",
            2,
            DeviceChoice::Cpu,
            0.80,
            100.0,
        ),
        (
            &cpu_dir,
            "experiments/f2c.ron",
            1,
            DeviceChoice::Cpu,
            0.70,
            50.0,
        ),
        (&gpu_dir, "experiments/fc.ron", 1, gpu, 0.82, 10.0),
        (&gpu_dir, "experiments/fc.ron", 3, gpu, 0.82, 10.0),
    ];
    for (dir, file, seed, device, tar, wall_s) in runs {
        put_record(dir, &fake(&load(file, seed, device), tar, 0.5, wall_s));
    }
    let found = pairs(&gpu_dir, &cpu_dir).unwrap();
    assert_eq!(found.len(), 2);
    let twinned: Vec<bool> = found.iter().map(|p| p.cpu.is_some()).collect();
    assert_eq!(
        twinned.iter().filter(|&&t| t).count(),
        1,
        "only seed 1 has a CPU twin"
    );
    let times = method_times(&found);
    let fc = &times[&Method::Fc];
    assert_eq!((fc.runs, fc.cpu_s, fc.gpu_s), (1, 100.0, 10.0));
    assert!((fc.mean_abs_delta - 2.0).abs() < 1e-9, "{fc:?}");
    // Every CPU run over its method's ratio, F²C's over all paired runs' (10 too): 250 s → 25 s.
    let cpu_all: Vec<_> = std::fs::read_dir(&cpu_dir)
        .unwrap()
        .map(|e| f2c::results::RunRecord::read(&e.unwrap().path()).unwrap())
        .collect();
    let (cpu, est, unmeasured) = estimate_matrix(&cpu_all, &times);
    assert_eq!((cpu, est, unmeasured), (250.0, 25.0, vec![Method::F2c]));
    // The table: the pair's accuracies and their difference, the estimate and its caveat.
    std::fs::create_dir_all(r.join("results/gpu")).unwrap();
    let text = render(r).unwrap().expect("results/gpu exists");
    assert!(
        text.contains("| Full FC | 1 | 100.0 s | 10.0 s | 10.0× | 2.00 pts | 2.00 pts |"),
        "{text}"
    );
    assert!(text.contains("1 of its 3 runs"), "{text}");
    assert!(
        text.contains("sum to 0.07 h") && text.contains("about 0.01 h"),
        "{text}"
    );
    assert!(text.contains("No run of F²C was paired"), "{text}");
    assert!(
        !text.contains("scale study's seed 1"),
        "no scale runs on the GPU, no section"
    );
}
