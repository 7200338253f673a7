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

use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{
    CudaDevice, CudaFunction, CudaSlice, DeviceRepr, DeviceSlice, DriverError, LaunchAsync,
    LaunchConfig,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};

use super::kernels::{
    self, GemmPlan, LossArgs, Op, Product, SgdArgs, BLOCK, FILL_BLOCK, KERNELS, KERNEL_SRC,
};
use super::{Backend, LossParts, LossSpec, Rows, SgdParams, Targets};
use crate::error::{Error, Result};

/// Name under which the kernels are loaded into the device.
const MODULE: &str = "f2c_heads";

// SAFETY: #[repr(C)] of 4-byte fields, identical to the kernel's struct; passed by value.
unsafe impl DeviceRepr for LossArgs {}
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

    /// Row indices (a plan's) as a device buffer.
    fn indices(&self, rows: Vec<u64>) -> Result<CudaSlice<u64>> {
        self.dev
            .htod_copy(rows)
            .map_err(|e| self.err("cannot upload row indices", e))
    }

    /// One of the trait's row-major products through cuBLAS `sgemm`, as [`kernels::gemm`] plans
    /// it (cuBLAS is column-major: the plan swaps the operands and transposes the product).
    #[allow(clippy::too_many_arguments)]
    fn product(
        &self,
        product: Product,
        m: usize,
        n: usize,
        k: usize,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        c: &mut CudaSlice<f32>,
        accumulate: bool,
    ) -> Result<()> {
        let plan = kernels::gemm(product, m, n, k, a.len(), b.len(), c.len(), accumulate)
            .map_err(|e| Error::Device(format!("cuda:{}: {e}", self.ordinal)))?;
        let g = match plan {
            GemmPlan::Nothing => return Ok(()),
            GemmPlan::Zero(len) => return self.zero_prefix(c, len),
            GemmPlan::Sgemm(g) => g,
        };
        let op = |o: Op| match o {
            Op::N => CUBLAS_OP_N,
            Op::T => CUBLAS_OP_T,
        };
        let cfg = GemmConfig {
            transa: op(g.transa),
            transb: op(g.transb),
            m: g.m,
            n: g.n,
            k: g.k,
            alpha: 1.0f32,
            lda: g.lda,
            ldb: g.ldb,
            beta: g.beta,
            ldc: g.ldc,
        };
        self.dev
            .bind_to_thread()
            .map_err(|e| self.err("cannot bind the context", e))?;
        // SAFETY: every operand holds the matrix its dimensions and leading dimensions describe
        // (checked by the plan); c is a distinct buffer (&mut).
        unsafe { self.blas.gemm(cfg, b, a, c) }.map_err(|e| {
            Error::Device(format!("cuda:{}: cuBLAS sgemm failed: {e:?}", self.ordinal))
        })
    }

    /// Zeroes the first `len` floats of `c` (a product with k = 0).
    fn zero_prefix(&self, c: &mut CudaSlice<f32>, len: usize) -> Result<()> {
        self.dev
            .memset_zeros(&mut c.slice_mut(0..len))
            .map_err(|e| self.err("cannot zero a product", e))
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

/// One block of `BLOCK` threads for each of `blocks` rows.
fn per_row(blocks: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The device's copy of a row list that a plan found non-empty.
fn listed(rows: &Rows<Option<CudaSlice<u64>>>) -> &CudaSlice<u64> {
    rows.device()
        .as_ref()
        .expect("a non-empty row list is on the device (upload_rows)")
}

impl Backend for CudaBackend {
    type Buf = CudaSlice<f32>;
    /// The list as the kernels read it; `None` for an empty list, which no kernel reads.
    type Index = Option<CudaSlice<u64>>;
    /// The targets as the loss kernel reads them; `None` for no targets, which no kernel reads.
    type Labels = Option<CudaSlice<i64>>;

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

    fn upload_rows(&self, rows: Vec<usize>) -> Result<Rows<Self::Index>> {
        let device = match rows.is_empty() {
            true => None,
            false => Some(self.indices(kernels::indices(&rows))?),
        };
        Ok(Rows { host: rows, device })
    }

    fn upload_targets(&self, targets: Vec<i64>) -> Result<Targets<Self::Labels>> {
        let device = match targets.is_empty() {
            true => None,
            // Asynchronous, as the row lists': the slice holds its host copy until the copy is done.
            false => Some(
                self.dev
                    .htod_copy(targets.clone())
                    .map_err(|e| self.err("cannot upload targets", e))?,
            ),
        };
        Ok(Targets {
            host: targets,
            device,
        })
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
        self.product(Product::Abt, m, n, k, a, b, c, false)
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
        self.product(Product::Ab, m, n, k, a, b, c, accumulate)
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
        self.product(Product::Atb, m, n, k, a, b, c, false)
    }

    fn gather_normalize(
        &self,
        src: &CudaSlice<f32>,
        dim: usize,
        rows: Option<&Rows<Self::Index>>,
        out: &mut CudaSlice<f32>,
        norms: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let host = rows.map(Rows::host);
        let Some(blocks) = kernels::gather_normalize(src.len(), dim, host, out.len(), norms.len())
        else {
            return Ok(());
        };
        let f = self.func("f2c_gather_normalize");
        let cfg = per_row(blocks);
        let launched = match rows {
            Some(rows) => {
                let idx = listed(rows);
                // SAFETY: matches f2c_gather_normalize's parameters; the plan checked the row
                // indices and output sizes; one block per output row.
                unsafe { f.launch(cfg, (src, idx, 1i32, dim as u64, out, norms)) }
            }
            // No index buffer: a null pointer that the kernel does not read (has_rows = 0).
            // SAFETY: as above; the plan's rows of `src` exist by definition of its count.
            None => unsafe { f.launch(cfg, (src, 0u64, 0i32, dim as u64, out, norms)) },
        };
        launched.map_err(|e| self.err("gather_normalize launch failed", e))
    }

    fn margin_loss(
        &self,
        cos: &mut CudaSlice<f32>,
        b: usize,
        c: usize,
        targets: &Targets<Self::Labels>,
        spec: &LossSpec,
    ) -> Result<LossParts> {
        let Some(plan) = kernels::margin_loss(cos.len(), b, c, targets.host(), spec) else {
            return Ok(LossParts::default());
        };
        let t = targets
            .device()
            .as_ref()
            .expect("non-empty targets are on the device (upload_targets)");
        let mut losses = self.zeros(plan.losses)?;
        let f = self.func("f2c_margin_loss");
        // SAFETY: matches f2c_margin_loss's parameters (LossArgs has the kernel's layout); `cos`
        // holds b rows of c, `t` b targets below c, `losses` 2b floats; one block per row.
        unsafe {
            f.launch(
                per_row(plan.blocks),
                (&mut *cos, c as u64, t, plan.args, &mut losses),
            )
        }
        .map_err(|e| self.err("margin_loss launch failed", e))?;
        Ok(kernels::sum_loss_parts(&self.download(&losses)?))
    }

    fn sgd_normalized_rows(
        &self,
        w: &mut CudaSlice<f32>,
        vel: &mut CudaSlice<f32>,
        dim: usize,
        rows: Option<&Rows<Self::Index>>,
        grad_n: &CudaSlice<f32>,
        wn: &CudaSlice<f32>,
        norms: &CudaSlice<f32>,
        sgd: &SgdParams,
    ) -> Result<()> {
        let Some(blocks) = kernels::sgd_rows(
            w.len(),
            vel.len(),
            dim,
            rows.map(Rows::host),
            grad_n.len(),
            wn.len(),
            norms.len(),
        ) else {
            return Ok(());
        };
        let args = SgdArgs::new(sgd);
        let f = self.func("f2c_sgd_rows");
        let cfg = per_row(blocks);
        let launched = match rows {
            Some(rows) => {
                let idx = listed(rows);
                // SAFETY: matches f2c_sgd_rows's parameters; the plan checked sizes and rows.
                unsafe {
                    f.launch(
                        cfg,
                        (w, vel, dim as u64, idx, 1i32, grad_n, wn, norms, args),
                    )
                }
            }
            // SAFETY: as above, with the unread null index pointer (has_rows = 0).
            None => unsafe {
                f.launch(
                    cfg,
                    (w, vel, dim as u64, 0u64, 0i32, grad_n, wn, norms, args),
                )
            },
        };
        launched.map_err(|e| self.err("sgd_normalized_rows launch failed", e))
    }

    fn sgd_idle_rows(
        &self,
        w: &mut CudaSlice<f32>,
        vel: &mut CudaSlice<f32>,
        dim: usize,
        skip: &Rows<Self::Index>,
        sgd: &SgdParams,
    ) -> Result<()> {
        let Some(plan) = kernels::sgd_idle_rows(w.len(), vel.len(), dim, skip.host()) else {
            return Ok(());
        };
        let args = SgdArgs::new(sgd);
        let f = self.func("f2c_sgd_idle_rows");
        let cfg = LaunchConfig {
            grid_dim: (plan.blocks, 1, 1),
            block_dim: (FILL_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let (len, dim) = (plan.len, dim as u64);
        match plan.skipped {
            n @ 1.. => {
                let idx = listed(skip);
                // SAFETY: matches f2c_sgd_idle_rows's parameters; the plan checked that the
                // skipped rows are sorted, distinct and within `w`, and that `vel` is as long.
                unsafe { f.launch(cfg, (w, vel, len, dim, idx, n, args)) }
            }
            // SAFETY: as above, with the unread null index pointer (n_skip = 0).
            0 => unsafe { f.launch(cfg, (w, vel, len, dim, 0u64, 0u64, args)) },
        }
        .map_err(|e| self.err("sgd_idle_rows launch failed", e))
    }

    fn copy_rows(
        &self,
        src: &CudaSlice<f32>,
        src_rows: &[usize],
        dst: &mut CudaSlice<f32>,
        dst_rows: &[usize],
        dim: usize,
    ) -> Result<()> {
        let Some(plan) = kernels::copy_rows(src.len(), src_rows, dst.len(), dst_rows, dim) else {
            return Ok(());
        };
        let f = self.func("f2c_copy_rows");
        let (listed, n, dim) = (plan.listed, plan.n, dim as u64);
        // SAFETY: matches f2c_copy_rows's parameters; the plan checked the rows, kept each
        // destination once and lists the sides that `listed` names (a null pointer, not read,
        // when it names none).
        match plan.rows {
            Some(rows) => {
                let idx = self.indices(rows)?;
                unsafe { f.launch(per_row(plan.blocks), (src, &idx, listed, n, dst, dim)) }
            }
            None => unsafe { f.launch(per_row(plan.blocks), (src, 0u64, listed, n, dst, dim)) },
        }
        .map_err(|e| self.err("copy_rows launch failed", e))
    }

    fn swap_rows(
        &self,
        a: &mut CudaSlice<f32>,
        b: &mut CudaSlice<f32>,
        rows: &Rows<Self::Index>,
        dim: usize,
    ) -> Result<()> {
        let Some(blocks) = kernels::swap_rows(a.len(), b.len(), rows.host(), dim) else {
            return Ok(());
        };
        let f = self.func("f2c_swap_rows");
        // SAFETY: matches f2c_swap_rows's parameters; the plan checked the rows against both
        // buffers and that they are distinct; `a` and `b` are distinct buffers (&mut).
        unsafe { f.launch(per_row(blocks), (a, b, listed(rows), dim as u64)) }
            .map_err(|e| self.err("swap_rows launch failed", e))
    }

    fn fill_at(&self, buf: &mut CudaSlice<f32>, at: &[usize], value: f32) -> Result<()> {
        let Some(plan) = kernels::fill_at(buf.len(), at) else {
            return Ok(());
        };
        let n = plan.at.len() as u64;
        let idx = self.indices(plan.at)?;
        let f = self.func("f2c_fill_at");
        let cfg = LaunchConfig {
            grid_dim: (plan.blocks, 1, 1),
            block_dim: (FILL_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: matches f2c_fill_at's parameters; the plan checked every index against `buf`.
        unsafe { f.launch(cfg, (buf, &idx, n, value)) }
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
}
