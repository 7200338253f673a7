//! Real faces at sanity scale in the paper: `results/orl/` (`ablations/orl.ron`: every method
//! with the tiny CNN on the ORL faces, 30 people trained on and 10 held out, three seeds). Its
//! table `paper/tables/orl.md` (and `.tex`) has the default tables' columns and statistics, every
//! method paired by seed with Full FC; the notes state how little such a set can say. Nothing is
//! read or written when the study has not run.

use std::path::{Path, PathBuf};

use crate::ablation::references::{ReferenceKind, ReferenceRow};
use crate::error::Result;
use crate::report::scale::wall_minutes;
use crate::report::stats::{config_stats, ConfigStats};
use crate::report::tables::{method_name, render_table, Format, TableSpec, MAIN_GROUP};

/// The study's matrix name: its results are `results/orl/`.
pub const MATRIX: &str = "orl";

/// Its table, relative to the project root (and `.tex` beside it).
pub const TABLE_MD: &str = "paper/tables/orl.md";

/// What the table is made of: the configurations, Full FC first, and the reference points.
pub struct Study {
    pub stats: Vec<ConfigStats>,
    pub references: Vec<ReferenceRow>,
}

/// Reads `<root>/results/orl/`; `None` when it has no summary.
pub fn load(root: &Path) -> Result<Option<Study>> {
    let dir = root.join("results").join(MATRIX);
    if !dir.join("summary.csv").exists() {
        return Ok(None);
    }
    let (mut rows, references) = crate::report::read_marked(&dir)?;
    let references = references.unwrap_or_default();
    // One table, one family with its reference: every row in the group Full FC is looked up in.
    for row in &mut rows {
        row.group = MAIN_GROUP.to_string();
    }
    let mut stats = config_stats(&rows);
    stats.sort_by_key(|c| !c.is_fc_reference);
    Ok(Some(Study { stats, references }))
}

/// "raw pixels 54.8 / 75.9, untrained network 44.9 / 63.0": mean TAR@FAR=1e-2 / rank-1 (%) of
/// each reference point over its seeds.
fn reference_text(refs: &[ReferenceRow]) -> Option<String> {
    let mean = |kind: ReferenceKind| {
        let rows: Vec<&ReferenceRow> = refs.iter().filter(|r| r.kind == kind).collect();
        let n = rows.len() as f64;
        (!rows.is_empty()).then(|| {
            (
                100.0 * rows.iter().map(|r| r.tar_far_1e2).sum::<f64>() / n,
                100.0 * rows.iter().map(|r| r.rank1).sum::<f64>() / n,
            )
        })
    };
    let (raw, untrained) = (mean(ReferenceKind::Raw)?, mean(ReferenceKind::Untrained)?);
    Some(format!(
        "Reference points on the same held-out faces (mean over the seeds, TAR@FAR=1e-2 / rank-1, \
         %): raw pixels (cosine of the normalised 112×112 images) {:.1} / {:.1}, the untrained \
         network {:.1} / {:.1}.",
        raw.0, raw.1, untrained.0, untrained.1
    ))
}

fn spec(study: &Study) -> TableSpec {
    let stats = &study.stats;
    let walls: Vec<String> = stats
        .iter()
        .map(|c| {
            let wall = wall_minutes(c).map_or("—".to_string(), |m| format!("{:.0} s", m * 60.0));
            format!("{} {wall}", method_name(c.first()))
        })
        .collect();
    let mut extra_notes = vec![
        "Caveat of size: 40 people in all. Each seed holds out its own 10 people (100 \
         photographs: 450 genuine and 4,500 impostor pairs), so TAR@FAR=1e-3 rests on the 4 \
         highest impostor scores and TAR@FAR=1e-4 on the highest one; TAR@FAR=1e-2 and rank-1 \
         are the figures with some resolution. 30 training identities are far from the regime \
         F²C was made for (the pool holds 16 of them, DCQ's queue 16 keys): this table shows \
         that the image path, the CNN and every head train on real photographs, not which \
         method is better."
            .to_string(),
        "Every method at the same untuned learning rate and weight decay (0.1, 5e-4), 200 \
         steps of 32 images (21 epochs of the 300 training photographs, 92×112 resized to \
         112×112, random flips). F²C's and DCQ's steps are the slowest here: their second \
         network embeds the batch again, and at N = 30 no head has a classifier cost to save."
            .to_string(),
    ];
    extra_notes.extend(reference_text(&study.references));
    extra_notes.push(format!(
        "Wall time per run (training and evaluation on 2 shared cores), mean over the \
         successful seeds: {}.",
        walls.join("; ")
    ));
    TableSpec {
        group: MAIN_GROUP.to_string(),
        caption: "Real faces, sanity scale: ORL (30 people trained on, 10 held out), tiny IResNet"
            .to_string(),
        label: "orl".to_string(),
        reference: "Full FC on the same faces".to_string(),
        no_reference: "no Full FC run".to_string(),
        extra_notes,
    }
}

/// Writes `<root>/paper/tables/orl.md` and `.tex` when the study has run; returns the paths.
pub fn write_tables(root: &Path) -> Result<Vec<PathBuf>> {
    let Some(study) = load(root)? else {
        return Ok(Vec::new());
    };
    let (spec, stats) = (spec(&study), &study.stats);
    let md = root.join(TABLE_MD);
    let tex = md.with_extension("tex");
    crate::results::record::write_atomic(
        &md,
        render_table(stats, &spec, Format::Markdown).as_bytes(),
    )?;
    crate::results::record::write_atomic(
        &tex,
        render_table(stats, &spec, Format::Latex).as_bytes(),
    )?;
    Ok(vec![md, tex])
}
