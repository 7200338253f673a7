//! Paper figures as SVG: TAR@FAR=1e-3 (mean over seeds with 95% CI error bars) against the F²C
//! pool fraction (log x) and against the EMA momentum of the gallery net (categorical x), each with
//! the Full FC its group's rows are compared with in the tables (see
//! [`crate::report::stats::config_stats`]) and the Partial FC of that Full FC's group as
//! horizontal reference lines, named with their group.
//!
//! Collapsed runs (at or below the untrained network) are left out of the means and named on the x
//! axis label with their count.
//!
//! plotters' SVG backend writes text as SVG `<text>` elements and sizes it with its built-in
//! approximate metrics, so no font file is needed. Error bars are drawn as paths (the `errorbar`
//! feature of plotters is not needed).

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::ablation::summary::SummaryRow;
use crate::error::{Error, Result};
use crate::heads::Method;
use crate::numbers::short_number;
use crate::report::stats::{config_stats, ConfigStats, Metric, Summary};
use crate::report::tables::method_name;

/// Size of every figure but the efficiency figures, pixels.
const SIZE: (u32, u32) = (640, 420);

/// One plotted point: x position and TAR@FAR=1e-3 in percent with its CI half-width.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    x: f64,
    mean: f64,
    ci: Option<f64>,
}

/// A horizontal reference line: its legend name and TAR@FAR=1e-3 in percent.
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    name: String,
    mean: f64,
    ci: Option<f64>,
}

fn tar_1e3_percent(c: &ConfigStats) -> Option<Summary> {
    c.summary(Metric::TarFar1e3).map(|s| Summary {
        n: s.n,
        mean: s.mean * 100.0,
        std: s.std.map(|x| x * 100.0),
        ci95: s.ci95.map(|x| x * 100.0),
    })
}

/// The Full FC the rows of `group` are compared with (the first row's reference), else the
/// `main` group's, and the first Partial FC configuration of that Full FC's group, where they have
/// results.
fn references(stats: &[ConfigStats], group: &str) -> Vec<Reference> {
    let first_of =
        |g: &str, m: Method| stats.iter().find(|c| c.group == g && c.first().method == m);
    let fc = stats
        .iter()
        .filter(|c| c.group == group)
        .find_map(|c| c.reference.as_ref())
        .and_then(|k| stats.iter().find(|c| c.key() == *k))
        .or_else(|| first_of("main", Method::Fc));
    let pfc = first_of(fc.map_or("main", |c| c.group.as_str()), Method::PartialFc);
    [fc, pfc]
        .into_iter()
        .flatten()
        .filter_map(|c| {
            tar_1e3_percent(c).map(|s| Reference {
                name: format!("{} ({})", method_name(c.first()), c.group),
                mean: s.mean,
                ci: s.ci95,
            })
        })
        .collect()
}

/// Configurations of `group` that have a value of `axis` and a TAR@FAR=1e-3 result, sorted by the axis.
fn axis_points(
    stats: &[ConfigStats],
    group: &str,
    axis: fn(&SummaryRow) -> Option<f64>,
) -> Vec<(f64, Summary)> {
    let mut pts: Vec<(f64, Summary)> = stats
        .iter()
        .filter(|c| c.group == group)
        .filter_map(|c| Some((axis(c.first())?, tar_1e3_percent(c)?)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// The axis label, followed by the settings of `group` with collapsed runs, which the means leave
/// out: "…; collapsed, left out: 0 (3/3)".
fn x_desc_with_collapse(
    stats: &[ConfigStats],
    group: &str,
    desc: &str,
    name: impl Fn(&SummaryRow) -> String,
) -> String {
    let collapsed: Vec<String> = stats
        .iter()
        .filter(|c| c.group == group && c.collapsed() > 0)
        .map(|c| format!("{} ({}/{})", name(c.first()), c.collapsed(), c.runs()))
        .collect();
    if collapsed.is_empty() {
        desc.to_string()
    } else {
        format!("{desc}; collapsed, left out: {}", collapsed.join(", "))
    }
}

/// Creates the figure's directory; only called once a figure has something to show.
pub(crate) fn ensure_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e)),
        None => Ok(()),
    }
}

/// The error of a figure at `path` that could not be drawn.
pub(crate) fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Other(format!(
        "{}: drawing the figure failed: {e}",
        path.display()
    ))
}

