//! Convolutional probe networks for real 112×112 faces, in the style of insightface's IResNet
//! (`recognition/arcface_torch/backbones/iresnet.py`): residual blocks BN → conv3×3 → BN → PReLU →
//! conv3×3 (stride) → BN, a 1×1-conv + BN shortcut where the shape changes, stride-2 stages, and an
//! output head BN → dropout → flatten → Linear → BN1d giving the embedding.
//!
//! dfdx 0.13 offers `Conv2D`, `Flatten2D` and the convolution op only with its `nightly` feature
//! (generic const expressions), and its `PReLU1D` only for all-constant shapes, while this crate
//! builds on stable with a run-time batch size. So [`Conv2d`] is written here from ops dfdx has
//! on stable, device-generic and differentiated by dfdx itself: an im2col by `gather` (zero padding
//! by a 0/1 mask) followed by one matmul; [`PRelu`] is relu(x) − a·relu(−x) with a per-channel a.
//! Activations are `(B, C, H, W)` with B, H and W known at run time and C a constant, the shape
//! dfdx's `BatchNorm2D` takes. Sizes are types ([`TinyIResNet`], [`IResNet18`]); `nets::network::Backbone` names
//! them for configs.
//!
//! Batch norm and the EMA gallery: dfdx's `ModelEMA` averages the parameters only (BN's running
//! mean and variance are "detached" tensors, which it skips), as the authors' momentum update
//! averages `parameters()` only. The gallery copy therefore keeps running statistics of its own:
//! [`forward_gallery`] runs it in training mode (batch statistics, as the reference's gallery
//! forward under `torch.no_grad()` in `train()` mode does), which also updates the gallery's own
//! running statistics; evaluation uses `forward` (running statistics) on either net.

use dfdx::prelude::*;
use dfdx::shapes::{Dtype, HasShape};

use crate::nets::network::{download, upload_rows};
use crate::nets::probe::l2_normalize;

/// A batch of images, (B, C, H, W).
pub type Images<const C: usize, E, D, T = NoneTape> =
    Tensor<(usize, Const<C>, usize, usize), E, D, T>;
/// A batch of embeddings, (B, E).
pub type Embeddings<const N: usize, E, D, T = NoneTape> = Tensor<(usize, Const<N>), E, D, T>;

pub mod builder {
    //! The types networks are declared with; `build_module` turns them into the modules.
    /// K×K convolution from I to O channels, stride S, zero padding P, no bias.
    #[derive(Debug, Clone, Copy)]
    pub struct Conv2d<
        const I: usize,
        const O: usize,
        const K: usize,
        const S: usize,
        const P: usize,
    >;
    /// Per-channel PReLU, slopes initialised to 0.25 (PyTorch's default).
    #[derive(Debug, Clone, Copy)]
    pub struct PRelu<const C: usize>;
    /// BN2d → dropout → flatten → Linear(FLAT → N) → BN1d, FLAT = C·H·W of the last stage.
    #[derive(Debug, Clone, Copy)]
    pub struct EmbeddingHead<const C: usize, const FLAT: usize, const N: usize>;
}

/// A K×K convolution without bias.
#[derive(Debug, Clone)]
pub struct Conv2d<
    const I: usize,
    const O: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// (O, I, K, K), as PyTorch.
    pub weight: Tensor<Rank4<O, I, K, K>, E, D>,
    /// The im2col indices of the last input size, on the device.
    pub im2col: Im2colCache,
}

/// A convolution's im2col gather indices and padding mask for one input height and width, kept
/// on the device: they depend on nothing else, so every forward after the first reuses them
/// instead of building them on the host and uploading them again (for `TinyIResNet` that upload
/// was most of a training step's host→device traffic). Clones of a network share the cache; it
/// holds the tensors of one device type, type-erased because the layer's `D` does not name their
/// element types. (It makes a CNN `!Send`: a network is built and trained on one thread.)
#[derive(Clone, Default)]
pub struct Im2colCache(std::rc::Rc<std::cell::RefCell<Option<CachedIm2col>>>);

/// The cached entry: input (height, width) and the boxed (indices, optional mask) tensors.
type CachedIm2col = ((usize, usize), Box<dyn std::any::Any>);

impl std::fmt::Debug for Im2colCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Im2colCache")
    }
}

