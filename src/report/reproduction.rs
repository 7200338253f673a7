//! The reproduction report `paper/README.md`: for each of the four claims of the F²C paper
//! (/work/shared/METHOD.md, "What the paper claims"), our numbers and a verdict decided by a rule
//! stated in the report, from the statistics of [`crate::report::stats`].
//!
//! Verdict rules (accuracy is TAR@FAR=1e-3; intervals are Welch 95% CIs of a difference of means):
//! - claim 1 (accuracy comparable to full FC with a small pool) is a non-inferiority test with a
//!   margin of [`NON_INFERIORITY_MARGIN_PP`] points: holds if the CI of F²C − FC lies above −margin,
//!   does not hold if it lies below −margin, inconclusive otherwise;
//! - claims 3 (dual loaders beat a single instance loader) and 4 (the EMA gallery matters: the
//!   reference momentum beats m = 0) are superiority tests: holds if the CI of the difference lies
//!   above 0, does not hold if it lies below 0, inconclusive if it contains 0;
//! - claim 2 (faster, less memory, gap growing with N) comes from the head benchmark
//!   `results/bench/heads.csv`, single timings without an interval: holds if at the largest N timed
//!   for both heads every F²C variant is faster and smaller than full FC, and its speed-up at the
//!   largest N is at least that at the smallest N.
//!
//! The report is generated text only: every number in it is computed from the summary rows or the
//! benchmark file, and it names the configurations and runs it used.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ablation::summary::SummaryRow;
use crate::error::{Error, Result};
use crate::report::stats::{config_stats, groups, welch_diff_ci95, ConfigStats, Metric};
use crate::report::tables::{human_bytes, method_name, short_number};

/// Non-inferiority margin of claim 1, in percentage points of TAR@FAR=1e-3.
pub const NON_INFERIORITY_MARGIN_PP: f64 = 2.0;

/// Where the head benchmark writes its table, relative to the project root.
pub const BENCH_CSV: &str = "results/bench/heads.csv";

/// The outcome of testing one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    DoesNotHold,
    /// The 95% interval straddles the decision threshold, or is undefined (n < 2).
    Inconclusive,
    /// The runs the rule needs are not in the summary (or the benchmark file is missing).
    NotTested,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Inconclusive => "inconclusive at the 95% CI",
            Verdict::NotTested => "not tested (runs missing)",
        })
    }
}

/// Non-inferiority of `candidate` to `reference` with `margin` (same units as the samples): the
/// verdict and the 95% CI of mean(candidate) − mean(reference), `None` when undefined.
pub fn non_inferiority(
    candidate: &[f64],
    reference: &[f64],
    margin: f64,
) -> (Verdict, Option<(f64, f64)>) {
    match welch_diff_ci95(candidate, reference) {
        Some((lo, hi)) if lo > -margin => (Verdict::Holds, Some((lo, hi))),
        Some((lo, hi)) if hi < -margin => (Verdict::DoesNotHold, Some((lo, hi))),
        ci => (Verdict::Inconclusive, ci),
    }
}

/// Superiority of `a` over `b`: the verdict and the 95% CI of mean(a) − mean(b).
pub fn superiority(a: &[f64], b: &[f64]) -> (Verdict, Option<(f64, f64)>) {
    non_inferiority(a, b, 0.0)
}

/// The columns of `results/bench/heads.csv` the report reads (others are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BenchRow {
    /// `fc`, `pfc` or `f2c`.
    pub head: String,
    /// The head's parameter (sample rate, pool fraction, 1 for FC), as the benchmark wrote it.
    pub param: String,
    pub classes: u64,
    pub dim: u64,
    pub batch: u64,
    pub median_step_s: f64,
    pub head_state_bytes: u64,
    /// Which step was timed (e.g. `peer`, `row0-one-direction`, `tworow-symmetric`); empty when the
    /// file has no such column.
    #[serde(default)]
    pub variant: String,
}

