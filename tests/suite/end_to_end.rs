//! End to end on a tiny benchmark: every method trains far above chance, and the same experiment
//! and seed give identical metrics.

use std::path::Path;

use f2c::data::resident::InputStaging::{self, PerStep, Resident};
use f2c::heads::HeadConfig;
use f2c::nets::probe::Backbone;
use f2c::results::RunStatus;
use f2c::train::run::{run_experiment, RunOptions};
use f2c::Experiment;

/// A committed experiment shrunk to seconds: 150 identities, 400 steps, the small backbone, and
/// milder nuisance than the default benchmark (this test asks whether learning works at all, not
/// how hard the benchmark is).
pub(crate) fn tiny(file: &str) -> Experiment {
    let mut e = Experiment::load(Path::new(file)).unwrap();
    let d = e.data.as_mut().expect("synthetic data");
    d.train_identities = 150;
    d.eval_identities = 40;
    d.max_instances = 12;
    d.nuisance_scale = 0.75;
    e.backbone = Backbone::Mlp256x64;
    e.train.steps = 400;
    e.train.warmup_steps = 20;
    if let HeadConfig::F2c(f) = &mut e.head {
        // The pool must hold at least the identities one step writes (8 + 32/2 = 24 ≤ 30 slots).
        f.pool.capacity = f2c::heads::class_pool::Capacity::Fraction(0.2);
        e.train.loaders = f2c::data::loaders::LoaderConfig {
            identities: 8,
            instances: 32,
        };
    }
    if let HeadConfig::Dcq(d) = &mut e.head {
        // The queue must hold the keys one step writes: two steps of them (96 of 150 identities).
        d.queue = f2c::heads::class_pool::Capacity::Count(2 * e.train.loaders.identities);
    }
    e.validate(Path::new(file)).unwrap();
    e
}

#[test]
fn every_committed_method_shrinks_to_a_valid_tiny_experiment() {
    for file in [
        "experiments/fc.ron",
        "experiments/pfc.ron",
        "experiments/f2c.ron",
        "experiments/dcq.ron",
    ] {
        let e = tiny(file);
        assert_eq!(e.data.as_ref().unwrap().train_identities, 150, "{file}");
    }
}

#[test]
fn every_method_beats_chance_by_a_wide_margin() {
    for file in [
        "experiments/fc.ron",
        "experiments/pfc.ron",
        "experiments/f2c.ron",
    ] {
        let exp = tiny(file);
        let rec = run_experiment(&exp, &RunOptions::default()).unwrap();
        assert_eq!(rec.status, RunStatus::Ok, "{file}");
        let m = rec.metrics.unwrap();
        // Chance: TAR@FAR=1e-2 ≈ 0.01, rank-1 = 1/40 = 0.025, accuracy 0.5. "A wide margin" is
        // ten times chance for the first two and 0.7 for the accuracy.
        assert!(m.tar_far_1e2 > 0.1, "{file}: {m:?}");
        assert!(m.rank1 > 0.25, "{file}: {m:?}");
        assert!(m.accuracy > 0.7, "{file}: {m:?}");
        eprintln!("{file}: {m:?}");
        assert!(rec.head_state_bytes > 0 && rec.median_step_ms > 0.0);
    }
}

#[test]
fn same_experiment_and_seed_give_identical_metrics() {
    let mut exp = tiny("experiments/f2c.ron");
    exp.train.steps = 60;
    let a = run_experiment(&exp, &RunOptions::default()).unwrap();
    let b = run_experiment(&exp, &RunOptions::default()).unwrap();
    assert_eq!(a.metrics, b.metrics);
    assert_eq!(a.final_loss, b.final_loss);
    assert_eq!(a.run_id, b.run_id);
    exp.seed += 1;
    let c = run_experiment(&exp, &RunOptions::default()).unwrap();
    assert_ne!(a.metrics, c.metrics, "another seed must change the numbers");
    assert_ne!(a.run_id, c.run_id);
}

#[test]
fn where_the_inputs_live_changes_no_number() {
    // DCQ, and every head on mirrored images, in `image_data`.
    for file in [
        "experiments/fc.ron",
        "experiments/pfc.ron",
        "experiments/f2c.ron",
    ] {
        let mut exp = tiny(file);
        exp.train.steps = 40;
        let run = |inputs: InputStaging| {
            run_experiment(
                &exp,
                &RunOptions {
                    inputs,
                    ..RunOptions::default()
                },
            )
            .unwrap()
        };
        let (kept, uploaded) = (run(Resident), run(PerStep));
        assert!(kept.resident_input_bytes.is_some() && uploaded.resident_input_bytes.is_none());
        assert_eq!(
            crate::checkpoint_resume::without_staging(kept),
            crate::checkpoint_resume::without_staging(uploaded),
            "{file}"
        );
    }
}

