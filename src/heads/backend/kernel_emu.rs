//! The CUDA backend's row kernels run on the CPU: a [`Backend`] whose seven kernel operations
//! execute the CUDA C of `kernels.cu` itself, compiled as C++ by a host compiler and run in CUDA's
//! execution model (`kernel_emu.cpp`: a block's threads are fibers that meet at every barrier,
//! shared memory is shared), from the launch plans of the CUDA backend (`kernels.rs`).
//!
//! It exists to test the kernels where there is no GPU: the agreement tests that compare the CUDA
//! backend with [`CpuBackend`] on a GPU run against this emulator in every `cargo test`. It checks
//! the kernels' arithmetic, reductions and top-k selection; that every thread of a block reaches
//! each barrier; that the result does not depend on the order of threads and blocks (every launch
//! runs in increasing and in decreasing order, which must agree bit for bit: a race shows as a
//! difference); and the layout of the structs the kernels take by value. The products take the
//! `sgemm` arguments the CUDA backend gives cuBLAS (the same plans) and run them by BLAS's
//! definition, column-major, so that a wrong transpose or leading dimension shows here; cuBLAS
//! itself, the CUDA backend's memory management and speed are left to a GPU.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use super::kernels::{self, GemmPlan, Op, Product, Sgemm, BLOCK, FILL_BLOCK, KERNELS, KERNEL_SRC};
use super::{Backend, CpuBackend, LossParts, LossSpec, Rows, SgdParams, Targets};
use crate::error::{Error, Result};

/// The emulator's C++ (the kernels' source is included from `kernels.cu` beside it).
const HARNESS_SRC: &str = include_str!("kernel_emu.cpp");
/// The emulator's own faulty kernels, numbered after `kernels.cu`'s (its tests run them).
const FAULTY: &[&str] = &["emu_faulty_race", "emu_faulty_barrier"];