impl Im2colCache {
    /// The value cached for `size` if it is a `V`, else `build()`'s, which replaces it.
    fn get_or_build<V: Clone + 'static, Err>(
        &self,
        size: (usize, usize),
        build: impl FnOnce() -> Result<V, Err>,
    ) -> Result<V, Err> {
        let mut slot = self.0.borrow_mut();
        if let Some((s, v)) = slot.as_ref() {
            if *s == size {
                if let Some(v) = v.downcast_ref::<V>() {
                    return Ok(v.clone());
                }
            }
        }
        let v = build()?;
        *slot = Some((size, Box::new(v.clone())));
        Ok(v)
    }
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E, D>
    BuildOnDevice<D, E> for builder::Conv2d<I, O, K, S, P>
where
    E: Dtype + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type Built = Conv2d<I, O, K, S, P, E, D>;
    fn try_build_on_device(device: &D) -> Result<Self::Built, D::Err> {
        Self::Built::try_build(device)
    }
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E, D>
    TensorCollection<E, D> for Conv2d<I, O, K, S, P, E, D>
where
    E: Dtype + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Conv2d<I, O, K, S, P, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            Self::tensor(
                "weight",
                |s| &s.weight,
                |s| &mut s.weight,
                // U(−b, b), b = 1/√(fan_in): PyTorch's default for Conv2d (and dfdx's).
                TensorOptions::reset_with(|t| {
                    let b = E::from_f64(1.0 / ((I * K * K) as f64).sqrt()).unwrap();
                    t.try_fill_with_distr(rand_distr::Uniform::new(E::default() - b, b))
                }),
            ),
            |weight| Conv2d {
                weight,
                im2col: Im2colCache::default(),
            },
        )
    }
}

impl<
        const I: usize,
        const O: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        E: Dtype,
        D: Device<E>,
    > NonMutableModule for Conv2d<I, O, K, S, P, E, D>
{
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E, D, T>
    Module<Images<I, E, D, T>> for Conv2d<I, O, K, S, P, E, D>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    type Output = Images<O, E, D, T>;
    type Error = D::Err;

    fn try_forward(&self, x: Images<I, E, D, T>) -> Result<Self::Output, D::Err> {
        let (b, _, h, w) = *x.shape();
        assert!(
            h + 2 * P >= K && w + 2 * P >= K,
            "a {K}×{K} convolution (padding {P}) needs an input of at least that size, got {h}×{w}"
        );
        let (ho, wo) = ((h + 2 * P - K) / S + 1, (w + 2 * P - K) / S + 1);
        let l = ho * wo;
        let m = I * K * K * l;
        let dev = x.device().clone();
        let (idx, mask) = self.im2col.get_or_build((h, w), || {
            // im2col indices into the flattened (I·H·W) image, rows (c, ky, kx), columns
            // (oy, ox); taps in the padding read element 0 and are zeroed by the mask.
            let mut idx = Vec::with_capacity(m);
            let mut mask = Vec::with_capacity(m);
            let mut padded = false;
            for c in 0..I {
                for ky in 0..K {
                    for kx in 0..K {
                        for oy in 0..ho {
                            let iy = (oy * S + ky) as isize - P as isize;
                            for ox in 0..wo {
                                let ix = (ox * S + kx) as isize - P as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    idx.push(c * h * w + iy as usize * w + ix as usize);
                                    mask.push(E::ONE);
                                } else {
                                    idx.push(0);
                                    mask.push(E::default());
                                    padded = true;
                                }
                            }
                        }
                    }
                }
            }
            crate::traffic::to_device(std::mem::size_of::<usize>() * m);
            let idx = dev.try_tensor_from_vec(idx, (m,))?;
            let mask = if padded {
                crate::traffic::to_device(std::mem::size_of::<E>() * m);
                Some(dev.try_tensor_from_vec(mask, (m,))?)
            } else {
                None
            };
            Ok((idx, mask))
        })?;
        let xt = x
            .try_reshape_like(&(b, I * h * w))?
            .try_permute::<_, Axes2<1, 0>>()?; // (I·H·W, B)
        let cols: Tensor<(usize, usize), E, D, T> = xt.try_gather(idx)?; // (I·K·K·L, B)
        let cols = match mask {
            Some(mask) => {
                cols.try_mul(mask.try_broadcast_like::<(usize, usize), Axis<1>>(&(m, b))?)?
            }
            None => cols,
        };
        let cols = cols.try_reshape_like(&(I * K * K, l * b))?;
        let wmat = self
            .weight
            .retaped::<T>()
            .try_reshape_like(&(Const::<O>, I * K * K))?;
        let y = wmat.try_matmul(cols)?; // (O, L·B)
        y.try_reshape_like(&(Const::<O>, l, b))?
            .try_permute::<_, Axes3<2, 0, 1>>()? // (B, O, L)
            .try_reshape_like(&(b, Const::<O>, ho, wo))
    }
}

