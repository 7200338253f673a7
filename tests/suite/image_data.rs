//! Training on face images end to end, without downloading anything: a small image folder of
//! generated faces (each identity a pattern of its own, each image a shifted, noisy copy) trains
//! the tiny CNN with every head, evaluates open-set on held-out identities, and resumes from a
//! checkpoint to the uninterrupted record (batch-norm running statistics included). When the ORL
//! faces are present (`bash scripts/fetch-orl.sh`; CI fetches them) a short run on them must
//! beat the untrained network.

use std::path::Path;

use f2c::data::images::{ImageLayout, ImagesConfig};
use f2c::data::loaders::LoaderConfig;
use f2c::heads::class_pool::Capacity;
use f2c::heads::HeadConfig;
use f2c::results::RunStatus;
use f2c::train::run::{run_experiment, run_until, CheckpointOptions, RunOptions, RunOutcome};
use f2c::Experiment;

use f2c::data::resident::InputStaging;

use crate::checkpoint_resume::{without_staging, without_wall_clock};

/// Writes `ids` identities × `per` 112×112 grey PGMs under `root`.
fn write_faces(root: &Path, ids: usize, per: usize) {
    for id in 0..ids {
        let dir = root.join(format!("person{id:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..per {
            let mut img = b"P5\n112 112\n255\n".to_vec();
            for y in 0..112usize {
                for x in 0..112usize {
                    // An identity's pattern: two sinusoids of its own frequencies and phase,
                    // shifted a little per image, with per-pixel noise.
                    let (xs, ys) = ((x + k) as f64, (y + 2 * k) as f64);
                    let f1 = 0.05 + 0.013 * id as f64;
                    let f2 = 0.07 + 0.011 * ((id * 7) % 13) as f64;
                    let v = (xs * f1 + id as f64).sin() + (ys * f2 - 0.5 * id as f64).cos();
                    let noise = ((x * 31 + y * 17 + k * 101 + id * 7) % 23) as f64 / 23.0 - 0.5;
                    img.push((128.0 + 50.0 * v + 20.0 * noise).clamp(0.0, 255.0) as u8);
                }
            }
            std::fs::write(dir.join(format!("{k:02}.pgm")), img).unwrap();
        }
    }
}

/// The shipped ORL experiment of `method` pointed at `root`, shrunk to seconds.
fn on_faces(file: &str, root: &Path) -> Experiment {
    let mut e = Experiment::load(Path::new(file)).unwrap();
    e.images = Some(ImagesConfig {
        root: root.to_path_buf(),
        layout: ImageLayout::Folder,
        eval_identities: 4,
        validation_identities: 0,
        eval_instances: None,
        flip: true,
        pairs: None,
    });
    e.train.steps = 6;
    e.train.warmup_steps = 2;
    match &mut e.head {
        HeadConfig::F2c(f) => {
            f.pool.capacity = Capacity::Count(6);
            e.train.loaders = LoaderConfig {
                identities: 2,
                instances: 4,
            };
        }
        HeadConfig::Dcq(d) => {
            d.queue = Capacity::Count(4);
            e.train.loaders = LoaderConfig {
                identities: 4,
                instances: 0,
            };
        }
        HeadConfig::Fc { .. } | HeadConfig::PartialFc { .. } => {
            e.train.loaders = LoaderConfig {
                identities: 0,
                instances: 8,
            };
        }
    }
    e.validate(Path::new(file)).unwrap();
    e
}

#[test]
fn every_head_trains_the_cnn_on_images_and_resumes_identically() {
    let faces = tempfile::tempdir().unwrap();
    write_faces(faces.path(), 12, 4);
    for file in [
        "experiments/orl-fc.ron",
        "experiments/orl-pfc.ron",
        "experiments/orl-f2c.ron",
        "experiments/orl-dcq.ron",
    ] {
        let exp = on_faces(file, faces.path());
        let whole = run_experiment(&exp, &RunOptions::default()).unwrap();
        assert_eq!(whole.status, RunStatus::Ok, "{file}");
        assert_eq!(whole.train_identities, Some(8), "{file}");
        let m = whole.metrics.unwrap();
        // 4 held-out identities × 4 images: 24 genuine pairs, 96 impostor pairs.
        assert_eq!((m.genuine_pairs, m.impostor_pairs), (24, 96), "{file}");
        assert!(whole.final_loss.is_finite(), "{file}");
        // 48 samples drawn from 32 training images: the set stays on the device, each image
        // as is and mirrored; uploading every batch instead trains the same run.
        assert_eq!(
            whole.resident_input_bytes,
            Some(2 * 32 * 112 * 112 * 4),
            "{file}"
        );
        let per_step = run_experiment(
            &exp,
            &RunOptions {
                inputs: InputStaging::PerStep,
                ..RunOptions::default()
            },
        )
        .unwrap();
        assert_eq!(per_step.resident_input_bytes, None, "{file}");
        assert_eq!(
            without_staging(per_step),
            without_staging(whole.clone()),
            "{file}: inputs on the device ≠ inputs uploaded per step"
        );

        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            checkpoint: Some(CheckpointOptions::new(dir.path())),
            stop_after: Some(3),
            ..RunOptions::default()
        };
        assert!(matches!(
            run_until(&exp, &opts).unwrap(),
            RunOutcome::Stopped { step: 3, .. }
        ));
        let resumed = run_experiment(
            &exp,
            &RunOptions {
                stop_after: None,
                ..opts
            },
        )
        .unwrap();
        assert_eq!(
            without_wall_clock(resumed),
            without_wall_clock(whole),
            "{file}: resumed ≠ uninterrupted"
        );
    }
}