/// The y range covering every point, interval and reference line, with a margin.
fn y_range(points: &[Point], refs: &[Reference]) -> std::ops::Range<f64> {
    let lows = points
        .iter()
        .map(|p| p.mean - p.ci.unwrap_or(0.0))
        .chain(refs.iter().map(|r| r.mean - r.ci.unwrap_or(0.0)));
    let highs = points
        .iter()
        .map(|p| p.mean + p.ci.unwrap_or(0.0))
        .chain(refs.iter().map(|r| r.mean + r.ci.unwrap_or(0.0)));
    let lo = lows.fold(f64::INFINITY, f64::min);
    let hi = highs.fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.1).max(0.5);
    (lo - pad).max(0.0)..(hi + pad).min(100.0)
}

/// What a figure shows, apart from its x axis type.
struct Figure<'a> {
    caption: &'a str,
    x_desc: String,
    /// How many x ticks to ask for.
    x_labels: usize,
    x_fmt: &'a dyn Fn(&f64) -> String,
    /// The x extent of the reference lines: the whole axis.
    x_span: (f64, f64),
    points: Vec<Point>,
    refs: Vec<Reference>,
}

/// Draws an SVG figure of the suite's size at `path`, its folder created: a white canvas and a
/// chart with `caption` over `x` × `y`, which `draw` fills (mesh and series, each series with a
/// legend entry such as [`legend_line`]), then the legend in the lower right.
pub(crate) fn line_figure<X>(
    path: &Path,
    caption: &str,
    x: X,
    y: Range<f64>,
    draw: impl FnOnce(&mut LineChart<'_, '_, X>) -> Result<()>,
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
{
    let err = |e: &dyn std::fmt::Display| plot_err(path, e);
    ensure_parent(path)?;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y)
        .map_err(|e| err(&e))?;
    draw(&mut chart)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// The chart [`line_figure`] hands its caller: x of `X`, y linear.
pub(crate) type LineChart<'a, 'b, X> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<<X as AsRangedCoord>::CoordDescType, RangedCoordf64>,
>;

/// A legend entry's mark: a short 2 px line in `color`.
pub(crate) fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
}

/// Draws the points with error bars, joined by a line, and the reference lines with their CI bands.
fn draw<X>(path: &Path, fig: &Figure, x_spec: X) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: &dyn std::fmt::Display| plot_err(path, e);
    let y = y_range(&fig.points, &fig.refs);
    line_figure(path, fig.caption, x_spec, y, |chart| {
        chart
            .configure_mesh()
            .x_desc(fig.x_desc.as_str())
            .y_desc("TAR@FAR=1e-3 (%)")
            .x_labels(fig.x_labels)
            .x_label_formatter(fig.x_fmt)
            .y_label_formatter(&|y| format!("{y:.1}"))
            .disable_x_mesh()
            .light_line_style(BLACK.mix(0.04))
            .draw()
            .map_err(|e| err(&e))?;

        let (x0, x1) = fig.x_span;
        for (r, color) in fig.refs.iter().zip([RED, BLUE]) {
            if let Some(ci) = r.ci {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, r.mean - ci), (x1, r.mean + ci)],
                        color.mix(0.12).filled(),
                    )))
                    .map_err(|e| err(&e))?;
            }
            let label = match r.ci {
                Some(ci) => format!("{} {:.2} ± {:.2} (band: 95% CI)", r.name, r.mean, ci),
                None => format!("{} {:.2}", r.name, r.mean),
            };
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, r.mean), (x1, r.mean)],
                    6,
                    4,
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(label)
                .legend(legend_line(color));
        }

        let bar = BLACK.stroke_width(1);
        for p in &fig.points {
            let Some(ci) = p.ci else { continue };
            chart
                .draw_series(std::iter::once(PathElement::new(
                    [(p.x, p.mean - ci), (p.x, p.mean + ci)],
                    bar,
                )))
                .map_err(|e| err(&e))?;
            // Caps are a fixed number of pixels wide, whatever the x scale.
            let cap =
                |y: f64| EmptyElement::at((p.x, y)) + PathElement::new([(-5, 0), (5, 0)], bar);
            chart
                .draw_series([cap(p.mean - ci), cap(p.mean + ci)])
                .map_err(|e| err(&e))?;
        }
        chart
            .draw_series(LineSeries::new(
                fig.points.iter().map(|p| (p.x, p.mean)),
                BLACK.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label("F²C, mean ± 95% CI over seeds")
            .legend(legend_line(BLACK));
        chart
            .draw_series(
                fig.points
                    .iter()
                    .map(|p| Circle::new((p.x, p.mean), 4, BLACK.filled())),
            )
            .map_err(|e| err(&e))?;
        Ok(())
    })
}

