//! An ablation matrix: a RON file in `ablations/` naming a base experiment, the seeds, and groups of
//! axes (one group per ablation table: `main`, `pool_size`, `ema`, …). Each axis sets one field of
//! the experiment, given by its path (`head.pool.capacity`), to each of a list of RON values; the
//! axes of a group are crossed as a grid, and a `Zip` steps several fields together instead of
//! crossing them (a method with its own parameter). The runs of the matrix are the union over
//! groups of grid × seeds, in a fixed order, each identified by the run id of its resolved config,
//! so the same config named by two groups runs once and is reported in both.
//!
//! ```ron
//! Matrix(
//!     name: "pool",
//!     base: File("experiments/f2c.ron"),
//!     seeds: [1, 2, 3],
//!     groups: [
//!         Group(name: "pool_size", axes: [
//!             Sweep(field: "head.pool.capacity", values: ["Fraction(0.01)", "Fraction(0.1)"], label: Some("pool")),
//!         ]),
//!         Group(name: "loaders", axes: [
//!             Zip([
//!                 Sweep(field: "train.loaders.identities", values: ["0", "32"]),
//!                 Sweep(field: "train.loaders.instances", values: ["128", "64"]),
//!             ]),
//!         ]),
//!     ],
//! )
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::check_name;
use crate::config::sweep::Sweep;
use crate::error::{Error, Result};
use crate::results::record::run_id;
use crate::Experiment;

/// A matrix file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Name of the matrix: results go to `results/<name>/`.
    pub name: String,
    /// The experiment every run starts from.
    pub base: Base,
    /// Seeds every grid point runs with (innermost in the expansion order).
    pub seeds: Vec<u64>,
    /// The ablation tables, expanded in this order.
    pub groups: Vec<Group>,
}

/// Where the base experiment comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Base {
    /// An experiment file, relative to the directory `f2c` runs in (the repository root).
    File(PathBuf),
    /// The experiment written out in the matrix file.
    Inline(Box<Experiment>),
}

/// One ablation table: the grid of its axes, crossed in the order listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Name of the table (the `group` column of the summary).
    pub name: String,
    /// Axes crossed as a grid: the first varies slowest. No axes = the base config alone.
    pub axes: Vec<Axis>,
    /// Seeds of this group's runs, when it needs more (or other) than the matrix's `seeds`: e.g.
    /// the main comparison, whose paired confidence interval should be narrow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Vec<u64>>,
}

/// One axis of a group's grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Axis {
    /// One field over a list of values.
    Sweep {
        /// Path of the field, e.g. `head.pool.capacity` (see [`Sweep::paths`]).
        field: String,
        /// RON text of each value, parsed into the field's type, e.g. `"Fraction(0.01)"`.
        values: Vec<String>,
        /// Name of the axis in run labels; defaults to the last segment of `field`.
        #[serde(default)]
        label: Option<String>,
    },
    /// Sweeps of equal length stepped together: point i takes value i of every sweep.
    Zip(Vec<Axis>),
}

/// Sets the field at `path` of `exp` to the RON value `ron_value`, parsed into that field's type.
/// Unknown paths, values of another type and paths that the experiment's head variant lacks are
/// errors naming the path. The result is not validated (see [`Experiment::validate`]). The paths
/// are those of [`Sweep::paths`], derived from the config structs.
pub fn set_field(exp: &mut Experiment, path: &str, ron_value: &str) -> Result<()> {
    exp.set_path(path, ron_value).map_err(|e| Error::Invalid {
        path: PathBuf::from("<axis>"),
        field: e.field,
        msg: e.msg,
    })
}

/// Where a run appears in the matrix: one of its groups and its label there.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    /// Index of the run in [`Plan::runs`].
    pub run: usize,
    /// The group (ablation table).
    pub group: String,
    /// The group's axis values at this point, e.g. `pool=Fraction(0.01)`; `base` for a group without axes.
    pub label: String,
}

/// One distinct run of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// Position in the expansion order (0-based).
    pub index: usize,
    /// [`run_id`] of the resolved experiment.
    pub run_id: String,
    /// [`run_id`] of the resolved experiment with its seed set to 0: shared by the seeds of a point.
    pub config_id: String,
    /// The resolved, validated experiment.
    pub experiment: Experiment,
    /// The groups the run appears in, in expansion order.
    pub groups: Vec<String>,
    /// Its label in the first of those groups.
    pub label: String,
}