/// Per-channel PReLU: max(x, 0) + a_c·min(x, 0).
#[derive(Debug, Clone)]
pub struct PRelu<const C: usize, E: Dtype, D: Storage<E>> {
    pub a: Tensor<Rank1<C>, E, D>,
}

impl<const C: usize, E: Dtype, D: Device<E>> BuildOnDevice<D, E> for builder::PRelu<C> {
    type Built = PRelu<C, E, D>;
    fn try_build_on_device(device: &D) -> Result<Self::Built, D::Err> {
        Self::Built::try_build(device)
    }
}

impl<const C: usize, E: Dtype, D: Device<E>> TensorCollection<E, D> for PRelu<C, E, D> {
    type To<E2: Dtype, D2: Device<E2>> = PRelu<C, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            Self::tensor(
                "a",
                |s| &s.a,
                |s| &mut s.a,
                TensorOptions::reset_with(|t| {
                    t.copy_from(&[E::from_f64(0.25).unwrap(); C]);
                    Ok(())
                }),
            ),
            |a| PRelu { a },
        )
    }
}

impl<const C: usize, E: Dtype, D: Device<E>> NonMutableModule for PRelu<C, E, D> {}

impl<const C: usize, E: Dtype, D: Device<E>, T: Tape<E, D>> Module<Images<C, E, D, T>>
    for PRelu<C, E, D>
{
    type Output = Images<C, E, D, T>;
    type Error = D::Err;

    fn try_forward(&self, x: Images<C, E, D, T>) -> Result<Self::Output, D::Err> {
        let shape = *x.shape();
        let a = self
            .a
            .retaped::<T>()
            .try_broadcast_like::<_, Axes3<0, 2, 3>>(&shape)?;
        let neg = x.retaped::<T>().try_negate()?.try_relu()?.try_mul(a)?;
        x.try_relu()?.try_sub(neg)
    }
}

/// The output head: BN2d → dropout → flatten → Linear → BN1d.
#[derive(Debug, Clone)]
pub struct EmbeddingHead<const C: usize, const FLAT: usize, const N: usize, E: Dtype, D: Device<E>>
{
    pub bn: modules::BatchNorm2D<C, E, D>,
    /// Dropout probability before the linear layer (insightface's default: 0).
    pub dropout: f64,
    pub fc: modules::Linear<FLAT, N, E, D>,
    pub features: modules::BatchNorm1D<N, E, D>,
}

impl<const C: usize, const FLAT: usize, const N: usize, E, D> BuildOnDevice<D, E>
    for builder::EmbeddingHead<C, FLAT, N>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type Built = EmbeddingHead<C, FLAT, N, E, D>;
    fn try_build_on_device(device: &D) -> Result<Self::Built, D::Err> {
        Self::Built::try_build(device)
    }
}

impl<const C: usize, const FLAT: usize, const N: usize, E, D> TensorCollection<E, D>
    for EmbeddingHead<C, FLAT, N, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = EmbeddingHead<C, FLAT, N, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("bn", |s| &s.bn, |s| &mut s.bn),
                Self::scalar(
                    "dropout",
                    |s| &s.dropout,
                    |s| &mut s.dropout,
                    ScalarOptions::from_default(0.0),
                ),
                Self::module("fc", |s| &s.fc, |s| &mut s.fc),
                Self::module("features", |s| &s.features, |s| &mut s.features),
            ),
            |(bn, dropout, fc, features)| EmbeddingHead {
                bn,
                dropout,
                fc,
                features,
            },
        )
    }
}

