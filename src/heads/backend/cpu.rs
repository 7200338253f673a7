//! The host-CPU [`Backend`]: matmuls through the `gemm` crate (the kernels dfdx itself uses,
//! multi-threaded through rayon) and the fused row kernels — the margin-softmax and negative top-k
//! loss, the SGD step through the row normalisation — as rayon-parallel loops over rows, written so
//! that the compiler vectorises them (AVX2 builds chosen at run time).

use rayon::prelude::*;

use super::{Backend, LossParts, LossSpec, Rows, SgdParams, Targets};
use crate::error::Result;

/// The host-CPU backend: `gemm` (multi-threaded through rayon) and rayon-parallel fused kernels.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend;

/// Rows per parallel task in the element-wise kernels: enough work per task to amortise rayon.
const ROW_CHUNK: usize = 256;

/// Output rows per block of [`CpuBackend::matmul_atb`]'s blocked GEMM.
const ATB_ROWS: usize = 1024;

fn gemm_threads() -> gemm::Parallelism {
    match rayon::current_num_threads() {
        1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

/// dst (m×n) = [dst +] lhs · rhs, with explicit (column, row) strides of each operand.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: &[f32],
    rhs_cs: isize,
    rhs_rs: isize,
) {
    assert!(dst.len() >= m * n, "gemm destination too small");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the strides describe matrices lying inside the slices: the callers assert the
    // operand lengths against m, n, k before calling.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm_threads(),
        )
    }
}

