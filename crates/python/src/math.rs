//! Schedules, the forward process, mixtures and their exact denoisers, metrics and MCMC chains:
//! thin calls into `diffuse-core` and the pipeline, arrays in and out.

use diffuse_core::mcmc::{self, Energy, Proposal};
use diffuse_core::tensor::{from_flat, to_vec};
use diffuse_core::{Mixture, NoiseSource, device, forward, metrics};
use diffuse_pipeline::{Watch, dataset, eval, positive, schedule};
use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::arrays::{Array1, Array2, matrix, rows, values, vector};
use crate::watch::{OrValueError, Raised, detached, refuse};

/// (name, betas for k = 1..T, alpha-bars for k = 0..T) of a schedule spec with T steps.
#[pyfunction]
pub fn schedule_tables<'py>(
    py: Python<'py>,
    spec: &str,
    steps: usize,
) -> PyResult<(String, Array1<'py>, Array1<'py>)> {
    let s = schedule(spec, steps).py()?;
    let betas = (1..=steps).map(|k| s.beta(k)).collect();
    let alpha_bars = (0..=steps).map(|k| s.alpha_bar(k)).collect();
    Ok((
        s.name().to_string(),
        vector(py, betas),
        vector(py, alpha_bars),
    ))
}

/// x_t from x_0 (rows 0..n) at step t, in one jump (returning the noise eps too) or step by step.
#[pyfunction]
pub fn forward_process<'py>(
    py: Python<'py>,
    x0: PyReadonlyArray2<'py, f64>,
    spec: &str,
    steps: usize,
    t: usize,
    seed: u64,
    closed_form: bool,
) -> PyResult<(Array2<'py>, Option<Array2<'py>>)> {
    let s = schedule(spec, steps).py()?;
    let (v, n, d) = rows(&x0);
    let dev = device::default_device();
    let x = from_flat(&v, n, d, &dev);
    let noise = NoiseSource::new(seed);
    let rows = 0..n as u64;
    if closed_form {
        let (xt, eps) = forward::jump(x, &s, t, &noise, rows).py()?;
        Ok((
            matrix(py, to_vec(&xt).py()?, d)?,
            Some(matrix(py, to_vec(&eps).py()?, d)?),
        ))
    } else {
        let xt = forward::diffuse(x, &s, t, &noise, rows, &mut |_, _| {}).py()?;
        Ok((matrix(py, to_vec(&xt).py()?, d)?, None))
    }
}

/// A mixture from its arrays.
pub fn mixture(
    weights: &PyReadonlyArray1<'_, f64>,
    means: &PyReadonlyArray2<'_, f64>,
    stds: &PyReadonlyArray1<'_, f64>,
) -> PyResult<Mixture> {
    let (m, _, d) = rows(means);
    let means = m.chunks(d.max(1)).map(<[f64]>::to_vec).collect();
    Mixture::new(values(weights), means, values(stds)).py()
}

/// A mixture's arrays (weights, means, stds).
pub fn mixture_arrays<'py>(
    py: Python<'py>,
    m: &Mixture,
) -> PyResult<(Array1<'py>, Array2<'py>, Array1<'py>)> {
    Ok((
        vector(py, m.weights().to_vec()),
        matrix(py, m.means().concat(), m.dim())?,
        vector(py, m.stds().to_vec()),
    ))
}

