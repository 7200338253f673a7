//! Checkpoints of a training run: everything needed to continue it bit-identically after an
//! interruption — the steps done, the trainer's state (probe and second networks, optimiser
//! velocity, head), where the loaders stand, and the losses and step times so far, so that the
//! record of a resumed run equals an uninterrupted one apart from its wall-clock fields.
//!
//! The file is `<dir>/<run_id>.ckpt`, written atomically (temporary file + rename), in a compact
//! little-endian binary layout: the magic `F2C-CKPT`, a format version (u32), then the sections
//! in the order of [`Checkpoint`]'s fields. Counts and integers are u64, values f32 (parameters,
//! features) or f64 (losses, times), strings a u64 length and UTF-8 bytes. A checkpoint names its
//! run id, and a run refuses one whose id differs from its experiment's.

use std::path::{Path, PathBuf};

use crate::data::loaders::LoaderState;
use crate::error::{Error, Result};
use crate::heads::class_pool::SlotMapState;
use crate::heads::partial_fc::SamplerState;
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
        w.params(&t.probe);
        w.params(&t.velocity);
        w.opt(t.second.as_ref(), |w, p| w.params(p));
        match &t.head {
            HeadState::Fc { weight, velocity } => {
                w.u64(0);
                w.f32s(weight);
                w.f32s(velocity);
            }
            HeadState::PartialFc {
                weight,
                velocity,
                sampler,
            } => {
                w.u64(1);
                w.f32s(weight);
                w.f32s(velocity);
                w.0.extend_from_slice(&sampler.seed);
                w.u64(sampler.stream);
                w.0.extend_from_slice(&sampler.word_pos.to_le_bytes());
            }
            HeadState::F2c { features, map } => {
                w.u64(2);
                w.u64(features.len() as u64);
                features.iter().for_each(|f| w.f32s(f));
                w.usizes(&map.identity_of);
                w.u64(map.next_row.len() as u64);
                w.0.extend_from_slice(&map.next_row);
                w.usizes(&map.recency);
            }
            HeadState::Dcq {
                queue,
                labels,
                pointer,
            } => {
                w.u64(3);
                w.f32s(queue);
                // u64::MAX stands for the random initial rows, which have no label.
                let labels: Vec<u64> = labels
                    .iter()
                    .map(|l| l.map_or(u64::MAX, |l| l as u64))
                    .collect();
                w.u64(labels.len() as u64);
                labels.iter().for_each(|&l| w.u64(l));
                w.u64(*pointer as u64);
            }
        }
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
        let probe = r.params()?;
        let velocity = r.params()?;
        let second = r.opt(|r| r.params())?;
        let head = match r.u64()? {
            0 => HeadState::Fc {
                weight: r.f32s()?,
                velocity: r.f32s()?,
            },
            1 => HeadState::PartialFc {
                weight: r.f32s()?,
                velocity: r.f32s()?,
                sampler: SamplerState {
                    seed: r.take(32)?.try_into().expect("32 bytes"),
                    stream: r.u64()?,
                    word_pos: u128::from_le_bytes(r.take(16)?.try_into().expect("16 bytes")),
                },
            },
            2 => {
                let rows = r.count(8)?;
                let features = (0..rows)
                    .map(|_| r.f32s())
                    .collect::<std::result::Result<_, _>>()?;
                let identity_of = r.usizes()?;
                let n = r.count(1)?;
                let next_row = r.take(n)?.to_vec();
                let recency = r.usizes()?;
                HeadState::F2c {
                    features,
                    map: SlotMapState {
                        identity_of,
                        next_row,
                        recency,
                    },
                }
            }
            3 => {
                let queue = r.f32s()?;
                let n = r.count(8)?;
                let labels = (0..n)
                    .map(|_| Ok(r.u64()?).map(|l| (l != u64::MAX).then_some(l as usize)))
                    .collect::<std::result::Result<_, String>>()?;
                HeadState::Dcq {
                    queue,
                    labels,
                    pointer: r.u64()? as usize,
                }
            }
            tag => return Err(format!("unknown head tag {tag}")),
        };
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

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, x: u64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn f32s(&mut self, xs: &[f32]) {
        self.u64(xs.len() as u64);
        self.0.reserve(4 * xs.len());
        xs.iter()
            .for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
    }

    fn f64s(&mut self, xs: &[f64]) {
        self.u64(xs.len() as u64);
        xs.iter()
            .for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
    }

    fn usizes(&mut self, xs: &[usize]) {
        self.u64(xs.len() as u64);
        xs.iter().for_each(|&x| self.u64(x as u64));
    }

    fn opt<T>(&mut self, x: Option<&T>, f: impl FnOnce(&mut Self, &T)) {
        match x {
            Some(x) => {
                self.0.push(1);
                f(self, x);
            }
            None => self.0.push(0),
        }
    }

    fn params(&mut self, params: &[ParamTensor]) {
        self.u64(params.len() as u64);
        for p in params {
            self.str(&p.name);
            self.usizes(&p.shape);
            self.f32s(&p.values);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Parsed<T> = std::result::Result<T, String>;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Parsed<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u64(&mut self) -> Parsed<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A count of items of `size` bytes each, checked against what is left (a corrupt count
    /// must not allocate without bound).
    fn count(&mut self, size: usize) -> Parsed<usize> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n.saturating_mul(size as u64) > left {
            return Err(format!(
                "a count of {n} at byte {} exceeds the file",
                self.at - 8
            ));
        }
        Ok(n as usize)
    }

    fn str(&mut self) -> Parsed<String> {
        let n = self.count(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a name is not UTF-8".into())
    }

    fn f32s(&mut self) -> Parsed<Vec<f32>> {
        let n = self.count(4)?;
        Ok(self
            .take(4 * n)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    fn f64s(&mut self) -> Parsed<Vec<f64>> {
        let n = self.count(8)?;
        Ok(self
            .take(8 * n)?
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    fn usizes(&mut self) -> Parsed<Vec<usize>> {
        let n = self.count(8)?;
        (0..n).map(|_| Ok(self.u64()? as usize)).collect()
    }

    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<Option<T>> {
        match self.take(1)?[0] {
            0 => Ok(None),
            1 => f(self).map(Some),
            b => Err(format!("bad presence byte {b} at byte {}", self.at - 1)),
        }
    }

    fn params(&mut self) -> Parsed<Vec<ParamTensor>> {
        let n = self.count(8)?;
        (0..n)
            .map(|_| {
                Ok(ParamTensor {
                    name: self.str()?,
                    shape: self.usizes()?,
                    values: self.f32s()?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