/// Reads the head benchmark table.
pub fn read_bench(path: &Path) -> Result<Vec<BenchRow>> {
    let mut r = csv::Reader::from_path(path)
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    r.deserialize()
        .map(|row| {
            row.map_err(|e| {
                Error::Other(format!(
                    "{}: {e}; expected columns head,param,classes,dim,batch,median_step_s,head_state_bytes",
                    path.display()
                ))
            })
        })
        .collect()
}

/// Which method a benchmark `head` names: `fc`, `pfc` or `f2c`, whatever its spelling.
fn bench_method(head: &str) -> &'static str {
    let h: String = head
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    match h.as_str() {
        "fc" | "fullfc" => "fc",
        "pfc" | "partialfc" => "pfc",
        "f2c" | "f²c" | "dcp" => "f2c",
        _ => "other",
    }
}

/// One F²C-vs-FC comparison of the benchmark: same N, D and batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchPair {
    pub param: String,
    pub variant: String,
    pub classes: u64,
    pub dim: u64,
    pub batch: u64,
    /// FC step time / F²C step time.
    pub speedup: f64,
    /// FC head-state bytes / F²C head-state bytes.
    pub memory_ratio: f64,
}

/// Pairs every F²C benchmark row with the (first) FC row of the same N, D and batch, in file order.
pub fn bench_pairs(bench: &[BenchRow]) -> Vec<BenchPair> {
    bench
        .iter()
        .filter(|b| bench_method(&b.head) == "f2c")
        .filter_map(|f| {
            let fc = bench.iter().find(|b| {
                bench_method(&b.head) == "fc"
                    && (b.classes, b.dim, b.batch) == (f.classes, f.dim, f.batch)
            })?;
            Some(BenchPair {
                param: f.param.clone(),
                variant: f.variant.clone(),
                classes: f.classes,
                dim: f.dim,
                batch: f.batch,
                speedup: fc.median_step_s / f.median_step_s,
                memory_ratio: fc.head_state_bytes as f64 / f.head_state_bytes as f64,
            })
        })
        .collect()
}

/// Claim 2 from the benchmark pairs (see the module doc for the rule).
pub fn claim2_verdict(pairs: &[BenchPair]) -> Verdict {
    let Some(n_max) = pairs.iter().map(|p| p.classes).max() else {
        return Verdict::NotTested;
    };
    let n_min = pairs.iter().map(|p| p.classes).min().unwrap_or(n_max);
    let at_max: Vec<&BenchPair> = pairs.iter().filter(|p| p.classes == n_max).collect();
    if at_max
        .iter()
        .any(|p| p.speedup <= 1.0 || p.memory_ratio <= 1.0)
    {
        return Verdict::DoesNotHold;
    }
    if n_min == n_max {
        // Faster and smaller at one N says nothing about the gap growing with N.
        return Verdict::Inconclusive;
    }
    let grows = at_max.iter().all(|hi| {
        pairs
            .iter()
            .filter(|lo| {
                lo.classes == n_min
                    && (&lo.param, &lo.variant, lo.dim, lo.batch)
                        == (&hi.param, &hi.variant, hi.dim, hi.batch)
            })
            .all(|lo| hi.speedup >= lo.speedup)
    });
    if grows {
        Verdict::Holds
    } else {
        Verdict::DoesNotHold
    }
}

/// TAR@FAR=1e-3 in percent, "mean ± ci", "mean (n=1)" or "—".
fn tar_cell(c: &ConfigStats) -> String {
    match c.summary(Metric::TarFar1e3) {
        Some(s) => match s.ci95 {
            Some(ci) => format!("{:.2} ± {:.2}", s.mean * 100.0, ci * 100.0),
            None => format!("{:.2} (n={})", s.mean * 100.0, s.n),
        },
        None => "—".into(),
    }
}

/// A difference CI in percentage points: "−1.41 [−3.20, 0.38]" or "—".
fn diff_cell(a: &[f64], b: &[f64]) -> String {
    let (Some((lo, hi)), false, false) = (welch_diff_ci95(a, b), a.is_empty(), b.is_empty()) else {
        return "—".into();
    };
    let d = (crate::report::stats::mean(a) - crate::report::stats::mean(b)) * 100.0;
    format!("{d:+.2} [{:+.2}, {:+.2}]", lo * 100.0, hi * 100.0)
}

