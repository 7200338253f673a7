//! The reproduction report `paper/README.md`: for each of the four claims of the F²C paper, our
//! numbers and a verdict decided by a rule stated in the report, from the statistics of
//! [`crate::report::stats`].
//!
//! Verdict rules (accuracy is TAR@FAR=1e-3; intervals are paired-t 95% CIs of the mean
//! difference over the seeds both arms share, a seed fixing the data and the held-out set):
//! - claim 1 (accuracy comparable to full FC with a small pool) is a non-inferiority test with a
//!   margin of [`NON_INFERIORITY_MARGIN_PP`] points: holds if the lower bound of the CI of
//!   F²C − FC lies above −margin, does not hold if the whole CI lies below −margin, inconclusive
//!   otherwise;
//! - claim 3 (dual loaders beat a single loader) compares the reference dual-loader setting with
//!   both single loaders, and claim 4 (the EMA gallery matters) the reference momentum with every
//!   other momentum: superiority tests, holds if every CI of the difference lies above 0, does
//!   not hold if one lies below 0, inconclusive otherwise;
//! - no comparison with a collapsed arm (a configuration with a run at or below the untrained
//!   network, [`crate::ablation::references`]) supports a claim: the verdict names the arm;
//! - claim 2 (faster training, less memory, gap growing with N) comes from the benchmark: the
//!   whole training step of each method's shipped experiment (`results/bench/training.csv`) where
//!   it was timed at two N or more, else each head's step alone (`results/bench/heads.csv`). At
//!   the largest N timed for both every F²C variant must be faster and smaller than full FC, and
//!   its speed-up must grow from the smallest N it was timed at to the largest by more than the
//!   timings' spread. A timing's spread is (median − fastest) / median over its timed steps, and
//!   a speed-up's relative spread the sum of its two timings'. Growth beyond the spread holds; a
//!   fall beyond it does not hold; a change within it is inconclusive. The head-alone pairs get
//!   the same rule, shown beside: with a pool a fixed fraction of N both heads grow linearly, so
//!   their ratio is expected to stay about constant, while the whole step adds the networks'
//!   cost, the same at every N, so F²C's advantage there grows as the head comes to dominate.
//!
//! Which matrix groups each claim reads is declared once, in [`CLAIM_GROUPS`]; a summary that lacks
//! one of them is an error, not a silently missing section. Where the scale study has run
//! (`results/scale/`, [`crate::report::scale`]), claims 1 and 2 cite its table: claim 1 applies its
//! rule at each N of the study and shows those verdicts beside the headline one (read from the
//! default matrix, as stated), claim 2 sets the study's whole-step times and head states against
//! Full FC's at the same N, for context. Where the study of F²C's parts at scale has run
//! (`results/scale-components/`, [`crate::report::scale::Components`]), claims 3 and 4 apply their
//! rules to its groups too and show those verdicts beside their own, which stay the default
//! matrix's; the verdicts table then has a column for the verdicts at scale. The report is
//! generated text only: every number in it is computed from the summary rows, the reference
//! points, the benchmark file or the scale studies, and it names the configurations and runs it
//! used.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::ablation::references::{ReferenceKind, ReferenceRow};
use crate::ablation::summary::{RowStatus, SummaryRow};
use crate::bench::training_step::{self, TrainRow};
use crate::bench::BenchRow;
use crate::error::{Error, Result};
use crate::heads::Method;
use crate::numbers::short_number;
use crate::report::scale::{
    thousands, wall_minutes, Components, Study, COMPONENTS_MATRIX, TABLE_MD,
};
use crate::report::stats::{
    config_stats, groups, mean, seeds_needed, ConfigStats, Metric, Paired, TARGET_HALF_WIDTH,
};
use crate::report::tables::{format_p, human_bytes, method_name, runs_text};
use crate::report::tuning::Variant;
use crate::results::record::same_id;

/// Non-inferiority margin of claim 1, in percentage points of TAR@FAR=1e-3.
pub const NON_INFERIORITY_MARGIN_PP: f64 = 2.0;

/// Where the head benchmark writes its table, relative to the project root.
pub const BENCH_CSV: &str = "results/bench/heads.csv";

/// What one benchmark run wrote, as claim 2 reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchFiles {
    /// Each head's step alone (`heads.csv`).
    pub heads: Vec<BenchRow>,
    /// Whole training steps (`training.csv`; empty where the run did not time them).
    pub training: Vec<TrainRow>,
}

impl BenchFiles {
    /// The files under `root` (the project root); `None` without `heads.csv`.
    pub fn read(root: &Path) -> Result<Option<Self>> {
        Self::read_at(&root.join(BENCH_CSV))
    }

    /// The files of the benchmark whose head table is `heads` (`training.csv` beside it).
    pub fn read_at(heads: &Path) -> Result<Option<Self>> {
        if !heads.exists() {
            return Ok(None);
        }
        let training = heads.with_file_name("training.csv");
        Ok(Some(BenchFiles {
            heads: crate::bench::read_rows(heads)?,
            training: match training.exists() {
                true => training_step::read_rows(&training)?,
                false => Vec::new(),
            },
        }))
    }
}

/// The outcome of testing one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    DoesNotHold,
    /// The 95% interval straddles the decision threshold, or is undefined (n < 2).
    Inconclusive,
    /// Two timings' intervals overlap: a single benchmark run cannot order them.
    WithinNoise,
    /// The runs the rule needs are not in the summary (or the benchmark file is missing).
    NotTested,
    /// An arm of the comparison collapsed; the report names it.
    ArmCollapsed,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Inconclusive => "inconclusive at the 95% CI",
            Verdict::WithinNoise => "inconclusive within the timings' spread",
            Verdict::NotTested => "not tested (runs missing)",
            Verdict::ArmCollapsed => "not supported (an arm collapsed)",
        })
    }
}

/// Non-inferiority with `margin` (same units as the values) from a paired comparison of
/// candidate − reference: holds when the CI's lower bound is above −margin, does not hold when the
/// whole CI is below −margin, inconclusive otherwise (including no interval).
pub fn non_inferiority(paired: Option<&Paired>, margin: f64) -> Verdict {
    match paired.and_then(|p| p.ci95) {
        Some((lo, _)) if lo > -margin => Verdict::Holds,
        Some((_, hi)) if hi < -margin => Verdict::DoesNotHold,
        _ => Verdict::Inconclusive,
    }
}

/// Superiority of a over b from their paired comparison a − b: non-inferiority with margin 0.
pub fn superiority(paired: Option<&Paired>) -> Verdict {
    non_inferiority(paired, 0.0)
}

/// Whether the paired CI of a − b lies within ±`margin`: a difference that large is ruled out
/// either way (equivalence at the margin; false without an interval).
pub fn equivalent(paired: Option<&Paired>, margin: f64) -> bool {
    paired
        .and_then(|p| p.ci95)
        .is_some_and(|(lo, hi)| lo > -margin && hi < margin)
}

/// Claim 1's margin as a fraction, the scale of the metrics.
const MARGIN: f64 = NON_INFERIORITY_MARGIN_PP / 100.0;

/// " (equivalent within ±2 pp)" for an inconclusive superiority arm whose CI rules out a
/// difference of the margin either way, "" otherwise.
fn equivalence_note(verdict: Verdict, paired: Option<&Paired>) -> String {
    match verdict == Verdict::Inconclusive && equivalent(paired, MARGIN) {
        true => format!(" (equivalent within ±{NON_INFERIORITY_MARGIN_PP} pp)"),
        false => String::new(),
    }
}

/// The claims of the paper, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Accuracy comparable to full FC with a small pool.
    Accuracy,
    /// Faster and smaller than full FC, the gap growing with N.
    Efficiency,
    /// Dual loaders beat a single loader.
    DualLoaders,
    /// The EMA gallery net matters.
    EmaGallery,
}

