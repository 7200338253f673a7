//! The few fused operations the heads are written in, one implementation per device.
//!
//! The heads (full FC, Partial FC, the F²C pool loss) are written once, generic over [`Backend`].
//! dfdx 0.13 would serve the matmuls, but it has no scatter/gather-update of rows, runs
//! element-wise ops and softmax on one CPU thread, and gives no mutable access to a tensor's
//! storage — at a million classes the B × N logits dominate memory traffic, so the softmax,
//! the margin and the gradient are fused into one pass per row here, and the optimiser touches
//! only the rows a step used. The backbone stays in dfdx; only the (B, D) embeddings and their
//! gradient cross between the two.
//!
//! [`CpuBackend`] (`cpu.rs`) runs on host memory with the `gemm` crate (the kernels dfdx itself
//! uses) and rayon; [`CudaBackend`] (`cuda.rs`, feature `cuda`) runs the same operations on the
//! GPU through cuBLAS and the kernels of `kernels.cu`. Without the feature, `CudaBackend` is a
//! stand-in (`cuda_stub.rs`) whose constructor fails with how to rebuild, so that callers name
//! the type in every build and only choosing it at run time can fail.

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(not(feature = "cuda"))]
mod cuda_stub;
mod kernel_emu;
mod kernels;
mod metered;

pub use cpu::CpuBackend;
#[cfg(feature = "cuda")]
pub use cuda::CudaBackend;
#[cfg(not(feature = "cuda"))]
pub use cuda_stub::CudaBackend;
pub use kernel_emu::KernelEmulator;
pub use metered::Metered;

use crate::error::Result;
use crate::heads::Margin;

/// Which loss a row of cosines gets in [`Backend::margin_loss`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSpec {
    /// Margin on the target cosine of rows with a target.
    pub margin: Margin,
    /// Logit scale s.
    pub scale: f32,
    /// Weight of each cross-entropy row (e.g. 1 / number of rows with a target, for a mean).
    pub ce_weight: f32,
    /// k of the negative loss for rows without a target (0: such rows get no loss).
    pub neg_k: usize,
    /// Weight of each selected negative cosine (e.g. 1 / (rows without target · k), for a mean).
    pub neg_weight: f32,
}

impl LossSpec {
    /// The margin softmax's mean cross-entropy over `rows` rows, each with a target, and no
    /// negative loss (FC, Partial FC, DCQ).
    pub fn mean_cross_entropy(margin: Margin, scale: f32, rows: usize) -> Self {
        LossSpec {
            margin,
            scale,
            ce_weight: 1.0 / rows as f32,
            neg_k: 0,
            neg_weight: 0.0,
        }
    }
}

/// The two parts of a loss returned by [`Backend::margin_loss`], already weighted.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossParts {
    /// Margin-softmax cross-entropy part.
    pub ce: f64,
    /// Negative (top-k clipped cosine) part.
    pub neg: f64,
}

impl LossParts {
    /// ce + neg.
    pub fn total(&self) -> f64 {
        self.ce + self.neg
    }
}

/// SGD with momentum and weight decay, PyTorch's convention (dampening 0):
/// g ← g + λ·w; v ← μ·v + g; w ← w − lr·(g + μ·v if Nesterov else v).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdParams {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

/// A list of integers that several kernels of a step read: the host's list, against which each
/// operation checks it before it launches, and the device's copy, which its kernels read, so that
/// a list crosses to the device once however many operations read it.
#[derive(Debug)]
pub struct Listed<T, I> {
    host: Vec<T>,
    device: I,
}

/// Row indices ([`Backend::upload_rows`]).
pub type Rows<I> = Listed<usize, I>;

/// Per-row loss targets ([`Backend::upload_targets`]).
pub type Targets<I> = Listed<i64, I>;

impl<T, I> Listed<T, I> {
    /// The list, in host memory.
    pub fn host(&self) -> &[T] {
        &self.host
    }