fn runs_cell(c: &ConfigStats) -> String {
    format!("{}/{} ok", c.ok(), c.runs())
}

/// The report's statement of one claim: verdict, rule and body.
struct Section {
    title: &'static str,
    verdict: Verdict,
    body: String,
}

fn find<'a>(
    stats: &'a [ConfigStats],
    group: &str,
    pred: impl Fn(&SummaryRow) -> bool,
) -> Option<&'a ConfigStats> {
    stats.iter().find(|c| c.group == group && pred(c.first()))
}

fn claim1(stats: &[ConfigStats]) -> Section {
    let title = "Claim 1: accuracy comparable to full FC while the pool is a small fraction of N";
    let mut body = format!(
        "Rule: non-inferiority with a margin of {m} points. The claim holds if the Welch 95% CI of \
         TAR@FAR=1e-3(F²C) − TAR@FAR=1e-3(Full FC) lies entirely above −{m} points, does not hold if it \
         lies entirely below −{m}, and is inconclusive otherwise (including n < 2 on a side). The verdict \
         is that of the F²C configuration of the `main` group; the `pool_size` configurations and Partial \
         FC are shown with their own verdicts under the same rule.\n\n",
        m = short_number(NON_INFERIORITY_MARGIN_PP)
    );
    let Some(fc) = stats.iter().find(|c| c.is_fc_reference) else {
        body.push_str("No Full FC run in the `main` group: nothing to compare against.\n");
        return Section {
            title,
            verdict: Verdict::NotTested,
            body,
        };
    };
    let fc_v = fc.values(Metric::TarFar1e3);
    let margin = NON_INFERIORITY_MARGIN_PP / 100.0;
    body.push_str("| Group | Configuration | `config_id` | Runs | TAR@FAR=1e-3 (%) | Δ vs Full FC (pp) [95% CI] | Verdict |\n");
    body.push_str("|:--|:--|:--|--:|--:|--:|:--|\n");
    body.push_str(&format!(
        "| main | {} | `{}` | {} | {} | reference | |\n",
        method_name(fc.first()),
        fc.config_id,
        runs_cell(fc),
        tar_cell(fc)
    ));
    let mut verdict = Verdict::NotTested;
    let candidates = stats.iter().filter(|c| {
        (c.group == "main" && matches!(c.first().method.as_str(), "pfc" | "f2c"))
            || (c.group == "pool_size" && c.first().method == "f2c")
    });
    for c in candidates {
        let v = c.values(Metric::TarFar1e3);
        let (vd, _) = non_inferiority(&v, &fc_v, margin);
        if c.group == "main" && c.first().method == "f2c" && verdict == Verdict::NotTested {
            verdict = vd;
        }
        body.push_str(&format!(
            "| {} | {} | `{}` | {} | {} | {} | {} |\n",
            c.group,
            method_name(c.first()),
            c.config_id,
            runs_cell(c),
            tar_cell(c),
            diff_cell(&v, &fc_v),
            vd
        ));
    }
    if verdict == Verdict::NotTested {
        body.push_str("\nNo F²C configuration in the `main` group: the claim is not tested.\n");
    }
    Section {
        title,
        verdict,
        body,
    }
}