impl Backend for CpuBackend {
    type Buf = Vec<f32>;
    /// The host's list serves as the device's.
    type Index = ();
    /// The host's targets serve as the device's.
    type Labels = ();

    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }
    fn zeros(&self, len: usize) -> Result<Vec<f32>> {
        // Written, not left to the allocator's zero pages: every page is resident from the start,
        // as a device buffer is, so that a step reaching some rows for the first time (Partial
        // FC's momentum, a sample at a time) does not pay their page faults inside a timed step.
        // The threads take their faults side by side (seconds for the gigabytes of 10⁷ centres).
        let mut v: Vec<f32> = Vec::with_capacity(len);
        v.spare_capacity_mut()
            .par_chunks_mut(1 << 16)
            .for_each(|c| c.fill(std::mem::MaybeUninit::new(0.0)));
        // SAFETY: the capacity is `len` and every one of its floats was written just above.
        unsafe { v.set_len(len) };
        Ok(v)
    }
    fn upload(&self, host: &[f32]) -> Result<Vec<f32>> {
        Ok(host.to_vec())
    }
    fn upload_owned(&self, host: Vec<f32>) -> Result<Vec<f32>> {
        Ok(host)
    }
    fn download(&self, buf: &Vec<f32>) -> Result<Vec<f32>> {
        Ok(buf.clone())
    }
    fn len(&self, buf: &Vec<f32>) -> usize {
        buf.len()
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn upload_rows(&self, rows: Vec<usize>) -> Result<Rows<()>> {
        Ok(Rows {
            host: rows,
            device: (),
        })
    }
    fn upload_targets(&self, targets: Vec<i64>) -> Result<Targets<()>> {
        Ok(Targets {
            host: targets,
            device: (),
        })
    }

    fn matmul_abt(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &Vec<f32>,
        b: &Vec<f32>,
        c: &mut Vec<f32>,
    ) -> Result<()> {
        assert!(
            a.len() >= m * k && b.len() >= n * k,
            "matmul_abt operands too small"
        );
        sgemm(m, n, k, c, false, a, 1, k as isize, b, k as isize, 1);
        Ok(())
    }
    fn matmul_ab(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &Vec<f32>,
        b: &Vec<f32>,
        c: &mut Vec<f32>,
        accumulate: bool,
    ) -> Result<()> {
        assert!(
            a.len() >= m * k && b.len() >= k * n,
            "matmul_ab operands too small"
        );
        sgemm(m, n, k, c, accumulate, a, 1, k as isize, b, 1, n as isize);
        Ok(())
    }
    fn matmul_ab_sparse_tail(
        &self,
        dense_rows: usize,
        m: usize,
        n: usize,
        k: usize,
        a: &Vec<f32>,
        b: &Vec<f32>,
        c: &mut Vec<f32>,
        accumulate: bool,
    ) -> Result<()> {
        assert!(
            dense_rows <= m && a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
            "matmul_ab_sparse_tail shapes"
        );
        // The dense head through gemm; each sparse row as a sum of the rows of `b` its non-zeros
        // select (a scan of k floats instead of k·n multiply-adds), in a fixed order.
        sgemm(
            dense_rows,
            n,
            k,
            &mut c[..dense_rows * n],
            accumulate,
            a,
            1,
            k as isize,
            b,
            1,
            n as isize,
        );
        c[dense_rows * n..m * n]
            .par_chunks_mut(n)
            .zip(a[dense_rows * k..m * k].par_chunks(k))
            .for_each(|(out, row)| {
                if !accumulate {
                    out.fill(0.0);
                }
                for (j, &x) in row.iter().enumerate() {
                    if x != 0.0 {
                        for (o, &y) in out.iter_mut().zip(&b[j * n..(j + 1) * n]) {
                            *o += x * y;
                        }
                    }
                }
            });
        Ok(())
    }
    fn matmul_atb(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &Vec<f32>,
        b: &Vec<f32>,
        c: &mut Vec<f32>,
    ) -> Result<()> {
        assert!(
            a.len() >= k * m && b.len() >= k * n && c.len() >= m * n,
            "matmul_atb operands too small"
        );
        // The centres' gradient, (N, D) from (B, N)ᵀ · (B, D): one gemm call over all N rows runs at
        // about half the rate of the logits GEMM on these machines (measured 34 vs 56–100 GFLOP/s at
        // N = 100k); independent single-threaded calls over blocks of rows run at the full rate.
        if m < 2 * ATB_ROWS || rayon::current_num_threads() == 1 {
            sgemm(m, n, k, c, false, a, m as isize, 1, b, 1, n as isize);
            return Ok(());
        }
        c[..m * n]
            .par_chunks_mut(ATB_ROWS * n)
            .enumerate()
            .for_each(|(i, out)| {
                let r0 = i * ATB_ROWS;
                let rows = out.len() / n;
                // SAFETY: block i reads columns r0..r0+rows of the (k × m) `a` (stride m) and all of `b`,
                // inside the slices asserted above, and writes only its own `out`.
                unsafe {
                    gemm::gemm(
                        rows,
                        n,
                        k,
                        out.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr().add(r0),
                        m as isize,
                        1,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                }
            });
        Ok(())
    }

    fn gather_normalize(
        &self,
        src: &Vec<f32>,
        dim: usize,
        rows: Option<&Rows<()>>,
        out: &mut Vec<f32>,
        norms: &mut Vec<f32>,
    ) -> Result<()> {
        let rows = rows.map(Rows::host);
        let count = rows.map_or(src.len() / dim, |r| r.len());
        assert!(
            out.len() >= count * dim && norms.len() >= count,
            "gather_normalize output too small"
        );
        out[..count * dim]
            .par_chunks_mut(dim * ROW_CHUNK)
            .zip(norms[..count].par_chunks_mut(ROW_CHUNK))
            .enumerate()
            .for_each(|(chunk, (out, norms))| {
                for (i, (o, n)) in out.chunks_mut(dim).zip(norms.iter_mut()).enumerate() {
                    let r = chunk * ROW_CHUNK + i;
                    let r = rows.map_or(r, |rows| rows[r]);
                    let s = &src[r * dim..(r + 1) * dim];
                    let norm = s.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    let inv = 1.0 / norm;
                    for (o, x) in o.iter_mut().zip(s) {
                        *o = x * inv;
                    }
                    *n = norm;
                }
            });
        Ok(())
    }

    fn margin_loss(
        &self,
        cos: &mut Vec<f32>,
        b: usize,
        c: usize,
        targets: &Targets<()>,
        spec: &LossSpec,
    ) -> Result<LossParts> {
        let targets = targets.host();
        assert!(
            cos.len() >= b * c && targets.len() == b,
            "margin_loss shapes"
        );
        let parts: Vec<LossParts> = cos[..b * c]
            .par_chunks_mut(c)
            .zip(targets.par_iter())
            .map(|(row, &t)| {
                if t >= 0 {
                    LossParts {
                        ce: ce_row(row, t as usize, spec) as f64,
                        neg: 0.0,
                    }
                } else {
                    LossParts {
                        ce: 0.0,
                        neg: neg_row(row, spec) as f64,
                    }
                }
            })
            .collect();
        Ok(parts.iter().fold(LossParts::default(), |a, p| LossParts {
            ce: a.ce + p.ce,
            neg: a.neg + p.neg,
        }))
    }

    fn sgd_normalized_rows(
        &self,
        w: &mut Vec<f32>,
        vel: &mut Vec<f32>,
        dim: usize,
        rows: Option<&Rows<()>>,
        grad_n: &Vec<f32>,
        wn: &Vec<f32>,
        norms: &Vec<f32>,
        sgd: &SgdParams,
    ) -> Result<()> {
        match rows.map(Rows::host) {
            None => {
                let count = w.len() / dim;
                assert!(
                    vel.len() == w.len()
                        && grad_n.len() >= count * dim
                        && wn.len() >= count * dim
                        && norms.len() >= count
                );
                w.par_chunks_mut(dim)
                    .zip(vel.par_chunks_mut(dim))
                    .zip(grad_n.par_chunks(dim).zip(wn.par_chunks(dim)))
                    .zip(norms.par_iter())
                    .with_min_len(ROW_CHUNK)
                    .for_each(|(((w, v), (g, u)), &n)| sgd_row(w, v, g, u, n, sgd));
            }
            Some(rows) => {
                // Sampled rows are distinct (a sorted class sample), so they can be updated in
                // parallel; the check keeps that promise honest.
                debug_assert!(
                    rows.windows(2).all(|p| p[0] < p[1]),
                    "rows must be sorted and distinct"
                );
                let wp = SendPtr(w.as_mut_ptr());
                let vp = SendPtr(vel.as_mut_ptr());
                let total = w.len();
                assert!(rows.iter().all(|&r| (r + 1) * dim <= total) && vel.len() == total);
                rows.par_iter()
                    .enumerate()
                    .with_min_len(ROW_CHUNK)
                    .for_each(|(i, &r)| {
                        let (wp, vp) = (&wp, &vp);
                        // SAFETY: rows are distinct and in bounds (checked above), so each task
                        // writes a disjoint range of `w` and `vel`.
                        let (w, v) = unsafe {
                            (
                                std::slice::from_raw_parts_mut(wp.0.add(r * dim), dim),
                                std::slice::from_raw_parts_mut(vp.0.add(r * dim), dim),
                            )
                        };
                        sgd_row(
                            w,
                            v,
                            &grad_n[i * dim..(i + 1) * dim],
                            &wn[i * dim..(i + 1) * dim],
                            norms[i],
                            sgd,
                        );
                    });
            }
        }
        Ok(())
    }

    fn sgd_idle_rows(
        &self,
        w: &mut Vec<f32>,
        vel: &mut Vec<f32>,
        dim: usize,
        skip: &Rows<()>,
        sgd: &SgdParams,
    ) -> Result<()> {
        sgd_idle_host(w, vel, dim, skip.host(), sgd);
        Ok(())
    }

    fn copy_rows(
        &self,
        src: &Vec<f32>,
        src_rows: &[usize],
        dst: &mut Vec<f32>,
        dst_rows: &[usize],
        dim: usize,
    ) -> Result<()> {
        assert_eq!(
            src_rows.len(),
            dst_rows.len(),
            "copy_rows index lengths differ"
        );
        for (&s, &d) in src_rows.iter().zip(dst_rows) {
            dst[d * dim..(d + 1) * dim].copy_from_slice(&src[s * dim..(s + 1) * dim]);
        }
        Ok(())
    }

    fn swap_rows(
        &self,
        a: &mut Vec<f32>,
        b: &mut Vec<f32>,
        rows: &Rows<()>,
        dim: usize,
    ) -> Result<()> {
        for &r in rows.host() {
            a[r * dim..(r + 1) * dim].swap_with_slice(&mut b[r * dim..(r + 1) * dim]);
        }
        Ok(())
    }

    fn duplicate(&self, src: &Vec<f32>) -> Result<Vec<f32>> {
        Ok(src.clone())
    }

    fn fill_at(&self, buf: &mut Vec<f32>, at: &[usize], value: f32) -> Result<()> {
        for &i in at {
            buf[i] = value;
        }
        Ok(())
    }
}

struct SendPtr(*mut f32);
// SAFETY: only used to hand disjoint row ranges to rayon tasks (see `sgd_normalized_rows`).
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// Columns per block of a row in the loss kernels: a block (4 KiB) stays in L1 between its max
/// and its exponentials, so a row is read from memory once per pass however long it is.
const BLOCK: usize = 1024;

/// Lanes of the hand-split reductions: f32 addition and max are not associative, so the compiler
/// vectorises a reduction only when it is written lane by lane.
const LANES: usize = 8;

/// e^x in single precision without a libm call, branch-free so that loops over it vectorise.
/// Cody–Waite reduction x = n·ln2 + f, |f| ≤ ln2/2, and Cephes' `expf` polynomial for e^f; the
/// relative error is below 3e-7 (see the tests). Inputs below −87 are clamped there (e^−87 ≈ 1.6e-38,
/// the smallest normal range): in the softmax such terms are negligible next to the largest, which is 1.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let r = x * LOG2E + ROUND;
    let n = r - ROUND;
    let f = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * f + 1.398_199_9e-3) * f + 8.333_452e-3) * f + 4.166_579_6e-2) * f
        + 0.166_666_65)
        * f
        + 0.5;
    let p = p * f * f + f + 1.0;
    let two_n = f32::from_bits(((r.to_bits() as i32 - 0x4B40_0000 + 127) << 23) as u32);
    p * two_n
}

