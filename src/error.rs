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
    /// A face-image data set (image folder, RecordIO pack, pairs list) is missing, malformed or
    /// inconsistent: the file concerned and what was wrong with it.
    #[error("{path}: {msg}")]
    Dataset { path: PathBuf, msg: String },
    /// A file that is not in the format expected (CSV, JSON), or could not be written in it.
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// Anything else, with a message that stands on its own.
    #[error("{0}")]
    Other(String),
}

/// A config value out of range, found by that config's own `validate`: the field's path within
/// the config (`pool.capacity`) and what was wrong. [`FieldError::within`] prefixes the path of the
/// enclosing config; [`FieldError::at`] turns it into an [`Error::Invalid`] naming the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub msg: String,
}

impl FieldError {
    /// The field `field` has a bad value; `msg` says what was expected and how to fix it.
    pub fn new(field: impl Into<String>, msg: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            msg: msg.into(),
        }
    }

    /// The same error seen from the config that holds this one under `prefix`.
    pub fn within(self, prefix: &str) -> Self {
        let field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        FieldError { field, ..self }
    }

    /// The error of the file `path`.
    pub fn at(self, path: impl Into<PathBuf>) -> Error {
        Error::Invalid {
            path: path.into(),
            field: self.field,
            msg: self.msg,
        }
    }
}

/// Result alias for a config's own validation.
pub type FieldResult = std::result::Result<(), FieldError>;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A data-set error about `path`; `msg` says what was wrong and how to fix it.
    pub fn dataset(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Dataset {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// A format error of the file `path`.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// An I/O error tagged with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