/// The matrix groups each claim reads from the summary, declared once. Claim 2 reads the head
/// benchmark instead.
pub const CLAIM_GROUPS: [(Claim, &[&str]); 4] = [
    (Claim::Accuracy, &["main", "pool_size"]),
    (Claim::Efficiency, &[]),
    (Claim::DualLoaders, &["loaders"]),
    (Claim::EmaGallery, &["ema"]),
];

/// The groups of `claim`.
fn claim_groups(claim: Claim) -> &'static [&'static str] {
    CLAIM_GROUPS
        .iter()
        .find(|(c, _)| *c == claim)
        .map_or(&[], |(_, g)| g)
}

/// Fails when a group a claim needs is not in the summary.
fn check_claim_groups(rows: &[SummaryRow]) -> Result<()> {
    let present = groups(rows);
    for (claim, needed) in CLAIM_GROUPS {
        if let Some(g) = needed.iter().find(|g| !present.iter().any(|p| p == *g)) {
            return Err(Error::Other(format!(
                "reproduction report: {claim:?} reads the matrix group `{g}`, which the summary lacks \
                 (groups: {}); run a matrix that has it, or change CLAIM_GROUPS in report/reproduction.rs",
                present.join(", ")
            )));
        }
    }
    Ok(())
}

/// One F²C-vs-FC comparison of the benchmark: same N, D and batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchPair {
    pub param: f64,
    pub variant: String,
    pub classes: usize,
    /// D of a head-alone timing; 0 for a whole step (D is then the experiment's backbone's).
    pub dim: usize,
    pub batch: usize,
    /// FC step time / F²C step time.
    pub speedup: f64,
    /// Relative spread of the speed-up: the sum of the two timings' (median − fastest) / median.
    pub spread: f64,
    /// FC step time − F²C step time, seconds.
    pub saved_s: f64,
    /// FC head-state bytes / F²C head-state bytes.
    pub memory_ratio: f64,
}

/// Pairs every F²C benchmark row with the (first) FC row of the same N, D and batch, in file order.
pub fn bench_pairs(bench: &[BenchRow]) -> Vec<BenchPair> {
    bench
        .iter()
        .filter(|b| b.head == Method::F2c)
        .filter_map(|f| {
            let fc = bench.iter().find(|b| {
                b.head == Method::Fc && (b.classes, b.dim, b.batch) == (f.classes, f.dim, f.batch)
            })?;
            Some(BenchPair {
                param: f.param,
                variant: f.variant.clone(),
                classes: f.classes,
                dim: f.dim,
                batch: f.batch,
                speedup: fc.median_step_s / f.median_step_s,
                spread: timing_spread(fc) + timing_spread(f),
                saved_s: fc.median_step_s - f.median_step_s,
                memory_ratio: fc.head_state_bytes as f64 / f.head_state_bytes as f64,
            })
        })
        .collect()
}

/// Pairs every F²C whole training step with Full FC's at the same N and batch, in file order;
/// rows written before the fastest step and the head state were recorded are left out.
pub fn training_pairs(training: &[TrainRow]) -> Vec<BenchPair> {
    let (fc, f2c) = (Method::Fc.to_string(), Method::F2c.to_string());
    let timed = |t: &&TrainRow| t.min_step_s.is_some() && t.head_state_bytes.is_some();
    training
        .iter()
        .filter(timed)
        .filter(|t| t.method == f2c)
        .filter_map(|f| {
            let fc = training
                .iter()
                .filter(timed)
                .find(|t| t.method == fc && (t.classes, t.batch) == (f.classes, f.batch))?;
            let state = |t: &TrainRow| t.head_state_bytes.unwrap_or(0) as f64;
            let spread = |t: &TrainRow| spread_of(t.median_step_s, t.fastest_step_s());
            Some(BenchPair {
                param: f.param,
                variant: WHOLE_STEP.into(),
                classes: f.classes,
                dim: 0,
                batch: f.batch,
                speedup: fc.median_step_s / f.median_step_s,
                spread: spread(fc) + spread(f),
                saved_s: fc.median_step_s - f.median_step_s,
                memory_ratio: state(fc) / state(f),
            })
        })
        .collect()
}

/// The variant name of a whole-step pair.
const WHOLE_STEP: &str = "whole step";

/// (median − fastest) / median of a row's timed steps: 0 for a single step.
fn timing_spread(row: &BenchRow) -> f64 {
    spread_of(row.median_step_s, row.min_step_s)
}

fn spread_of(median: f64, fastest: f64) -> f64 {
    if median > 0.0 {
        ((median - fastest) / median).max(0.0)
    } else {
        0.0
    }
}

impl BenchPair {
    /// The speed-up's interval: speed-up × (1 ∓ spread).
    pub fn interval(&self) -> (f64, f64) {
        (
            self.speedup * (1.0 - self.spread),
            self.speedup * (1.0 + self.spread),
        )
    }
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
        // Faster and smaller at one N says nothing about the gap growing with N: the timings at
        // a second N are missing.
        return Verdict::NotTested;
    }
    // Each variant at the largest N against itself at the smallest N it was timed at: the
    // speed-up's intervals apart (grows or falls) or overlapping (within the noise).
    let (mut grows, mut falls) = (true, false);
    for hi in &at_max {
        let lo = pairs
            .iter()
            .filter(|lo| {
                lo.classes < n_max
                    && (&lo.param, &lo.variant, lo.dim, lo.batch)
                        == (&hi.param, &hi.variant, hi.dim, hi.batch)
            })
            .min_by_key(|lo| lo.classes);
        if let Some(lo) = lo {
            let ((hi_low, hi_high), (lo_low, lo_high)) = (hi.interval(), lo.interval());
            grows &= hi_low > lo_high;
            falls |= hi_high < lo_low;
        }
    }
    if falls {
        Verdict::DoesNotHold
    } else if grows {
        Verdict::Holds
    } else {
        Verdict::WithinNoise
    }
}

/// TAR@FAR=1e-3 in percent, "mean ± ci", "mean (n=1)" or "—".
fn tar_cell(c: &ConfigStats) -> String {
    rate_cell(c.summary(Metric::TarFar1e3))
}

fn rate_cell(s: Option<crate::report::stats::Summary>) -> String {
    match s {
        Some(s) => match s.ci95 {
            Some(ci) => format!("{:.2} ± {:.2}", s.mean * 100.0, ci * 100.0),
            None => format!("{:.2} (n={})", s.mean * 100.0, s.n),
        },
        None => "—".into(),
    }
}

/// A paired difference in percentage points: "−1.41 [−3.20, +0.38] (n=3)", "+0.50 (n=1)" or "—".
fn diff_cell(p: Option<&Paired>) -> String {
    let Some(p) = p else {
        return "—".into();
    };
    let d = p.mean_diff * 100.0;
    match p.ci95 {
        Some((lo, hi)) => format!(
            "{d:+.2} [{:+.2}, {:+.2}] (n={})",
            lo * 100.0,
            hi * 100.0,
            p.n()
        ),
        None => format!("{d:+.2} (n={})", p.n()),
    }
}

fn p_cell(p: Option<&Paired>) -> String {
    p.and_then(|p| p.p).map_or("—".into(), format_p)
}

fn seeds_cell(p: Option<&Paired>) -> String {
    seeds_needed(p.and_then(|p| p.sd), TARGET_HALF_WIDTH).to_string()
}

/// "collapsed on seeds 1, 3 (2/3 runs)" for an arm with collapsed runs, `None` otherwise.
fn collapse_note(c: &ConfigStats) -> Option<String> {
    let seeds = c.collapsed_seeds();
    (!seeds.is_empty()).then(|| {
        format!(
            "collapsed on seed{} {} ({}/{} runs)",
            if seeds.len() == 1 { "" } else { "s" },
            seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            seeds.len(),
            c.runs()
        )
    })
}

/// The report's statement of one claim: verdict, rule and body.
struct Section {
    title: &'static str,
    verdict: Verdict,
    body: String,
    /// The claim's verdicts at scale, for the verdicts table, where the scale study tests it.
    at_scale: Option<String>,
}

