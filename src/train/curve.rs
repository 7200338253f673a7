//! Learning curves: one experiment trained as a run would be, its evaluated network
//! ([`Trainer::embed`]) scored every K steps on the validation split of the training population
//! (or, when asked, on the held-out test identities), so that a training length can be chosen
//! where every method has plateaued, without looking at the test identities.
//!
//! A curve is a CSV of [`CurveRow`]s; [`plateau`] reads where it flattens and [`plot`] draws
//! TAR@FAR=1e-3 against epochs for several curves (one line per method).

use std::path::Path;

use dfdx::prelude::*;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::feed::DeviceFeed;
use super::run::step_bar;
use super::step::{with_trainer, Trainer, TrainerTask};
use crate::data::resident::InputStaging;
use crate::data::TrainingData;
use crate::error::{Error, Result};
use crate::eval::protocol::evaluate;
use crate::eval::EvalSplit;
use crate::heads::backend::Backend;
use crate::nets::network::Network;
use crate::report::figures::{legend_line, line_figure, plot_err};
use crate::Experiment;

/// Which held-out identities a curve is scored on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Split {
    /// The validation identities of the training population (`data.validation_identities`):
    /// the split to choose hyperparameters and training lengths on.
    #[default]
    Validation,
    /// The held-out evaluation identities the reported results rest on.
    Test,
}

/// Options of a learning curve that are not part of the experiment.
#[derive(Debug, Clone)]
pub struct CurveOptions {
    /// Evaluate after every `every` steps (and after the last one); ≥ 1.
    pub every: usize,
    /// The identities to score on.
    pub split: Split,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Print the resolved plan ([`super::run::describe_plan`]) on stderr before training.
    pub plan: bool,
}

/// One evaluated point of a learning curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    /// Optimiser steps taken (0 = the untrained network).
    pub step: usize,
    /// Passes over the training instances: steps × samples per step / training instances.
    pub epoch: f64,
    /// Learning rate of the last step taken (of the first one at step 0).
    pub lr: f32,
    /// Mean training loss over the steps since the previous point (NaN at step 0).
    pub loss: f64,
    #[serde(rename = "tar_far_1e-2")]
    pub tar_far_1e2: f64,
    #[serde(rename = "tar_far_1e-3")]
    pub tar_far_1e3: f64,
    #[serde(rename = "tar_far_1e-4")]
    pub tar_far_1e4: f64,
    pub rank1: f64,
}

/// Trains `exp` for its `train.steps` and returns its learning curve: a row at step 0, after
/// every `opts.every` steps, and after the last step. The data, loaders, trainer and evaluation
/// seeds are those of a run of `exp`, so the last row's test metrics are the run's.
pub fn learning_curve(exp: &Experiment, opts: &CurveOptions) -> Result<Vec<CurveRow>> {
    if opts.every == 0 {
        return Err(Error::Other(
            "curve: --every must be at least 1 step".into(),
        ));
    }
    if opts.split == Split::Validation && exp.validation_identities() == 0 {
        return Err(Error::Other(format!(
            "curve: experiment `{}` holds out no validation identities; set \
             `data.validation_identities` (e.g. (\"data.validation_identities\", \"400\") in a \
             Derived file), or score on the test identities with --split test",
            exp.name
        )));
    }
    with_trainer(exp, Curve { exp, opts })
}

struct Curve<'a> {
    exp: &'a Experiment,
    opts: &'a CurveOptions,
}

