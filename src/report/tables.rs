//! Paper tables, in Markdown and LaTeX (booktabs), from a matrix's summary rows: the main
//! comparison (Full FC, Partial FC, F²C) and one table per ablation group.
//!
//! Every cell is a statistic of [`crate::report::stats`] over the successful seeds of one
//! configuration: mean ± 95% CI half-width, in percent for the rates. Failed and collapsed runs
//! are counted in the "Runs" column ("2/3 ok, 1 collapsed") and left out of the means; failures
//! are listed under the table with their reason. The comparison with Full FC is paired by seed,
//! its p-value Holm-corrected within the table, with the seeds a ±1.5-point interval would need. Rows keep the
//! first-seen order of the summary and numbers use fixed decimals, so the same summary always
//! renders to the same bytes.

use std::path::{Path, PathBuf};

use crate::ablation::summary::SummaryRow;
use crate::error::Result;
use crate::heads::Naming;
use crate::report::stats::{
    config_stats, groups, seeds_needed, ConfigStats, Metric, Summary, ALPHA, TARGET_HALF_WIDTH,
};

/// Output format of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// GitHub-flavoured Markdown.
    Markdown,
    /// LaTeX `table` with a booktabs `tabular`.
    Latex,
}

/// The group rendered as the main comparison table.
pub const MAIN_GROUP: &str = "main";

/// The rate columns of every table, with their Markdown and LaTeX headers.
const RATE_COLUMNS: [(Metric, &str, &str); 4] = [
    (Metric::TarFar1e2, "TAR@FAR=1e-2 (%)", r"TAR@$10^{-2}$ (\%)"),
    (Metric::TarFar1e3, "TAR@FAR=1e-3 (%)", r"TAR@$10^{-3}$ (\%)"),
    (Metric::TarFar1e4, "TAR@FAR=1e-4 (%)", r"TAR@$10^{-4}$ (\%)"),
    (Metric::Rank1, "Rank-1 (%)", r"Rank-1 (\%)"),
];

/// The readable name of a run's method and its method parameters, e.g. "Full FC",
/// "Partial FC r=0.1", "F²C pool 10%" ([`crate::heads::Method::run_name`]). The margin is not in
/// the summary, so it is not named.
pub fn method_name(row: &SummaryRow) -> String {
    row.method.run_name(&row.head_columns(), Naming::Table)
}

/// Bytes in binary units with two decimals: 512 → "512 B", 1536 → "1.50 KiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

/// A p-value with three decimals, "<0.001" below that.
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Escapes LaTeX special characters and writes "²" as a superscript.
pub fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str(r"\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str(r"\textasciitilde{}"),
            '^' => out.push_str(r"\textasciicircum{}"),
            '²' => out.push_str("$^2$"),
            '±' => out.push_str(r"$\pm$"),
            '—' => out.push_str("--"),
            _ => out.push(c),
        }
    }
    out
}

/// The cells of one table row, format-independent; `None` in a cell renders as a dash.
struct Cells {
    name: String,
    runs: String,
    head_state: Option<String>,
    step_ms: Option<String>,
    rates: Vec<Option<Summary>>,
    p: PCell,
    /// Seeds for a ±1.5-point paired interval against Full FC; `None` for the reference.
    seeds: Option<String>,
}

/// What the p-value column shows.
enum PCell {
    Reference,
    Value { p: f64 },
    Missing,
}

/// "3/3 ok", "2/3 ok", "1/3 ok, 2 collapsed".
pub fn runs_text(c: &ConfigStats) -> String {
    match c.collapsed() {
        0 => format!("{}/{} ok", c.ok(), c.runs()),
        k => format!("{}/{} ok, {k} collapsed", c.ok(), c.runs()),
    }
}

