//! A Python function as a denoiser, so that diffuse's samplers and grids run over any model a
//! user brings (a PyTorch network), as k-diffusion's samplers take any callable.

use burn::tensor::Tensor;
use diffuse_core::denoiser::check_dim;
use diffuse_core::tensor::{from_flat, to_vec};
use diffuse_core::{CoreError, Denoiser, Level, Prediction, Target};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::watch::Raised;

/// `f(x, sigma) -> x0` in k-diffusion's convention: x = x_0 + sigma eps (the variance-exploding
/// scaling, x = x_t / sqrt(alpha-bar)) of shape `[n, dim]`, and its estimate of x_0, shaped alike.
pub struct PyDenoiser<'a> {
    pub f: Py<PyAny>,
    pub dim: usize,
    pub raised: &'a Raised,
}

impl Denoiser for PyDenoiser<'_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> diffuse_core::Result<Prediction> {
        check_dim(x, self.dim)?;
        let [n, d] = x.dims();
        let signal = level.signal();
        let x_ve: Vec<f64> = to_vec(x)?.into_iter().map(|v| v / signal).collect();
        let x0 = Python::attach(|py| -> PyResult<Vec<f64>> {
            let x = PyArray1::from_vec(py, x_ve).reshape([n, d])?;
            let out = self.f.call1(py, (x, level.sigma()))?;
            let out: PyReadonlyArray2<f64> = out.extract(py)?;
            Ok(out.as_array().iter().copied().collect())
        })
        .map_err(|e| CoreError::Invalid(format!("{:#}", self.raised.keep(e))))?;
        Ok(Prediction {
            target: Target::X0,
            value: from_flat(&x0, n, d, &x.device()),
            x: x.clone(),
            level,
        })
    }
}
