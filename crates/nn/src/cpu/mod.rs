//! Inference kernels for the CPU that burn-flex runs slower than it could (see the README's
//! speed section for what each buys). Each takes what burn's op takes (or burn's module, in the
//! `_module` forms) and returns what burn would, within float32 round-off; where it does not
//! apply (a gradient to keep, another device, another dtype) it calls burn itself.

pub mod attention;
pub mod conv;
mod conv_grad;
mod direct;
pub(crate) mod isa;
pub mod join;
pub mod linear;
pub mod norm;
mod norm_grad;
#[cfg(test)]
mod test_support;
mod winograd;

use std::borrow::Cow;

use burn::backend::Flex;
use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

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

/// `x` with `f` applied to its f32 elements in blocks of `block` (the last may be shorter), each
/// told its block's index, the blocks in parallel, on the inference CPU device (the caller
/// checks [`fast_path`]): in place when `x` holds its data alone, else on a copy that each block
/// makes of itself inside the parallel loop (burn's `into_data` would copy the whole tensor
/// twice, on one thread, first).
pub(crate) fn map_blocks<const D: usize>(
    x: Tensor<D>,
    block: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> Tensor<D> {
    let block = block.max(1);
    let Ok(mut p) = x.try_into_primitive::<Flex>() else {
        unreachable!("fast_path: a tensor on the inference CPU device is a Flex tensor")
    };
    let shape = flex_dims::<D>(&p);
    let len: usize = shape.iter().product();
    let whole = p.dtype() == DType::F32
        && p.as_slice::<f32>().is_some_and(|s| s.len() == len)
        && p.bytes().len() == len * 4;
    if whole && let Some(v) = p.try_storage_mut::<f32>() {
        v.par_chunks_mut(block)
            .enumerate()
            .for_each(|(i, v)| f(i, v));
        return Tensor::from_primitive::<Flex>(p);
    }
    let out = copy_blocks(&flex_f32(&p), block, f);
    Tensor::from_primitive::<Flex>(flex_from(out, shape))
}

/// A copy of `src` with `f(i, block)` applied to its `i`-th block of `block` elements (the last
/// may be shorter): each parallel task copies its own block and works on it while it is in
/// cache, so no thread copies the whole while the others wait.
pub(crate) fn copy_blocks(
    src: &[f32],
    block: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let len = src.len();
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(block.max(1))
        .zip(src.par_chunks(block.max(1)))
        .enumerate()
        .for_each(|(i, (d, s))| {
            for (d, s) in d.iter_mut().zip(s) {
                d.write(*s);
            }
            // SAFETY: every element of `d` has just been written.
            let v =
                unsafe { std::slice::from_raw_parts_mut(d.as_mut_ptr().cast::<f32>(), d.len()) };
            f(i, v);
        });
    // SAFETY: the chunks cover the first `len` elements, each written above.
    unsafe { out.set_len(len) };
    out
}

/// Raw output pointer shared by parallel tasks, each of which writes its own elements (one
/// image's band of rows, one head's block of queries).
#[derive(Clone, Copy)]
pub(crate) struct Out(pub(crate) *mut f32);
// SAFETY: the kernels that share it give each task disjoint elements, and the buffer outlives
// their parallel loop.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The pointer (a method, so that closures capture the `Sync` wrapper, not the field).
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// A contiguous f32 Flex tensor holding `v`.
pub(crate) fn flex_from<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn map_blocks_works_in_place_on_copies_and_on_views() {
        let device = diffuse_core::device::cpu();
        let v: Vec<f32> = (0..40_000).map(|i| i as f32).collect();
        let f =
            |block: usize, v: &mut [f32]| v.iter_mut().for_each(|e| *e = 2.0 * *e + block as f32);
        let want = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .enumerate()
                .map(|(i, e)| 2.0 * e + (i / 999) as f32)
                .collect()
        };
        let fresh = || Tensor::<2>::from_data(TensorData::new(v.clone(), [200, 200]), &device);
        let values = |t: Tensor<2>| -> Vec<f32> { t.into_data().try_to_vec().unwrap() };
        let ptr = |t: Tensor<2>| {
            let Ok(p) = t.try_into_primitive::<Flex>() else {
                panic!("a CPU tensor is a Flex tensor")
            };
            (p.bytes().as_ptr(), Tensor::<2>::from_primitive::<Flex>(p))
        };
        // Alone: in place, in the same buffer.
        let (before, x) = ptr(fresh());
        let (after, y) = ptr(map_blocks(x, 999, f));
        assert_eq!(before, after);
        assert_eq!(values(y), want(&v));
        // Shared: on a copy, the original untouched.
        let x = fresh();
        let y = map_blocks(x.clone(), 999, f);
        assert_eq!(values(y.clone()), want(&v));
        assert_eq!(values(x.clone()), v);
        // A transposed view: in row-major order of the view.
        let t: Vec<f32> = values(x.clone().swap_dims(0, 1));
        assert_eq!(values(map_blocks(x.swap_dims(0, 1), 999, f)), want(&t));
    }
}
