//! The seeds' experiments behind the page's sliders: chains of Langevin or Metropolis against
//! exp(-E)/Z (seed 000), the forward process against its closed-form marginal (seeds 000, 004),
//! undiffusion with the exact denoiser (seed 000's `Undiffuse`, seed 004's samplers) and the
//! ideal noise guess against x_t (seed 000's `GuessZ`). Each answers one request with the
//! numbers a plot needs; the page draws them. The math is the pipeline's and the core's.

use std::ops::Range;

use anyhow::{Context, Result, bail};
use burn::tensor::Tensor;
use diffuse_core::mcmc::{self, Energy, Proposal};
use diffuse_core::samplers::{GridKind, SamplerName, SamplerSpec, level_at_step};
use diffuse_core::tensor::{from_flat, to_vec};
use diffuse_core::{Denoiser, Mixture, NoiseSource, device};
use diffuse_pipeline::{Forward, Prior, Silent, Undiffusion, Watch, diffuse, eval, undiffuse};
use diffuse_plot::{density, padded_range};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::limits::Limits;

/// Chains (or samples) whose whole path is returned.
const PATHS: usize = 8;
/// Points per returned path, at most.
const PATH_POINTS: usize = 300;
/// Histogram bins.
const BINS: usize = 60;
/// Points of a density curve.
const CURVE: usize = 300;

fn default_energy() -> String {
    "quadratic".into()
}
fn default_proposal() -> String {
    "gaussian:1.0".into()
}
fn default_data() -> String {
    "delta:-2,2".into()
}
fn default_schedule() -> String {
    "linear:1e-4:0.02".into()
}
fn default_t() -> usize {
    200
}
fn default_n() -> usize {
    5000
}

/// `GET /api/seed/chains`: Langevin or Metropolis chains (seed 000).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chains {
    /// `langevin` or `metropolis`.
    #[serde(default = "langevin")]
    pub method: String,
    #[serde(default = "default_energy")]
    pub energy: String,
    /// Langevin's step.
    #[serde(default = "delta")]
    pub delta: f64,
    /// Metropolis's proposal.
    #[serde(default = "default_proposal")]
    pub proposal: String,
    #[serde(default = "steps")]
    pub steps: usize,
    #[serde(default = "default_chains")]
    pub chains: usize,
    #[serde(default)]
    pub start: f64,
    #[serde(default)]
    pub seed: u64,
}

fn langevin() -> String {
    "langevin".into()
}
fn delta() -> f64 {
    0.01
}
fn steps() -> usize {
    1000
}
fn default_chains() -> usize {
    2000
}

/// `GET /api/seed/forward`, `/api/seed/undiffuse` and `/api/seed/guess`: data, a schedule and
/// the step to look at (seeds 000 and 004).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diffusion {
    #[serde(default = "default_data")]
    pub data: String,
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// T.
    #[serde(default = "default_t")]
    pub steps: usize,
    /// The step shown (forward: how far; guess: which x_t); default T.
    #[serde(default)]
    pub t: Option<usize>,
    #[serde(default = "default_n")]
    pub n: usize,
    #[serde(default)]
    pub seed: u64,
    /// Undiffusion: the sampler, its budget and grid.
    #[serde(default)]
    pub sampler: Option<String>,
    #[serde(default)]
    pub nfe: Option<usize>,
    #[serde(default)]
    pub grid: Option<String>,
    /// Undiffusion: `diffused` (the data diffused to T, seed 000) or `normal`.
    #[serde(default)]
    pub prior: Option<String>,
}

/// The data a page may name: point masses or seed 000's four points. Specs that read files
/// (csv:, gmm:, image sets) stay with the command line, so that a page, which may be reached from
/// another machine, never opens a file of the server's.
fn page_data(spec: &str) -> Result<&str> {
    if spec.starts_with("delta:") || spec == "mixture1d" {
        return Ok(spec);
    }
    bail!(
        "data: '{spec}': these pages take delta:V[,V...] or mixture1d (files are for the command line)"
    );
}

/// Refuses a count outside 1..=max, naming it.
fn within(name: &str, v: usize, max: usize) -> Result<usize> {
    if v == 0 || v > max {
        bail!("{name}: {v} is outside 1..={max}");
    }
    Ok(v)
}

/// A histogram of `values` over `[lo, hi]`.
fn hist(values: &[f64], lo: f64, hi: f64) -> Value {
    json!({ "lo": lo, "hi": hi, "density": density(values, lo, hi, BINS) })
}

/// `f` on `CURVE` points of `[lo, hi]`.
fn curve(lo: f64, hi: f64, f: impl Fn(f64) -> f64) -> Vec<[f64; 2]> {
    (0..CURVE)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / (CURVE - 1) as f64;
            [x, f(x)]
        })
        .collect()
}

