//! Partial FC (An et al., "Partial FC: Training 10 Million Identities on a Single Machine";
//! insightface `arcface_torch/partial_fc_v2.py`): each step uses all positive centres of the batch
//! plus uniformly sampled negatives, r·N centres in all, and reads and updates only those rows —
//! momentum included (the sub-weight / sub-momentum swap of the original Partial FC), so no step
//! does work proportional to N·D.

use rand::SeedableRng;

use super::backend::{Backend, SgdParams};
use super::full_fc::FullFc;
use super::pfc_sampler::{num_sample, sample_classes};
use super::{ClassifierHead, Margin, StepInput, StepOutput};
use crate::error::Result;

/// A full-FC head trained through a class sample per step.
pub struct PartialFc<B: Backend> {
    centres: FullFc<B>,
    num_sample: usize,
    rng: rand::rngs::StdRng,
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
            rng: rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed_c1a5_5e5),
        })
    }

    /// Centres used per step (before adding positives beyond the quota).
    pub fn num_sample(&self) -> usize {
        self.num_sample
    }

    /// Bytes of head state: centres and momentum for all N classes, as for FC.
    pub fn state_bytes(&self) -> u64 {
        self.centres.state_bytes()
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

    fn state_bytes(&self) -> u64 {
        PartialFc::state_bytes(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