fn find<'a>(
    stats: &'a [ConfigStats],
    group: &str,
    pred: impl Fn(&SummaryRow) -> bool,
) -> Option<&'a ConfigStats> {
    stats.iter().find(|c| c.group == group && pred(c.first()))
}

/// The non-inferiority of `c` against the Full FC reference `fc`: the paired comparison, the
/// verdict, and the arms that collapsed (then the verdict is [`Verdict::ArmCollapsed`]).
fn against_fc(
    c: &ConfigStats,
    fc: &ConfigStats,
    margin: f64,
) -> (Option<Paired>, Verdict, Vec<String>) {
    let paired = c.paired_with(fc, Metric::TarFar1e3);
    let collapsed: Vec<String> = [c, fc]
        .iter()
        .filter_map(|a| collapse_note(a).map(|n| format!("{} {n}", method_name(a.first()))))
        .collect();
    let vd = if collapsed.is_empty() {
        non_inferiority(paired.as_ref(), margin)
    } else {
        Verdict::ArmCollapsed
    };
    (paired, vd, collapsed)
}

/// Whether claim 1 compares `c` with Full FC: the Partial FC and F²C configurations.
fn claim1_candidate(c: &ConfigStats) -> bool {
    !c.is_fc_reference && matches!(c.first().method, Method::PartialFc | Method::F2c)
}

/// Claim 1's table row of the Full FC reference `fc`, led by `lead` (its group, N or identities).
fn claim1_reference_row(lead: &str, fc: &ConfigStats) -> String {
    format!(
        "| {lead} | {} | `{}` | {} | {} | reference | | | {} |\n",
        method_name(fc.first()),
        fc.config_id,
        runs_text(fc),
        tar_cell(fc),
        collapse_note(fc).unwrap_or_default()
    )
}

/// Claim 1's table row of `c` against `fc`, led by `lead`, its verdict and the arms that
/// collapsed ([`against_fc`]).
fn claim1_row(
    lead: &str,
    c: &ConfigStats,
    fc: &ConfigStats,
    margin: f64,
) -> (String, Verdict, Vec<String>) {
    let (paired, vd, collapsed) = against_fc(c, fc, margin);
    let row = format!(
        "| {lead} | {} | `{}` | {} | {} | {} | {} | {} | {vd} |\n",
        method_name(c.first()),
        c.config_id,
        runs_text(c),
        tar_cell(c),
        diff_cell(paired.as_ref()),
        p_cell(paired.as_ref()),
        seeds_cell(paired.as_ref()),
    );
    (row, vd, collapsed)
}

/// Claim 1's rule at each N of the scale study, as a table citing the study's, and the F²C
/// configurations' verdicts in a line ("100,000: F²C pool 1% holds; …").
fn claim1_at_scale(study: &Study, margin: f64) -> (String, String) {
    let mut s = format!(
        "\nAt scale (`{TABLE_MD}`, from `results/scale/`): the same rule at each N of the scale study, \
         against Full FC at that N. These verdicts are shown beside the claim's, which is read from \
         the `main` group above.\n\n\
         | N | Configuration | `config_id` | Runs | TAR@FAR=1e-3 (%) | Δ vs Full FC (pp) [paired 95% CI] | p (paired) | Seeds ±1.5 | Verdict |\n\
         |--:|:--|:--|--:|--:|--:|--:|--:|:--|\n"
    );
    let mut verdicts = Vec::new();
    for part in &study.parts {
        let n = part.name();
        let Some(fc) = part.reference() else {
            s.push_str(&format!(
                "| {n} | no Full FC run at this N | | | | | | | {} |\n",
                Verdict::NotTested
            ));
            verdicts.push(format!("{n}: {}", Verdict::NotTested));
            continue;
        };
        s.push_str(&claim1_reference_row(&n, fc));
        for c in part.stats.iter().filter(|c| claim1_candidate(c)) {
            let (row, vd, _) = claim1_row(&n, c, fc, margin);
            if c.first().method == Method::F2c {
                verdicts.push(format!("{n}: {} {vd}", method_name(c.first())));
            }
            s.push_str(&row);
        }
    }
    if !study.lr_check.is_empty() {
        let rows = match study.parts.iter().any(|p| p.tuned_at_n) {
            false => "Every row trains at the learning rate tuned at 5,000 identities.",
            true => {
                "The rows of an N alone train at the learning rate tuned at 5,000 identities; \
                 those marked \"lr tuned at this N\" at their method's best point of the \
                 learning-rate check at that N (the table's notes name each point)."
            }
        };
        s.push_str(&format!(
            "\n{rows} The learning-rate check at the study's N (validation identities; \
             `{TABLE_MD}`, \"Learning rate at this N\"): {}\n",
            study.lr_check.join(" ")
        ));
    }
    (s, verdicts.join("; "))
}

/// The matrix group of every method on look-alike identities against independent ones.
const HARD_NEGATIVES_GROUP: &str = "hard_negatives";

/// The identities of a `hard_negatives` row, from its label's `families=` value; the whole label
/// when it has none.
fn identities_of(c: &ConfigStats) -> &str {
    let label = c.first().label.as_str();
    label
        .rfind("families=")
        .map_or(label, |i| &label[i + "families=".len()..])
}

/// Claim 1's rule in the hard-negatives group, each configuration against the group's Full FC on
/// the same identities, as a table; `None` without that group.
fn claim1_hard_negatives(stats: &[ConfigStats], margin: f64) -> Option<String> {
    let group: Vec<&ConfigStats> = stats
        .iter()
        .filter(|c| c.group == HARD_NEGATIVES_GROUP)
        .collect();
    if group.is_empty() {
        return None;
    }
    let mut s = format!(
        "
On look-alike identities (the `{HARD_NEGATIVES_GROUP}` group, `paper/tables/\
         {HARD_NEGATIVES_GROUP}.md`: every method at the common defaults on its own sampling, on \
         identities in families of look-alikes and on independent ones): the same rule, each \
         configuration against the group's Full FC trained on the same identities. These verdicts \
         are shown beside the claim's, which is read from the `main` group above.\n\n\
         | Identities | Configuration | `config_id` | Runs | TAR@FAR=1e-3 (%) | Δ vs Full FC (pp) \
         [paired 95% CI] | p (paired) | Seeds ±1.5 | Verdict |\n|:--|:--|:--|--:|--:|--:|--:|--:|:--|\n"
    );
    for fc in group.iter().filter(|c| c.is_fc_reference) {
        s.push_str(&claim1_reference_row(identities_of(fc), fc));
        for c in group
            .iter()
            .filter(|c| c.reference.as_ref() == Some(&fc.key()))
        {
            s.push_str(&claim1_row(identities_of(c), c, fc, margin).0);
        }
    }
    Some(s)
}

