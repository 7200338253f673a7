//! Additive margins on the target cosine: CosFace (cos θ − m, Wang et al. 2018) and ArcFace
//! (cos(θ + m), Deng et al. 2019). dfdx has no acos, and none is needed:
//! cos(θ + m) = cos θ·cos m − sin θ·sin m with sin θ = √(1 − cos²θ). Past θ + m > π the ArcFace
//! target would stop decreasing in θ; like insightface we then fall back to cos θ − m·sin(π − m)
//! (the tiandunx/FFC `Arc` branch has no fallback; it matters only for θ > π − m).

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, FieldResult};

/// The margin applied to the target-class cosine before scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Margin {
    /// CosFace / AM-softmax: target logit s·(cos θ − m).
    CosFace(f32),
    /// ArcFace: target logit s·cos(θ + m), m in radians.
    ArcFace(f32),
}

impl Margin {
    /// The margin-adjusted target cosine φ(c) and its derivative dφ/dc, for a cosine `c`.
    #[inline]
    pub fn apply(&self, c: f32) -> (f32, f32) {
        match *self {
            Margin::CosFace(m) => (c - m, 1.0),
            Margin::ArcFace(m) => {
                let c = c.clamp(-1.0, 1.0);
                let threshold = (std::f32::consts::PI - m).cos();
                if c > threshold {
                    // sin θ is clamped away from 0 so that the derivative stays finite at θ = 0.
                    let sin = (1.0 - c * c).max(1e-12).sqrt();
                    let (sm, cm) = m.sin_cos();
                    (c * cm - sin * sm, cm + c * sm / sin)
                } else {
                    (c - m * (std::f32::consts::PI - m).sin(), 1.0)
                }
            }
        }
    }

    /// The margin value m.
    pub fn value(&self) -> f32 {
        match *self {
            Margin::CosFace(m) | Margin::ArcFace(m) => m,
        }
    }

    /// Range check: CosFace m in 0 ..= 1, ArcFace m in 0 ..= 1.5 radians.
    pub fn validate(&self) -> FieldResult {
        match *self {
            Margin::CosFace(m) if !(0.0..=1.0).contains(&m) => Err(FieldError::new(
                "",
                format!("CosFace margin expected in 0.0 ..= 1.0, got {m}"),
            )),
            Margin::ArcFace(m) if !(0.0..=1.5).contains(&m) => Err(FieldError::new(
                "",
                format!("ArcFace margin (radians) expected in 0.0 ..= 1.5, got {m}"),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosface_subtracts_margin() {
        assert_eq!(Margin::CosFace(0.4).apply(0.5), (0.5 - 0.4, 1.0));
    }

    #[test]
    fn arcface_matches_angle_addition() {
        // c = 0.6 → θ = acos(0.6) = 0.927295; θ + 0.5 = 1.427295; cos = 0.143009.
        let (phi, _) = Margin::ArcFace(0.5).apply(0.6);
        assert!((phi - 0.143_009).abs() < 1e-5, "{phi}");
        // dφ/dc = cos m + c·sin m / sin θ = 0.877583 + 0.6·0.479426/0.8 = 1.237152
        let (_, d) = Margin::ArcFace(0.5).apply(0.6);
        assert!((d - 1.237_152).abs() < 1e-5, "{d}");
    }

    #[test]
    fn arcface_derivative_matches_finite_difference() {
        let m = Margin::ArcFace(0.5);
        for &c in &[-0.5f32, 0.0, 0.3, 0.9] {
            let h = 1e-3;
            let fd = (m.apply(c + h).0 - m.apply(c - h).0) / (2.0 * h);
            assert!(
                (fd - m.apply(c).1).abs() < 2e-3,
                "c={c}: fd {fd} vs {}",
                m.apply(c).1
            );
        }
    }

    #[test]
    fn arcface_falls_back_past_pi() {
        // θ + m > π when c < cos(π − m): c = −0.95 with m = 0.5 (cos(π − 0.5) = −0.877583).
        let (phi, d) = Margin::ArcFace(0.5).apply(-0.95);
        assert!((phi - (-0.95 - 0.5 * 0.479_426)).abs() < 1e-5);
        assert_eq!(d, 1.0);
    }
}
