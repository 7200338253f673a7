//! The library's one error type. Messages are lowercase, say what was wrong and where, and how to fix it.

use std::path::PathBuf;

/// Every failure the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An experiment or matrix file could not be read or parsed.
    #[error("{path}:{line}:{col}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        col: usize,
        msg: String,
    },
    /// A value parsed but is out of range or inconsistent.
    #[error("{path}: field `{field}`: {msg}")]
    Invalid {
        path: PathBuf,
        field: String,
        msg: String,
    },
    /// A requested compute device is not available.
    #[error("device: {0}")]
    Device(String),
    /// Training diverged (non-finite loss) or failed.
    #[error("training diverged at step {step}: {msg}")]
    Diverged { step: usize, msg: String },
    /// File-system trouble, with the path involved.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Anything else, with a message that stands on its own.
    #[error("{0}")]
    Other(String),
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error tagged with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