fn claim1(stats: &[ConfigStats], scale: Option<&Study>) -> Section {
    let title = "Claim 1: accuracy comparable to full FC while the pool is a small fraction of N";
    let main = claim_groups(Claim::Accuracy)[0];
    let mut body = format!(
        "Rule: non-inferiority with a margin of {m} points. The claim holds if the lower bound of the \
         paired 95% CI of TAR@FAR=1e-3(F²C) − TAR@FAR=1e-3(Full FC), over the seeds both have, lies above \
         −{m} points, does not hold if the whole CI lies below −{m}, and is inconclusive otherwise \
         (including fewer than two shared seeds). A collapsed arm supports nothing. The verdict is that \
         of the F²C configuration of the `{main}` group, against the `{main}` group's Full FC (each \
         method at its own tuned settings); the other F²C and Partial FC configurations are shown \
         with their own verdicts under the same rule, each against the Full FC reference of its \
         table: a group without Full FC of its own against the Full FC trained on the same data \
         with the same network and optimiser settings where the matrix has one (an ablation at the \
         common defaults against Full FC at those defaults), else against `{main}`'s.\n\n",
        m = short_number(NON_INFERIORITY_MARGIN_PP)
    );
    let Some(fc) = stats.iter().find(|c| c.is_fc_reference && c.group == main) else {
        body.push_str("No Full FC run in the `main` group: nothing to compare against.\n");
        return Section {
            title,
            verdict: Verdict::NotTested,
            body,
            at_scale: None,
        };
    };
    let margin = NON_INFERIORITY_MARGIN_PP / 100.0;
    body.push_str("| Group | Configuration | `config_id` | Runs | TAR@FAR=1e-3 (%) | Δ vs Full FC (pp) [paired 95% CI] | p (paired) | Seeds ±1.5 | Verdict |\n");
    body.push_str("|:--|:--|:--|--:|--:|--:|--:|--:|:--|\n");
    body.push_str(&claim1_reference_row(&fc.group, fc));
    let mut verdict = Verdict::NotTested;
    let mut notes = Vec::new();
    let candidates = stats.iter().filter(|c| {
        claim1_candidate(c) && claim_groups(Claim::Accuracy).contains(&c.group.as_str())
    });
    let mut shown = vec![fc.key()];
    for c in candidates {
        let reference = c
            .reference
            .as_ref()
            .and_then(|k| stats.iter().find(|f| f.key() == *k));
        let Some(reference) = reference else {
            continue; // no Full FC on its data: its table says so
        };
        if !shown.contains(&reference.key()) {
            shown.push(reference.key());
            body.push_str(&claim1_reference_row(&reference.group, reference));
        }
        let (row, vd, collapsed) = claim1_row(&c.group, c, reference, margin);
        if c.group == main && c.first().method == Method::F2c && verdict == Verdict::NotTested {
            verdict = vd;
            notes.extend(collapsed);
        }
        body.push_str(&row);
    }
    if verdict == Verdict::NotTested {
        body.push_str(&format!(
            "\nNo F²C configuration in the `{main}` group: the claim is not tested.\n"
        ));
    }
    for n in notes {
        body.push_str(&format!("\nNot supported: {n}.\n"));
    }
    let at_scale = scale.map(|study| {
        let (table, verdicts) = claim1_at_scale(study, margin);
        body.push_str(&table);
        verdicts
    });
    if let Some(table) = claim1_hard_negatives(stats, margin) {
        body.push_str(&table);
    }
    Section {
        title,
        verdict,
        body,
        at_scale,
    }
}

/// The scale study's whole training steps and head states against Full FC's at the same N, and
/// F²C's ratios in a line ("100,000: F²C pool 1% 16.96× faster, 56.42× smaller; …").
fn claim2_at_scale(study: &Study) -> (String, String) {
    let mut s = format!(
        "\nAt scale (`{TABLE_MD}`, from `results/scale/`), the whole training step of each run \
         (networks and head, runs trained side by side as the study ran them), against Full FC at \
         the same N:\n\n\
         | N | Method | Runs | median step (ms), mean over seeds | Full FC step / step | head state | \
         Full FC state / state | wall per run (min) |\n|--:|:--|--:|--:|--:|--:|--:|--:|\n"
    );
    let step = |c: &ConfigStats| c.summary(Metric::MedianStepMs).map(|x| x.mean);
    let mut ratios = Vec::new();
    // A learning rate does not change a step's cost: the runs at the 5,000-identity values only.
    for part in study.parts.iter().filter(|p| !p.tuned_at_n) {
        let fc = part.reference();
        for c in &part.stats {
            let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.2}×", b / a),
                _ => "—".into(),
            };
            let state = |c: &ConfigStats| c.head_state_bytes().map(|b| b as f64);
            if c.first().method == Method::F2c && fc.is_some() {
                ratios.push(format!(
                    "{}: {} {} faster, {} smaller",
                    thousands(part.identities),
                    method_name(c.first()),
                    ratio(step(c), fc.and_then(step)),
                    ratio(state(c), fc.and_then(state))
                ));
            }
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                thousands(part.identities),
                method_name(c.first()),
                runs_text(c),
                step(c).map_or("—".into(), |x| format!("{x:.2}")),
                ratio(step(c), fc.and_then(step)),
                c.head_state_bytes().map_or("—".into(), human_bytes),
                ratio(state(c), fc.and_then(state)),
                wall_minutes(c).map_or("—".into(), |m| format!("{m:.1}"))
            ));
        }
    }
    let line = match ratios.is_empty() {
        true => "no F²C run beside a Full FC run".to_string(),
        false => format!("whole step against Full FC, no rule: {}", ratios.join("; ")),
    };
    (s, line)
}

/// Rows of F²C-against-FC pairs: speed-up, its interval, time saved and memory ratio (`dim`:
/// with a column for D).
fn pairs_table(pairs: &[BenchPair], dim: bool) -> String {
    let mut s = String::from("| F²C param | variant | N |");
    s.push_str(if dim { " D |" } else { "" });
    s.push_str(concat!(
        " batch | speed-up (FC step / F²C step) | interval | time saved per step (ms) ",
        "| memory ratio (FC / F²C) |\n|:--|:--|--:|"
    ));
    s.push_str(if dim { "--:|" } else { "" });
    s.push_str("--:|--:|--:|--:|--:|\n");
    for p in pairs {
        let (low, high) = p.interval();
        s.push_str(&format!("| {} | {} | {} |", p.param, p.variant, p.classes));
        if dim {
            s.push_str(&format!(" {} |", p.dim));
        }
        s.push_str(&format!(
            " {} | {:.2}× | {:.2}–{:.2}× | {:.1} | {:.2}× |\n",
            p.batch,
            p.speedup,
            low,
            high,
            p.saved_s * 1e3,
            p.memory_ratio
        ));
    }
    s
}

/// The number of distinct N among `pairs`.
fn sizes(pairs: &[BenchPair]) -> usize {
    let mut n: Vec<usize> = pairs.iter().map(|p| p.classes).collect();
    n.sort_unstable();
    n.dedup();
    n.len()
}