/// One argument of a kernel launch, in the order of the kernel's parameters.
enum Arg<'a> {
    F32s(&'a [f32]),
    U64s(&'a [u64]),
    I64s(&'a [i64]),
    Null,
    U64(u64),
    I32(i32),
    F32(f32),
    Struct(Vec<u8>),
}

/// A row-index argument: the listed indices, or the null pointer the kernel does not read.
fn rows_arg(rows: Option<&[u64]>) -> (Arg<'_>, Arg<'_>) {
    match rows {
        Some(r) => (Arg::U64s(r), Arg::I32(1)),
        None => (Arg::Null, Arg::I32(0)),
    }
}

/// The running emulator process.
struct Harness {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // End of input ends the emulator.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The heads' operations with the kernel operations emulated on the CPU and the rest (products,
/// buffers) on [`CpuBackend`]. Cloning shares the emulator process.
#[derive(Clone)]
pub struct KernelEmulator {
    harness: Arc<Mutex<Harness>>,
}

impl std::fmt::Debug for KernelEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

fn emu_error(msg: impl std::fmt::Display) -> Error {
    Error::Device(format!("kernel emulator: {msg}"))
}

/// Compiles the emulator unless a build of the same sources and flags exists, and returns its
/// path, once per process. Builds are cached under the system's temporary folder by a hash of what
/// went into them and put in place by a rename, so that concurrent test processes share one.
fn build() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| compile().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::Device)
}

fn compile() -> Result<PathBuf> {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let flags = ["-std=c++17", "-O2", "-ffp-contract=off"];
    let mut hash = Sha256::new();
    for part in [cxx.as_str(), HARNESS_SRC, KERNEL_SRC].iter().chain(&flags) {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = std::env::temp_dir().join(format!("f2c-kernel-emu-{digest}"));
    let exe = dir.join("kernel-emu");
    if exe.is_file() {
        return Ok(exe);
    }
    let io = |what: &str, p: &Path, e: std::io::Error| {
        emu_error(format!("cannot {what} {}: {e}", p.display()))
    };
    let work = dir.join(format!("build-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| io("create", &work, e))?;
    for (name, text) in [("kernel_emu.cpp", HARNESS_SRC), ("kernels.cu", KERNEL_SRC)] {
        let p = work.join(name);
        std::fs::write(&p, text).map_err(|e| io("write", &p, e))?;
    }
    let built = work.join("kernel-emu");
    let out = Command::new(&cxx)
        .args(flags)
        .arg(work.join("kernel_emu.cpp"))
        .arg("-o")
        .arg(&built)
        .output()
        .map_err(|e| {
            emu_error(format!(
                "cannot run the C++ compiler `{cxx}` ({e}); install one (g++ or clang++) or name it in CXX"
            ))
        })?;
    if !out.status.success() {
        return Err(emu_error(format!(
            "`{cxx} {}` failed:\n{}",
            flags.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    std::fs::rename(&built, &exe).map_err(|e| io("move the build to", &exe, e))?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(exe)
}

impl KernelEmulator {
    /// Compiles (or reuses) the emulator and starts it: needs a C++ compiler, `c++` or the one
    /// named in `CXX`.
    pub fn new() -> Result<Self> {
        let exe = build()?;
        let mut child = Command::new(&exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| emu_error(format!("cannot start {}: {e}", exe.display())))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(KernelEmulator {
            harness: Arc::new(Mutex::new(Harness {
                child,
                stdin,
                stdout,
            })),
        })
    }

    /// One of the trait's row-major products as the CUDA backend asks cuBLAS for it: the same
    /// plan, its `sgemm` run by [`sgemm`].
    #[allow(clippy::too_many_arguments)]
    fn product(
        &self,
        product: Product,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        accumulate: bool,
    ) -> Result<()> {
        match kernels::gemm(product, m, n, k, a.len(), b.len(), c.len(), accumulate)
            .map_err(emu_error)?
        {
            GemmPlan::Nothing => Ok(()),
            GemmPlan::Zero(len) => {
                c[..len].fill(0.0);
                Ok(())
            }
            // cuBLAS's A is the product's B, and its B the product's A.
            GemmPlan::Sgemm(g) => sgemm(&g, b, a, c),
        }
    }

    /// Runs `kernel` as `blocks` blocks of `threads` threads; returns the f32 buffer arguments as
    /// the kernel left them, in order.
    fn launch(
        &self,
        kernel: &str,
        blocks: u32,
        threads: u32,
        args: &[Arg<'_>],
    ) -> Result<Vec<Vec<f32>>> {
        let id = KERNELS
            .iter()
            .chain(FAULTY)
            .position(|k| *k == kernel)
            .expect("a kernel the emulator has") as u32;
        let mut req = Vec::new();
        for x in [id, blocks, threads, args.len() as u32] {
            req.extend(x.to_le_bytes());
        }
        for a in args {
            match a {
                Arg::F32s(v) => {
                    encode(&mut req, 0, v.len(), v.iter().flat_map(|x| x.to_le_bytes()))
                }
                Arg::U64s(v) => {
                    encode(&mut req, 1, v.len(), v.iter().flat_map(|x| x.to_le_bytes()))
                }
                Arg::I64s(v) => {
                    encode(&mut req, 2, v.len(), v.iter().flat_map(|x| x.to_le_bytes()))
                }
                Arg::Null => req.push(3),
                Arg::U64(x) => {
                    req.push(4);
                    req.extend(x.to_le_bytes());
                }
                Arg::I32(x) => {
                    req.push(5);
                    req.extend(x.to_le_bytes());
                }
                Arg::F32(x) => {
                    req.push(6);
                    req.extend(x.to_le_bytes());
                }
                Arg::Struct(bytes) => {
                    req.push(7);
                    req.extend((bytes.len() as u32).to_le_bytes());
                    req.extend(bytes);
                }
            }
        }
        let mut h = self.harness.lock().unwrap_or_else(|p| p.into_inner());
        let lost = |e: std::io::Error| {
            emu_error(format!(
                "the emulator stopped during {kernel} ({e}); its message is above"
            ))
        };
        let stdin = h.stdin.as_mut().expect("open until dropped");
        stdin.write_all(&req).map_err(lost)?;
        stdin.flush().map_err(lost)?;
        let mut status = [0u8; 1];
        h.stdout.read_exact(&mut status).map_err(lost)?;
        if status[0] != 0 {
            let len = read_u32(&mut h.stdout).map_err(lost)? as usize;
            let mut msg = vec![0u8; len];
            h.stdout.read_exact(&mut msg).map_err(lost)?;
            return Err(emu_error(String::from_utf8_lossy(&msg)));
        }
        let buffers = args.iter().filter(|a| matches!(a, Arg::F32s(_))).count();
        (0..buffers)
            .map(|_| {
                let mut n = [0u8; 8];
                h.stdout.read_exact(&mut n)?;
                let mut bytes = vec![0u8; u64::from_le_bytes(n) as usize * 4];
                h.stdout.read_exact(&mut bytes)?;
                Ok(bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect())
            })
            .collect::<std::io::Result<_>>()
            .map_err(lost)
    }
}

/// cuBLAS's `sgemm` by its definition, with α = 1: C (m×n) = op(A) · op(B) + β·C, all
/// column-major with leading dimensions lda, ldb and ldc; with β = 0, C is not read (a NaN there
/// does not survive). Refuses what cuBLAS refuses (a negative size, a leading dimension shorter
/// than its operand's column) and what a GPU would read or write beyond a buffer. Sums in `f32` in
/// order of k, which is one of the orders cuBLAS may use.
fn sgemm(g: &Sgemm, a: &[f32], b: &[f32], c: &mut [f32]) -> Result<()> {
    let size = |x: i32, what: &str| {
        usize::try_from(x).map_err(|_| emu_error(format!("sgemm: {what} = {x} is negative")))
    };
    let (m, n, k) = (size(g.m, "m")?, size(g.n, "n")?, size(g.k, "k")?);
    let (lda, ldb, ldc) = (
        size(g.lda, "lda")?,
        size(g.ldb, "ldb")?,
        size(g.ldc, "ldc")?,
    );
    // The stored matrix of an operand whose op is (rows×cols) must fit its buffer.
    let stored = |op: Op, rows: usize, cols: usize, ld: usize, len: usize, what: &str| {
        let (r, c) = match op {
            Op::N => (rows, cols),
            Op::T => (cols, rows),
        };
        if ld < r.max(1) {
            return Err(emu_error(format!(
                "sgemm: ld{what} = {ld} is shorter than {what}'s stored column of {r}: cuBLAS refuses it"
            )));
        }
        if r > 0 && c > 0 && ld * (c - 1) + r > len {
            return Err(emu_error(format!(
                "sgemm: {what} ({r}×{c} stored, ld {ld}) reaches float {} of a buffer of {len}",
                ld * (c - 1) + r
            )));
        }
        Ok(())
    };
    stored(g.transa, m, k, lda, a.len(), "a")?;
    stored(g.transb, k, n, ldb, b.len(), "b")?;
    stored(Op::N, m, n, ldc, c.len(), "c")?;
    let at = |op: Op, buf: &[f32], ld: usize, row: usize, col: usize| match op {
        Op::N => buf[row + col * ld],
        Op::T => buf[col + row * ld],
    };
    for j in 0..n {
        for i in 0..m {
            let mut s = 0.0f32;
            for p in 0..k {
                s += at(g.transa, a, lda, i, p) * at(g.transb, b, ldb, p, j);
            }
            let ci = i + j * ldc;
            c[ci] = if g.beta == 0.0 { s } else { s + g.beta * c[ci] };
        }
    }
    Ok(())
}

/// A buffer argument: its tag, element count and little-endian elements.
fn encode(req: &mut Vec<u8>, tag: u8, len: usize, bytes: impl Iterator<Item = u8>) {
    req.push(tag);
    req.extend((len as u64).to_le_bytes());
    req.extend(bytes);
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

impl Backend for KernelEmulator {
    type Buf = Vec<f32>;
    /// A row list as the kernels read it.
    type Index = Vec<u64>;
    /// The targets as the loss kernel reads them.
    type Labels = Vec<i64>;

    fn name(&self) -> String {
        "CUDA kernels emulated on the CPU".into()
    }
    fn zeros(&self, len: usize) -> Result<Vec<f32>> {
        CpuBackend.zeros(len)
    }
    fn upload(&self, host: &[f32]) -> Result<Vec<f32>> {
        CpuBackend.upload(host)
    }
    fn upload_owned(&self, host: Vec<f32>) -> Result<Vec<f32>> {
        CpuBackend.upload_owned(host)
    }
    fn download(&self, buf: &Vec<f32>) -> Result<Vec<f32>> {
        CpuBackend.download(buf)
    }
    fn len(&self, buf: &Vec<f32>) -> usize {
        buf.len()
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn upload_rows(&self, rows: Vec<usize>) -> Result<Rows<Vec<u64>>> {
        Ok(Rows {
            device: kernels::indices(&rows),
            host: rows,
        })
    }
    fn upload_targets(&self, targets: Vec<i64>) -> Result<Targets<Vec<i64>>> {
        Ok(Targets {
            device: targets.clone(),
            host: targets,
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
        self.product(Product::Abt, m, n, k, a, b, c, false)
    }
    // The CUDA backend has no sparse-tail product: the default dense one, as there.
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
        self.product(Product::Ab, m, n, k, a, b, c, accumulate)
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
        self.product(Product::Atb, m, n, k, a, b, c, false)
    }

    fn gather_normalize(
        &self,
        src: &Vec<f32>,
        dim: usize,
        rows: Option<&Rows<Vec<u64>>>,
        out: &mut Vec<f32>,
        norms: &mut Vec<f32>,
    ) -> Result<()> {
        let host = rows.map(Rows::host);
        let Some(blocks) = kernels::gather_normalize(src.len(), dim, host, out.len(), norms.len())
        else {
            return Ok(());
        };
        let (idx, has) = rows_arg(rows.map(|r| r.device().as_slice()));
        let args = [
            Arg::F32s(src),
            idx,
            has,
            Arg::U64(dim as u64),
            Arg::F32s(out),
            Arg::F32s(norms),
        ];
        let [_, o, n] = buffers(self.launch("f2c_gather_normalize", blocks, BLOCK, &args)?);
        (*out, *norms) = (o, n);
        Ok(())
    }

    fn margin_loss(
        &self,
        cos: &mut Vec<f32>,
        b: usize,
        c: usize,
        targets: &Targets<Vec<i64>>,
        spec: &LossSpec,
    ) -> Result<LossParts> {
        let Some(plan) = kernels::margin_loss(cos.len(), b, c, targets.host(), spec) else {
            return Ok(LossParts::default());
        };
        let losses = vec![0.0f32; plan.losses];
        let args = [
            Arg::F32s(cos),
            Arg::U64(c as u64),
            Arg::I64s(targets.device()),
            Arg::Struct(plan.args.to_bytes()),
            Arg::F32s(&losses),
        ];
        let [x, parts] = buffers(self.launch("f2c_margin_loss", plan.blocks, BLOCK, &args)?);
        *cos = x;
        Ok(kernels::sum_loss_parts(&parts))
    }

    fn sgd_normalized_rows(
        &self,
        w: &mut Vec<f32>,
        vel: &mut Vec<f32>,
        dim: usize,
        rows: Option<&Rows<Vec<u64>>>,
        grad_n: &Vec<f32>,
        wn: &Vec<f32>,
        norms: &Vec<f32>,
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
        let (idx, has) = rows_arg(rows.map(|r| r.device().as_slice()));
        let args = [
            Arg::F32s(w),
            Arg::F32s(vel),
            Arg::U64(dim as u64),
            idx,
            has,
            Arg::F32s(grad_n),
            Arg::F32s(wn),
            Arg::F32s(norms),
            Arg::Struct(kernels::SgdArgs::new(sgd).to_bytes()),
        ];
        let [w2, v2, ..] = buffers::<5>(self.launch("f2c_sgd_rows", blocks, BLOCK, &args)?);
        (*w, *vel) = (w2, v2);
        Ok(())
    }

    fn sgd_idle_rows(
        &self,
        w: &mut Vec<f32>,
        vel: &mut Vec<f32>,
        dim: usize,
        skip: &Rows<Vec<u64>>,
        sgd: &SgdParams,
    ) -> Result<()> {
        let Some(plan) = kernels::sgd_idle_rows(w.len(), vel.len(), dim, skip.host()) else {
            return Ok(());
        };
        let args = [
            Arg::F32s(w),
            Arg::F32s(vel),
            Arg::U64(plan.len),
            Arg::U64(dim as u64),
            match plan.skipped {
                0 => Arg::Null,
                _ => Arg::U64s(skip.device()),
            },
            Arg::U64(plan.skipped),
            Arg::Struct(kernels::SgdArgs::new(sgd).to_bytes()),
        ];
        let [w2, v2] = buffers(self.launch("f2c_sgd_idle_rows", plan.blocks, FILL_BLOCK, &args)?);
        (*w, *vel) = (w2, v2);
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
        let Some(plan) = kernels::copy_rows(src.len(), src_rows, dst.len(), dst_rows, dim) else {
            return Ok(());
        };
        let args = [
            Arg::F32s(src),
            plan.rows.as_deref().map_or(Arg::Null, Arg::U64s),
            Arg::I32(plan.listed),
            Arg::U64(plan.n),
            Arg::F32s(dst),
            Arg::U64(dim as u64),
        ];
        let [_, d] = buffers(self.launch("f2c_copy_rows", plan.blocks, BLOCK, &args)?);
        *dst = d;
        Ok(())
    }

    fn swap_rows(
        &self,
        a: &mut Vec<f32>,
        b: &mut Vec<f32>,
        rows: &Rows<Vec<u64>>,
        dim: usize,
    ) -> Result<()> {
        let Some(blocks) = kernels::swap_rows(a.len(), b.len(), rows.host(), dim) else {
            return Ok(());
        };
        let args = [
            Arg::F32s(a),
            Arg::F32s(b),
            Arg::U64s(rows.device()),
            Arg::U64(dim as u64),
        ];
        let [x, y] = buffers(self.launch("f2c_swap_rows", blocks, BLOCK, &args)?);
        (*a, *b) = (x, y);
        Ok(())
    }

    fn duplicate(&self, src: &Vec<f32>) -> Result<Vec<f32>> {
        CpuBackend.duplicate(src)
    }

    fn fill_at(&self, buf: &mut Vec<f32>, at: &[usize], value: f32) -> Result<()> {
        let Some(plan) = kernels::fill_at(buf.len(), at) else {
            return Ok(());
        };
        let args = [
            Arg::F32s(buf),
            Arg::U64s(&plan.at),
            Arg::U64(plan.at.len() as u64),
            Arg::F32(value),
        ];
        let [b] = buffers(self.launch("f2c_fill_at", plan.blocks, FILL_BLOCK, &args)?);
        *buf = b;
        Ok(())
    }
}

/// The launch's f32 buffers, as many as the kernel takes.
fn buffers<const N: usize>(v: Vec<Vec<f32>>) -> [Vec<f32>; N] {
    v.try_into()
        .unwrap_or_else(|v: Vec<_>| panic!("the emulator returned {} buffers, not {N}", v.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(r: Result<Vec<Vec<f32>>>) -> String {
        match r {
            Err(Error::Device(msg)) => msg,
            other => panic!("expected the emulator to refuse, got {other:?}"),
        }
    }

    #[test]
    fn the_emulator_reports_races_and_barriers_skipped_by_some_threads() {
        let emu = KernelEmulator::new().unwrap();
        let out = vec![0.0f32; 2 * 64];
        let race = error_of(emu.launch("emu_faulty_race", 2, 64, &[Arg::F32s(&out)]));
        assert!(race.contains("emu_faulty_race: argument 0"), "{race}");
        assert!(race.contains("without a barrier between"), "{race}");
        let barrier = error_of(emu.launch("emu_faulty_barrier", 2, 64, &[Arg::F32s(&out)]));
        assert!(
            barrier.contains("block 0: barrier 1 reached by 32 of 64 threads"),
            "{barrier}"
        );
        // The process serves on after a refused launch.
        let mut grad = vec![0.5f32, 0.25, -0.5, 0.1];
        let spec = LossSpec {
            margin: crate::heads::Margin::CosFace(0.2),
            scale: 4.0,
            ce_weight: 1.0,
            neg_k: 1,
            neg_weight: 1.0,
        };
        let targets = emu.upload_targets(vec![0, -1]).unwrap();
        let parts = emu.margin_loss(&mut grad, 2, 2, &targets, &spec).unwrap();
        // Row 1 (no target): the largest clipped cosine, 0.1 — row 0's CE is positive.
        assert_eq!(parts.neg, 0.1f32 as f64);
        assert!(parts.ce > 0.0);
    }

    #[test]
    fn the_emulator_checks_arguments_against_the_kernel() {
        let emu = KernelEmulator::new().unwrap();
        let cos = vec![0.0f32; 4];
        let losses = vec![0.0f32; 4];
        let targets = [0i64, 1];
        let args = |bytes: Vec<u8>| {
            [
                Arg::F32s(&cos),
                Arg::U64(2),
                Arg::I64s(&targets),
                Arg::Struct(bytes),
                Arg::F32s(&losses),
            ]
        };
        let spec = LossSpec::mean_cross_entropy(crate::heads::Margin::CosFace(0.2), 4.0, 2);
        let mut short = kernels::LossArgs::new(&spec).to_bytes();
        short.truncate(36);
        let e = error_of(emu.launch("f2c_margin_loss", 2, BLOCK, &args(short)));
        assert!(
            e.contains("its size differs from the kernel's struct"),
            "{e}"
        );
        let e = error_of(emu.launch("f2c_margin_loss", 2, BLOCK, &args(Vec::new())[..4]));
        assert!(e.contains("a different number of arguments"), "{e}");
    }

    #[test]
    fn the_reference_sgemm_follows_blas_by_hand() {
        let g = |transa, transb, m, n, k, lda, ldb, beta| Sgemm {
            transa,
            transb,
            m,
            n,
            k,
            lda,
            ldb,
            ldc: m,
            beta,
        };
        // A column-major (2×3) = [[1, 3, 5], [2, 4, 6]]; B = (3×1) ones: C = [9, 12].
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let ones = [1.0f32; 3];
        let mut c = [f32::NAN; 2]; // β = 0 does not read C
        sgemm(&g(Op::N, Op::N, 2, 1, 3, 2, 3, 0.0), &a, &ones, &mut c).unwrap();
        assert_eq!(c, [9.0, 12.0]);
        // The same memory as a stored (3×2) [[1, 4], [2, 5], [3, 6]], transposed: C = [6, 15],
        // added onto C with β = 1.
        let mut c = [1.0f32, -1.0];
        sgemm(&g(Op::T, Op::N, 2, 1, 3, 3, 3, 1.0), &a, &ones, &mut c).unwrap();
        assert_eq!(c, [7.0, 14.0]);
        // op(B) = Bᵀ for B stored (1×3), ld 1: the same product as the first.
        let mut c = [0.0f32; 2];
        sgemm(&g(Op::N, Op::T, 2, 1, 3, 2, 1, 0.0), &a, &ones, &mut c).unwrap();
        assert_eq!(c, [9.0, 12.0]);
        // What cuBLAS refuses, and a read past A's buffer.
        let msg = |r: Result<()>| match r {
            Err(Error::Device(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let short = msg(sgemm(
            &g(Op::N, Op::N, 2, 1, 3, 1, 3, 0.0),
            &a,
            &ones,
            &mut c,
        ));
        assert!(
            short.contains("lda = 1 is shorter than a's stored column of 2"),
            "{short}"
        );
        let beyond = msg(sgemm(
            &g(Op::N, Op::N, 2, 1, 3, 3, 3, 0.0),
            &a,
            &ones,
            &mut c,
        ));
        assert!(
            beyond.contains("reaches float 8 of a buffer of 6"),
            "{beyond}"
        );
    }
}
