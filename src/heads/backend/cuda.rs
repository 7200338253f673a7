//! The CUDA implementation of the heads' [`Backend`] (feature `cuda`): the same operations as
//! [`CpuBackend`](super::CpuBackend), on an NVIDIA GPU through cudarc 0.9 (the version dfdx
//! 0.13 is built on).
//!
//! Matmuls go to cuBLAS `sgemm` in its default math mode (full FP32: TF32 needs an explicit opt-in).
//! The fused row kernels — gather + normalise, the margin-softmax / negative top-k loss, the SGD
//! step through the normalisation, row copies — are the CUDA C of `kernels.cu`, compiled once per
//! process with NVRTC and without any `#include`, so that a GPU machine needs only the driver and
//! `libnvrtc`, not a CUDA include folder. Each kernel gives one block to one row and reduces in shared memory
//! in a fixed tree order: results do not depend on scheduling, and no float atomics are used.
//! The arithmetic is written in the order of the CPU code and compiled without FMA contraction,
//! so the two backends differ only where they must: summation order inside a row (tree here,
//! sequential there) and `expf`/`logf` (CUDA's are within 2 ulp). Loss parts come back per row and
//! are summed on the host in row order, in `f64`, as on the CPU.

use std::ffi::c_char;
use std::sync::{Arc, OnceLock};

use cudarc::cublas::sys::cublasOperation_t::{self, CUBLAS_OP_N, CUBLAS_OP_T};
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{
    CudaDevice, CudaFunction, CudaSlice, DeviceRepr, DeviceSlice, DriverError, LaunchAsync,
    LaunchConfig,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};

use super::{Backend, LossParts, LossSpec, SgdParams};
use crate::error::{Error, Result};
use crate::heads::Margin;

/// Threads per block of every row kernel (a power of two: the tree reductions halve it).
const BLOCK: u32 = 256;
/// Name under which the kernels are loaded into the device.
const MODULE: &str = "f2c_heads";
const KERNELS: &[&str] = &[
    "f2c_gather_normalize",
    "f2c_margin_loss",
    "f2c_sgd_rows",
    "f2c_copy_rows",
    "f2c_fill_at",
];

/// The kernels' CUDA C, compiled at run time by [`kernel_ptx`].
const KERNEL_SRC: &str = include_str!("kernels.cu");

/// The kernels' launch parameters of the loss, laid out like the CUDA `struct LossArgs`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
struct LossArgs {
    kind: i32,
    m: f32,
    cos_m: f32,
    sin_m: f32,
    threshold: f32,
    fallback: f32,
    scale: f32,
    ce_weight: f32,
    neg_k: i32,
    neg_weight: f32,
}

// SAFETY: #[repr(C)] of 4-byte fields, identical to the kernel's struct; passed by value.
unsafe impl DeviceRepr for LossArgs {}

impl LossArgs {
    /// The margin's constants computed on the host with the same f32 expressions as
    /// [`Margin::apply`], so that the kernel takes the same ArcFace branch as the CPU.
    fn new(spec: &LossSpec) -> Self {
        let (kind, m, cos_m, sin_m, threshold, fallback) = match spec.margin {
            Margin::CosFace(m) => (0, m, 0.0, 0.0, 0.0, 0.0),
            Margin::ArcFace(m) => {
                let (sm, cm) = m.sin_cos();
                let pi = std::f32::consts::PI;
                (1, m, cm, sm, (pi - m).cos(), m * (pi - m).sin())
            }
        };
        LossArgs {
            kind,
            m,
            cos_m,
            sin_m,
            threshold,
            fallback,
            scale: spec.scale,
            ce_weight: spec.ce_weight,
            neg_k: i32::try_from(spec.neg_k).unwrap_or(i32::MAX),
            neg_weight: spec.neg_weight,
        }
    }
}

/// SGD settings laid out like the CUDA `struct SgdArgs`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct SgdArgs {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    nesterov: i32,
}