fn claim2(stats: &[ConfigStats], bench: Option<&BenchFiles>, scale: Option<&Study>) -> Section {
    let title = "Claim 2: faster training and far less memory than FC, the gap growing with N";
    let training_csv = training_step::TRAINING_CSV;
    let mut body = format!(
        "Rule: from one benchmark run: the whole training step of each method's shipped experiment \
         (`{training_csv}`: data, probe and gallery networks, head) where it was timed at two N or \
         more, otherwise each head's step alone (`{BENCH_CSV}`); median step time over the timed \
         steps. A timing's spread is (median − fastest step) / median, and a speed-up's interval is \
         speed-up × (1 ∓ the sum of its two timings' spreads). The claim holds if, at the largest N \
         timed for both, every F²C variant has a shorter step and a smaller head state than Full \
         FC, and its speed-up interval at that N lies above its interval at the smallest N it was \
         timed at; it does not hold if F²C is not faster and smaller at the largest N, or if a \
         variant's interval there lies below that one; it is inconclusive otherwise, and not \
         tested when only one N was timed. The head-alone steps get the same rule, shown beside: \
         with a pool that is a fixed fraction of N both heads' steps grow linearly with N, so the \
         head alone's speed-up is expected to stay about constant while the time saved per step \
         grows with N; the whole step adds the networks' cost, the same at every N, so its \
         speed-up grows as the head comes to dominate the step.\n\n"
    );
    let verdict = match bench {
        None => {
            body.push_str(&format!(
                "`{BENCH_CSV}` does not exist: run the head benchmark first.\n"
            ));
            Verdict::NotTested
        }
        Some(files) => {
            let rows = &files.heads;
            body.push_str("Each head's step alone:\n\n");
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
            let head = bench_pairs(rows);
            body.push_str("\nF²C against Full FC at the same N, D and batch, head alone:\n\n");
            body.push_str(&pairs_table(&head, true));
            if head.is_empty() {
                body.push_str("\nNo N has both an F²C and a Full FC row.\n");
            }
            let head_verdict = claim2_verdict(&head);
            body.push_str(&format!(
                "\nHead alone, under the rule: **{head_verdict}**.\n"
            ));
            let whole = training_pairs(&files.training);
            if !files.training.is_empty() {
                body.push_str(&format!(
                    "\nThe whole training step of each method's shipped experiment (`{training_csv}`):\n\n\
                     | method | N | batch | median step (ms) | fastest (ms) | samples/s | head state |\n\
                     |:--|--:|--:|--:|--:|--:|--:|\n"
                ));
                let ms = |s: Option<f64>| s.map_or("—".into(), |s| format!("{:.2}", s * 1e3));
                for t in &files.training {
                    body.push_str(&format!(
                        "| {} | {} | {} | {} | {} | {:.0} | {} |\n",
                        t.label(),
                        t.classes,
                        t.batch,
                        ms(Some(t.median_step_s)),
                        ms(t.min_step_s),
                        t.samples_per_s,
                        t.head_state_bytes.map_or("—".into(), human_bytes)
                    ));
                }
                body.push_str(&format!(
                    "\nDrawn against N, with the sizes benchmarked separately beside it: `{}`.\n",
                    crate::report::efficiency::TRAINING_SVG
                ));
                body.push_str("\nF²C against Full FC at the same N and batch, whole step:\n\n");
                body.push_str(&pairs_table(&whole, false));
                if whole.is_empty() {
                    body.push_str(
                        "\nNo N has both an F²C and a Full FC whole step with its fastest step and \
                         head state recorded.\n",
                    );
                }
            }
            if sizes(&whole) >= 2 {
                let v = claim2_verdict(&whole);
                body.push_str(&format!(
                    "\nWhole step, under the rule: **{v}**. The verdict is the whole step's.\n"
                ));
                v
            } else {
                body.push_str(
                    "\nThe whole step was not timed at two N: the verdict is the head alone's.\n",
                );
                head_verdict
            }
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
                runs_text(c),
                c.summary(Metric::MedianStepMs)
                    .map_or("—".into(), |s| format!("{:.2}", s.mean)),
                c.head_state_bytes().map_or("—".into(), human_bytes)
            ));
        }
    }
    let at_scale = scale.map(|study| {
        let (table, ratios) = claim2_at_scale(study);
        body.push_str(&table);
        ratios
    });
    Section {
        title,
        verdict,
        body,
        at_scale,
    }
}

/// Claim 2's rule applied to the GPU check's benchmark (`results/gpu/bench/`), where it was
/// committed: beside the verdict above, which is the CPU benchmark's; empty without it.
fn claim2_on_gpu(root: &Path) -> Result<String> {
    let at = crate::report::efficiency::GPU_PAPER.heads_csv;
    let Some(files) = BenchFiles::read_at(&root.join(at))? else {
        return Ok(String::new());
    };
    let head = bench_pairs(&files.heads);
    let whole = training_pairs(&files.training);
    let mut s = format!(
        "## Claim 2 on a GPU\n\n\
         The rule of claim 2 applied to the GPU check's benchmark (`{at}`; machine and commands: \
         `results/gpu/README.md`, every head: `paper/tables/efficiency_gpu.md`). It is shown beside \
         the verdict above, which is the CPU benchmark's.\n\n\
         F²C against Full FC at the same N, D and batch, head alone:\n\n{}\n\
         Head alone, under the rule: **{}**.\n",
        pairs_table(&head, true),
        claim2_verdict(&head)
    );
    if sizes(&whole) >= 2 {
        s += &format!(
            "\nF²C against Full FC at the same N and batch, whole step:\n\n{}\n\
             Whole step, under the rule: **{}**.\n",
            pairs_table(&whole, false),
            claim2_verdict(&whole)
        );
    }
    Ok(s + "\n")
}

/// The settings of a group with their TAR@FAR=1e-3, as a table.
fn group_table(stats: &[ConfigStats], group: &str) -> String {
    let mut out =
        String::from("| Setting | `config_id` | Runs | TAR@FAR=1e-3 (%) |\n|:--|:--|--:|--:|\n");
    for c in stats.iter().filter(|c| c.group == group) {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            c.first().label,
            c.config_id,
            runs_text(c),
            tar_cell(c)
        ));
    }
    out.push('\n');
    out
}

/// Superiority of `reference` over each of `others`: the comparisons as a table and the verdict
/// (holds if every paired CI lies above 0, does not hold if one lies below 0, inconclusive
/// otherwise). Arms that collapsed are listed and left out of the verdict; if the reference
/// collapsed, or every other arm did, nothing is supported.
fn superiority_over(
    reference: &ConfigStats,
    others: &[&ConfigStats],
    body: &mut String,
) -> Verdict {
    body.push_str(&format!(
        "| {} − … | Δ TAR@FAR=1e-3 (pp) [paired 95% CI] | p (paired) | Seeds ±1.5 | Verdict |\n|:--|--:|--:|--:|:--|\n",
        reference.first().label
    ));
    let mut verdicts = Vec::new();
    let mut collapsed = Vec::new();
    for o in others {
        let paired = reference.paired_with(o, Metric::TarFar1e3);
        let v = match collapse_note(o) {
            Some(n) => {
                collapsed.push(format!("`{}` {n}", o.first().label));
                Verdict::ArmCollapsed
            }
            None => {
                let v = superiority(paired.as_ref());
                verdicts.push(v);
                v
            }
        };
        body.push_str(&format!(
            "| {} | {} | {} | {} | {v}{} |\n",
            o.first().label,
            diff_cell(paired.as_ref()),
            p_cell(paired.as_ref()),
            seeds_cell(paired.as_ref()),
            equivalence_note(v, paired.as_ref())
        ));
    }
    body.push('\n');
    for n in &collapsed {
        body.push_str(&format!(
            "{n}: at or below the untrained network, so the comparison with it supports nothing.\n\n"
        ));
    }
    if let Some(n) = collapse_note(reference) {
        body.push_str(&format!(
            "The reference `{}` {n}: no comparison supports the claim.\n\n",
            reference.first().label
        ));
        return Verdict::ArmCollapsed;
    }
    if verdicts.is_empty() {
        return if collapsed.is_empty() {
            Verdict::NotTested
        } else {
            Verdict::ArmCollapsed
        };
    }
    if verdicts.contains(&Verdict::DoesNotHold) {
        Verdict::DoesNotHold
    } else if verdicts.iter().all(|v| *v == Verdict::Holds) {
        Verdict::Holds
    } else {
        Verdict::Inconclusive
    }
}

/// How the superiority claims mark an arm that is inconclusive but close.
fn equivalence_rule() -> String {
    format!(
        "An inconclusive arm whose CI lies within ±{NON_INFERIORITY_MARGIN_PP} points (claim 1's \
         margin) is marked equivalent: a difference that large is ruled out either way, which the \
         verdict, a test of superiority, does not say."
    )
}

/// Claims 3 and 4 at scale: the comparison `compare` made on each pool of the study of F²C's
/// parts, appended to `body` as a section under the claim's; the verdicts for the verdicts table
/// (`None` when the study has not run).
fn components_at_scale(
    scale: &[Components],
    group: &str,
    body: &mut String,
    compare: impl Fn(&Components) -> (Verdict, String),
) -> Option<String> {
    let cells: Vec<String> = scale
        .iter()
        .map(|c| {
            let (verdict, comparisons) = compare(c);
            body.push_str(&format!(
                "\nAt scale (`results/{COMPONENTS_MATRIX}/`, `ablations/{COMPONENTS_MATRIX}.ron`): the \
                 same rule on the `{group}` group of F²C at {}, around the scale study's F²C run of \
                 that configuration (its `main` group). Verdict at this N: **{verdict}**; it is shown \
                 beside the claim's, which is read from the default matrix above.\n\n{comparisons}",
                c.describe()
            ));
            format!("{}: {verdict}", c.name())
        })
        .collect();
    (!cells.is_empty()).then(|| cells.join("; "))
}

