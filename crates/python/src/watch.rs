//! Progress, warnings and Ctrl-C for a run started from Python: the run goes on without the GIL
//! and takes it back only to call the progress callback and to check for signals.

use std::sync::Mutex;

use anyhow::{Result, anyhow};
use burn::tensor::Tensor;
use diffuse_pipeline::Watch;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The first Python exception raised while a run was detached (Ctrl-C, a failing progress
/// callback or denoiser): the run stops with a marker error and this is what Python sees.
#[derive(Default)]
pub struct Raised(Mutex<Option<PyErr>>);

impl Raised {
    /// Keeps `err` (the first one wins) and returns the error that stops the run.
    pub fn keep(&self, err: PyErr) -> anyhow::Error {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(err);
        }
        anyhow!("stopped from Python")
    }

    fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A [`Watch`] that reports to a Python callable `progress(what, done, total)`.
pub struct PyWatch<'a> {
    callback: Option<Py<PyAny>>,
    raised: &'a Raised,
    what: String,
    done: u64,
    total: u64,
    warnings: Vec<String>,
}

impl<'a> PyWatch<'a> {
    pub fn new(callback: Option<Py<PyAny>>, raised: &'a Raised) -> Self {
        Self {
            callback,
            raised,
            what: String::new(),
            done: 0,
            total: 0,
            warnings: vec![],
        }
    }

    /// Checks for Ctrl-C and tells the callback; an exception stops the run.
    fn tell(&mut self) -> Result<()> {
        Python::attach(|py| {
            py.check_signals()?;
            if let Some(cb) = &self.callback {
                cb.call1(py, (self.what.as_str(), self.done, self.total))?;
            }
            Ok(())
        })
        .map_err(|e| self.raised.keep(e))
    }
}

impl Watch for PyWatch<'_> {
    fn begin(&mut self, what: &str, total: u64) {
        (self.what, self.done, self.total) = (what.to_string(), 0, total);
    }

    fn advance(&mut self, units: u64) -> Result<()> {
        self.done += units;
        self.tell()
    }

    // Called after every sampler step: the one place inside a batch where Ctrl-C is heard.
    fn state(&mut self, _rows: &std::ops::Range<u64>, _t: f64, _x: &Tensor<2>) -> Result<()> {
        Python::attach(|py| py.check_signals()).map_err(|e| self.raised.keep(e))
    }

    fn watches_states(&self) -> bool {
        true
    }

    fn warn(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
}

/// Runs `work` without the GIL, reporting to `progress`; its error becomes the Python exception
/// raised during the run (KeyboardInterrupt, the callback's), else a ValueError with the same
/// one-line message the command line prints. Warnings become Python `UserWarning`s.
pub fn detached<T: Send>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    raised: &Raised,
    work: impl FnOnce(&mut PyWatch<'_>) -> Result<T> + Send,
) -> PyResult<T> {
    let mut watch = PyWatch::new(progress, raised);
    let out = py.detach(|| work(&mut watch));
    for w in &watch.warnings {
        let message = std::ffi::CString::new(w.replace('\0', " ")).unwrap_or_default();
        PyErr::warn(
            py,
            &py.get_type::<pyo3::exceptions::PyUserWarning>(),
            &message,
            1,
        )?;
    }
    out.map_err(|e| raised.take().unwrap_or_else(|| value_error(&e)))
}

/// An error as Python sees it: ValueError with the command line's one-line message.
fn value_error(e: &anyhow::Error) -> PyErr {
    PyValueError::new_err(format!("{e:#}"))
}

/// `?` on anything anyhow takes, as a ValueError.
pub trait OrValueError<T> {
    fn py(self) -> PyResult<T>;
}

impl<T, E: Into<anyhow::Error>> OrValueError<T> for std::result::Result<T, E> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| value_error(&e.into()))
    }
}

/// Refuses a request with a ValueError carrying `message`.
pub fn refuse<T>(message: impl Into<String>) -> PyResult<T> {
    Err(PyValueError::new_err(message.into()))
}

/// The device `device=` names (`auto`, `cpu`, `wgpu`, `cuda:1`, ...), or a ValueError naming
/// it and what this build runs on.
pub fn device(spec: &str) -> PyResult<burn::tensor::Device> {
    diffuse_core::device::parse(spec)
        .map_err(|e| PyValueError::new_err(e.to_string().replacen("--device ", "device=", 1)))
}
