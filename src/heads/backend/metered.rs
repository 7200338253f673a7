//! [`Metered`]: a backend that counts what its calls move between host and device memory.

use super::{Backend, LossParts, LossSpec, SgdParams};
use crate::error::Result;
use crate::traffic;

/// `B` with every host-side argument and result of its calls counted in [`crate::traffic`], as
/// the CUDA backend moves them: buffers uploaded and downloaded (4 bytes a float), row and element
/// indices and targets uploaded as 8-byte integers, the loss's two partial sums per row read back.
/// The trainer's heads run on a `Metered` backend, so a run on the CPU counts the bytes the same
/// run would move over a GPU's bus.
#[derive(Debug, Clone)]
pub struct Metered<B>(pub B);

/// Rows written by a copy whose later writes to a row win (the CUDA backend uploads only those).
fn distinct(rows: &[usize]) -> usize {
    let mut rows = rows.to_vec();
    rows.sort_unstable();
    rows.dedup();
    rows.len()
}

impl<B: Backend> Backend for Metered<B> {
    type Buf = B::Buf;

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
        rows: Option<&[usize]>,
        out: &mut Self::Buf,
        norms: &mut Self::Buf,
    ) -> Result<()> {
        if let Some(r) = rows.filter(|r| !r.is_empty() && dim > 0) {
            traffic::to_device(8 * r.len());
        }
        self.0.gather_normalize(src, dim, rows, out, norms)
    }

    fn margin_loss(
        &self,
        cos: &mut Self::Buf,
        b: usize,
        c: usize,
        targets: &[i64],
        spec: &LossSpec,
    ) -> Result<LossParts> {
        if b > 0 {
            traffic::to_device(8 * b);
            traffic::to_host(4 * 2 * b);
        }
        self.0.margin_loss(cos, b, c, targets, spec)
    }

    fn sgd_normalized_rows(
        &self,
        w: &mut Self::Buf,
        vel: &mut Self::Buf,
        dim: usize,
        rows: Option<&[usize]>,
        grad_n: &Self::Buf,
        wn: &Self::Buf,
        norms: &Self::Buf,
        sgd: &SgdParams,
    ) -> Result<()> {
        if let Some(r) = rows.filter(|r| !r.is_empty() && dim > 0) {
            traffic::to_device(8 * r.len());
        }
        self.0
            .sgd_normalized_rows(w, vel, dim, rows, grad_n, wn, norms, sgd)
    }

    fn copy_rows(
        &self,
        src: &Self::Buf,
        src_rows: &[usize],
        dst: &mut Self::Buf,
        dst_rows: &[usize],
        dim: usize,
    ) -> Result<()> {
        if !src_rows.is_empty() && dim > 0 {
            let n = distinct(dst_rows);
            traffic::to_device(8 * n);
            traffic::to_device(8 * n);
        }
        self.0.copy_rows(src, src_rows, dst, dst_rows, dim)
    }

    fn duplicate(&self, src: &Self::Buf) -> Result<Self::Buf> {
        self.0.duplicate(src)
    }

    fn fill_at(&self, buf: &mut Self::Buf, at: &[usize], value: f32) -> Result<()> {
        if !at.is_empty() {
            traffic::to_device(8 * at.len());
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
        // Row 1 written twice: two index uploads of one distinct row each.
        be.copy_rows(&src, &[0, 2], &mut dst, &[1, 1], 4).unwrap();
        be.fill_at(&mut dst, &[0, 5], -1.0).unwrap(); // 16 B of indices up
        be.fill_at(&mut dst, &[], -1.0).unwrap(); // nothing
        assert_eq!(
            be.download(&dst).unwrap()[..6],
            [-1.0, 0.0, 0.0, 0.0, 1.0, -1.0]
        );
        assert_eq!(
            traffic::take(),
            Traffic {
                to_device_bytes: 48 + 8 + 8 + 16,
                to_device_copies: 4,
                to_host_bytes: 48,
                to_host_copies: 1,
            }
        );
    }
}
