//! Statistics over seeds: per-configuration mean, sample standard deviation and Student-t 95%
//! confidence half-width, and the paired comparison of each configuration with the full-FC
//! configuration on TAR@FAR=1e-3, Holm-corrected within each table.
//!
//! The design is paired: a seed fixes the synthetic data and the held-out set for every method, so
//! two configurations are compared through their differences seed by seed (paired t), which
//! removes the seed-to-seed variation of the data that an unpaired test would count as noise.
//!
//! Conventions, chosen once here so every table, figure and verdict agrees:
//! - a configuration is a `(group, config_id)` pair; its seeds are its runs;
//! - only runs with status `ok` (not failed, not collapsed) and a value for the metric enter a
//!   statistic; failed and collapsed runs are counted (see [`ConfigStats::runs`],
//!   [`ConfigStats::ok`], [`ConfigStats::collapsed`]), never dropped silently;
//! - a paired comparison uses the seeds both configurations have with status `ok`, matched by
//!   seed; unmatched seeds are left out (and the number used is shown);
//! - with n = 1 the standard deviation and the confidence interval are undefined (`None`), shown
//!   as "n=1" by the tables, never replaced by an invented value;
//! - when every paired difference is the same, the test is 0/0 or ±x/0: all zero gives no test
//!   (`None`: p undefined); a constant non-zero difference has p = 0, the limit as the spread
//!   shrinks to 0 (every seed moves the same way by the same amount), and a zero-width interval.

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::ablation::summary::{RowStatus, SummaryRow};
use crate::heads::Method;
use crate::results::record::same_id;

/// Confidence level of every interval in the report.
pub const CONFIDENCE: f64 = 0.95;

/// Significance level of the † marker and of the verdicts.
pub const ALPHA: f64 = 0.05;

/// The metrics a statistic can be computed over, each read from a [`SummaryRow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    TarFar1e2,
    TarFar1e3,
    TarFar1e4,
    Rank1,
    Accuracy,
    MedianStepMs,
    SamplesPerS,
}

impl Metric {
    /// The value of this metric in a row, or `None` when the run failed or did not record it.
    pub fn of(self, row: &SummaryRow) -> Option<f64> {
        if !row_ok(row) {
            return None;
        }
        match self {
            Metric::TarFar1e2 => row.tar_far_1e2,
            Metric::TarFar1e3 => row.tar_far_1e3,
            Metric::TarFar1e4 => row.tar_far_1e4,
            Metric::Rank1 => row.rank1,
            Metric::Accuracy => row.accuracy,
            Metric::MedianStepMs => row.median_step_ms,
            Metric::SamplesPerS => row.samples_per_s,
        }
        .filter(|v| v.is_finite())
    }
}

/// Whether a summary row is a successful run: trained, evaluated, and not collapsed.
pub fn row_ok(row: &SummaryRow) -> bool {
    row.status == RowStatus::Ok
}

/// Mean, spread and confidence half-width of one metric over the seeds of one configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of values (successful seeds).
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (divisor n − 1); `None` for n = 1.
    pub std: Option<f64>,
    /// Half-width of the 95% Student-t confidence interval of the mean, t_{0.975, n−1}·s/√n;
    /// `None` for n = 1.
    pub ci95: Option<f64>,
}

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance with divisor n − 1; `None` for fewer than two values.
pub fn sample_variance(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs);
    Some(xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64)
}

/// Sample standard deviation with divisor n − 1; `None` for fewer than two values.
pub fn sample_std(xs: &[f64]) -> Option<f64> {
    sample_variance(xs).map(f64::sqrt)
}

/// The quantile `p` of Student's t distribution with `df` degrees of freedom (df > 0).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    // df > 0 is guaranteed by every caller (n ≥ 2).
    StudentsT::new(0.0, 1.0, df)
        .expect("student t with df > 0")
        .inverse_cdf(p)
}

/// Two-sided p-value of a t statistic with `df` degrees of freedom.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    // The survival function keeps precision in the far tail where 1 − cdf would round to 0.
    let dist = StudentsT::new(0.0, 1.0, df).expect("student t with df > 0");
    (2.0 * dist.sf(t.abs())).min(1.0)
}

