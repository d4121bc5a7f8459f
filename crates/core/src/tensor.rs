//! Small helpers between burn tensors and plain numbers.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{CoreError, Result};

/// A `[n, d]` tensor from row-major f64 values.
pub fn from_flat(values: &[f64], n: usize, d: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = values.iter().map(|x| *x as f32).collect();
    Tensor::from_data(TensorData::new(v, [n, d]), device)
}

/// A `[n, d]` tensor from rows.
pub fn from_rows(rows: &[Vec<f64>], device: &Device) -> Tensor<2> {
    let d = rows.first().map_or(0, Vec::len);
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    from_flat(&flat, rows.len(), d, device)
}

/// The values of a tensor, row-major, as f64.
pub fn to_vec<const D: usize>(x: &Tensor<D>) -> Result<Vec<f64>> {
    let v: Vec<f32> = x
        .clone()
        .try_into_vec_as::<f32>()
        .map_err(|e| CoreError::Engine(format!("{e:?}")))?;
    Ok(v.into_iter().map(f64::from).collect())
}

/// The rows of a `[n, d]` tensor.
pub fn to_rows(x: &Tensor<2>) -> Result<Vec<Vec<f64>>> {
    let [_, d] = x.dims();
    Ok(to_vec(x)?.chunks(d.max(1)).map(<[f64]>::to_vec).collect())
}
