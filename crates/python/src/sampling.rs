//! Sampling from Python: any denoiser (an exact mixture, a Python function, a trained model)
//! with any sampler, the undiffusion of a data set, and log-likelihoods.

use anyhow::Context;
use diffuse_core::likelihood::{Divergence, LikelihoodConfig};
use diffuse_core::samplers::{Fixed, GridKind, SamplerName, SamplerSpec, SigmaRange, Variance};
use diffuse_core::{Denoiser, device};
use diffuse_pipeline::{
    Density, Prior, Report, Undiffusion, log_likelihoods, sample_prior, schedule, undiffuse,
};
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;

use crate::arrays::{Array1, Array2, MixtureIn, matrix, rows, vector};
use crate::denoiser::PyDenoiser;
use crate::math::mixture;
use crate::watch::{OrValueError, Raised, detached, refuse};

/// A sampler as Python names it (a dict with the command line's option names).
#[derive(FromPyObject, Default)]
#[pyo3(from_item_all)]
pub struct SamplerOptions {
    pub sampler: Option<String>,
    pub nfe: Option<usize>,
    pub grid: Option<String>,
    pub eta: Option<f64>,
    pub churn: f64,
    pub grid_steps: Option<usize>,
    pub tol: f64,
    pub sigma_max: Option<f64>,
    pub sigma_min: Option<f64>,
    pub variance: String,
    pub ends: Option<String>,
}

impl SamplerOptions {
    /// The spec, with `name` and `nfe` where the user named no sampler.
    pub fn spec(&self, name: SamplerName, nfe: Option<usize>) -> anyhow::Result<SamplerSpec> {
        let named = self
            .sampler
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("sampler")?;
        Ok(SamplerSpec {
            variance: match self.variance.as_str() {
                "posterior" => Variance::Posterior,
                "beta" => Variance::Beta,
                v => anyhow::bail!("variance {v}: expected posterior or beta"),
            },
            grid: self
                .grid
                .as_deref()
                .map(GridKind::parse)
                .transpose()
                .context("grid")?,
            eta: self.eta,
            churn: self.churn,
            grid_steps: self.grid_steps,
            tol: self.tol,
            range: SigmaRange {
                max: self.sigma_max,
                min: self.sigma_min,
            },
            ends: self
                .ends
                .as_deref()
                .map(str::parse)
                .transpose()
                .context("ends")?,
            ..SamplerSpec::chosen(named, self.nfe, name, nfe)
        })
    }
}

/// The settings a run took (its grid, steps, budget), as JSON.
pub fn settings(fixed: &Fixed, spec: &SamplerSpec) -> String {
    let mut r = Report::new();
    r.settings(fixed.describe(spec));
    serde_json::Value::Object(r.into_map()).to_string()
}

/// Samples of an exact mixture (weights, means, stds) or of a Python function
/// `f(x, sigma) -> x0` of dimension `dim`, from N(0, I) at step T of the schedule down to 0.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn sample_denoiser<'py>(
    py: Python<'py>,
    mixture_arrays: Option<MixtureIn<'py>>,
    function: Option<Py<PyAny>>,
    dim: usize,
    schedule_spec: &str,
    steps: usize,
    options: SamplerOptions,
    n: usize,
    batch: usize,
    seed: u64,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Array2<'py>, usize, String)> {
    let sched = schedule(schedule_spec, steps).py()?;
    let spec = options.spec(SamplerName::DpmPP2M, None).py()?;
    let raised = Raised::default();
    let exact = match &mixture_arrays {
        Some((w, m, s)) => Some(mixture(w, m, s)?.denoiser(&device::default_device())),
        None => None,
    };
    let (drawn, d) = {
        let den: Box<dyn Denoiser + Send + Sync + '_> = match (exact, function) {
            (Some(e), _) => Box::new(e),
            (None, Some(f)) => Box::new(PyDenoiser {
                f,
                dim,
                raised: &raised,
            }),
            (None, None) => {
                return refuse("no denoiser given");
            }
        };
        let d = den.dim();
        let drawn = detached(py, progress, &raised, |w| {
            sample_prior(&*den, &sched, &spec, n, batch, seed, w)
        })?;
        (drawn, d)
    };
    let s = settings(&drawn.fixed, &spec);
    Ok((matrix(py, drawn.x, d)?, drawn.nfe, s))
}

