//! Whole training-step throughput per method (data, probe net, EMA gallery net for F²C, head) at
//! one size: the three shipped experiments (`experiments/{fc,pfc,f2c}.ron`) with the identity count
//! and batch size of the benchmark, timed through the trainer's own step.

use crate::error::Result;
use crate::heads::class_pool::Capacity;
use crate::heads::HeadConfig;
use crate::train::run::time_training_steps;
use crate::Experiment;

/// Throughput of one method's whole training step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainRow {
    /// `fc`, `pfc` or `f2c`.
    pub method: String,
    /// Sample rate (pfc), pool fraction (f2c), 1 (fc).
    pub param: f64,
    pub classes: usize,
    pub batch: usize,
    pub median_step_s: f64,
    pub samples_per_s: f64,
}

/// The shipped experiment files, compiled in so that the benchmark runs from any directory.
const EXPERIMENTS: [(&str, &str); 3] = [
    (
        "experiments/fc.ron",
        include_str!("../../experiments/fc.ron"),
    ),
    (
        "experiments/pfc.ron",
        include_str!("../../experiments/pfc.ron"),
    ),
    (
        "experiments/f2c.ron",
        include_str!("../../experiments/f2c.ron"),
    ),
];

/// The shipped experiment `i` resized to `classes` identities and a batch of `batch` samples
/// (FC / Partial FC: instance loader only; F²C: half identity pairs, half instances, as shipped).
pub fn bench_experiment(i: usize, classes: usize, batch: usize) -> Result<Experiment> {
    let (path, text) = EXPERIMENTS[i];
    let mut exp = Experiment::from_ron_str(text, std::path::Path::new(path))?;
    exp.data.train_identities = classes;
    match &mut exp.head {
        HeadConfig::F2c(cfg) => {
            exp.train.loaders.identities = batch / 4;
            exp.train.loaders.instances = batch - 2 * (batch / 4);
            cfg.pool.capacity = match cfg.pool.capacity {
                Capacity::Fraction(f) => Capacity::Fraction(f),
                Capacity::Count(_) => Capacity::Fraction(0.1),
            };
        }
        _ => {
            exp.train.loaders.identities = 0;
            exp.train.loaders.instances = batch;
        }
    }
    Ok(exp)
}

/// Median whole-step time and samples/s of each shipped method at `classes` identities.
pub fn training_throughput(
    classes: usize,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<Vec<TrainRow>> {
    let mut rows = Vec::new();
    for i in 0..EXPERIMENTS.len() {
        let exp = bench_experiment(i, classes, batch)?;
        let param = exp.head.size_fraction(classes);
        let times = time_training_steps(&exp, warmup, steps)?;
        let med = super::head_step::median(&times);
        let b = exp.train.loaders.batch_size();
        rows.push(TrainRow {
            method: exp.head.method().to_string(),
            param,
            classes,
            batch: b,
            median_step_s: med,
            samples_per_s: b as f64 / med,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiments_resize_to_the_bench_batch() {
        for i in 0..3 {
            let exp = bench_experiment(i, 5000, 256).unwrap();
            assert_eq!(
                (exp.data.train_identities, exp.train.loaders.batch_size()),
                (5000, 256)
            );
        }
    }
}