/// Half-width of the 95% confidence interval of the mean: t_{0.975, n−1}·s/√n; `None` for n < 2.
pub fn ci95_half_width(xs: &[f64]) -> Option<f64> {
    let s = sample_std(xs)?;
    let n = xs.len() as f64;
    Some(t_quantile(0.5 + CONFIDENCE / 2.0, n - 1.0) * s / n.sqrt())
}

/// Mean, std and CI of `xs`; `None` when there are no values.
pub fn summarize(xs: &[f64]) -> Option<Summary> {
    if xs.is_empty() {
        return None;
    }
    Some(Summary {
        n: xs.len(),
        mean: mean(xs),
        std: sample_std(xs),
        ci95: ci95_half_width(xs),
    })
}

/// The paired comparison of configuration `a` with configuration `b` over their shared seeds:
/// the differences a − b seed by seed, their paired t-test and interval, and how many seeds a
/// tighter interval would need.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// The seeds both arms have with status `ok` and a value, ascending.
    pub seeds: Vec<u64>,
    /// Mean of the differences a − b.
    pub mean_diff: f64,
    /// Sample standard deviation of the differences; `None` for fewer than two seeds.
    pub sd: Option<f64>,
    /// 95% paired-t confidence interval of the mean difference, d̄ ± t_{0.975,n−1}·sd/√n;
    /// `None` for fewer than two seeds.
    pub ci95: Option<(f64, f64)>,
    /// Two-sided p-value of the paired t-test (t = d̄/(sd/√n), n − 1 df); `None` when undefined
    /// (fewer than two seeds, or every difference 0).
    pub p: Option<f64>,
    /// `p` after Holm's correction over the comparisons of the same table ([`holm`]).
    pub p_holm: Option<f64>,
}

impl Paired {
    /// Number of shared seeds.
    pub fn n(&self) -> usize {
        self.seeds.len()
    }
}

/// `(seed, value)` of every successful run of `c` with a value of `metric`.
fn seeded(c: &ConfigStats, metric: Metric) -> Vec<(u64, f64)> {
    c.rows
        .iter()
        .filter_map(|r| metric.of(r).map(|v| (r.seed, v)))
        .collect()
}

/// The differences a − b of the seeds both lists have, by ascending seed. A seed listed twice on a
/// side (not produced by the runner) uses its first value.
pub fn paired_differences(a: &[(u64, f64)], b: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, f64)> = Vec::new();
    for &(seed, x) in a {
        if out.iter().any(|(s, _)| *s == seed) {
            continue;
        }
        if let Some(&(_, y)) = b.iter().find(|(s, _)| *s == seed) {
            out.push((seed, x - y));
        }
    }
    out.sort_by_key(|(s, _)| *s);
    out
}

/// The paired t-test of `a` against `b` (values keyed by seed); `None` when no seed is shared.
pub fn paired_comparison(a: &[(u64, f64)], b: &[(u64, f64)]) -> Option<Paired> {
    let diffs = paired_differences(a, b);
    if diffs.is_empty() {
        return None;
    }
    let d: Vec<f64> = diffs.iter().map(|(_, d)| *d).collect();
    let n = d.len() as f64;
    let mean_diff = mean(&d);
    let sd = sample_std(&d);
    let (ci95, p) = match sd {
        None => (None, None),
        Some(0.0) => (
            Some((mean_diff, mean_diff)),
            (mean_diff != 0.0).then_some(0.0),
        ),
        Some(sd) => {
            let se = sd / n.sqrt();
            let half = t_quantile(0.5 + CONFIDENCE / 2.0, n - 1.0) * se;
            (
                Some((mean_diff - half, mean_diff + half)),
                Some(t_two_sided_p(mean_diff / se, n - 1.0)),
            )
        }
    };
    Some(Paired {
        seeds: diffs.iter().map(|(s, _)| *s).collect(),
        mean_diff,
        sd,
        ci95,
        p,
        p_holm: None,
    })
}

