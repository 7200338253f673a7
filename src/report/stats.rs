//! Statistics over seeds: per-configuration mean, sample standard deviation and Student-t 95%
//! confidence half-width, and Welch's unequal-variance t-test of each configuration against the
//! full-FC configuration on TAR@FAR=1e-3.
//!
//! Conventions, chosen once here so every table, figure and verdict agrees:
//! - a configuration is a `(group, config_id)` pair; its seeds are its runs;
//! - only runs with status `ok` and a value for the metric enter a statistic; failed runs are
//!   counted (see [`ConfigStats::runs`] / [`ConfigStats::ok`]), never dropped silently;
//! - with n = 1 the standard deviation and the confidence interval are undefined (`None`), shown
//!   as "n=1" by the tables, never replaced by an invented value;
//! - Welch's test needs n ≥ 2 in both samples. When both samples have zero variance the statistic
//!   is 0/0 or ±x/0: equal means give no test (`None`: p undefined, nothing can be said); different
//!   means are reported as [`Welch::Separated`] with p = 0, the limit of the test as both variances
//!   shrink to 0 (the samples do not overlap at all). scipy returns NaN in both cases; we keep the
//!   second one because a table that prints "—" for two perfectly separated constant samples would
//!   hide a real difference.

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::ablation::summary::SummaryRow;

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

/// Whether a summary row is a successful run.
pub fn row_ok(row: &SummaryRow) -> bool {
    row.status == "ok"
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
    // df > 0 is guaranteed by every caller (n ≥ 2 or a Welch df of two non-degenerate samples).
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

/// Result of Welch's t-test of sample `a` against sample `b` (difference mean(a) − mean(b)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Welch {
    /// The ordinary test: t = (ā − b̄)/√(s²_a/n_a + s²_b/n_b), Welch–Satterthwaite df, two-sided p.
    Test { t: f64, df: f64, p: f64 },
    /// Both samples have zero variance and their means differ: the samples are perfectly separated;
    /// reported with p = 0 (the limit of the test), without t or df.
    Separated,
}

impl Welch {
    /// The two-sided p-value (0 for [`Welch::Separated`]).
    pub fn p(&self) -> f64 {
        match *self {
            Welch::Test { p, .. } => p,
            Welch::Separated => 0.0,
        }
    }
}

/// The parts Welch's test and its difference interval share: difference of means, its standard
/// error and the Welch–Satterthwaite df (`None` for df when both variances are zero).
fn welch_parts(a: &[f64], b: &[f64]) -> Option<(f64, f64, Option<f64>)> {
    let (va, vb) = (sample_variance(a)?, sample_variance(b)?);
    let (qa, qb) = (va / a.len() as f64, vb / b.len() as f64);
    let diff = mean(a) - mean(b);
    let se2 = qa + qb;
    if se2 == 0.0 {
        return Some((diff, 0.0, None));
    }
    let df = se2 * se2 / (qa * qa / (a.len() - 1) as f64 + qb * qb / (b.len() - 1) as f64);
    Some((diff, se2.sqrt(), Some(df)))
}

/// Welch's two-sample t-test, two-sided. `None` when either sample has fewer than two values, or
/// when both have zero variance and equal means (p undefined; see the module doc).
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<Welch> {
    let (diff, se, df) = welch_parts(a, b)?;
    match df {
        Some(df) => {
            let t = diff / se;
            Some(Welch::Test {
                t,
                df,
                p: t_two_sided_p(t, df),
            })
        }
        None if diff != 0.0 => Some(Welch::Separated),
        None => None,
    }
}

/// 95% confidence interval `(low, high)` of mean(a) − mean(b) with Welch's standard error and df.
/// `None` when either sample has fewer than two values. Two zero-variance samples give the exact
/// difference as a zero-width interval.
pub fn welch_diff_ci95(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let (diff, se, df) = welch_parts(a, b)?;
    let half = match df {
        Some(df) => t_quantile(0.5 + CONFIDENCE / 2.0, df) * se,
        None => 0.0,
    };
    Some((diff - half, diff + half))
}

/// Every seed of one configuration `(group, config_id)`, with what the tables need about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigStats {
    pub group: String,
    pub config_id: String,
    /// The rows of this configuration, in input order (failed ones included).
    pub rows: Vec<SummaryRow>,
    /// Welch's test of TAR@FAR=1e-3 against the full-FC configuration; `None` for the FC
    /// configuration itself, when there is no FC configuration, or when the test is undefined.
    pub p_vs_fc: Option<Welch>,
    /// Whether this is the reference full-FC configuration.
    pub is_fc_reference: bool,
}

impl ConfigStats {
    /// The first row: the values that do not vary with the seed (method, label, axis values).
    pub fn first(&self) -> &SummaryRow {
        &self.rows[0]
    }

    /// Number of runs (seeds), failed ones included.
    pub fn runs(&self) -> usize {
        self.rows.len()
    }

    /// Number of successful runs.
    pub fn ok(&self) -> usize {
        self.rows.iter().filter(|r| row_ok(r)).count()
    }

    /// The values of `metric` over the successful seeds, in input order.
    pub fn values(&self, metric: Metric) -> Vec<f64> {
        self.rows.iter().filter_map(|r| metric.of(r)).collect()
    }

    /// Mean, std and CI of `metric` over the successful seeds.
    pub fn summary(&self, metric: Metric) -> Option<Summary> {
        summarize(&self.values(metric))
    }

    /// Head-state bytes: a property of the configuration, not of the seed; the largest recorded
    /// value in case seeds disagree.
    pub fn head_state_bytes(&self) -> Option<u64> {
        self.rows.iter().filter_map(|r| r.head_state_bytes).max()
    }

