//! The GPU runs set beside the CPU's, for the paper: `paper/tables/gpu.md`, from what the GPU check
//! (`scripts/gpu-check.sh`) brought back and was committed. Each GPU run is paired with the CPU
//! record of the same experiment (the same resolved config with `device: Cpu`, so the same run id
//! but for the device): the scale study's seed 1 (`results/scale-gpu/` against `results/scale/`),
//! the default matrix's runs that the check's time allowed (`results/default-gpu/` against
//! `results/default/`), the GPU check's matrix (`results/gpu/runs/`, both devices on the GPU's
//! host) and the single runs (`results/gpu/train/` against `results/train/`). The GPU's head
//! benchmark has its own efficiency table and figures ([`super::efficiency::GPU_PAPER`]); this
//! table adds its Partial FC rows before and after the sampler's bitset, and the heads at D 512.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::bench::{fmt_mib as mib, fmt_seconds as secs, BenchRow};
use crate::device::DeviceChoice;
use crate::error::Result;
use crate::heads::{Method, Naming};
use crate::results::record::{run_id, RunRecord};

/// The GPU check's folder and the table written from it, relative to the project root.
pub const GPU_DIR: &str = "results/gpu";
pub const TABLE_MD: &str = "paper/tables/gpu.md";

/// A GPU run and the CPU record of the same experiment, where there is one.
#[derive(Debug, Clone)]
pub struct Pair {
    pub gpu: RunRecord,
    pub cpu: Option<RunRecord>,
}

/// The run records (`*.json`) of a folder, by file name; none when the folder is missing.
fn records(dir: &Path) -> Result<Vec<RunRecord>> {
    crate::results::record::json_files(dir)
        .iter()
        .map(|p| RunRecord::read(p))
        .collect()
}

/// The GPU runs of `gpu_dir` (those that ran on a GPU), each with its CPU twin from `cpu_dir`.
pub fn pairs(gpu_dir: &Path, cpu_dir: &Path) -> Result<Vec<Pair>> {
    let mut out = Vec::new();
    for gpu in records(gpu_dir)? {
        if gpu.experiment.device == DeviceChoice::Cpu {
            continue;
        }
        let mut twin = gpu.experiment.clone();
        twin.device = DeviceChoice::Cpu;
        let path = cpu_dir.join(format!("{}.json", run_id(&twin)));
        let cpu = match path.exists() {
            true => Some(RunRecord::read(&path)?),
            false => None,
        };
        out.push(Pair { gpu, cpu });
    }
    Ok(out)
}

/// The tables' name of a run's method, e.g. "Partial FC r=0.1" or "F²C pool 10%".
fn method_name(r: &RunRecord) -> String {
    let head = &r.experiment.head;
    let cols = head.summary_columns(r.num_train_identities());
    head.method().run_name(&cols, Naming::Table)
}

fn tar3(r: &RunRecord) -> Option<f64> {
    r.metrics.as_ref().map(|m| 100.0 * m.tar_far_1e3)
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// The time of a run in the tables: seconds under two minutes, else minutes.
fn wall(s: f64) -> String {
    match s < 120.0 {
        true => format!("{s:.1} s"),
        false => format!("{:.1} min", s / 60.0),
    }
}

/// One table of pairs: per run its method (with its experiment's name when `named`), learning
/// rate and seed, TAR@FAR=1e-3 on each device and their difference, wall time and median step on
/// each, and the CPU's time over the GPU's.
fn pair_table(pairs: &[Pair], named: bool) -> String {
    let mut s = String::from(
        "| method | lr | seed | TAR@1e-3 CPU | GPU | Δ (pts) | wall CPU | GPU | CPU / GPU | step CPU | GPU |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in pairs {
        let g = &p.gpu;
        let c = p.cpu.as_ref();
        let (tc, tg) = (c.and_then(tar3), tar3(g));
        let delta = tc.zip(tg).map(|(a, b)| b - a);
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} ms |\n",
            match named {
                true => format!("{} (`{}`)", method_name(g), g.experiment.name),
                false => method_name(g),
            },
            g.experiment.train.lr,
            g.experiment.seed,
            opt(tc, 2),
            opt(tg, 2),
            delta.map_or("–".into(), |d| format!("{d:+.2}")),
            c.map_or("–".into(), |c| wall(c.wall_time_s)),
            wall(g.wall_time_s),
            c.map_or("–".into(), |c| format!(
                "{:.1}×",
                c.wall_time_s / g.wall_time_s
            )),
            c.map_or("–".into(), |c| format!("{:.2} ms", c.median_step_ms)),
            g.median_step_ms,
        );
    }
    s
}