/// Keeps at most [`PATH_POINTS`] points of each path, the first and the last among them.
fn thin(paths: Vec<Vec<[f64; 2]>>) -> Vec<Vec<[f64; 2]>> {
    paths
        .into_iter()
        .map(|p| {
            let every = p.len().div_ceil(PATH_POINTS).max(1);
            let last = p.last().copied();
            let mut kept: Vec<[f64; 2]> = p.into_iter().step_by(every).collect();
            if let Some(l) = last
                && kept.last() != Some(&l)
            {
                kept.push(l);
            }
            kept
        })
        .collect()
}

/// A report as JSON, with its non-finite numbers as null.
fn numbers(report: diffuse_pipeline::Report) -> Value {
    Value::Object(report.into_map())
}

/// Runs chains and compares their final states with exp(-E)/Z.
pub fn chains(q: &Chains, limits: &Limits) -> Result<Value> {
    within("chains", q.chains, limits.chains)?;
    within("steps", q.steps, limits.work / q.chains.max(1))
        .context("chains x steps is the work of a request")?;
    if !q.start.is_finite() {
        bail!("start: must be a finite number");
    }
    let energy = Energy::parse(&q.energy).context("energy")?;
    let noise = NoiseSource::new(q.seed);
    let k = PATHS.min(q.chains);
    let mut paths: Vec<Vec<[f64; 2]>> = (0..k).map(|_| vec![[0.0, q.start]]).collect();
    let mut record = |step: usize, x: &[f64]| {
        for (p, v) in paths.iter_mut().zip(x) {
            p.push([step as f64, *v]);
        }
    };
    let starts = vec![q.start; q.chains];
    let rows = 0..q.chains as u64;
    let (states, extra) = match q.method.as_str() {
        "langevin" => {
            let s = mcmc::langevin(
                &energy,
                &starts,
                q.delta,
                q.steps,
                &noise,
                rows,
                &mut record,
            )
            .context("delta")
            .map_err(strip_flags)?;
            (s, json!({ "delta": q.delta }))
        }
        "metropolis" => {
            let proposal = Proposal::parse(&q.proposal).context("proposal")?;
            let m = mcmc::metropolis(
                &energy,
                &starts,
                proposal,
                q.steps,
                &noise,
                rows,
                &mut record,
            )
            .context("start")
            .map_err(strip_flags)?;
            m.check_moved(&q.proposal).context("proposal")?;
            let rate = m.acceptance();
            (m.states, json!({ "acceptance": rate }))
        }
        m => bail!("method: '{m}' is not langevin or metropolis"),
    };
    let (lo, hi) = padded_range(states.iter().copied().chain([-2.5, 2.5]));
    let (lo, hi) = (lo.max(-50.0), hi.min(50.0));
    Ok(json!({
        "histogram": hist(&states, lo, hi),
        "theory": curve(lo, hi, |x| energy.stationary_density(x)),
        "paths": thin(paths),
        "stats": numbers(eval::against_stationary(&energy, &states)),
        "extra": extra,
    }))
}

/// The data's 1-D closed form, or an error saying the page needs one.
fn one_dimensional(d: usize) -> Result<()> {
    if d != 1 {
        bail!("data: these pages draw 1-D data (mixture1d, delta:V,...); this has {d} dimensions");
    }
    Ok(())
}

/// The density of a 1-D mixture at x.
fn mixture_density(m: &Mixture, x: f64) -> f64 {
    m.log_density(&[x]).exp()
}

/// The density of a closed-form marginal on `[lo, hi]`, when it has one (point masses do not).
fn density_curve(theory: Option<&Mixture>, lo: f64, hi: f64) -> Option<Vec<[f64; 2]>> {
    theory
        .filter(|m| m.is_continuous())
        .map(|m| curve(lo, hi, |x| mixture_density(m, x)))
}

/// Diffuses the data to step t, step by step, against the closed-form marginal q_t.
pub fn forward(q: &Diffusion, limits: &Limits) -> Result<Value> {
    within("steps", q.steps, limits.steps)?;
    within("n", q.n, limits.chains)?;
    let t = q.t.unwrap_or(q.steps);
    within("t", t.max(1), q.steps)?;
    let f = Forward {
        data: page_data(&q.data)?.to_string(),
        schedule: q.schedule.clone(),
        steps: q.steps,
        to: Some(t),
        n: q.n,
        batch: q.n,
        seed: q.seed,
    };
    let mut paths = Paths::new(PATHS.min(q.n));
    let run = diffuse(&f, &mut paths).map_err(strip_flags)?;
    one_dimensional(run.data.dim())?;
    let (lo, hi) = padded_range(run.stepped.iter().chain(&run.x0).copied());
    let theory = density_curve(run.theory.as_ref(), lo, hi);
    Ok(json!({
        "histogram": hist(&run.stepped, lo, hi),
        "data": hist(&run.x0, lo, hi),
        "theory": theory,
        "paths": thin(paths.finish()),
        "alpha_bar": run.schedule.alpha_bar(t),
        "stats": numbers(run.report),
    }))
}

