//! The benchmark's outputs for the paper: the efficiency table (our head steps next to the PyTorch
//! peer's figures from issue 5, with ratios and GEMM efficiency) and a log-log figure of step time
//! against the number of identities.

use std::path::Path;

use plotters::prelude::*;

use super::head_step::HeadCase;
use super::training_step::TrainRow;
use super::BenchRow;
use crate::error::{Error, Result};

/// PyTorch 2.x on this kind of 2-core CPU machine, `shared/bench/torch_heads.py` at B 256, D 128
/// (issue 5): seconds per step at 10k / 100k / 1M identities.
const PYTORCH: [(&str, f64, [f64; 3]); 4] = [
    ("fc", 1.0, [0.0397, 0.880, 9.50]),
    ("pfc", 0.1, [0.0059, 0.096, 1.50]),
    ("f2c", 0.1, [0.0024, 0.025, 0.488]),
    ("f2c", 0.01, [0.0011, 0.0026, 0.025]),
];

/// The peer's seconds for the same step, where the issue gives one (the F²C reference variant has
/// no peer: the peer times one direction against row 0).
pub fn pytorch_seconds(case: &HeadCase, classes: usize, dim: usize, batch: usize) -> Option<f64> {
    if dim != 128 || batch != 256 || case.variant() == "tworow-symmetric" {
        return None;
    }
    let col = [10_000, 100_000, 1_000_000]
        .iter()
        .position(|&c| c == classes)?;
    PYTORCH
        .iter()
        .find(|(h, p, _)| *h == case.head() && (p - case.param()).abs() < 1e-9)
        .map(|(_, _, t)| t[col])
}

/// The PyTorch peer's step times: measured on this machine (the JSON lines that
/// `shared/bench/torch_heads.py` prints, passed with `f2c bench --peer FILE`), else the figures
/// quoted in issue 5.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    measured: Option<std::collections::HashMap<(String, usize, usize, usize), f64>>,
}

impl Peer {
    /// Reads the peer's JSON lines (`{"head": "fc" | "pfc0.1" | "f2c0.1" | …, "classes", "dim",
    /// "batch", "median_s"}`).
    pub fn from_json_lines(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut map = std::collections::HashMap::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                Error::Other(format!(
                    "{}:{}: not a JSON line: {e}",
                    path.display(),
                    i + 1
                ))
            })?;
            let field = |k: &str| {
                v.get(k).ok_or_else(|| {
                    Error::Other(format!(
                        "{}:{}: missing `{k}` (expected torch_heads.py output)",
                        path.display(),
                        i + 1
                    ))
                })
            };
            let num = |k: &str| field(k).map(|x| x.as_f64().unwrap_or(f64::NAN));
            let head = field("head")?.as_str().unwrap_or_default().to_string();
            map.insert(
                (
                    head,
                    num("classes")? as usize,
                    num("dim")? as usize,
                    num("batch")? as usize,
                ),
                num("median_s")?,
            );
        }
        Ok(Peer {
            measured: Some(map),
        })
    }

    /// Seconds of the peer's step matching `case`, where known.
    pub fn seconds(
        &self,
        case: &HeadCase,
        classes: usize,
        dim: usize,
        batch: usize,
    ) -> Option<f64> {
        match &self.measured {
            None => pytorch_seconds(case, classes, dim, batch),
            Some(_) if case.variant() == "tworow-symmetric" => None,
            Some(map) => {
                let key = match case.head.method() {
                    crate::heads::Method::Fc => "fc".to_string(),
                    _ => format!("{}{}", case.head(), case.param()),
                };
                map.get(&(key, classes, dim, batch)).copied()
            }
        }
    }

    /// Where the peer's figures come from, for the table's caption.
    pub fn source(&self) -> &'static str {
        match self.measured {
            Some(_) => "measured side by side on this machine (`shared/bench/torch_heads.py`, `f2c bench --peer`)",
            None => "the figures quoted in issue 5 (`shared/bench/torch_heads.py`, PyTorch 2.x CPU, same kind of machine)",
        }
    }
}

fn label(r: &BenchRow) -> String {
    match (r.head.as_str(), r.variant.as_str()) {
        ("fc", _) => "FC".into(),
        ("pfc", _) => format!("Partial FC r={}", r.param),
        ("dcq", _) => format!("DCQ queue {}%", r.param * 100.0),
        (_, "tworow-symmetric") => {
            format!("F²C {}% (reference: 2 rows, symmetric)", r.param * 100.0)
        }
        _ => format!("F²C {}%", r.param * 100.0),
    }
}

