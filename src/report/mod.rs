//! Statistics over seeds, paper tables, figures and the reproduction report — all computed from a
//! matrix's `summary.csv` (and its `references.csv` when present), so every number in `paper/` can
//! be regenerated without retraining.

pub mod curves;
pub mod deviations;
pub mod efficiency;
pub mod figures;
pub mod gpu;
pub mod orl;
pub mod readme;
pub mod reproduction;
pub mod scale;
pub mod stats;
pub mod tables;
pub mod tuning;

use std::path::{Path, PathBuf};

use crate::ablation::references::{mark_collapsed, read_references, ReferenceRow, REFERENCES_CSV};
use crate::ablation::summary::{read_csv, SummaryRow};
use crate::error::{Error, Result};

/// The matrices the report reads beside the default one, from `<root>/results/<name>/`, instead of
/// rendering them on their own: the tuning grid, the scale study with its learning-rate check and
/// its study of F²C's parts, and the real-face study.
pub const SIDE_STUDIES: [&str; 5] = [
    tuning::MATRIX,
    scale::MATRIX,
    scale::TUNING_MATRIX,
    scale::COMPONENTS_MATRIX,
    orl::MATRIX,
];

/// The results folder `paper/` is regenerated from after `f2c ablate` ran the matrix whose results
/// are in `matrix_dir`: that folder, or for a side study the default matrix's beside it (which
/// then reads the side study's results).
pub fn paper_results(matrix_dir: &Path) -> PathBuf {
    match matrix_dir.file_name() {
        Some(name) if SIDE_STUDIES.iter().any(|s| name == *s) => {
            matrix_dir.with_file_name("default")
        }
        _ => matrix_dir.to_path_buf(),
    }
}

/// The summary of the matrix whose results are in `dir`, its runs marked collapsed from the
/// reference points beside it, and those points when there are any.
pub(crate) fn read_marked(dir: &Path) -> Result<(Vec<SummaryRow>, Option<Vec<ReferenceRow>>)> {
    let mut rows = read_csv(&dir.join("summary.csv"))?;
    let references = dir.join(REFERENCES_CSV);
    let refs = if references.exists() {
        let refs = read_references(&references)?;
        mark_collapsed(&mut rows, &refs);
        Some(refs)
    } else {
        None
    };
    Ok((rows, refs))
}

/// Regenerates `<root>/paper/tables/*`, `<root>/paper/figures/*` and `<root>/paper/README.md` from
/// `<results_dir>/summary.csv` (and `<results_dir>/references.csv`, and the benchmark, curves,
/// tuning grid, scale study and real-face study under `<root>/results/` when present); returns the files written.
/// Collapsed runs are marked here, when the summary is read, from the reference points.
pub fn regenerate(results_dir: &Path, root: &Path) -> Result<Vec<PathBuf>> {
    let summary = results_dir.join("summary.csv");
    if !summary.exists() {
        return Err(Error::Other(format!(
            "{}: no summary.csv here — run `f2c ablate` first, or name a results/<matrix> folder that has one",
            results_dir.display()
        )));
    }
    let (rows, refs) = read_marked(results_dir)?;
    let mut written = tables::write_tables(&rows, &root.join("paper/tables"))?;
    written.extend(figures::write_figures(&rows, &root.join("paper/figures"))?);
    written.extend(efficiency::regenerate(root)?);
    let scale = scale::load(root)?;
    if let Some(study) = &scale {
        written.extend(scale::write_tables(study, root)?);
    }
    written.extend(orl::write_tables(root)?);
    written.extend(gpu::write_tables(root)?);
    written.push(reproduction::write_report(
        &rows,
        refs.as_deref(),
        scale.as_ref(),
        &tuning::trained_points(results_dir, &rows, tables::MAIN_GROUP)?,
        root,
    )?);
    written.extend(curves::figures(root)?);
    written.extend(readme::update(root, results_dir, &rows)?);
    Ok(written)
}
