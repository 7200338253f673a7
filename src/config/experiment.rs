//! One experiment: a RON file composing the configs that live beside the code they configure
//! (data, backbone, head, training, evaluation). Unknown fields are rejected by serde; values are
//! range-checked here so that a bad file fails before anything runs, naming the file, the field,
//! what was expected and how to fix it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::check_name;
use super::sweep::{parse_into, set_nested, split, unknown, Sweep};
use crate::data::images::ImagesConfig;
use crate::data::synthetic::SyntheticConfig;
use crate::device::DeviceChoice;
use crate::error::{Error, FieldError, FieldResult, Result};
use crate::eval::EvalConfig;
use crate::heads::{HeadConfig, HeadContext, Method};
use crate::nets::network::{Backbone, BackboneInput};
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
    /// The synthetic identity benchmark; an experiment has this or `images`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "bare_option")]
    pub data: Option<SyntheticConfig>,
    /// Face images from disk; an experiment has this or `data`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "bare_option")]
    pub images: Option<ImagesConfig>,
    /// The probe (and gallery) network architecture.
    pub backbone: Backbone,
    /// The classification head and its settings.
    pub head: HeadConfig,
    /// Optimiser, schedule, loaders.
    pub train: TrainConfig,
    /// Open-set evaluation.
    pub eval: EvalConfig,
}

/// An experiment written as another one plus changes: `Derived(base: "base.ron", set: [("field.path",
/// "RON value"), …])`, the base resolved relative to this file, the paths those of the matrix axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// The experiment file this one starts from, relative to this file's folder.
    pub base: PathBuf,
    /// Fields set on top of the base, in order: (path, RON value).
    pub set: Vec<(String, String)>,
}

/// Bases a derived experiment may chain through before the chain is taken for a cycle.
const MAX_BASE_DEPTH: usize = 8;