fn flat_shape<const C: usize, const FLAT: usize>(
    shape: (usize, Const<C>, usize, usize),
) -> (usize, Const<FLAT>) {
    let (b, _, h, w) = shape;
    assert_eq!(
        C * h * w,
        FLAT,
        "the head expects {FLAT} features but the last stage gives {C}×{h}×{w}: the input size does not fit this network"
    );
    (b, Const)
}

impl<const C: usize, const FLAT: usize, const N: usize, E: Dtype, D: Device<E>>
    Module<Images<C, E, D>> for EmbeddingHead<C, FLAT, N, E, D>
{
    type Output = Embeddings<N, E, D>;
    type Error = D::Err;

    fn try_forward(&self, x: Images<C, E, D>) -> Result<Self::Output, D::Err> {
        let x = self.bn.try_forward(x)?;
        let flat = flat_shape::<C, FLAT>(*x.shape());
        let x = self.fc.try_forward(x.try_reshape_like(&flat)?)?;
        self.features.try_forward(x)
    }
}

impl<const C: usize, const FLAT: usize, const N: usize, E: Dtype, D: Device<E>>
    ModuleMut<Images<C, E, D, OwnedTape<E, D>>> for EmbeddingHead<C, FLAT, N, E, D>
{
    type Output = Embeddings<N, E, D, OwnedTape<E, D>>;
    type Error = D::Err;

    fn try_forward_mut(
        &mut self,
        x: Images<C, E, D, OwnedTape<E, D>>,
    ) -> Result<Self::Output, D::Err> {
        let mut x = self.bn.try_forward_mut(x)?;
        if self.dropout > 0.0 {
            x = x.try_dropout(self.dropout)?;
        }
        let flat = flat_shape::<C, FLAT>(*x.shape());
        let x = self.fc.try_forward(x.try_reshape_like(&flat)?)?;
        self.features.try_forward_mut(x)
    }
}

/// The stem: conv3×3 (stride S) → BN → PReLU.
pub type Stem<const I: usize, const O: usize, const S: usize> = (
    builder::Conv2d<I, O, 3, S, 1>,
    BatchNorm2D<O>,
    builder::PRelu<O>,
);

/// The residual branch of IResNet's `IBasicBlock`.
pub type BasicBranch<const I: usize, const O: usize, const S: usize> = (
    BatchNorm2D<I>,
    builder::Conv2d<I, O, 3, 1, 1>,
    BatchNorm2D<O>,
    builder::PRelu<O>,
    builder::Conv2d<O, O, 3, S, 1>,
    BatchNorm2D<O>,
);

/// A block that changes the shape (stride S, I → O channels): its shortcut is conv1×1 + BN.
pub type DownBlock<const I: usize, const O: usize, const S: usize> =
    GeneralizedResidual<BasicBranch<I, O, S>, (builder::Conv2d<I, O, 1, S, 0>, BatchNorm2D<O>)>;

/// A block that keeps the shape: identity shortcut.
pub type Block<const C: usize> = Residual<BasicBranch<C, C, 1>>;

/// Tiny IResNet for CPU runs on 112×112 grey faces: stem 1 → 8 (stride 2, 56×56), stages of one
/// block at 8, 16, 32 channels (28, 14, 7), 64-d embedding. About 0.12 M parameters.
pub type TinyIResNet = (
    Stem<1, 8, 2>,
    DownBlock<8, 8, 2>,
    DownBlock<8, 16, 2>,
    DownBlock<16, 32, 2>,
    builder::EmbeddingHead<32, { 32 * 7 * 7 }, 64>,
);

/// IResNet-18 (insightface `iresnet18`: layers [2, 2, 2, 2] at 64/128/256/512 channels, stride-1
/// stem, 512-d embedding) on 112×112 RGB faces; meant for a GPU.
pub type IResNet18 = (
    Stem<3, 64, 1>,
    (DownBlock<64, 64, 2>, Block<64>),
    (DownBlock<64, 128, 2>, Block<128>),
    (DownBlock<128, 256, 2>, Block<256>),
    (DownBlock<256, 512, 2>, Block<512>),
    builder::EmbeddingHead<512, { 512 * 7 * 7 }, 512>,
);

/// Uploads `x` (B·C·H·W floats, row-major) as a (B, C, H, W) batch of `h`×`w` images.
pub fn images<const C: usize, D: Device<f32>>(
    dev: &D,
    x: &[f32],
    h: usize,
    w: usize,
) -> Images<C, f32, D> {
    images_of_rows(upload_rows(dev, x, C * h * w), h, w)
}