/// Runs the reverse process with the data's exact denoiser, from step T to 0.
pub fn undiffusion(q: &Diffusion, limits: &Limits) -> Result<Value> {
    within("steps", q.steps, limits.steps)?;
    within("n", q.n, limits.chains)?;
    let name: SamplerName = match q.sampler.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.parse().context("sampler")?,
        None => SamplerName::Ddpm,
    };
    let mut spec = SamplerSpec::new(name);
    if name.has_budget() {
        spec.nfe = q.nfe.map(|k| within("nfe", k, limits.steps)).transpose()?;
    }
    spec.grid = match q.grid.as_deref().filter(|g| !g.is_empty()) {
        Some(g) if name.on_sigma_grid() || name == SamplerName::Ddim => {
            Some(GridKind::parse(g).context("grid")?)
        }
        _ => None,
    };
    let prior = match q.prior.as_deref().unwrap_or("diffused") {
        "diffused" => Prior::Diffused,
        "normal" => Prior::Normal,
        p => bail!("prior: '{p}' is not diffused or normal"),
    };
    let u = Undiffusion {
        data: page_data(&q.data)?.to_string(),
        schedule: q.schedule.clone(),
        steps: q.steps,
        from: None,
        to: 0,
        prior,
        n: q.n,
        batch: q.n,
        sampler: spec,
        reference: 2000,
        seed: q.seed,
        device: device::default_device(),
    };
    let mut paths = Paths::new(PATHS.min(q.n));
    let run = undiffuse(&u, &mut paths).map_err(strip_flags)?;
    one_dimensional(run.data.dim())?;
    let (lo, hi) = padded_range(run.x.iter().chain(&run.reference).copied());
    let theory = density_curve(run.theory.as_ref(), lo, hi);
    Ok(json!({
        "histogram": hist(&run.x, lo, hi),
        "reference": hist(&run.reference, lo, hi),
        "theory": theory,
        "paths": thin(paths.finish()),
        "nfe": run.nfe,
        "stats": numbers(run.report),
    }))
}

/// The ideal guess of the noise z given x_t, E[z | x_t], from the data's exact denoiser, with
/// the density of x_t under it.
pub fn guess(q: &Diffusion, limits: &Limits) -> Result<Value> {
    within("steps", q.steps, limits.steps)?;
    let t = q.t.unwrap_or(q.steps);
    within("t", t, q.steps)?;
    let data = diffuse_pipeline::dataset(page_data(&q.data)?, &mut Silent)?;
    one_dimensional(data.dim())?;
    let sched = diffuse_pipeline::schedule(&q.schedule, q.steps).map_err(strip_flags)?;
    let noise = NoiseSource::new(q.seed);
    let exact = data.exact(2000, &noise)?;
    let dev = device::default_device();
    let den = exact.denoiser(&dev);
    let marginal = exact.diffused(sched.alpha_bar(t));
    let spread = (marginal
        .means()
        .iter()
        .map(|m| m[0].abs())
        .fold(0.0, f64::max)
        + 3.0)
        .max(3.0);
    let (lo, hi) = (-spread, spread);
    let xs: Vec<f64> = curve(lo, hi, |x| x).iter().map(|p| p[0]).collect();
    let xt = from_flat(&xs, xs.len(), 1, &dev);
    let eps = to_vec(&den.predict(&xt, level_at_step(&sched, t))?.eps())?;
    let guess: Vec<[f64; 2]> = xs.iter().zip(&eps).map(|(x, e)| [*x, *e]).collect();
    let density: Vec<[f64; 2]> = xs
        .iter()
        .map(|&x| [x, mixture_density(&marginal, x)])
        .collect();
    Ok(json!({
        "guess": guess,
        "density": density,
        "alpha_bar": sched.alpha_bar(t),
        // Where x_t carries no information the best guess is x_t / sqrt(1 - alpha-bar) times
        // the share of variance that is noise; the line the guess would follow if the data were
        // one point at 0.
        "slope_at_point_data": 1.0 / (1.0 - sched.alpha_bar(t)).sqrt(),
    }))
}

/// The pipeline's errors name command-line flags; the page's fields have the same names
/// without the dashes.
fn strip_flags(e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("{}", format!("{e:#}").replace("--", ""))
}

/// Records the first samples' paths through the watch's states.
struct Paths {
    k: usize,
    paths: Vec<Vec<[f64; 2]>>,
}

impl Paths {
    fn new(k: usize) -> Self {
        Self {
            k,
            paths: vec![vec![]; k],
        }
    }

    fn finish(self) -> Vec<Vec<[f64; 2]>> {
        self.paths
    }
}

impl Watch for Paths {
    fn watches_states(&self) -> bool {
        self.k > 0
    }

    fn state(&mut self, rows: &Range<u64>, t: f64, x: &Tensor<2>) -> Result<()> {
        if rows.start as usize >= self.k {
            return Ok(());
        }
        let [m, d] = x.dims();
        let keep = (self.k - rows.start as usize).min(m);
        if d != 1 || keep == 0 {
            return Ok(());
        }
        let v = to_vec(&x.clone().narrow(0, 0, keep))?;
        for (i, value) in v.into_iter().enumerate() {
            self.paths[rows.start as usize + i].push([t, value]);
        }
        Ok(())
    }
}
