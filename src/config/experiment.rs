//! One experiment: a RON file composing the configs that live beside the code they configure
//! (data, backbone, head, training, evaluation). Unknown fields are rejected by serde; values are
//! range-checked here so that a bad file fails before anything runs, naming the file, the field,
//! what was expected and how to fix it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::synthetic::SyntheticConfig;
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::eval::EvalConfig;
use crate::heads::class_pool::Capacity;
use crate::heads::f2c::TopK;
use crate::heads::{HeadConfig, Margin};
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

    /// Range checks every field; the first failure is returned naming the field.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, msg: String| Error::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            msg,
        };
        let d = &self.data;
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad(
                "name",
                format!(
                    "`{}` must be non-empty and use only letters, digits, `-`, `_`, `.`",
                    self.name
                ),
            ));
        }
        if d.train_identities < 2 || d.train_identities > 100_000_000 {
            return Err(bad(
                "data.train_identities",
                format!("expected 2 ..= 100000000, got {}", d.train_identities),
            ));
        }
        if d.eval_identities < 2 {
            return Err(bad(
                "data.eval_identities",
                format!("expected at least 2, got {}", d.eval_identities),
            ));
        }
        if d.min_instances < 2 {
            return Err(bad(
                "data.min_instances",
                format!(
                    "every identity needs at least 2 instances, got {}",
                    d.min_instances
                ),
            ));
        }
        if d.max_instances < d.min_instances {
            return Err(bad(
                "data.max_instances",
                format!(
                    "must be ≥ min_instances ({}), got {}",
                    d.min_instances, d.max_instances
                ),
            ));
        }
        if !(0.0..=5.0).contains(&d.tail_exponent) {
            return Err(bad(
                "data.tail_exponent",
                format!("expected 0.0 ..= 5.0, got {}", d.tail_exponent),
            ));
        }
        if d.eval_instances < 2 {
            return Err(bad(
                "data.eval_instances",
                format!("expected at least 2, got {}", d.eval_instances),
            ));
        }
        if d.identity_dim == 0 || d.identity_dim > 64 {
            return Err(bad(
                "data.identity_dim",
                format!("expected 1 ..= 64, got {}", d.identity_dim),
            ));
        }
        if d.nuisance_dim > 64 {
            return Err(bad(
                "data.nuisance_dim",
                format!("expected 0 ..= 64, got {}", d.nuisance_dim),
            ));
        }
        if !(d.nuisance_scale >= 0.0 && d.nuisance_scale <= 10.0) {
            return Err(bad(
                "data.nuisance_scale",
                format!("expected 0.0 ..= 10.0, got {}", d.nuisance_scale),
            ));
        }
        if !(d.noise >= 0.0 && d.noise <= 10.0) {
            return Err(bad(
                "data.noise",
                format!("expected 0.0 ..= 10.0, got {}", d.noise),
            ));
        }
        if !(0.0..0.5).contains(&d.label_noise) {
            return Err(bad(
                "data.label_noise",
                format!("expected 0.0 ..< 0.5, got {}", d.label_noise),
            ));
        }
        check_margin_scale(&self.head, &bad)?;
        match &self.head {
            HeadConfig::Fc { .. } => {}
            HeadConfig::PartialFc { sample_rate, .. } => {
                if !(*sample_rate > 0.0 && *sample_rate <= 1.0) {
                    return Err(bad(
                        "head.sample_rate",
                        format!("expected a fraction in (0, 1], got {sample_rate}"),
                    ));
                }
            }
            HeadConfig::F2c(f) => {
                match f.pool.capacity {
                    Capacity::Fraction(x) if !(x > 0.0 && x <= 1.0) => {
                        return Err(bad(
                            "head.pool.capacity",
                            format!("Fraction must be in (0, 1], got {x}"),
                        ));
                    }
                    Capacity::Count(q) if q == 0 || q > d.train_identities => {
                        return Err(bad(
                            "head.pool.capacity",
                            format!(
                                "Count must be 1 ..= train_identities ({}), got {q}",
                                d.train_identities
                            ),
                        ));
                    }
                    _ => {}
                }
                if !(0.0..=1.0).contains(&f.ema_momentum) {
                    return Err(bad(
                        "head.ema_momentum",
                        format!("expected 0.0 ..= 1.0, got {}", f.ema_momentum),
                    ));
                }
                if let TopK::Fixed(0) = f.top_k {
                    return Err(bad(
                        "head.top_k",
                        "Fixed(k) needs k ≥ 1; use Auto for the reference rule".into(),
                    ));
                }
                let q = f.pool.capacity.slots(d.train_identities);
                let written = self.train.loaders.identities + self.train.loaders.instances / 2;
                if q < written {
                    return Err(bad("head.pool.capacity", format!(
                        "the pool has {q} slots but each step writes {written} gallery features: every step would evict its own identities; raise the capacity or lower train.loaders"
                    )));
                }
                if self.train.loaders.instances % 2 == 1 {
                    return Err(bad("train.loaders.instances", format!("F²C splits instances between probe and gallery: use an even number, got {}", self.train.loaders.instances)));
                }
            }
        }
        let t = &self.train;
        if t.steps == 0 {
            return Err(bad("train.steps", "expected at least 1".into()));
        }
        if t.loaders.batch_size() == 0 {
            return Err(bad(
                "train.loaders",
                "identities and instances are both 0: a step would see no sample".into(),
            ));
        }
        if t.loaders.identities > d.train_identities {
            return Err(bad(
                "train.loaders.identities",
                format!(
                    "more identities per step ({}) than training identities ({})",
                    t.loaders.identities, d.train_identities
                ),
            ));
        }
        if !(t.lr > 0.0 && t.lr <= 10.0) {
            return Err(bad(
                "train.lr",
                format!("expected 0 < lr ≤ 10, got {}", t.lr),
            ));
        }
        if !(0.0..1.0).contains(&t.momentum) {
            return Err(bad(
                "train.momentum",
                format!("expected 0.0 ..< 1.0, got {}", t.momentum),
            ));
        }
        if !(t.weight_decay >= 0.0 && t.weight_decay < 1.0) {
            return Err(bad(
                "train.weight_decay",
                format!("expected 0.0 ..< 1.0, got {}", t.weight_decay),
            ));
        }
        if t.warmup_steps > t.steps {
            return Err(bad(
                "train.warmup_steps",
                format!(
                    "longer than training ({} > {} steps)",
                    t.warmup_steps, t.steps
                ),
            ));
        }
        if let Some(m) = t.milestones.iter().find(|m| !(**m > 0.0 && **m < 1.0)) {
            return Err(bad(
                "train.milestones",
                format!("milestones are fractions of training in (0, 1), got {m}"),
            ));
        }
        if t.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("train.milestones", "milestones must increase".into()));
        }
        if !(t.decay > 0.0 && t.decay <= 1.0) {
            return Err(bad(
                "train.decay",
                format!("expected 0 < decay ≤ 1, got {}", t.decay),
            ));
        }
        self.eval
            .validate()
            .map_err(|e| e.within("eval").at(path))?;
        Ok(())
    }
}

fn check_margin_scale(head: &HeadConfig, bad: &dyn Fn(&str, String) -> Error) -> Result<()> {
    let (margin, scale) = match head {
        HeadConfig::Fc { margin, scale } | HeadConfig::PartialFc { margin, scale, .. } => {
            (*margin, *scale)
        }
        HeadConfig::F2c(f) => (f.margin, f.scale),
    };
    if !(scale > 0.0 && scale <= 128.0) {
        return Err(bad(
            "head.scale",
            format!("expected 0 < s ≤ 128 (reference 32), got {scale}"),
        ));
    }
    match margin {
        Margin::CosFace(m) if !(0.0..=1.0).contains(&m) => Err(bad(
            "head.margin",
            format!("CosFace margin expected in 0.0 ..= 1.0, got {m}"),
        )),
        Margin::ArcFace(m) if !(0.0..=1.5).contains(&m) => Err(bad(
            "head.margin",
            format!("ArcFace margin (radians) expected in 0.0 ..= 1.5, got {m}"),
        )),
        _ => Ok(()),
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