/// A matrix expanded into its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The matrix name (results go to `results/<name>/`).
    pub name: String,
    /// Distinct runs in expansion order (first appearance).
    pub runs: Vec<PlannedRun>,
    /// Every (group, grid point, seed) in expansion order, a run named by several groups once per group:
    /// the rows of the summary.
    pub rows: Vec<PlanRow>,
}

impl Matrix {
    /// Reads and parses a matrix file (not yet expanded).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_ron_str(&text, path)
    }

    /// Parses RON text; `path` is only used in messages.
    pub fn from_ron_str(text: &str, path: &Path) -> Result<Self> {
        ron::Options::default().from_str(text).map_err(|e| {
            let mut msg = e.code.to_string();
            if matches!(e.code, ron::Error::NoSuchStructField { .. } | ron::Error::MissingStructField { .. }) {
                msg.push_str(" — a matrix is `Matrix(name, base, seeds, groups)`; see the format in src/ablation/matrix.rs");
            }
            Error::Parse { path: path.to_path_buf(), line: e.position.line, col: e.position.col, msg }
        })
    }

    /// The base experiment, read (a `File`, relative to the current directory) and validated.
    pub fn base_experiment(&self, path: &Path) -> Result<Experiment> {
        match &self.base {
            Base::File(file) => Experiment::load(file).map_err(|e| match e {
                Error::Io { source, .. } => Error::Invalid {
                    path: path.to_path_buf(),
                    field: "base".into(),
                    msg: format!(
                        "cannot read `{}`: {source} (paths are relative to the directory f2c runs in, \
                         normally the repository root)",
                        file.display()
                    ),
                },
                other => other,
            }),
            Base::Inline(exp) => {
                exp.validate(path)?;
                Ok((**exp).clone())
            }
        }
    }

    /// Expands the matrix into its runs: groups in order; within a group the grid of its axes (first
    /// axis slowest); within a grid point the seeds in order. `path` is the matrix file, for messages
    /// and for nothing else; a `File` base is read relative to the current directory.
    pub fn expand(&self, path: &Path) -> Result<Plan> {
        let base = self.base_experiment(path)?;
        self.expand_from(&base, path)
    }

    /// [`Matrix::expand`] with the base experiment given.
    pub fn expand_from(&self, base: &Experiment, path: &Path) -> Result<Plan> {
        self.check(path)?;
        let mut plan = Plan {
            name: self.name.clone(),
            runs: Vec::new(),
            rows: Vec::new(),
        };
        let mut index_of: HashMap<String, usize> = HashMap::new();
        for group in &self.groups {
            let bad = |field: &str, msg: String| Error::Invalid {
                path: path.to_path_buf(),
                field: field.to_string(),
                msg: format!("group `{}`: {msg}", group.name),
            };
            let columns = columns(&group.axes);
            let points = grid(&group.axes);
            // Labels seen in this group, by run id: a config reached twice in one group is a mistake.
            let mut seen: HashMap<String, String> = HashMap::new();
            for point in &points {
                let mut exp = base.clone();
                let mut parts = Vec::new();
                for (col, &value_ix) in columns.iter().zip(point) {
                    let text = &col.values[value_ix];
                    exp.set_path(col.field, text)
                        .map_err(|e| bad(&e.field, e.msg))?;
                    parts.push(format!(
                        "{}={}",
                        col.label,
                        text.split_whitespace().collect::<Vec<_>>().join(" ")
                    ));
                }
                let label = if parts.is_empty() {
                    "base".to_string()
                } else {
                    parts.join(", ")
                };
                for &seed in group.seeds.as_deref().unwrap_or(&self.seeds) {
                    exp.seed = seed;
                    exp.validate(path).map_err(|e| match e {
                        Error::Invalid { field, msg, .. } => bad(
                            &field,
                            format!("run `{label}` (seed {seed}) is invalid: {msg}"),
                        ),
                        other => other,
                    })?;
                    let id = run_id(&exp);
                    if let Some(first) = seen.insert(id.clone(), label.clone()) {
                        return Err(bad(
                            &col_fields(&columns),
                            format!("`{first}` and `{label}` resolve to the same config ({id}); remove one of the values"),
                        ));
                    }
                    let run = match index_of.get(&id) {
                        Some(&i) => {
                            plan.runs[i].groups.push(group.name.clone());
                            i
                        }
                        None => {
                            let i = plan.runs.len();
                            let config_id = run_id(&Experiment {
                                seed: 0,
                                ..exp.clone()
                            });
                            plan.runs.push(PlannedRun {
                                index: i,
                                run_id: id.clone(),
                                config_id,
                                experiment: exp.clone(),
                                groups: vec![group.name.clone()],
                                label: label.clone(),
                            });
                            index_of.insert(id, i);
                            i
                        }
                    };
                    plan.rows.push(PlanRow {
                        run,
                        group: group.name.clone(),
                        label: label.clone(),
                    });
                }
            }
        }
        Ok(plan)
    }

    /// Structural checks that need no experiment: names, seeds, axis shapes.
    fn check(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, msg: String| Error::Invalid {
            path: path.to_path_buf(),
            field: field.into(),
            msg,
        };
        check_name(&self.name)
            .map_err(|e| bad("name", format!("{} (it names the results folder)", e.msg)))?;
        if self.seeds.is_empty() {
            return Err(bad(
                "seeds",
                "list at least one seed, e.g. `seeds: [1]`".into(),
            ));
        }
        let mut seeds = HashSet::new();
        if let Some(s) = self.seeds.iter().find(|s| !seeds.insert(**s)) {
            return Err(bad("seeds", format!("seed {s} is listed twice")));
        }
        if self.groups.is_empty() {
            return Err(bad(
                "groups",
                "list at least one group, e.g. `Group(name: \"main\", axes: [])`".into(),
            ));
        }
        let mut names = HashSet::new();
        for group in &self.groups {
            if group.name.is_empty() || !names.insert(group.name.as_str()) {
                return Err(bad(
                    "groups",
                    format!("group name `{}` is empty or used twice", group.name),
                ));
            }
            if let Some(seeds) = &group.seeds {
                let mut distinct = HashSet::new();
                if seeds.is_empty() || seeds.iter().any(|s| !distinct.insert(*s)) {
                    return Err(bad(
                        "groups",
                        format!(
                            "group `{}`: its `seeds` must list at least one seed, each once",
                            group.name
                        ),
                    ));
                }
            }
            let gbad =
                |field: &str, msg: String| bad(field, format!("group `{}`: {msg}", group.name));
            let mut fields = HashSet::new();
            for axis in &group.axes {
                let sweeps: Vec<&Axis> = match axis {
                    Axis::Sweep { .. } => vec![axis],
                    Axis::Zip(inner) => {
                        if inner.is_empty() {
                            return Err(gbad("axes", "an empty `Zip([])`: list its sweeps".into()));
                        }
                        inner.iter().collect()
                    }
                };
                let mut zip_len = None;
                for sweep in sweeps {
                    let Axis::Sweep { field, values, .. } = sweep else {
                        return Err(gbad(
                            "axes",
                            "a `Zip` inside a `Zip`: list its sweeps directly in the outer one"
                                .into(),
                        ));
                    };
                    if field == "seed" {
                        return Err(gbad(
                            field,
                            "seeds come from the matrix's `seeds` list, not from an axis".into(),
                        ));
                    }
                    if !fields.insert(field.as_str()) {
                        return Err(gbad(
                            field,
                            "set by two axes of the group; the second would overwrite the first"
                                .into(),
                        ));
                    }
                    if values.is_empty() {
                        return Err(gbad(
                            field,
                            "an axis without values; list at least one".into(),
                        ));
                    }
                    // In a `Zip` a value may repeat beside different partners (the same loaders
                    // for several methods); a point reached twice is caught at expansion.
                    let mut distinct = HashSet::new();
                    let zipped = matches!(axis, Axis::Zip(_));
                    if let Some(v) = values
                        .iter()
                        .find(|v| !zipped && !distinct.insert(v.as_str()))
                    {
                        return Err(gbad(field, format!("value `{v}` is listed twice")));
                    }
                    match zip_len {
                        Some(n) if n != values.len() => {
                            return Err(gbad(
                                field,
                                format!("a `Zip` pairs values one to one, but this sweep has {} values and the first has {n}", values.len()),
                            ));
                        }
                        _ => zip_len = Some(values.len()),
                    }
                }
            }
        }
        Ok(())
    }
}

