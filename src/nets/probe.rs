//! The probe network: an MLP backbone over the synthetic input producing L2-normalised embeddings.
//! dfdx's `Linear` sizes are compile-time constants, so the architecture is one of a few
//! monomorphised choices ([`Backbone`], [`crate::nets::network::MlpArch`]); batch sizes stay run-time.

use crate::data::synthetic::INPUT_DIM;
pub use crate::nets::network::Backbone;
use crate::nets::network::{download, upload_rows};
use dfdx::prelude::*;

/// The MLP of hidden width `H` and embedding dimension `E`.
pub type Mlp<const H: usize, const E: usize> =
    (Linear<INPUT_DIM, H>, ReLU, Linear<H, H>, ReLU, Linear<H, E>);

/// The built MLP on device `D`.
pub type Net<const H: usize, const E: usize, D> = <Mlp<H, E> as BuildOnDevice<D, f32>>::Built;

/// A batch of inputs, (B, INPUT_DIM).
pub type Inputs<D> = Tensor<(usize, Const<INPUT_DIM>), f32, D>;

/// Row-wise L2 normalisation x / √(‖x‖² + 1e-12) — dfdx's `normalize` standardises instead.
pub fn l2_normalize<const E: usize, D: Device<f32>, T: Tape<f32, D> + Merge<T>>(
    y: Tensor<(usize, Const<E>), f32, D, T>,
) -> Tensor<(usize, Const<E>), f32, D, T> {
    let shape = *y.shape();
    let norm = (y.retaped::<T>().square().sum::<(usize,), Axis<1>>() + 1e-12).sqrt();
    y / norm.broadcast_like(&shape)
}

/// Uploads `rows` samples of `inputs` (row-major) as a (B, INPUT_DIM) tensor.
pub fn inputs<D: Device<f32>>(dev: &D, inputs: &[f32]) -> Inputs<D> {
    let rows = inputs.len() / INPUT_DIM;
    upload_rows(dev, inputs, INPUT_DIM).reshape_like(&(rows, Const::<INPUT_DIM>))
}

/// L2-normalised embeddings of `x` without a tape, as host rows (evaluation, gallery features).
pub fn embed<const H: usize, const E: usize, D: Device<f32>>(
    net: &Net<H, E, D>,
    dev: &D,
    x: &[f32],
) -> Vec<f32>
where
    Net<H, E, D>: Module<Inputs<D>, Output = Tensor<(usize, Const<E>), f32, D>>,
{
    let mut out = Vec::with_capacity(x.len() / INPUT_DIM * E);
    // Chunks bound the activation memory of large evaluation sets.
    for chunk in x.chunks(4096 * INPUT_DIM) {
        out.extend(download(&l2_normalize(net.forward(inputs(dev, chunk)))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_normalize_gives_unit_rows_and_the_right_gradient() {
        let dev = Cpu::default();
        let x = dev.tensor_from_vec(vec![3.0f32, 4.0, 0.0, 1.0, 0.0, 0.0], (2usize, Const::<3>));
        let y = l2_normalize(x.clone());
        let v = y.as_vec();
        assert!(
            (v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6 && (v[3] - 1.0).abs() < 1e-6
        );
        // d/dx of Σ y ⊙ g with g = [1, 0, 0] on row 0: (g − (g·u)u)/‖x‖ = ([1,0,0] − 0.6·[0.6,0.8,0])/5
        // = [0.128, −0.096, 0].
        let g = dev.tensor_from_vec(vec![1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0], (2usize, Const::<3>));
        let grads = (l2_normalize(x.leaky_trace()) * g).sum().backward();
        let gx = grads.get(&x).as_vec();
        assert!(
            (gx[0] - 0.128).abs() < 1e-6 && (gx[1] + 0.096).abs() < 1e-6 && gx[2].abs() < 1e-7,
            "{gx:?}"
        );
    }
}