/// Per method over the paired runs: runs, summed wall time on each device, their ratio, and the
/// mean and largest |Δ TAR@FAR=1e-3|.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodTimes {
    pub runs: usize,
    pub cpu_s: f64,
    pub gpu_s: f64,
    pub mean_abs_delta: f64,
    pub max_abs_delta: f64,
}

/// [`MethodTimes`] of every method among `pairs` that have a CPU twin.
pub fn method_times(pairs: &[Pair]) -> BTreeMap<Method, MethodTimes> {
    let mut out: BTreeMap<Method, MethodTimes> = BTreeMap::new();
    for p in pairs {
        let Some(c) = &p.cpu else { continue };
        let t = out.entry(p.gpu.experiment.head.method()).or_default();
        t.runs += 1;
        t.cpu_s += c.wall_time_s;
        t.gpu_s += p.gpu.wall_time_s;
        if let (Some(a), Some(b)) = (tar3(c), tar3(&p.gpu)) {
            let d = (b - a).abs();
            t.mean_abs_delta += d;
            t.max_abs_delta = t.max_abs_delta.max(d);
        }
    }
    for t in out.values_mut() {
        t.mean_abs_delta /= t.runs as f64;
    }
    out
}

/// The whole matrix's GPU time, estimated: each CPU record's wall time over its method's measured
/// CPU / GPU ratio (the ratio of all paired runs where its method has none). Returns the CPU's
/// summed wall time, the estimate, and the methods that had no ratio of their own.
pub fn estimate_matrix(
    cpu_all: &[RunRecord],
    times: &BTreeMap<Method, MethodTimes>,
) -> (f64, f64, Vec<Method>) {
    let (c, g) = times
        .values()
        .fold((0.0, 0.0), |(c, g), t| (c + t.cpu_s, g + t.gpu_s));
    let overall = c / g;
    let mut unmeasured = Vec::new();
    let (mut cpu, mut gpu) = (0.0, 0.0);
    for r in cpu_all {
        let m = r.experiment.head.method();
        let ratio = match times.get(&m) {
            Some(t) => t.cpu_s / t.gpu_s,
            None => {
                if !unmeasured.contains(&m) {
                    unmeasured.push(m);
                }
                overall
            }
        };
        cpu += r.wall_time_s;
        gpu += r.wall_time_s / ratio;
    }
    (cpu, gpu, unmeasured)
}

fn hours(s: f64) -> String {
    format!("{:.2} h", s / 3600.0)
}