/// max of a slice, lane by lane (−∞ for an empty slice; NaNs are skipped like `f32::max`).
#[inline(always)]
fn block_max(xs: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            m[j] = if c[j] > m[j] { c[j] } else { m[j] };
        }
    }
    let mut out = m.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for &x in tail {
        out = out.max(x);
    }
    out
}

/// Σ e^(s·x − shift) over a slice, lane by lane.
#[inline(always)]
fn block_exp_sum(xs: &[f32], s: f32, shift: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            acc[j] += fast_exp(c[j] * s - shift);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&x| fast_exp(x * s - shift)).sum::<f32>()
}

/// One row of cross-entropy with margin, in place: cosines in, dL/dcos out; returns the weighted loss.
/// Two passes: the online log-sum-exp (max and sum per L1-resident block, the sum rescaled when the
/// max grows), then the gradient k·e^(s·x − max) written over the row.
#[inline(always)]
fn ce_row_body(row: &mut [f32], t: usize, spec: &LossSpec) -> f32 {
    let s = spec.scale;
    let (phi, dphi) = spec.margin.apply(row[t]);
    row[t] = phi;
    let mut max = f32::NEG_INFINITY;
    let mut sum = 0.0f64;
    for block in row.chunks(BLOCK) {
        let m = block_max(block) * s;
        if m > max {
            // The first block rescales an empty sum: 0 · anything = 0.
            sum *= (max - m).exp() as f64;
            max = m;
        }
        sum += block_exp_sum(block, s, max) as f64;
    }
    let sum = sum as f32;
    let p_t = ((phi * s - max) as f64).exp() as f32 / sum;
    let loss = sum.ln() + max - phi * s;
    let k = spec.ce_weight * s / sum;
    for x in row.iter_mut() {
        *x = k * fast_exp(*x * s - max);
    }
    // d/dφ of the loss is s·(p_t − 1); the chain rule through the margin gives dφ/dc.
    row[t] = spec.ce_weight * s * (p_t - 1.0) * dphi;
    spec.ce_weight * loss
}

