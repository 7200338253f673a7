//! The head benchmark's outputs for the paper: the efficiency table (our head steps next to the
//! PyTorch peer's, with ratios and GEMM efficiency) and a log-log figure of step time against the
//! number of identities. `f2c bench` writes both after timing ([`write_paper`]); both are also
//! rewritten from the committed `results/bench/` (`heads.csv`, `training.csv` and the run's
//! `bench.json`) by [`regenerate`], so `f2c tables` needs no retiming.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::bench::training_step::TrainRow;
use crate::bench::{fmt_mib as mib, fmt_seconds as ms, BenchOutcome, BenchRow};
use crate::error::{Error, Result};
use crate::heads::f2c::ONE_DIRECTION_STEP;
use crate::heads::{Method, PEER_STEP};
use crate::report::figures::{ensure_parent, plot_err};
use crate::report::tables::human_bytes;

/// Where the head benchmark writes its rows and where the figure goes, relative to the project root.
pub const HEADS_CSV: &str = "results/bench/heads.csv";
pub const FIGURE_SVG: &str = "paper/figures/efficiency.svg";
/// The head-state figure, beside it.
pub const MEMORY_SVG: &str = "paper/figures/head_memory.svg";
/// The efficiency table.
pub const TABLE_MD: &str = "paper/tables/efficiency.md";
/// The whole training step's time against N, beside the head's.
pub const TRAINING_SVG: &str = "paper/figures/training_step.svg";
/// Writes the efficiency table (printed too) and figure of a benchmark run under `paper`
/// (`tables/efficiency.md`, `figures/efficiency.svg`); returns the files written.
pub fn write_paper(outcome: &BenchOutcome, paper: &Path) -> Result<Vec<PathBuf>> {
    let table = markdown(
        &outcome.rows,
        &outcome.training,
        outcome.peak_gflops,
        &outcome.device,
        &outcome.load,
        &outcome.peer_source,
    );
    println!("{table}");
    let md = paper.join("tables/efficiency.md");
    crate::results::record::write_atomic(&md, table.as_bytes())?;
    let mut written = vec![md];
    if !outcome.rows.is_empty() {
        let svg = paper.join("figures/efficiency.svg");
        figure(&svg, &outcome.rows)?;
        written.push(svg);
    }
    if !outcome.training.is_empty() {
        let svg = paper.join("figures/training_step.svg");
        training_figure(&svg, &outcome.training)?;
        written.push(svg);
    }
    Ok(written)
}

/// The efficiency table in markdown.
pub fn markdown(
    rows: &[BenchRow],
    training: &[TrainRow],
    peak: f64,
    device: &str,
    load: &str,
    peer_source: &str,
) -> String {
    let mut s = String::new();
    let (d, b) = rows.first().map_or((0, 0), |r| (r.dim, r.batch));
    s += &format!("# Head-step efficiency (B {b}, D {d})\n\n");
    s += &format!(
        "One training step of each head in isolation (forward, backward into the embeddings, the head's own update), \
         median over the timed steps; device {device}; sgemm peak {peak:.1} GFLOP/s; load average at the end {load}. \
         PyTorch: {peer_source}; \
         ratio = ours / PyTorch. Bound = the step's dense GEMM flops / sgemm peak (F²C's backward skips the zeros of its negative rows — at most k non-zeros each — so its step can beat the dense bound: × bound < 1; Partial FC's all-rows step also reads and writes every centre and its momentum, memory traffic the bound does not count). Peak mem = growth of the resident high-water mark over the case.\n\n"
    );
    s += "| head | N | ours | PyTorch | ratio | head state | peak mem | GEMM GFLOP/s | % of peak | × bound | GEMMs alone |\n";
    s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0}% | {:.2} | {} |\n",
            r.label(),
            r.classes,
            ms(r.median_step_s),
            r.pytorch_s.map_or("–".into(), ms),
            r.vs_pytorch.map_or("–".into(), |v| format!("{v:.2}")),
            mib(r.head_state_bytes),
            mib(r.peak_growth_bytes),
            r.gflops,
            100.0 * r.peak_fraction,
            r.bound_ratio,
            ms(r.gemm_only_s),
        );
    }
    let find = |head: Method, variant: &str, n: usize| {
        rows.iter().find(|r| {
            r.head == head
                && r.variant == variant
                && (r.head != Method::F2c || (r.param - 0.1).abs() < 1e-9)
                && r.classes == n
        })
    };
    if let Some(n) = rows.iter().map(|r| r.classes).max() {
        if let (Some(fc), Some(f2c)) = (
            find(Method::Fc, PEER_STEP, n),
            find(Method::F2c, ONE_DIRECTION_STEP, n),
        ) {
            s += &format!(
                "\nAt N = {n}: F²C (10% pool) is {:.1}× faster than FC and holds {:.1}× less head state.\n",
                fc.median_step_s / f2c.median_step_s,
                fc.head_state_bytes as f64 / f2c.head_state_bytes as f64
            );
        }
    }
    if !training.is_empty() {
        s += "\n## Whole training step (data + probe net + gallery net + head)\n\n\
              Host→device and device→host: bytes per step the step moves between host and device \
              memory (copies in brackets), counted where the code moves them; the same on every \
              device (on the CPU they are memory copies). Inputs: uploaded per step, or the \
              training set kept on the device and each batch picked there by index (`--inputs`).\n\n\
              | method | N | batch | inputs | step | samples/s | host→device | device→host |\n\
              |---|---:|---:|---|---:|---:|---:|---:|\n";
        for t in training {
            let inputs = match t.resident_bytes {
                0 => "per step".to_string(),
                bytes => format!("on device ({})", human_bytes(bytes)),
            };
            s += &format!(
                "| {} | {} | {} | {inputs} | {} | {:.0} | {} ({}) | {} ({}) |\n",
                t.label(),
                t.classes,
                t.batch,
                ms(t.median_step_s),
                t.samples_per_s,
                human_bytes(t.to_device_bytes),
                t.to_device_copies,
                human_bytes(t.to_host_bytes),
                t.to_host_copies,
            );
        }
    }
    s += "\nCommand: `cargo run --release -- bench` (options `--classes`, `--dim`, `--batch`, `--steps`).\n";
    s
}

