//! The scale study in the paper: `results/scale/` (`ablations/scale.ron`: the default matrix's
//! `main` comparison at N = 100,000 synthetic identities). Its table `paper/tables/scale.md` (and
//! `.tex`) has the default tables' columns and statistics, one table per N: every configuration
//! paired by seed with Full FC at the same N on TAR@FAR=1e-3, Holm-corrected over the table's rows,
//! collapsed runs (from the study's own `references.csv`) counted and left out. The reproduction
//! report's claims 1 and 2 cite it. Nothing is read or written when the study has not run.
//!
//! The study's groups only schedule its runs (Full FC, the costly one, in a group of its own with
//! fewer seeds); the table puts the runs of one N together whatever their group, since Full FC at
//! that N is the reference of every other row. The one exception is [`TUNED_AT_N_GROUP`]: each
//! method at its best point of the learning-rate check at that N, a second table per N with its
//! own Full FC rows and its own Holm family, whose notes name each row's point against the check.
//! N, the steps and the epochs are read from each run's record, the epochs counting the training
//! instances the generator draws for the run's seed.
//!
//! Beside it, `results/scale-components/` (`ablations/scale-components.ron`) repeats the default
//! matrix's `loaders` and `ema` groups at one N of the study, for each of its F²C pool sizes, around
//! the study's own F²C run with that pool: the report's claims 3 and 4 apply their rules to each
//! pool's runs and show those verdicts beside their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ablation::references::{read_references, ReferenceKind, REFERENCES_CSV};
use crate::ablation::runner::record_path;
use crate::ablation::summary::{RowStatus, SummaryRow};
use crate::data::synthetic::{SyntheticConfig, SyntheticFaces};
use crate::error::{Error, Result};
use crate::heads::{HeadConfig, Margin};
use crate::report::readme::{MatrixTiming, TIMING_JSON};
use crate::report::stats::{config_stats, ConfigStats};
use crate::report::tables::{
    human_bytes, method_name, render_table, Format, TableSpec, MAIN_GROUP,
};
use crate::report::tuning::{grid_section, point_verdict, variant, Variant};
use crate::results::RunRecord;

/// The study's matrix name: its results are `results/scale/`.
pub const MATRIX: &str = "scale";

/// Its table, relative to the project root (and `.tex` beside it).
pub const TABLE_MD: &str = "paper/tables/scale.md";

/// The study's group of each method at its best point of the learning-rate check at the study's
/// N ([`TUNING_MATRIX`]): its runs make tables of their own, one per N, beside those of the
/// methods at their 5,000-identity learning rates.
pub const TUNED_AT_N_GROUP: &str = "scale_tuned_at_n";

/// The runs of one training-set size and length, and one source of learning rates: one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// N, the training identities.
    pub identities: usize,
    /// Optimiser steps of every run.
    pub steps: usize,
    /// Whether the runs are those of [`TUNED_AT_N_GROUP`]; the others train at the learning
    /// rates tuned at 5,000 identities.
    pub tuned_at_n: bool,
    /// One line per configuration: the point it trains at, against its method's best point on
    /// the grid that chose it (the learning-rate check at this N for the runs of
    /// [`TUNED_AT_N_GROUP`], the default matrix's tuning grid for the others; empty where that
    /// grid has not run).
    pub points: Vec<String>,
    /// Fewest and most epochs over the runs (the instance count varies with the seed, the samples
    /// per step with the method's loaders).
    pub epochs: (f64, f64),
    /// The configurations, Full FC (the reference) first, then in the summary's order; every row
    /// in the group [`MAIN_GROUP`], so that the table is one family with its reference.
    pub stats: Vec<ConfigStats>,
}

impl Part {
    /// The Full FC reference of this N, if it ran.
    pub fn reference(&self) -> Option<&ConfigStats> {
        self.stats.iter().find(|c| c.is_fc_reference)
    }

    /// "100,000", or "100,000, lr tuned at this N" for a part of [`TUNED_AT_N_GROUP`].
    pub fn name(&self) -> String {
        match self.tuned_at_n {
            false => thousands(self.identities),
            true => format!("{}, lr tuned at this N", thousands(self.identities)),
        }
    }

