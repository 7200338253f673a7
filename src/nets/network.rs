//! What the trainer needs of a network, whatever its architecture: [`Network`], implemented by
//! one marker type per architecture ([`MlpArch`] over the synthetic vectors, [`TinyArch`] and
//! [`IResNet18Arch`] over 112×112 face images), and [`Backbone`], the architecture by name as an
//! experiment file gives it.
//!
//! Inputs are flat rows of floats ([`Network::INPUT_LEN`] per sample: the synthetic vector, or a
//! CHW image), so one batch type carries either: on the host for evaluation, on the device
//! ([`Rows`]) for a training step, which uploads a batch once for both of its networks or picks
//! it from a training set kept on the device.

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::images::{Channels, FACE_SIZE};
pub use crate::data::resident::Rows;
use crate::data::synthetic::INPUT_DIM;
use crate::nets::cnn::{self, IResNet18, Images, TinyIResNet};
use crate::nets::probe::{self, l2_normalize, Inputs};

/// The probe (and second) network architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backbone {
    /// MLP 64 → 256 → 256 → 64 over the synthetic vectors.
    Mlp256x64,
    /// MLP 64 → 512 → 512 → 128 over the synthetic vectors.
    Mlp512x128,
    /// Tiny IResNet over 112×112 grey faces, 64-d embedding (trains on a CPU in minutes).
    TinyIResNet,
    /// IResNet-18 over 112×112 RGB faces, 512-d embedding (meant for a GPU).
    IResNet18,
}

/// What a backbone reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackboneInput {
    /// The synthetic benchmark's vectors.
    Synthetic,
    /// 112×112 images in this channel layout.
    Images(Channels),
}

impl Backbone {
    /// Embedding dimension D.
    pub fn embedding_dim(&self) -> usize {
        match self {
            Backbone::Mlp256x64 | Backbone::TinyIResNet => 64,
            Backbone::Mlp512x128 => 128,
            Backbone::IResNet18 => 512,
        }
    }

    /// What the backbone reads.
    pub fn input(&self) -> BackboneInput {
        match self {
            Backbone::Mlp256x64 | Backbone::Mlp512x128 => BackboneInput::Synthetic,
            Backbone::TinyIResNet => BackboneInput::Images(Channels::Grey),
            Backbone::IResNet18 => BackboneInput::Images(Channels::Rgb),
        }
    }
}

/// An architecture on device `D` with `E`-dimensional embeddings.
pub trait Network<const E: usize, D: Device<f32>> {
    /// The built network.
    type Net: Clone + TensorCollection<f32, D>;

    /// Floats of one input sample.
    const INPUT_LEN: usize;

    /// A freshly initialised network, from `dev`'s seeded generator.
    fn build(dev: &D) -> Self::Net;

    /// Training-mode forward of the device rows `x` ([`Self::INPUT_LEN`] floats each) on an
    /// input traced with `grads`: the L2-normalised embeddings, on the tape.
    fn forward_traced(
        net: &mut Self::Net,
        x: Rows<D>,
        grads: Gradients<f32, D>,
    ) -> Tensor<(usize, Const<E>), f32, D, OwnedTape<f32, D>>;

    /// Evaluation-mode L2-normalised embeddings of the rows `x`, as host rows.
    fn embed(net: &Self::Net, dev: &D, x: &[f32]) -> Vec<f32>;

    /// The second network's L2-normalised embeddings of a training batch on the device, without
    /// gradient, as host rows. For a network with batch norm this runs it in training mode (batch
    /// statistics, updating its own running statistics), as the reference's gallery forward
    /// does; otherwise it equals [`Network::embed`].
    fn embed_second(net: &mut Self::Net, x: Rows<D>) -> Vec<f32>;
}

/// Uploads the host rows `x` of `len` floats each as device [`Rows`] (one counted copy).
///
/// # Panics
/// If `x` is not a whole number of rows.
pub fn upload_rows<D: Device<f32>>(dev: &D, x: &[f32], len: usize) -> Rows<D> {
    let b = x.len() / len;
    assert_eq!(
        b * len,
        x.len(),
        "{} floats are not a whole number of rows of {len}",
        x.len()
    );
    crate::traffic::to_device(4 * x.len());
    dev.tensor_from_vec(x.to_vec(), (b, len))
}

/// Host rows of the embeddings `y` (one counted copy).
pub fn download<const E: usize, D: Device<f32>, T>(
    y: &Tensor<(usize, Const<E>), f32, D, T>,
) -> Vec<f32> {
    crate::traffic::to_host(4 * y.shape().0 * E);
    y.as_vec()
}

/// The MLP of hidden width `H` and embedding dimension `E` ([`probe::Mlp`]).
pub struct MlpArch<const H: usize, const E: usize>;