fn cells(c: &ConfigStats, name: String) -> Cells {
    Cells {
        name,
        runs: runs_text(c),
        head_state: c.head_state_bytes().map(human_bytes),
        step_ms: c
            .summary(Metric::MedianStepMs)
            .map(|s| format!("{:.2}", s.mean)),
        rates: RATE_COLUMNS.iter().map(|(m, _, _)| c.summary(*m)).collect(),
        p: if c.is_fc_reference {
            PCell::Reference
        } else {
            match c.vs_fc.as_ref().and_then(|v| v.p_holm) {
                Some(p) => PCell::Value { p },
                None => PCell::Missing,
            }
        },
        seeds: (!c.is_fc_reference).then(|| {
            seeds_needed(c.vs_fc.as_ref().and_then(|v| v.sd), TARGET_HALF_WIDTH).to_string()
        }),
    }
}

/// A rate summary in percent: "97.53 ± 0.41", "97.53 (n=1)" or `None` when no seed succeeded.
fn rate_text(s: &Option<Summary>, format: Format) -> Option<String> {
    let s = s.as_ref()?;
    let mean = s.mean * 100.0;
    Some(match (s.ci95, format) {
        (Some(ci), Format::Markdown) => format!("{mean:.2} ± {:.2}", ci * 100.0),
        (Some(ci), Format::Latex) => format!(r"${mean:.2} \pm {:.2}$", ci * 100.0),
        (None, _) => format!("{mean:.2} (n={})", s.n),
    })
}

fn p_text(p: &PCell, format: Format) -> Option<String> {
    match *p {
        PCell::Reference => Some("ref".into()),
        PCell::Missing => None,
        PCell::Value { p } => {
            let mark = match (p < ALPHA, format) {
                (false, _) => "",
                (true, Format::Markdown) => "†",
                (true, Format::Latex) => r"$^\dagger$",
            };
            Some(format!("{}{mark}", format_p(p)))
        }
    }
}

/// The configurations of one group, with their row names.
fn named_configs<'a>(stats: &'a [ConfigStats], group: &str) -> Vec<(&'a ConfigStats, String)> {
    let configs: Vec<&ConfigStats> = stats.iter().filter(|c| c.group == group).collect();
    if group != MAIN_GROUP {
        return configs
            .into_iter()
            .map(|c| (c, c.first().label.clone()))
            .collect();
    }
    let names: Vec<String> = configs.iter().map(|c| method_name(c.first())).collect();
    // Two main configurations with the same method name are told apart by their label.
    configs
        .iter()
        .zip(&names)
        .map(|(c, n)| {
            let dup = names.iter().filter(|m| *m == n).count() > 1;
            let name = if dup {
                format!("{n} ({})", c.first().label)
            } else {
                n.clone()
            };
            (*c, name)
        })
        .collect()
}

fn caption(group: &str) -> String {
    if group == MAIN_GROUP {
        "Main comparison: Full FC, Partial FC and F²C".into()
    } else {
        format!("Ablation `{group}`")
    }
}

/// What one table shows: the group of its rows, its caption and LaTeX label, how its notes name the
/// Full FC reference, and notes of its own. A matrix group's table is [`TableSpec::group`]; a study
/// read apart from the default matrix (the scale study) sets its own.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    /// The group of the rows shown; `main` names rows by method, other groups by their label.
    pub group: String,
    /// Markdown heading and LaTeX caption (backticks dropped in LaTeX).
    pub caption: String,
    /// LaTeX label, `tab:<label>`.
    pub label: String,
    /// The reference in Markdown, as "against … (ref)" reads it: "Full FC of the `main` group".
    pub reference: String,
    /// The sentence, without "p: ", when there is no reference: "no Full FC run in the `main` group".
    pub no_reference: String,
    /// Notes after the standard ones, in Markdown (escaped for LaTeX).
    pub extra_notes: Vec<String>,
}

impl TableSpec {
    /// The table of a matrix group, compared with Full FC of the `main` group.
    pub fn group(group: &str) -> Self {
        TableSpec {
            group: group.to_string(),
            caption: caption(group),
            label: file_stem(group),
            reference: format!("Full FC of the `{MAIN_GROUP}` group"),
            no_reference: format!("no Full FC run in the `{MAIN_GROUP}` group"),
            extra_notes: Vec::new(),
        }
    }
}