    /// "N = 100,000 training identities, 115,000 steps (19.0 epochs)".
    pub fn describe(&self) -> String {
        let (lo, hi) = self.epochs;
        let epochs = if format!("{lo:.1}") == format!("{hi:.1}") {
            format!("{lo:.1} epochs")
        } else {
            format!("{lo:.1}–{hi:.1} epochs")
        };
        format!(
            "N = {} training identities, {} steps ({epochs})",
            thousands(self.identities),
            thousands(self.steps)
        )
    }
}

/// What the report reads of the study.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    /// One part per (N, steps), by increasing N.
    pub parts: Vec<Part>,
    /// How long the `ablate` calls that trained it took, when recorded.
    pub timing: Option<MatrixTiming>,
    /// The learning-rate check at this N (`results/scale-tuning/`) and the run at 10⁷ identities
    /// (`results/train/`) in markdown; empty when neither has run.
    pub tuning: String,
    /// The learning-rate check's line per method: its best point at this N against the point the
    /// tables train it at; empty when the check has not run.
    pub lr_check: Vec<String>,
    /// F²C's loaders and EMA momentum at scale (`results/scale-components/`), one study per pool
    /// size, smallest first; empty when it has not run.
    pub components: Vec<Components>,
}

/// The study of F²C's parts at scale: its matrix name (`results/scale-components/`).
pub const COMPONENTS_MATRIX: &str = "scale-components";

/// F²C's parts at one N of the scale study and one pool size (`ablations/scale-components.ron`):
/// a `main` group holding the reference F²C run, and the `loaders` and `ema` groups of the default
/// matrix around it, which the reproduction report's claims 3 and 4 read under their own rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Components {
    /// N, the training identities of every run.
    pub identities: usize,
    /// Optimiser steps of every run.
    pub steps: usize,
    /// The pool's size as a fraction of N, the same in every run.
    pub pool_fraction: f64,
    /// The configurations, runs marked collapsed from the matrix's own reference points.
    pub stats: Vec<ConfigStats>,
    /// Whether there were reference points to check for collapsed runs.
    pub collapse_checked: bool,
}

impl Components {
    /// "100,000, pool 1%".
    pub fn name(&self) -> String {
        format!(
            "{}, pool {}%",
            thousands(self.identities),
            crate::numbers::short_percent(self.pool_fraction)
        )
    }

    /// "N = 100,000 training identities, 30,300 steps, pool 1% of N".
    pub fn describe(&self) -> String {
        format!(
            "N = {} training identities, {} steps, pool {}% of N",
            thousands(self.identities),
            thousands(self.steps),
            crate::numbers::short_percent(self.pool_fraction)
        )
    }
}

/// Reads `<results>/scale-components/`: one [`Components`] per pool size, smallest first; none
/// when it has no summary. The runs of one pool size must share N and length: they are compared
/// with each other, paired by seed.
fn load_components(results: &Path) -> Result<Vec<Components>> {
    let dir = results.join(COMPONENTS_MATRIX);
    if !dir.join("summary.csv").exists() {
        return Ok(Vec::new());
    }
    let (rows, refs) = crate::report::read_marked(&dir)?;
    // (pool fraction, N, steps, rows), in the order the pools first appear.
    let mut pools: Vec<(f64, usize, usize, Vec<SummaryRow>)> = Vec::new();
    for row in rows {
        let pool = row.pool_fraction.ok_or_else(|| {
            Error::Other(format!(
                "{}: run {} has no pool; the study trains F²C only",
                dir.display(),
                row.run_id
            ))
        })?;
        let rec = RunRecord::read(&record_path(results, COMPONENTS_MATRIX, &row.run_id))?;
        let (n, steps) = (rec.num_train_identities(), rec.experiment.train.steps);
        match pools.iter_mut().find(|p| p.0 == pool) {
            Some(&mut (_, n0, steps0, _)) if (n0, steps0) != (n, steps) => {
                let run = &row.run_id;
                return Err(Error::Other(format!(
                    "{}: run {run} has N = {n} and {steps} steps, another run with its pool \
                     N = {n0} and {steps0}; the study compares runs of one N and length",
                    dir.display()
                )));
            }
            Some(p) => p.3.push(row),
            None => pools.push((pool, n, steps, vec![row])),
        }
    }
    pools.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(pools
        .into_iter()
        .map(|(pool_fraction, identities, steps, rows)| Components {
            identities,
            steps,
            pool_fraction,
            stats: config_stats(&rows),
            collapse_checked: refs.is_some(),
        })
        .collect())
}