impl<const H: usize, const E: usize, D: Device<f32>> Network<E, D> for MlpArch<H, E> {
    type Net = probe::Net<H, E, D>;

    const INPUT_LEN: usize = INPUT_DIM;

    fn build(dev: &D) -> Self::Net {
        <Self::Net as BuildModule<D, f32>>::build(dev)
    }

    fn forward_traced(
        net: &mut Self::Net,
        x: Rows<D>,
        grads: Gradients<f32, D>,
    ) -> Tensor<(usize, Const<E>), f32, D, OwnedTape<f32, D>> {
        let b = x.shape().0;
        let x: Inputs<D> = x.reshape_like(&(b, Const::<INPUT_DIM>));
        l2_normalize(net.forward_mut(x.traced(grads)))
    }

    fn embed(net: &Self::Net, dev: &D, x: &[f32]) -> Vec<f32> {
        probe::embed::<H, E, D>(net, dev, x)
    }

    fn embed_second(net: &mut Self::Net, x: Rows<D>) -> Vec<f32> {
        let b = x.shape().0;
        let x: Inputs<D> = x.reshape_like(&(b, Const::<INPUT_DIM>));
        download(&l2_normalize(net.forward(x)))
    }
}

/// Implements [`Network`] for a CNN marker: builder type, input channels, embedding dimension.
macro_rules! cnn_network {
    ($(#[$doc:meta])* $marker:ident, $arch:ty, $c:literal, $e:literal) => {
        $(#[$doc])*
        pub struct $marker;

        impl<D: Device<f32>> Network<$e, D> for $marker {
            type Net = <$arch as BuildOnDevice<D, f32>>::Built;

            const INPUT_LEN: usize = $c * FACE_SIZE * FACE_SIZE;

            fn build(dev: &D) -> Self::Net {
                <$arch as BuildOnDevice<D, f32>>::build_on_device(dev)
            }

            fn forward_traced(
                net: &mut Self::Net,
                x: Rows<D>,
                grads: Gradients<f32, D>,
            ) -> Tensor<(usize, Const<$e>), f32, D, OwnedTape<f32, D>> {
                let x: Images<$c, f32, D> = cnn::images_of_rows(x, FACE_SIZE, FACE_SIZE);
                l2_normalize(net.forward_mut(x.traced(grads)))
            }

            fn embed(net: &Self::Net, dev: &D, x: &[f32]) -> Vec<f32> {
                cnn::embed::<_, $c, $e, D>(net, dev, x)
            }

            fn embed_second(net: &mut Self::Net, x: Rows<D>) -> Vec<f32> {
                let x: Images<$c, f32, D> = cnn::images_of_rows(x, FACE_SIZE, FACE_SIZE);
                download(&l2_normalize(cnn::forward_gallery(net, x)))
            }
        }
    };
}

cnn_network!(
    /// [`TinyIResNet`]: 112×112 grey faces, 64-d embeddings.
    TinyArch,
    TinyIResNet,
    1,
    64
);
cnn_network!(
    /// [`IResNet18`]: 112×112 RGB faces, 512-d embeddings.
    IResNet18Arch,
    IResNet18,
    3,
    512
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backbones_name_their_input_and_dimension() {
        for (b, d) in [
            (Backbone::Mlp256x64, 64),
            (Backbone::Mlp512x128, 128),
            (Backbone::TinyIResNet, 64),
            (Backbone::IResNet18, 512),
        ] {
            assert_eq!(b.embedding_dim(), d);
        }
        assert_eq!(
            Backbone::TinyIResNet.input(),
            BackboneInput::Images(Channels::Grey)
        );
        assert_eq!(Backbone::Mlp256x64.input(), BackboneInput::Synthetic);
        assert_eq!(<TinyArch as Network<64, Cpu>>::INPUT_LEN, 112 * 112);
        assert_eq!(
            <IResNet18Arch as Network<512, Cpu>>::INPUT_LEN,
            3 * 112 * 112
        );
    }

    #[test]
    fn second_embeddings_of_a_cnn_use_batch_statistics() {
        let dev = Cpu::seed_from_u64(3);
        let mut net = TinyArch::build(&dev);
        let x: Vec<f32> = (0..2 * 112 * 112)
            .map(|i| ((i % 97) as f32) / 97.0)
            .collect();
        let eval = TinyArch::embed(&net, &dev, &x);
        let second = TinyArch::embed_second(&mut net, upload_rows(&dev, &x, 112 * 112));
        assert_eq!((eval.len(), second.len()), (128, 128));
        let norm: f32 = second[..64].iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        // Fresh running statistics (mean 0, var 1) differ from the batch's.
        assert!(eval.iter().zip(&second).any(|(a, b)| (a - b).abs() > 1e-3));
    }
}
