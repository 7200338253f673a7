//! Whole training-step throughput per method (data, probe net, second net for F²C and DCQ, head)
//! at one size: the shipped experiments (`experiments/{fc,pfc,f2c,dcq}.ron`) with the identity
//! count and batch size of the benchmark, timed through the trainer's own step on the bench's
//! device.

use crate::data::loaders::LoaderConfig;
use crate::error::Result;
use crate::heads::class_pool::Capacity;
use crate::heads::HeadConfig;
use crate::train::run::time_training_steps;
use crate::Experiment;

/// Throughput of one method's whole training step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainRow {
    /// `fc`, `pfc`, `f2c` or `dcq`.
    pub method: String,
    /// Sample rate (pfc), pool fraction (f2c), queue fraction (dcq), 1 (fc).
    pub param: f64,
    pub classes: usize,
    pub batch: usize,
    pub median_step_s: f64,
    pub samples_per_s: f64,
}

/// The shipped experiments of the methods the bench compares.
const EXPERIMENTS: [&str; 4] = [
    "experiments/fc.ron",
    "experiments/pfc.ron",
    "experiments/f2c.ron",
    "experiments/dcq.ron",
];

/// The shipped experiment `i` resized to `classes` identities and a batch of `batch` samples:
/// FC / Partial FC take instances only, F²C half identity pairs and half instances as shipped,
/// DCQ pairs only.
pub fn bench_experiment(i: usize, classes: usize, batch: usize) -> Result<Experiment> {
    let mut exp = crate::config::embedded::load(EXPERIMENTS[i])?;
    exp.data
        .as_mut()
        .expect("the shipped experiments are synthetic")
        .train_identities = classes;
    exp.train.loaders = match &mut exp.head {
        HeadConfig::F2c(cfg) => {
            if let Capacity::Count(_) = cfg.pool.capacity {
                cfg.pool.capacity = Capacity::Fraction(0.1);
            }
            LoaderConfig {
                identities: batch / 4,
                instances: batch - 2 * (batch / 4),
            }
        }
        HeadConfig::Dcq(_) => LoaderConfig {
            identities: batch / 2,
            instances: 0,
        },
        HeadConfig::Fc { .. } | HeadConfig::PartialFc { .. } => LoaderConfig {
            identities: 0,
            instances: batch,
        },
    };
    Ok(exp)
}

/// Median whole-step time and samples/s of each of `methods`' shipped experiments at `classes`
/// identities.
pub fn training_throughput(
    methods: &[crate::heads::Method],
    classes: usize,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<Vec<TrainRow>> {
    let mut rows = Vec::new();
    for i in 0..EXPERIMENTS.len() {
        let exp = bench_experiment(i, classes, batch)?;
        if !methods.contains(&exp.head.method()) {
            continue;
        }
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
        for i in 0..EXPERIMENTS.len() {
            let exp = bench_experiment(i, 5000, 256).unwrap();
            exp.validate(std::path::Path::new(EXPERIMENTS[i])).unwrap();
            assert_eq!(
                (
                    exp.data.unwrap().train_identities,
                    exp.train.loaders.batch_size()
                ),
                (5000, 256)
            );
        }
    }
}