/// Holm's step-down adjusted p-values, in the input order; `None` entries (undefined tests) are
/// not part of the family and stay `None`. With the m defined p-values sorted ascending,
/// p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1)·p₍ⱼ₎); rejecting where p̃ < α controls the family-wise
/// error rate at α.
pub fn holm(ps: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut order: Vec<usize> = (0..ps.len()).filter(|&i| ps[i].is_some()).collect();
    order.sort_by(|&i, &j| ps[i].unwrap().total_cmp(&ps[j].unwrap()).then(i.cmp(&j)));
    let m = order.len();
    let mut out = vec![None; ps.len()];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        let scaled = ((m - rank) as f64 * ps[i].unwrap()).min(1.0);
        running = running.max(scaled);
        out[i] = Some(running);
    }
    out
}

/// How many paired seeds a 95% interval of a given half-width needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedsNeeded {
    /// The smallest n ≥ 2 with t_{0.975,n−1}·sd/√n ≤ the half-width.
    Exactly(usize),
    /// More than this many (the search stops there).
    MoreThan(usize),
    /// The spread of the differences is unknown (fewer than two shared seeds).
    Undefined,
}

impl std::fmt::Display for SeedsNeeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeedsNeeded::Exactly(n) => write!(f, "{n}"),
            SeedsNeeded::MoreThan(n) => write!(f, ">{n}"),
            SeedsNeeded::Undefined => f.write_str("n/a"),
        }
    }
}

/// Target half-width of the 95% paired interval, in rate units: 1.5 points of a percentage.
pub const TARGET_HALF_WIDTH: f64 = 0.015;

/// The most seeds [`seeds_needed`] searches.
pub const MAX_SEEDS: usize = 1000;

/// Seeds needed for a 95% paired-t half-width of `half_width` when the differences have sample
/// standard deviation `sd` (taken as the true one): the smallest n ≥ 2 with
/// t_{0.975,n−1}·sd/√n ≤ `half_width`, up to [`MAX_SEEDS`]. `None` for `sd` gives
/// [`SeedsNeeded::Undefined`].
pub fn seeds_needed(sd: Option<f64>, half_width: f64) -> SeedsNeeded {
    let Some(sd) = sd else {
        return SeedsNeeded::Undefined;
    };
    // The half-width decreases with n (both t and 1/√n do), so the first n that fits is the least.
    (2..=MAX_SEEDS)
        .find(|&n| {
            let n = n as f64;
            t_quantile(0.5 + CONFIDENCE / 2.0, n - 1.0) * sd / n.sqrt() <= half_width
        })
        .map_or(SeedsNeeded::MoreThan(MAX_SEEDS), SeedsNeeded::Exactly)
}

/// Every seed of one configuration `(group, config_id)`, with what the tables need about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigStats {
    pub group: String,
    pub config_id: String,
    /// The rows of this configuration, in input order (failed and collapsed ones included).
    pub rows: Vec<SummaryRow>,
    /// Paired comparison of TAR@FAR=1e-3 with its Full FC reference ([`config_stats`]; this −
    /// FC), its p-value Holm-corrected within the group; `None` for a reference itself, when no
    /// Full FC ran on the same data, or when no seed is shared.
    pub vs_fc: Option<Paired>,
    /// The Full FC configuration this one is compared with ([`config_stats`]); `None` when it is
    /// a reference itself or no Full FC ran on its data.
    pub reference: Option<ConfigKey>,
    /// Whether this is a Full FC reference of its own group: the Full FC its group's other
    /// configurations on the same data are compared with (in `main`: the reference of the whole
    /// matrix).
    pub is_fc_reference: bool,
}

/// One configuration of one group, as a comparison names its reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigKey {
    pub group: String,
    pub config_id: String,
}

impl ConfigStats {
    /// The group and configuration of these runs.
    pub fn key(&self) -> ConfigKey {
        ConfigKey {
            group: self.group.clone(),
            config_id: self.config_id.clone(),
        }
    }

    /// The first row: the values that do not vary with the seed (method, label, axis values).
    pub fn first(&self) -> &SummaryRow {
        &self.rows[0]
    }

    /// Number of runs (seeds), failed and collapsed ones included.
    pub fn runs(&self) -> usize {
        self.rows.len()
    }

    /// Number of successful runs (neither failed nor collapsed).
    pub fn ok(&self) -> usize {
        self.rows.iter().filter(|r| row_ok(r)).count()
    }

