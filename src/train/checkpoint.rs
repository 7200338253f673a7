//! Checkpoints of a training run: everything needed to continue it bit-identically after an
//! interruption — the steps done, the trainer's state (probe and second networks, optimiser
//! velocity, head), where the loaders stand, and the losses and step times so far, so that the
//! record of a resumed run equals an uninterrupted one apart from its wall-clock fields.
//!
//! The file is `<dir>/<run_id>.ckpt`, written atomically (temporary file + rename), in a compact
//! little-endian binary layout: the magic `F2C-CKPT`, a format version (u32), then the sections
//! in the order of [`Checkpoint`]'s fields ([`crate::binary`]). Counts and integers are u64, values
//! f32 (parameters, features) or f64 (losses, times), strings a u64 length and UTF-8 bytes. The
//! head's section is its method's tag and what the method's file writes ([`HeadState::write`]).
//! A checkpoint names its run id, and a run refuses one whose id differs from its experiment's.

use std::path::{Path, PathBuf};

use crate::binary::{Parsed, Reader, Writer};
use crate::data::loaders::LoaderState;
use crate::error::{Error, Result};
use crate::heads::HeadState;
use crate::nets::params::ParamTensor;
use crate::results::record::write_atomic;
use crate::train::step::TrainerState;

const MAGIC: &[u8; 8] = b"F2C-CKPT";
const VERSION: u32 = 1;

/// A run's state after `step` steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The run id of the experiment ([`crate::results::record::run_id`]).
    pub run_id: String,
    /// Training steps done; the resumed run starts at this step.
    pub step: usize,
    /// Wall seconds the run had spent when the checkpoint was taken.
    pub elapsed_s: f64,
    /// The loss of each step done.
    pub losses: Vec<f64>,
    /// The wall seconds of each step done.
    pub step_times: Vec<f64>,
    /// Where the dual loaders stand.
    pub loader: LoaderState,
    /// Networks, optimiser velocity and head.
    pub trainer: TrainerState,
}

/// Where the checkpoint of run `run_id` lives in `dir`: `<dir>/<run_id>.ckpt`.
pub fn checkpoint_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.ckpt"))
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically: an interruption leaves the previous one whole.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes())
    }

    /// Reads a checkpoint written by [`Checkpoint::write_atomic`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes).map_err(|msg| {
            Error::Other(format!(
                "{}: not a usable checkpoint: {msg}; delete it or train with --fresh",
                path.display()
            ))
        })
    }

    /// Reads the checkpoint of `run_id` at `path`, refusing one of another run.
    pub fn read_for(path: &Path, run_id: &str) -> Result<Self> {
        let ckpt = Self::read(path)?;
        if ckpt.run_id != run_id {
            return Err(Error::Other(format!(
                "{}: checkpoint of run `{}`, but this experiment is run `{run_id}`; delete it or \
                 train with --fresh",
                path.display(),
                ckpt.run_id
            )));
        }
        Ok(ckpt)
    }

    /// The binary layout described in the module documentation.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.0.extend_from_slice(&VERSION.to_le_bytes());
        w.str(&self.run_id);
        w.u64(self.step as u64);
        w.f64s(&[self.elapsed_s]);
        w.f64s(&self.losses);
        w.f64s(&self.step_times);
        w.u64(self.loader.identity.0);
        w.u64(self.loader.identity.1);
        w.opt(self.loader.instance.as_ref(), |w, &(pass, pos)| {
            w.u64(pass);
            w.u64(pos);
        });
        let t = &self.trainer;
        write_params(&mut w, &t.probe);
        write_params(&mut w, &t.velocity);
        w.opt(t.second.as_ref(), |w, p| write_params(w, p));
        t.head.write(&mut w);
        w.0
    }

    /// Parses [`Checkpoint::to_bytes`]; the error says what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(8)? != MAGIC {
            return Err("it does not start with F2C-CKPT".into());
        }
        let version = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(format!(
                "format version {version}, this build reads version {VERSION}"
            ));
        }
        let run_id = r.str()?;
        let step = r.u64()? as usize;
        let elapsed_s = r.f64s()?.first().copied().ok_or("no elapsed time")?;
        let losses = r.f64s()?;
        let step_times = r.f64s()?;
        let identity = (r.u64()?, r.u64()?);
        let instance = r.opt(|r| Ok((r.u64()?, r.u64()?)))?;
        let probe = read_params(&mut r)?;
        let velocity = read_params(&mut r)?;
        let second = r.opt(read_params)?;
        let head = HeadState::read(&mut r)?;
        if r.at != bytes.len() {
            return Err(format!("{} bytes left over", bytes.len() - r.at));
        }
        if losses.len() != step || step_times.len() != step {
            return Err(format!(
                "{} losses and {} step times for {step} steps",
                losses.len(),
                step_times.len()
            ));
        }
        Ok(Checkpoint {
            run_id,
            step,
            elapsed_s,
            losses,
            step_times,
            loader: LoaderState { identity, instance },
            trainer: TrainerState {
                probe,
                velocity,
                second,
                head,
            },
        })
    }
}