/// Where one benchmark's rows are read and its table and figures are written, relative to the
/// project root: the CPU's ([`CPU_PAPER`]) or the GPU's ([`GPU_PAPER`]).
#[derive(Debug, Clone, Copy)]
pub struct BenchPaper {
    pub heads_csv: &'static str,
    pub table_md: &'static str,
    pub time_svg: &'static str,
    /// The head-state figure: one per study, as head state does not depend on the device.
    pub memory_svg: Option<&'static str>,
    pub training_svg: &'static str,
    /// Whether the figures' captions name the benchmark's device (`bench.json`).
    pub device_in_caption: bool,
}

/// The CPU benchmark (`results/bench/`) and its table and figures.
pub const CPU_PAPER: BenchPaper = BenchPaper {
    heads_csv: HEADS_CSV,
    table_md: TABLE_MD,
    time_svg: FIGURE_SVG,
    memory_svg: Some(MEMORY_SVG),
    training_svg: TRAINING_SVG,
    device_in_caption: false,
};

/// The GPU check's benchmark (`results/gpu/bench/`, `scripts/gpu-check.sh`) and its table and figures.
pub const GPU_PAPER: BenchPaper = BenchPaper {
    heads_csv: "results/gpu/bench/heads.csv",
    table_md: "paper/tables/efficiency_gpu.md",
    time_svg: "paper/figures/efficiency_gpu.svg",
    memory_svg: None,
    training_svg: "paper/figures/training_step_gpu.svg",
    device_in_caption: true,
};

/// Redraws `<root>/paper/figures/efficiency.svg` and the head-state figure from the committed
/// `<root>/results/bench/heads.csv`, and rewrites `<root>/paper/tables/efficiency.md` where the
/// run's context (`bench.json`) is there too, without timing anything; nothing without the
/// benchmark file. The same for the GPU's benchmark where it was committed ([`GPU_PAPER`]).
pub fn regenerate(root: &Path) -> Result<Vec<PathBuf>> {
    let mut written = regenerate_one(root, &CPU_PAPER)?;
    written.extend(regenerate_one(root, &GPU_PAPER)?);
    Ok(written)
}