    /// The device's copy.
    pub fn device(&self) -> &I {
        &self.device
    }

    /// Number of rows listed.
    pub fn len(&self) -> usize {
        self.host.len()
    }

    /// True when no row is listed.
    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
    }
}

/// Device operations used by the heads. Matrices are row-major `f32`.
pub trait Backend: Clone + Send + Sync + 'static {
    /// A buffer of `f32` in the device's memory.
    type Buf: Send + Sync;
    /// The device's copy of a row list ([`Rows`]); nothing for a backend on host memory.
    type Index: Send + Sync;
    /// The device's copy of a loss's targets ([`Targets`]); nothing for a backend on host memory.
    type Labels: Send + Sync;

    /// Human-readable device name.
    fn name(&self) -> String;
    /// A zero-filled buffer of `len` floats.
    fn zeros(&self, len: usize) -> Result<Self::Buf>;
    /// A buffer holding a copy of `host`.
    fn upload(&self, host: &[f32]) -> Result<Self::Buf>;
    /// A buffer holding `host`, taken by value: a backend whose buffers live in host memory keeps
    /// the vector itself, so a large state built on the host (N centres) is never held twice.
    fn upload_owned(&self, host: Vec<f32>) -> Result<Self::Buf> {
        self.upload(&host)
    }
    /// Copies `buf` to host memory.
    fn download(&self, buf: &Self::Buf) -> Result<Vec<f32>>;
    /// Number of floats in `buf`.
    fn len(&self, buf: &Self::Buf) -> usize;
    /// Waits for queued work (timing); a no-op on the CPU.
    fn synchronize(&self) -> Result<()>;
    /// The row list `rows` for the row operations that take [`Rows`], its copy on the device.
    fn upload_rows(&self, rows: Vec<usize>) -> Result<Rows<Self::Index>>;
    /// The targets `targets` for [`Backend::margin_loss`], their copy on the device.
    fn upload_targets(&self, targets: Vec<i64>) -> Result<Targets<Self::Labels>>;

    /// c (m×n) = a (m×k) · bᵀ, with b stored (n×k).
    fn matmul_abt(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &Self::Buf,
        b: &Self::Buf,
        c: &mut Self::Buf,
    ) -> Result<()>;
    /// c (m×n) = a (m×k) · b (k×n), added to c when `accumulate`.
    #[allow(clippy::too_many_arguments)]
    fn matmul_ab(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &Self::Buf,
        b: &Self::Buf,
        c: &mut Self::Buf,
        accumulate: bool,
    ) -> Result<()>;
    /// [`Backend::matmul_ab`] where the rows of `a` from `dense_rows` on are known to be mostly
    /// zeros (F²C's negative rows: at most k non-zeros each), so a backend may skip their zeros.
    /// The default is the dense product, which is exact for any `a`.
    #[allow(clippy::too_many_arguments)]
    fn matmul_ab_sparse_tail(
        &self,
        dense_rows: usize,
        m: usize,
        n: usize,
        k: usize,
        a: &Self::Buf,
        b: &Self::Buf,
        c: &mut Self::Buf,
        accumulate: bool,
    ) -> Result<()> {
        let _ = dense_rows;
        self.matmul_ab(m, n, k, a, b, c, accumulate)
    }
    /// c (m×n) = aᵀ · b, with a stored (k×m) and b (k×n).
    fn matmul_atb(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &Self::Buf,
        b: &Self::Buf,
        c: &mut Self::Buf,
    ) -> Result<()>;

    /// Row i of `out` (and `norms[i]`) = the L2-normalised row `rows[i]` of `src` (its norm);
    /// all rows in order when `rows` is `None`. Norms are clamped below at 1e-12 like
    /// PyTorch's `F.normalize`.
    fn gather_normalize(
        &self,
        src: &Self::Buf,
        dim: usize,
        rows: Option<&Rows<Self::Index>>,
        out: &mut Self::Buf,
        norms: &mut Self::Buf,
    ) -> Result<()>;

    /// The fused loss over a (b×c) block of cosines, in place: on entry `cos` holds cosines, on exit
    /// dL/dcos. Row i with `targets[i] ≥ 0` gets the margin-softmax cross-entropy with that target
    /// (weight `ce_weight`); a row with `targets[i] < 0` gets the mean-style negative loss
    /// `neg_weight · Σ_{k largest} max(0, cos)` (F²C's loss for probes not in the pool).
    fn margin_loss(
        &self,
        cos: &mut Self::Buf,
        b: usize,
        c: usize,
        targets: &Targets<Self::Labels>,
        spec: &LossSpec,
    ) -> Result<LossParts>;

    /// Back-propagates `grad_n` = dL/d(normalised rows) through the row normalisation
    /// (`wn`, `norms` from [`Backend::gather_normalize`]) and applies one SGD step to the matching
    /// rows of `w` and of its momentum `vel` (all rows when `rows` is `None`; row i of the
    /// gradient belongs to row `rows[i]` of `w`). Rows not listed are neither read nor written.
    #[allow(clippy::too_many_arguments)]
    fn sgd_normalized_rows(
        &self,
        w: &mut Self::Buf,
        vel: &mut Self::Buf,
        dim: usize,
        rows: Option<&Rows<Self::Index>>,
        grad_n: &Self::Buf,
        wn: &Self::Buf,
        norms: &Self::Buf,
        sgd: &SgdParams,
    ) -> Result<()>;

    /// One SGD step with a zero loss gradient on every row of `w` (and of its momentum `vel`)
    /// not listed in `skip` (sorted, distinct): weight decay and momentum alone, g = λ·w, as
    /// PyTorch's SGD moves the rows of a parameter that the loss did not reach (Partial FC v2's
    /// unsampled centres). A row gets exactly what [`Backend::sgd_normalized_rows`] gives it with
    /// a zero gradient.
    fn sgd_idle_rows(
        &self,
        w: &mut Self::Buf,
        vel: &mut Self::Buf,
        dim: usize,
        skip: &Rows<Self::Index>,
        sgd: &SgdParams,
    ) -> Result<()>;

    /// Row `dst_rows[i]` of `dst` = row `src_rows[i]` of `src` (rows of `dim` floats).
    fn copy_rows(
        &self,
        src: &Self::Buf,
        src_rows: &[usize],
        dst: &mut Self::Buf,
        dst_rows: &[usize],
        dim: usize,
    ) -> Result<()>;

    /// Swaps row `rows[i]` of `a` with row `rows[i]` of `b`, for distinct `rows` (rows of `dim`
    /// floats). Its own inverse: F²C's two-row mix puts row 1's features in row 0's place for one
    /// evaluation and swaps them back, both with one upload of the list.
    fn swap_rows(
        &self,
        a: &mut Self::Buf,
        b: &mut Self::Buf,
        rows: &Rows<Self::Index>,
        dim: usize,
    ) -> Result<()>;

    /// A copy of `src`.
    fn duplicate(&self, src: &Self::Buf) -> Result<Self::Buf>;

    /// Sets the floats at the flat indices `at` of `buf` to `value` (DCQ's label mask). The
    /// default goes through host memory, which is exact on any device; a backend may do it in place.
    fn fill_at(&self, buf: &mut Self::Buf, at: &[usize], value: f32) -> Result<()> {
        if at.is_empty() {
            return Ok(());
        }
        let mut host = self.download(buf)?;
        for &i in at {
            host[i] = value;
        }
        *buf = self.upload_owned(host)?;
        Ok(())
    }

    /// Bytes of device memory in use by everything on the device, where the device can tell
    /// (GPUs); `None` for host memory, which the process's resident size already measures.
    fn device_memory_in_use(&self) -> Option<u64> {
        None
    }
}