#[test]
fn a_diverging_run_is_recorded_as_failed() {
    let mut exp = tiny("experiments/fc.ron");
    exp.train.steps = 30;
    exp.train.lr = 10.0;
    exp.train.warmup_steps = 0;
    exp.train.weight_decay = 0.9;
    if let HeadConfig::Fc { scale, .. } = &mut exp.head {
        *scale = 128.0;
    }
    let rec = run_experiment(&exp, &RunOptions::default()).unwrap();
    // Either it diverges and says so, or (if SGD survives) it finishes: never a silent NaN metric.
    match rec.status {
        RunStatus::Failed(why) => assert!(why.contains("non-finite"), "{why}"),
        RunStatus::Ok => assert!(rec.final_loss.is_finite()),
    }
}

/// The host↔device traffic of a whole step, counted on the CPU as a GPU would move it: for full
/// FC exactly the inputs, the embeddings both ways between the networks and the head, the targets,
/// the loss's per-row parts and the gradient both ways; for F²C, whose head works on the pool's
/// rows only, nothing that grows with the number of identities.
#[test]
fn a_step_moves_only_batch_sized_data_between_host_and_device() {
    use f2c::train::run::time_training_steps;
    let fc = tiny("experiments/fc.ron");
    let b = fc.train.loaders.batch_size() as u64;
    let (input, d) = (f2c::data::synthetic::INPUT_DIM as u64, 64);
    let timed = |e: &Experiment, warmup, steps, inputs| {
        time_training_steps(e, warmup, steps, inputs).unwrap()
    };
    let per_step = timed(&fc, 1, 2, PerStep);
    let t = per_step.traffic;
    // Up: inputs, embeddings to the head, targets (8 B each), the gradient to the probe's tape.
    assert_eq!(
        t.to_device_bytes,
        4 * b * input + 4 * b * d + 8 * b + 4 * b * d
    );
    assert_eq!(t.to_device_copies, 4);
    // Down: embeddings, two loss parts per row, the head's gradient.
    assert_eq!(t.to_host_bytes, 4 * b * d + 8 * b + 4 * b * d);
    assert_eq!(t.to_host_copies, 3);
    assert_eq!(per_step.resident_bytes, None);

    // With the training set on the device, the inputs' place is taken by one row index each.
    let resident = timed(&fc, 1, 2, Resident);
    let r = resident.traffic;
    assert_eq!(r.to_device_bytes, t.to_device_bytes - 4 * b * input + 8 * b);
    assert_eq!(
        (r.to_device_copies, r.to_host_bytes, r.to_host_copies),
        (t.to_device_copies, t.to_host_bytes, t.to_host_copies)
    );
    let faces = f2c::data::synthetic::SyntheticFaces::new(fc.data.as_ref().unwrap(), fc.seed);
    assert_eq!(
        resident.resident_bytes,
        Some(4 * input * faces.num_train_instances() as u64)
    );

    // Partial FC: full FC's traffic and its sample's row list, uploaded once per step in either
    // form: the gather, the sampled centres' step and (all rows) the other centres' step read
    // that one copy.
    let pfc = tiny("experiments/pfc.ron");
    let mut pfc_all = pfc.clone();
    if let HeadConfig::PartialFc { update, .. } = &mut pfc_all.head {
        *update = f2c::heads::CentreUpdate::AllRows;
    }
    let sampled = timed(&pfc, 1, 2, PerStep).traffic;
    assert_eq!(timed(&pfc_all, 1, 2, PerStep).traffic, sampled);
    assert_eq!(sampled.to_device_copies, t.to_device_copies + 1);
    assert!(sampled.to_device_bytes > t.to_device_bytes);
    assert_eq!(
        (sampled.to_host_bytes, sampled.to_host_copies),
        (t.to_host_bytes, t.to_host_copies)
    );

    // F²C's probe and gallery networks read one upload of the batch, not one each.
    let f2c = tiny("experiments/f2c.ron");
    let bf = f2c.train.loaders.batch_size() as u64;
    let (up, kept) = (
        timed(&f2c, 1, 2, PerStep).traffic,
        timed(&f2c, 1, 2, Resident).traffic,
    );
    assert_eq!(
        up.to_device_bytes - kept.to_device_bytes,
        4 * bf * input - 8 * bf
    );

    let mut small = tiny("experiments/f2c.ron");
    let mut large = small.clone();
    large.data.as_mut().unwrap().train_identities *= 4;
    small.train.steps = 50;
    large.train.steps = 50;
    // After the pool has filled (5 steps of 24 new identities fill 30 slots, 120 of 600).
    let traffic = |e: &Experiment| timed(e, 10, 5, PerStep).traffic;
    let (s, l) = (traffic(&small), traffic(&large));
    assert!(s.bytes() > 0);
    assert!(
        l.bytes() <= s.bytes() + s.bytes() / 10,
        "F²C at 4× the identities moves {l:?}, at 1× {s:?}"
    );
}