/// One row of F²C's negative loss, in place: Σ over the k largest cosines of max(0, cos), weighted.
#[inline(always)]
fn neg_row_body(row: &mut [f32], spec: &LossSpec) -> f32 {
    let k = spec.neg_k.min(row.len());
    if k == 0 {
        // No negative loss configured: such rows contribute nothing, as documented.
        row.fill(0.0);
        return 0.0;
    }
    // The k largest as (value, index), kept sorted descending; k ≤ 10 in practice. A block whose
    // max cannot enter the list is skipped after one vectorised look.
    let mut top: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    const SCAN: usize = 64;
    for (bi, block) in row.chunks(SCAN).enumerate() {
        if top.len() == k && block_max(block) <= top[k - 1].0 {
            continue;
        }
        for (jj, &x) in block.iter().enumerate() {
            if top.len() < k || x > top[top.len() - 1].0 {
                let pos = top.iter().position(|&(v, _)| x > v).unwrap_or(top.len());
                top.insert(pos, (x, bi * SCAN + jj));
                top.truncate(k);
            }
        }
    }
    row.fill(0.0);
    let mut loss = 0.0;
    for &(v, j) in &top {
        if v > 0.0 {
            loss += v;
            row[j] = spec.neg_weight;
        }
    }
    spec.neg_weight * loss
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn ce_row_avx2(row: &mut [f32], t: usize, spec: &LossSpec) -> f32 {
    ce_row_body(row, t, spec)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn neg_row_avx2(row: &mut [f32], spec: &LossSpec) -> f32 {
    neg_row_body(row, spec)
}

/// Whether the AVX2 builds of the row kernels may run (checked once; the baseline x86-64 target
/// has only SSE2).
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVX2.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn ce_row(row: &mut [f32], t: usize, spec: &LossSpec) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
        return unsafe { ce_row_avx2(row, t, spec) };
    }
    ce_row_body(row, t, spec)
}

fn neg_row(row: &mut [f32], spec: &LossSpec) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: as in `ce_row`.
        return unsafe { neg_row_avx2(row, spec) };
    }
    neg_row_body(row, spec)
}

