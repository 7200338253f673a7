//! Head-step efficiency benchmark (the paper's second claim, that F²C trains faster and
//! with far less memory than FC-based heads, the gap growing with the number of identities).
//!
//! For each identity count, one training step of each head — full FC, Partial FC (r = 0.1), F²C
//! (pool 1% and 10% in the PyTorch peer's one-direction form, and 10% in the reference two-row
//! symmetric form), DCQ (queue 10%) — is timed in isolation ([`head_step`]), next to the machine's sgemm peak and
//! the step's GEMMs alone ([`sgemm_peak`]); then the whole training step of each shipped method at
//! the largest size ([`training_step`]). Results go to `results/bench/`, `paper/tables/efficiency.md`
//! and `paper/figures/efficiency.svg` ([`crate::report::efficiency`]).

pub mod head_step;
pub mod peer;
pub mod sgemm_peak;
pub mod training_step;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::resident::InputStaging;
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::heads::backend::{Backend, CpuBackend};
use crate::heads::{CentreUpdate, Method};
use crate::results::record::memory_status;
use head_step::{median, HeadBench, HeadCase};

/// Options of `f2c bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Identity counts N to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub classes: Vec<usize>,
    /// Embedding dimension D.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Batch size B.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Timed steps per case (the median is reported), after the warm-up steps.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed warm-up steps per case.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Device of the heads: `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Skip the whole training step's throughput (timed at every size otherwise).
    #[arg(long)]
    pub no_training_step: bool,
    /// Methods to time, comma-separated (`fc`, `pfc`, `f2c`, `dcq`).
    #[arg(long, value_delimiter = ',', default_value = "fc,pfc,f2c,dcq")]
    pub methods: Vec<Method>,
    /// Where heads.csv and training.csv go.
    #[arg(long, default_value = "results/bench")]
    pub out: PathBuf,
    /// Root of the efficiency table's tables/ and figures/. Default: `paper` when `--out` is
    /// `results/bench` (the committed results); otherwise `<out>/paper`, beside the CSVs the table
    /// comes from, so that a bench written elsewhere never overwrites the paper's table.
    #[arg(long)]
    pub paper: Option<PathBuf>,
    /// The PyTorch peer's JSON lines (`python3 scripts/torch_heads.py --out FILE` on this machine),
    /// to compare side by side; without it the table quotes figures measured earlier.
    #[arg(long)]
    pub peer: Option<PathBuf>,
    /// Where the whole step's training inputs live: `auto` keeps the training set on the device
    /// only for a run that draws all of it (never in a few timed steps), `resident` always,
    /// `per-step` never.
    #[arg(long, value_enum, default_value_t = InputStaging::Auto)]
    pub inputs: InputStaging,
}

impl BenchOptions {
    /// Where the efficiency table and figure go (see `paper`).
    pub fn paper_root(&self) -> PathBuf {
        match &self.paper {
            Some(p) => p.clone(),
            None if self.out == Path::new("results/bench") => PathBuf::from("paper"),
            None => self.out.join("paper"),
        }
    }
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            classes: vec![10_000, 100_000, 1_000_000],
            dim: 128,
            batch: 256,
            steps: 5,
            warmup: 2,
            device: DeviceChoice::Cpu,
            no_training_step: false,
            methods: Method::ALL.to_vec(),
            out: PathBuf::from("results/bench"),
            paper: None,
            peer: None,
            inputs: InputStaging::Auto,
        }
    }
}

