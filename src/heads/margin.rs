//! Additive margins on the target cosine: CosFace (cos θ − m) and ArcFace (cos(θ + m)).
//! ArcFace uses cos(θ+m) = cos θ·cos m − sin θ·sin m (no acos), and like insightface keeps
//! the target monotone past θ + m > π by falling back to cos θ − m·sin m·... (see [`Margin::apply`]).

use serde::{Deserialize, Serialize};

/// The margin applied to the target-class cosine before scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Margin {
    /// CosFace / AM-softmax: target logit s·(cos θ − m).
    CosFace(f32),
    /// ArcFace: target logit s·cos(θ + m).
    ArcFace(f32),
}
