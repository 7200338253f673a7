//! [`CudaBackend`] in a build without the `cuda` feature: the same name and constructor as the real
//! one (`cuda.rs`), so that callers need no `cfg` of their own, but [`CudaBackend::new`] always
//! fails with how to rebuild. No value of the type can exist (it holds an uninhabited field), so
//! its [`Backend`] methods are never called and say so to the compiler with an empty `match`.

use std::convert::Infallible;

use super::{Backend, LossParts, LossSpec, Rows, SgdParams, Targets};
use crate::error::{Error, Result};

/// Stands in for the GPU backend of a build without CUDA support; cannot be constructed.
#[derive(Debug, Clone, Copy)]
pub struct CudaBackend {
    never: Infallible,
}

impl CudaBackend {
    /// Always fails: this build has no CUDA support.
    pub fn new(ordinal: usize) -> Result<Self> {
        Err(Error::Device(format!(
            "cuda:{ordinal}: this binary was built without the `cuda` feature; build it with \
             `bash scripts/build-cuda.sh` (which runs `cargo build --release --features cuda` \
             against a CUDA 13 root it sets up) or use `--device cpu`"
        )))
    }
}

impl Backend for CudaBackend {
    type Buf = Infallible;
    type Index = Infallible;
    type Labels = Infallible;

    fn name(&self) -> String {
        match self.never {}
    }
    fn zeros(&self, _len: usize) -> Result<Infallible> {
        match self.never {}
    }
    fn upload(&self, _host: &[f32]) -> Result<Infallible> {
        match self.never {}
    }
    fn download(&self, _buf: &Infallible) -> Result<Vec<f32>> {
        match self.never {}
    }
    fn len(&self, _buf: &Infallible) -> usize {
        match self.never {}
    }
    fn synchronize(&self) -> Result<()> {
        match self.never {}
    }
    fn upload_rows(&self, _rows: Vec<usize>) -> Result<Rows<Infallible>> {
        match self.never {}
    }
    fn upload_targets(&self, _targets: Vec<i64>) -> Result<Targets<Infallible>> {
        match self.never {}
    }
    fn matmul_abt(
        &self,
        _m: usize,
        _n: usize,
        _k: usize,
        _a: &Infallible,
        _b: &Infallible,
        _c: &mut Infallible,
    ) -> Result<()> {
        match self.never {}
    }
    fn matmul_ab(
        &self,
        _m: usize,
        _n: usize,
        _k: usize,
        _a: &Infallible,
        _b: &Infallible,
        _c: &mut Infallible,
        _accumulate: bool,
    ) -> Result<()> {
        match self.never {}
    }
    fn matmul_atb(
        &self,
        _m: usize,
        _n: usize,
        _k: usize,
        _a: &Infallible,
        _b: &Infallible,
        _c: &mut Infallible,
    ) -> Result<()> {
        match self.never {}
    }
    fn gather_normalize(
        &self,
        _src: &Infallible,
        _dim: usize,
        _rows: Option<&Rows<Infallible>>,
        _out: &mut Infallible,
        _norms: &mut Infallible,
    ) -> Result<()> {
        match self.never {}
    }
    fn margin_loss(
        &self,
        _cos: &mut Infallible,
        _b: usize,
        _c: usize,
        _targets: &Targets<Infallible>,
        _spec: &LossSpec,
    ) -> Result<LossParts> {
        match self.never {}
    }
    fn sgd_normalized_rows(
        &self,
        _w: &mut Infallible,
        _vel: &mut Infallible,
        _dim: usize,
        _rows: Option<&Rows<Infallible>>,
        _grad_n: &Infallible,
        _wn: &Infallible,
        _norms: &Infallible,
        _sgd: &SgdParams,
    ) -> Result<()> {
        match self.never {}
    }
    fn sgd_idle_rows(
        &self,
        _w: &mut Infallible,
        _vel: &mut Infallible,
        _dim: usize,
        _skip: &Rows<Infallible>,
        _sgd: &SgdParams,
    ) -> Result<()> {
        match self.never {}
    }
    fn copy_rows(
        &self,
        _src: &Infallible,
        _src_rows: &[usize],
        _dst: &mut Infallible,
        _dst_rows: &[usize],
        _dim: usize,
    ) -> Result<()> {
        match self.never {}
    }
    fn swap_rows(
        &self,
        _a: &mut Infallible,
        _b: &mut Infallible,
        _rows: &Rows<Infallible>,
        _dim: usize,
    ) -> Result<()> {
        match self.never {}
    }
    fn duplicate(&self, _src: &Infallible) -> Result<Infallible> {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructor_fails_and_says_how_to_build_with_cuda() {
        let msg = match CudaBackend::new(1) {
            Err(Error::Device(msg)) => msg,
            other => panic!("expected a device error, got {other:?}"),
        };
        for want in ["cuda:1", "scripts/build-cuda.sh", "--features cuda"] {
            assert!(msg.contains(want), "`{want}` missing from: {msg}");
        }
    }
}