/// Claim 3's comparisons in the `loaders` group of `stats`: its table, the dual loaders against
/// each single loader, and the identity-only reading; the verdict.
fn dual_loaders(stats: &[ConfigStats], group: &str) -> (Verdict, String) {
    let mut body = group_table(stats, group);
    let main_f2c = find(stats, "main", |r| r.method == Method::F2c).map(|c| c.first());
    let dual = find(stats, group, |r| match main_f2c {
        Some(m) => (r.id_per_step, r.inst_per_step) == (m.id_per_step, m.inst_per_step),
        None => r.id_per_step > 0 && r.inst_per_step > 0,
    });
    let instance_only = find(stats, group, |r| r.id_per_step == 0 && r.inst_per_step > 0);
    let identity_only = find(stats, group, |r| r.id_per_step > 0 && r.inst_per_step == 0);
    let (Some(dual), Some(inst), Some(ident)) = (dual, instance_only, identity_only) else {
        body.push_str(&format!(
            "The `{group}` group lacks the reference dual-loader, the instance-only or the identity-only \
             setting: not tested.\n"
        ));
        return (Verdict::NotTested, body);
    };
    let verdict = superiority_over(dual, &[inst, ident], &mut body);
    // The identity-only result is reported whatever it is.
    if let Some(p) = dual.paired_with(ident, Metric::TarFar1e3) {
        let reading = match (superiority(Some(&p)), collapse_note(ident)) {
            (_, Some(_)) => "collapsed (see above)".to_string(),
            (Verdict::Holds, _) => "below the dual loaders".into(),
            (Verdict::DoesNotHold, _) => {
                "above the dual loaders: the identity loader alone beats them".into()
            }
            _ if equivalent(Some(&p), MARGIN) => format!(
                "equivalent to the dual loaders (the 95% CI lies within \
                 ±{NON_INFERIORITY_MARGIN_PP} pp)"
            ),
            _ => "not distinguishable from the dual loaders at the 95% CI".into(),
        };
        body.push_str(&format!(
            "Identity-only (`{}`): {}, {} pp (dual − identity-only).\n",
            ident.first().label,
            reading,
            diff_cell(Some(&p))
        ));
    }
    (verdict, body)
}

fn claim3(stats: &[ConfigStats], scale: &[Components]) -> Section {
    let title = "Claim 3: the dual loaders make pool updating more efficient than a single loader";
    let group = claim_groups(Claim::DualLoaders)[0];
    let mut body = format!(
        "Rule: in the `{group}` group, the reference dual-loader setting (the identities and instances \
         per step of the `main` F²C run) against both single loaders: instance-only (0 identities per \
         step) and identity-only (0 instances per step). The claim holds if the paired 95% CI of the \
         difference of TAR@FAR=1e-3 (dual − single) lies above 0 for both, does not hold if it lies \
         below 0 for either, and is inconclusive otherwise. A collapsed arm supports nothing. \
         {}\n\n",
        equivalence_rule()
    );
    let (verdict, comparisons) = dual_loaders(stats, group);
    body.push_str(&comparisons);
    let at_scale = components_at_scale(scale, group, &mut body, |c| dual_loaders(&c.stats, group));
    Section {
        title,
        verdict,
        body,
        at_scale,
    }
}

/// The momentum of the `main` F²C run in `stats` (0.99 without one): claim 4's reference.
fn reference_momentum(stats: &[ConfigStats]) -> f64 {
    find(stats, "main", |r| r.method == Method::F2c)
        .and_then(|c| c.first().ema_momentum)
        .unwrap_or(0.99)
}

/// Claim 4's comparisons in the `ema` group of `stats`: its table, the reference momentum against
/// every other one, and whether m = 0 collapsed (`collapse_checked`: there were reference points to
/// tell); the verdict.
fn ema_momenta(stats: &[ConfigStats], group: &str, collapse_checked: bool) -> (Verdict, String) {
    let mut body = group_table(stats, group);
    let reference = reference_momentum(stats);
    // Momenta pass through f32 in the config, so they are compared with a tolerance.
    let is = |m: f64| move |r: &SummaryRow| r.ema_momentum.is_some_and(|x| (x - m).abs() < 1e-6);
    let Some(with_ema) = find(stats, group, is(reference)) else {
        body.push_str(&format!(
            "The `{group}` group lacks the reference momentum: not tested.\n"
        ));
        return (Verdict::NotTested, body);
    };
    let others: Vec<&ConfigStats> = stats
        .iter()
        .filter(|c| c.group == group && c.config_id != with_ema.config_id)
        .collect();
    let verdict = superiority_over(with_ema, &others, &mut body);
    // A collapsed m = 0 is named above with the other collapsed arms.
    if find(stats, group, is(0.0)).is_some_and(|zero| collapse_note(zero).is_none()) {
        body.push_str(if collapse_checked {
            "m = 0 (no averaging) did not collapse.\n"
        } else {
            "Whether m = 0 (no averaging) collapsed could not be checked: no reference points.\n"
        });
    }
    // The comparisons end with one line break, whichever note came last.
    body.truncate(body.trim_end().len());
    body.push('\n');
    (verdict, body)
}

fn claim4(stats: &[ConfigStats], collapse_checked: bool, scale: &[Components]) -> Section {
    let title = "Claim 4: the EMA gallery net matters";
    let group = claim_groups(Claim::EmaGallery)[0];
    let mut body = format!(
        "Rule: in the `{group}` group, the reference momentum m = {m} (that of the `main` F²C run) against \
         every other momentum that did not collapse. The claim holds if the paired 95% CI of the \
         difference of TAR@FAR=1e-3 (m = {m} − other) lies above 0 for every one, does not hold if it \
         lies below 0 for one, and is inconclusive otherwise. Collapsed momenta (m = 0, gallery = probe, \
         among them when it collapses) are named and support nothing. {}\n\n",
        equivalence_rule(),
        m = short_number(reference_momentum(stats))
    );
    let (verdict, comparisons) = ema_momenta(stats, group, collapse_checked);
    body.push_str(&comparisons);
    let at_scale = components_at_scale(scale, group, &mut body, |c| {
        ema_momenta(&c.stats, group, c.collapse_checked)
    });
    Section {
        title,
        verdict,
        body,
        at_scale,
    }
}

/// The main comparison with the reference points: the `main` configurations, and the raw
/// features and the untrained network (mean over the seeds in `references.csv` on the data of the
/// `main` group).
fn main_table(stats: &[ConfigStats], refs: Option<&[ReferenceRow]>) -> String {
    let mut s = String::from(
        "| Method | Runs | TAR@FAR=1e-2 (%) | TAR@FAR=1e-3 (%) | TAR@FAR=1e-4 (%) | Rank-1 (%) |\n|:--|--:|--:|--:|--:|--:|\n",
    );
    for c in stats.iter().filter(|c| c.group == "main") {
        let cells: Vec<String> = [
            Metric::TarFar1e2,
            Metric::TarFar1e3,
            Metric::TarFar1e4,
            Metric::Rank1,
        ]
        .iter()
        .map(|m| rate_cell(c.summary(*m)))
        .collect();
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            method_name(c.first()),
            runs_text(c),
            cells.join(" | ")
        ));
    }
    match refs {
        None => s.push_str(
            "\nThe reference points (`references.csv`: raw features, untrained network) are absent: \
             collapse could not be checked, and no run is marked collapsed.\n",
        ),
        Some(refs) => {
            let main_data = stats
                .iter()
                .find(|c| c.group == "main")
                .and_then(|c| c.first().data_id.as_deref());
            for kind in ReferenceKind::ALL {
                let on_main = |r: &ReferenceRow| same_id(r.data_id.as_deref(), main_data);
                let of = |f: fn(&ReferenceRow) -> f64| -> Vec<f64> {
                    refs.iter()
                        .filter(|r| r.kind == kind && on_main(r))
                        .map(f)
                        .collect()
                };
                let t2 = of(|r| r.tar_far_1e2);
                if t2.is_empty() {
                    continue;
                }
                let pct = |xs: Vec<f64>| format!("{:.2}", mean(&xs) * 100.0);
                s.push_str(&format!(
                    "| {} (reference, mean) | {} seeds | {} | {} | {} | {} |\n",
                    kind.label(),
                    t2.len(),
                    pct(t2.clone()),
                    pct(of(|r| r.tar_far_1e3)),
                    pct(of(|r| r.tar_far_1e4)),
                    pct(of(|r| r.rank1))
                ));
            }
            s.push_str(
                "\nA run is collapsed when its TAR@FAR=1e-3 is at or below the untrained network's on the \
                 same seed and data; collapsed runs are counted under Runs and left out of every mean and test.\n",
            );
        }
    }
    s
}