/// `diffuse undiffuse`: the reverse process driven by the exact denoiser of a data spec.
/// Returns the samples x_B, a fresh draw of q_B, the evaluations of one batch, the report and
/// the sampler's settings (JSON).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn undiffuse_data<'py>(
    py: Python<'py>,
    data: String,
    schedule_spec: String,
    steps: usize,
    from: Option<usize>,
    to: usize,
    prior: &str,
    start: Option<Vec<f64>>,
    options: SamplerOptions,
    n: usize,
    batch: usize,
    reference: usize,
    seed: u64,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Array2<'py>, Array2<'py>, usize, String, String)> {
    let prior = match (start, prior) {
        (Some(p), _) => Prior::Point(p),
        (None, "normal") => Prior::Normal,
        (None, "diffused") => Prior::Diffused,
        (None, other) => {
            return refuse(format!("prior {other}: expected diffused or normal"));
        }
    };
    let request = Undiffusion {
        data,
        schedule: schedule_spec,
        steps,
        from,
        to,
        prior,
        n,
        batch,
        sampler: options.spec(SamplerName::Ddpm, None).py()?,
        reference,
        seed,
        device: diffuse_core::device::default_device(),
    };
    let raised = Raised::default();
    let u = detached(py, progress, &raised, |w| undiffuse(&request, w))?;
    let d = u.data.dim();
    let s = settings(&u.fixed, &request.sampler);
    let report = serde_json::Value::Object(u.report.into_map()).to_string();
    Ok((
        matrix(py, u.x, d)?,
        matrix(py, u.reference, d)?,
        u.nfe,
        report,
        s,
    ))
}

/// Where a density comes from.
pub enum DensityOf<'a> {
    /// A data spec's exact denoiser.
    Data(String),
    /// A mixture's.
    Mixture(diffuse_core::Mixture),
    /// A trained model, by its folder or shipped name (loaded again: a density owns its
    /// denoiser).
    Model(&'a std::path::Path),
}

/// log p(x) of every row of x under a density, by the probability-flow ODE: per-row values,
/// the evaluations, and the report (JSON).
#[allow(clippy::too_many_arguments)]
pub fn likelihoods<'py>(
    py: Python<'py>,
    of: DensityOf<'_>,
    x: PyReadonlyArray2<'py, f64>,
    schedule_spec: &str,
    steps: usize,
    probes: usize,
    ode_steps: usize,
    batch: usize,
    reference: usize,
    seed: u64,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Array1<'py>, usize, String)> {
    let (v, _, d) = rows(&x);
    diffuse_pipeline::positive("--batch", batch).py()?;
    let config = LikelihoodConfig {
        divergence: if probes == 0 {
            Divergence::Exact
        } else {
            Divergence::Hutchinson(probes)
        },
        steps: diffuse_pipeline::positive("--ode-steps", ode_steps).py()?,
        ..LikelihoodConfig::default()
    };
    let raised = Raised::default();
    let l = detached(py, progress, &raised, |w| {
        let density = match of {
            DensityOf::Data(spec) => {
                Density::of_data(&spec, schedule_spec, steps, reference, seed, w)?
            }
            DensityOf::Mixture(m) => Density {
                denoiser: Box::new(m.denoiser(&device::default_device())),
                device: device::default_device(),
                schedule: schedule(schedule_spec, steps)?,
                standardization: None,
                truth: m.is_continuous().then_some(m),
            },
            DensityOf::Model(source) => Density::of_model(source)?,
        };
        if density.denoiser.dim() != d {
            anyhow::bail!(
                "x has {d} columns, the density {} dimensions",
                density.denoiser.dim()
            );
        }
        log_likelihoods(&density, &v, d, config, batch, seed, w)
    })?;
    let report = serde_json::Value::Object(l.report.into_map()).to_string();
    Ok((vector(py, l.ll), l.nfe, report))
}

/// [`likelihoods`] of a data spec or a mixture.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn log_likelihood_of<'py>(
    py: Python<'py>,
    data: Option<String>,
    mixture_arrays: Option<MixtureIn<'py>>,
    x: PyReadonlyArray2<'py, f64>,
    schedule_spec: &str,
    steps: usize,
    probes: usize,
    ode_steps: usize,
    batch: usize,
    reference: usize,
    seed: u64,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Array1<'py>, usize, String)> {
    let of = match (data, mixture_arrays) {
        (Some(spec), _) => DensityOf::Data(spec),
        (None, Some((w, m, s))) => DensityOf::Mixture(mixture(&w, &m, &s)?),
        (None, None) => {
            return refuse("no density given");
        }
    };
    likelihoods(
        py,
        of,
        x,
        schedule_spec,
        steps,
        probes,
        ode_steps,
        batch,
        reference,
        seed,
        progress,
    )
}
