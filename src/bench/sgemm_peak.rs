//! The machine's sgemm peak and the GEMM-only time of a head step: the yardsticks the head steps
//! are measured against. Both go through [`Backend`]'s matmuls, i.e. the same `gemm` crate (and
//! thread pool) the heads use.

use rayon::prelude::*;
use std::time::Instant;

use super::head_step::HeadCase;
use crate::error::Result;
use crate::heads::backend::Backend;
use crate::heads::StepCost;

/// Best rate in GFLOP/s of an `n`×`n`×`n` sgemm over `reps` runs (after one warm-up run).
pub fn sgemm_peak<B: Backend>(be: &B, n: usize, reps: usize) -> Result<f64> {
    let a: Vec<f32> = (0..n * n).map(|i| ((i % 97) as f32) * 0.01).collect();
    let (a, b) = (be.upload(&a)?, be.upload(&a)?);
    let mut c = be.zeros(n * n)?;
    let mut best = f64::INFINITY;
    for rep in 0..=reps {
        let t0 = Instant::now();
        be.matmul_abt(n, n, n, &a, &b, &mut c)?;
        be.synchronize()?;
        if rep > 0 {
            best = best.min(t0.elapsed().as_secs_f64());
        }
    }
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}

/// Median seconds of the GEMMs alone of one step of `case` (the same shapes, on zero-free dummy
/// operands), over `reps` runs after a warm-up: what the step would cost if nothing but its GEMMs ran.
pub fn gemm_only_seconds<B: Backend>(
    be: &B,
    case: &HeadCase,
    classes: usize,
    dim: usize,
    batch: usize,
    reps: usize,
) -> Result<f64> {
    let d = dim;
    let StepCost {
        rows,
        columns: cols,
        evals,
        gemms,
        ..
    } = case.head.cost(classes, dim, batch);
    let three = gemms == 3;
    let fill = |len: usize| -> Vec<f32> {
        (0..len)
            .into_par_iter()
            .map(|i| ((i % 89) as f32 - 44.0) * 1e-3)
            .collect()
    };
    let e = be.upload(&fill(rows * d))?;
    let w = be.upload(&fill(cols * d))?;
    let mut cos = be.zeros(rows * cols)?;
    let mut ge = be.zeros(rows * d)?;
    let mut gw = if three {
        be.zeros(cols * d)?
    } else {
        be.zeros(0)?
    };
    let mut times = Vec::with_capacity(reps);
    for rep in 0..=reps {
        let t0 = Instant::now();
        for _ in 0..evals {
            be.matmul_abt(rows, cols, d, &e, &w, &mut cos)?;
            be.matmul_ab(rows, d, cols, &cos, &w, &mut ge, false)?;
            if three {
                be.matmul_atb(cols, d, rows, &cos, &e, &mut gw)?;
            }
        }
        be.synchronize()?;
        if rep > 0 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(super::head_step::median(&times))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::backend::CpuBackend;
    use crate::heads::CentreUpdate;

    #[test]
    fn peak_and_gemm_time_are_positive_and_finite() {
        let peak = sgemm_peak(&CpuBackend, 64, 2).unwrap();
        assert!(peak.is_finite() && peak > 0.0);
        for case in [
            HeadCase::fc(),
            HeadCase::pfc(0.5, CentreUpdate::SampledRows),
            HeadCase::f2c(0.1, true),
            HeadCase::dcq(0.1),
        ] {
            let t = gemm_only_seconds(&CpuBackend, &case, 100, 8, 8, 2).unwrap();
            assert!(t.is_finite() && t >= 0.0, "{case:?}");
        }
    }
}
