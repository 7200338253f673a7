//! The tuning matrix in the report: `results/tuning/` (`ablations/tuning.ron`: learning rate ×
//! weight decay, the same grid and seeds for every method, scored on validation identities of the
//! training population). For each method, the grid's mean validation TAR@FAR=1e-3 and its best
//! point, next to the values the default matrix trains with — so a reader sees whether every
//! method had the same tuning budget and whether the defaults are its best.

use std::collections::BTreeMap;
use std::path::Path;

use crate::ablation::runner::{record_in, record_path};
use crate::ablation::summary::{read_csv, RowStatus, SummaryRow};
use crate::error::Result;
use crate::heads::{HeadColumns, Method, Naming};
use crate::results::RunRecord;

/// The tuning matrix's name (its results folder under `results/`).
pub const MATRIX: &str = "tuning";

/// One grid point of one method: (learning rate, weight decay) → validation TAR@FAR=1e-3 per seed.
type Grid = BTreeMap<(String, String), Vec<f64>>;

/// A method and its variant where the summary names one: Partial FC's centre update and F²C's
/// pool in parts per million of the identities. Each gets its own grid.
pub type Variant = (Method, Option<String>, Option<u64>);

/// The variant a summary row trains.
pub fn variant(row: &SummaryRow) -> Variant {
    let pool = match row.method {
        Method::F2c => row.pool_fraction.map(|f| (f * 1e6).round() as u64),
        _ => None,
    };
    (row.method, row.centre_update.clone(), pool)
}

/// The grid's name of a variant: the method's label, named as the tables name Partial FC stepping
/// every centre (`Partial FC, all rows`) and F²C's pool (`F²C pool 10%`).
fn variant_label((method, update, pool): &Variant) -> String {
    match (update, pool) {
        (None, None) => method.label().to_string(),
        _ => method.run_name(
            &HeadColumns {
                centre_update: update.clone(),
                pool_fraction: pool.map(|p| p as f64 / 1e6),
                ..HeadColumns::default()
            },
            Naming::Table,
        ),
    }
}

/// Whether `point`, (lr, weight decay) as `f32::to_string` writes them, is `variant`'s best point
/// in `best` (a [`GridSection::best`]): "its method's best point in the check", "not its method's
/// best point in the check (lr 0.1, weight decay 0.0005)" or "its method is not in the check",
/// with `grid` for "the check".
pub fn point_verdict(
    best: &BTreeMap<Variant, (String, String)>,
    variant: &Variant,
    (lr, wd): &(String, String),
    grid: &str,
) -> String {
    match best.get(variant) {
        Some(b) if (&b.0, &b.1) == (lr, wd) => format!("its method's best point in {grid}"),
        Some((blr, bwd)) => {
            format!("not its method's best point in {grid} (lr {blr}, weight decay {bwd})")
        }
        None => format!("its method is not in {grid}"),
    }
}

/// The (lr, weight decay) each variant trains at in `group` of the matrix whose summary rows are
/// `rows` and whose records are under `dir` (`<dir>/runs/`): the first run's of each variant.
/// Runs without a record are skipped.
pub fn trained_points(
    dir: &Path,
    rows: &[SummaryRow],
    group: &str,
) -> Result<BTreeMap<Variant, (String, String)>> {
    let mut points = BTreeMap::new();
    for row in rows.iter().filter(|r| r.group == group) {
        let (v, path) = (variant(row), record_in(dir, &row.run_id));
        if points.contains_key(&v) || !path.exists() {
            continue;
        }
        let t = RunRecord::read(&path)?.experiment.train;
        points.insert(v, (t.lr.to_string(), t.weight_decay.to_string()));
    }
    Ok(points)
}

/// The report's tuning section (empty when the tuning matrix has not run). `defaults` are the
/// learning rate and weight decay of the base that `main_defaults` and the ablation groups train
/// at; `main` the point each variant trains at in the default matrix's `main` group
/// ([`trained_points`]), each checked against the variant's best point on the grid.
pub fn section(
    root: &Path,
    defaults: (f32, f32),
    main: &BTreeMap<Variant, (String, String)>,
) -> Result<String> {
    let intro = format!(
        "\n## Tuning\n\nEvery method gets the same budget: learning rate × weight decay on a 3 × 2 \
         grid, then further learning rates past the edge where its best point was until it is \
         inside, two seeds each, scored on 500 validation identities of the training population — \
         never the test identities (`ablations/tuning.ron`, `results/tuning/`). Mean validation \
         TAR@FAR=1e-3 (%) per point; **bold**: the method's best point; \"the defaults\" are the \
         base's lr {}, weight decay {}, at which `main_defaults` and the ablation groups train.\n\n",
        defaults.0, defaults.1
    );
    let point = (defaults.0.to_string(), defaults.1.to_string());
    let grid = grid_section(root, MATRIX, &intro, &|_| Some(point.clone()))?;
    let mut s = grid.text;
    if !s.is_empty() && !main.is_empty() {
        s.push_str("\nThe point each method trains at in the default matrix's `main` group:\n\n");
        for (v, p) in main {
            let verdict = point_verdict(&grid.best, v, p, "the grid");
            s.push_str(&format!(
                "- {}: lr {}, weight decay {}, {verdict}.\n",
                variant_label(v),
                p.0,
                p.1
            ));
        }
    }
    Ok(s)
}