impl TrainerTask for Curve<'_> {
    type Output = Vec<CurveRow>;

    fn run<A: Network<E, D>, const E: usize, D: Device<f32>, B: Backend>(
        self,
        mut trainer: Trainer<A, E, D, B>,
        mut data: TrainingData,
    ) -> Result<Vec<CurveRow>> {
        let (exp, opts) = (self.exp, self.opts);
        if opts.plan {
            eprintln!("{}", super::run::describe_plan(exp, &data));
        }
        let (x, labels) = data.split_set(match opts.split {
            Split::Validation => EvalSplit::Validation,
            Split::Test => EvalSplit::Test,
        })?;
        let steps = exp.train.steps;
        let samples_per_step = exp.train.loaders.batch_size();
        let instances = data.num_train_instances();
        let epoch = |step: usize| (step * samples_per_step) as f64 / instances as f64;
        let score = |trainer: &Trainer<A, E, D, B>, step: usize, lr: f32, loss: f64| {
            let m = evaluate(&trainer.embed(&x), E, &labels, &exp.eval, exp.seed);
            CurveRow {
                step,
                epoch: epoch(step),
                lr,
                loss,
                tar_far_1e2: m.tar_far_1e2,
                tar_far_1e3: m.tar_far_1e3,
                tar_far_1e4: m.tar_far_1e4,
                rank1: m.rank1,
            }
        };

        let feed = DeviceFeed::new(
            InputStaging::Auto,
            &data,
            trainer.device(),
            A::INPUT_LEN,
            (steps * samples_per_step) as u64,
        )?;
        let bar = step_bar(&exp.name, steps, opts.progress);

        let mut rows = vec![score(&trainer, 0, exp.train.lr_at(0), f64::NAN)];
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        for step in 0..steps {
            let lr = exp.train.lr_at(step);
            let loss = feed.step(&mut data, &mut trainer, lr)?.loss.total();
            if !loss.is_finite() {
                return Err(Error::Diverged {
                    step,
                    msg: format!("non-finite loss {loss}"),
                });
            }
            loss_sum += loss;
            loss_n += 1;
            bar.inc(1);
            let done = step + 1;
            if done % opts.every == 0 || done == steps {
                let row = score(&trainer, done, lr, loss_sum / loss_n as f64);
                bar.set_message(format!(
                    "loss {:.4}  TAR@1e-3 {:.2}%",
                    row.loss,
                    100.0 * row.tar_far_1e3
                ));
                rows.push(row);
                (loss_sum, loss_n) = (0.0, 0);
            }
        }
        bar.finish_and_clear();
        Ok(rows)
    }
}

