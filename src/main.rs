//! The `f2c` command line: a thin layer over the library. One exit point prints the whole error
//! chain and exits non-zero.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// F²C reproduction suite: train and compare full FC, Partial FC and F²C on a synthetic
/// identity benchmark.
#[derive(Parser)]
#[command(name = "f2c", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one experiment, evaluate it open-set and write its record under results/. The run
    /// checkpoints to <out>/<run_id>.ckpt and, started again after an interruption, resumes there.
    Train {
        /// Experiment file (RON), e.g. experiments/fc.ron.
        experiment: PathBuf,
        /// Override the experiment's device: `cpu`, `cuda` or `cuda:N`.
        #[arg(long)]
        device: Option<String>,
        /// Override the experiment's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Set a field, as a matrix axis would: `--set train.steps=5800` (repeatable).
        #[arg(long = "set", value_name = "PATH=RON")]
        sets: Vec<String>,
        /// Directory for the record.
        #[arg(long, default_value = "results/train")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Retrain and compare with the committed record in --out instead of writing one; exits
        /// non-zero unless the metrics are reproduced.
        #[arg(long)]
        verify: bool,
        /// With --verify: largest accepted metric difference, in percentage points (0 = bit-identical).
        #[arg(long, default_value_t = 0.0)]
        tolerance: f64,
        /// Start from step 0 even if a checkpoint of this run exists (it is overwritten).
        #[arg(long)]
        fresh: bool,
        /// Wall seconds between checkpoints.
        #[arg(long, default_value_t = 300)]
        checkpoint_every: u64,
        /// Also write the trained probe network as safetensors to this file.
        #[arg(long, value_name = "FILE.safetensors")]
        export_probe: Option<PathBuf>,
        /// Where the training inputs live: `auto` keeps the training set on the device when it
        /// takes at most 2 GiB and the run draws all of it, `resident` always, `per-step` never
        /// (the numbers are the same; speed and host↔device traffic differ).
        #[arg(long, value_enum, default_value_t = f2c::data::resident::InputStaging::Auto)]
        inputs: f2c::data::resident::InputStaging,
    },
    /// Run an ablation matrix (default ablations/default.ron), resumably, then regenerate the
    /// paper's tables and figures from its results (after the tuning or scale study, from
    /// results/default, which reads the study's results beside it).
    Ablate {
        /// Matrix file (RON).
        #[arg(default_value = "ablations/default.ron")]
        matrix: PathBuf,
        /// List the runs and whether each is done, without training.
        #[arg(long)]
        dry_run: bool,
        /// Retrain runs recorded as failed (after fixing their cause).
        #[arg(long)]
        retry_failed: bool,
        /// Root folder of the results (runs go to <results>/<matrix name>/).
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Do not regenerate paper/ afterwards.
        #[arg(long)]
        no_tables: bool,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
        /// Runs trained side by side (results do not depend on it; step times do).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Retrain the matrix (or the runs of --seeds) into target/verify/ and compare each run
        /// with its committed record; exits non-zero unless all are reproduced.
        #[arg(long)]
        verify: bool,
        /// With --verify: only the runs of these seeds, comma-separated.
        #[arg(long, value_delimiter = ',')]
        seeds: Vec<u64>,
        /// With --verify: largest accepted metric difference, in percentage points (0 = bit-identical).
        #[arg(long, default_value_t = 0.0)]
        tolerance: f64,
        /// Where the training inputs live, as for `train` (the numbers do not depend on it).
        #[arg(long, value_enum, default_value_t = f2c::data::resident::InputStaging::Auto)]
        inputs: f2c::data::resident::InputStaging,
    },
    /// Regenerate paper/tables, paper/figures and paper/README.md from a matrix's results.
    Tables {
        /// A results folder holding summary.csv.
        #[arg(default_value = "results/default")]
        results: PathBuf,
    },
    /// Time each head's step alone (FC, Partial FC, F²C, DCQ) and each method's whole training
    /// step at growing identity counts, next to PyTorch's head steps when given them.
    Bench(f2c::bench::BenchOptions),
    /// Train an experiment and write its learning curve (CSV), scored every K steps on the
    /// validation identities; or, with --plot, draw TAR@FAR=1e-3 against epochs of curves.
    Curve {
        /// An experiment file (RON); with --plot, the curve CSVs to draw (one line each).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Evaluate after every K training steps (required unless --plot).
        #[arg(long, value_name = "K")]
        every: Option<usize>,
        /// Override the experiment's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the experiment's device: `cpu`, `cuda` or `cuda:N`.
        #[arg(long)]
        device: Option<String>,
        /// Set a field, as a matrix axis would: `--set train.steps=5800` (repeatable).
        #[arg(long = "set", value_name = "PATH=RON")]
        sets: Vec<String>,
        /// Identities to score on.
        #[arg(long, value_enum, default_value_t = f2c::train::curve::Split::Validation)]
        split: f2c::train::curve::Split,
        /// Where to write the curve (default results/curves/<experiment name>.csv).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Draw the given CSVs into this SVG instead of training.
        #[arg(long, value_name = "OUT.svg")]
        plot: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        let mut shown = e.to_string();
        eprintln!("error: {shown}");
        for cause in e.chain().skip(1) {
            // A message that already ends with its cause (`path: reason`) is not followed by it again.
            let text = cause.to_string();
            if !shown.ends_with(&text) {
                eprintln!("  caused by: {text}");
            }
            shown = text;
        }
        std::process::exit(1);
    }
}