/// A tuning grid in markdown, and its line per method on its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GridSection {
    /// The intro, the table and the lines; empty when the grid has not run.
    pub text: String,
    /// One sentence per method (and variant): its best point against the point it trains at.
    pub lines: Vec<String>,
    /// Each method's (and variant's) best point, (lr, weight decay) as `f32::to_string` writes
    /// them.
    pub best: BTreeMap<Variant, (String, String)>,
}

/// ", the grid's largest learning rate (a larger one is untested)" when `lr` is the largest (or
/// smallest) learning rate of a grid that has more than one; empty otherwise. A best point at an
/// edge may not be the method's best.
fn edge_note(grid: &Grid, lr: &str) -> String {
    let lrs: Vec<f64> = grid.keys().filter_map(|(l, _)| l.parse().ok()).collect();
    let (Some(lo), Some(hi), Ok(x)) = (
        lrs.iter().copied().reduce(f64::min),
        lrs.iter().copied().reduce(f64::max),
        lr.parse::<f64>(),
    ) else {
        return String::new();
    };
    if lo == hi {
        String::new()
    } else if x == hi {
        ", the grid's largest learning rate (a larger one is untested)".into()
    } else if x == lo {
        ", the grid's smallest learning rate (a smaller one is untested)".into()
    } else {
        String::new()
    }
}

/// A grid of learning rate × weight decay per method from `<root>/results/<matrix>/` in
/// markdown: `intro`, then a table of each point's mean TAR@FAR=1e-3 over seeds (as the runs scored
/// it: on validation identities in the grids of this project), **bold** at the method's best, and
/// one line per method (and variant) comparing the best with `trained(variant)`, the (lr, weight decay) that the
/// comparison the grid serves trains the method at (as `f32::to_string` writes them); those lines
/// also on their own. Empty when the matrix has not run.
pub fn grid_section(
    root: &Path,
    matrix: &str,
    intro: &str,
    trained: &dyn Fn(&Variant) -> Option<(String, String)>,
) -> Result<GridSection> {
    let results = root.join("results");
    let summary = results.join(matrix).join("summary.csv");
    if !summary.exists() {
        return Ok(GridSection::default());
    }
    let mut grids: BTreeMap<Variant, Grid> = BTreeMap::new();
    for row in read_csv(&summary)? {
        let rec = RunRecord::read(&record_path(&results, matrix, &row.run_id))?;
        let t = &rec.experiment.train;
        let point = (t.lr.to_string(), t.weight_decay.to_string());
        let values = grids
            .entry(variant(&row))
            .or_default()
            .entry(point)
            .or_default();
        if row.status == RowStatus::Ok {
            values.extend(row.tar_far_1e3.map(|x| 100.0 * x));
        }
    }
    let mut s = intro.to_string();
    s.push_str(
        "| Method | lr | weight decay | validation TAR@FAR=1e-3 (%) | seeds |\n|:--|--:|--:|--:|--:|\n",
    );
    let mut verdicts = Vec::new();
    let mut bests = BTreeMap::new();
    for (variant, grid) in &grids {
        let label = variant_label(variant);
        let mean = |v: &Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let best = grid
            .iter()
            .filter_map(|(p, v)| mean(v).map(|m| (p, m)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        for (point, values) in grid {
            let cell = mean(values).map_or("—".to_string(), |m| format!("{m:.2}"));
            let cell = if best.is_some_and(|(p, _)| p == point) {
                format!("**{cell}**")
            } else {
                cell
            };
            s.push_str(&format!(
                "| {} | {} | {} | {cell} | {} |\n",
                label,
                point.0,
                point.1,
                values.len()
            ));
        }
        if let Some(((lr, wd), m)) = best {
            bests.insert(variant.clone(), (lr.clone(), wd.clone()));
            let default = trained(variant);
            let at_default = default.as_ref().and_then(|d| grid.get(d)).and_then(mean);
            let verdict = match (at_default, default) {
                (Some(_), Some(default)) if (lr, wd) == (&default.0, &default.1) => {
                    format!("{label}: the defaults are its best point ({m:.2})")
                }
                (Some(d), _) => format!(
                    "{label}: best at lr {lr}, weight decay {wd} ({m:.2}), {:.2} points above the defaults ({d:.2})",
                    m - d
                ),
                (None, _) => format!("{label}: best at lr {lr}, weight decay {wd} ({m:.2})"),
            };
            verdicts.push(format!("{verdict}{}.", edge_note(grid, lr)));
        }
    }
    s.push('\n');
    for v in &verdicts {
        s.push_str(&format!("- {v}\n"));
    }
    Ok(GridSection {
        text: s,
        lines: verdicts,
        best: bests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_best_point_at_the_grids_edge_is_named() {
        let grid: Grid = ["0.05", "0.1", "0.2"]
            .iter()
            .map(|lr| ((lr.to_string(), "0.0005".to_string()), vec![80.0]))
            .collect();
        assert_eq!(edge_note(&grid, "0.1"), "");
        assert!(edge_note(&grid, "0.2").contains("largest"));
        assert!(edge_note(&grid, "0.05").contains("smallest"));
        let one: Grid = [(("0.1".to_string(), "0.0005".to_string()), vec![80.0])].into();
        assert_eq!(
            edge_note(&one, "0.1"),
            "",
            "a grid of one point has no edge"
        );
    }
}