#[test]
fn a_missing_folder_and_a_wrong_backbone_fail_clearly() {
    let mut exp = Experiment::load(Path::new("experiments/orl-f2c.ron")).unwrap();
    exp.images.as_mut().unwrap().root = "no/such/faces".into();
    let msg = run_experiment(&exp, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("no/such/faces") && msg.contains("no such folder"),
        "{msg}"
    );

    let text = std::fs::read_to_string("experiments/orl-f2c.ron").unwrap();
    let text = text.replace(
        "(\"name\", \"orl-f2c\"),",
        "(\"name\", \"x\"), (\"backbone\", \"Mlp256x64\"),",
    );
    let msg = Experiment::from_ron_str(&text, Path::new("experiments/orl-f2c.ron"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("backbone") && msg.contains("TinyIResNet"),
        "{msg}"
    );
}

#[test]
fn orl_faces_train_when_fetched() {
    let root = Path::new("data/orl");
    if !root.join("s40").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI fetches the ORL faces (bash scripts/fetch-orl.sh) before the tests"
        );
        eprintln!("skipped: data/orl absent (bash scripts/fetch-orl.sh fetches it)");
        return;
    }
    let mut exp = Experiment::load(Path::new("experiments/orl-f2c.ron")).unwrap();
    exp.train.steps = 40;
    exp.train.warmup_steps = 5;
    let rec = run_experiment(&exp, &RunOptions::default()).unwrap();
    let m = rec.metrics.expect("trained");
    let untrained = {
        let mut e = exp.clone();
        e.train.steps = 1;
        e.train.lr = 1e-6;
        e.train.warmup_steps = 0;
        run_experiment(&e, &RunOptions::default())
            .unwrap()
            .metrics
            .unwrap()
    };
    assert_eq!((m.genuine_pairs, m.impostor_pairs), (450, 4500));
    assert!(
        m.tar_far_1e2 > untrained.tar_far_1e2 + 0.05,
        "40 steps on ORL: TAR@FAR=1e-2 {:.3}, untrained {:.3}",
        m.tar_far_1e2,
        untrained.tar_far_1e2
    );
}