/// The mixture whose exact denoiser stands for a data spec: the spec's own mixture, or the
/// empirical law of `reference` points drawn with `seed`; and whether it is the spec's own.
#[pyfunction]
pub fn data_mixture<'py>(
    py: Python<'py>,
    spec: &str,
    reference: usize,
    seed: u64,
) -> PyResult<((Array1<'py>, Array2<'py>, Array1<'py>), bool)> {
    let raised = Raised::default();
    let data = detached(py, None, &raised, |w| dataset(spec, w))?;
    positive("--reference", reference).py()?;
    let m = data.exact(reference, &NoiseSource::new(seed)).py()?;
    Ok((mixture_arrays(py, &m)?, data.analytic().is_some()))
}

/// n samples (rows 0..n) of a data spec, as the command line draws its data.
#[pyfunction]
pub fn data_sample<'py>(py: Python<'py>, spec: &str, n: usize, seed: u64) -> PyResult<Array2<'py>> {
    let raised = Raised::default();
    let data = detached(py, None, &raised, |w| dataset(spec, w))?;
    positive("n", n).py()?;
    diffuse_pipeline::budget::check(&format!("n {n}"), n as f64 * data.dim() as f64 * 8.0).py()?;
    matrix(
        py,
        data.sample(&NoiseSource::new(seed), 0..n as u64),
        data.dim(),
    )
}

/// What a mixture answers at points x: "log_density", "score", or (with `alpha_bar`)
/// "denoise", the posterior mean E[x_0 | x_t = x].
#[pyfunction]
pub fn mixture_eval<'py>(
    py: Python<'py>,
    weights: PyReadonlyArray1<'py, f64>,
    means: PyReadonlyArray2<'py, f64>,
    stds: PyReadonlyArray1<'py, f64>,
    what: &str,
    x: PyReadonlyArray2<'py, f64>,
    alpha_bar: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let m = mixture(&weights, &means, &stds)?;
    let (v, _, d) = rows(&x);
    if d != m.dim() {
        return refuse(format!(
            "x has {d} columns, the mixture {} dimensions",
            m.dim()
        ));
    }
    let points = v.chunks(d.max(1));
    Ok(match what {
        "log_density" => vector(py, points.map(|p| m.log_density(p)).collect()).into_any(),
        "score" => matrix(py, points.flat_map(|p| m.score(p)).collect(), d)?.into_any(),
        "denoise" => {
            if !(alpha_bar > 0.0 && alpha_bar <= 1.0) {
                return refuse(format!("alpha_bar must be in (0, 1] (got {alpha_bar})"));
            }
            matrix(
                py,
                points
                    .flat_map(|p| m.posterior_mean(p, alpha_bar))
                    .collect(),
                d,
            )?
            .into_any()
        }
        other => {
            return refuse(format!("unknown mixture query '{other}'"));
        }
    })
}

/// n samples (rows 0..n) of a mixture.
#[pyfunction]
pub fn mixture_sample<'py>(
    py: Python<'py>,
    weights: PyReadonlyArray1<'py, f64>,
    means: PyReadonlyArray2<'py, f64>,
    stds: PyReadonlyArray1<'py, f64>,
    n: usize,
    seed: u64,
) -> PyResult<Array2<'py>> {
    let m = mixture(&weights, &means, &stds)?;
    positive("n", n).py()?;
    diffuse_pipeline::budget::check(&format!("n {n}"), n as f64 * m.dim() as f64 * 8.0).py()?;
    matrix(py, m.sample(&NoiseSource::new(seed), 0..n as u64), m.dim())
}

/// A mixture checked by the core (weights summing to 1, widths non-negative), as arrays.
#[pyfunction]
pub fn mixture_new<'py>(
    py: Python<'py>,
    weights: PyReadonlyArray1<'py, f64>,
    means: PyReadonlyArray2<'py, f64>,
    stds: PyReadonlyArray1<'py, f64>,
) -> PyResult<(Array1<'py>, Array2<'py>, Array1<'py>)> {
    mixture_arrays(py, &mixture(&weights, &means, &stds)?)
}

/// The mixture diffused to alpha-bar: q_t in closed form.
#[pyfunction]
pub fn mixture_diffused<'py>(
    py: Python<'py>,
    weights: PyReadonlyArray1<'py, f64>,
    means: PyReadonlyArray2<'py, f64>,
    stds: PyReadonlyArray1<'py, f64>,
    alpha_bar: f64,
) -> PyResult<(Array1<'py>, Array2<'py>, Array1<'py>)> {
    let m = mixture(&weights, &means, &stds)?;
    if !(alpha_bar > 0.0 && alpha_bar <= 1.0) {
        return refuse(format!("alpha_bar must be in (0, 1] (got {alpha_bar})"));
    }
    mixture_arrays(py, &m.diffused(alpha_bar))
}