impl Plan {
    /// Reads, parses and expands a matrix file.
    pub fn load(path: &Path) -> Result<Self> {
        Matrix::load(path)?.expand(path)
    }

    /// The runs as a table: index, run id, groups, label, seed — one line each.
    pub fn listing(&self) -> String {
        let id_w = self.runs.iter().map(|r| r.run_id.len()).max().unwrap_or(0);
        let group_w = self
            .runs
            .iter()
            .map(|r| r.groups.join(",").len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for r in &self.runs {
            out.push_str(&format!(
                "{:>4}  {:id_w$}  {:group_w$}  seed {:<6} {}\n",
                r.index,
                r.run_id,
                r.groups.join(","),
                r.experiment.seed,
                r.label
            ));
        }
        out
    }
}

/// One sweep of a group, flattened out of its `Zip`.
struct Column<'a> {
    field: &'a str,
    values: &'a [String],
    label: String,
}

/// The sweeps of a group in the order they are applied.
fn columns(axes: &[Axis]) -> Vec<Column<'_>> {
    fn push<'a>(axis: &'a Axis, out: &mut Vec<Column<'a>>) {
        match axis {
            Axis::Sweep {
                field,
                values,
                label,
            } => out.push(Column {
                field,
                values,
                label: label
                    .clone()
                    .unwrap_or_else(|| field.rsplit('.').next().unwrap_or(field).to_string()),
            }),
            Axis::Zip(inner) => inner.iter().for_each(|a| push(a, out)),
        }
    }
    let mut out = Vec::new();
    axes.iter().for_each(|a| push(a, &mut out));
    out
}

