//! Whole training-step throughput per method (data, probe net, second net for F²C and DCQ, head)
//! at each size: each method's shipped experiment (`experiments/<key>.ron`) with the identity
//! count and batch size of the benchmark, timed through the trainer's own step on the bench's
//! device, with the bytes the step moves between host and device ([`crate::traffic`]).

use crate::data::resident::InputStaging;
use crate::device::DeviceChoice;
use crate::error::Result;
use crate::heads::partial_fc::CentreUpdate;
use crate::heads::{HeadConfig, Method};
use crate::train::run::time_training_steps;
use crate::Experiment;

/// Throughput of one method's whole training step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainRow {
    /// `fc`, `pfc`, `f2c` or `dcq`.
    pub method: String,
    /// Sample rate (pfc), pool fraction (f2c), queue fraction (dcq), 1 (fc).
    pub param: f64,
    /// The form of the method's step ([`HeadConfig::bench_variant`]). Empty in files written
    /// before it was recorded, which timed each method's shipped form only.
    #[serde(default)]
    pub variant: String,
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
    /// The run's name as the head benchmark names its series ([`Method::series_name`]); the
    /// method's key where it is not one.
    pub fn label(&self) -> String {
        match self.method.parse::<Method>() {
            Ok(m) => m.series_name(&self.variant, self.param),
            Err(_) => self.method.clone(),
        }
    }

    /// The fastest timed step, or the median where it was not recorded.
    pub fn fastest_step_s(&self) -> f64 {
        self.min_step_s.unwrap_or(self.median_step_s)
    }
}

/// Where the benchmark writes the whole steps, beside `heads.csv`.
pub const TRAINING_CSV: &str = "results/bench/training.csv";

/// Reads a `training.csv` that the benchmark's whole steps were written to.
pub fn read_rows(path: &std::path::Path) -> Result<Vec<TrainRow>> {
    crate::results::csv_rows::read_rows(path, "the columns `f2c bench` writes to training.csv")
}

/// The shipped experiment of `method`: `experiments/<key>.ron`.
pub fn experiment_path(method: Method) -> String {
    format!("experiments/{}.ron", method.key())
}

/// The shipped experiment of `method` on `device`, resized to `classes` identities and a batch of
/// `batch` samples, on the loaders its head trains on at that batch
/// ([`HeadConfig::resize_for_bench`]); for Partial FC, also the same experiment in the other form
/// of its centres' update ([`CentreUpdate`]), whose cost differs at large N.
pub fn bench_experiments(
    method: Method,
    device: DeviceChoice,
    classes: usize,
    batch: usize,
) -> Result<Vec<Experiment>> {
    let mut exp = crate::config::embedded::load(&experiment_path(method))?;
    exp.device = device;
    exp.data
        .as_mut()
        .expect("the shipped experiments are synthetic")
        .train_identities = classes;
    exp.train.loaders = exp.head.resize_for_bench(batch);
    let mut forms = vec![exp.clone()];
    if let HeadConfig::PartialFc { update, .. } = &mut exp.head {
        *update = match update {
            CentreUpdate::SampledRows => CentreUpdate::AllRows,
            CentreUpdate::AllRows => CentreUpdate::SampledRows,
        };
        forms.push(exp);
    }
    Ok(forms)
}

/// Median whole-step time, samples/s and host↔device traffic of `exp` (one of
/// [`bench_experiments`]) at `classes` identities, inputs staged as `inputs` says.
pub fn time_whole_step(
    exp: &Experiment,
    classes: usize,
    warmup: usize,
    steps: usize,
    inputs: InputStaging,
) -> Result<TrainRow> {
    let param = exp.head.size_fraction(classes);
    let timed = time_training_steps(exp, warmup, steps, inputs)?;
    let med = super::head_step::median(&timed.seconds);
    let t = timed.traffic;
    let b = exp.train.loaders.batch_size();
    Ok(TrainRow {
        method: exp.head.method().to_string(),
        param,
        variant: exp.head.bench_variant().to_string(),
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::partial_fc::ALL_ROWS_STEP;
    use crate::heads::PEER_STEP;

    #[test]
    fn experiments_resize_to_the_bench_batch() {
        for method in Method::ALL {
            let forms = bench_experiments(method, DeviceChoice::Cpu, 5000, 256).unwrap();
            for exp in &forms {
                exp.validate(std::path::Path::new(&experiment_path(method)))
                    .unwrap();
                assert_eq!(exp.head.method(), method);
                let data = exp.data.as_ref().unwrap();
                assert_eq!(
                    (data.train_identities, exp.train.loaders.batch_size()),
                    (5000, 256)
                );
            }
            // Partial FC's two updates each once, the shipped form first; one form elsewhere.
            let variants: Vec<&str> = forms.iter().map(|e| e.head.bench_variant()).collect();
            match method {
                Method::PartialFc => assert_eq!(variants, [PEER_STEP, ALL_ROWS_STEP]),
                _ => assert_eq!(variants.len(), 1),
            }
        }
    }
}
