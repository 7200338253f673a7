//! One experiment: a RON file composing the configs that live beside the code they configure
//! (data, backbone, head, training, evaluation). Unknown fields are rejected by serde; values are
//! range-checked here so that a bad file fails before anything runs, naming the file, the field,
//! what was expected and how to fix it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::check_name;
use super::sweep::{parse_into, set_nested, split, unknown, Sweep};
use crate::data::synthetic::SyntheticConfig;
use crate::device::DeviceChoice;
use crate::error::{Error, FieldError, FieldResult, Result};
use crate::eval::EvalConfig;
use crate::heads::{HeadConfig, HeadContext, Method};
use crate::nets::probe::Backbone;
use crate::train::schedule::TrainConfig;

/// A complete, self-describing experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Short name, used in result file names.
    pub name: String,
    /// Seed of everything random: data, initialisation, loaders, sampling.
    pub seed: u64,
    /// Compute device (default `Cpu`).
    #[serde(default)]
    pub device: DeviceChoice,
    /// The synthetic identity benchmark.
    pub data: SyntheticConfig,
    /// The probe (and gallery) network architecture.
    pub backbone: Backbone,
    /// The classification head and its settings.
    pub head: HeadConfig,
    /// Optimiser, schedule, loaders.
    pub train: TrainConfig,
    /// Open-set evaluation.
    pub eval: EvalConfig,
}

impl Experiment {
    /// Reads, parses and validates an experiment file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_ron_str(&text, path)
    }

    /// Parses and validates RON text; `path` is only used in messages.
    pub fn from_ron_str(text: &str, path: &Path) -> Result<Self> {
        let exp: Experiment = ron::Options::default()
            .from_str(text)
            .map_err(|e| parse_error(path, e))?;
        exp.validate(path)?;
        Ok(exp)
    }

    /// Serialises to pretty RON (the resolved config stored with every result).
    pub fn to_ron(&self) -> String {
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default().struct_names(true))
            .expect("experiment serialises")
    }

    /// Range checks every field; the first failure is returned naming the file and the field.
    /// Each config checks its own fields; this only says where each one sits.
    pub fn validate(&self, path: &Path) -> Result<()> {
        self.check().map_err(|e| e.at(path))
    }

    fn check(&self) -> FieldResult {
        check_name(&self.name).map_err(|e| e.within("name"))?;
        self.data.validate().map_err(|e| e.within("data"))?;
        let loaders = self.train.loaders;
        let ctx = HeadContext {
            classes: self.data.train_identities,
            pairs_per_step: loaders.identities,
            instances_per_step: loaders.instances,
        };
        self.train
            .validate(self.data.train_identities)
            .map_err(|e| e.within("train"))?;
        self.head
            .check_loaders(&loaders)
            .map_err(|e| e.within("train.loaders"))?;
        self.head.validate(&ctx).map_err(|e| e.within("head"))?;
        self.eval.validate().map_err(|e| e.within("eval"))
    }
}

impl Experiment {
    /// The error of a path this experiment does not have: for a head field of another head, which
    /// heads have it; otherwise the paths under the same first segment (or all).
    fn unknown_path(&self, path: &str) -> FieldError {
        if let Some(field) = path.strip_prefix("head.") {
            let with: Vec<&str> = Method::ALL
                .into_iter()
                .map(HeadConfig::authors)
                .filter(|h| h.paths().iter().any(|p| p == field))
                .map(|h| h.variant_name())
                .collect();
            if !with.is_empty() {
                return FieldError::new(
                    path,
                    format!(
                        "applies only to a {} head, but the head here is {}; set `head` to such a \
                         head in an earlier axis of the group, or drop this axis",
                        with.join(" or "),
                        self.head.variant_name()
                    ),
                );
            }
        }
        let all = self.paths();
        let first = split(path).0;
        let mut near: Vec<&str> = all
            .iter()
            .map(String::as_str)
            .filter(|p| split(p).0 == first)
            .collect();
        if near.is_empty() {
            near = all.iter().map(String::as_str).collect();
        }
        FieldError::new(
            path,
            format!(
                "unknown field path; fields that can be swept: {}",
                near.join(", ")
            ),
        )
    }
}

impl Sweep for Experiment {
    fn set_path(&mut self, path: &str, text: &str) -> FieldResult {
        if !self.paths().iter().any(|p| p == path) {
            return Err(self.unknown_path(path));
        }
        let (first, rest) = split(path);
        let not_here = unknown(path, &*self);
        let Experiment {
            name,
            seed,
            device,
            data,
            backbone,
            head,
            train,
            eval,
        } = self;
        let set = match (first, rest) {
            ("name", None) => {
                // A name is a string; writing it bare (`small`) is accepted as well as quoted.
                *name = ron::from_str::<String>(text).unwrap_or_else(|_| text.trim().to_string());
                Ok(())
            }
            ("seed", None) => parse_into(seed, text),
            ("device", None) => parse_into(device, text),
            ("backbone", None) => parse_into(backbone, text),
            ("data", _) => return set_nested(data, first, rest, text),
            ("head", _) => return set_nested(head, first, rest, text),
            ("train", _) => return set_nested(train, first, rest, text),
            ("eval", _) => return set_nested(eval, first, rest, text),
            _ => return Err(not_here),
        };
        set.map_err(|e| e.within(first))
    }

    fn paths(&self) -> Vec<String> {
        let mut out: Vec<String> = ["name", "seed", "device", "backbone"]
            .map(String::from)
            .to_vec();
        let nested: [(&str, &dyn Sweep); 4] = [
            ("data", &self.data),
            ("head", &self.head),
            ("train", &self.train),
            ("eval", &self.eval),
        ];
        for (name, value) in nested {
            out.push(name.to_string());
            out.extend(value.paths().into_iter().map(|p| format!("{name}.{p}")));
        }
        out
    }
}

/// Turns ron's error into one naming the file and position, with a hint for the common cases.
pub fn parse_error(path: &Path, e: ron::error::SpannedError) -> Error {
    let mut msg = e.code.to_string();
    if msg.contains("Unexpected field")
        || msg.contains("unknown field")
        || msg.contains("NoSuchStructField")
    {
        msg.push_str(" — remove it or fix its spelling (see the field list in experiments/fc.ron)");
    } else if msg.contains("missing field") || msg.contains("MissingStructField") {
        msg.push_str(" — every field must be given; copy it from experiments/fc.ron");
    }
    Error::Parse {
        path: path.to_path_buf(),
        line: e.position.line,
        col: e.position.col,
        msg,
    }
}
