//! The PyTorch peer's step times (`scripts/torch_heads.py`), matched to the bench's cases:
//! measured side by side on this machine (`f2c bench --peer FILE`), else figures measured earlier
//! on the same kind of machine.

use std::path::Path;

use super::head_step::HeadCase;
use crate::error::{Error, Result};
use crate::heads::f2c::ONE_DIRECTION_STEP;
use crate::heads::PEER_STEP;

/// PyTorch 2.x on this kind of 2-core CPU machine, the peer script (now `scripts/torch_heads.py`) at B 256, D 128
/// (measured before the peer script was in the repository): seconds per step at 10k / 100k / 1M identities.
const PYTORCH: [(&str, f64, [f64; 3]); 4] = [
    ("fc", 1.0, [0.0397, 0.880, 9.50]),
    ("pfc", 0.1, [0.0059, 0.096, 1.50]),
    ("f2c", 0.1, [0.0024, 0.025, 0.488]),
    ("f2c", 0.01, [0.0011, 0.0026, 0.025]),
];

/// The peer's seconds for the same step, where the issue gives one: only the peer's own steps were
/// timed then (F²C one direction against row 0, Partial FC moving its sampled rows), not F²C's
/// reference step nor Partial FC's all-rows step.
pub fn pytorch_seconds(case: &HeadCase, classes: usize, dim: usize, batch: usize) -> Option<f64> {
    if dim != 128 || batch != 256 || !matches!(case.variant(), PEER_STEP | ONE_DIRECTION_STEP) {
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
/// `scripts/torch_heads.py` prints, passed with `f2c bench --peer FILE`), else the figures
/// quoted from that earlier measurement.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    measured: Option<std::collections::HashMap<(String, usize, usize, usize), f64>>,
}

impl Peer {
    /// Reads the peer's JSON lines (`{"head": "fc" | "pfc0.1" | "f2c0.1" | …, "classes", "dim",
    /// "batch", "median_s"}`; other keys are ignored). A case the peer skipped (`median_s` null, a
    /// `skipped` reason) has no figure.
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
            if field("median_s")?.is_null() {
                continue;
            }
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
            Some(map) => {
                // The peer names a row by method and size (`pfc0.1`, `dcq0.1`), another form of
                // the step with its variant appended (`f2c0.1-tworow-symmetric`,
                // `pfc0.1-all-rows`).
                let key = match (case.head.method(), case.variant()) {
                    (crate::heads::Method::Fc, _) => "fc".to_string(),
                    (_, PEER_STEP | ONE_DIRECTION_STEP) => {
                        format!("{}{}", case.head(), case.param())
                    }
                    (_, variant) => format!("{}{}-{variant}", case.head(), case.param()),
                };
                map.get(&(key, classes, dim, batch)).copied()
            }
        }
    }

    /// Where the peer's figures come from, for the table's caption.
    pub fn source(&self) -> &'static str {
        match self.measured {
            Some(_) => "measured side by side on this machine (`scripts/torch_heads.py`, `f2c bench --peer`)",
            None => "figures measured earlier with the PyTorch peer (PyTorch 2.x CPU, same kind of machine; `python3 scripts/torch_heads.py` measures them side by side)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::CentreUpdate;

    #[test]
    fn peer_figures_match_the_issue() {
        let f2c10 = HeadCase::f2c(0.1, false);
        assert_eq!(
            pytorch_seconds(&HeadCase::fc(), 1_000_000, 128, 256),
            Some(9.50)
        );
        assert_eq!(
            pytorch_seconds(
                &HeadCase::pfc(0.1, CentreUpdate::SampledRows),
                100_000,
                128,
                256
            ),
            Some(0.096)
        );
        assert_eq!(pytorch_seconds(&f2c10, 10_000, 128, 256), Some(0.0024));
        assert_eq!(
            pytorch_seconds(&HeadCase::f2c(0.1, true), 10_000, 128, 256),
            None
        );
        assert_eq!(
            pytorch_seconds(
                &HeadCase::pfc(0.1, CentreUpdate::AllRows),
                100_000,
                128,
                256
            ),
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
             {\"peer\": \"pytorch\", \"head\": \"f2c0.01\", \"classes\": 10000, \"dim\": 128, \"batch\": 256, \"median_s\": 0.002}\n\
             {\"peer\": \"pytorch\", \"head\": \"pfc0.1-all-rows\", \"classes\": 10000, \"dim\": 128, \"batch\": 256, \"median_s\": 0.03}\n",
        )
        .unwrap();
        let peer = Peer::from_json_lines(&path).unwrap();
        assert_eq!(peer.seconds(&HeadCase::fc(), 10_000, 128, 256), Some(0.05));
        let f2c1 = HeadCase::f2c(0.01, false);
        assert_eq!(peer.seconds(&f2c1, 10_000, 128, 256), Some(0.002));
        // Partial FC's two steps are two peer rows.
        let all = HeadCase::pfc(0.1, CentreUpdate::AllRows);
        assert_eq!(peer.seconds(&all, 10_000, 128, 256), Some(0.03));
        // Not measured: no figure (never a quoted one mixed in).
        let sampled = HeadCase::pfc(0.1, CentreUpdate::SampledRows);
        assert_eq!(peer.seconds(&sampled, 10_000, 128, 256), None);
        assert_eq!(
            Peer::default().seconds(&HeadCase::fc(), 10_000, 128, 256),
            Some(0.0397)
        );
    }

    #[test]
    fn skipped_peer_cases_have_no_figure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.jsonl");
        std::fs::write(
            &path,
            "{\"peer\": \"pytorch\", \"head\": \"fc\", \"classes\": 10000, \"dim\": 128, \"batch\": 256, \"median_s\": null, \"skipped\": \"out of memory\"}\n\
             {\"peer\": \"pytorch\", \"head\": \"dcq0.1\", \"classes\": 10000, \"dim\": 128, \"batch\": 256, \"median_s\": 0.01, \"method\": \"dcq\", \"param\": 0.1}\n",
        )
        .unwrap();
        let peer = Peer::from_json_lines(&path).unwrap();
        assert_eq!(peer.seconds(&HeadCase::fc(), 10_000, 128, 256), None);
    }
}