/// Writes a network's parameters: their count, then each one's name, shape and values.
fn write_params(w: &mut Writer, params: &[ParamTensor]) {
    w.u64(params.len() as u64);
    for p in params {
        w.str(&p.name);
        w.usizes(&p.shape);
        w.f32s(&p.values);
    }
}

/// Reads what [`write_params`] wrote.
fn read_params(r: &mut Reader) -> Parsed<Vec<ParamTensor>> {
    let n = r.count(8)?;
    (0..n)
        .map(|_| {
            Ok(ParamTensor {
                name: r.str()?,
                shape: r.usizes()?,
                values: r.f32s()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::class_pool::SlotMapState;
    use crate::heads::partial_fc::SamplerState;

    fn sample(head: HeadState, second: bool) -> Checkpoint {
        let p = |v: f32| ParamTensor {
            name: "0.weight".into(),
            shape: vec![2, 1],
            values: vec![v, -0.0],
        };
        Checkpoint {
            run_id: "f2c-tiny-0123456789ab".into(),
            step: 2,
            elapsed_s: 1.5,
            losses: vec![3.0, f64::MIN_POSITIVE],
            step_times: vec![0.25, 0.5],
            loader: LoaderState {
                identity: (1, 7),
                instance: Some((0, 99)),
            },
            trainer: TrainerState {
                probe: vec![p(1.0)],
                velocity: vec![p(f32::EPSILON)],
                second: second.then(|| vec![p(2.0)]),
                head,
            },
        }
    }

    fn heads() -> Vec<HeadState> {
        vec![
            HeadState::Fc {
                weight: vec![1.0, 2.0],
                velocity: vec![0.5, -0.5],
            },
            HeadState::PartialFc {
                weight: vec![1.0],
                velocity: vec![0.0],
                sampler: SamplerState {
                    seed: [7; 32],
                    stream: 3,
                    word_pos: u128::MAX - 5,
                },
            },
            HeadState::F2c {
                features: vec![vec![0.1; 4], vec![0.2; 4]],
                map: SlotMapState {
                    identity_of: vec![5, 9],
                    next_row: vec![1, 0],
                    recency: vec![1, 0],
                },
            },
            HeadState::Dcq {
                queue: vec![0.3; 6],
                labels: vec![None, Some(4), Some(0)],
                pointer: 2,
            },
        ]
    }

    #[test]
    fn round_trips_every_head() {
        for (i, head) in heads().into_iter().enumerate() {
            let ckpt = sample(head, i % 2 == 0);
            let bytes = ckpt.to_bytes();
            let back = Checkpoint::from_bytes(&bytes).unwrap();
            assert_eq!(back, ckpt);
            // Bit patterns survive, the sign of zero included.
            assert_eq!(
                back.trainer.probe[0].values[1].to_bits(),
                (-0.0f32).to_bits()
            );
        }
    }

    #[test]
    fn head_states_keep_their_layout() {
        // Each state's bytes written out by hand from the module documentation's layout, so that
        // moving the encoding cannot change what earlier checkpoints hold.
        let u = |x: u64| x.to_le_bytes().to_vec();
        let f = |xs: &[f32]| {
            let mut b = u(xs.len() as u64);
            xs.iter().for_each(|x| b.extend(x.to_le_bytes()));
            b
        };
        let want: Vec<Vec<u8>> = vec![
            [u(0), f(&[1.0, 2.0]), f(&[0.5, -0.5])].concat(),
            [
                u(1),
                f(&[1.0]),
                f(&[0.0]),
                vec![7; 32],
                u(3),
                (u128::MAX - 5).to_le_bytes().to_vec(),
            ]
            .concat(),
            [
                u(2),
                u(2),
                f(&[0.1; 4]),
                f(&[0.2; 4]),
                [u(2), u(5), u(9)].concat(),
                [u(2), vec![1, 0]].concat(),
                [u(2), u(1), u(0)].concat(),
            ]
            .concat(),
            [u(3), f(&[0.3; 6]), u(3), u(u64::MAX), u(4), u(0), u(2)].concat(),
        ];
        for (head, want) in heads().iter().zip(want) {
            let mut w = Writer::default();
            head.write(&mut w);
            assert_eq!(w.0, want, "{:?}", head.method());
        }
    }

    #[test]
    fn damaged_files_are_refused() {
        let bytes = sample(heads().remove(0), false).to_bytes();
        for cut in [0, 5, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                Checkpoint::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Checkpoint::from_bytes(&longer)
            .unwrap_err()
            .contains("left over"));
        let mut other = bytes;
        other[0] = b'X';
        assert!(Checkpoint::from_bytes(&other).is_err());
    }

    #[test]
    fn another_runs_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = checkpoint_path(dir.path(), "f2c-tiny-0123456789ab");
        sample(heads().remove(2), true).write_atomic(&path).unwrap();
        assert!(Checkpoint::read_for(&path, "f2c-tiny-0123456789ab").is_ok());
        let err = Checkpoint::read_for(&path, "fc-tiny-ffffffffffff").unwrap_err();
        assert!(
            err.to_string()
                .contains("checkpoint of run `f2c-tiny-0123456789ab`"),
            "{err}"
        );
        assert!(err.to_string().contains("--fresh"), "{err}");
    }
}
