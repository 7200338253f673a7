//! F²C's Gallery Net: the same architecture as the probe net, never trained by gradient; after
//! each step its parameters follow the probe's by an exponential moving average
//! g ← m·g + (1 − m)·p (reference `_momentum_update_gallery`, run at the start of each step,
//! before the gallery forward). It starts as a copy of the probe net. m = 0 makes it equal to the
//! probe, m = 1 freezes it at initialisation.

use dfdx::nn::ModelEMA;
use dfdx::prelude::*;

/// The EMA copy of a network.
pub struct Gallery<M> {
    /// The averaged network.
    pub net: M,
    /// EMA momentum m.
    pub momentum: f32,
}

impl<M: Clone> Gallery<M> {
    /// A gallery initialised as a copy of `probe`.
    pub fn new(probe: &M, momentum: f32) -> Self {
        Gallery {
            net: probe.clone(),
            momentum,
        }
    }

    /// g ← m·g + (1 − m)·p.
    pub fn update<D: Device<f32>>(&mut self, probe: &M)
    where
        M: ModelEMA<f32, D>,
    {
        self.net.ema(probe, self.momentum as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_arithmetic() {
        let dev = Cpu::default();
        let mut p = dev.build_module::<Linear<2, 1>, f32>();
        p.weight = dev.tensor([[1.0, 2.0]]);
        p.bias = dev.tensor([0.5]);
        let mut g = Gallery::new(&p, 0.9);
        p.weight = dev.tensor([[3.0, -2.0]]);
        p.bias = dev.tensor([1.5]);
        g.update(&p);
        // 0.9·[1, 2] + 0.1·[3, −2] = [1.2, 1.6]; 0.9·0.5 + 0.1·1.5 = 0.6
        let w = g.net.weight.array()[0];
        assert!((w[0] - 1.2).abs() < 1e-6 && (w[1] - 1.6).abs() < 1e-6);
        assert!((g.net.bias.array()[0] - 0.6).abs() < 1e-6);
        // m = 0: equal to the probe; m = 1: unchanged.
        let mut zero = Gallery::new(&g.net, 0.0);
        zero.update(&p);
        assert_eq!(zero.net.weight.array(), p.weight.array());
        let mut one = Gallery::new(&g.net, 1.0);
        one.update(&p);
        assert_eq!(one.net.weight.array(), g.net.weight.array());
    }
}