/// The section on the default matrix: per method, then the estimate for all its runs.
fn default_section(pairs: &[Pair], cpu_all: &[RunRecord]) -> String {
    let times = method_times(pairs);
    let paired: usize = times.values().map(|t| t.runs).sum();
    let mut s = format!(
        "## The default matrix on the GPU\n\n\
         `ablations/default.ron` with its base experiment on the GPU, runs in the matrix's order, \
         as far as the check's time went: {paired} of its {} runs (`results/default-gpu/`), each \
         set beside its CPU record (`results/default/`; two runs side by side on 2 cores).\n\n\
         | method | runs | wall CPU (sum) | GPU (sum) | CPU / GPU | mean \\|Δ TAR@1e-3\\| | largest |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        cpu_all.len()
    );
    for (m, t) in &times {
        s += &format!(
            "| {} | {} | {} | {} | {:.1}× | {:.2} pts | {:.2} pts |\n",
            m.label(),
            t.runs,
            wall(t.cpu_s),
            wall(t.gpu_s),
            t.cpu_s / t.gpu_s,
            t.mean_abs_delta,
            t.max_abs_delta
        );
    }
    if times.is_empty() {
        return s;
    }
    let (cpu, gpu, unmeasured) = estimate_matrix(cpu_all, &times);
    s += &format!(
        "\nAll {} runs: their CPU wall times sum to {} ({} of matrix time with `--jobs 2`); \
         over each method's CPU / GPU ratio above, one run at a time on the GPU would take about \
         {} — an estimate from the paired runs, not a timing of the whole matrix.",
        cpu_all.len(),
        hours(cpu),
        hours(cpu / 2.0),
        hours(gpu)
    );
    if !unmeasured.is_empty() {
        let names: Vec<&str> = unmeasured.iter().map(|m| m.label()).collect();
        s += &format!(
            " No run of {} was paired; its runs take the ratio of all paired runs.",
            names.join(", ")
        );
    }
    s + "\n"
}

/// Partial FC's head step on the GPU before and after the sampler's bitset (the same draws, the
/// same classes): `before` and `after` are the benchmark's rows of two calls of the GPU check.
fn sampler_section(before: &[BenchRow], after: &[BenchRow]) -> String {
    let mut s = String::from(
        "## Partial FC's step on the GPU, before and after the sampler's bitset\n\n\
         The sampler draws the negative classes on the host (Floyd's algorithm, the same draws and \
         classes before and after). Before, it kept the chosen classes in a hash set and sorted them; \
         now in a bitset read in order. Benchmark rows of the GPU check's two calls \
         (`results/gpu/bench-before-bitset/`, `results/gpu/bench/`), PyTorch's step timed beside each.\n\n\
         | head | N | before | after | PyTorch | ratio after |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for a in after.iter().filter(|r| r.head == Method::PartialFc) {
        let b = before
            .iter()
            .find(|b| b.head == a.head && b.variant == a.variant && b.classes == a.classes);
        s += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            a.label(),
            a.classes,
            b.map_or("–".into(), |b| secs(b.median_step_s)),
            secs(a.median_step_s),
            a.pytorch_s.map_or("–".into(), secs),
            opt(a.vs_pytorch, 2),
        );
    }
    s
}

/// The heads at one size and D on the GPU (the D 512 benchmark): step, head state and device
/// memory in use after the step.
fn heads_section(rows: &[BenchRow]) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let mut s = format!(
        "## Heads at N = {}, D {} on the GPU\n\n\
         Head steps alone (`results/gpu/bench-d512/`, the GPU check's first call: Partial FC's \
         steps there still include the hash-set sampler's host time). Head state is counted from \
         the head's sizes. Device memory is the growth of the GPU's memory in use over the case, \
         as the driver reports it: memory that the device's allocator kept from an earlier case \
         is not counted again, so for the cases after the largest one so far it is only a lower \
         bound (DCQ's 0 MiB). The benchmark now synchronises the device before it reads the \
         baseline, which hands such memory back; that has not run on a GPU yet.\n\n\
         | head | step | head state | device memory |\n|---|---:|---:|---:|\n",
        first.classes, first.dim
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} |\n",
            r.label(),
            secs(r.median_step_s),
            mib(r.head_state_bytes),
            r.device_mem_bytes.map_or("–".into(), mib),
        );
    }
    s
}

fn bench_rows(path: &Path) -> Result<Vec<BenchRow>> {
    match path.exists() {
        true => crate::bench::read_rows(path),
        false => Ok(Vec::new()),
    }
}