/// [`regenerate`] for one benchmark's files.
fn regenerate_one(root: &Path, paper: &BenchPaper) -> Result<Vec<PathBuf>> {
    let csv = root.join(paper.heads_csv);
    if !csv.exists() {
        return Ok(Vec::new());
    }
    let mut rows = crate::bench::read_rows(&csv)?;
    let mut written = Vec::new();
    let dir = csv.parent().expect("a file has a folder");
    let mut on = String::new();
    if let Some(c) = crate::bench::BenchContext::read(dir)? {
        let training = dir.join("training.csv");
        let training = match training.exists() {
            true => crate::bench::training_step::read_rows(&training)?,
            false => Vec::new(),
        };
        let table = markdown(
            &rows,
            &training,
            c.peak_gflops,
            &c.device,
            &c.load,
            &c.peer_source,
        );
        let md = root.join(paper.table_md);
        crate::results::record::write_atomic(&md, table.as_bytes())?;
        written.push(md);
        if paper.device_in_caption {
            on = format!(" on {}", c.device);
        }
    }
    // Larger sizes benchmarked separately (e.g. `results/bench/cpu-10m/`) at the same D and batch
    // extend the curves; other shapes (e.g. D 512) are separate studies.
    let shape = rows.first().map(|r| (r.dim, r.batch));
    let beside = |file: &str| -> Result<Vec<PathBuf>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path().join(file)))
            .filter(|p| p.exists())
            .collect();
        paths.sort();
        Ok(paths)
    };
    for path in beside("heads.csv")? {
        rows.extend(
            crate::bench::read_rows(&path)?
                .into_iter()
                .filter(|r| Some((r.dim, r.batch)) == shape),
        );
    }
    let time = root.join(paper.time_svg);
    plot(&time, &rows, Plotted::StepTime, &on)?;
    written.push(time);
    if let Some(memory) = paper.memory_svg {
        let memory = root.join(memory);
        memory_figure(&memory, &rows)?;
        written.push(memory);
    }
    // The whole steps, extended the same way at the same batch.
    let training = dir.join("training.csv");
    if training.exists() {
        let mut steps = crate::bench::training_step::read_rows(&training)?;
        let batch = steps.first().map(|t| t.batch);
        for path in beside("training.csv")? {
            steps.extend(
                crate::bench::training_step::read_rows(&path)?
                    .into_iter()
                    .filter(|t| Some(t.batch) == batch),
            );
        }
        let svg = root.join(paper.training_svg);
        training_figure_on(&svg, &steps, &on)?;
        written.push(svg);
    }
    Ok(written)
}

/// Step time against identities, log-log: per method one colour, ours solid with dots, the
/// PyTorch peer's dashed with crosses; the legend sits right of the plot, one entry per method.
pub fn figure(path: &Path, rows: &[BenchRow]) -> Result<()> {
    plot(path, rows, Plotted::StepTime, "")
}

/// Head state (centres and momentum, pool or queue) against identities, log-log, one line per
/// method; the memory side of the paper's second claim.
pub fn memory_figure(path: &Path, rows: &[BenchRow]) -> Result<()> {
    plot(path, rows, Plotted::HeadState, "")
}

/// The whole training step of each method's shipped experiment against identities, log-log, one
/// line per method: the time side of the paper's second claim, networks included.
pub fn training_figure(path: &Path, training: &[TrainRow]) -> Result<()> {
    training_figure_on(path, training, "")
}

/// [`training_figure`] with `on` (e.g. " on cuda:0 (NVIDIA H200)") after its caption.
fn training_figure_on(path: &Path, training: &[TrainRow], on: &str) -> Result<()> {
    let rows: Vec<BenchRow> = training
        .iter()
        .filter_map(|t| {
            let method = t.method.parse::<Method>().ok()?;
            let state = t.head_state_bytes.unwrap_or(0);
            Some(BenchRow::timed(
                method,
                t.param,
                &t.variant,
                t.classes,
                0,
                t.batch,
                t.median_step_s,
                state,
            ))
        })
        .collect();
    plot(path, &rows, Plotted::WholeStep, on)
}

/// Colours of the methods, in order of first appearance (colour-blind safe, Okabe–Ito).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
];

/// Width of the plot and of the legend column right of it, and the height, pixels.
const PLOT_W: u32 = 600;
const LEGEND_W: u32 = 300;
const HEIGHT: u32 = 460;

/// What a figure plots against N.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plotted {
    /// Median seconds per step, with the PyTorch peer's dashed.
    StepTime,
    /// Bytes of head state, in MiB.
    HeadState,
    /// Median seconds per whole training step (no peer).
    WholeStep,
}

impl Plotted {
    fn ours(self, r: &BenchRow) -> f64 {
        match self {
            Plotted::StepTime | Plotted::WholeStep => r.median_step_s,
            Plotted::HeadState => r.head_state_bytes as f64 / (1u64 << 20) as f64,
        }
    }