/// The notes printed under every table: what the numbers are, and every failed run.
fn notes(
    configs: &[(&ConfigStats, String)],
    has_fc: bool,
    spec: &TableSpec,
    format: Format,
) -> Vec<String> {
    let md = format == Format::Markdown;
    let tex_text = |s: &str| latex_escape(&s.replace('`', ""));
    let mut out = vec![if md {
        "Rates: mean over the successful seeds ± half-width of the 95% Student-t confidence interval \
         (t_{0.975,n-1}·s/√n); \"n=1\": a single successful seed, no interval."
    } else {
        concat!(
            r"Rates: mean over the successful seeds $\pm$ half-width of the 95\% Student-$t$ ",
            r"confidence interval ($t_{0.975,n-1}\,s/\sqrt{n}$); ``n=1'': a single successful seed, ",
            "no interval."
        )
    }
    .to_string()];
    let step = "Step: mean over seeds of each run's median step time. Head state: bytes of head \
                state (FC/PFC centres and momentum; F²C pool and gallery net).";
    out.push(if md {
        step.to_string()
    } else {
        latex_escape(step)
    });
    out.push(match (has_fc, md) {
        (true, true) => format!(
            "p: paired two-sided t-test of TAR@FAR=1e-3 against {} (ref), over \
             the seeds both have (a seed fixes the data and the held-out set), Holm-corrected over the \
             rows of this table; † p < {ALPHA}; — : not computable (fewer than two shared successful \
             seeds, or every paired difference 0). Seeds ±1.5: paired seeds a 95% interval of \
             half-width 1.5 points would need, from the sample SD of the paired differences \
             (n/a: fewer than two shared seeds).",
            spec.reference
        ),
        (true, false) => format!(
            concat!(
                r"$p$: paired two-sided $t$-test of TAR@FAR=$10^{{-3}}$ against {} ",
                r"(ref), over the seeds both have, Holm-corrected over the rows of this table; ",
                r"$^\dagger$ $p < {}$; --: not computable (fewer than two shared successful seeds, or ",
                r"every paired difference 0). Seeds $\pm$1.5: paired seeds a 95\% interval of ",
                r"half-width 1.5 points would need (n/a: fewer than two shared seeds)."
            ),
            tex_text(&spec.reference),
            ALPHA
        ),
        (false, true) => format!("p: {}, so no test against it.", spec.no_reference),
        (false, false) => format!("$p$: {}, so no test against it.", tex_text(&spec.no_reference)),
    });
    let collapsed = configs.iter().map(|(c, _)| c.collapsed()).sum::<usize>();
    if collapsed > 0 {
        let text = format!(
            "Collapsed: {collapsed} run(s) at or below the untrained network's TAR@FAR=1e-3 on their \
             seed; counted under Runs, left out of every mean and test."
        );
        out.push(if md { text } else { latex_escape(&text) });
    }
    for (c, name) in configs {
        for (run_id, status) in c.failures() {
            out.push(if md {
                format!("Failed run of {name}: `{run_id}`: {status}")
            } else {
                latex_escape(&format!("Failed run of {name}: {run_id}: {status}"))
            });
        }
    }
    out.extend(
        spec.extra_notes
            .iter()
            .map(|n| if md { n.clone() } else { tex_text(n) }),
    );
    out
}

/// Whether some row of the table `spec` shows has a Full FC reference, in its group or in `main`.
fn has_fc(stats: &[ConfigStats], spec: &TableSpec) -> bool {
    stats
        .iter()
        .filter(|c| c.group == spec.group)
        .any(|c| c.is_fc_reference || c.reference.is_some())
}

/// Renders one group's table from precomputed configuration statistics.
pub fn render_group(stats: &[ConfigStats], group: &str, format: Format) -> String {
    render_table(stats, &group_spec(stats, group), format)
}

