//! A network's trainable parameters as named host arrays: what a checkpoint stores of the probe
//! net, the second net and the optimiser's velocity, and what a checkpoint puts back. Names are
//! dfdx's field paths (`0.weight`, `4.bias`), the same names its safetensors writer uses, so a
//! checkpoint and an exported probe describe a network alike.

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorViewer, TensorVisitor, ViewTensorMut,
    ViewTensorName, ViewTensorRef,
};
use dfdx::prelude::*;

use crate::error::{Error, Result};

/// One parameter tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamTensor {
    /// dfdx's field path, e.g. `0.weight`.
    pub name: String,
    /// Its shape, e.g. `[256, 64]`.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// What to do to each trainable tensor of a network ([`visit_params`]): dfdx's [`TensorVisitor`]
/// less what each of ours would repeat (f32 tensors on one device, frozen tensors skipped, no new
/// module built).
pub(crate) trait ParamVisitor<D: Device<f32>> {
    /// How a tensor is seen: [`ViewTensorRef`] or [`ViewTensorMut`], with [`ViewTensorName`], or
    /// a tuple of views of the same tensor in several networks of one type.
    type Viewer: TensorViewer;
    type Err;

    /// Whether the tensors not trained by gradient (batch norm's running statistics) are visited
    /// too: a saved network must hold them to compute what it computed.
    const ALL_TENSORS: bool = false;

    /// Visits one trainable tensor (or any tensor, with [`ParamVisitor::ALL_TENSORS`]).
    fn param<S: Shape>(
        &mut self,
        t: <Self::Viewer as TensorViewer>::View<'_, Tensor<S, f32, D>>,
    ) -> std::result::Result<(), Self::Err>;
}

/// A [`ParamVisitor`] as dfdx's walk sees it.
pub(crate) struct Trainable<V>(pub V);

impl<D: Device<f32>, V: ParamVisitor<D>> TensorVisitor<f32, D> for Trainable<V> {
    type Viewer = V::Viewer;
    type Err = V::Err;
    type E2 = f32;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, D>,
        t: <Self::Viewer as TensorViewer>::View<'_, Tensor<S, f32, D>>,
    ) -> std::result::Result<Option<Tensor<S, f32, D>>, Self::Err> {
        if opts.do_gradient_update || V::ALL_TENSORS {
            self.0.param(t)?;
        }
        Ok(None)
    }
}

/// Visits each trainable tensor of a network with `visitor`, in dfdx's order; `net` is the
/// network seen as the visitor's viewer sees a tensor, e.g. `(&net, String::new())` for
/// `(ViewTensorRef, ViewTensorName)`.
pub(crate) fn visit_params<'a, D, M, V>(
    net: <V::Viewer as TensorViewer>::View<'a, M>,
    visitor: &'a mut Trainable<V>,
) -> std::result::Result<(), V::Err>
where
    D: Device<f32>,
    M: TensorCollection<f32, D> + 'a,
    V: ParamVisitor<D>,
{
    M::iter_tensors(&mut RecursiveWalker { m: net, f: visitor })?;
    Ok(())
}

/// Every tensor of `net` in dfdx's visiting order: its trainable parameters and the state that
/// is not trained by gradient (batch norm's running statistics), so a restored network computes
/// exactly what the saved one did.
pub fn export_params<D: Device<f32>, M: TensorCollection<f32, D>>(net: &M) -> Vec<ParamTensor> {
    let mut out = Trainable(Export(Vec::new()));
    visit_params((net, String::new()), &mut out).expect("reading parameters cannot fail");
    out.0 .0
}

/// Overwrites every tensor of `net` with `params`, which must list the same names and
/// shapes in the same order (as [`export_params`] of a network of the same type gives).
pub fn import_params<D: Device<f32>, M: TensorCollection<f32, D>>(
    net: &mut M,
    params: &[ParamTensor],
) -> Result<()> {
    let mut visit = Trainable(Import { params, next: 0 });
    visit_params((net, String::new()), &mut visit)?;
    let import = visit.0;
    if import.next != params.len() {
        return Err(Error::Other(format!(
            "parameters: the saved network has {} tensors, this one {}; was it saved for another \
             backbone?",
            params.len(),
            import.next
        )));
    }
    Ok(())
}

struct Export(Vec<ParamTensor>);

impl<D: Device<f32>> ParamVisitor<D> for Export {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = D::Err;
    const ALL_TENSORS: bool = true;

    fn param<S: Shape>(&mut self, (t, name): (&Tensor<S, f32, D>, String)) -> Result<(), D::Err> {
        self.0.push(ParamTensor {
            name,
            shape: t.shape().concrete().into_iter().collect(),
            values: t.as_vec(),
        });
        Ok(())
    }
}

struct Import<'a> {
    params: &'a [ParamTensor],
    next: usize,
}

impl<D: Device<f32>> ParamVisitor<D> for Import<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = Error;
    const ALL_TENSORS: bool = true;

    fn param<S: Shape>(&mut self, (t, name): (&mut Tensor<S, f32, D>, String)) -> Result<()> {
        let shape: Vec<usize> = t.shape().concrete().into_iter().collect();
        let saved = self.params.get(self.next).ok_or_else(|| {
            Error::Other(format!(
                "parameters: the saved network ends before `{name}`; was it saved for another \
                 backbone?"
            ))
        })?;
        if saved.name != name || saved.shape != shape {
            return Err(Error::Other(format!(
                "parameters: expected `{name}` of shape {shape:?}, the saved network has `{}` of \
                 shape {:?}; was it saved for another backbone?",
                saved.name, saved.shape
            )));
        }
        t.copy_from(&saved.values);
        self.next += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_shapes_and_round_trip() {
        let dev = Cpu::seed_from_u64(1);
        type M = (Linear<3, 4>, ReLU, Linear<4, 2>);
        let a = dev.build_module::<M, f32>();
        let params = export_params(&a);
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
        assert_eq!(params[0].shape, [4, 3]);
        assert_eq!(params[0].values, a.0.weight.as_vec());
        let mut b = dev.build_module::<M, f32>();
        assert_ne!(export_params(&b), params);
        import_params(&mut b, &params).unwrap();
        assert_eq!(export_params(&b), params);
    }

    #[test]
    fn import_rejects_another_shape() {
        let dev = Cpu::seed_from_u64(1);
        let a = dev.build_module::<Linear<3, 4>, f32>();
        let mut b = dev.build_module::<Linear<3, 5>, f32>();
        let err = import_params(&mut b, &export_params(&a)).unwrap_err();
        assert!(err.to_string().contains("another backbone"), "{err}");
    }
}