#[test]
fn an_image_experiment_serialises_without_synthetic_data_and_round_trips() {
    let exp = Experiment::load(Path::new("experiments/orl-f2c.ron")).unwrap();
    assert!(exp.data.is_none());
    let ron = exp.to_ron();
    assert!(
        ron.contains("images: ImagesConfig(") && !ron.contains("data:"),
        "{ron}"
    );
    let back = Experiment::from_ron_str(&ron, Path::new("x.ron")).unwrap();
    assert_eq!(back, exp);
    let json = serde_json::to_string(&exp).unwrap();
    assert_eq!(serde_json::from_str::<Experiment>(&json).unwrap(), exp);

    // The two kinds of data are alternatives: setting one whole removes the other.
    use f2c::config::sweep::Sweep;
    let synthetic = Experiment::load(Path::new("experiments/f2c.ron")).unwrap();
    let mut e = exp.clone();
    let data = ron::ser::to_string(synthetic.data.as_ref().unwrap()).unwrap();
    e.set_path("data", &data).unwrap();
    assert!(e.images.is_none() && e.data == synthetic.data);
    let err = e.set_path("images.flip", "false").unwrap_err();
    assert!(err.msg.contains("images"), "{}", err.msg);
    let images = ron::ser::to_string(exp.images.as_ref().unwrap()).unwrap();
    e.set_path("images", &images).unwrap();
    assert!(e.data.is_none() && e.images == exp.images);
    e.set_path("images.eval_identities", "5").unwrap();
    assert_eq!(e.images.as_ref().unwrap().eval_identities, 5);

    // Both, or neither: refused at load time.
    let both = synthetic
        .to_ron()
        .replacen("data:", &format!("images: {images},\n    data:"), 1);
    let msg = Experiment::from_ron_str(&both, Path::new("both.ron"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("not both"), "{msg}");
}

/// Writes an insightface-style pack without a header record: one MXNet RecordIO frame per image
/// (magic, length, IRHeader `<IfQQ` with the identity as label, the image bytes, zero padding),
/// and the `.idx` of key → offset. Payloads hold no magic word, so no record is split.
fn write_pack(dir: &Path, ids: usize, per: usize) {
    let faces = tempfile::tempdir().unwrap();
    write_faces(faces.path(), ids, per);
    let (mut rec, mut idx) = (Vec::new(), String::new());
    let mut key = 0u64;
    for id in 0..ids {
        for k in 0..per {
            let image = std::fs::read(
                faces
                    .path()
                    .join(format!("person{id:02}"))
                    .join(format!("{k:02}.pgm")),
            )
            .unwrap();
            let mut data = Vec::new();
            data.extend(0u32.to_le_bytes()); // flag: one label
            data.extend((id as f32).to_le_bytes());
            data.extend(key.to_le_bytes());
            data.extend(0u64.to_le_bytes());
            data.extend(&image);
            idx.push_str(&format!("{key}\t{}\n", rec.len()));
            rec.extend(0xced7_230au32.to_le_bytes());
            rec.extend((data.len() as u32).to_le_bytes()); // cflag 0: a whole record
            rec.extend(&data);
            rec.resize(rec.len().next_multiple_of(4), 0);
            key += 1;
        }
    }
    std::fs::write(dir.join("train.rec"), rec).unwrap();
    std::fs::write(dir.join("train.idx"), idx).unwrap();
}

#[test]
fn a_recordio_pack_trains_like_the_same_faces_in_folders() {
    let pack = tempfile::tempdir().unwrap();
    write_pack(pack.path(), 12, 4);
    let folders = tempfile::tempdir().unwrap();
    write_faces(folders.path(), 12, 4);
    let from_pack = {
        let mut e = on_faces("experiments/orl-f2c.ron", pack.path());
        e.images.as_mut().unwrap().layout = ImageLayout::RecordIo;
        run_experiment(&e, &RunOptions::default()).unwrap()
    };
    let from_folders = run_experiment(
        &on_faces("experiments/orl-f2c.ron", folders.path()),
        &RunOptions::default(),
    )
    .unwrap();
    // Same images in the same identity order (labels 0..12, folders person00..person11): the
    // same split, batches and numbers.
    assert_eq!(from_pack.status, RunStatus::Ok);
    assert_eq!(from_pack.metrics, from_folders.metrics);
    assert_eq!(from_pack.final_loss, from_folders.final_loss);
}