fn claim2(stats: &[ConfigStats], bench: Option<&[BenchRow]>) -> Section {
    let title = "Claim 2: faster training and far less memory than FC, the gap growing with N";
    let mut body = format!(
        "Rule: from the head benchmark `{BENCH_CSV}` (median step time of the head alone; a single \
         measurement per cell, so no interval). The claim holds if, at the largest N benchmarked for \
         both heads, every F²C variant has a shorter step and a smaller head state than Full FC, and its \
         speed-up over Full FC at that N is at least its speed-up at the smallest N; it does not hold if \
         either fails; inconclusive when only one N was benchmarked.\n\n"
    );
    let verdict = match bench {
        None => {
            body.push_str(&format!(
                "`{BENCH_CSV}` does not exist: run the head benchmark first.\n"
            ));
            Verdict::NotTested
        }
        Some(rows) => {
            let pairs = bench_pairs(rows);
            body.push_str(
                "| head | param | variant | N | D | batch | median step (ms) | head state |\n",
            );
            body.push_str("|:--|:--|:--|--:|--:|--:|--:|--:|\n");
            for b in rows {
                body.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {:.3} | {} |\n",
                    b.head,
                    b.param,
                    b.variant,
                    b.classes,
                    b.dim,
                    b.batch,
                    b.median_step_s * 1e3,
                    human_bytes(b.head_state_bytes)
                ));
            }
            body.push_str("\nF²C against Full FC at the same N, D and batch:\n\n");
            body.push_str(concat!(
                "| F²C param | variant | N | D | batch | speed-up (FC step / F²C step) ",
                "| memory ratio (FC / F²C) |\n|:--|:--|--:|--:|--:|--:|--:|\n"
            ));
            for p in &pairs {
                body.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {:.2}× | {:.2}× |\n",
                    p.param, p.variant, p.classes, p.dim, p.batch, p.speedup, p.memory_ratio
                ));
            }
            if pairs.is_empty() {
                body.push_str("\nNo N has both an F²C and a Full FC row.\n");
            }
            claim2_verdict(&pairs)
        }
    };
    // The matrix's own timings, at its one N, for context; they do not enter the verdict.
    let main: Vec<&ConfigStats> = stats.iter().filter(|c| c.group == "main").collect();
    if !main.is_empty() {
        body.push_str("\nFor context, the full training step of the `main` runs (whole step: networks and head):\n\n");
        body.push_str("| Method | Runs | median step (ms), mean over seeds | head state |\n|:--|--:|--:|--:|\n");
        for c in main {
            body.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                method_name(c.first()),
                runs_cell(c),
                c.summary(Metric::MedianStepMs)
                    .map_or("—".into(), |s| format!("{:.2}", s.mean)),
                c.head_state_bytes().map_or("—".into(), human_bytes)
            ));
        }
    }
    Section {
        title,
        verdict,
        body,
    }
}

/// A two-configuration superiority section: `better` should beat `worse` on TAR@FAR=1e-3.
fn superiority_section(
    title: &'static str,
    rule: String,
    group: &str,
    stats: &[ConfigStats],
    better: Option<&ConfigStats>,
    worse: Option<&ConfigStats>,
    missing: &str,
) -> Section {
    let mut body = rule;
    let in_group: Vec<&ConfigStats> = stats.iter().filter(|c| c.group == group).collect();
    if !in_group.is_empty() {
        body.push_str("| Setting | `config_id` | Runs | TAR@FAR=1e-3 (%) |\n|:--|:--|--:|--:|\n");
        for c in &in_group {
            body.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                c.first().label,
                c.config_id,
                runs_cell(c),
                tar_cell(c)
            ));
        }
        body.push('\n');
    }
    let verdict = match (better, worse) {
        (Some(a), Some(b)) => {
            let (va, vb) = (a.values(Metric::TarFar1e3), b.values(Metric::TarFar1e3));
            let (v, _) = superiority(&va, &vb);
            body.push_str(&format!(
                "Difference {} − {}: {} pp (Welch 95% CI).\n",
                a.first().label,
                b.first().label,
                diff_cell(&va, &vb)
            ));
            v
        }
        _ => {
            body.push_str(missing);
            body.push('\n');
            Verdict::NotTested
        }
    };
    Section {
        title,
        verdict,
        body,
    }
}