// SAFETY: #[repr(C)] of 4-byte fields, identical to the kernel's struct; passed by value.
unsafe impl DeviceRepr for SgdArgs {}

/// A driver error as text. `DriverError`'s own `Debug` unwraps `cuGetErrorString`, which panics
/// where the driver is only a link stub; this falls back to the error code.
fn describe(e: DriverError) -> String {
    match e.error_string() {
        Ok(s) => format!("{:?}: {}", e.0, s.to_string_lossy()),
        Err(_) => format!("{:?}", e.0),
    }
}

fn driver_error(ordinal: usize, what: &str, e: DriverError) -> Error {
    Error::Device(format!("cuda:{ordinal}: {what}: {}", describe(e)))
}

/// The kernels compiled to PTX, once per process (NVRTC takes a noticeable fraction of a second).
/// Needs only `libnvrtc`, no GPU: the compile-check test runs on any machine that links the crate.
fn kernel_ptx() -> Result<Ptx> {
    static PTX: OnceLock<std::result::Result<Ptx, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        // No FMA contraction, IEEE division and square root: the same rounding as the CPU code.
        let opts = CompileOptions {
            fmad: Some(false),
            prec_div: Some(true),
            prec_sqrt: Some(true),
            ftz: Some(false),
            ..Default::default()
        };
        compile_ptx_with_opts(KERNEL_SRC, opts).map_err(|e| match e {
            cudarc::nvrtc::CompileError::CompileError { nvrtc, log, .. } => {
                format!("{nvrtc:?}: {}", log.to_string_lossy())
            }
            other => format!("{other:?}"),
        })
    })
    .clone()
    .map_err(|msg| {
        Error::Device(format!(
            "nvrtc could not compile the head kernels (src/heads/backend/kernels.cu): {msg}"
        ))
    })
}

/// Opens GPU `ordinal` without panicking: cudarc's `CudaDevice::new` unwraps the driver's
/// initialisation, which fails on machines without a GPU (or with only a link stub).
fn open_device(ordinal: usize) -> Result<Arc<CudaDevice>> {
    use cudarc::driver::result;
    result::init().map_err(|e| {
        Error::Device(format!(
            "cuda:{ordinal}: the CUDA driver did not initialise ({}); is there an NVIDIA GPU with its driver (libcuda.so.1) on this machine? Use `--device cpu` otherwise",
            describe(e)
        ))
    })?;
    let count =
        result::device::get_count().map_err(|e| driver_error(ordinal, "cannot count GPUs", e))?;
    if ordinal >= count.max(0) as usize {
        return Err(Error::Device(format!(
            "cuda:{ordinal} was asked for, but this machine has {count} GPU(s); use an ordinal below {count} or `--device cpu`"
        )));
    }
    match std::panic::catch_unwind(|| CudaDevice::new(ordinal)) {
        Ok(dev) => dev.map_err(|e| driver_error(ordinal, "cannot open the device", e)),
        Err(_) => Err(Error::Device(format!(
            "cuda:{ordinal}: cudarc panicked while opening the device"
        ))),
    }
}

/// The heads' operations on one NVIDIA GPU. Cloning shares the device, cuBLAS handle and kernels.
#[derive(Debug, Clone)]
pub struct CudaBackend {
    dev: Arc<CudaDevice>,
    blas: Arc<CudaBlas>,
    ordinal: usize,
    name: Arc<str>,
}

