//! Interrupted runs: a run stopped mid-way and resumed from its checkpoint gives the record of the
//! uninterrupted run (wall-clock fields aside) for every head, and the trained probe network is
//! written as safetensors that the `safetensors` crate reads back as the network.

use std::path::Path;
use std::time::Duration;

use f2c::data::loaders::LoaderConfig;
use f2c::data::synthetic::INPUT_DIM;
use f2c::heads::class_pool::Capacity;
use f2c::heads::{CentreUpdate, HeadConfig};
use f2c::nets::params::{export_params, ParamTensor};
use f2c::nets::probe::Backbone;
use f2c::results::{RunRecord, RunStatus};
use f2c::train::checkpoint::checkpoint_path;
use f2c::train::run::{run_experiment, run_until, CheckpointOptions, RunOptions, RunOutcome};
use f2c::train::{with_trainer, Trainer, TrainerTask};
use f2c::Experiment;

/// A committed experiment shrunk to a second: 120 identities, 40 steps, the small backbone.
fn tiny(file: &str) -> Experiment {
    let mut e = Experiment::load(Path::new(file)).unwrap();
    let d = e.data.as_mut().expect("synthetic data");
    d.train_identities = 120;
    d.eval_identities = 30;
    d.max_instances = 12;
    e.backbone = Backbone::Mlp256x64;
    e.train.steps = 40;
    e.train.warmup_steps = 5;
    match &mut e.head {
        HeadConfig::F2c(f) => {
            f.pool.capacity = Capacity::Fraction(0.25);
            e.train.loaders = LoaderConfig {
                identities: 8,
                instances: 32,
            };
        }
        HeadConfig::Dcq(_) => {
            e.train.loaders = LoaderConfig {
                identities: 12,
                instances: 0,
            }
        }
        HeadConfig::Fc { .. } | HeadConfig::PartialFc { .. } => {}
    }
    e.validate(Path::new(file)).unwrap();
    e
}

/// The record without the fields that measure the process rather than the run: wall clock,
/// memory, and the host↔device traffic averaged over the steps this process trained (a resumed
/// run's are the steps after its checkpoint).
pub(crate) fn without_wall_clock(mut r: RunRecord) -> RunRecord {
    r.wall_time_s = 0.0;
    r.median_step_ms = 0.0;
    r.samples_per_s = 0.0;
    r.peak_memory_bytes = 0;
    r.traffic_per_step = None;
    r
}

/// [`without_wall_clock`], and without where the inputs lived: what must not depend on it.
pub(crate) fn without_staging(r: RunRecord) -> RunRecord {
    RunRecord {
        resident_input_bytes: None,
        ..without_wall_clock(r)
    }
}

fn checkpointing(dir: &Path, every: Duration) -> RunOptions {
    RunOptions {
        checkpoint: Some(CheckpointOptions {
            every,
            ..CheckpointOptions::new(dir)
        }),
        ..RunOptions::default()
    }
}

#[test]
fn stopped_and_resumed_runs_equal_uninterrupted_ones() {
    // Partial FC in both forms: stepping every centre moves no other state, but its checkpoint
    // must still carry centres and momentum that every step changed.
    let mut all_rows = tiny("experiments/pfc.ron");
    if let HeadConfig::PartialFc { update, .. } = &mut all_rows.head {
        *update = CentreUpdate::AllRows;
    }
    let runs = [
        "experiments/fc.ron",
        "experiments/pfc.ron",
        "experiments/f2c.ron",
        "experiments/dcq.ron",
    ]
    .map(|f| (f.to_string(), tiny(f)))
    .into_iter()
    .chain([("experiments/pfc.ron, all rows".to_string(), all_rows)]);
    for (name, exp) in runs {
        let file = name.as_str();
        let whole = run_experiment(&exp, &RunOptions::default()).unwrap();
        assert_eq!(whole.status, RunStatus::Ok, "{file}");

        let dir = tempfile::tempdir().unwrap();
        let path = checkpoint_path(dir.path(), &whole.run_id);
        let stop = RunOptions {
            stop_after: Some(17),
            ..checkpointing(dir.path(), Duration::MAX)
        };
        match run_until(&exp, &stop).unwrap() {
            RunOutcome::Stopped { step, checkpoint } => {
                assert_eq!((step, &checkpoint), (17, &path), "{file}");
            }
            RunOutcome::Finished(_) => panic!("{file}: the run did not stop"),
        }
        // Resumed with a checkpoint after every step, which must not disturb the run either.
        let resumed = run_experiment(&exp, &checkpointing(dir.path(), Duration::ZERO)).unwrap();
        assert!(
            !path.exists(),
            "{file}: a finished run deletes its checkpoint"
        );

        assert_eq!(resumed.metrics, whole.metrics, "{file}");
        assert_eq!(
            resumed.final_loss.to_bits(),
            whole.final_loss.to_bits(),
            "{file}"
        );
        assert_eq!(
            without_wall_clock(resumed),
            without_wall_clock(whole),
            "{file}"
        );
    }
}