/// One timed head step: a row of `results/bench/heads.csv`, written by the bench and read by the
/// report (tables, figure, claim 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// The method (`fc`, `pfc`, `f2c`, `dcq` in the file).
    pub head: Method,
    /// Sample rate (pfc), pool fraction (f2c), queue fraction (dcq), 1 (fc).
    pub param: f64,
    pub classes: usize,
    pub dim: usize,
    pub batch: usize,
    /// Median seconds of a step over the timed steps.
    pub median_step_s: f64,
    /// Bytes of the head's state (centres + momentum, or pool features).
    pub head_state_bytes: u64,
    /// `peer` (the step the PyTorch figures time), `row0-one-direction` or `tworow-symmetric` (F²C).
    pub variant: String,
    /// Logit columns per step: N (fc), sampled centres (pfc), pool slots Q (f2c).
    pub columns: usize,
    pub steps: usize,
    pub min_step_s: f64,
    /// Peak resident memory while this case was built and run, above the resident memory before it
    /// (the kernel's high-water mark is reset per case where possible, see `peak_reset`).
    pub peak_growth_bytes: u64,
    /// Whether the high-water mark was reset for this case (else the growth is a lower bound).
    pub peak_reset: bool,
    /// Device memory taken by the case on a GPU (head state and work buffers, after the timed
    /// steps, device synchronised); empty on the CPU.
    pub device_mem_bytes: Option<u64>,
    /// GFLOP of the step's GEMMs.
    pub gemm_gflop: f64,
    /// GEMM GFLOP / median step time.
    pub gflops: f64,
    /// The machine's sgemm peak, GFLOP/s.
    pub peak_gflops: f64,
    /// gflops / peak_gflops.
    pub peak_fraction: f64,
    /// Median seconds of the step's GEMMs alone (same shapes).
    pub gemm_only_s: f64,
    /// gemm_only_s / median_step_s: the share of the step its GEMMs would take on their own.
    pub gemm_fraction: f64,
    /// The step's lower bound: gemm_gflop / peak.
    pub lower_bound_s: f64,
    /// median_step_s / lower_bound_s.
    pub bound_ratio: f64,
    /// PyTorch 2.x CPU figure for the same step on this kind of machine, if known.
    pub pytorch_s: Option<f64>,
    /// median_step_s / pytorch_s.
    pub vs_pytorch: Option<f64>,
}

impl BenchRow {
    /// A row holding a step time and state size alone (the other measurements zero or absent):
    /// rows assembled outside the bench, e.g. in tests of what reads them.
    #[allow(clippy::too_many_arguments)]
    pub fn timed(
        head: Method,
        param: f64,
        variant: &str,
        classes: usize,
        dim: usize,
        batch: usize,
        median_step_s: f64,
        head_state_bytes: u64,
    ) -> Self {
        BenchRow {
            head,
            param,
            classes,
            dim,
            batch,
            median_step_s,
            head_state_bytes,
            variant: variant.into(),
            columns: 0,
            steps: 0,
            min_step_s: median_step_s,
            peak_growth_bytes: 0,
            peak_reset: false,
            device_mem_bytes: None,
            gemm_gflop: 0.0,
            gflops: 0.0,
            peak_gflops: 0.0,
            peak_fraction: 0.0,
            gemm_only_s: 0.0,
            gemm_fraction: 0.0,
            lower_bound_s: 0.0,
            bound_ratio: 0.0,
            pytorch_s: None,
            vs_pytorch: None,
        }
    }
}

impl BenchRow {
    /// The case in words, e.g. `F²C 10% (reference: 2 rows, symmetric)` ([`Method::series_name`]).
    pub fn label(&self) -> String {
        self.head.series_name(&self.variant, self.param)
    }
}

/// Seconds for a table: `1.52 s` or `77.6 ms`.
pub fn fmt_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

/// Bytes in MiB for a table.
pub fn fmt_mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

