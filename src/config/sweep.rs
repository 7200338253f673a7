//! Configs that sweep themselves: every config struct says which of its fields an ablation axis
//! may set by path (`head.pool.capacity`), so the list of sweepable paths is derived from the
//! structs, not written out by hand.
//!
//! [`sweepable!`] implements [`Sweep`] for a struct from one list of its fields: leaves are parsed
//! whole from RON text; nested configs can be set whole or descended into. The generated code
//! destructures the struct without `..`, so a field added to a config does not compile until it
//! is listed.

use serde::de::DeserializeOwned;

use crate::error::{FieldError, FieldResult};

/// A config whose fields can be set by path from RON text.
pub trait Sweep {
    /// Sets the field at `path` (relative, dot-separated) to the RON value `text`, parsed into
    /// that field's type. The result is not validated.
    fn set_path(&mut self, path: &str, text: &str) -> FieldResult;

    /// Every path [`Sweep::set_path`] accepts on this value (for an enum, on its current variant).
    fn paths(&self) -> Vec<String>;
}

/// The first segment of `path` and the rest, if any.
pub fn split(path: &str) -> (&str, Option<&str>) {
    match path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    }
}

/// Parses `text` as a `T` into `slot`; the error names the expected type.
pub fn parse_into<T: DeserializeOwned>(slot: &mut T, text: &str) -> FieldResult {
    *slot = ron::from_str(text).map_err(|e| {
        let ty = std::any::type_name::<T>();
        let ty = ty.rsplit("::").next().unwrap_or(ty);
        let expected = match ty {
            "usize" | "u64" | "u32" => "a whole number such as `100`".to_string(),
            "f32" | "f64" => "a number such as `0.5`".to_string(),
            "bool" => "`true` or `false`".to_string(),
            _ => format!("a `{ty}`"),
        };
        FieldError::new(
            "",
            format!("value `{text}` is not {expected} (ron: {})", e.code),
        )
    })?;
    Ok(())
}

/// The error of a path that `value` does not have, listing the paths it has.
pub fn unknown(path: &str, value: &dyn Sweep) -> FieldError {
    FieldError::new(
        "",
        format!(
            "unknown field path `{path}`; paths that can be set here: {}",
            value.paths().join(", ")
        ),
    )
}

/// Sets `slot`, a nested config, whole (`rest` is `None`) or at the path `rest` inside it.
pub fn set_nested<T: Sweep + DeserializeOwned>(
    slot: &mut T,
    name: &str,
    rest: Option<&str>,
    text: &str,
) -> FieldResult {
    match rest {
        None => parse_into(slot, text),
        Some(rest) => slot.set_path(rest, text),
    }
    .map_err(|e| e.within(name))
}

/// Implements [`Sweep`] for a struct: `sweepable!(Ty { leaf, … } nested { sub, … })`. Every field
/// must be listed, once, in one of the two lists.
#[macro_export]
macro_rules! sweepable {
    ($ty:ident { $($leaf:ident),* $(,)? } nested { $($sub:ident),* $(,)? }) => {
        impl $crate::config::sweep::Sweep for $ty {
            fn set_path(&mut self, path: &str, text: &str) -> $crate::error::FieldResult {
                let (first, rest) = $crate::config::sweep::split(path);
                {
                    #[allow(unused_variables)]
                    let $ty { $($leaf,)* $($sub,)* } = &mut *self;
                    $(
                        if first == stringify!($leaf) && rest.is_none() {
                            return $crate::config::sweep::parse_into($leaf, text)
                                .map_err(|e| e.within(stringify!($leaf)));
                        }
                    )*
                    $(
                        if first == stringify!($sub) {
                            return $crate::config::sweep::set_nested($sub, stringify!($sub), rest, text);
                        }
                    )*
                }
                Err($crate::config::sweep::unknown(path, self))
            }

            fn paths(&self) -> Vec<String> {
                #[allow(unused_mut)]
                let mut out: Vec<String> = vec![$(stringify!($leaf).to_string()),*];
                $(
                    out.push(stringify!($sub).to_string());
                    out.extend(
                        $crate::config::sweep::Sweep::paths(&self.$sub)
                            .into_iter()
                            .map(|p| format!("{}.{p}", stringify!($sub))),
                    );
                )*
                out
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Inner {
        a: u32,
        b: f32,
    }
    crate::sweepable!(Inner { a, b } nested {});

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Outer {
        x: bool,
        inner: Inner,
    }
    crate::sweepable!(Outer { x } nested { inner });

    #[test]
    fn paths_are_derived_and_set_by_path() {
        let mut o = Outer::default();
        assert_eq!(o.paths(), ["x", "inner", "inner.a", "inner.b"]);
        o.set_path("inner.a", "7").unwrap();
        o.set_path("x", "true").unwrap();
        o.set_path("inner", "(a: 1, b: 2.5)").unwrap();
        assert_eq!(
            o,
            Outer {
                x: true,
                inner: Inner { a: 1, b: 2.5 }
            }
        );
    }

    #[test]
    fn errors_name_the_path_and_the_type() {
        let mut o = Outer::default();
        let e = o.set_path("inner.a", "-1").unwrap_err();
        assert_eq!(e.field, "inner.a");
        assert!(e.msg.contains("whole number"), "{}", e.msg);
        let e = o.set_path("inner.c", "1").unwrap_err();
        assert_eq!(e.field, "inner");
        assert!(
            e.msg.contains("inner.c") || e.msg.contains("`c`"),
            "{}",
            e.msg
        );
        assert!(e.msg.contains("a, b"), "{}", e.msg);
        // A leaf has no sub-paths.
        assert!(o.set_path("x.y", "1").is_err());
    }
}
