//! Partial FC (An et al., "Partial FC: Training 10 Million Identities on a Single Machine";
//! insightface `arcface_torch`): each step uses all positive centres of the batch plus uniformly
//! sampled negatives, r·N centres in all. Which centres the optimiser then moves is the one point
//! where the authors' two releases differ ([`CentreUpdate`]): the original `partial_fc.py` swaps
//! the sampled rows and their momentum into the optimiser, so only they step and no step does
//! work proportional to N·D; `partial_fc_v2.py` keeps all N centres in one parameter of the
//! trainer's SGD, so every centre steps every time — the unsampled ones with a zero loss
//! gradient, under weight decay and momentum alone.

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use super::backend::{Backend, SgdParams};
use super::full_fc::{self, FullFc};
use super::pfc_sampler::{num_sample, sample_classes};
use super::{
    ClassifierHead, HeadColumns, HeadState, Margin, Method, Naming, StepCost, StepInput, StepOutput,
};
use crate::binary::{Parsed, Reader, Writer};
use crate::error::Result;
use crate::numbers::short_number;

/// Which centres a Partial FC step moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CentreUpdate {
    /// Only the sampled centres and their momentum (the original `partial_fc.py`).
    #[default]
    SampledRows,
    /// Every centre: the sampled ones with their loss gradient, the others with none, so weight
    /// decay shrinks them and their momentum carries them on (`partial_fc_v2.py` under
    /// `train_v2.py`'s SGD). O(N·D) memory traffic per step.
    AllRows,
}

impl CentreUpdate {
    /// True for the default, which experiment files may leave out.
    pub fn is_sampled_rows(&self) -> bool {
        *self == CentreUpdate::SampledRows
    }

    /// The summary column's text: `sampled` or `all`.
    pub fn key(&self) -> &'static str {
        match self {
            CentreUpdate::SampledRows => "sampled",
            CentreUpdate::AllRows => "all",
        }
    }
}

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

/// The plan's line: the centres sampled per step at rate `sample_rate` of `classes`, and which
/// of them the optimiser moves.
pub fn describe(sample_rate: f32, update: CentreUpdate, classes: usize) -> String {
    let moved = match update {
        CentreUpdate::SampledRows => "",
        CentreUpdate::AllRows => ", and all N step (the others under weight decay and momentum)",
    };
    format!(
        "Partial FC, r = {sample_rate}: {} of N = {classes} centres per step{moved}",
        num_sample(classes, sample_rate)
    )
}

/// Partial FC's summary columns: its sample rate, and which centres step where not only the
/// sampled ones.
pub fn summary_columns(sample_rate: f32, update: CentreUpdate) -> HeadColumns {
    HeadColumns {
        sample_rate: Some(sample_rate as f64),
        centre_update: (!update.is_sampled_rows()).then(|| update.key().to_string()),
        ..HeadColumns::default()
    }
}

/// Partial FC's name with its rate: `Partial FC r=0.1` in tables, `PFC 0.1` short; `, all rows`
/// and ` all` after it when every centre steps.
pub fn run_name(cols: &HeadColumns, naming: Naming) -> String {
    let label = Method::PartialFc.label();
    let all = cols.centre_update.as_deref() == Some(CentreUpdate::AllRows.key());
    let name = match (cols.sample_rate, naming) {
        (Some(r), Naming::Table) => format!("{label} r={}", short_number(r)),
        (Some(r), Naming::Short) => format!("PFC {}", r as f32),
        (None, _) => label.into(),
    };
    match (all, naming) {
        (false, _) => name,
        (true, Naming::Table) => format!("{name}, all rows"),
        (true, Naming::Short) => format!("{name} all"),
    }
}

/// [`bench_variant`] of the step that moves every centre; the sampled-rows step is the peer's
/// step of the original release, [`super::PEER_STEP`].
pub const ALL_ROWS_STEP: &str = "all-rows";

/// The form of the step the head benchmark times for `update`.
pub fn bench_variant(update: CentreUpdate) -> &'static str {
    match update {
        CentreUpdate::SampledRows => super::PEER_STEP,
        CentreUpdate::AllRows => ALL_ROWS_STEP,
    }
}

/// Partial FC's head-benchmark series at sample rate `param` with the step `variant`, named as
/// its runs are in tables.
pub fn series_name(variant: &str, param: f64) -> String {
    let update = if variant == ALL_ROWS_STEP {
        CentreUpdate::AllRows
    } else {
        CentreUpdate::SampledRows
    };
    run_name(&summary_columns(param as f32, update), Naming::Table)
}

/// A full-FC step over the centres sampled at rate `sample_rate` (at least r·N of them).
pub fn cost(sample_rate: f32, classes: usize, dim: usize, batch: usize) -> StepCost {
    full_fc::cost_over(num_sample(classes, sample_rate), classes, dim, batch)
}

/// A full-FC head trained through a class sample per step.
pub struct PartialFc<B: Backend> {
    centres: FullFc<B>,
    num_sample: usize,
    update: CentreUpdate,
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
            update: CentreUpdate::SampledRows,
            rng: ChaCha12Rng::seed_from_u64(seed ^ 0x05ee_dc1a_55e5),
        })
    }

    /// The head with `update` deciding which centres step (only the sampled ones by default).
    pub fn with_update(mut self, update: CentreUpdate) -> Self {
        self.update = update;
        self
    }

    /// Centres used per step (before adding positives beyond the quota).
    pub fn num_sample(&self) -> usize {
        self.num_sample
    }

    /// One step: sample the classes, then the FC step on those rows, then (when every centre
    /// steps) the zero-gradient step of all the others.
    pub fn step(&mut self, emb: &[f32], labels: &[usize], sgd: &SgdParams) -> Result<StepOutput> {
        let sample = sample_classes(
            labels,
            self.centres.num_classes(),
            self.num_sample,
            &mut self.rng,
        );
        let targets: Vec<i64> = sample.targets.iter().map(|&t| t as i64).collect();
        let rows = self.centres.upload_rows(sample.classes)?;
        let out = self.centres.step_rows(Some(&rows), emb, targets, sgd)?;
        if self.update == CentreUpdate::AllRows {
            self.centres.step_idle_rows(&rows, sgd)?;
        }
        Ok(out)
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
    fn the_default_update_is_left_out_of_the_config_text() {
        // Run ids hash the config's text: experiments written before the field keep theirs.
        let text = "PartialFc(margin: CosFace(0.4), scale: 32.0, sample_rate: 0.1)";
        let sampled: crate::heads::HeadConfig = ron::from_str(text).unwrap();
        assert!(!ron::to_string(&sampled).unwrap().contains("update"));
        let all: crate::heads::HeadConfig = ron::from_str(
            "PartialFc(margin: CosFace(0.4), scale: 32.0, sample_rate: 0.1, update: AllRows)",
        )
        .unwrap();
        assert!(matches!(
            all,
            crate::heads::HeadConfig::PartialFc {
                update: CentreUpdate::AllRows,
                ..
            }
        ));
        assert!(ron::to_string(&all).unwrap().contains("update:AllRows"));
    }

    #[test]
    fn the_bench_names_each_form_as_the_tables_do() {
        for (update, variant, name) in [
            (CentreUpdate::SampledRows, "peer", "Partial FC r=0.1"),
            (
                CentreUpdate::AllRows,
                "all-rows",
                "Partial FC r=0.1, all rows",
            ),
        ] {
            assert_eq!(bench_variant(update), variant);
            assert_eq!(series_name(variant, 0.1), name);
        }
    }

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
