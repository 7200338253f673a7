//! The head benchmark's model of one head step: the shape of its GEMMs and the memory of the
//! head's state and step buffers, counted dense as the PyTorch peer computes them. Each head gives
//! its own ([`super::HeadConfig::cost`]); the benchmark turns it into GFLOP/s, a lower bound on the
//! step time, the GEMMs timed alone, and the memory a case needs before it is worth building.

/// The GEMMs and memory of one step of a head at one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepCost {
    /// Probe rows of each evaluation of the logits.
    pub rows: usize,
    /// Columns of the logit matrix: N (FC), sampled centres, pool slots, queue entries and keys.
    pub columns: usize,
    /// Evaluations of the logits per step.
    pub evals: usize,
    /// GEMMs per evaluation: logits and dL/d(emb), and dL/d(centres) for trainable centres.
    pub gemms: usize,
    /// Floats of head state and step buffers, the step's embeddings apart.
    pub floats: u64,
}

impl StepCost {
    /// Floating-point operations of the step's GEMMs at dimension `dim`: 2·rows·columns·D each.
    pub fn gemm_flops(&self, dim: usize) -> f64 {
        self.gemms as f64
            * 2.0
            * self.evals as f64
            * self.rows as f64
            * self.columns as f64
            * dim as f64
    }

    /// Bytes of [`floats`](Self::floats) and of the (B, D) embeddings, gradients and their
    /// device copies that every head's step holds: what must fit in memory before the case is
    /// worth building (the networks and data come on top).
    pub fn memory_bytes(&self, dim: usize, batch: usize) -> u64 {
        4 * (self.floats + 4 * batch as u64 * dim as u64)
    }
}