fn ms(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

/// One progress line per case.
pub fn row_line(r: &BenchRow) -> String {
    format!(
        "{:<44} N {:>8}  {:>9}  state {:>11}  peak +{:>11}  {:6.1} GFLOP/s ({:4.0}% of peak, {:.2}× bound)  gemm-only {:>9}{}",
        label(r),
        r.classes,
        ms(r.median_step_s),
        mib(r.head_state_bytes),
        mib(r.peak_growth_bytes),
        r.gflops,
        100.0 * r.peak_fraction,
        r.bound_ratio,
        ms(r.gemm_only_s),
        r.pytorch_s
            .map_or(String::new(), |p| format!("  pytorch {} ({:.2}×)", ms(p), r.median_step_s / p)),
    ) + &r.device_mem_bytes.map_or(String::new(), |m| format!("  device mem {}", mib(m)))
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
         ratio = ours / PyTorch. Bound = the step's dense GEMM flops / sgemm peak (F²C's backward skips the zeros of its negative rows — at most k non-zeros each — so its step can beat the dense bound: × bound < 1). Peak mem = growth of the resident high-water mark over the case.\n\n"
    );
    s += "| head | N | ours | PyTorch | ratio | head state | peak mem | GEMM GFLOP/s | % of peak | × bound | GEMMs alone |\n";
    s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0}% | {:.2} | {} |\n",
            label(r),
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
    let find = |head: &str, variant: &str, n: usize| {
        rows.iter().find(|r| {
            r.head == head
                && r.variant == variant
                && (r.head != "f2c" || (r.param - 0.1).abs() < 1e-9)
                && r.classes == n
        })
    };
    if let Some(n) = rows.iter().map(|r| r.classes).max() {
        if let (Some(fc), Some(f2c)) = (find("fc", "peer", n), find("f2c", "row0-one-direction", n))
        {
            s += &format!(
                "\nAt N = {n}: F²C (10% pool) is {:.1}× faster than FC and holds {:.1}× less head state.\n",
                fc.median_step_s / f2c.median_step_s,
                fc.head_state_bytes as f64 / f2c.head_state_bytes as f64
            );
        }
    }
    if !training.is_empty() {
        s += "\n## Whole training step (data + probe net + gallery net + head)\n\n| method | N | batch | step | samples/s |\n|---|---:|---:|---:|---:|\n";
        for t in training {
            s += &format!(
                "| {} ({}) | {} | {} | {} | {:.0} |\n",
                t.method,
                t.param,
                t.classes,
                t.batch,
                ms(t.median_step_s),
                t.samples_per_s
            );
        }
    }
    s += "\nCommand: `cargo run --release -- bench` (options `--classes`, `--dim`, `--batch`, `--steps`).\n";
    s
}

/// Step time against identities, log-log: ours solid with dots, PyTorch's dashed with crosses.
pub fn figure(path: &Path, rows: &[BenchRow]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| {
        Error::Other(format!(
            "{}: drawing the figure failed: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let xs = rows.iter().map(|r| r.classes as f64);
    let (x0, x1) = xs.fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    let ys = rows
        .iter()
        .flat_map(|r| [Some(r.median_step_s), r.pytorch_s])
        .flatten();
    let (y0, y1) = ys.fold((f64::INFINITY, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    if rows.is_empty() || !(y0 > 0.0) {
        return Err(Error::Other(format!(
            "{}: no timings to plot",
            path.display()
        )));
    }
    let root = SVGBackend::new(path, (760, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Head step time against identities (B 256, D 128)",
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
        .y_desc("seconds per step")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(|e| err(&e))?;
    let mut series: Vec<(String, String, f64)> = rows
        .iter()
        .map(|r| (r.head.clone(), r.variant.clone(), r.param))
        .collect();
    series.dedup();
    let palette = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for (i, (head, variant, param)) in series.iter().enumerate() {
        let color = palette[i % palette.len()];
        let pts: Vec<&BenchRow> = rows
            .iter()
            .filter(|r| &r.head == head && &r.variant == variant && r.param == *param)
            .collect();
        let name = label(pts[0]);
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|r| (r.classes as f64, r.median_step_s)),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(format!("ours: {name}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(
                pts.iter()
                    .map(|r| Circle::new((r.classes as f64, r.median_step_s), 4, color.filled())),
            )
            .map_err(|e| err(&e))?;
        let peer: Vec<(f64, f64)> = pts
            .iter()
            .filter_map(|r| Some((r.classes as f64, r.pytorch_s?)))
            .collect();
        if !peer.is_empty() {
            chart
                .draw_series(DashedLineSeries::new(
                    peer.clone(),
                    6,
                    4,
                    color.mix(0.6).stroke_width(1),
                ))
                .map_err(|e| err(&e))?
                .label(format!("PyTorch: {name}"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.mix(0.6).stroke_width(1))
                });
            chart
                .draw_series(peer.iter().map(|&p| Cross::new(p, 4, color.mix(0.6))))
                .map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_figures_match_the_issue() {
        let f2c10 = HeadCase::f2c(0.1, false);
        assert_eq!(
            pytorch_seconds(&HeadCase::fc(), 1_000_000, 128, 256),
            Some(9.50)
        );
        assert_eq!(
            pytorch_seconds(&HeadCase::pfc(0.1), 100_000, 128, 256),
            Some(0.096)
        );
        assert_eq!(pytorch_seconds(&f2c10, 10_000, 128, 256), Some(0.0024));
        assert_eq!(
            pytorch_seconds(&HeadCase::f2c(0.1, true), 10_000, 128, 256),
            None
        );
        assert_eq!(pytorch_seconds(&f2c10, 10_000, 512, 256), None);
        assert_eq!(pytorch_seconds(&f2c10, 20_000, 128, 256), None);
    }

    #[test]
    fn measured_peer_lines_replace_the_quoted_figures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.jsonl");
        std::fs::write(
            &path,
            "{\"peer\": \"pytorch\", \"head\": \"fc\", \"classes\": 10000, \"dim\": 128, \"batch\": 256, \"median_s\": 0.05}\n\
             {\"peer\": \"pytorch\", \"head\": \"f2c0.01\", \"classes\": 10000, \"dim\": 128, \"batch\": 256, \"median_s\": 0.002}\n",
        )
        .unwrap();
        let peer = Peer::from_json_lines(&path).unwrap();
        assert_eq!(peer.seconds(&HeadCase::fc(), 10_000, 128, 256), Some(0.05));
        let f2c1 = HeadCase::f2c(0.01, false);
        assert_eq!(peer.seconds(&f2c1, 10_000, 128, 256), Some(0.002));
        // Not measured: no figure (never a quoted one mixed in).
        assert_eq!(peer.seconds(&HeadCase::pfc(0.1), 10_000, 128, 256), None);
        assert_eq!(
            Peer::default().seconds(&HeadCase::fc(), 10_000, 128, 256),
            Some(0.0397)
        );
    }
}