fn claim3(stats: &[ConfigStats]) -> Section {
    let dual = find(stats, "loaders", |r| {
        r.id_per_step > 0 && r.inst_per_step > 0
    });
    let single = find(stats, "loaders", |r| {
        r.id_per_step == 0 && r.inst_per_step > 0
    });
    superiority_section(
        "Claim 3: the dual loaders make pool updating more efficient than a single instance loader",
        "Rule: in the `loaders` group, dual loaders (identities and instances per step both > 0) against a \
         single instance loader (0 identities per step). The claim holds if the Welch 95% CI of the \
         difference of TAR@FAR=1e-3 (dual − instance) lies above 0, does not hold if it lies below 0, and is \
         inconclusive if it contains 0.\n\n"
            .into(),
        "loaders",
        stats,
        dual,
        single,
        "The `loaders` group lacks a dual-loader or a single-instance-loader configuration: not tested.",
    )
}

fn claim4(stats: &[ConfigStats]) -> Section {
    // The reference momentum is the one the main F²C run uses, so the comparison is the default
    // configuration against the same configuration without averaging (gallery = probe).
    let reference = find(stats, "main", |r| r.method == "f2c")
        .and_then(|c| c.first().ema_momentum)
        .unwrap_or(0.99);
    // Momenta pass through f32 in the config, so they are compared with a tolerance.
    let is = |m: f64| move |r: &SummaryRow| r.ema_momentum.is_some_and(|x| (x - m).abs() < 1e-6);
    let with_ema = find(stats, "ema", is(reference));
    let without = find(stats, "ema", is(0.0));
    superiority_section(
        "Claim 4: the EMA gallery net matters",
        format!(
            "Rule: in the `ema` group, the reference momentum m = {} (that of the `main` F²C run) against \
             m = 0 (gallery = probe, no averaging). The claim holds if the Welch 95% CI of the difference of \
             TAR@FAR=1e-3 (m = {} − m = 0) lies above 0, does not hold if it lies below 0, and is \
             inconclusive if it contains 0.\n\n",
            short_number(reference),
            short_number(reference)
        ),
        "ema",
        stats,
        with_ema,
        without,
        "The `ema` group lacks the reference momentum or m = 0: not tested.",
    )
}

/// Renders the report from the summary rows and, when present, the head benchmark.
pub fn render_report(rows: &[SummaryRow], bench: Option<&[BenchRow]>) -> String {
    let stats = config_stats(rows);
    let ok = rows.iter().filter(|r| r.status == "ok").count();
    let sections = [
        claim1(&stats),
        claim2(&stats, bench),
        claim3(&stats),
        claim4(&stats),
    ];
    let mut s =
        String::from("# Reproduction report: F²C (Faster Face Classification, CVPR 2022)\n\n");
    s.push_str(&format!(
        "Generated by `f2c` from the matrix summary ({} runs: {ok} ok, {} failed; groups: {}); do not \
         edit, regenerate it. Accuracy is TAR@FAR=1e-3 in percent: mean over the successful seeds ± \
         half-width of the 95% Student-t confidence interval; differences are in percentage points (pp) \
         with the Welch 95% CI of the difference of means.\n\n",
        rows.len(),
        rows.len() - ok,
        groups(rows).iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(", ")
    ));
    s.push_str("## Verdicts\n\n| Claim | Verdict |\n|:--|:--|\n");
    for sec in &sections {
        s.push_str(&format!("| {} | **{}** |\n", sec.title, sec.verdict));
    }
    for sec in &sections {
        s.push_str(&format!(
            "\n## {}\n\nVerdict: **{}**.\n\n{}",
            sec.title, sec.verdict, sec.body
        ));
    }
    s.push_str("\n## Failed runs\n\n");
    let failed: Vec<&SummaryRow> = rows.iter().filter(|r| r.status != "ok").collect();
    if failed.is_empty() {
        s.push_str("None.\n");
    }
    for r in failed {
        s.push_str(&format!(
            "- `{}` (group `{}`, {}): {}\n",
            r.run_id, r.group, r.label, r.status
        ));
    }
    s.push_str(
        "\n## Tables and figures\n\nEvery group's full table (all TAR@FAR levels, rank-1, step time, head \
         state, Welch p-values against Full FC) is in `paper/tables/<group>.md` and `.tex`; the figures \
         are in `paper/figures/`.\n",
    );
    s
}

