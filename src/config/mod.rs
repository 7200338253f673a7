//! Experiment configuration: RON files in `experiments/`, parsed strictly (unknown fields are
//! errors) and range-checked before anything runs.

pub mod embedded;
pub mod experiment;
pub mod sweep;

use crate::error::{FieldError, FieldResult};

/// A name that becomes a file or folder name (experiments, matrices): letters, digits, `-`, `_`
/// and `.`, not starting with `.` — so it can neither be empty, nor hidden, nor leave its parent
/// folder (`..`).
pub fn check_name(name: &str) -> FieldResult {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "",
            format!(
                "`{name}` must be non-empty, use only letters, digits, `-`, `_`, `.`, and not start \
                 with `.`"
            ),
        ))
    }
}

/// A momentum or other unit-interval value: `field` must lie in 0.0 ..= 1.0.
pub fn check_unit(field: &str, value: f32) -> FieldResult {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("expected 0.0 ..= 1.0, got {value}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_their_folder() {
        for bad in ["", ".", "..", ".hidden", "a/b", "../up", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["default", "f2c-10pct", "scale_1M", "v1.2"] {
            assert!(check_name(good).is_ok(), "{good:?} rejected");
        }
    }
}