/// The study's learning-rate check: its matrix name (`results/scale-tuning/`).
pub const TUNING_MATRIX: &str = "scale-tuning";

/// The short F²C run at 10⁷ identities, whose record `train` writes to `results/train/`.
pub const TEN_MILLION: &str = "experiments/scale-10m.ron";

/// The section on the run of [`TEN_MILLION`] in markdown, when its record is in
/// `<root>/results/train/`: its metrics next to the untrained network on the same held-out
/// identities (the study's reference points of that seed: the held-out set depends on the seed
/// and the generator, not on N), its cost, and the memory Full FC would need at that N.
fn ten_million_section(root: &Path) -> Result<String> {
    let exp = crate::config::embedded::load(TEN_MILLION)?;
    let path = root
        .join("results/train")
        .join(format!("{}.json", crate::results::record::run_id(&exp)));
    if !path.exists() {
        return Ok(String::new());
    }
    let rec = RunRecord::read(&path)?;
    let Some(m) = rec.metrics else {
        return Ok(format!(
            "\n## Ten million identities\n\n`f2c train {TEN_MILLION}` did not finish: {:?}.\n",
            rec.status
        ));
    };
    let e = &rec.experiment;
    let n = rec.num_train_identities();
    let (dim, batch) = (e.backbone.embedding_dim(), e.train.loaders.batch_size());
    let references = root.join("results").join(MATRIX).join(REFERENCES_CSV);
    let untrained = if references.exists() {
        read_references(&references)?
            .into_iter()
            .find(|r| r.seed == e.seed && r.kind == ReferenceKind::Untrained)
            .map_or(String::new(), |r| {
                format!(
                    " (the untrained network on the same held-out identities: {:.2} % \
                     TAR@FAR=1e-3, `results/{MATRIX}/{REFERENCES_CSV}`)",
                    100.0 * r.tar_far_1e3
                )
            })
    } else {
        String::new()
    };
    let fc = HeadConfig::Fc {
        margin: Margin::CosFace(0.4),
        scale: 32.0,
    };
    let fc_state = 2 * 4 * (n * dim) as u64;
    let fc_step = fc.cost(n, dim, batch).memory_bytes(dim, batch);
    let data = e.data.as_ref().map_or(0, |d| {
        crate::data::synthetic::SyntheticFaces::new(d, e.seed).num_train_instances()
    });
    let epochs = (e.train.steps * batch) as f64 / data.max(1) as f64;
    let traffic = rec.traffic_per_step.map_or(String::new(), |t| {
        format!(" Host↔device per step: {}.", t.describe())
    });
    Ok(format!(
        "\n## Ten million identities\n\n`cargo run --release -- train {TEN_MILLION}`: {}; {} steps of {batch} samples ({epochs:.4} epochs: most identities are \
         never drawn), seed {}, {}. A short run, to show that the method trains and is evaluated \
         at this N on one machine, not a converged result. On the held-out test identities: \
         TAR@FAR=1e-2 / 1e-3 / 1e-4 {:.2} / {:.2} / {:.2} %, rank-1 {:.2} %{untrained}. Wall \
         {:.1} min, median step {:.1} ms, head state {} (pool and gallery net), peak memory {}.\
         {traffic} Full FC at this N would hold {} of centres and momentum, {} with one step's \
         logits (the benchmark's memory model, D {dim}, B {batch}); it was not trained.\n",
        exp.head.describe(n),
        thousands(e.train.steps),
        e.seed,
        rec.machine,
        100.0 * m.tar_far_1e2,
        100.0 * m.tar_far_1e3,
        100.0 * m.tar_far_1e4,
        100.0 * m.rank1,
        rec.wall_time_s / 60.0,
        rec.median_step_ms,
        human_bytes(rec.head_state_bytes),
        human_bytes(rec.peak_memory_bytes),
        human_bytes(fc_state),
        human_bytes(fc_step),
    ))
}

/// `1234567` → "1,234,567".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Mean wall time of the successful runs of a configuration, minutes.
pub fn wall_minutes(c: &ConfigStats) -> Option<f64> {
    let walls: Vec<f64> = c
        .rows
        .iter()
        .filter(|r| r.status == RowStatus::Ok)
        .filter_map(|r| r.wall_time_s)
        .collect();
    (!walls.is_empty()).then(|| walls.iter().sum::<f64>() / walls.len() as f64 / 60.0)
}

