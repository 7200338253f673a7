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

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::loaders::LoaderConfig;
use crate::data::synthetic::SyntheticConfig;
use crate::error::{Error, Result};
use crate::eval::EvalConfig;
use crate::heads::f2c::F2cConfig;
use crate::heads::HeadConfig;
use crate::results::record::run_id;
use crate::train::schedule::TrainConfig;
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
}

/// One axis of a group's grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Axis {
    /// One field over a list of values.
    Sweep {
        /// Path of the field, e.g. `head.pool.capacity` (see [`FIELD_PATHS`]).
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

/// Every field path an axis may set, with the value it expects. Paths under `head.` other than
/// `head`, `head.margin` and `head.scale` apply only to the head variant that has that field.
/// Enums are named by type only where ron's own message lists their variants on a mismatch.
pub const FIELD_PATHS: &[(&str, &str)] = &[
    (
        "name",
        "a name such as `\"small\"` (letters, digits, `-`, `_`, `.`)",
    ),
    ("seed", WHOLE),
    ("device", "a `DeviceChoice` such as `Cpu` or `Cuda(0)`"),
    ("data", "a whole `SyntheticConfig(...)`"),
    ("data.train_identities", WHOLE),
    ("data.eval_identities", WHOLE),
    ("data.min_instances", WHOLE),
    ("data.max_instances", WHOLE),
    ("data.tail_exponent", NUMBER),
    ("data.eval_instances", WHOLE),
    ("data.identity_dim", WHOLE),
    ("data.nuisance_dim", WHOLE),
    ("data.nuisance_scale", NUMBER),
    ("data.noise", NUMBER),
    ("data.label_noise", NUMBER),
    ("backbone", "a `Backbone` variant"),
    (
        "head",
        "a whole head: `Fc(...)`, `PartialFc(...)` or `F2c(F2cConfig(...))`",
    ),
    (
        "head.margin",
        "a `Margin` such as `CosFace(0.5)` or `ArcFace(0.5)`",
    ),
    ("head.scale", NUMBER),
    ("head.sample_rate", NUMBER),
    (
        "head.pool",
        "a whole `PoolConfig(capacity: .., rows: .., eviction: ..)`",
    ),
    (
        "head.pool.capacity",
        "a `Capacity` such as `Fraction(0.01)` or `Count(100)`",
    ),
    ("head.pool.rows", "a `Rows` variant"),
    ("head.pool.eviction", "an `Eviction` variant"),
    ("head.ema_momentum", NUMBER),
    ("head.top_k", "a `TopK` such as `Auto` or `Fixed(5)`"),
    ("head.pool_eval", "a `PoolEval` variant"),
    ("head.symmetric", BOOL),
    ("train", "a whole `TrainConfig(...)`"),
    ("train.steps", WHOLE),
    (
        "train.loaders",
        "`LoaderConfig(identities: n, instances: n)`",
    ),
    ("train.loaders.identities", WHOLE),
    ("train.loaders.instances", WHOLE),
    ("train.lr", NUMBER),
    ("train.momentum", NUMBER),
    ("train.nesterov", BOOL),
    ("train.weight_decay", NUMBER),
    ("train.warmup_steps", WHOLE),
    (
        "train.milestones",
        "a list of fractions such as `[0.5, 0.8]`",
    ),
    ("train.decay", NUMBER),
    ("eval", "a whole `EvalConfig(impostors: All, folds: n)`"),
    ("eval.impostors", "`All` or `AtMost(n)`"),
    ("eval.folds", WHOLE),
];

const WHOLE: &str = "a whole number such as `100`";
const NUMBER: &str = "a number such as `0.5`";
const BOOL: &str = "`true` or `false`";

/// Sets the field at `path` of `exp` to the RON value `ron_value`, parsed into that field's type.
/// Unknown paths, values of another type and paths that the experiment's head variant lacks are
/// errors naming the path. The result is not validated (see [`Experiment::validate`]).
pub fn set_field(exp: &mut Experiment, path: &str, ron_value: &str) -> Result<()> {
    assign(exp, path, ron_value).map_err(|msg| Error::Other(format!("field `{path}`: {msg}")))
}

/// The setter table. Every config struct is destructured by name without `..`, so that a field
/// added to any of them fails to compile here until it is given a path (and a line in
/// [`FIELD_PATHS`]).
fn assign(exp: &mut Experiment, path: &str, text: &str) -> std::result::Result<(), String> {
    let expects = FIELD_PATHS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, e)| *e)
        .ok_or_else(|| unknown_path(path))?;
    let Experiment {
        name,
        seed,
        device,
        data,
        backbone,
        head,
        train,
        eval,
    } = exp;
    if let Some(field) = path.strip_prefix("data.") {
        let SyntheticConfig {
            train_identities,
            eval_identities,
            min_instances,
            max_instances,
            tail_exponent,
            eval_instances,
            identity_dim,
            nuisance_dim,
            nuisance_scale,
            noise,
            label_noise,
        } = data;
        return match field {
            "train_identities" => put(train_identities, text, expects),
            "eval_identities" => put(eval_identities, text, expects),
            "min_instances" => put(min_instances, text, expects),
            "max_instances" => put(max_instances, text, expects),
            "tail_exponent" => put(tail_exponent, text, expects),
            "eval_instances" => put(eval_instances, text, expects),
            "identity_dim" => put(identity_dim, text, expects),
            "nuisance_dim" => put(nuisance_dim, text, expects),
            "nuisance_scale" => put(nuisance_scale, text, expects),
            "noise" => put(noise, text, expects),
            "label_noise" => put(label_noise, text, expects),
            _ => Err(unknown_path(path)),
        };
    }
    if let Some(field) = path.strip_prefix("head.") {
        return assign_head(head, field, text, expects);
    }
    if let Some(field) = path.strip_prefix("train.") {
        let TrainConfig {
            steps,
            loaders,
            lr,
            momentum,
            nesterov,
            weight_decay,
            warmup_steps,
            milestones,
            decay,
        } = train;
        let LoaderConfig {
            identities,
            instances,
        } = loaders;
        return match field {
            "steps" => put(steps, text, expects),
            "loaders.identities" => put(identities, text, expects),
            "loaders.instances" => put(instances, text, expects),
            "loaders" => put(loaders, text, expects),
            "lr" => put(lr, text, expects),
            "momentum" => put(momentum, text, expects),
            "nesterov" => put(nesterov, text, expects),
            "weight_decay" => put(weight_decay, text, expects),
            "warmup_steps" => put(warmup_steps, text, expects),
            "milestones" => put(milestones, text, expects),
            "decay" => put(decay, text, expects),
            _ => Err(unknown_path(path)),
        };
    }
    if let Some(field) = path.strip_prefix("eval.") {
        let EvalConfig { impostors, folds } = eval;
        return match field {
            "impostors" => put(impostors, text, expects),
            "folds" => put(folds, text, expects),
            _ => Err(unknown_path(path)),
        };
    }
    match path {
        "name" => {
            // A name is a string; writing it bare (`small`) is accepted as well as quoted.
            *name = ron::from_str::<String>(text).unwrap_or_else(|_| text.trim().to_string());
            Ok(())
        }
        "seed" => put(seed, text, expects),
        "device" => put(device, text, expects),
        "data" => put(data, text, expects),
        "backbone" => put(backbone, text, expects),
        "head" => put(head, text, expects),
        "train" => put(train, text, expects),
        "eval" => put(eval, text, expects),
        _ => Err(unknown_path(path)),
    }
}

