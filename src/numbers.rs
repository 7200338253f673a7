//! How numbers are written where people read them: in the names of runs (`Partial FC r=0.1`,
//! `F²C pool 10%`), in tables and on figure axes.

/// A number with up to four decimals and no trailing zeros: 0.1 → "0.1", 10.0 → "10".
pub fn short_number(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_decimals_without_trailing_zeros() {
        assert_eq!(short_number(0.1 * 100.0), "10");
        assert_eq!(short_number(0.001 * 100.0), "0.1");
        assert_eq!(short_number(0.0005 * 100.0), "0.05");
        assert_eq!(short_number(-0.00001), "0");
    }
}