/// Renders the report from the summary rows (with collapsed runs already marked, see
/// [`crate::ablation::references::mark_collapsed`]), the reference points, the head benchmark and
/// the scale study when present. Fails when a group of [`CLAIM_GROUPS`] is missing.
pub fn render_report(
    rows: &[SummaryRow],
    refs: Option<&[ReferenceRow]>,
    bench: Option<&BenchFiles>,
    scale: Option<&Study>,
) -> Result<String> {
    check_claim_groups(rows)?;
    let stats = config_stats(rows);
    // A run shared by several groups (the reference configuration of every ablation) has one row
    // per group; it was trained once, so runs and configurations are counted by their ids.
    let mut runs: Vec<&SummaryRow> = Vec::new();
    for r in rows {
        if !runs.iter().any(|x| x.run_id == r.run_id) {
            runs.push(r);
        }
    }
    let count = |f: fn(&RowStatus) -> bool| runs.iter().filter(|r| f(&r.status)).count();
    let ok = count(|s| *s == RowStatus::Ok);
    let collapsed = count(|s| *s == RowStatus::Collapsed);
    let failed = count(|s| matches!(s, RowStatus::Failed(_)));
    let mut config_ids: Vec<&str> = rows.iter().map(|r| r.config_id.as_str()).collect();
    config_ids.sort_unstable();
    config_ids.dedup();
    let configs = config_ids.len();
    let components = scale.map_or(&[][..], |s| &s.components[..]);
    let sections = [
        claim1(&stats, scale),
        claim2(&stats, bench, scale),
        claim3(&stats, components),
        claim4(&stats, refs.is_some(), components),
    ];
    let mut s =
        String::from("# Reproduction report: F²C (Faster Face Classification, CVPR 2022)\n\n");
    s.push_str(&format!(
        "Generated by `f2c` from the matrix summary ({} runs of {configs} configurations: {ok} ok, \
         {collapsed} collapsed, {failed} failed; groups: {}); do not edit, regenerate it. Accuracy is \
         TAR@FAR=1e-3 in percent: mean over the successful seeds ± half-width of the 95% Student-t \
         confidence interval; differences are in percentage points (pp), paired by seed (a seed fixes \
         the data and the held-out set for every method), with the paired-t 95% CI of the mean \
         difference, its two-sided p, and the seeds a 95% CI of half-width 1.5 points would need \
         (\"Seeds ±1.5\", from the sample SD of the paired differences).\n\n",
        runs.len(),
        groups(rows).iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(", ")
    ));
    s.push_str("## Main comparison\n\n");
    s.push_str(&main_table(&stats, refs));
    // A column for the verdicts at scale where the scale study tests any claim.
    let scale_column = sections.iter().any(|sec| sec.at_scale.is_some());
    s.push_str("\n## Verdicts\n\n| Claim | Verdict |");
    s.push_str(match scale_column {
        true => " At scale (the same rule, shown beside) |\n|:--|:--|:--|\n",
        false => "\n|:--|:--|\n",
    });
    for sec in &sections {
        s.push_str(&format!("| {} | **{}** |", sec.title, sec.verdict));
        if scale_column {
            let cell = sec.at_scale.as_deref().unwrap_or("not studied at scale");
            s.push_str(&format!(" {cell} |"));
        }
        s.push('\n');
    }
    for sec in &sections {
        s.push_str(&format!(
            "\n## {}\n\nVerdict: **{}**.\n\n{}",
            sec.title, sec.verdict, sec.body
        ));
    }
    s.push_str("\n## Failed and collapsed runs\n\n");
    let listed: Vec<&SummaryRow> = runs
        .iter()
        .copied()
        .filter(|r| r.status != RowStatus::Ok)
        .collect();
    if listed.is_empty() {
        s.push_str("None.\n");
    }
    for r in listed {
        s.push_str(&format!(
            "- `{}` (group `{}`, {}): {}\n",
            r.run_id, r.group, r.label, r.status
        ));
    }
    s.push('\n');
    s.push_str(&crate::report::deviations::markdown());
    s.push_str(
        "\n## Tables and figures\n\nEvery group's full table (all TAR@FAR levels, rank-1, step time, head \
         state, paired Holm-corrected p-values against Full FC, seeds needed) is in \
         `paper/tables/<group>.md` and `.tex`; the figures are in `paper/figures/`.\n",
    );
    if scale.is_some() {
        s.push_str(&format!(
            "The scale study's tables (the same columns, one table per N, each compared with Full FC \
             at its N) are in `{TABLE_MD}` and `.tex`.\n"
        ));
    }
    Ok(s)
}