/// [`Backend::sgd_idle_rows`] on host rows: every row of `w` not in `skip` (sorted, distinct)
/// takes the step of a zero gradient, g = λ·w; v ← μ·v + g; w ← w − lr·(g + μ·v if Nesterov else
/// v), the same f32 expressions as the step of a row with a gradient.
fn sgd_idle_host(w: &mut [f32], vel: &mut [f32], dim: usize, skip: &[usize], sgd: &SgdParams) {
    assert_eq!(
        w.len(),
        vel.len(),
        "sgd_idle_rows: centres and momentum differ in size"
    );
    if dim == 0 {
        return;
    }
    debug_assert!(
        skip.windows(2).all(|p| p[0] < p[1]),
        "skipped rows must be sorted and distinct"
    );
    // Sorted: the last row is the largest.
    assert!(
        skip.last().is_none_or(|&r| (r + 1) * dim <= w.len()),
        "sgd_idle_rows row out of range"
    );
    w.par_chunks_mut(dim)
        .zip(vel.par_chunks_mut(dim))
        .enumerate()
        .with_min_len(ROW_CHUNK)
        .filter(|(r, _)| skip.binary_search(r).is_err())
        .for_each(|(_, (w, v))| idle_row(w, v, sgd));
}

/// The SGD step of one row whose loss gradient is zero.
#[inline]
fn idle_row(w: &mut [f32], v: &mut [f32], sgd: &SgdParams) {
    for (wj, vj) in w.iter_mut().zip(v.iter_mut()) {
        let grad = sgd.weight_decay * *wj;
        let vn = sgd.momentum * *vj + grad;
        *vj = vn;
        let step = if sgd.nesterov {
            grad + sgd.momentum * vn
        } else {
            vn
        };
        *wj -= sgd.lr * step;
    }
}

