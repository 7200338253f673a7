//! Partial FC (An et al., "Partial FC: Training 10 Million Identities on a Single Machine";
//! insightface `arcface_torch/partial_fc_v2.py`): each step uses all positive centres of the batch
//! plus uniformly sampled negatives, r·N centres in all, and reads and updates only those rows —
//! momentum included (the sub-weight / sub-momentum swap of the original Partial FC), so no step
//! does work proportional to N·D.

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;

use super::backend::{Backend, SgdParams};
use super::full_fc::{self, FullFc};
use super::pfc_sampler::{num_sample, sample_classes};
use super::{
    ClassifierHead, HeadColumns, HeadState, Margin, Method, Naming, StepCost, StepInput, StepOutput,
};
use crate::binary::{Parsed, Reader, Writer};
use crate::error::Result;
use crate::numbers::short_number;

/// Writes the centres as FC does, then where the class sampler's generator stands.
pub fn write_state(w: &mut Writer, weight: &[f32], velocity: &[f32], sampler: &SamplerState) {
    full_fc::write_state(w, weight, velocity);
    w.bytes(&sampler.seed);
    w.u64(sampler.stream);
    w.bytes(&sampler.word_pos.to_le_bytes());
}

/// Reads what [`write_state`] wrote.
pub fn read_state(r: &mut Reader) -> Parsed<HeadState> {
    Ok(HeadState::PartialFc {
        weight: r.f32s()?,
        velocity: r.f32s()?,
        sampler: SamplerState {
            seed: r.take(32)?.try_into().expect("32 bytes"),
            stream: r.u64()?,
            word_pos: u128::from_le_bytes(r.take(16)?.try_into().expect("16 bytes")),
        },
    })
}

/// The plan's line: the centres sampled per step at rate `sample_rate` of `classes`.
pub fn describe(sample_rate: f32, classes: usize) -> String {
    format!(
        "Partial FC, r = {sample_rate}: {} of N = {classes} centres per step",
        num_sample(classes, sample_rate)
    )
}

/// Partial FC's summary column: its sample rate.
pub fn summary_columns(sample_rate: f32) -> HeadColumns {
    HeadColumns {
        sample_rate: Some(sample_rate as f64),
        ..HeadColumns::default()
    }
}

/// Partial FC's name with its rate: `Partial FC r=0.1` in tables, `PFC 0.1` short.
pub fn run_name(cols: &HeadColumns, naming: Naming) -> String {
    let label = Method::PartialFc.label();
    match (cols.sample_rate, naming) {
        (Some(r), Naming::Table) => format!("{label} r={}", short_number(r)),
        (Some(r), Naming::Short) => format!("PFC {}", r as f32),
        (None, _) => label.into(),
    }
}

/// Partial FC's head-benchmark series at sample rate `param`.
pub fn series_name(param: f64) -> String {
    format!("Partial FC r={param}")
}

/// A full-FC step over the centres sampled at rate `sample_rate` (at least r·N of them).
pub fn cost(sample_rate: f32, classes: usize, dim: usize, batch: usize) -> StepCost {
    full_fc::cost_over(num_sample(classes, sample_rate), classes, dim, batch)
}

/// A full-FC head trained through a class sample per step.
pub struct PartialFc<B: Backend> {
    centres: FullFc<B>,
    num_sample: usize,
    /// The class sampler's generator: rand's `StdRng` is this generator behind a wrapper that
    /// hides its position, so it is named directly to be saved (same seed, same numbers).
    rng: ChaCha12Rng,
}

/// Where the class sampler's generator stands: its seed, stream and word position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerState {
    pub seed: [u8; 32],
    pub stream: u64,
    pub word_pos: u128,
}

impl<B: Backend> PartialFc<B> {
    /// N centres, sample rate r; `seed` drives both the initialisation and the class sampling.
    pub fn new(
        be: B,
        num_classes: usize,
        dim: usize,
        margin: Margin,
        scale: f32,
        sample_rate: f32,
        seed: u64,
    ) -> Result<Self> {
        Ok(PartialFc {
            centres: FullFc::new(be, num_classes, dim, margin, scale, seed)?,
            num_sample: num_sample(num_classes, sample_rate),
            rng: ChaCha12Rng::seed_from_u64(seed ^ 0x05ee_dc1a_55e5),
        })
    }

    /// Centres used per step (before adding positives beyond the quota).
    pub fn num_sample(&self) -> usize {
        self.num_sample
    }

    /// One step: sample the classes, then the FC step on those rows only.
    pub fn step(&mut self, emb: &[f32], labels: &[usize], sgd: &SgdParams) -> Result<StepOutput> {
        let sample = sample_classes(
            labels,
            self.centres.num_classes(),
            self.num_sample,
            &mut self.rng,
        );
        let targets: Vec<i64> = sample.targets.iter().map(|&t| t as i64).collect();
        self.centres
            .step_rows(Some(&sample.classes), emb, &targets, sgd)
    }

    /// The current centres, (N, D), on the host.
    pub fn weights(&self) -> Result<Vec<f32>> {
        self.centres.weights()
    }
}

impl<B: Backend> ClassifierHead<B> for PartialFc<B> {
    fn step(&mut self, input: &StepInput<'_>) -> Result<StepOutput> {
        PartialFc::step(self, input.probe, input.labels, input.sgd)
    }

    /// The centres and their momentum for all N classes, as for FC.
    fn state_bytes(&self) -> u64 {
        self.centres.state_bytes()
    }

    fn save_state(&self) -> Result<HeadState> {
        let (weight, velocity) = self.centres.centres_state()?;
        Ok(HeadState::PartialFc {
            weight,
            velocity,
            sampler: SamplerState {
                seed: self.rng.get_seed(),
                stream: self.rng.get_stream(),
                word_pos: self.rng.get_word_pos(),
            },
        })
    }

    fn load_state(&mut self, state: &HeadState) -> Result<()> {
        match state {
            HeadState::PartialFc {
                weight,
                velocity,
                sampler,
            } => {
                self.centres.load_centres(weight, velocity)?;
                let mut rng = ChaCha12Rng::from_seed(sampler.seed);
                rng.set_stream(sampler.stream);
                rng.set_word_pos(sampler.word_pos);
                self.rng = rng;
                Ok(())
            }
            other => Err(other.wrong_method(Method::PartialFc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, RngCore};

    use super::*;

    #[test]
    fn chacha12_is_std_rng() {
        // The sampler's numbers did not change when StdRng was replaced by its generator.
        let mut a = rand::rngs::StdRng::seed_from_u64(99);
        let mut b = ChaCha12Rng::seed_from_u64(99);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert_eq!(a.gen_range(0..1000usize), b.gen_range(0..1000usize));
        }
    }

    #[test]
    fn restored_generator_continues_the_sequence() {
        let mut a = ChaCha12Rng::seed_from_u64(5);
        for _ in 0..37 {
            a.next_u32(); // an odd number of words: mid-block
        }
        let mut b = ChaCha12Rng::from_seed(a.get_seed());
        b.set_stream(a.get_stream());
        b.set_word_pos(a.get_word_pos());
        let next: Vec<u64> = (0..50).map(|_| a.next_u64()).collect();
        assert_eq!(next, (0..50).map(|_| b.next_u64()).collect::<Vec<_>>());
    }
}
