//! [`Metered`]: a backend that counts what its calls move between host and device memory.

use super::{kernels, Backend, LossParts, LossSpec, Rows, SgdParams, Targets};
use crate::error::Result;
use crate::traffic;

/// `B` with every host-side argument and result of its calls counted in [`crate::traffic`], as
/// the CUDA backend moves them: buffers uploaded and downloaded (4 bytes a float), and for each
/// kernel what its launch plan (`kernels.rs`, the CUDA backend's own) sends and reads back: row and
/// element indices and targets as 8-byte integers, the loss's two partial sums per row. The
/// trainer's heads run on a `Metered` backend, so a run on the CPU counts the bytes the same run
/// would move over a GPU's bus.
#[derive(Debug, Clone)]
pub struct Metered<B>(pub B);

impl<B: Backend> Backend for Metered<B> {
    type Buf = B::Buf;
    type Index = B::Index;
    type Labels = B::Labels;

    fn name(&self) -> String {
        self.0.name()
    }

    fn zeros(&self, len: usize) -> Result<Self::Buf> {
        self.0.zeros(len)
    }

    fn upload(&self, host: &[f32]) -> Result<Self::Buf> {
        traffic::to_device(4 * host.len());
        self.0.upload(host)
    }

    fn upload_owned(&self, host: Vec<f32>) -> Result<Self::Buf> {
        traffic::to_device(4 * host.len());
        self.0.upload_owned(host)
    }

    fn download(&self, buf: &Self::Buf) -> Result<Vec<f32>> {
        traffic::to_host(4 * self.0.len(buf));
        self.0.download(buf)
    }

    fn len(&self, buf: &Self::Buf) -> usize {
        self.0.len(buf)
    }

    fn synchronize(&self) -> Result<()> {
        self.0.synchronize()
    }

    /// A row list crosses here, once, however many operations then read it.
    fn upload_rows(&self, rows: Vec<usize>) -> Result<Rows<Self::Index>> {
        if !rows.is_empty() {
            traffic::to_device(8 * rows.len());
        }
        self.0.upload_rows(rows)
    }

    /// A loss's targets cross here, once, however many losses then read them.
    fn upload_targets(&self, targets: Vec<i64>) -> Result<Targets<Self::Labels>> {
        if !targets.is_empty() {
            traffic::to_device(8 * targets.len());
        }
        self.0.upload_targets(targets)
    }

    fn matmul_abt(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &Self::Buf,
        b: &Self::Buf,
        c: &mut Self::Buf,
    ) -> Result<()> {
        self.0.matmul_abt(m, n, k, a, b, c)
    }

    fn matmul_ab(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &Self::Buf,
        b: &Self::Buf,
        c: &mut Self::Buf,
        accumulate: bool,
    ) -> Result<()> {
        self.0.matmul_ab(m, n, k, a, b, c, accumulate)
    }

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
        self.0
            .matmul_ab_sparse_tail(dense_rows, m, n, k, a, b, c, accumulate)
    }

    fn matmul_atb(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &Self::Buf,
        b: &Self::Buf,
        c: &mut Self::Buf,
    ) -> Result<()> {
        self.0.matmul_atb(m, n, k, a, b, c)
    }

    fn gather_normalize(
        &self,
        src: &Self::Buf,
        dim: usize,
        rows: Option<&Rows<Self::Index>>,
        out: &mut Self::Buf,
        norms: &mut Self::Buf,
    ) -> Result<()> {
        self.0.gather_normalize(src, dim, rows, out, norms)
    }

    fn margin_loss(
        &self,
        cos: &mut Self::Buf,
        b: usize,
        c: usize,
        targets: &Targets<Self::Labels>,
        spec: &LossSpec,
    ) -> Result<LossParts> {
        if let Some(plan) = kernels::margin_loss(self.0.len(cos), b, c, targets.host(), spec) {
            traffic::to_host(4 * plan.losses);
        }
        self.0.margin_loss(cos, b, c, targets, spec)
    }

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
    ) -> Result<()> {
        self.0
            .sgd_normalized_rows(w, vel, dim, rows, grad_n, wn, norms, sgd)
    }

    fn sgd_idle_rows(
        &self,
        w: &mut Self::Buf,
        vel: &mut Self::Buf,
        dim: usize,
        skip: &Rows<Self::Index>,
        sgd: &SgdParams,
    ) -> Result<()> {
        self.0.sgd_idle_rows(w, vel, dim, skip, sgd)
    }

    fn copy_rows(
        &self,
        src: &Self::Buf,
        src_rows: &[usize],
        dst: &mut Self::Buf,
        dst_rows: &[usize],
        dim: usize,
    ) -> Result<()> {
        let (src_len, dst_len) = (self.0.len(src), self.0.len(dst));
        if let Some(rows) =
            kernels::copy_rows(src_len, src_rows, dst_len, dst_rows, dim).and_then(|p| p.rows)
        {
            traffic::to_device(8 * rows.len());
        }
        self.0.copy_rows(src, src_rows, dst, dst_rows, dim)
    }

    fn swap_rows(
        &self,
        a: &mut Self::Buf,
        b: &mut Self::Buf,
        rows: &Rows<Self::Index>,
        dim: usize,
    ) -> Result<()> {
        self.0.swap_rows(a, b, rows, dim)
    }

    fn duplicate(&self, src: &Self::Buf) -> Result<Self::Buf> {
        self.0.duplicate(src)
    }

    fn fill_at(&self, buf: &mut Self::Buf, at: &[usize], value: f32) -> Result<()> {
        if let Some(plan) = kernels::fill_at(self.0.len(buf), at) {
            traffic::to_device(8 * plan.at.len());
        }
        self.0.fill_at(buf, at, value)
    }

    fn device_memory_in_use(&self) -> Option<u64> {
        self.0.device_memory_in_use()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::backend::CpuBackend;
    use crate::traffic::Traffic;

    #[test]
    fn counts_each_call_as_the_gpu_moves_it() {
        let be = Metered(CpuBackend);
        traffic::take();
        let src = be.upload(&[1.0; 12]).unwrap(); // 48 B up
        let mut dst = be.zeros(12).unwrap();
        // Row 1 written twice, so one pair is copied: its source and destination rows in one
        // upload of 16 B. Then rows 0, 1 into rows 0, 1: no index crosses.
        be.copy_rows(&src, &[0, 2], &mut dst, &[1, 1], 4).unwrap();
        be.copy_rows(&src, &[0, 1], &mut dst, &[0, 1], 4).unwrap();
        be.fill_at(&mut dst, &[0, 5], -1.0).unwrap(); // 16 B of indices up
        be.fill_at(&mut dst, &[], -1.0).unwrap(); // nothing
        assert_eq!(
            be.download(&dst).unwrap()[..6],
            [-1.0, 1.0, 1.0, 1.0, 1.0, -1.0]
        );
        assert_eq!(
            traffic::take(),
            Traffic {
                to_device_bytes: 48 + 16 + 16,
                to_device_copies: 3,
                to_host_bytes: 48,
                to_host_copies: 1,
            }
        );
    }
}