/// Writes `rows` as CSV with the header
/// `step,epoch,lr,loss,tar_far_1e-2,tar_far_1e-3,tar_far_1e-4,rank1`, creating the folder.
pub fn write_csv(rows: &[CurveRow], path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut w = csv::Writer::from_path(path).map_err(|e| csv_err(path, e))?;
    for row in rows {
        w.serialize(row).map_err(|e| csv_err(path, e))?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

/// Reads a curve written by [`write_csv`].
pub fn read_csv(path: &Path) -> Result<Vec<CurveRow>> {
    let mut r = csv::Reader::from_path(path).map_err(|e| csv_err(path, e))?;
    let rows = r
        .deserialize()
        .collect::<std::result::Result<Vec<CurveRow>, _>>()
        .map_err(|e| csv_err(path, e))?;
    if rows.is_empty() {
        return Err(Error::Other(format!(
            "{}: no rows; is it a learning curve written by `f2c curve`?",
            path.display()
        )));
    }
    Ok(rows)
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    Error::Other(format!("{}: learning-curve CSV: {e}", path.display()))
}

/// Gain of TAR@FAR=1e-3 (absolute, 0.01 = one point) below which a curve counts as flat.
pub const PLATEAU_GAIN: f64 = 0.01;

/// The step where the curve's TAR@FAR=1e-3 stops improving: `None` when it still gains at least
/// one point ([`PLATEAU_GAIN`]) over the last quarter of training (from the first point at or
/// after 3/4 of the last step to the best point after it) — train longer; otherwise the first
/// evaluated step that no later point beats by a point or more.
pub fn plateau(rows: &[CurveRow]) -> Option<usize> {
    let last = rows.last()?;
    let gain_after = |i: usize| {
        let best = rows[i + 1..]
            .iter()
            .map(|r| r.tar_far_1e3)
            .fold(f64::NEG_INFINITY, f64::max);
        best - rows[i].tar_far_1e3
    };
    let quarter = rows.iter().position(|r| 4 * r.step >= 3 * last.step)?;
    if gain_after(quarter) >= PLATEAU_GAIN {
        return None;
    }
    (0..rows.len())
        .find(|&i| gain_after(i) < PLATEAU_GAIN)
        .map(|i| rows[i].step)
}

/// One line on a curve: its plateau (step and epoch) and its last point's TAR@FAR=1e-3.
pub fn summary_line(name: &str, rows: &[CurveRow]) -> String {
    let Some(last) = rows.last() else {
        return format!("{name}: empty curve");
    };
    let flat = match plateau(rows) {
        Some(step) => {
            let epoch = rows
                .iter()
                .find(|r| r.step == step)
                .map_or(0.0, |r| r.epoch);
            format!("plateau at step {step} (epoch {epoch:.2})")
        }
        None => format!(
            "no plateau: still gaining ≥ {:.0} point over the last quarter; train longer",
            100.0 * PLATEAU_GAIN
        ),
    };
    format!(
        "{name}: {flat}; final TAR@FAR=1e-3 {:.2}% at step {} (epoch {:.2})",
        100.0 * last.tar_far_1e3,
        last.step,
        last.epoch
    )
}

/// Line colours, in the order of the curves: the Okabe–Ito palette, distinguishable with the
/// common colour-vision deficiencies and legible on white.
const LINE_COLORS: [RGBColor; 7] = [
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(0, 158, 115),
    RGBColor(0, 0, 0),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// Draws TAR@FAR=1e-3 (%) against epochs, one line per `(name, curve)`, to an SVG at `path`.
pub fn plot(curves: &[(String, Vec<CurveRow>)], path: &Path) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| plot_err(path, e);
    if curves.is_empty() || curves.iter().any(|(_, rows)| rows.is_empty()) {
        return Err(Error::Other(
            "curve --plot: every curve needs at least one row".into(),
        ));
    }
    let points = || curves.iter().flat_map(|(_, rows)| rows.iter());
    let x_max = points().map(|r| r.epoch).fold(0.0, f64::max).max(1e-9);
    let y_max = points().map(|r| 100.0 * r.tar_far_1e3).fold(0.0, f64::max);
    let y_max = (y_max * 1.08).clamp(1.0, 100.0);
    line_figure(path, "Learning curves", 0.0..x_max, 0.0..y_max, |chart| {
        chart
            .configure_mesh()
            .x_desc("epochs")
            .y_desc("TAR@FAR=1e-3 (%)")
            .x_label_formatter(&|x| format!("{x:.1}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .light_line_style(BLACK.mix(0.04))
            .draw()
            .map_err(|e| err(&e))?;
        for (k, (name, rows)) in curves.iter().enumerate() {
            let color = LINE_COLORS[k % LINE_COLORS.len()];
            let line = rows.iter().map(|r| (r.epoch, 100.0 * r.tar_far_1e3));
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(name.as_str())
                .legend(legend_line(color));
            chart
                .draw_series(line.map(|p| Circle::new(p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(tars: &[(usize, f64)]) -> Vec<CurveRow> {
        tars.iter()
            .map(|&(step, tar)| CurveRow {
                step,
                epoch: step as f64 / 100.0,
                lr: 0.1,
                loss: 1.0,
                tar_far_1e2: tar,
                tar_far_1e3: tar,
                tar_far_1e4: tar,
                rank1: tar,
            })
            .collect()
    }

    #[test]
    fn plateau_is_the_first_step_no_later_point_beats_by_a_point() {
        // Rises to 0.60 at step 400, then within half a point: flat from 400.
        let r = rows(&[
            (0, 0.0),
            (100, 0.30),
            (200, 0.50),
            (300, 0.58),
            (400, 0.60),
            (500, 0.605),
            (600, 0.598),
            (700, 0.604),
            (800, 0.601),
        ]);
        assert_eq!(plateau(&r), Some(400));
        // 0.595 at 300 is within a point of everything after it: flat from 300.
        let r = rows(&[(0, 0.0), (100, 0.5), (200, 0.58), (300, 0.595), (400, 0.60)]);
        assert_eq!(plateau(&r), Some(300));
    }

    #[test]
    fn still_rising_in_the_last_quarter_has_no_plateau() {
        // From step 600 (3/4 of 800) to the best after it: 0.70 → 0.72, two points.
        let r = rows(&[
            (0, 0.0),
            (200, 0.5),
            (400, 0.65),
            (600, 0.70),
            (700, 0.71),
            (800, 0.72),
        ]);
        assert_eq!(plateau(&r), None);
        // A drop at the end is not a gain: flat from 400.
        let r = rows(&[(0, 0.0), (200, 0.5), (400, 0.70), (600, 0.705), (800, 0.69)]);
        assert_eq!(plateau(&r), Some(400));
        assert_eq!(plateau(&[]), None);
        // A single point is trivially flat.
        assert_eq!(plateau(&rows(&[(0, 0.1)])), Some(0));
    }

    /// experiments/tiny.ron cut to 60 steps.
    fn tiny() -> Experiment {
        let mut e = Experiment::load(Path::new("experiments/tiny.ron")).expect("tiny.ron loads");
        e.train.steps = 60;
        e
    }

    /// Points at 0, every K and the last step; the last test-split point is the run's own
    /// evaluation (same data, trainer and seeds), and a second curve is identical.
    #[test]
    fn curve_points_and_the_last_one_is_the_run() {
        let exp = tiny();
        let opts = CurveOptions {
            every: 25,
            split: Split::Test,
            progress: false,
            plan: false,
        };
        let rows = learning_curve(&exp, &opts).expect("trains");
        let steps: Vec<usize> = rows.iter().map(|r| r.step).collect();
        assert_eq!(steps, [0, 25, 50, 60]);
        let faces =
            crate::data::synthetic::SyntheticFaces::new(exp.data.as_ref().unwrap(), exp.seed);
        let per_step = exp.train.loaders.batch_size() as f64;
        assert_eq!(
            rows[3].epoch,
            60.0 * per_step / faces.num_train_instances() as f64
        );
        assert!(rows[0].loss.is_nan() && rows[1..].iter().all(|r| r.loss.is_finite()));
        assert_eq!(rows[3].lr, exp.train.lr_at(59));
        let rec = crate::train::run::run_experiment(&exp, &Default::default()).expect("runs");
        let m = rec.metrics.expect("evaluated");
        assert_eq!(
            (rows[3].tar_far_1e3, rows[3].rank1),
            (m.tar_far_1e3, m.rank1)
        );
        // Loss at step 0 is NaN, which equals nothing: compare from step 25 on.
        let again = learning_curve(&exp, &opts).expect("trains again");
        assert_eq!(again[1..], rows[1..]);
        assert_eq!(again[0].tar_far_1e3, rows[0].tar_far_1e3);
    }

    #[test]
    fn validation_split_is_required_and_scored() {
        let mut exp = tiny();
        let opts = CurveOptions {
            every: 30,
            split: Split::Validation,
            progress: false,
            plan: false,
        };
        let msg = learning_curve(&exp, &opts).unwrap_err().to_string();
        assert!(msg.contains("data.validation_identities"), "{msg}");
        exp.data.as_mut().unwrap().validation_identities = 30;
        let val = learning_curve(&exp, &opts).expect("trains");
        let test = learning_curve(
            &exp,
            &CurveOptions {
                split: Split::Test,
                ..opts
            },
        )
        .expect("trains");
        assert_eq!(val.len(), 3);
        // Same training, different identities scored.
        assert_eq!(val[2].loss, test[2].loss);
        assert_ne!(val[2].tar_far_1e2, test[2].tar_far_1e2);
    }

    #[test]
    fn csv_round_trips_with_the_documented_header() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/curve.csv");
        let mut r = rows(&[(0, 0.0), (100, 0.25)]);
        r[0].loss = f64::NAN;
        write_csv(&r, &path).expect("writes");
        let text = std::fs::read_to_string(&path).expect("reads");
        assert_eq!(
            text.lines().next(),
            Some("step,epoch,lr,loss,tar_far_1e-2,tar_far_1e-3,tar_far_1e-4,rank1")
        );
        let back = read_csv(&path).expect("parses");
        assert!(back[0].loss.is_nan());
        assert_eq!(back[1], r[1]);
        let svg = dir.path().join("fig.svg");
        plot(&[("a".into(), r.clone()), ("b".into(), r)], &svg).expect("draws");
        assert!(std::fs::read_to_string(&svg).expect("svg").contains("<svg"));
    }
}