/// Reads `<root>/results/scale/` (summary, reference points, records, timing); `None` when it
/// has no summary.
pub fn load(root: &Path) -> Result<Option<Study>> {
    let results = root.join("results");
    let dir = results.join(MATRIX);
    if !dir.join("summary.csv").exists() {
        return Ok(None);
    }
    let (rows, _) = crate::report::read_marked(&dir)?;
    // Training instances per (data, seed): generating the data is the only way to count them.
    let mut instances: Vec<(SyntheticConfig, u64, usize)> = Vec::new();
    /// The rows of one (N, steps, tuned at this N) and the epochs of their runs.
    struct Gathered {
        key: (usize, usize, bool),
        rows: Vec<SummaryRow>,
        epochs: Vec<f64>,
    }
    let mut gathered: Vec<Gathered> = Vec::new();
    // The learning rate and weight decay each method trains at in the tables at the
    // 5,000-identity values, and each run's.
    let mut trained: BTreeMap<Variant, (String, String)> = BTreeMap::new();
    let mut points: BTreeMap<String, (String, String)> = BTreeMap::new();
    for mut row in rows {
        let rec = RunRecord::read(&record_path(&results, MATRIX, &row.run_id))?;
        let e = &rec.experiment;
        let point = (e.train.lr.to_string(), e.train.weight_decay.to_string());
        let tuned_at_n = row.group == TUNED_AT_N_GROUP;
        if !tuned_at_n {
            trained
                .entry(variant(&row))
                .or_insert_with(|| point.clone());
        }
        points.insert(row.run_id.clone(), point);
        let data = e.data.as_ref().ok_or_else(|| {
            Error::Other(format!(
                "{}: the scale study runs on synthetic data",
                rec.run_id
            ))
        })?;
        let count = match instances.iter().find(|(d, s, _)| d == data && *s == e.seed) {
            Some(&(_, _, n)) => n,
            None => {
                let n = SyntheticFaces::new(data, e.seed).num_train_instances();
                instances.push((data.clone(), e.seed, n));
                n
            }
        };
        let epochs = (e.train.steps * e.train.loaders.batch_size()) as f64 / count as f64;
        let key = (data.train_identities, e.train.steps, tuned_at_n);
        row.group = MAIN_GROUP.to_string();
        match gathered.iter_mut().find(|g| g.key == key) {
            // A run two groups name is one run of the table.
            Some(g) if g.rows.iter().any(|r| r.run_id == row.run_id) => {}
            Some(g) => {
                g.rows.push(row);
                g.epochs.push(epochs);
            }
            None => gathered.push(Gathered {
                key,
                rows: vec![row],
                epochs: vec![epochs],
            }),
        }
    }
    let intro = "\n## Learning rate at this N\n\nThe learning rates above were tuned at 5,000 \
        identities and 19 epochs. Here each method of the grid below trains at each of its \
        learning rates at this N and length (weight decay at its tuned value; F²C with each of \
        the table's pools), scored on 500 validation identities of the training population, \
        never the test identities (`ablations/scale-tuning.ron`, `results/scale-tuning/`). The \
        first table \
        above keeps every method at its 5,000-identity values (\"the defaults\" below); the grid \
        says how far each method's defaults are from its best point at this N. \
        Mean validation TAR@FAR=1e-3 (%) per point; **bold**: the method's best point.\n\n";
    let grid = grid_section(root, TUNING_MATRIX, intro, &|v| trained.get(v).cloned())?;
    let grid_5k = grid_section(root, crate::report::tuning::MATRIX, "", &|_| None)?;
    gathered.sort_by_key(|g| g.key);
    let parts = gathered
        .into_iter()
        .map(|g| {
            let (identities, steps, tuned_at_n) = g.key;
            let mut stats = config_stats(&g.rows);
            // The reference leads its table, as in the default `main` table.
            stats.sort_by_key(|c| !c.is_fc_reference);
            let (best, of) = match tuned_at_n {
                true => (&grid.best, "the check"),
                false => (&grid_5k.best, "the 5,000-identity grid"),
            };
            // The check's verdicts are read even before it has run; the default grid's only
            // once it has.
            let points = match !tuned_at_n && best.is_empty() {
                true => Vec::new(),
                false => stats
                    .iter()
                    .map(|c| point_line(c, &points[&c.first().run_id], best, of))
                    .collect(),
            };
            Part {
                identities,
                steps,
                tuned_at_n,
                points,
                epochs: g
                    .epochs
                    .iter()
                    .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x))),
                stats,
            }
        })
        .collect();
    let timing_path = dir.join(TIMING_JSON);
    let timing = if timing_path.exists() {
        Some(MatrixTiming::read(&timing_path)?)
    } else {
        None
    };
    let tuning = grid.text + &ten_million_section(root)?;
    Ok(Some(Study {
        parts,
        timing,
        tuning,
        lr_check: grid.lines,
        components: load_components(&results)?,
    }))
}