/// A two-sample distance between samples a and b of dimension d: "energy" (the energy
/// distance), "sliced-wasserstein" (with `projections` directions drawn with `seed`), or "ks"
/// (1-D: the two-sample Kolmogorov-Smirnov statistic and p-value).
#[pyfunction]
pub fn distance(
    what: &str,
    a: PyReadonlyArray2<'_, f64>,
    b: PyReadonlyArray2<'_, f64>,
    projections: usize,
    seed: u64,
) -> PyResult<(f64, Option<f64>)> {
    let (a, _, d) = rows(&a);
    let (b, _, db) = rows(&b);
    if d != db {
        return refuse(format!("the samples have {d} and {db} columns"));
    }
    Ok(match what {
        "energy" => (metrics::energy_distance(&a, &b, d), None),
        "sliced-wasserstein" => {
            positive("projections", projections).py()?;
            let noise = NoiseSource::new(seed);
            (
                metrics::sliced_wasserstein(&a, &b, d, projections, &noise),
                None,
            )
        }
        "ks" => {
            if d != 1 {
                return refuse(format!(
                    "the Kolmogorov-Smirnov test compares 1-D samples (these have {d} columns)"
                ));
            }
            let t = metrics::ks_two_sample(&a, &b);
            (t.statistic, Some(t.p_value))
        }
        other => {
            return refuse(format!(
                "unknown distance '{other}' (expected energy, sliced-wasserstein or ks)"
            ));
        }
    })
}

/// Langevin (`proposal` None) or Metropolis chains on an energy, every chain from `start`:
/// the final states and the command line's report (as JSON).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn chains<'py>(
    py: Python<'py>,
    energy: &str,
    proposal: Option<&str>,
    chains: usize,
    steps: usize,
    delta: f64,
    start: f64,
    seed: u64,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Array1<'py>, String)> {
    positive("--chains", chains).py()?;
    positive("--steps", steps).py()?;
    diffuse_pipeline::budget::check(&format!("--chains {chains}"), chains as f64 * 8.0 * 5.0)
        .py()?;
    if !start.is_finite() {
        return refuse("--start must be a finite number");
    }
    let e = Energy::parse(energy)
        .map_err(anyhow::Error::from)
        .map_err(|e| e.context("--energy"))
        .py()?;
    let proposal = proposal
        .map(|p| Proposal::parse(p).map_err(|e| anyhow::Error::from(e).context("--proposal")))
        .transpose()
        .py()?;
    let raised = Raised::default();
    let (states, mut report) = detached(py, progress, &raised, |w| {
        let noise = NoiseSource::new(seed);
        let x0 = vec![start; chains];
        let rows = 0..chains as u64;
        w.begin(
            if proposal.is_some() {
                "metropolis"
            } else {
                "langevin"
            },
            steps as u64,
        );
        let mut stop: anyhow::Result<()> = Ok(());
        let mut on_step = |_: usize, _: &[f64]| {
            if stop.is_ok() {
                stop = w.advance(1);
            }
        };
        let mut report = diffuse_pipeline::Report::new();
        let states = match proposal {
            None => {
                let s = mcmc::langevin(&e, &x0, delta, steps, &noise, rows, &mut on_step)?;
                report.num("delta", delta);
                if let Some(v) = e.langevin_variance(delta) {
                    report.num("discretised_stationary_variance", v);
                }
                s
            }
            Some(p) => {
                let m = mcmc::metropolis(&e, &x0, p, steps, &noise, rows, &mut on_step)?;
                report.num("acceptance", m.acceptance());
                m.states
            }
        };
        stop?;
        w.finish();
        Ok((states, report))
    })?;
    report.extend(eval::against_stationary(&e, &states));
    let json = serde_json::Value::Object(report.into_map()).to_string();
    Ok((vector(py, states), json))
}
