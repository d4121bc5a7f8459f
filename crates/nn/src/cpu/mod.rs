//! Inference kernels for the CPU that burn-flex runs slower than it could (see the README's
//! speed section for what each buys). Each takes what burn's op takes (or burn's module, in the
//! `_module` forms) and returns what burn would, within float32 round-off; where it does not
//! apply (a gradient to keep, another device, another dtype) it calls burn itself.

pub mod conv;
mod conv_grad;
pub mod norm;
mod norm_grad;

use std::borrow::Cow;

use burn::tensor::{DType, Device, Tensor, TensorData};

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

/// The primitive tensor of the CPU backend, which the training kernels work on.
pub(crate) type FlexTensor = burn::backend::flex::FlexTensor;

/// The elements of a Flex tensor as f32, row-major: borrowed when it is a contiguous f32
/// tensor (as the training kernels' inputs are), else converted.
pub(crate) fn flex_f32(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => {
            let Ok(v) = t.clone().into_data().convert::<f32>().try_into_vec::<f32>() else {
                unreachable!("data converted to f32 is a Vec<f32>")
            };
            Cow::Owned(v)
        }
    }
}

/// The sizes of a Flex tensor of rank `D`.
pub(crate) fn flex_dims<const D: usize>(t: &FlexTensor) -> [usize; D] {
    t.layout().shape().dims::<D>()
}

/// A contiguous f32 Flex tensor holding `v`.
pub(crate) fn flex_from<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn flex_f32_reads_views_and_other_dtypes_in_row_major_order() {
        let device = diffuse_core::device::cpu();
        let v: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let t = Tensor::<2>::from_data(TensorData::new(v, [2, 3]), &device);
        let prim = |t: Tensor<2>| {
            let Ok(p) = t.try_into_primitive::<Flex>() else {
                panic!("a CPU tensor is a Flex tensor")
            };
            p
        };
        let plain = prim(t.clone());
        assert!(matches!(flex_f32(&plain), Cow::Borrowed(_)));
        assert_eq!(flex_dims::<2>(&plain), [2, 3]);
        let view = prim(t.clone().swap_dims(0, 1));
        assert_eq!(&*flex_f32(&view), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let half = prim(t.cast(DType::F16));
        assert_eq!(&*flex_f32(&half), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }
}