/// [`TableSpec::group`], its reference named by what the group's rows are compared with
/// ([`crate::report::stats::config_stats`]): Full FC of the `main` group, or the group's own Full FC
/// on the same data, or both; and a note naming the rows with no Full FC on their data.
fn group_spec(stats: &[ConfigStats], group: &str) -> TableSpec {
    let mut spec = TableSpec::group(group);
    if group == MAIN_GROUP {
        return spec;
    }
    let configs: Vec<&ConfigStats> = stats.iter().filter(|c| c.group == group).collect();
    let own = configs.iter().filter(|c| c.is_fc_reference).count();
    // What the compared rows are compared with, each kind named once, in order.
    let mut against: Vec<String> = Vec::new();
    for c in &configs {
        let Some(key) = &c.reference else { continue };
        let text = if key.group == group {
            let each = if own > 1 {
                ", one for each data set the group trains on"
            } else {
                ""
            };
            format!("the Full FC of this group trained on the same data{each}")
        } else {
            let fc = stats
                .iter()
                .find(|f| f.key() == *key)
                .expect("a reference is one of the configurations");
            // Said only where both ids were recorded (older summaries have neither).
            let known = |id: fn(&SummaryRow) -> &Option<String>| matches!((id(fc.first()), id(c.first())), (Some(a), Some(b)) if a == b);
            let how = if known(|r| &r.recipe_id) {
                ", trained on the same data with the same network and optimiser settings"
            } else if known(|r| &r.data_id) {
                ", trained on the same data"
            } else {
                ""
            };
            format!("Full FC of the `{}` group{how}", key.group)
        };
        if !against.contains(&text) {
            against.push(text);
        }
    }
    if !against.is_empty() {
        spec.reference = against.join("; for other rows, ");
    }
    let unpaired: Vec<&str> = configs
        .iter()
        .filter(|c| !c.is_fc_reference && c.reference.is_none())
        .map(|c| c.first().label.as_str())
        .collect();
    if !has_fc(stats, &spec) {
        if stats
            .iter()
            .any(|c| c.group == MAIN_GROUP && c.is_fc_reference)
        {
            spec.no_reference = format!(
                "no Full FC was trained on this group's data, in this group or in the \
                 `{MAIN_GROUP}` group"
            );
        }
    } else if !unpaired.is_empty() {
        spec.extra_notes.push(format!(
            "No test for {}: no Full FC was trained on the same data, so its seeds pair with none.",
            unpaired.join("; ")
        ));
    }
    spec
}

/// Renders the table `spec` describes from precomputed configuration statistics: the rows of its
/// group, in the order of `stats`.
pub fn render_table(stats: &[ConfigStats], spec: &TableSpec, format: Format) -> String {
    let configs = named_configs(stats, &spec.group);
    let rows: Vec<Cells> = configs.iter().map(|(c, n)| cells(c, n.clone())).collect();
    let notes = notes(&configs, has_fc(stats, spec), spec, format);
    let key = if spec.group == MAIN_GROUP {
        "Method"
    } else {
        "Setting"
    };
    match format {
        Format::Markdown => render_markdown(spec, key, &rows, &notes),
        Format::Latex => render_latex(spec, key, &rows, &notes),
    }
}

fn render_markdown(spec: &TableSpec, key: &str, rows: &[Cells], notes: &[String]) -> String {
    let dash = || "—".to_string();
    let mut header = vec![
        key.to_string(),
        "Runs".into(),
        "Head state".into(),
        "Step (ms)".into(),
    ];
    header.extend(RATE_COLUMNS.iter().map(|(_, md, _)| md.to_string()));
    header.push("p vs FC (Holm)".into());
    header.push("Seeds ±1.5".into());
    let mut s = format!("### {}\n\n", spec.caption);
    s.push_str(&format!("| {} |\n", header.join(" | ")));
    let align: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 { ":--" } else { "--:" })
        .collect();
    s.push_str(&format!("|{}|\n", align.join("|")));
    for r in rows {
        let mut line = vec![r.name.clone(), r.runs.clone()];
        line.push(r.head_state.clone().unwrap_or_else(dash));
        line.push(r.step_ms.clone().unwrap_or_else(dash));
        line.extend(
            r.rates
                .iter()
                .map(|x| rate_text(x, Format::Markdown).unwrap_or_else(dash)),
        );
        line.push(p_text(&r.p, Format::Markdown).unwrap_or_else(dash));
        line.push(r.seeds.clone().unwrap_or_else(dash));
        s.push_str(&format!("| {} |\n", line.join(" | ")));
    }
    s.push('\n');
    for n in notes {
        s.push_str(&format!("- {n}\n"));
    }
    s
}