/// Writes `<out>/paper/README.md`, reading `<out>/results/bench/` ([`BenchFiles`]) when it exists and
/// citing the scale study when given, and returns the path written. `out` is the project root.
pub fn write_report(
    rows: &[SummaryRow],
    refs: Option<&[ReferenceRow]>,
    scale: Option<&Study>,
    main: &BTreeMap<Variant, (String, String)>,
    out: &Path,
) -> Result<PathBuf> {
    let bench = BenchFiles::read(out)?;
    let path = out.join("paper").join("README.md");
    let mut text = render_report(rows, refs, bench.as_ref(), scale)?;
    text.push_str(&claim2_on_gpu(out)?);
    text.push_str(&crate::report::curves::section(out)?);
    let base = crate::config::embedded::load("experiments/ablation.ron")?;
    text.push_str(&crate::report::tuning::section(
        out,
        (base.train.lr, base.train.weight_decay),
        main,
    )?);
    crate::results::record::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stats::paired_comparison;

    fn paired(a: &[f64], b: &[f64]) -> Option<Paired> {
        let key = |xs: &[f64]| -> Vec<(u64, f64)> {
            xs.iter().enumerate().map(|(i, &x)| (i as u64, x)).collect()
        };
        paired_comparison(&key(a), &key(b))
    }

    #[test]
    fn non_inferiority_three_ways() {
        // Differences −0.01, −0.03: mean −0.02, sd √2e-4 = 0.014142, SE 0.01, df 1:
        // half-width 12.706205·0.01 = 0.127062; CI [−0.147062, 0.107062]: lower bound above
        // −0.2 → holds; above −0.1? no → straddles −0.1 → inconclusive.
        let p = paired(&[0.86, 0.86], &[0.87, 0.89]);
        assert_eq!(non_inferiority(p.as_ref(), 0.2), Verdict::Holds);
        assert_eq!(non_inferiority(p.as_ref(), 0.1), Verdict::Inconclusive);
        // Shifted down by 0.5: CI [−0.647, −0.393], entirely below −0.2 → does not hold.
        let low = paired(&[0.36, 0.36], &[0.87, 0.89]);
        assert_eq!(non_inferiority(low.as_ref(), 0.2), Verdict::DoesNotHold);
        // n = 1: no interval.
        let one = paired(&[0.9], &[0.8]);
        assert_eq!(non_inferiority(one.as_ref(), 0.1), Verdict::Inconclusive);
        assert_eq!(non_inferiority(None, 0.1), Verdict::Inconclusive);
    }

    #[test]
    fn superiority_three_ways() {
        // Differences 0.2, 0.2 → zero-width CI at 0.2 > 0 → holds; reversed → does not hold;
        // differences −0.01, +0.01 → contains 0.
        let up = paired(&[1.06, 1.08], &[0.86, 0.88]);
        assert_eq!(superiority(up.as_ref()), Verdict::Holds);
        let down = paired(&[0.86, 0.88], &[1.06, 1.08]);
        assert_eq!(superiority(down.as_ref()), Verdict::DoesNotHold);
        let flat = paired(&[0.86, 0.88], &[0.87, 0.87]);
        assert_eq!(superiority(flat.as_ref()), Verdict::Inconclusive);
    }

    #[test]
    fn equivalence_at_a_margin() {
        // Differences −0.01, +0.01: mean 0, sd √2e-4, SE 0.01, df 1: CI ±0.127062, within ±0.2
        // but not within ±0.1; differences 0.2, 0.2: a zero-width CI at 0.2, outside ±0.2.
        let flat = paired(&[0.86, 0.88], &[0.87, 0.87]);
        assert!(equivalent(flat.as_ref(), 0.2));
        assert!(!equivalent(flat.as_ref(), 0.1));
        let up = paired(&[1.06, 1.08], &[0.86, 0.88]);
        assert!(!equivalent(up.as_ref(), 0.2));
        assert!(
            !equivalent(paired(&[0.9], &[0.8]).as_ref(), 1.0),
            "no interval, no claim"
        );
        // Marked only on an inconclusive superiority arm.
        let note = |v| equivalence_note(v, flat.as_ref());
        assert_eq!(note(Verdict::Holds), "");
        assert_eq!(MARGIN, 0.02);
        assert_eq!(equivalence_note(Verdict::Inconclusive, flat.as_ref()), "");
        let tight = paired(&[0.870, 0.871, 0.872], &[0.870, 0.870, 0.871]);
        assert_eq!(
            equivalence_note(Verdict::Inconclusive, tight.as_ref()),
            " (equivalent within ±2 pp)"
        );
    }

    fn b(head: Method, n: usize, step: f64, bytes: u64) -> BenchRow {
        let param = if head == Method::Fc { 1.0 } else { 0.01 };
        BenchRow::timed(head, param, "", n, 128, 256, step, bytes)
    }

    #[test]
    fn claim2_rule() {
        // N = 1e4: FC 2 ms vs F²C 1 ms (2×); N = 1e5: 20 ms vs 2 ms (10×): faster, smaller, growing.
        let rows = [
            b(Method::Fc, 10_000, 0.002, 1000),
            b(Method::F2c, 10_000, 0.001, 100),
            b(Method::Fc, 100_000, 0.02, 10_000),
            b(Method::F2c, 100_000, 0.002, 100),
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
            b(Method::Fc, 10_000, 0.002, 1000),
            b(Method::F2c, 10_000, 0.001, 100),
            b(Method::Fc, 100_000, 0.003, 10_000),
            b(Method::F2c, 100_000, 0.002, 100),
        ];
        assert_eq!(claim2_verdict(&bench_pairs(&shrink)), Verdict::DoesNotHold);
        // Within the timings' spread: FC at 1e4 between 1.8 and 2 ms (spread 10 %), so the
        // speed-up 2× ∓ 10 % = 1.8–2.2× overlaps 2.1× at 1e5: inconclusive, either way.
        let noisy = |fc_hi: f64| {
            let mut r = vec![
                b(Method::Fc, 10_000, 0.002, 1000),
                b(Method::F2c, 10_000, 0.001, 100),
                b(Method::Fc, 100_000, fc_hi, 10_000),
                b(Method::F2c, 100_000, 0.01, 100),
            ];
            r[0].min_step_s = 0.0018;
            claim2_verdict(&bench_pairs(&r))
        };
        assert_eq!(noisy(0.021), Verdict::WithinNoise);
        assert_eq!(noisy(0.019), Verdict::WithinNoise);
        // Beyond it, both ways: 2.3× above 2.2×, 1.7× below 1.8×.
        assert_eq!(noisy(0.023), Verdict::Holds);
        assert_eq!(noisy(0.017), Verdict::DoesNotHold);
        // A variant first timed at the middle N is compared from there: the 1 % pool falls from
        // 10× at 1e5 to 5× at 1e6 while the 10 % pool grows from 1e4.
        let f = |param, n, step| BenchRow::timed(Method::F2c, param, "", n, 128, 256, step, 100);
        let three = [
            b(Method::Fc, 10_000, 0.002, 1000),
            f(0.1, 10_000, 0.001),
            b(Method::Fc, 100_000, 0.02, 10_000),
            f(0.1, 100_000, 0.004),
            f(0.01, 100_000, 0.002),
            b(Method::Fc, 1_000_000, 0.2, 100_000),
            f(0.1, 1_000_000, 0.02),
            f(0.01, 1_000_000, 0.04),
        ];
        assert_eq!(claim2_verdict(&bench_pairs(&three)), Verdict::DoesNotHold);
        assert_eq!(
            claim2_verdict(&bench_pairs(&[&three[..5], &three[5..7]].concat())),
            Verdict::Holds
        );
        // One N only, or nothing paired: not tested.
        assert_eq!(claim2_verdict(&bench_pairs(&rows[..2])), Verdict::NotTested);
        assert_eq!(claim2_verdict(&bench_pairs(&rows[..1])), Verdict::NotTested);
    }

    fn whole(method: Method, n: usize, median: f64, fastest: Option<f64>, state: u64) -> TrainRow {
        TrainRow {
            method: method.to_string(),
            param: if method == Method::Fc { 1.0 } else { 0.1 },
            variant: String::new(),
            classes: n,
            batch: 256,
            median_step_s: median,
            samples_per_s: 256.0 / median,
            to_device_bytes: 0,
            to_device_copies: 0,
            to_host_bytes: 0,
            to_host_copies: 0,
            resident_bytes: 0,
            min_step_s: fastest,
            head_state_bytes: Some(state),
        }
    }

    #[test]
    fn whole_step_pairs() {
        // N = 1e4: FC 50 ms (fastest 45: spread 10 %), F²C 60 ms (spread 0): 0.83× ∓ 10 %;
        // N = 1e5: FC 200 ms, F²C 70 ms: 2.86×, beyond 0.92×: holds, although F²C's whole step
        // is the slower at the small N.
        let rows = [
            whole(Method::Fc, 10_000, 0.05, Some(0.045), 1000),
            whole(Method::F2c, 10_000, 0.06, Some(0.06), 100),
            whole(Method::PartialFc, 10_000, 0.04, Some(0.04), 1000),
            whole(Method::Fc, 100_000, 0.2, Some(0.2), 10_000),
            whole(Method::F2c, 100_000, 0.07, Some(0.07), 1000),
        ];
        let pairs = training_pairs(&rows);
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            (
                pairs[0].variant.as_str(),
                pairs[0].classes,
                pairs[0].memory_ratio
            ),
            (WHOLE_STEP, 10_000, 10.0)
        );
        assert!((pairs[0].speedup - 0.05 / 0.06).abs() < 1e-12);
        assert!((pairs[0].spread - 0.1).abs() < 1e-12);
        assert!((pairs[1].saved_s - 0.13).abs() < 1e-12);
        assert_eq!(claim2_verdict(&pairs), Verdict::Holds);
        // F²C slower than FC at the largest N: does not hold.
        let mut slow = rows.clone();
        slow[4].median_step_s = 0.25;
        assert_eq!(claim2_verdict(&training_pairs(&slow)), Verdict::DoesNotHold);
        // A row written before the fastest step was recorded pairs with nothing.
        let mut old = rows.clone();
        old[3].min_step_s = None;
        assert_eq!(training_pairs(&old).len(), 1);
    }
}
