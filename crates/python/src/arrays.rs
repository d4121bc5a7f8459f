//! NumPy arrays in and out. The Python layer has already made inputs float64 and checked their
//! shapes and values; any layout (a transposed or strided view) is read here in logical order.

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

/// A float64 vector handed to Python.
pub type Array1<'py> = Bound<'py, PyArray1<f64>>;
/// A float64 matrix handed to Python.
pub type Array2<'py> = Bound<'py, PyArray2<f64>>;
/// A mixture's arrays from Python: weights, means, stds.
pub type MixtureIn<'py> = (
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray2<'py, f64>,
    PyReadonlyArray1<'py, f64>,
);

/// A 2-D array as row-major values, rows and columns.
pub fn rows(a: &PyReadonlyArray2<'_, f64>) -> (Vec<f64>, usize, usize) {
    let v = a.as_array();
    let (n, d) = v.dim();
    (v.iter().copied().collect(), n, d)
}

/// A 1-D array as values.
pub fn values(a: &PyReadonlyArray1<'_, f64>) -> Vec<f64> {
    a.as_array().iter().copied().collect()
}

/// Row-major values of width `d` as an `[n, d]` array.
pub fn matrix(py: Python<'_>, v: Vec<f64>, d: usize) -> PyResult<Bound<'_, PyArray2<f64>>> {
    let n = v.len() / d.max(1);
    PyArray1::from_vec(py, v).reshape([n, d])
}

/// Values as a 1-D array.
pub fn vector(py: Python<'_>, v: Vec<f64>) -> Bound<'_, PyArray1<f64>> {
    PyArray1::from_vec(py, v)
}