fn render_latex(spec: &TableSpec, key: &str, rows: &[Cells], notes: &[String]) -> String {
    let dash = || "--".to_string();
    let mut header = vec![
        key.to_string(),
        "Runs".into(),
        "Head state".into(),
        "Step (ms)".into(),
    ];
    header.extend(RATE_COLUMNS.iter().map(|(_, _, tex)| tex.to_string()));
    header.push("$p$ vs FC (Holm)".into());
    header.push(r"Seeds $\pm$1.5".into());
    let mut s = String::from("% Generated by `f2c` from the matrix summary; do not edit.\n");
    s.push_str("\\begin{table}[t]\n\\centering\n\\small\n");
    s.push_str(&format!(
        "\\caption{{{}}}\n",
        latex_escape(&spec.caption.replace('`', ""))
    ));
    s.push_str(&format!("\\label{{tab:{}}}\n", spec.label));
    s.push_str(&format!(
        "\\begin{{tabular}}{{l{}}}\n",
        "r".repeat(header.len() - 1)
    ));
    s.push_str("\\toprule\n");
    s.push_str(&format!("{} \\\\\n", header.join(" & ")));
    s.push_str("\\midrule\n");
    for r in rows {
        let mut line = vec![latex_escape(&r.name), latex_escape(&r.runs)];
        line.push(r.head_state.clone().unwrap_or_else(dash));
        line.push(r.step_ms.clone().unwrap_or_else(dash));
        line.extend(
            r.rates
                .iter()
                .map(|x| rate_text(x, Format::Latex).unwrap_or_else(dash)),
        );
        line.push(p_text(&r.p, Format::Latex).unwrap_or_else(dash));
        line.push(r.seeds.clone().unwrap_or_else(dash));
        s.push_str(&format!("{} \\\\\n", line.join(" & ")));
    }
    s.push_str("\\bottomrule\n\\end{tabular}\n\n\\footnotesize\n");
    for n in notes {
        s.push_str(&format!("{n}\\par\n"));
    }
    s.push_str("\\end{table}\n");
    s
}

/// A group name made safe as a file stem and a LaTeX label: anything but `[A-Za-z0-9_-]` becomes `_`.
pub fn file_stem(group: &str) -> String {
    group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `(group, markdown, latex)` for every group, in first-seen order.
pub fn render_tables(rows: &[SummaryRow]) -> Vec<(String, String, String)> {
    let stats = config_stats(rows);
    groups(rows)
        .into_iter()
        .map(|g| {
            let md = render_group(&stats, &g, Format::Markdown);
            let tex = render_group(&stats, &g, Format::Latex);
            (g, md, tex)
        })
        .collect()
}

/// Writes `<out_dir>/<group>.md` and `<out_dir>/<group>.tex` for every group of the summary, in
/// first-seen order, and returns the paths written. `out_dir` is the tables folder
/// (`paper/tables`); it is created if missing.
pub fn write_tables(rows: &[SummaryRow], out_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (group, md, tex) in render_tables(rows) {
        for (ext, text) in [("md", md), ("tex", tex)] {
            let path = out_dir.join(format!("{}.{ext}", file_stem(&group)));
            crate::results::record::write_atomic(&path, text.as_bytes())?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_bytes_and_p_values() {
        assert_eq!(human_bytes(512), "512 B");
        // 1536 B = 1.5 KiB; 3·2^20 + 2^19 B = 3.5 MiB.
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(3 * (1 << 20) + (1 << 19)), "3.50 MiB");
        assert_eq!(format_p(0.0004), "<0.001");
        assert_eq!(format_p(0.0123), "0.012");
    }

    #[test]
    fn latex_escaping() {
        assert_eq!(latex_escape("F²C pool 10%"), r"F$^2$C pool 10\%");
        assert_eq!(
            latex_escape("ids_per_step & more"),
            r"ids\_per\_step \& more"
        );
    }
}