/// The `head.*` paths; which exist depends on the head variant.
fn assign_head(
    head: &mut HeadConfig,
    field: &str,
    text: &str,
    expects: &str,
) -> std::result::Result<(), String> {
    let variant = match head {
        HeadConfig::Fc { .. } => "Fc",
        HeadConfig::PartialFc { .. } => "PartialFc",
        HeadConfig::F2c(_) => "F2c",
    };
    let absent = |only: &str| {
        format!(
            "applies only to a {only} head, but the head here is {variant}; set `head` to a {only} head \
             in an earlier axis of the group, or drop this axis"
        )
    };
    match head {
        HeadConfig::Fc { margin, scale } => match field {
            "margin" => put(margin, text, expects),
            "scale" => put(scale, text, expects),
            "sample_rate" => Err(absent("PartialFc")),
            _ => Err(absent("F2c")),
        },
        HeadConfig::PartialFc {
            margin,
            scale,
            sample_rate,
        } => match field {
            "margin" => put(margin, text, expects),
            "scale" => put(scale, text, expects),
            "sample_rate" => put(sample_rate, text, expects),
            _ => Err(absent("F2c")),
        },
        HeadConfig::F2c(f) => {
            let F2cConfig {
                margin,
                scale,
                pool,
                ema_momentum,
                top_k,
                pool_eval,
                symmetric,
            } = f;
            let crate::heads::class_pool::PoolConfig {
                capacity,
                rows,
                eviction,
            } = pool;
            match field {
                "margin" => put(margin, text, expects),
                "scale" => put(scale, text, expects),
                "sample_rate" => Err(absent("PartialFc")),
                "pool.capacity" => put(capacity, text, expects),
                "pool.rows" => put(rows, text, expects),
                "pool.eviction" => put(eviction, text, expects),
                "pool" => put(pool, text, expects),
                "ema_momentum" => put(ema_momentum, text, expects),
                "top_k" => put(top_k, text, expects),
                "pool_eval" => put(pool_eval, text, expects),
                "symmetric" => put(symmetric, text, expects),
                _ => Err(unknown_path(&format!("head.{field}"))),
            }
        }
    }
}

/// Parses `text` as a `T` into `slot`; the message says what was expected.
fn put<T: DeserializeOwned>(
    slot: &mut T,
    text: &str,
    expects: &str,
) -> std::result::Result<(), String> {
    *slot = ron::from_str(text)
        .map_err(|e| format!("value `{text}` is not {expects} (ron: {})", e.code))?;
    Ok(())
}

fn unknown_path(path: &str) -> String {
    // Suggest the paths under the same first segment; all of them when nothing shares it.
    let first = path.split('.').next().unwrap_or(path);
    let mut near: Vec<&str> = FIELD_PATHS
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| p.split('.').next() == Some(first))
        .collect();
    if near.is_empty() {
        near = FIELD_PATHS.iter().map(|(p, _)| *p).collect();
    }
    format!(
        "unknown field path; fields that can be swept: {}",
        near.join(", ")
    )
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
                    assign(&mut exp, col.field, text).map_err(|msg| bad(col.field, msg))?;
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
                for &seed in &self.seeds {
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
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad("name", format!("`{}` must be non-empty and use only letters, digits, `-`, `_`, `.` (it names the results folder)", self.name)));
        }
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
                    if !FIELD_PATHS.iter().any(|(p, _)| p == field) {
                        return Err(gbad(field, unknown_path(field)));
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
                    let mut distinct = HashSet::new();
                    if let Some(v) = values.iter().find(|v| !distinct.insert(v.as_str())) {
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