    /// Number of runs that trained but collapsed (see [`crate::ablation::references`]).
    pub fn collapsed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.status == RowStatus::Collapsed)
            .count()
    }

    /// The values of `metric` over the successful seeds, in input order.
    pub fn values(&self, metric: Metric) -> Vec<f64> {
        self.rows.iter().filter_map(|r| metric.of(r)).collect()
    }

    /// Mean, std and CI of `metric` over the successful seeds.
    pub fn summary(&self, metric: Metric) -> Option<Summary> {
        summarize(&self.values(metric))
    }

    /// The paired comparison of `metric` with `other` (this − other) over their shared seeds.
    pub fn paired_with(&self, other: &ConfigStats, metric: Metric) -> Option<Paired> {
        paired_comparison(&seeded(self, metric), &seeded(other, metric))
    }

    /// Head-state bytes: a property of the configuration, not of the seed; the largest recorded
    /// value in case seeds disagree.
    pub fn head_state_bytes(&self) -> Option<u64> {
        self.rows.iter().filter_map(|r| r.head_state_bytes).max()
    }

    /// `(run_id, status)` of every failed run (collapsed runs are not failures).
    pub fn failures(&self) -> Vec<(&str, String)> {
        self.rows
            .iter()
            .filter(|r| matches!(r.status, RowStatus::Failed(_)))
            .map(|r| (r.run_id.as_str(), r.status.to_string()))
            .collect()
    }

    /// Seeds of the collapsed runs, ascending.
    pub fn collapsed_seeds(&self) -> Vec<u64> {
        let mut s: Vec<u64> = self
            .rows
            .iter()
            .filter(|r| r.status == RowStatus::Collapsed)
            .map(|r| r.seed)
            .collect();
        s.sort_unstable();
        s
    }
}

/// The index in `configs` of the Full FC configuration `configs[i]` is compared with (see
/// [`config_stats`]); a Full FC configuration that finds itself is a reference.
fn reference_index(configs: &[ConfigStats], i: usize) -> Option<usize> {
    let c = configs[i].first();
    let fc_where = |group: Option<&str>, same_recipe: bool| {
        configs.iter().position(|f| {
            let r = f.first();
            group.is_none_or(|g| f.group == g)
                && r.method == Method::Fc
                && same_id(r.data_id.as_deref(), c.data_id.as_deref())
                && (!same_recipe || same_id(r.recipe_id.as_deref(), c.recipe_id.as_deref()))
        })
    };
    let own = Some(configs[i].group.as_str());
    match fc_where(own, false) {
        Some(first) => fc_where(own, true).or(Some(first)),
        None => fc_where(None, true).or_else(|| fc_where(Some("main"), false)),
    }
}

/// Groups the rows into configurations, in first-seen order, and compares each on TAR@FAR=1e-3,
/// paired by seed, with its Full FC reference, always one trained and scored on the same data
/// (otherwise the seeds do not pair):
/// - in a group that trains Full FC on that data, the group's own: the first with the same
///   network and optimiser settings ([`crate::results::record::recipe_id`]), else the first (so
///   that `main`, each method at its own tuned settings, compares with its own Full FC, and a
///   group that changes the data or the loaders for every method compares like with like);
/// - in a group that does not, the first Full FC of the matrix with the same recipe (an ablation
///   of F²C at the common defaults against Full FC at those defaults), else that of `main`.
///
/// A configuration whose data no Full FC saw is not compared. Holm's correction runs over the
/// comparisons of each group (one table, one family).
pub fn config_stats(rows: &[SummaryRow]) -> Vec<ConfigStats> {
    let mut out: Vec<ConfigStats> = Vec::new();
    for r in rows {
        match out
            .iter_mut()
            .find(|c| c.group == r.group && c.config_id == r.config_id)
        {
            Some(c) => c.rows.push(r.clone()),
            None => out.push(ConfigStats {
                group: r.group.clone(),
                config_id: r.config_id.clone(),
                rows: vec![r.clone()],
                vs_fc: None,
                reference: None,
                is_fc_reference: false,
            }),
        }
    }
    let references: Vec<Option<usize>> = (0..out.len()).map(|i| reference_index(&out, i)).collect();
    for (i, r) in references.into_iter().enumerate() {
        match r {
            Some(j) if j == i => out[i].is_fc_reference = true,
            Some(j) => {
                out[i].vs_fc = out[i].paired_with(&out[j], Metric::TarFar1e3);
                out[i].reference = Some(out[j].key());
            }
            None => {}
        }
    }
    for g in groups(rows) {
        let idx: Vec<usize> = (0..out.len()).filter(|&i| out[i].group == g).collect();
        let ps: Vec<Option<f64>> = idx
            .iter()
            .map(|&i| out[i].vs_fc.as_ref().and_then(|v| v.p))
            .collect();
        for (&i, adj) in idx.iter().zip(holm(&ps)) {
            if let Some(v) = out[i].vs_fc.as_mut() {
                v.p_holm = adj;
            }
        }
    }
    out
}

