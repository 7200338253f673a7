//! CSV files of typed rows (matrix summaries, reference points, benchmark timings): written
//! atomically, read back with errors that name the file.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Writes `rows` with a header line to `path`, atomically.
pub fn write_rows<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let bad = |e: csv::Error| Error::format(path, e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(bad)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::format(path, e.to_string()))?;
    crate::results::record::write_atomic(path, &bytes)
}

/// Reads the rows of a file written by [`write_rows`]; `expected` describes the columns for the
/// message of a file that does not fit.
pub fn read_rows<T: DeserializeOwned>(path: &Path, expected: &str) -> Result<Vec<T>> {
    let mut r = csv::Reader::from_path(path).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        other => Error::format(path, format!("{other:?}")),
    })?;
    r.deserialize()
        .map(|row| row.map_err(|e| Error::format(path, format!("{e}; expected {expected}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        name: String,
        value: Option<f64>,
    }

    #[test]
    fn rows_round_trip_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        let rows = vec![
            Row {
                name: "a".into(),
                value: Some(0.5),
            },
            Row {
                name: "b".into(),
                value: None,
            },
        ];
        write_rows(&path, &rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "name,value\na,0.5\nb,\n"
        );
        assert_eq!(read_rows::<Row>(&path, "name,value").unwrap(), rows);
        std::fs::write(&path, "name,value\na,x\n").unwrap();
        let msg = read_rows::<Row>(&path, "name,value")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("rows.csv") && msg.contains("expected name,value"),
            "{msg}"
        );
        let missing = read_rows::<Row>(&dir.path().join("none.csv"), "").unwrap_err();
        assert!(matches!(missing, Error::Io { .. }), "{missing}");
    }
}
