//! Inference kernels for the CPU that burn-flex runs slower than it could (see the README's
//! speed section for what each buys). Each takes what burn's op takes (or burn's module, in the
//! `_module` forms) and returns what burn would, within float32 round-off; where it does not
//! apply (a gradient to keep, another device, another dtype) it calls burn itself.

pub mod conv;
mod conv_grad;
pub mod norm;
mod norm_grad;

use burn::tensor::{DType, Device, Tensor};

/// Whether the fast path applies: data in this process's memory (a GPU would copy it out and
/// back), at f32, with no gradient to keep.
pub(crate) fn fast_path(device: &Device, dtype: DType) -> bool {
    !device.is_autodiff() && *device == diffuse_core::device::cpu() && dtype == DType::F32
}

/// Whether the training kernels apply: a gradient-tracking device whose data is in this
/// process's memory (the caller checks the dtype).
pub(crate) fn training_path(device: &Device) -> bool {
    device.is_autodiff() && device.clone().without_autodiff() == diffuse_core::device::cpu()
}

/// The elements of an f32 tensor, row-major.
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    let Ok(v) = t.into_data().convert::<f32>().try_into_vec::<f32>() else {
        unreachable!("data converted to f32 is a Vec<f32>")
    };
    v
}
