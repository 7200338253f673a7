//! How a training loop's batches reach the trainer's device: uploaded step by step, or picked
//! from the training set kept on the device ([`crate::data::resident`]). Either way the step sees
//! the same rows, so the choice changes a run's speed and traffic, never its numbers.

use dfdx::prelude::*;

use crate::data::resident::{InputStaging, ResidentInputs};
use crate::data::TrainingData;
use crate::error::Result;
use crate::heads::backend::Backend;
use crate::nets::network::Network;
use crate::train::step::{StepReport, Trainer};

/// The batches of one training loop on device `D`.
pub struct DeviceFeed<D: Device<f32>> {
    resident: Option<ResidentInputs<D>>,
}

impl<D: Device<f32>> DeviceFeed<D> {
    /// Decides by `staging` for a loop that draws `samples` training samples of `data` in all,
    /// with rows of `row_len` floats; a resident set is rendered or decoded and uploaded now (one
    /// copy, counted as traffic of the caller's current tally).
    pub fn new(
        staging: InputStaging,
        data: &TrainingData,
        dev: &D,
        row_len: usize,
        samples: u64,
    ) -> Result<Self> {
        let resident = if staging.resident(&data.resident_size(row_len), samples) {
            let layout = data.resident_layout(row_len);
            let host = data.render_all(&layout)?;
            Some(ResidentInputs::upload(dev, layout, host))
        } else {
            None
        };
        Ok(DeviceFeed { resident })
    }

    /// Bytes of the training set kept on the device, if it is.
    pub fn resident_bytes(&self) -> Option<u64> {
        self.resident.as_ref().map(|r| r.layout().bytes())
    }

    /// One training step of `trainer` at learning rate `lr` on the next batch of `data`.
    pub fn step<A: Network<E, D>, const E: usize, B: Backend>(
        &self,
        data: &mut TrainingData,
        trainer: &mut Trainer<A, E, D, B>,
        lr: f32,
    ) -> Result<StepReport> {
        match &self.resident {
            None => trainer.step(data.next_batch()?, lr),
            Some(resident) => {
                let batch = data.next_rows()?;
                let x = resident.gather(trainer.device(), batch);
                trainer.step_on(x, batch, lr)
            }
        }
    }
}