/// Normalisation backward and the SGD step for one row.
#[inline]
fn sgd_row(w: &mut [f32], v: &mut [f32], g: &[f32], u: &[f32], norm: f32, sgd: &SgdParams) {
    // d(w/‖w‖)ᵀ g = (g − (g·u) u) / ‖w‖ with u = w/‖w‖.
    let gu: f32 = g.iter().zip(u).map(|(a, b)| a * b).sum();
    let inv = 1.0 / norm;
    for j in 0..w.len() {
        let grad = (g[j] - gu * u[j]) * inv + sgd.weight_decay * w[j];
        let vj = sgd.momentum * v[j] + grad;
        v[j] = vj;
        let step = if sgd.nesterov {
            grad + sgd.momentum * vj
        } else {
            vj
        };
        w[j] -= sgd.lr * step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::Margin;

    /// `targets` as a loss reads them.
    fn listed(targets: &[i64]) -> Targets<()> {
        CpuBackend.upload_targets(targets.to_vec()).unwrap()
    }

    fn spec(margin: Margin) -> LossSpec {
        LossSpec {
            margin,
            scale: 2.0,
            ce_weight: 1.0,
            neg_k: 2,
            neg_weight: 0.25,
        }
    }

    #[test]
    fn cosface_ce_value_and_gradient_by_hand() {
        // cos = [0.5, 0.1, -0.2], target 0, m = 0.2, s = 2 → logits [0.6, 0.2, -0.4].
        // softmax: e^0.6 = 1.822119, e^0.2 = 1.221403, e^-0.4 = 0.670320, sum = 3.713842
        // loss = ln(3.713842) − 0.6 = 1.312067 − 0.6 = 0.712067
        // p = [0.490629, 0.328879, 0.180492]; dL/dcos = s·(p − onehot) = [−1.018742, 0.657757, 0.360985]
        let mut row = vec![0.5, 0.1, -0.2];
        let parts = CpuBackend
            .margin_loss(&mut row, 1, 3, &listed(&[0]), &spec(Margin::CosFace(0.2)))
            .unwrap();
        assert!((parts.ce - 0.712_067).abs() < 1e-5, "{parts:?}");
        for (g, e) in row.iter().zip([-1.018_742, 0.657_757, 0.360_985]) {
            assert!((g - e).abs() < 1e-5, "{row:?}");
        }
    }

    fn loss_of(cos: &[f32], targets: &[i64], spec: &LossSpec, c: usize) -> f64 {
        let mut v = cos.to_vec();
        CpuBackend
            .margin_loss(&mut v, targets.len(), c, &listed(targets), spec)
            .unwrap()
            .total()
    }

    #[test]
    fn margin_loss_gradient_matches_finite_differences() {
        let cos = [
            0.3f32, -0.1, 0.7, 0.2, 0.65, 0.4, -0.3, 0.1, 0.05, 0.5, -0.6, 0.45,
        ];
        let targets = [2i64, -1, 1];
        for margin in [Margin::CosFace(0.35), Margin::ArcFace(0.5)] {
            let sp = LossSpec {
                margin,
                scale: 8.0,
                ce_weight: 0.5,
                neg_k: 2,
                neg_weight: 0.25,
            };
            let mut grad = cos.to_vec();
            CpuBackend
                .margin_loss(&mut grad, 3, 4, &listed(&targets), &sp)
                .unwrap();
            for i in 0..cos.len() {
                let h = 1e-3;
                let (mut a, mut b) = (cos, cos);
                a[i] += h;
                b[i] -= h;
                let fd = (loss_of(&a, &targets, &sp, 4) - loss_of(&b, &targets, &sp, 4))
                    / (2.0 * h as f64);
                assert!(
                    (fd - grad[i] as f64).abs() < 2e-3,
                    "{margin:?} entry {i}: fd {fd} vs {}",
                    grad[i]
                );
            }
        }
    }

    #[test]
    fn fast_exp_relative_error_is_below_3e7() {
        // Against f64's exp over the range the softmax uses (s·cos − max ≤ 0) and a little above.
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 + i as f64 * (87.0 + 10.0) / 200_000.0;
            let got = fast_exp(x as f32) as f64;
            let want = (x as f32 as f64).exp();
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(fast_exp(0.0), 1.0);
        // Clamped below: e^−1000 becomes e^−87, still finite and tiny.
        assert!(fast_exp(-1000.0) > 0.0 && fast_exp(-1000.0) < 2e-38);
    }

    /// The pre-fusion kernel, kept as the reference: max, libm exp, normalise, three passes.
    fn ce_row_reference(row: &mut [f32], t: usize, spec: &LossSpec) -> f64 {
        let s = spec.scale as f64;
        let (phi, dphi) = spec.margin.apply(row[t]);
        let z: Vec<f64> = row
            .iter()
            .enumerate()
            .map(|(j, &x)| if j == t { phi as f64 * s } else { x as f64 * s })
            .collect();
        let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
        for (j, x) in row.iter_mut().enumerate() {
            let p = (z[j] - max).exp() / sum;
            *x = (spec.ce_weight as f64 * s * if j == t { (p - 1.0) * dphi as f64 } else { p })
                as f32;
        }
        spec.ce_weight as f64 * (sum.ln() + max - phi as f64 * s)
    }

    #[test]
    fn blocked_ce_matches_the_three_pass_reference_on_long_rows() {
        // Rows longer than a block, with the max in a late block (the online rescaling path), and
        // a large scale.
        let c = 3 * BLOCK + 37;
        let cos: Vec<f32> = (0..c)
            .map(|j| ((j as f32 * 0.7311).sin() * 0.6) + if j == 2500 { 0.39 } else { 0.0 })
            .collect();
        for (t, scale, margin) in [
            (5usize, 64.0f32, Margin::ArcFace(0.5)),
            (2500, 32.0, Margin::CosFace(0.4)),
            (c - 1, 8.0, Margin::CosFace(0.2)),
        ] {
            let sp = LossSpec {
                margin,
                scale,
                ce_weight: 0.25,
                neg_k: 0,
                neg_weight: 0.0,
            };
            let (mut fast, mut slow) = (cos.clone(), cos.clone());
            let lf = CpuBackend
                .margin_loss(&mut fast, 1, c, &listed(&[t as i64]), &sp)
                .unwrap()
                .ce;
            let ls = ce_row_reference(&mut slow, t, &sp);
            assert!(
                (lf - ls).abs() < 1e-5 * ls.abs().max(1.0),
                "loss {lf} vs {ls}"
            );
            for j in 0..c {
                assert!(
                    (fast[j] - slow[j]).abs() <= 1e-6 + 1e-5 * slow[j].abs(),
                    "t {t} col {j}: {} vs {}",
                    fast[j],
                    slow[j]
                );
            }
        }
    }

    #[test]
    fn block_skipping_top_k_matches_a_full_sort() {
        // A long row whose top entries sit in different blocks, including the last partial one.
        let c = 1000;
        let row: Vec<f32> = (0..c)
            .map(|j| ((j * 7919 % 1009) as f32 / 1009.0) - 0.5)
            .collect();
        let sp = LossSpec {
            margin: Margin::CosFace(0.1),
            scale: 1.0,
            ce_weight: 0.0,
            neg_k: 10,
            neg_weight: 0.1,
        };
        let mut got = row.clone();
        let loss = CpuBackend
            .margin_loss(&mut got, 1, c, &listed(&[-1]), &sp)
            .unwrap()
            .neg;
        let mut idx: Vec<usize> = (0..c).collect();
        idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let want: f64 = idx[..10]
            .iter()
            .map(|&j| row[j].max(0.0) as f64 * 0.1)
            .sum();
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
        for (j, g) in got.iter().enumerate() {
            assert_eq!(
                *g,
                if idx[..10].contains(&j) && row[j] > 0.0 {
                    0.1
                } else {
                    0.0
                },
                "col {j}"
            );
        }
    }

    #[test]
    fn negative_loss_takes_clipped_top_k() {
        // top-2 of [0.4, -0.2, 0.9, 0.1] are 0.9 and 0.4 → loss 0.25·1.3; of [-0.1, -0.5, 0.2, -0.3]
        // they are 0.2 and −0.1 → clipped 0.2 + 0 → 0.25·0.2; total 0.375.
        let mut rows = vec![0.4, -0.2, 0.9, 0.1, -0.1, -0.5, 0.2, -0.3];
        let parts = CpuBackend
            .margin_loss(
                &mut rows,
                2,
                4,
                &listed(&[-1, -1]),
                &spec(Margin::CosFace(0.2)),
            )
            .unwrap();
        assert!((parts.neg - 0.375).abs() < 1e-6 && parts.ce == 0.0);
        assert_eq!(rows, vec![0.25, 0.0, 0.25, 0.0, 0.0, 0.0, 0.25, 0.0]);
    }

    #[test]
    fn rows_without_target_and_k_zero_get_no_loss() {
        // Regression: k = 0 used to index an empty top-k list.
        let mut rows = vec![0.4, -0.2, 0.9, 0.1];
        let sp = LossSpec {
            neg_k: 0,
            ..spec(Margin::CosFace(0.2))
        };
        let parts = CpuBackend
            .margin_loss(&mut rows, 1, 4, &listed(&[-1]), &sp)
            .unwrap();
        assert_eq!(parts, LossParts::default());
        assert_eq!(rows, vec![0.0; 4]);
    }

    #[test]
    fn an_idle_row_takes_the_step_of_a_zero_gradient() {
        let (rows, dim) = (6, 3);
        let w0: Vec<f32> = (0..rows * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let v0: Vec<f32> = (0..rows * dim).map(|i| (i as f32 * 0.91).cos()).collect();
        for nesterov in [false, true] {
            let sgd = SgdParams {
                lr: 0.2,
                momentum: 0.9,
                weight_decay: 1e-3,
                nesterov,
            };
            let (mut w, mut v) = (w0.clone(), v0.clone());
            let skip = CpuBackend.upload_rows(vec![1, 4]).unwrap();
            CpuBackend
                .sgd_idle_rows(&mut w, &mut v, dim, &skip, &sgd)
                .unwrap();
            // The same rows through the step with a gradient, the gradient zero.
            let (mut wz, mut vz) = (w0.clone(), v0.clone());
            let (mut un, mut norms) = (vec![0.0; rows * dim], vec![0.0; rows]);
            CpuBackend
                .gather_normalize(&w0, dim, None, &mut un, &mut norms)
                .unwrap();
            let zero = vec![0.0; rows * dim];
            CpuBackend
                .sgd_normalized_rows(&mut wz, &mut vz, dim, None, &zero, &un, &norms, &sgd)
                .unwrap();
            for r in 0..rows {
                let row = r * dim..(r + 1) * dim;
                if r == 1 || r == 4 {
                    assert_eq!(&w[row.clone()], &w0[row.clone()], "skipped row {r}");
                    assert_eq!(&v[row.clone()], &v0[row], "skipped row {r}");
                } else {
                    assert_eq!(&w[row.clone()], &wz[row.clone()], "row {r}");
                    assert_eq!(&v[row.clone()], &vz[row], "row {r}");
                }
            }
        }
    }

    #[test]
    fn sgd_step_through_normalisation_by_hand() {
        // w = [3, 4] (‖w‖ = 5, u = [0.6, 0.8]); g = [1, 0] → (g − (g·u)u)/‖w‖ = ([1,0] − 0.6·[0.6,0.8])/5
        // = [0.128, −0.096]; + wd·w (wd 0.01) = [0.158, −0.056]; v = [0.158, −0.056] (v0 = 0)
        // Nesterov: step = g + μ v = 1.9·[0.158, −0.056] = [0.3002, −0.1064]; w −= 0.1·step.
        let mut w = vec![3.0, 4.0];
        let mut v = vec![0.0, 0.0];
        let (mut wn, mut norms) = (vec![0.0; 2], vec![0.0; 1]);
        CpuBackend
            .gather_normalize(&w, 2, None, &mut wn, &mut norms)
            .unwrap();
        assert_eq!(norms, vec![5.0]);
        let sgd = SgdParams {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
            nesterov: true,
        };
        CpuBackend
            .sgd_normalized_rows(&mut w, &mut v, 2, None, &vec![1.0, 0.0], &wn, &norms, &sgd)
            .unwrap();
        assert!(
            (v[0] - 0.158).abs() < 1e-6 && (v[1] + 0.056).abs() < 1e-6,
            "{v:?}"
        );
        assert!(
            (w[0] - (3.0 - 0.030_02)).abs() < 1e-6 && (w[1] - (4.0 + 0.010_64)).abs() < 1e-6,
            "{w:?}"
        );
    }

    #[test]
    fn sparse_rows_touch_only_listed_rows() {
        let mut w = vec![1.0, 0.0, 0.0, 2.0, 3.0, 4.0];
        let mut v = vec![0.0; 6];
        let rows = CpuBackend.upload_rows(vec![0, 2]).unwrap();
        let (mut wn, mut norms) = (vec![0.0; 4], vec![0.0; 2]);
        CpuBackend
            .gather_normalize(&w, 2, Some(&rows), &mut wn, &mut norms)
            .unwrap();
        assert_eq!(norms, vec![1.0, 5.0]);
        let sgd = SgdParams {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.0,
            nesterov: false,
        };
        CpuBackend
            .sgd_normalized_rows(
                &mut w,
                &mut v,
                2,
                Some(&rows),
                &vec![0.0, 1.0, 1.0, 0.0],
                &wn,
                &norms,
                &sgd,
            )
            .unwrap();
        assert_eq!(&w[2..4], &[0.0, 2.0], "row 1 was not sampled");
        assert_eq!(&v[2..4], &[0.0, 0.0]);
        assert!((w[1] + 0.1).abs() < 1e-6); // g ⊥ u for row 0: step = 0.1·[0, 1]
    }

    #[test]
    fn blocked_atb_matches_naive_product() {
        // m large enough for the blocked path (more than two blocks, the last one partial).
        let (m, n, k) = (2 * ATB_ROWS + 37, 3, 4);
        let a: Vec<f32> = (0..k * m).map(|i| (i as f32 * 0.013).sin()).collect(); // (k×m)
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.7).cos()).collect(); // (k×n)
        let mut c = vec![0.0; m * n];
        CpuBackend.matmul_atb(m, n, k, &a, &b, &mut c).unwrap();
        for i in [0, 1, ATB_ROWS - 1, ATB_ROWS, 2 * ATB_ROWS + 36] {
            for j in 0..n {
                let e: f32 = (0..k).map(|p| a[p * m + i] * b[p * n + j]).sum();
                assert!((c[i * n + j] - e).abs() < 1e-5, "({i}, {j})");
            }
        }
    }

    #[test]
    fn sparse_tail_product_equals_the_dense_one() {
        // 5 rows, the last 3 with two non-zeros each; with and without accumulation.
        let (m, n, k) = (5, 3, 7);
        let mut a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        for (r, row) in a.chunks_mut(k).enumerate().skip(2) {
            for (j, x) in row.iter_mut().enumerate() {
                if j != r && j != (r + 3) % k {
                    *x = 0.0;
                }
            }
        }
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.21).cos()).collect();
        for accumulate in [false, true] {
            let init: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.1).collect();
            let (mut dense, mut sparse) = (init.clone(), init.clone());
            CpuBackend
                .matmul_ab(m, n, k, &a, &b, &mut dense, accumulate)
                .unwrap();
            CpuBackend
                .matmul_ab_sparse_tail(2, m, n, k, &a, &b, &mut sparse, accumulate)
                .unwrap();
            for (x, y) in dense.iter().zip(&sparse) {
                assert!(
                    (x - y).abs() < 1e-5,
                    "accumulate {accumulate}: {dense:?} vs {sparse:?}"
                );
            }
        }
    }

    #[test]
    fn matmuls_agree_with_naive_products() {
        let (m, n, k) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.21).cos()).collect(); // (n×k)
        let mut c = vec![0.0; m * n];
        CpuBackend.matmul_abt(m, n, k, &a, &bt, &mut c).unwrap();
        for i in 0..m {
            for j in 0..n {
                let e: f32 = (0..k).map(|p| a[i * k + p] * bt[j * k + p]).sum();
                assert!((c[i * n + j] - e).abs() < 1e-5);
            }
        }
        // c (m×n) · bt (n×k) = (m×k), accumulated onto a.
        let mut d = a.clone();
        CpuBackend
            .matmul_ab(m, k, n, &c, &bt, &mut d, true)
            .unwrap();
        for i in 0..m {
            for p in 0..k {
                let e: f32 =
                    a[i * k + p] + (0..n).map(|j| c[i * n + j] * bt[j * k + p]).sum::<f32>();
                assert!((d[i * k + p] - e).abs() < 1e-4);
            }
        }
        // cᵀ (n×m) · a (m×k) = (n×k).
        let mut e = vec![0.0; n * k];
        CpuBackend.matmul_atb(n, k, m, &c, &a, &mut e).unwrap();
        for j in 0..n {
            for p in 0..k {
                let x: f32 = (0..m).map(|i| c[i * n + j] * a[i * k + p]).sum();
                assert!((e[j * k + p] - x).abs() < 1e-4);
            }
        }
    }
}