/// Writes `<out>/paper/README.md`, reading `<out>/results/bench/heads.csv` when it exists, and
/// returns the path written. `out` is the project root.
pub fn write_report(rows: &[SummaryRow], out: &Path) -> Result<PathBuf> {
    let bench_path = out.join(BENCH_CSV);
    let bench = if bench_path.exists() {
        Some(read_bench(&bench_path)?)
    } else {
        None
    };
    let path = out.join("paper").join("README.md");
    crate::results::record::write_atomic(&path, render_report(rows, bench.as_deref()).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_inferiority_three_ways() {
        // Variances 2e-4 each; diff of means −0.01, SE √(2e-4/2 + 2e-4/2) = 0.014142, df 2:
        // half-width 4.302653·0.014142 = 0.060849; CI [−0.0708, 0.0508]: above −0.1 → holds;
        // straddles −0.02 → inconclusive.
        let (a, b) = ([0.86, 0.88], [0.87, 0.89]);
        assert_eq!(non_inferiority(&a, &b, 0.1).0, Verdict::Holds);
        assert_eq!(non_inferiority(&a, &b, 0.02).0, Verdict::Inconclusive);
        // Shift a down by 0.2: CI [−0.2708, −0.1492], entirely below −0.1 → does not hold.
        assert_eq!(
            non_inferiority(&[0.66, 0.68], &b, 0.1).0,
            Verdict::DoesNotHold
        );
        // n = 1: no interval.
        assert_eq!(
            non_inferiority(&[0.9], &b, 0.1),
            (Verdict::Inconclusive, None)
        );
    }

    #[test]
    fn superiority_three_ways() {
        // diff +0.2, CI [0.139, 0.261] > 0 → holds; reversed → does not hold; diff −0.01 → contains 0.
        assert_eq!(superiority(&[1.06, 1.08], &[0.86, 0.88]).0, Verdict::Holds);
        assert_eq!(
            superiority(&[0.86, 0.88], &[1.06, 1.08]).0,
            Verdict::DoesNotHold
        );
        assert_eq!(
            superiority(&[0.86, 0.88], &[0.87, 0.89]).0,
            Verdict::Inconclusive
        );
    }

    fn b(head: &str, n: u64, step: f64, bytes: u64) -> BenchRow {
        BenchRow {
            head: head.into(),
            param: if head == "fc" {
                String::new()
            } else {
                "0.01".into()
            },
            classes: n,
            dim: 128,
            batch: 256,
            median_step_s: step,
            head_state_bytes: bytes,
            variant: String::new(),
        }
    }

    #[test]
    fn claim2_rule() {
        // N = 1e4: FC 2 ms vs F²C 1 ms (2×); N = 1e5: 20 ms vs 2 ms (10×): faster, smaller, growing.
        let rows = [
            b("fc", 10_000, 0.002, 1000),
            b("f2c", 10_000, 0.001, 100),
            b("fc", 100_000, 0.02, 10_000),
            b("F2C", 100_000, 0.002, 100),
        ];
        let pairs = bench_pairs(&rows);
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            (pairs[1].speedup.round(), pairs[1].memory_ratio.round()),
            (10.0, 100.0)
        );
        assert_eq!(claim2_verdict(&pairs), Verdict::Holds);
        // Speed-up shrinking to 1.5× at the larger N: does not hold.
        let shrink = [
            b("fc", 10_000, 0.002, 1000),
            b("f2c", 10_000, 0.001, 100),
            b("fc", 100_000, 0.003, 10_000),
            b("f2c", 100_000, 0.002, 100),
        ];
        assert_eq!(claim2_verdict(&bench_pairs(&shrink)), Verdict::DoesNotHold);
        // One N only: inconclusive; nothing paired: not tested.
        assert_eq!(
            claim2_verdict(&bench_pairs(&rows[..2])),
            Verdict::Inconclusive
        );
        assert_eq!(claim2_verdict(&bench_pairs(&rows[..1])), Verdict::NotTested);
    }
}