/// The point a configuration trains at, against its method's best point on the grid `of`
/// ([`point_verdict`]): "F²C pool 1%: lr 0.2, weight decay 0.0005, its method's best point in
/// the check".
fn point_line(
    c: &ConfigStats,
    point: &(String, String),
    best: &BTreeMap<Variant, (String, String)>,
    of: &str,
) -> String {
    let row = c.first();
    let verdict = point_verdict(best, &variant(row), point, of);
    format!(
        "{}: lr {}, weight decay {}, {verdict}",
        method_name(row),
        point.0,
        point.1
    )
}

/// The table of one part, as the default tables are made, with the wall times as a note.
fn spec(study: &Study, part: &Part) -> TableSpec {
    let walls: Vec<String> = part
        .stats
        .iter()
        .map(|c| {
            let wall = wall_minutes(c).map_or("—".to_string(), |m| format!("{m:.1} min"));
            format!("{} {wall}", method_name(c.first()))
        })
        .collect();
    let mut extra = vec![format!(
        "Wall time per run (training and evaluation), mean over the successful seeds: {}.",
        walls.join("; ")
    )];
    match (part.tuned_at_n, part.points.is_empty()) {
        (true, _) => extra.push(format!(
            "The rows of this table train at learning rates chosen on validation identities by \
             the learning-rate check at this N (\"Learning rate at this N\" below), where the \
             first table of this N trains them at their 5,000-identity values. Each row's point \
             against its method's best in the check: {}.",
            part.points.join("; ")
        )),
        (false, false) => extra.push(format!(
            "The rows of this table train at learning rates tuned at 5,000 identities. Each \
             row's point against its method's best on the 5,000-identity grid (the reproduction \
             report's \"Tuning\"): {}.",
            part.points.join("; ")
        )),
        (false, true) => {}
    }
    if let Some(t) = &study.timing {
        extra.push(format!(
            "The study: {:.2} h for {} (`f2c ablate ablations/scale.ron`, {}), {}.",
            t.elapsed_s / 3600.0,
            t.runs_text(),
            t.jobs_text(),
            t.machine
        ));
    }
    let (caption, label) = match part.tuned_at_n {
        false => (
            format!("Scale: {}", part.describe()),
            format!("scale_{}", part.identities),
        ),
        true => (
            format!(
                "Scale: {}, each method at its learning rate tuned at this N",
                part.describe()
            ),
            format!("scale_{}_tuned_at_n", part.identities),
        ),
    };
    TableSpec {
        group: MAIN_GROUP.to_string(),
        caption,
        label,
        reference: "Full FC at the same N".to_string(),
        no_reference: "no Full FC run at this N".to_string(),
        extra_notes: extra,
    }
}

/// The study's tables in one format, one per part.
pub fn render(study: &Study, format: Format) -> String {
    let tables: Vec<String> = study
        .parts
        .iter()
        .map(|p| render_table(&p.stats, &spec(study, p), format))
        .collect();
    tables.join("\n")
}

/// Writes `<root>/paper/tables/scale.md` and `.tex`; returns the paths written.
pub fn write_tables(study: &Study, root: &Path) -> Result<Vec<PathBuf>> {
    let md = root.join(TABLE_MD);
    let tex = md.with_extension("tex");
    let text = render(study, Format::Markdown) + &study.tuning;
    crate::results::record::write_atomic(&md, text.as_bytes())?;
    crate::results::record::write_atomic(&tex, render(study, Format::Latex).as_bytes())?;
    Ok(vec![md, tex])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(115_000), "115,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