    fn peer(self, r: &BenchRow) -> Option<f64> {
        match self {
            Plotted::StepTime => r.pytorch_s,
            Plotted::HeadState | Plotted::WholeStep => None,
        }
    }
}

/// Draws `what` against N; `on` follows the caption (the device, where it is not the CPU).
fn plot(path: &Path, rows: &[BenchRow], what: Plotted, on: &str) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| plot_err(path, e);
    ensure_parent(path)?;
    let xs = rows.iter().map(|r| r.classes as f64);
    let (x0, x1) = xs.fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    let ys = rows
        .iter()
        .flat_map(|r| [Some(what.ours(r)), what.peer(r)])
        .flatten();
    let (y0, y1) = ys.fold((f64::INFINITY, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    if rows.is_empty() || y0.is_nan() || y0 <= 0.0 {
        return Err(Error::Other(format!(
            "{}: no timings to plot",
            path.display()
        )));
    }
    // Rows come size by size; a series is one (head, variant, parameter), in order of first
    // appearance, so each is drawn and named once however many sizes were timed.
    let mut series: Vec<(Method, &str, f64)> = Vec::new();
    for r in rows {
        let key = (r.head, r.variant.as_str(), r.param);
        if !series.contains(&key) {
            series.push(key);
        }
    }
    let root = SVGBackend::new(path, (PLOT_W + LEGEND_W, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (plot, legend) = root.split_horizontally(PLOT_W);
    let (b, d) = (rows[0].batch, rows[0].dim);
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            match what {
                Plotted::StepTime => {
                    format!("Head step time against identities (B {b}, D {d}){on}")
                }
                Plotted::HeadState => format!("Head state against identities (D {d}){on}"),
                Plotted::WholeStep => format!("Whole training step against identities (B {b}){on}"),
            },
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (x0 / 1.5..x1 * 1.5).log_scale(),
            (y0 / 2.0..y1 * 2.0).log_scale(),
        )
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("identities N")
        .y_desc(match what {
            Plotted::StepTime | Plotted::WholeStep => "seconds per step",
            Plotted::HeadState => "head state, MiB",
        })
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(|e| err(&e))?;
    let mut entries = Vec::new();
    for (i, &(head, variant, param)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<&BenchRow> = rows
            .iter()
            .filter(|r| r.head == head && r.variant == variant && r.param == param)
            .collect();
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|r| (r.classes as f64, what.ours(r))),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                pts.iter()
                    .map(|r| Circle::new((r.classes as f64, what.ours(r)), 4, color.filled())),
            )
            .map_err(|e| err(&e))?;
        let peer: Vec<(f64, f64)> = pts
            .iter()
            .filter_map(|r| Some((r.classes as f64, what.peer(r)?)))
            .collect();
        if !peer.is_empty() {
            chart
                .draw_series(DashedLineSeries::new(
                    peer.clone(),
                    7,
                    5,
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
            chart
                .draw_series(
                    peer.iter()
                        .map(|&p| Cross::new(p, 5, color.stroke_width(2))),
                )
                .map_err(|e| err(&e))?;
        }
        let last = pts.last().map_or(0.0, |r| what.ours(r));
        entries.push((
            head.series_name(variant, param),
            color,
            !peer.is_empty(),
            last,
        ));
    }
    // Listed top to bottom as the lines end at the largest N, so the legend reads like the plot.
    entries.sort_by(|a, b| b.3.total_cmp(&a.3));
    let entries: Vec<_> = entries.into_iter().map(|(n, c, p, _)| (n, c, p)).collect();
    draw_legend(&legend, &entries).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// The legend column: one line per method in its colour (with a dashed sample where PyTorch was
/// timed too), then the key to the line styles; the PyTorch key only when a dashed line is drawn
/// (the head-state figure has none: the peer's memory is not measured).
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(String, RGBColor, bool)],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = ("sans-serif", 13).into_font();
    let (x, mut y) = (8, 48);
    let sample = |x0: i32, y: i32, color: RGBColor, dashed: bool| -> Vec<PathElement<(i32, i32)>> {
        if dashed {
            (0..3)
                .map(|k| {
                    let a = x0 + k * 8;
                    PathElement::new([(a, y), (a + 5, y)], color.stroke_width(2))
                })
                .collect()
        } else {
            vec![PathElement::new(
                [(x0, y), (x0 + 21, y)],
                color.stroke_width(2),
            )]
        }
    };
    area.draw(&Text::new(
        "method",
        (x, y - 22),
        font.clone().style(FontStyle::Bold),
    ))?;
    for (name, color, peer) in entries {
        for e in sample(x, y, *color, false) {
            area.draw(&e)?;
        }
        if *peer {
            for e in sample(x + 26, y, *color, true) {
                area.draw(&e)?;
            }
        }
        area.draw(&Text::new(
            name.clone(),
            (x + 56, y - 7),
            font.clone().color(color),
        ))?;
        y += 22;
    }
    y += 18;
    area.draw(&Text::new(
        "line",
        (x, y - 22),
        font.clone().style(FontStyle::Bold),
    ))?;
    let any_peer = entries.iter().any(|(_, _, peer)| *peer);
    for (dashed, what) in [
        (false, "ours (Rust), dots"),
        (true, "PyTorch peer, crosses"),
    ] {
        if dashed && !any_peer {
            continue;
        }
        for e in sample(x, y, BLACK, dashed) {
            area.draw(&e)?;
        }
        area.draw(&Text::new(what, (x + 56, y - 7), font.clone()))?;
        y += 22;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(head: Method, param: f64, variant: &str, classes: usize, s: f64) -> BenchRow {
        BenchRow {
            pytorch_s: Some(2.0 * s),
            ..BenchRow::timed(head, param, variant, classes, 128, 256, s, 1000)
        }
    }

    #[test]
    fn figure_names_each_series_once_however_many_sizes() {
        // Rows come size by size, so a series' rows are not adjacent: each name must still appear
        // once in the legend, not once per size.
        let mut rows = Vec::new();
        for (i, n) in [10_000, 100_000, 1_000_000].into_iter().enumerate() {
            let t = 10f64.powi(i as i32);
            rows.push(timing(
                Method::F2c,
                0.01,
                "row0-one-direction",
                n,
                0.001 * t,
            ));
            rows.push(timing(Method::PartialFc, 0.1, "peer", n, 0.01 * t));
            rows.push(timing(Method::Fc, 1.0, "peer", n, 0.1 * t));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fig.svg");
        figure(&path, &rows).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        // plotters writes each text on its own line.
        let count = |name: &str| svg.lines().filter(|l| l.trim() == name).count();
        for name in ["F²C 1%", "Partial FC r=0.1", "FC", "PyTorch peer, crosses"] {
            assert_eq!(count(name), 1, "{name} in the legend");
        }
    }

    #[test]
    fn the_pytorch_key_only_where_a_dashed_line_is_drawn() {
        // The rows carry PyTorch timings: the step-time figure draws them dashed and keys them;
        // the head-state figure has no PyTorch series, so its legend must not name one.
        let rows = [
            timing(Method::Fc, 1.0, "peer", 10_000, 0.01),
            timing(Method::Fc, 1.0, "peer", 100_000, 0.1),
        ];
        let dir = tempfile::tempdir().unwrap();
        let (time, memory) = (dir.path().join("t.svg"), dir.path().join("m.svg"));
        figure(&time, &rows).unwrap();
        memory_figure(&memory, &rows).unwrap();
        let keyed = |path: &Path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .any(|l| l.trim() == "PyTorch peer, crosses")
        };
        assert!(keyed(&time));
        assert!(!keyed(&memory));
    }

    #[test]
    fn figure_is_redrawn_from_the_bench_csv_alone() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join(HEADS_CSV);
        std::fs::create_dir_all(csv.parent().unwrap()).unwrap();
        let written = [
            timing(Method::F2c, 0.1, "row0-one-direction", 10_000, 0.002),
            BenchRow::timed(
                Method::F2c,
                0.1,
                "tworow-symmetric",
                10_000,
                128,
                256,
                0.003,
                1,
            ),
        ];
        crate::results::csv_rows::write_rows(&csv, &written).unwrap();
        let rows = crate::bench::read_rows(&csv).unwrap();
        assert_eq!(rows, written);
        assert_eq!(rows[0].pytorch_s, Some(0.004));
        assert_eq!(rows[1].pytorch_s, None);
        let svgs = regenerate(dir.path()).unwrap();
        assert_eq!(svgs.len(), 2);
        assert!(std::fs::read_to_string(&svgs[0])
            .unwrap()
            .contains("reference: 2 rows"));
        assert!(std::fs::read_to_string(&svgs[1])
            .unwrap()
            .contains("head state, MiB"));
        // No benchmark file: nothing to draw, not an error.
        assert!(regenerate(&dir.path().join("empty")).unwrap().is_empty());
    }
}
