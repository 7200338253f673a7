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

/// A fraction as a percentage for labels: [`short_number`] when that has at most two decimals
/// (`10`, `0.05`), else one decimal (a pool of 16 of 30 identities: `53.3`).
pub fn short_percent(fraction: f64) -> String {
    let s = short_number(fraction * 100.0);
    match s.split_once('.') {
        Some((_, decimals)) if decimals.len() > 2 => format!("{:.1}", fraction * 100.0),
        _ => s,
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

    #[test]
    fn percentages_of_counts_get_one_decimal() {
        assert_eq!(short_percent(0.1), "10");
        assert_eq!(short_percent(0.0005), "0.05");
        assert_eq!(short_percent(16.0 / 30.0), "53.3");
    }
}