/// One progress line per case.
fn row_line(r: &BenchRow) -> String {
    format!(
        "{:<44} N {:>8}  {:>9}  state {:>11}  peak +{:>11}  {:6.1} GFLOP/s ({:4.0}% of peak, {:.2}× bound)  gemm-only {:>9}{}",
        r.label(),
        r.classes,
        fmt_seconds(r.median_step_s),
        fmt_mib(r.head_state_bytes),
        fmt_mib(r.peak_growth_bytes),
        r.gflops,
        100.0 * r.peak_fraction,
        r.bound_ratio,
        fmt_seconds(r.gemm_only_s),
        r.pytorch_s
            .map_or(String::new(), |p| format!("  pytorch {} ({:.2}×)", fmt_seconds(p), r.median_step_s / p)),
    ) + &r.device_mem_bytes.map_or(String::new(), |m| format!("  device mem {}", fmt_mib(m)))
}

/// Reads a head-bench CSV written by [`run_bench`].
pub fn read_rows(path: &std::path::Path) -> Result<Vec<BenchRow>> {
    crate::results::csv_rows::read_rows(path, "the columns `f2c bench` writes to heads.csv")
}

/// Cases per identity count, smallest memory first so that a non-resettable high-water mark
/// still grows case by case.
pub fn cases() -> [HeadCase; 7] {
    [
        HeadCase::f2c(0.01, false),
        HeadCase::f2c(0.1, false),
        HeadCase::f2c(0.1, true),
        HeadCase::dcq(0.1),
        HeadCase::pfc(0.1, CentreUpdate::SampledRows),
        HeadCase::pfc(0.1, CentreUpdate::AllRows),
        HeadCase::fc(),
    ]
}

/// What a benchmark run measured, for the report's efficiency table and figure.
#[derive(Debug, Clone)]
pub struct BenchOutcome {
    pub rows: Vec<BenchRow>,
    pub training: Vec<training_step::TrainRow>,
    /// The machine's sgemm peak, GFLOP/s.
    pub peak_gflops: f64,
    pub device: String,
    /// `/proc/loadavg` at the end.
    pub load: String,
    /// Where the PyTorch figures come from.
    pub peer_source: String,
}

/// Where and how a benchmark run timed: what the efficiency table states beside its rows, kept in
/// `bench.json` next to the CSVs so that the table is regenerated from the results alone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchContext {
    /// The machine's sgemm peak, GFLOP/s.
    pub peak_gflops: f64,
    pub device: String,
    /// `/proc/loadavg` at the end.
    pub load: String,
    /// Where the PyTorch figures come from.
    pub peer_source: String,
}

/// The context file's name, beside `heads.csv`.
pub const CONTEXT_JSON: &str = "bench.json";

impl BenchContext {
    /// The context of the benchmark whose files are in `dir` ([`CONTEXT_JSON`]); `None` without it.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(CONTEXT_JSON);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::format(&path, e.to_string()))
    }
}

impl BenchOutcome {
    /// Writes what has been measured so far under `out`: `heads.csv`, `training.csv` once a whole
    /// step has been timed, and `bench.json` with the load average now.
    fn save(&mut self, out: &Path) -> Result<()> {
        crate::results::csv_rows::write_rows(&out.join("heads.csv"), &self.rows)?;
        if !self.training.is_empty() {
            crate::results::csv_rows::write_rows(&out.join("training.csv"), &self.training)?;
        }
        self.load = load_average();
        let json = serde_json::to_string_pretty(&self.context()).expect("plain fields");
        crate::results::record::write_atomic(&out.join(CONTEXT_JSON), json.as_bytes())
    }

    /// Where and how it timed.
    pub fn context(&self) -> BenchContext {
        BenchContext {
            peak_gflops: self.peak_gflops,
            device: self.device.clone(),
            load: self.load.clone(),
            peer_source: self.peer_source.clone(),
        }
    }
}

/// Runs the benchmark and writes its CSVs (`heads.csv`, `training.csv`) and its context
/// (`bench.json`) under `opts.out`, size by size: at each N the heads alone, then the whole steps.
/// The files are rewritten after every case, so that a run stopped part-way (a time limit on a
/// borrowed GPU) keeps every case it finished. The report turns the outcome into the paper's
/// table and figure.
pub fn run_bench(opts: &BenchOptions) -> Result<BenchOutcome> {
    crate::device::check_available(opts.device)?;
    match opts.device {
        DeviceChoice::Cpu => run_with(opts, CpuBackend),
        DeviceChoice::Cuda(ordinal) => {
            run_with(opts, crate::heads::backend::CudaBackend::new(ordinal)?)
        }
    }
}

