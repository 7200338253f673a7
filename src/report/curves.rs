//! Learning curves in the report: `results/curves/curve-<method>.csv` (the long pilot) and
//! `curve-<method>-19ep.csv` (the default matrix's length), written by `f2c curve` on a validation
//! split of training identities. Drawn into `paper/figures/learning_curves*.svg` and summarised
//! (plateau, last TAR@FAR=1e-3) in the reproduction report, so the matrix's training length is
//! backed by curves rather than chosen blind.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::heads::Method;
use crate::train::curve::{plateau, plot, read_csv, CurveRow};

/// (file suffix, figure file, what the length is).
const SETS: [(&str, &str, &str); 2] = [
    (
        "-19ep",
        "learning_curves.svg",
        "the default matrix's length (5,800 steps, 19 epochs)",
    ),
    (
        "",
        "learning_curves_long.svg",
        "about twice as long (12,000 steps, 39 epochs)",
    ),
];

/// The curves of one set, by method, as found under `<root>/results/curves/`.
fn curves(root: &Path, suffix: &str) -> Result<Vec<(Method, Vec<CurveRow>)>> {
    let mut out = Vec::new();
    for m in Method::ALL {
        let path = root
            .join("results/curves")
            .join(format!("curve-{}{suffix}.csv", m.key()));
        if path.exists() {
            out.push((m, read_csv(&path)?));
        }
    }
    Ok(out)
}

/// Draws the figure of each set that has curves; returns the files written.
pub fn figures(root: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (suffix, figure, _) in SETS {
        let set = curves(root, suffix)?;
        if set.is_empty() {
            continue;
        }
        let named: Vec<(String, Vec<CurveRow>)> = set
            .into_iter()
            .map(|(m, rows)| (m.label().to_string(), rows))
            .collect();
        let path = root.join("paper/figures").join(figure);
        plot(&named, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// The report's section on training length (empty when there is no curve).
pub fn section(root: &Path) -> Result<String> {
    let mut rows = String::new();
    for (suffix, _, length) in SETS {
        for (m, curve) in curves(root, suffix)? {
            let Some(last) = curve.last() else { continue };
            let flat = match plateau(&curve) {
                Some(step) => {
                    let epoch = curve
                        .iter()
                        .find(|r| r.step == step)
                        .map_or(0.0, |r| r.epoch);
                    format!("step {step} (epoch {epoch:.1})")
                }
                None => "not reached (≥ 1 point gained in the last quarter)".to_string(),
            };
            rows.push_str(&format!(
                "| {} | {length} | {flat} | {:.1} |\n",
                m.label(),
                100.0 * last.tar_far_1e3
            ));
        }
    }
    if rows.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "\n## Training length\n\nLearning curves (`f2c curve`, TAR@FAR=1e-3 on 500 validation identities \
         drawn from the training population — never the test identities — every 5 % of training; \
         seed 1; `results/curves/`, `paper/figures/learning_curves*.svg`). A curve has plateaued \
         when the last quarter of training gains less than one point; the plateau is the first \
         evaluated step no later point beats by a point.\n\n| Method | Length | Plateau | Last \
         TAR@FAR=1e-3 (%) |\n|:--|:--|:--|--:|\n{rows}"
    ))
}