/// Device rows of C·`h`·`w` floats as a (B, C, `h`, `w`) batch of images (no copy).
///
/// # Panics
/// If a row is not C·`h`·`w` floats.
pub fn images_of_rows<const C: usize, D: Device<f32>>(
    x: Tensor<(usize, usize), f32, D>,
    h: usize,
    w: usize,
) -> Images<C, f32, D> {
    let (b, len) = *x.shape();
    assert_eq!(
        len,
        C * h * w,
        "a row of {len} floats is not a {C}×{h}×{w} image"
    );
    x.reshape_like(&(b, Const::<C>, h, w))
}

/// L2-normalised embeddings of 112×112 images `x` in evaluation mode (BN running statistics, no
/// dropout, no tape), as host rows (B, N).
pub fn embed<M, const C: usize, const N: usize, D: Device<f32>>(
    net: &M,
    dev: &D,
    x: &[f32],
) -> Vec<f32>
where
    M: Module<Images<C, f32, D>, Output = Embeddings<N, f32, D>>,
{
    let per = C * crate::data::images::FACE_SIZE * crate::data::images::FACE_SIZE;
    let mut out = Vec::with_capacity(x.len() / per * N);
    // Chunks bound the activation memory of large evaluation sets.
    for chunk in x.chunks(64 * per) {
        let side = crate::data::images::FACE_SIZE;
        out.extend(download(&l2_normalize(
            net.forward(images::<C, D>(dev, chunk, side, side)),
        )));
    }
    out
}