#[test]
fn a_checkpoint_of_another_run_is_refused_and_fresh_ignores_it() {
    let exp = tiny("experiments/fc.ron");
    let mut other = exp.clone();
    other.seed += 1;
    let dir = tempfile::tempdir().unwrap();
    let stop = RunOptions {
        stop_after: Some(5),
        ..checkpointing(dir.path(), Duration::MAX)
    };
    let RunOutcome::Stopped { checkpoint, .. } = run_until(&exp, &stop).unwrap() else {
        panic!("the run did not stop");
    };
    let other_id = f2c::results::record::run_id(&other);
    std::fs::rename(&checkpoint, checkpoint_path(dir.path(), &other_id)).unwrap();
    let err = run_experiment(&other, &checkpointing(dir.path(), Duration::MAX)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("checkpoint of run") && msg.contains("--fresh"),
        "{msg}"
    );

    let fresh = RunOptions {
        checkpoint: Some(CheckpointOptions {
            resume: false,
            ..CheckpointOptions::new(dir.path())
        }),
        ..RunOptions::default()
    };
    let rec = run_experiment(&other, &fresh).unwrap();
    assert_eq!(
        without_wall_clock(rec),
        without_wall_clock(run_experiment(&other, &RunOptions::default()).unwrap())
    );
}

/// Takes a few steps on zero inputs, writes the probe and returns its parameters.
struct ExportAfterSteps<'a>(&'a Path);

impl TrainerTask for ExportAfterSteps<'_> {
    type Output = Vec<ParamTensor>;

    fn run<A, const E: usize, D: dfdx::prelude::Device<f32>, B>(
        self,
        mut trainer: Trainer<A, E, D, B>,
        _: f2c::data::TrainingData,
    ) -> f2c::Result<Vec<ParamTensor>>
    where
        A: f2c::nets::network::Network<E, D>,
        B: f2c::heads::backend::Backend,
    {
        let batch = f2c::data::loaders::Batch {
            inputs: (0..4 * INPUT_DIM).map(|i| (i % 7) as f32 - 3.0).collect(),
            labels: vec![0, 1, 2, 3],
            source: vec![f2c::data::loaders::Source::Instance; 4],
            samples: Vec::new(),
        };
        for _ in 0..3 {
            trainer.step(&batch, 0.1)?;
        }
        trainer.export_probe(self.0)?;
        Ok(export_params(trainer.probe()))
    }
}

#[test]
fn probe_exports_as_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("probe.safetensors");
    let exp = tiny("experiments/fc.ron");
    let params = with_trainer(&exp, ExportAfterSteps(&file)).unwrap();

    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(
        names,
        ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
    );
    let expected_shapes = [
        ("0.weight", vec![256, INPUT_DIM]),
        ("0.bias", vec![256]),
        ("2.weight", vec![256, 256]),
        ("2.bias", vec![256]),
        ("4.weight", vec![64, 256]),
        ("4.bias", vec![64]),
    ];
    assert_eq!(params.len(), expected_shapes.len());
    for (p, (name, shape)) in params.iter().zip(expected_shapes) {
        assert_eq!((p.name.as_str(), &p.shape), (name, &shape));
        let view = st.tensor(name).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
        assert_eq!(view.shape(), shape.as_slice(), "{name}");
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, p.values, "{name}");
    }

    // Through the run's option too.
    let mut short = exp;
    short.train.steps = 3;
    let out = dir.path().join("run.safetensors");
    run_experiment(
        &short,
        &RunOptions {
            export_probe: Some(out.clone()),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        safetensors::SafeTensors::deserialize(&bytes)
            .unwrap()
            .tensor("4.weight")
            .unwrap()
            .shape(),
        [64, 256]
    );
}