    /// `(run_id, status)` of every failed run.
    pub fn failures(&self) -> Vec<(&str, &str)> {
        self.rows
            .iter()
            .filter(|r| !row_ok(r))
            .map(|r| (r.run_id.as_str(), r.status.as_str()))
            .collect()
    }
}

/// The reference configuration: the first `fc` configuration of the `main` group.
pub fn fc_reference_id(rows: &[SummaryRow]) -> Option<&str> {
    rows.iter()
        .find(|r| r.group == "main" && r.method == "fc")
        .map(|r| r.config_id.as_str())
}

/// Groups the rows into configurations, in first-seen order, and tests each against the full-FC
/// configuration of the `main` group on TAR@FAR=1e-3.
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
                p_vs_fc: None,
                is_fc_reference: false,
            }),
        }
    }
    let fc_values = fc_reference_id(rows).and_then(|id| {
        out.iter()
            .find(|c| c.group == "main" && c.config_id == id)
            .map(|c| c.values(Metric::TarFar1e3))
    });
    if let Some(fc) = fc_values {
        let fc_id = fc_reference_id(rows).unwrap_or_default().to_string();
        for c in &mut out {
            c.is_fc_reference = c.group == "main" && c.config_id == fc_id;
            if !c.is_fc_reference {
                c.p_vs_fc = welch_t_test(&c.values(Metric::TarFar1e3), &fc);
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
    fn welch_with_two_degrees_of_freedom_matches_closed_form() {
        // a = 1, 3; b = 4, 6: means 2, 5; variances 2, 2; SE = √(2/2 + 2/2) = √2; t = −3/√2.
        // df = (1 + 1)² / (1²/1 + 1²/1) = 2. For df = 2 the t CDF is closed-form:
        // p = 1 − |t|/√(2 + t²) = 1 − √(4.5/6.5) = 1 − 3/√13 = 0.167950.
        let Some(Welch::Test { t, df, p }) = welch_t_test(&[1.0, 3.0], &[4.0, 6.0]) else {
            panic!("expected a test")
        };
        assert_eq!((r6(t), r6(df), r6(p)), (-2.12132, 2.0, 0.16795));
    }

    #[test]
    fn welch_with_fractional_df() {
        // a = .95 .96 .97, b = .90 .93 .91 .92: means .96, .915; variances 1e-4, 1.6667e-4;
        // s²/n: 3.3333e-5, 4.1667e-5; SE = √7.5e-5; t = .045/.0086603 = 5.196152;
        // df = (7.5e-5)² / ((3.3333e-5)²/2 + (4.1667e-5)²/3) = 4.959184;
        // p = 2·∫_t^∞ pdf_t(x; df) dx = 0.003562 (Simpson quadrature of the t density, Python
        // stdlib, as in scipy.stats.ttest_ind(a, b, equal_var=False)).
        let Some(Welch::Test { t, df, p }) =
            welch_t_test(&[0.95, 0.96, 0.97], &[0.90, 0.93, 0.91, 0.92])
        else {
            panic!("expected a test")
        };
        assert_eq!((r6(t), r6(df), r6(p)), (5.196152, 4.959184, 0.003562));
    }

    #[test]
    fn welch_matches_the_textbook_example() {
        // Welch's test example 1 of the Wikipedia article (two samples of 15):
        // t = −2.46, df = 25.0, p = 0.021 (quadrature above: −2.455356, 24.988529, 0.021378).
        let a = [
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
            21.4,
        ];
        let b = [
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
            24.4,
        ];
        let Some(Welch::Test { t, df, p }) = welch_t_test(&a, &b) else {
            panic!("expected a test")
        };
        assert_eq!((r6(t), r6(df), r6(p)), (-2.455356, 24.988529, 0.021378));
    }

    #[test]
    fn welch_zero_variance_cases() {
        // Both constant, equal means: 0/0, no test.
        assert_eq!(welch_t_test(&[0.9, 0.9], &[0.9, 0.9, 0.9]), None);
        // Both constant, different means: separated, p = 0, exact difference as the interval.
        let w = welch_t_test(&[0.9, 0.9], &[0.8, 0.8]).unwrap();
        assert_eq!((w, w.p()), (Welch::Separated, 0.0));
        let (lo, hi) = welch_diff_ci95(&[0.9, 0.9], &[0.8, 0.8]).unwrap();
        assert_eq!((r6(lo), r6(hi)), (0.1, 0.1));
        // One constant: df = n_other − 1 = 1; a = 2, 4 vs b = 1, 1: SE = √(2/2) = 1, t = 2,
        // p = 1 − (2/π)·atan 2 = 0.295167 (df 1 is the Cauchy distribution).
        let Some(Welch::Test { t, df, p }) = welch_t_test(&[2.0, 4.0], &[1.0, 1.0]) else {
            panic!("expected a test")
        };
        assert_eq!((r6(t), r6(df), r6(p)), (2.0, 1.0, 0.295167));
        // n = 1 on either side: no variance, no test.
        assert_eq!(welch_t_test(&[0.9], &[0.8, 0.7]), None);
    }

    #[test]
    fn welch_difference_interval() {
        // a = 1, 3; b = 4, 6: diff −3, SE √2, df 2: half-width 4.302653·1.414214 = 6.084870.
        let (lo, hi) = welch_diff_ci95(&[1.0, 3.0], &[4.0, 6.0]).unwrap();
        assert_eq!((r6(lo), r6(hi)), (-9.08487, 3.08487));
    }
}
