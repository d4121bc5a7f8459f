//! # diffuse-python
//!
//! The native module `diffuse._diffuse` under the Python package `diffuse` (python/diffuse):
//! each function is a thin call into the pipeline layer or the core, NumPy arrays in and out.
//! The Python package gives them their user-facing names, defaults and docstrings.

mod arrays;
mod denoiser;
mod math;
mod models;
mod sampling;
mod watch;

use pyo3::prelude::*;

#[pymodule]
fn _diffuse(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(math::schedule_tables, m)?)?;
    m.add_function(wrap_pyfunction!(math::forward_process, m)?)?;
    m.add_function(wrap_pyfunction!(math::data_mixture, m)?)?;
    m.add_function(wrap_pyfunction!(math::data_sample, m)?)?;
    m.add_function(wrap_pyfunction!(math::mixture_eval, m)?)?;
    m.add_function(wrap_pyfunction!(math::mixture_new, m)?)?;
    m.add_function(wrap_pyfunction!(math::mixture_sample, m)?)?;
    m.add_function(wrap_pyfunction!(math::mixture_diffused, m)?)?;
    m.add_function(wrap_pyfunction!(math::distance, m)?)?;
    m.add_function(wrap_pyfunction!(math::chains, m)?)?;
    m.add_function(wrap_pyfunction!(sampling::sample_denoiser, m)?)?;
    m.add_function(wrap_pyfunction!(sampling::undiffuse_data, m)?)?;
    m.add_function(wrap_pyfunction!(sampling::log_likelihood_of, m)?)?;
    m.add_function(wrap_pyfunction!(models::train_model, m)?)?;
    m.add_function(wrap_pyfunction!(models::shipped_pipelines, m)?)?;
    m.add_class::<models::NativeModel>()?;
    m.add_class::<models::NativeStableDiffusion>()?;
    Ok(())
}