fn col_fields(columns: &[Column<'_>]) -> String {
    columns
        .iter()
        .map(|c| c.field)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The grid points of a group: per point, the value index of every column (see [`columns`]).
/// Axes are crossed with the first slowest; the sweeps of a `Zip` share one index.
fn grid(axes: &[Axis]) -> Vec<Vec<usize>> {
    let mut points: Vec<Vec<usize>> = vec![Vec::new()];
    for axis in axes {
        let (len, width) = match axis {
            Axis::Sweep { values, .. } => (values.len(), 1),
            Axis::Zip(inner) => (
                inner.first().map_or(0, |a| match a {
                    Axis::Sweep { values, .. } => values.len(),
                    Axis::Zip(_) => 0,
                }),
                inner.len(),
            ),
        };
        points = points
            .into_iter()
            .flat_map(|p| {
                (0..len).map(move |i| {
                    let mut q = p.clone();
                    q.extend(std::iter::repeat_n(i, width));
                    q
                })
            })
            .collect();
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(field: &str, values: &[&str]) -> Axis {
        Axis::Sweep {
            field: field.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
            label: None,
        }
    }

    #[test]
    fn grid_crosses_axes_first_slowest_and_zips_share_an_index() {
        // Sweep of 2 × Zip of (3, 3) × Sweep of 2: 2·3·2 = 12 points over 4 columns.
        let axes = vec![
            sweep("a", &["0", "1"]),
            Axis::Zip(vec![
                sweep("b", &["0", "1", "2"]),
                sweep("c", &["0", "1", "2"]),
            ]),
            sweep("d", &["0", "1"]),
        ];
        let g = grid(&axes);
        assert_eq!(g.len(), 12);
        assert_eq!(g[0], vec![0, 0, 0, 0]);
        assert_eq!(g[1], vec![0, 0, 0, 1]);
        assert_eq!(g[2], vec![0, 1, 1, 0]);
        assert_eq!(g[11], vec![1, 2, 2, 1]);
        assert_eq!(grid(&[]), vec![Vec::<usize>::new()]);
    }

    #[test]
    fn labels_default_to_the_last_path_segment() {
        let axes = vec![
            sweep("head.pool.capacity", &["Count(1)"]),
            Axis::Sweep {
                field: "train.lr".into(),
                values: vec!["0.1".into()],
                label: Some("lr0".into()),
            },
        ];
        let labels: Vec<String> = columns(&axes).into_iter().map(|c| c.label).collect();
        assert_eq!(labels, vec!["capacity", "lr0"]);
    }
}