impl CudaBackend {
    /// Opens GPU `ordinal`, creates a cuBLAS handle on its stream and loads the kernels. Fails
    /// (without panicking) when there is no driver, no such GPU, or NVRTC cannot compile.
    pub fn new(ordinal: usize) -> Result<Self> {
        let dev = open_device(ordinal)?;
        let blas = CudaBlas::new(dev.clone()).map_err(|e| {
            Error::Device(format!(
                "cuda:{ordinal}: cuBLAS could not be initialised: {e:?}"
            ))
        })?;
        dev.load_ptx(kernel_ptx()?, MODULE, KERNELS)
            .map_err(|e| driver_error(ordinal, "cannot load the head kernels", e))?;
        let name = match gpu_name(&dev) {
            Some(gpu) => format!("cuda:{ordinal} ({gpu})"),
            None => format!("cuda:{ordinal}"),
        };
        Ok(CudaBackend {
            dev,
            blas: Arc::new(blas),
            ordinal,
            name: name.into(),
        })
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The cudarc device (shared with every buffer of this backend).
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.dev
    }

    /// (free, total) bytes of device memory, as the driver reports them now.
    pub fn memory_info(&self) -> Result<(usize, usize)> {
        self.dev
            .bind_to_thread()
            .map_err(|e| self.err("cannot bind the context", e))?;
        cudarc::driver::result::mem_get_info().map_err(|e| self.err("cannot query memory", e))
    }

    fn err(&self, what: &str, e: DriverError) -> Error {
        driver_error(self.ordinal, what, e)
    }

    fn func(&self, name: &str) -> CudaFunction {
        self.dev
            .get_func(MODULE, name)
            .expect("the head kernels are loaded by CudaBackend::new")
    }

    /// Host indices as a device buffer of u64 (the kernels' row type).
    fn indices(&self, rows: &[usize]) -> Result<CudaSlice<u64>> {
        self.dev
            .htod_copy(rows.iter().map(|&r| r as u64).collect())
            .map_err(|e| self.err("cannot upload row indices", e))
    }

    /// C (m×n, row-major) = [C +] A·B for the three products of the trait, where A's memory holds
    /// m·k floats and B's n·k (either possibly transposed), through cuBLAS, which is column-major:
    /// a row-major (r×c) matrix is the column-major (c×r) transpose in the same memory, so C is
    /// computed as Cᵀ (n×m) = Bᵀ·Aᵀ with the operands swapped. `b_op` and `a_op` are cuBLAS's
    /// operation and leading dimension for B's and A's memory in that swapped product. Shapes with
    /// a zero never reach cuBLAS: there is nothing to do, or (k = 0) C is zeroed or left.
    #[allow(clippy::too_many_arguments)]
    fn row_major_gemm(
        &self,
        what: &str,
        m: usize,
        n: usize,
        k: usize,
        b_op: (cublasOperation_t, usize),
        a_op: (cublasOperation_t, usize),
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        c: &mut CudaSlice<f32>,
        accumulate: bool,
    ) -> Result<()> {
        assert!(
            a.len() >= m * k && b.len() >= n * k && c.len() >= m * n,
            "{what} operands too small"
        );
        if m == 0 || n == 0 {
            return Ok(());
        }
        if k == 0 {
            return self.empty_product(c, m * n, accumulate);
        }
        let int = |x: usize| {
            i32::try_from(x).map_err(|_| {
                Error::Device(format!(
                    "cuda:{}: matrix dimension {x} exceeds cuBLAS's 32-bit sizes",
                    self.ordinal
                ))
            })
        };
        let cfg = GemmConfig {
            transa: b_op.0,
            transb: a_op.0,
            m: int(n)?,
            n: int(m)?,
            k: int(k)?,
            alpha: 1.0f32,
            lda: int(b_op.1)?,
            ldb: int(a_op.1)?,
            beta: if accumulate { 1.0 } else { 0.0 },
            ldc: int(n)?,
        };
        self.dev
            .bind_to_thread()
            .map_err(|e| self.err("cannot bind the context", e))?;
        // SAFETY: every operand holds the matrix its dimensions and leading dimensions describe
        // (asserted above); c is a distinct buffer (&mut).
        unsafe { self.blas.gemm(cfg, b, a, c) }.map_err(|e| {
            Error::Device(format!("cuda:{}: cuBLAS sgemm failed: {e:?}", self.ordinal))
        })
    }