/// The group names in first-seen order.
pub fn groups(rows: &[SummaryRow]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if !out.contains(&r.group) {
            out.push(r.group.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r6(x: f64) -> f64 {
        (x * 1e6).round() / 1e6
    }

    #[test]
    fn mean_std_ci_of_three_values() {
        // xs = 1, 2, 4: mean 7/3; deviations −4/3, −1/3, 5/3; squares sum 42/9 = 14/3;
        // variance 7/3, s = √(7/3) = 1.527525; t_{0.975,2} = 4.302653 (t table);
        // half-width = 4.302653 · 1.527525 / √3 = 3.794583.
        let s = summarize(&[1.0, 2.0, 4.0]).unwrap();
        assert_eq!(s.n, 3);
        assert_eq!(r6(s.mean), 2.333333);
        assert_eq!(r6(s.std.unwrap()), 1.527525);
        assert_eq!(r6(s.ci95.unwrap()), 3.794583);
    }

    #[test]
    fn one_value_has_no_spread_and_no_interval() {
        let s = summarize(&[0.93]).unwrap();
        assert_eq!((s.n, s.mean, s.std, s.ci95), (1, 0.93, None, None));
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn t_quantiles_match_the_table() {
        // Published two-sided 95% critical values: df 1 → 12.706205, 2 → 4.302653, 4 → 2.776445,
        // 30 → 2.042272.
        assert_eq!(r6(t_quantile(0.975, 1.0)), 12.706205);
        assert_eq!(r6(t_quantile(0.975, 2.0)), 4.302653);
        assert_eq!(r6(t_quantile(0.975, 4.0)), 2.776445);
        assert_eq!(r6(t_quantile(0.975, 30.0)), 2.042272);
    }

    #[test]
    fn paired_t_matches_students_sleep_data() {
        // Student's sleep data (Cushny & Peebles; R's `sleep`): extra hours of sleep of 10
        // patients under two drugs. R: t.test(extra ~ group, data = sleep, paired = TRUE) gives
        // t = −4.0621, df = 9, p = 0.002833, 95% CI [−2.4598858, −0.7001142], mean diff −1.58.
        let drug1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
        let drug2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
        let keyed = |xs: &[f64]| -> Vec<(u64, f64)> {
            xs.iter().enumerate().map(|(i, &x)| (i as u64, x)).collect()
        };
        // Seed order differs between the arms: matching is by seed, not by position.
        let mut b = keyed(&drug2);
        b.reverse();
        let p = paired_comparison(&keyed(&drug1), &b).unwrap();
        let (lo, hi) = p.ci95.unwrap();
        assert_eq!(p.n(), 10);
        assert_eq!(
            (r6(p.mean_diff), r6(lo), r6(hi), r6(p.p.unwrap())),
            (-1.58, -2.459886, -0.700114, 0.002833)
        );
        // The sd of the differences, 1.229995 (R: sd(with(sleep, extra[1:10] - extra[11:20]))).
        assert_eq!(r6(p.sd.unwrap()), 1.229995);
    }

    #[test]
    fn pairing_uses_only_shared_seeds() {
        // Seeds 1, 2, 3 against 2, 3, 4: differences at 2 and 3 only: 0.1, 0.3 → mean 0.2.
        let a = [(1, 0.9), (2, 0.8), (3, 0.9)];
        let b = [(2, 0.7), (3, 0.6), (4, 0.1)];
        let p = paired_comparison(&a, &b).unwrap();
        assert_eq!((p.seeds.clone(), r6(p.mean_diff)), (vec![2, 3], 0.2));
        // Two differences 0.1, 0.3: sd √0.02 = 0.141421; t = 0.2/(0.141421/√2) = 2, df 1:
        // p = 1 − (2/π)·atan 2 = 0.295167 (the Cauchy distribution).
        assert_eq!(r6(p.p.unwrap()), 0.295167);
        assert_eq!(paired_comparison(&a, &[(9, 0.5)]), None);
        // One shared seed: a difference, no spread, no test.
        let one = paired_comparison(&a, &[(1, 0.5)]).unwrap();
        assert_eq!(
            (r6(one.mean_diff), one.sd, one.ci95, one.p),
            (0.4, None, None, None)
        );
    }

    #[test]
    fn constant_differences() {
        // Every seed up by 0.1: zero-width interval at 0.1, p = 0; every seed equal: no test.
        let p = paired_comparison(&[(0, 0.9), (1, 0.8)], &[(0, 0.8), (1, 0.7)]).unwrap();
        let (lo, hi) = p.ci95.unwrap();
        assert_eq!((r6(lo), r6(hi), p.p), (0.1, 0.1, Some(0.0)));
        let q = paired_comparison(&[(0, 0.9), (1, 0.8)], &[(0, 0.9), (1, 0.8)]).unwrap();
        assert_eq!(q.p, None);
    }

    #[test]
    fn holm_by_hand() {
        // p = .01 .04 .03 .005, m = 4. Sorted: .005·4 = .02; .01·3 = .03; .03·2 = .06;
        // .04·1 = .04 → max(.06, .04) = .06. In input order: .03 .06 .06 .02.
        let adj = holm(&[Some(0.01), Some(0.04), Some(0.03), Some(0.005)]);
        let r: Vec<f64> = adj.iter().map(|p| r6(p.unwrap())).collect();
        assert_eq!(r, vec![0.03, 0.06, 0.06, 0.02]);
        // Undefined tests are not in the family and stay undefined: m = 2 here; .02·2 = .04, then
        // .6·1 = .6. Capped at 1: .5·2 = 1.0, then max(1.0, .6·1) = 1.0.
        assert_eq!(
            holm(&[Some(0.6), None, Some(0.02)]),
            vec![Some(0.6), None, Some(0.04)]
        );
        assert_eq!(
            holm(&[Some(0.6), None, Some(0.5)]),
            vec![Some(1.0), None, Some(1.0)]
        );
        assert_eq!(holm(&[]), vec![]);
    }

    #[test]
    fn seeds_needed_by_hand() {
        // sd = 0.02 (2 points), half-width 0.015: n = 9: t_{.975,8} = 2.306004 → 2.306004·0.02/3
        // = 0.015373 > 0.015; n = 10: t_{.975,9} = 2.262157 → 2.262157·0.02/√10 = 0.014307 ≤
        // 0.015 → 10.
        assert_eq!(
            seeds_needed(Some(0.02), TARGET_HALF_WIDTH),
            SeedsNeeded::Exactly(10)
        );
        // sd = 0: any two seeds do.
        assert_eq!(
            seeds_needed(Some(0.0), TARGET_HALF_WIDTH),
            SeedsNeeded::Exactly(2)
        );
        // sd = 1 (100 points): √n ≈ 1.96/0.015 → n ≈ 17,000 > 1000.
        assert_eq!(
            seeds_needed(Some(1.0), TARGET_HALF_WIDTH),
            SeedsNeeded::MoreThan(1000)
        );
        assert_eq!(
            seeds_needed(None, TARGET_HALF_WIDTH),
            SeedsNeeded::Undefined
        );
        assert_eq!(
            [
                SeedsNeeded::Exactly(10),
                SeedsNeeded::MoreThan(1000),
                SeedsNeeded::Undefined
            ]
            .map(|s| s.to_string()),
            ["10", ">1000", "n/a"]
        );
    }
}
