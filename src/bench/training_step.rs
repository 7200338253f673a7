//! Whole training-step throughput per method (data, probe net, second net for F²C and DCQ, head)
//! at each size: each method's shipped experiment (`experiments/<key>.ron`) with the identity
//! count and batch size of the benchmark, timed through the trainer's own step on the bench's
//! device, with the bytes the step moves between host and device ([`crate::traffic`]).

use crate::data::resident::InputStaging;
use crate::device::DeviceChoice;
use crate::error::Result;
use crate::heads::Method;
use crate::train::run::time_training_steps;
use crate::Experiment;

/// Throughput of one method's whole training step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainRow {
    /// `fc`, `pfc`, `f2c` or `dcq`.
    pub method: String,
    /// Sample rate (pfc), pool fraction (f2c), queue fraction (dcq), 1 (fc).
    pub param: f64,
    pub classes: usize,
    pub batch: usize,
    pub median_step_s: f64,
    pub samples_per_s: f64,
    /// Bytes copied to the device per step, and in how many copies.
    pub to_device_bytes: u64,
    pub to_device_copies: u64,
    /// Bytes copied back to the host per step, and in how many copies.
    pub to_host_bytes: u64,
    pub to_host_copies: u64,
    /// Bytes of the training set kept on the device (uploaded once, before the timed steps; not
    /// in the per-step bytes); 0 when each batch was uploaded.
    pub resident_bytes: u64,
    /// Fastest timed step, seconds (with the median: the timing's spread). Absent from files
    /// written before it was recorded: then the median.
    #[serde(default)]
    pub min_step_s: Option<f64>,
    /// Bytes of the head's state (centres and momentum, pool, queue) after the timed steps.
    #[serde(default)]
    pub head_state_bytes: Option<u64>,
}

impl TrainRow {
    /// The fastest timed step, or the median where it was not recorded.
    pub fn fastest_step_s(&self) -> f64 {
        self.min_step_s.unwrap_or(self.median_step_s)
    }
}

/// Where the benchmark writes the whole steps, beside `heads.csv`.
pub const TRAINING_CSV: &str = "results/bench/training.csv";

/// Reads a `training.csv` that [`training_throughput`]'s rows were written to.
pub fn read_rows(path: &std::path::Path) -> Result<Vec<TrainRow>> {
    crate::results::csv_rows::read_rows(path, "the columns `f2c bench` writes to training.csv")
}

/// The shipped experiment of `method`: `experiments/<key>.ron`.
pub fn experiment_path(method: Method) -> String {
    format!("experiments/{}.ron", method.key())
}

/// The shipped experiment of `method` on `device`, resized to `classes` identities and a batch of
/// `batch` samples, on the loaders its head trains on at that batch
/// ([`crate::heads::HeadConfig::resize_for_bench`]).
pub fn bench_experiment(
    method: Method,
    device: DeviceChoice,
    classes: usize,
    batch: usize,
) -> Result<Experiment> {
    let mut exp = crate::config::embedded::load(&experiment_path(method))?;
    exp.device = device;
    exp.data
        .as_mut()
        .expect("the shipped experiments are synthetic")
        .train_identities = classes;
    exp.train.loaders = exp.head.resize_for_bench(batch);
    Ok(exp)
}

/// Median whole-step time, samples/s and host↔device traffic of each of `methods`' shipped
/// experiments at `classes` identities on `device`, inputs staged as `inputs` says.
pub fn training_throughput(
    methods: &[Method],
    device: DeviceChoice,
    classes: usize,
    batch: usize,
    warmup: usize,
    steps: usize,
    inputs: InputStaging,
) -> Result<Vec<TrainRow>> {
    let mut rows = Vec::new();
    for method in Method::ALL.into_iter().filter(|m| methods.contains(m)) {
        let exp = bench_experiment(method, device, classes, batch)?;
        let param = exp.head.size_fraction(classes);
        let timed = time_training_steps(&exp, warmup, steps, inputs)?;
        let med = super::head_step::median(&timed.seconds);
        let t = timed.traffic;
        let b = exp.train.loaders.batch_size();
        rows.push(TrainRow {
            method: exp.head.method().to_string(),
            param,
            classes,
            batch: b,
            median_step_s: med,
            samples_per_s: b as f64 / med,
            to_device_bytes: t.to_device_bytes,
            to_device_copies: t.to_device_copies,
            to_host_bytes: t.to_host_bytes,
            to_host_copies: t.to_host_copies,
            resident_bytes: timed.resident_bytes.unwrap_or(0),
            min_step_s: Some(timed.seconds.iter().copied().fold(f64::INFINITY, f64::min)),
            head_state_bytes: Some(timed.head_state_bytes),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiments_resize_to_the_bench_batch() {
        for method in Method::ALL {
            let exp = bench_experiment(method, DeviceChoice::Cpu, 5000, 256).unwrap();
            exp.validate(std::path::Path::new(&experiment_path(method)))
                .unwrap();
            assert_eq!(exp.head.method(), method);
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