/// The gallery net's forward: training-mode BN (batch statistics, updating the gallery's own
/// running statistics), no gradient kept. Returns raw (unnormalised) embeddings.
pub fn forward_gallery<M, const C: usize, const N: usize, D: Device<f32>>(
    net: &mut M,
    x: Images<C, f32, D>,
) -> Embeddings<N, f32, D>
where
    M: ModuleMut<
        Images<C, f32, D, OwnedTape<f32, D>>,
        Output = Embeddings<N, f32, D, OwnedTape<f32, D>>,
    >,
{
    let y = net.forward_mut(x.traced(Gradients::leaky()));
    let (y, _tape) = y.split_tape();
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// A test-only net on 16×16 input exercising every module: 16 → 8 (stem) → 4 (down block).
    type TestNet = (
        Stem<1, 2, 2>,
        DownBlock<2, 4, 2>,
        Block<4>,
        builder::EmbeddingHead<4, { 4 * 4 * 4 }, 3>,
    );

    fn random(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    #[test]
    fn conv_matches_a_direct_convolution() {
        let dev = Cpu::default();
        let conv = dev.build_module::<builder::Conv2d<2, 3, 3, 2, 1>, f64>();
        let (b, h, w) = (2, 5, 6);
        let xv = random(b * 2 * h * w, 1);
        let x = dev.tensor_from_vec(xv.clone(), (b, Const::<2>, h, w));
        let y = conv.forward(x);
        let (ho, wo) = (3, 3);
        assert_eq!(*y.shape(), (b, Const::<3>, ho, wo));
        let wt = conv.weight.as_vec();
        let y = y.as_vec();
        for n in 0..b {
            for o in 0..3 {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut s = 0.0;
                        for c in 0..2 {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) =
                                        ((oy * 2 + ky) as isize - 1, (ox * 2 + kx) as isize - 1);
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let xi = ((n * 2 + c) * h + iy as usize) * w + ix as usize;
                                    s += xv[xi] * wt[((o * 2 + c) * 3 + ky) * 3 + kx];
                                }
                            }
                        }
                        let got = y[((n * 3 + o) * ho + oy) * wo + ox];
                        assert!((got - s).abs() < 1e-12, "({n},{o},{oy},{ox}): {got} vs {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn im2col_indices_are_uploaded_once_per_input_size() {
        let dev = Cpu::default();
        let conv = dev.build_module::<builder::Conv2d<2, 3, 3, 2, 1>, f64>();
        let fresh = || Conv2d::<2, 3, 3, 2, 1, f64, Cpu> {
            weight: conv.weight.clone(),
            im2col: Im2colCache::default(),
        };
        let input = |b: usize, h: usize, w: usize, seed: u64| {
            dev.tensor_from_vec(random(b * 2 * h * w, seed), (b, Const::<2>, h, w))
        };
        crate::traffic::take();
        // Sizes 5×6, 5×6 (another batch size), 7×4, 5×6: indices and mask built at the first,
        // third and fourth, each forward equal to a layer that never cached.
        let mut builds = Vec::new();
        for (b, h, w, seed) in [(2, 5, 6, 1), (3, 5, 6, 2), (2, 7, 4, 3), (2, 5, 6, 4)] {
            let got = conv.forward(input(b, h, w, seed)).as_vec();
            builds.push(crate::traffic::take().to_device_copies);
            let want = fresh().forward(input(b, h, w, seed)).as_vec();
            crate::traffic::take();
            assert_eq!(got, want, "{b}×{h}×{w}");
        }
        assert_eq!(builds, [2, 0, 2, 2]);
    }

    #[test]
    fn prelu_values() {
        let dev = Cpu::default();
        let mut p = dev.build_module::<builder::PRelu<2>, f64>();
        assert_eq!(p.a.array(), [0.25, 0.25]);
        p.a = dev.tensor([0.5, -1.0]);
        let x = dev.tensor_from_vec(vec![2.0, -2.0, 3.0, -3.0], (1, Const::<2>, 1, 2));
        assert_eq!(p.forward(x).as_vec(), [2.0, -1.0, 3.0, 3.0]);
    }

    /// Σ y ⊙ g over a training-mode forward (batch statistics, so running statistics do not
    /// enter the value).
    fn loss<M>(net: &mut M, x: &Images<1, f64, Cpu>, g: &Embeddings<3, f64, Cpu>) -> f64
    where
        M: ModuleMut<
            Images<1, f64, Cpu, OwnedTape<f64, Cpu>>,
            Output = Embeddings<3, f64, Cpu, OwnedTape<f64, Cpu>>,
        >,
    {
        let y = net.forward_mut(x.clone().traced(Gradients::leaky()));
        (y * g.clone()).sum::<(), _>().array()
    }

    #[test]
    fn gradients_match_finite_differences() {
        let dev = Cpu::default();
        let mut net = dev.build_module::<TestNet, f64>();
        // Non-trivial BN affine parameters and PReLU slopes, so their gradient paths matter.
        net.1.f.0.scale = dev.tensor_from_vec(
            random(2, 9).iter().map(|v| 1.0 + 0.5 * v).collect(),
            (Const::<2>,),
        );
        net.1.f.3.a = dev.tensor_from_vec(random(4, 10), (Const::<4>,));
        let b = 3;
        let x = dev.tensor_from_vec(random(b * 16 * 16, 2), (b, Const::<1>, 16, 16));
        let g = dev.tensor_from_vec(random(b * 3, 3), (b, Const::<3>));

        let y = net.forward_mut(x.trace(Gradients::leaky()));
        let grads = (y * g.clone()).sum::<(), _>().backward();

        let eps = 1e-6;

        // Input gradient.
        let gx = grads.get(&x).as_vec();
        let xv = x.as_vec();
        for i in [0, 37, 255, 300, 767] {
            let mut plus = xv.clone();
            plus[i] += eps;
            let mut minus = xv.clone();
            minus[i] -= eps;
            let lp = loss(
                &mut net,
                &dev.tensor_from_vec(plus, (b, Const::<1>, 16, 16)),
                &g,
            );
            let lm = loss(
                &mut net,
                &dev.tensor_from_vec(minus, (b, Const::<1>, 16, 16)),
                &g,
            );
            let fd = (lp - lm) / (2.0 * eps);
            assert!(
                (fd - gx[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "x[{i}]: fd {fd} vs {}",
                gx[i]
            );
        }

        // Parameter gradients: stem conv, a branch conv, the shortcut conv, PReLU slopes, BN
        // scale, the linear layer.
        macro_rules! check_param {
            ($($field:tt)+) => {{
                let analytic = grads.get(&net.$($field)+).as_vec();
                let v = net.$($field)+.as_vec();
                for i in [0, v.len() / 2, v.len() - 1] {
                    let mut p = v.clone();
                    p[i] += eps;
                    net.$($field)+.copy_from(&p);
                    let lp = loss(&mut net, &x, &g);
                    p[i] -= 2.0 * eps;
                    net.$($field)+.copy_from(&p);
                    let lm = loss(&mut net, &x, &g);
                    net.$($field)+.copy_from(&v);
                    let fd = (lp - lm) / (2.0 * eps);
                    assert!(
                        (fd - analytic[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                        "{}[{i}]: fd {fd} vs {}", stringify!($($field)+), analytic[i]
                    );
                }
            }};
        }
        check_param!(0.0.weight);
        check_param!(0.2.a);
        check_param!(1.f.1.weight);
        check_param!(1.f.3.a);
        check_param!(1.f.4.weight);
        check_param!(1.r.0.weight);
        check_param!(1.f.0.scale);
        check_param!(2.0.0.scale);
        check_param!(2.0.4.weight);
        check_param!(3.fc.weight);
        check_param!(3.features.scale);
    }

    #[test]
    fn output_shapes_of_both_sizes() {
        let dev = Cpu::default();
        let tiny = dev.build_module::<TinyIResNet, f32>();
        let x = dev.sample_normal_like(&(2, Const::<1>, 112, 112));
        assert_eq!(*tiny.forward(x).shape(), (2, Const::<64>));
        let e = embed(&tiny, &dev, &vec![0.1; 3 * 112 * 112]);
        assert_eq!(e.len(), 3 * 64);
        let norm: f32 = e[..64].iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4);

        let big = dev.build_module::<IResNet18, f32>();
        let x = dev.sample_normal_like(&(1, Const::<3>, 112, 112));
        assert_eq!(*big.forward(x).shape(), (1, Const::<512>));
    }

    #[test]
    fn gallery_forward_updates_only_its_own_running_statistics() {
        let dev = Cpu::default();
        let mut probe = dev.build_module::<TinyIResNet, f32>();
        let mut gallery = crate::nets::gallery::Gallery::new(&probe, 0.9);
        let x: Images<1, f32, Cpu> = dev.sample_normal_like(&(4, Const::<1>, 112, 112));
        let before = gallery.net.4.bn.running_mean.as_vec();
        let y = forward_gallery(&mut gallery.net, x.clone());
        assert_eq!(*y.shape(), (4, Const::<64>));
        assert_ne!(gallery.net.4.bn.running_mean.as_vec(), before);
        // The EMA moves parameters, never the running statistics.
        let stats = gallery.net.4.bn.running_mean.as_vec();
        let _ = probe.forward_mut(x.traced(Gradients::leaky()));
        probe.0 .0.weight = dev.sample_normal();
        gallery.update(&probe);
        assert_eq!(gallery.net.4.bn.running_mean.as_vec(), stats);
        assert_ne!(gallery.net.0 .0.weight.as_vec(), probe.0 .0.weight.as_vec());
    }

    /// CPU time of one training step (forward + backward, batch 64) of each size:
    /// `cargo test --release --lib cnn_step_time -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn cnn_step_time() {
        fn time<M, const C: usize, const N: usize>(name: &str, net: &mut M, batch: usize)
        where
            M: ModuleMut<
                    Images<C, f32, Cpu, OwnedTape<f32, Cpu>>,
                    Output = Embeddings<N, f32, Cpu, OwnedTape<f32, Cpu>>,
                > + TensorCollection<f32, Cpu>,
        {
            let dev = Cpu::default();
            let x: Images<C, f32, Cpu> = dev.sample_normal_like(&(batch, Const::<C>, 112, 112));
            let mut grads = net.alloc_grads();
            let mut times = Vec::new();
            for _ in 0..3 {
                let t = std::time::Instant::now();
                let y = net.forward_mut(x.clone().traced(grads));
                grads = y.square().mean::<(), _>().backward();
                net.zero_grads(&mut grads);
                times.push(t.elapsed().as_secs_f64());
            }
            eprintln!(
                "{name}: batch {batch}: step {:.3} s (first {:.3} s)",
                times[1..].iter().sum::<f64>() / 2.0,
                times[0]
            );
        }
        let dev = Cpu::default();
        time(
            "TinyIResNet",
            &mut dev.build_module::<TinyIResNet, f32>(),
            64,
        );
        let batch = std::env::var("F2C_IRESNET18_BATCH")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(8);
        time(
            "IResNet18",
            &mut dev.build_module::<IResNet18, f32>(),
            batch,
        );
    }
}