fn run_with<B: Backend>(opts: &BenchOptions, be: B) -> Result<BenchOutcome> {
    if opts.steps == 0 || opts.batch < 2 || opts.dim == 0 || opts.classes.iter().any(|&c| c < 2) {
        return Err(Error::Other(format!(
            "bench: need --steps ≥ 1, --batch ≥ 2, --dim ≥ 1 and every --classes ≥ 2; got steps {}, batch {}, dim {}, classes {:?}",
            opts.steps, opts.batch, opts.dim, opts.classes
        )));
    }
    let (d, b) = (opts.dim, opts.batch);
    let peer = match &opts.peer {
        Some(path) => peer::Peer::from_json_lines(path)?,
        None => peer::Peer::default(),
    };
    eprintln!("bench: device {}, load {}", be.name(), load_average());
    let peak = sgemm_peak::sgemm_peak(&be, 2048, 5)?;
    eprintln!("bench: sgemm peak {peak:.1} GFLOP/s (2048³ through the heads' gemm)");
    let mut classes = opts.classes.clone();
    classes.sort_unstable();
    let mut outcome = BenchOutcome {
        rows: Vec::new(),
        training: Vec::new(),
        peak_gflops: peak,
        device: be.name(),
        load: load_average(),
        peer_source: peer.source().to_string(),
    };
    // Host memory a case may take: a case estimated above it is skipped and reported, not run
    // into the kernel's out-of-memory killer (on GPUs an allocation failure says so itself).
    let budget = (opts.device == DeviceChoice::Cpu).then(|| memory_status_kib("MemAvailable:"));
    let fits = |case: &HeadCase, n: usize| -> std::result::Result<(), String> {
        let needs = case.head.cost(n, d, b).memory_bytes(d, b);
        match budget {
            Some(avail) if needs > avail / 10 * 9 => Err(format!(
                "needs about {:.1} GiB of memory, {:.1} GiB available",
                needs as f64 / (1u64 << 30) as f64,
                avail as f64 / (1u64 << 30) as f64
            )),
            _ => Ok(()),
        }
    };
    let chosen = |case: &HeadCase| opts.methods.contains(&case.head.method());
    for &n in &classes {
        for case in cases().into_iter().filter(chosen) {
            if let Err(why) = fits(&case, n) {
                eprintln!(
                    "bench: {} ({}) at N = {n} skipped: {why}",
                    case.head(),
                    case.variant()
                );
                continue;
            }
            let reset = reset_peak();
            let rss0 = memory_status("VmRSS:");
            // The last case's buffers were freed after its synchronisation; the driver's pool hands
            // freed memory back only at a synchronisation, so without this one the baseline would
            // still hold it and this case, reusing it, would seem to take none.
            be.synchronize()?;
            let dev0 = be.device_memory_in_use();
            // A case that does not fit (FC at 10M identities on a GPU) is reported and skipped,
            // so the heads that do fit are still measured.
            let measured = (|| -> Result<(Vec<f64>, u64, Option<u64>)> {
                let mut bench = HeadBench::new(be.clone(), &case, n, d, b, 7)?;
                for _ in 0..opts.warmup {
                    bench.step()?;
                }
                let times = (0..opts.steps)
                    .map(|_| bench.step())
                    .collect::<Result<Vec<f64>>>()?;
                be.synchronize()?;
                let dev = be
                    .device_memory_in_use()
                    .zip(dev0)
                    .map(|(a, b)| a.saturating_sub(b));
                Ok((times, bench.state_bytes(), dev))
            })();
            let (times, state, device_mem_bytes) = match measured {
                Ok(m) => m,
                Err(e) => {
                    eprintln!(
                        "bench: {} ({}) at N = {n} skipped: {e}",
                        case.head(),
                        case.variant()
                    );
                    continue;
                }
            };
            let hwm = memory_status("VmHWM:");
            let med = median(&times);
            let gemm_only = sgemm_peak::gemm_only_seconds(&be, &case, n, d, b, opts.steps.min(3))?;
            let cost = case.head.cost(n, d, b);
            let flops = cost.gemm_flops(d);
            let pytorch_s = peer.seconds(&case, n, d, b);
            let row = BenchRow {
                head: case.head.method(),
                param: case.param(),
                classes: n,
                dim: d,
                batch: b,
                median_step_s: med,
                head_state_bytes: state,
                variant: case.variant().into(),
                columns: cost.columns,
                steps: opts.steps,
                min_step_s: times.iter().copied().fold(f64::INFINITY, f64::min),
                peak_growth_bytes: hwm.saturating_sub(rss0),
                peak_reset: reset,
                device_mem_bytes,
                gemm_gflop: flops / 1e9,
                gflops: flops / med / 1e9,
                peak_gflops: peak,
                peak_fraction: flops / med / 1e9 / peak,
                gemm_only_s: gemm_only,
                gemm_fraction: gemm_only / med,
                lower_bound_s: flops / 1e9 / peak,
                bound_ratio: med / (flops / 1e9 / peak),
                pytorch_s,
                vs_pytorch: pytorch_s.map(|p| med / p),
            };
            eprintln!("{}", row_line(&row));
            outcome.rows.push(row);
            outcome.save(&opts.out)?;
        }
        if opts.no_training_step {
            continue;
        }
        eprintln!("bench: whole training steps at {n} identities");
        for method in Method::ALL.into_iter().filter(|m| opts.methods.contains(m)) {
            let case = cases().into_iter().find(|c| c.head.method() == method);
            if let Some(Err(why)) = case.map(|c| fits(&c, n)) {
                eprintln!("bench: whole {method} step at N = {n} skipped: {why}");
                continue;
            }
            for exp in training_step::bench_experiments(method, opts.device, n, b)? {
                // As a head case, a whole step that fails (device memory) is reported and skipped.
                match training_step::time_whole_step(&exp, n, opts.warmup, opts.steps, opts.inputs)
                {
                    Ok(timed) => {
                        outcome.training.push(timed);
                        outcome.save(&opts.out)?;
                    }
                    Err(e) => eprintln!(
                        "bench: whole {method} ({}) step at N = {n} skipped: {e}",
                        exp.head.bench_variant()
                    ),
                }
            }
        }
    }
    outcome.save(&opts.out)?;
    eprintln!("bench: wrote {}", opts.out.join("heads.csv").display());
    Ok(outcome)
}

/// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux ≥ 4.0); false if refused,
/// in which case VmHWM stays cumulative.
fn reset_peak() -> bool {
    // Hand freed heap memory back first, so that the resident size before a case is what is live.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim only releases free memory; it has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A `/proc/meminfo` field in bytes (`u64::MAX` where unavailable: no limit known).
fn memory_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kb| kb * 1024)
}

/// `/proc/loadavg`'s three averages, to judge how noisy the timings are.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_committed_results_write_the_papers_table() {
        let opts = |out: &str, paper: Option<&str>| BenchOptions {
            out: PathBuf::from(out),
            paper: paper.map(PathBuf::from),
            ..BenchOptions::default()
        };
        assert_eq!(opts("results/bench", None).paper_root(), Path::new("paper"));
        assert_eq!(
            opts("/tmp/quick", None).paper_root(),
            Path::new("/tmp/quick/paper")
        );
        assert_eq!(
            opts("/tmp/quick", Some("elsewhere")).paper_root(),
            Path::new("elsewhere")
        );
    }
}