/// `paper/tables/gpu.md` from the committed GPU results under `root`; `None` without
/// `results/gpu/`.
pub fn render(root: &Path) -> Result<Option<String>> {
    let gpu = root.join(GPU_DIR);
    if !gpu.is_dir() {
        return Ok(None);
    }
    let device =
        crate::bench::BenchContext::read(&gpu.join("bench"))?.map_or("a GPU".into(), |c| c.device);
    let mut s = format!(
        "# On a GPU\n\n\
         Runs on {device}, set beside the CPU's runs of the same experiments (the same configs but \
         for the device; the CPU's are the committed records of this repository's 2-core machine \
         unless a table says otherwise). The GPU and the CPU round differently, so a run's \
         accuracy agrees to within the noise of training, not bit for bit. Machine, driver, \
         commits and commands: `results/gpu/README.md`. Head-step efficiency on the GPU: \
         `efficiency_gpu.md`. All accuracies are TAR@FAR=1e-3 in %.\n\n"
    );
    let scale = pairs(
        &root.join("results/scale-gpu/runs"),
        &root.join("results/scale/runs"),
    )?;
    if !scale.is_empty() {
        let (c, g) = scale
            .iter()
            .filter_map(|p| p.cpu.as_ref().map(|c| (c.wall_time_s, p.gpu.wall_time_s)))
            .fold((0.0, 0.0), |(a, b), (c, g)| (a + c, b + g));
        s += &format!(
            "## The scale study's seed 1 on the GPU\n\n\
             `ablations/scale-gpu.ron`: the `scale_tuned_at_n` runs of seed 1 (N = 100,000, 30,300 steps), \
             one at a time on the GPU; the CPU's ran two side by side on 2 cores. Together: {} on \
             the CPU, {} on the GPU.\n\n{}\n",
            wall(c),
            wall(g),
            pair_table(&scale, false)
        );
    }
    let default = pairs(
        &root.join("results/default-gpu/runs"),
        &root.join("results/default/runs"),
    )?;
    if !default.is_empty() {
        s += &default_section(&default, &records(&root.join("results/default/runs"))?);
        s += "\n";
    }
    let device_pairs = pairs(&gpu.join("runs"), &gpu.join("runs"))?;
    if !device_pairs.is_empty() {
        s += &format!(
            "## Both devices on the GPU's host\n\n\
             `ablations/gpu.ron`: 50 steps of each method on 2,000 identities, on the GPU and on the \
             same machine's CPU ({}). 50 steps do not train these networks (TAR near chance): the \
             table sets the devices side by side, it says nothing about the methods.\n\n{}\n",
            device_pairs[0]
                .cpu
                .as_ref()
                .map_or("no CPU run".into(), |c| c.machine.clone()),
            pair_table(&device_pairs, false)
        );
    }
    let single = pairs(&gpu.join("train"), &root.join("results/train"))?;
    if !single.is_empty() {
        s += &format!(
            "## Single runs\n\n`f2c train` of the shipped experiments on the GPU (`results/gpu/train/`), \
             beside this repository's CPU record of each where there is one (`results/train/`).\n\n{}\n",
            pair_table(&single, true)
        );
    }
    let after = bench_rows(&gpu.join("bench/heads.csv"))?;
    let before = bench_rows(&gpu.join("bench-before-bitset/heads.csv"))?;
    if !after.is_empty() && !before.is_empty() {
        s += &sampler_section(&before, &after);
        s += "\n";
    }
    s += &heads_section(&bench_rows(&gpu.join("bench-d512/heads.csv"))?);
    Ok(Some(s.trim_end().to_string() + "\n"))
}

/// Writes [`TABLE_MD`] where `results/gpu/` exists; returns the files written.
pub fn write_tables(root: &Path) -> Result<Vec<PathBuf>> {
    let Some(text) = render(root)? else {
        return Ok(Vec::new());
    };
    let path = root.join(TABLE_MD);
    crate::results::record::write_atomic(&path, text.as_bytes())?;
    Ok(vec![path])
}
