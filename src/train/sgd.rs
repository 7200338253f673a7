//! SGD with momentum and L2 weight decay whose velocity can be saved and restored.
//!
//! dfdx 0.13's `Sgd` keeps its velocity in a private `Gradients` map keyed by tensor ids, with no
//! way to read it out or put it back, so a run could not be continued bit-identically from a
//! checkpoint. Here the velocity is a network of the model's own type (one tensor per parameter),
//! which [`crate::nets::params`] reads and writes like any network, and the update is dfdx's SGD
//! kernel written out with in-place `axpy` calls that perform the same floating-point operations
//! in the same order (g ← g + wd·p; v ← g + u·v; p ← p − lr·v, or p ← p − lr·(g + u·v) with
//! Nesterov), so on the CPU the numbers equal dfdx's bit for bit (tested below).

use dfdx::nn::tensor_collection::{TensorCollection, ViewTensorMut};
use dfdx::prelude::*;

use crate::error::{Error, Result};
use crate::nets::params::{visit_params, ParamVisitor, Trainable};

/// The update rule's constants, apart from the learning rate, which changes per step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdRule {
    /// Momentum u.
    pub momentum: f32,
    /// Nesterov's variant instead of classic (heavy-ball) momentum.
    pub nesterov: bool,
    /// L2 weight decay wd, added to the gradient.
    pub weight_decay: f32,
}

/// SGD with momentum over a model `M`, the velocity held as an `M`.
#[derive(Debug, Clone)]
pub struct MomentumSgd<M> {
    /// The update rule.
    pub rule: SgdRule,
    velocity: M,
}

impl<M: Clone> MomentumSgd<M> {
    /// An optimiser for `model` with zero velocity.
    pub fn new<D: Device<f32>>(model: &M, rule: SgdRule) -> Self
    where
        M: TensorCollection<f32, D>,
    {
        let mut velocity = model.clone();
        visit_params(&mut velocity, &mut Trainable(Zero)).expect("zeroing parameters cannot fail");
        MomentumSgd { rule, velocity }
    }

    /// The velocity, one tensor per parameter.
    pub fn velocity(&self) -> &M {
        &self.velocity
    }

    /// The velocity, mutably (to restore it from a checkpoint).
    pub fn velocity_mut(&mut self) -> &mut M {
        &mut self.velocity
    }

    /// One update of `model` by `grads` at learning rate `lr`. Every trainable parameter must
    /// have a gradient in `grads`.
    pub fn update<D: Device<f32>>(
        &mut self,
        model: &mut M,
        grads: &Gradients<f32, D>,
        lr: f32,
    ) -> Result<()>
    where
        M: TensorCollection<f32, D>,
    {
        let mut op = Trainable(Update {
            rule: self.rule,
            lr,
            grads,
        });
        visit_params((model, &mut self.velocity), &mut op)
            .map_err(|e| Error::Other(format!("optimiser: {e:?}")))
    }
}

/// Zeroes each parameter (the velocity's other tensors are never read).
struct Zero;

impl<D: Device<f32>> ParamVisitor<D> for Zero {
    type Viewer = ViewTensorMut;
    type Err = D::Err;

    fn param<S: Shape>(&mut self, t: &mut Tensor<S, f32, D>) -> std::result::Result<(), D::Err> {
        t.try_fill_with_zeros()
    }
}

struct Update<'a, D: Device<f32>> {
    rule: SgdRule,
    lr: f32,
    grads: &'a Gradients<f32, D>,
}

impl<D: Device<f32>> ParamVisitor<D> for Update<'_, D> {
    type Viewer = (ViewTensorMut, ViewTensorMut);
    type Err = D::Err;

    fn param<S: Shape>(
        &mut self,
        (p, v): (&mut Tensor<S, f32, D>, &mut Tensor<S, f32, D>),
    ) -> std::result::Result<(), D::Err> {
        let SgdRule {
            momentum: u,
            nesterov,
            weight_decay: wd,
        } = self.rule;
        // Each axpy is a·x + b·y elementwise; multiplying by 1 and negating are exact, so these
        // are the kernel's own operations.
        let mut g = self.grads.get(p); // a copy
        g.try_axpy(1.0, p, wd)?; // g + wd·p
        v.try_axpy(u, &g, 1.0)?; // v ← g + u·v
        if nesterov {
            g.try_axpy(1.0, v, u)?; // g + u·v
            p.try_axpy(1.0, &g, -self.lr)?; // p − lr·(g + u·v)
        } else {
            p.try_axpy(1.0, v, -self.lr)?; // p − lr·v
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use dfdx::optim::{Momentum, Sgd, SgdConfig, WeightDecay};

    use super::*;
    use crate::nets::params::export_params;

    fn bits(m: &impl TensorCollection<f32, Cpu>) -> Vec<u32> {
        export_params(m)
            .iter()
            .flat_map(|p| p.values.iter().map(|v| v.to_bits()))
            .collect()
    }

    /// Both optimisers on the same model and data for a few steps: parameters bit-identical.
    fn agree_with_dfdx(nesterov: bool) {
        type M = (Linear<5, 7>, ReLU, Linear<7, 3>);
        let dev = Cpu::seed_from_u64(3);
        let mut a = dev.build_module::<M, f32>();
        let mut b = a.clone();
        let rule = SgdRule {
            momentum: 0.9,
            nesterov,
            weight_decay: 5e-4,
        };
        let mut ours = MomentumSgd::new(&a, rule);
        let mut theirs = Sgd::new(
            &b,
            SgdConfig {
                lr: 0.1,
                momentum: Some(if nesterov {
                    Momentum::Nesterov(0.9f32 as f64)
                } else {
                    Momentum::Classic(0.9f32 as f64)
                }),
                weight_decay: Some(WeightDecay::L2(5e-4f32 as f64)),
            },
        );
        for step in 0..5 {
            let lr = 0.1 / (step + 1) as f32;
            let x: Tensor<Rank2<4, 5>, f32, _> = dev.sample_normal();
            let ga = a.forward(x.leaky_trace()).square().mean().backward();
            ours.update(&mut a, &ga, lr).unwrap();
            theirs.cfg.lr = lr as f64;
            let gb = b.forward(x.leaky_trace()).square().mean().backward();
            theirs.update(&mut b, &gb).unwrap();
            assert_eq!(bits(&a), bits(&b), "step {step}, nesterov {nesterov}");
        }
        assert!(export_params(ours.velocity())
            .iter()
            .all(|p| p.values.iter().any(|&v| v != 0.0)));
    }

    #[test]
    fn classic_momentum_equals_dfdx_bit_for_bit() {
        agree_with_dfdx(false);
    }

    #[test]
    fn nesterov_equals_dfdx_bit_for_bit() {
        agree_with_dfdx(true);
    }
}