/// Applies `--set PATH=RON` overrides, then validates the experiment again.
fn apply_sets(
    exp: &mut f2c::Experiment,
    sets: &[String],
    file: &std::path::Path,
) -> anyhow::Result<()> {
    use f2c::config::sweep::Sweep;
    for set in sets {
        let Some((path, value)) = set.split_once('=') else {
            anyhow::bail!("--set `{set}`: expected PATH=VALUE, e.g. --set train.steps=5800");
        };
        exp.set_path(path.trim(), value.trim())
            .map_err(|e| anyhow::anyhow!("--set `{set}`: field `{}`: {}", e.field, e.msg))?;
    }
    exp.validate(file)?;
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train {
            experiment,
            device,
            seed,
            sets,
            out,
            quiet,
            verify,
            tolerance,
            fresh,
            checkpoint_every,
            export_probe,
            inputs,
        } => {
            let mut exp = f2c::Experiment::load(&experiment)?;
            if let Some(d) = device {
                exp.device = d.parse()?;
            }
            if let Some(s) = seed {
                exp.seed = s;
            }
            apply_sets(&mut exp, &sets, &experiment)?;
            let opts = f2c::train::run::RunOptions {
                progress: !quiet,
                // A verification trains from scratch and leaves no checkpoint behind.
                checkpoint: (!verify).then(|| f2c::train::run::CheckpointOptions {
                    every: std::time::Duration::from_secs(checkpoint_every),
                    resume: !fresh,
                    ..f2c::train::run::CheckpointOptions::new(&out)
                }),
                stop_after: None,
                export_probe: export_probe.clone(),
                inputs,
                plan: true,
            };
            let rec = f2c::train::run::run_experiment(&exp, &opts)
                .with_context(|| format!("training {}", experiment.display()))?;
            if let Some(path) = export_probe {
                println!("probe network: {}", path.display());
            }
            let path = out.join(format!("{}.json", rec.run_id));
            if verify {
                if !path.exists() {
                    anyhow::bail!(
                        "--verify: no committed record {} to compare with",
                        path.display()
                    );
                }
                let committed = f2c::results::RunRecord::read(&path)?;
                let agreement = f2c::ablation::verify::compare(&committed, &rec, tolerance / 100.0);
                println!("{}  {agreement}", rec.run_id);
                if !agreement.reproduced() {
                    anyhow::bail!("not reproduced: {}", path.display());
                }
                println!("REPRODUCED: {}", path.display());
                return Ok(());
            }
            rec.write_atomic(&path)?;
            println!("{}", f2c::results::record::summary_text(&rec));
            println!("record: {}", path.display());
            if let f2c::results::RunStatus::Failed(why) = &rec.status {
                anyhow::bail!("run failed: {why}");
            }
            Ok(())
        }
        Command::Ablate {
            matrix,
            dry_run,
            retry_failed,
            results,
            no_tables,
            quiet,
            jobs,
            verify,
            seeds,
            tolerance,
            inputs,
        } => {
            if jobs == 0 {
                anyhow::bail!("--jobs must be at least 1");
            }
            let opts = f2c::ablation::runner::MatrixOptions {
                results_root: results,
                dry_run,
                progress: !quiet,
                retry_failed,
                jobs,
                run: f2c::train::run::RunOptions {
                    inputs,
                    ..Default::default()
                },
            };
            if verify {
                let plan = f2c::ablation::matrix::Matrix::load(&matrix)?.expand(&matrix)?;
                let report = f2c::ablation::verify::verify_plan(
                    &plan,
                    &seeds,
                    std::path::Path::new("target/verify"),
                    &opts,
                    tolerance / 100.0,
                    f2c::train::run::run_experiment,
                )?;
                println!("{report}");
                if !report.reproduced() {
                    std::process::exit(2);
                }
                return Ok(());
            }
            let started = std::time::Instant::now();
            let outcome = f2c::ablation::runner::run_matrix(&matrix, &opts)?;
            if !dry_run && outcome.trained() > 0 {
                // How long this call took, kept only when it trained something: a rerun that
                // finds every run done leaves the committed timing (and the tree) as it was.
                let path = outcome.dir.join(f2c::report::readme::TIMING_JSON);
                f2c::report::readme::MatrixTiming {
                    elapsed_s: started.elapsed().as_secs_f64(),
                    jobs,
                    trained: outcome.trained(),
                    calls: 1,
                    runs: outcome.plan.runs.len(),
                    load: std::fs::read_to_string("/proc/loadavg")
                        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
                    code_revision: f2c::results::record::code_revision(),
                    machine: format!(
                        "{} {}, {} cores",
                        std::env::consts::OS,
                        std::env::consts::ARCH,
                        std::thread::available_parallelism().map_or(0, |n| n.get())
                    ),
                }
                .accumulate(&path)?
                .write(&path)?;
            }
            if dry_run {
                print!("{}", outcome.listing());
                return Ok(());
            }
            println!(
                "{}: {} runs, {} trained now, {} failed; results in {}",
                matrix.display(),
                outcome.plan.runs.len(),
                outcome.trained(),
                outcome.failed(),
                outcome.dir.display()
            );
            if !no_tables {
                let source = f2c::report::paper_results(&outcome.dir);
                for path in f2c::report::regenerate(&source, std::path::Path::new("."))? {
                    println!("wrote {}", path.display());
                }
            }
            if outcome.failed_now() > 0 {
                // The matrix went on and every record is written; the exit status still says
                // that this call did not train everything it tried.
                anyhow::bail!(
                    "{} of the runs trained now failed (their reasons: `ablate {} --dry-run`)",
                    outcome.failed_now(),
                    matrix.display()
                );
            }
            Ok(())
        }
        Command::Tables { results } => {
            for path in f2c::report::regenerate(&results, std::path::Path::new("."))? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Bench(opts) => {
            let outcome = f2c::bench::run_bench(&opts)?;
            for path in f2c::report::efficiency::write_paper(&outcome, &opts.paper_root())? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Curve {
            inputs,
            every,
            seed,
            device,
            sets,
            split,
            out,
            plot,
            quiet,
        } => {
            use f2c::train::curve;
            if let Some(svg) = plot {
                let mut curves = Vec::new();
                for path in &inputs {
                    let name = path.file_stem().map_or_else(
                        || path.display().to_string(),
                        |s| s.to_string_lossy().into_owned(),
                    );
                    curves.push((name, curve::read_csv(path)?));
                }
                curve::plot(&curves, &svg)?;
                for (name, rows) in &curves {
                    println!("{}", curve::summary_line(name, rows));
                }
                println!("wrote {}", svg.display());
                return Ok(());
            }
            let [experiment] = inputs.as_slice() else {
                anyhow::bail!(
                    "curve: give one experiment file to train ({} given), or --plot OUT.svg with CSVs",
                    inputs.len()
                );
            };
            let Some(every) = every else {
                anyhow::bail!(
                    "curve: --every K is required to train a curve (evaluate every K steps)"
                );
            };
            let mut exp = f2c::Experiment::load(experiment)?;
            if let Some(d) = device {
                exp.device = d.parse()?;
            }
            if let Some(s) = seed {
                exp.seed = s;
            }
            apply_sets(&mut exp, &sets, experiment)?;
            let opts = curve::CurveOptions {
                every,
                split,
                progress: !quiet,
                plan: true,
            };
            let rows = curve::learning_curve(&exp, &opts)
                .with_context(|| format!("learning curve of {}", experiment.display()))?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from("results/curves").join(format!("{}.csv", exp.name))
            });
            curve::write_csv(&rows, &out)?;
            println!("{}", curve::summary_line(&exp.name, &rows));
            println!("curve: {}", out.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command's long help as `f2c <command> --help` prints it.
    fn long_helps() -> Vec<(String, String)> {
        let mut cli = super::Cli::command();
        let mut helps = vec![("f2c".to_string(), cli.render_long_help().to_string())];
        for sub in cli.get_subcommands_mut() {
            helps.push((
                sub.get_name().to_string(),
                sub.render_long_help().to_string(),
            ));
        }
        helps
    }

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// The help is written from doc comments, which also feed rustdoc: an intra-doc link there
    /// would reach the user as `[`NAME`]`.
    #[test]
    fn help_has_no_rustdoc_links() {
        for (name, help) in long_helps() {
            assert!(
                !help.contains("[`"),
                "f2c {name} --help shows a rustdoc link:\n{help}"
            );
        }
    }

    /// `--inputs auto` is explained with the size limit written out; it must be the one applied.
    #[test]
    fn help_quotes_the_resident_limit_in_force() {
        let limit = f2c::data::resident::AUTO_RESIDENT_LIMIT;
        assert_eq!(limit % (1 << 30), 0, "the help speaks of whole GiB");
        let quoted = format!("at most {} GiB", limit >> 30);
        for (name, help) in long_helps() {
            if help.contains("--inputs") {
                assert!(
                    help.contains(&quoted),
                    "f2c {name} --help does not say {quoted:?}"
                );
            }
        }
    }
}