    /// Zeroes (or, accumulating, leaves) the first `len` floats of `c`: a product with k = 0.
    fn empty_product(&self, c: &mut CudaSlice<f32>, len: usize, accumulate: bool) -> Result<()> {
        if !accumulate && len > 0 {
            self.dev
                .memset_zeros(&mut c.slice_mut(0..len))
                .map_err(|e| self.err("cannot zero a product", e))?;
        }
        Ok(())
    }
}

/// The GPU's marketing name, where the driver gives one.
fn gpu_name(dev: &Arc<CudaDevice>) -> Option<String> {
    let mut buf = [0 as c_char; 256];
    // SAFETY: the buffer is writable for its full length, which is passed; the driver writes a
    // NUL-terminated string into it.
    let res = unsafe {
        cudarc::driver::sys::cuDeviceGetName(buf.as_mut_ptr(), buf.len() as i32, *dev.cu_device())
    };
    res.result().ok()?;
    // SAFETY: NUL-terminated by the driver (and the buffer ends in the zero it was filled with).
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .trim()
        .to_string();
    (!name.is_empty()).then_some(name)
}

/// One block of `BLOCK` threads per row.
fn per_row(rows: usize) -> LaunchConfig {
    let rows = u32::try_from(rows)
        .ok()
        .filter(|&r| r < i32::MAX as u32)
        .expect("row count fits a CUDA grid");
    LaunchConfig {
        grid_dim: (rows, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The (source, destination) pairs of a row copy with each destination row kept once, at its last
/// occurrence: a sequential copy lets the later write win, parallel blocks would race.
fn last_writes(src_rows: &[usize], dst_rows: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut seen = std::collections::HashSet::with_capacity(dst_rows.len());
    let mut pairs: Vec<(usize, usize)> = src_rows
        .iter()
        .zip(dst_rows)
        .rev()
        .filter(|(_, &d)| seen.insert(d))
        .map(|(&s, &d)| (s, d))
        .collect();
    pairs.reverse();
    pairs.into_iter().unzip()
}

impl Backend for CudaBackend {
    type Buf = CudaSlice<f32>;

    fn name(&self) -> String {
        self.name.to_string()
    }
    fn zeros(&self, len: usize) -> Result<CudaSlice<f32>> {
        self.dev
            .alloc_zeros(len)
            .map_err(|e| self.err(&format!("cannot allocate {len} floats"), e))
    }
    fn upload(&self, host: &[f32]) -> Result<CudaSlice<f32>> {
        // The synchronous copy keeps no host copy alive beside long-lived buffers (the centres).
        self.dev
            .htod_sync_copy(host)
            .map_err(|e| self.err(&format!("cannot upload {} floats", host.len()), e))
    }
    fn download(&self, buf: &CudaSlice<f32>) -> Result<Vec<f32>> {
        if buf.is_empty() {
            return Ok(Vec::new());
        }
        self.dev
            .dtoh_sync_copy(buf)
            .map_err(|e| self.err("cannot download a buffer", e))
    }
    fn len(&self, buf: &CudaSlice<f32>) -> usize {
        buf.len()
    }
    fn synchronize(&self) -> Result<()> {
        // The whole context, not only this backend's stream: dfdx's work is queued there too.
        self.dev
            .bind_to_thread()
            .map_err(|e| self.err("cannot bind the context", e))?;
        // SAFETY: a context is current (bound above).
        unsafe { cudarc::driver::sys::cuCtxSynchronize() }
            .result()
            .map_err(|e| self.err("synchronisation failed", e))
    }

    fn matmul_abt(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        c: &mut CudaSlice<f32>,
    ) -> Result<()> {
        // Cᵀ (n×m) = B (n×k) · Aᵀ (k×m). B's memory is column-major Bᵀ (k×n, ld k): transposed;
        // A's memory is column-major Aᵀ (k×m, ld k): as is.
        self.row_major_gemm(
            "matmul_abt",
            m,
            n,
            k,
            (CUBLAS_OP_T, k),
            (CUBLAS_OP_N, k),
            a,
            b,
            c,
            false,
        )
    }
    fn matmul_ab(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        c: &mut CudaSlice<f32>,
        accumulate: bool,
    ) -> Result<()> {
        // Cᵀ (n×m) = Bᵀ (n×k) · Aᵀ (k×m). B's memory is column-major Bᵀ (n×k, ld n), A's is
        // column-major Aᵀ (k×m, ld k): both as is. β = 1 adds onto C.
        self.row_major_gemm(
            "matmul_ab",
            m,
            n,
            k,
            (CUBLAS_OP_N, n),
            (CUBLAS_OP_N, k),
            a,
            b,
            c,
            accumulate,
        )
    }
    fn matmul_atb(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        c: &mut CudaSlice<f32>,
    ) -> Result<()> {
        // C = Aᵀ·B with A (k×m), B (k×n): Cᵀ (n×m) = Bᵀ (n×k) · A (k×m). B's memory is
        // column-major Bᵀ (n×k, ld n): as is; A's is column-major Aᵀ (m×k, ld m): transposed.
        self.row_major_gemm(
            "matmul_atb",
            m,
            n,
            k,
            (CUBLAS_OP_N, n),
            (CUBLAS_OP_T, m),
            a,
            b,
            c,
            false,
        )
    }

    fn gather_normalize(
        &self,
        src: &CudaSlice<f32>,
        dim: usize,
        rows: Option<&[usize]>,
        out: &mut CudaSlice<f32>,
        norms: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let count = rows.map_or(src.len() / dim.max(1), |r| r.len());
        assert!(
            out.len() >= count * dim && norms.len() >= count,
            "gather_normalize output too small"
        );
        if count == 0 || dim == 0 {
            return Ok(());
        }
        let f = self.func("f2c_gather_normalize");
        let launched = match rows {
            Some(rows) => {
                assert!(
                    rows.iter().all(|&r| (r + 1) * dim <= src.len()),
                    "gather_normalize row out of range"
                );
                let idx = self.indices(rows)?;
                // SAFETY: matches f2c_gather_normalize's parameters; the row indices and output
                // sizes were checked above; one block per output row.
                unsafe { f.launch(per_row(count), (src, &idx, 1i32, dim as u64, out, norms)) }
            }
            // No index buffer: a null pointer that the kernel does not read (has_rows = 0).
            // SAFETY: as above; `count` rows of `src` exist by definition of count.
            None => unsafe { f.launch(per_row(count), (src, 0u64, 0i32, dim as u64, out, norms)) },
        };
        launched.map_err(|e| self.err("gather_normalize launch failed", e))
    }

    fn margin_loss(
        &self,
        cos: &mut CudaSlice<f32>,
        b: usize,
        c: usize,
        targets: &[i64],
        spec: &LossSpec,
    ) -> Result<LossParts> {
        assert!(
            cos.len() >= b * c && targets.len() == b,
            "margin_loss shapes"
        );
        assert!(
            targets.iter().all(|&t| t < c as i64),
            "margin_loss target out of range"
        );
        if b == 0 {
            return Ok(LossParts::default());
        }
        let t = self
            .dev
            .htod_copy(targets.to_vec())
            .map_err(|e| self.err("cannot upload targets", e))?;
        let mut losses = self.zeros(2 * b)?;
        let f = self.func("f2c_margin_loss");
        // SAFETY: matches f2c_margin_loss's parameters (LossArgs has the kernel's layout); `cos`
        // holds b rows of c, `t` b targets below c, `losses` 2b floats; one block per row.
        unsafe {
            f.launch(
                per_row(b),
                (&mut *cos, c as u64, &t, LossArgs::new(spec), &mut losses),
            )
        }
        .map_err(|e| self.err("margin_loss launch failed", e))?;
        let parts = self.download(&losses)?;
        // Row order and f64, as the CPU backend folds its per-row parts.
        Ok(parts
            .chunks(2)
            .fold(LossParts::default(), |acc, p| LossParts {
                ce: acc.ce + p[0] as f64,
                neg: acc.neg + p[1] as f64,
            }))
    }

    fn sgd_normalized_rows(
        &self,
        w: &mut CudaSlice<f32>,
        vel: &mut CudaSlice<f32>,
        dim: usize,
        rows: Option<&[usize]>,
        grad_n: &CudaSlice<f32>,
        wn: &CudaSlice<f32>,
        norms: &CudaSlice<f32>,
        sgd: &SgdParams,
    ) -> Result<()> {
        let count = rows.map_or(w.len() / dim.max(1), |r| r.len());
        assert!(
            vel.len() == w.len()
                && grad_n.len() >= count * dim
                && wn.len() >= count * dim
                && norms.len() >= count,
            "sgd_normalized_rows shapes"
        );
        if count == 0 || dim == 0 {
            return Ok(());
        }
        let args = SgdArgs {
            lr: sgd.lr,
            momentum: sgd.momentum,
            weight_decay: sgd.weight_decay,
            nesterov: sgd.nesterov as i32,
        };
        let f = self.func("f2c_sgd_rows");
        let launched = match rows {
            Some(rows) => {
                // Distinct rows: each block owns its row of w and vel (the CPU backend's promise too).
                debug_assert!(
                    rows.windows(2).all(|p| p[0] < p[1]),
                    "rows must be sorted and distinct"
                );
                assert!(
                    rows.iter().all(|&r| (r + 1) * dim <= w.len()),
                    "sgd_normalized_rows row out of range"
                );
                let idx = self.indices(rows)?;
                // SAFETY: matches f2c_sgd_rows's parameters; sizes and rows checked above.
                unsafe {
                    f.launch(
                        per_row(count),
                        (w, vel, dim as u64, &idx, 1i32, grad_n, wn, norms, args),
                    )
                }
            }
            // SAFETY: as above, with the unread null index pointer (has_rows = 0).
            None => unsafe {
                f.launch(
                    per_row(count),
                    (w, vel, dim as u64, 0u64, 0i32, grad_n, wn, norms, args),
                )
            },
        };
        launched.map_err(|e| self.err("sgd_normalized_rows launch failed", e))
    }

    fn copy_rows(
        &self,
        src: &CudaSlice<f32>,
        src_rows: &[usize],
        dst: &mut CudaSlice<f32>,
        dst_rows: &[usize],
        dim: usize,
    ) -> Result<()> {
        assert_eq!(
            src_rows.len(),
            dst_rows.len(),
            "copy_rows index lengths differ"
        );
        assert!(
            src_rows.iter().all(|&r| (r + 1) * dim <= src.len()),
            "copy_rows source row out of range"
        );
        assert!(
            dst_rows.iter().all(|&r| (r + 1) * dim <= dst.len()),
            "copy_rows destination row out of range"
        );
        if src_rows.is_empty() || dim == 0 {
            return Ok(());
        }
        let (s, d) = last_writes(src_rows, dst_rows);
        let (si, di) = (self.indices(&s)?, self.indices(&d)?);
        let f = self.func("f2c_copy_rows");
        // SAFETY: matches f2c_copy_rows's parameters; rows checked above and destinations distinct.
        unsafe { f.launch(per_row(s.len()), (src, &si, dst, &di, dim as u64)) }
            .map_err(|e| self.err("copy_rows launch failed", e))
    }

    fn fill_at(&self, buf: &mut CudaSlice<f32>, at: &[usize], value: f32) -> Result<()> {
        if at.is_empty() {
            return Ok(());
        }
        assert!(
            at.iter().all(|&i| i < buf.len()),
            "fill_at index out of range"
        );
        let idx = self.indices(at)?;
        let f = self.func("f2c_fill_at");
        let cfg = LaunchConfig::for_num_elems(at.len() as u32);
        // SAFETY: matches f2c_fill_at's parameters; every index was checked to lie inside `buf`.
        unsafe { f.launch(cfg, (buf, &idx, at.len() as u64, value)) }
            .map_err(|e| self.err("fill_at launch failed", e))
    }

    fn duplicate(&self, src: &CudaSlice<f32>) -> Result<CudaSlice<f32>> {
        src.try_clone()
            .map_err(|e| self.err("cannot copy a buffer", e))
    }

    fn device_memory_in_use(&self) -> Option<u64> {
        self.memory_info()
            .ok()
            .map(|(free, total)| (total - free) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_constants_match_the_rust_side() {
        assert!(KERNEL_SRC.contains(&format!("#define BLOCK {BLOCK}\n")));
        assert!(
            BLOCK.is_power_of_two(),
            "the tree reductions halve the block"
        );
        for k in KERNELS {
            assert!(
                KERNEL_SRC.contains(&format!("extern \"C\" __global__ void {k}(")),
                "{k}"
            );
        }
        // Ten 4-byte fields and four, as in the CUDA structs.
        assert_eq!(std::mem::size_of::<LossArgs>(), 40);
        assert_eq!(std::mem::size_of::<SgdArgs>(), 16);
    }

    #[test]
    fn kernels_compile_with_nvrtc_and_no_includes() {
        // Needs libnvrtc only (no GPU). The PTX names every kernel as an entry point.
        assert!(!KERNEL_SRC.contains("#include"));
        let ptx = kernel_ptx().unwrap().to_src();
        for k in KERNELS {
            assert!(
                ptx.contains(&format!(".entry {k}(")),
                "{k} missing from the PTX"
            );
        }
    }

    #[test]
    fn arcface_constants_by_hand() {
        // m = 0.5: cos m = 0.877583, sin m = 0.479426, cos(π − 0.5) = −0.877583,
        // m·sin(π − m) = 0.5·0.479426 = 0.239713.
        let spec = LossSpec {
            margin: Margin::ArcFace(0.5),
            scale: 64.0,
            ce_weight: 0.5,
            neg_k: 3,
            neg_weight: 0.1,
        };
        let a = LossArgs::new(&spec);
        assert_eq!((a.kind, a.neg_k), (1, 3));
        for (got, want) in [
            (a.cos_m, 0.877_583),
            (a.sin_m, 0.479_426),
            (a.threshold, -0.877_583),
            (a.fallback, 0.239_713),
        ] {
            assert!((got - want).abs() < 1e-6, "{a:?}");
        }
        // The branch constants reproduce Margin::apply at a point on each side of the threshold.
        for c in [0.6f32, -0.95] {
            let (phi, _) = spec.margin.apply(c);
            let mine = if c > a.threshold {
                c * a.cos_m - (1.0 - c * c).max(1e-12).sqrt() * a.sin_m
            } else {
                c - a.fallback
            };
            assert_eq!(phi, mine, "c = {c}");
        }
        let cos = LossArgs::new(&LossSpec {
            margin: Margin::CosFace(0.35),
            ..spec
        });
        assert_eq!((cos.kind, cos.m), (0, 0.35));
    }

    #[test]
    fn repeated_destination_rows_keep_the_last_write() {
        // dst 4 ← src 0, then dst 2 ← src 1, then dst 4 ← src 3: the copy of src 3 wins row 4.
        let (s, d) = last_writes(&[0, 1, 3], &[4, 2, 4]);
        assert_eq!((s, d), (vec![1, 3], vec![2, 4]));
        assert_eq!(last_writes(&[5, 6], &[1, 0]), (vec![5, 6], vec![1, 0]));
    }
}