impl Experiment {
    /// Reads, parses and validates an experiment file: a whole `Experiment(...)` or a
    /// `Derived(...)` one, whose bases are read from disk.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_ron_str(&text, path)
    }

    /// Parses and validates RON text; `path` names it in messages and locates a derived file's
    /// base on disk.
    pub fn from_ron_str(text: &str, path: &Path) -> Result<Self> {
        Self::from_ron_with(text, path, &|p: &Path| {
            std::fs::read_to_string(p).map_err(|e| Error::io(p, e))
        })
    }

    /// [`Experiment::from_ron_str`] with the files a derived experiment names read by `read`
    /// (e.g. from files compiled into the binary).
    pub fn from_ron_with(
        text: &str,
        path: &Path,
        read: &dyn Fn(&Path) -> Result<String>,
    ) -> Result<Self> {
        let exp = Self::resolve(text, path, read, 0)?;
        exp.validate(path)?;
        Ok(exp)
    }

    fn resolve(
        text: &str,
        path: &Path,
        read: &dyn Fn(&Path) -> Result<String>,
        depth: usize,
    ) -> Result<Self> {
        let options = ron::Options::default();
        if first_identifier(text) != Some("Derived") {
            return options.from_str(text).map_err(|e| parse_error(path, e));
        }
        let derived: Derived = options.from_str(text).map_err(|e| parse_error(path, e))?;
        let invalid = |field: &str, msg: String| Error::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            msg,
        };
        if depth >= MAX_BASE_DEPTH {
            return Err(invalid(
                "base",
                format!("more than {MAX_BASE_DEPTH} bases deep: do the bases form a cycle?"),
            ));
        }
        let base_path = path
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(&derived.base);
        let base_text = read(&base_path).map_err(|e| {
            invalid(
                "base",
                format!("cannot read `{}`: {e}", base_path.display()),
            )
        })?;
        let mut exp = Self::resolve(&base_text, &base_path, read, depth + 1)?;
        for (field, value) in &derived.set {
            exp.set_path(field, value)
                .map_err(|e| invalid(&format!("set: {}", e.field), e.msg))?;
        }
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
        let input = self.backbone.input();
        let classes = match (&self.data, &self.images) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "images",
                    "an experiment has synthetic `data` or `images`, not both: remove one",
                ))
            }
            (None, None) => {
                return Err(FieldError::new(
                    "data",
                    "missing: give `data: SyntheticConfig(...)` or `images: ImagesConfig(...)`",
                ))
            }
            (Some(data), None) => {
                data.validate().map_err(|e| e.within("data"))?;
                if input != BackboneInput::Synthetic {
                    return Err(FieldError::new(
                        "backbone",
                        format!(
                            "{:?} reads face images, the data here is synthetic: use Mlp256x64 or \
                             Mlp512x128, or give `images`",
                            self.backbone
                        ),
                    ));
                }
                Some(data.train_identities)
            }
            (None, Some(images)) => {
                images.validate().map_err(|e| e.within("images"))?;
                if input == BackboneInput::Synthetic {
                    return Err(FieldError::new(
                        "backbone",
                        format!(
                            "{:?} reads synthetic vectors, the data here are images: use \
                             TinyIResNet (grey) or IResNet18 (RGB)",
                            self.backbone
                        ),
                    ));
                }
                if self.eval.split == crate::eval::EvalSplit::Validation
                    && images.validation_identities == 0
                {
                    return Err(FieldError::new(
                        "eval.split",
                        "Validation needs validation identities: set images.validation_identities",
                    ));
                }
                None // known once the data set is opened: see `check_classes`
            }
        };
        self.head
            .check_loaders(&self.train.loaders)
            .map_err(|e| e.within("train.loaders"))?;
        self.eval.validate().map_err(|e| e.within("eval"))?;
        if let Some(data) = &self.data {
            if self.eval.split == crate::eval::EvalSplit::Validation
                && data.validation_identities == 0
            {
                return Err(FieldError::new(
                    "eval.split",
                    "Validation needs validation identities: set data.validation_identities (e.g. 500)",
                ));
            }
        }
        match classes {
            Some(n) => self.check_classes(n),
            None => Ok(()),
        }
    }

    /// Identities the data holds out for choosing hyperparameters.
    pub fn validation_identities(&self) -> usize {
        match (&self.data, &self.images) {
            (Some(d), _) => d.validation_identities,
            (None, Some(i)) => i.validation_identities,
            (None, None) => 0,
        }
    }

    /// The checks that need the number of training identities N: the schedule's and the head's
    /// (e.g. a pool no larger than N). Loading runs them for synthetic data; for an image data
    /// set they run when the trainer is built, once N is known.
    pub fn check_classes(&self, classes: usize) -> FieldResult {
        let loaders = self.train.loaders;
        let ctx = HeadContext {
            classes,
            pairs_per_step: loaders.identities,
            instances_per_step: loaders.instances,
        };
        self.train
            .validate(classes)
            .map_err(|e| e.within("train"))?;
        self.head.validate(&ctx).map_err(|e| e.within("head"))
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
            images,
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
            // The two kinds of data are alternatives: setting one whole removes the other.
            ("data", None) => {
                let mut cfg = None;
                parse_into(&mut cfg, &format!("Some({text})")).map(|()| {
                    *data = cfg;
                    *images = None;
                })
            }
            ("images", None) => {
                let mut cfg = None;
                parse_into(&mut cfg, &format!("Some({text})")).map(|()| {
                    *images = cfg;
                    *data = None;
                })
            }
            ("data", Some(_)) => match data {
                Some(d) => return set_nested(d, first, rest, text),
                None => return Err(not_here),
            },
            ("images", Some(_)) => match images {
                Some(i) => return set_nested(i, first, rest, text),
                None => return Err(not_here),
            },
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
        let nested: [(&str, Option<&dyn Sweep>); 5] = [
            ("data", self.data.as_ref().map(|d| d as &dyn Sweep)),
            ("images", self.images.as_ref().map(|i| i as &dyn Sweep)),
            ("head", Some(&self.head)),
            ("train", Some(&self.train)),
            ("eval", Some(&self.eval)),
        ];
        for (name, value) in nested {
            out.push(name.to_string());
            if let Some(value) = value {
                out.extend(value.paths().into_iter().map(|p| format!("{name}.{p}")));
            }
        }
        out
    }
}

/// The first identifier of RON text, after whitespace and comments: the type a file holds.
fn first_identifier(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Turns ron's error into one naming the file and position, with a hint for the common cases.
pub fn parse_error(path: &Path, e: ron::error::SpannedError) -> Error {
    let mut msg = e.code.to_string();
    if msg.contains("Unexpected field")
        || msg.contains("unknown field")
        || msg.contains("NoSuchStructField")
    {
        msg.push_str(
            " — remove it or fix its spelling (see the field list in experiments/base.ron)",
        );
    } else if msg.contains("missing field") || msg.contains("MissingStructField") {
        msg.push_str(" — every field must be given; copy it from experiments/base.ron, or write the file as `Derived(base: \"base.ron\", set: [...])`");
    }
    Error::Parse {
        path: path.to_path_buf(),
        line: e.position.line,
        col: e.position.col,
        msg,
    }
}

/// (De)serialises an optional config bare, as `field: Config(...)` rather than
/// `field: Some(Config(...))`; with `#[serde(default)]` an absent field is `None`.
mod bare_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => v.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }
}