/// TAR@FAR=1e-3 against the pool fraction of the `pool_size` group; `false` when it has no results.
fn pool_figure(stats: &[ConfigStats], path: &Path) -> Result<bool> {
    let pts = axis_points(stats, "pool_size", |r| r.pool_fraction.filter(|f| *f > 0.0));
    if pts.is_empty() {
        return Ok(false);
    }
    let points: Vec<Point> = pts
        .iter()
        .map(|(x, s)| Point {
            x: *x,
            mean: s.mean,
            ci: s.ci95,
        })
        .collect();
    // A factor 3 of room on each side so the end points and their bars are not on the frame.
    let (lo, hi) = (points[0].x / 3.0, points[points.len() - 1].x * 3.0);
    let fig = Figure {
        caption: "F²C: TAR@FAR=1e-3 vs pool size",
        x_desc: x_desc_with_collapse(
            stats,
            "pool_size",
            "pool size (fraction of training identities, log scale)",
            |r| r.label.clone(),
        ),
        x_labels: 8,
        x_fmt: &|x| format!("{}%", short_number(x * 100.0)),
        x_span: (lo, hi),
        points,
        refs: references(stats, "pool_size"),
    };
    draw(path, &fig, (lo..hi).log_scale())?;
    Ok(true)
}

/// TAR@FAR=1e-3 against the EMA momentum of the `ema` group, one category per momentum; `false`
/// when it has no results.
fn ema_figure(stats: &[ConfigStats], path: &Path) -> Result<bool> {
    let pts = axis_points(stats, "ema", |r| r.ema_momentum);
    if pts.is_empty() {
        return Ok(false);
    }
    // Categories sit at 0, 1, 2, …; the formatter names only the integer ticks.
    let names: Vec<String> = pts.iter().map(|(m, _)| short_number(*m)).collect();
    let points: Vec<Point> = pts
        .iter()
        .enumerate()
        .map(|(i, (_, s))| Point {
            x: i as f64,
            mean: s.mean,
            ci: s.ci95,
        })
        .collect();
    let (lo, hi) = (-0.5, points.len() as f64 - 0.5);
    let fmt = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
            names[i as usize].clone()
        } else {
            String::new()
        }
    };
    let fig = Figure {
        caption: "F²C: TAR@FAR=1e-3 vs gallery EMA momentum",
        x_desc: x_desc_with_collapse(
            stats,
            "ema",
            "EMA momentum m of the gallery net (0: gallery = probe)",
            |r| r.ema_momentum.map_or(r.label.clone(), short_number),
        ),
        x_labels: points.len() + 1,
        x_fmt: &fmt,
        x_span: (lo, hi),
        points,
        refs: references(stats, "ema"),
    };
    draw(path, &fig, lo..hi)?;
    Ok(true)
}

/// Writes `<out_dir>/tar_vs_pool_fraction.svg` and `<out_dir>/tar_vs_ema_momentum.svg`, each only
/// when its group (`pool_size`, `ema`) has results, and returns the paths written. `out_dir` is the
/// figures folder (`paper/figures`); it is created only when a figure is written.
pub fn write_figures(rows: &[SummaryRow], out_dir: &Path) -> Result<Vec<PathBuf>> {
    let stats = config_stats(rows);
    let mut written = Vec::new();
    type Maker = fn(&[ConfigStats], &Path) -> Result<bool>;
    let figures: [(&str, Maker); 2] = [
        ("tar_vs_pool_fraction.svg", pool_figure),
        ("tar_vs_ema_momentum.svg", ema_figure),
    ];
    for (name, figure) in figures {
        let path = out_dir.join(name);
        if figure(&stats, &path)? {
            written.push(path);
        }
    }
    Ok(written)
}
