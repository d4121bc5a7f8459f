//! `diffuse converge`: each sampler's error against its number of denoiser evaluations, on a
//! distribution whose exact denoiser makes the truth known, with the fitted order.

use anyhow::{Result, bail};
use diffuse_core::metrics::{energy_distance, loglog_slope};
use diffuse_core::samplers::{self, BatchNoise, OdeMethod, Sampler, silent};
use diffuse_core::tensor::to_vec;
use diffuse_core::{NoiseSource, device};
use diffuse_plot::{Figure, Series, Style, lines};
use serde_json::json;

use super::undiffuse::sampler;
use super::{dataset, done, positive, schedule};
use crate::args::{ConvergeArgs, SamplerArgs, SamplerName, VarianceName};
use crate::output::Output;

/// The step where endpoint errors are measured: the grid's last level above 0, so that the
/// final jump to the denoised estimate does not mask the solver's order.
const ENDPOINT_STEP: usize = 1;

/// `diffuse converge`.
pub fn run(a: &ConvergeArgs) -> Result<()> {
    let data = dataset(&a.data)?;
    let sched = schedule(&a.schedule, a.steps)?;
    let n = positive("--n", a.n)?;
    if a.nfe.is_empty() || a.nfe.contains(&0) {
        bail!("--nfe needs evaluation budgets of at least 1");
    }
    if let Some(s) = a
        .samplers
        .iter()
        .find(|s| matches!(s, SamplerName::Ddpm | SamplerName::Sde | SamplerName::Ode))
    {
        bail!(
            "--samplers: {s:?} has no evaluation budget to vary; compare the fixed-step samplers"
        );
    }
    if a.grid == "fitted" || a.grid.starts_with("sigmas:") {
        bail!(
            "--grid {}: converge varies the budget over a family of grids (karras, exponential, ...); a fitted or given grid is for one budget (undiffuse, sample)",
            a.grid
        );
    }
    let noise = NoiseSource::new(a.common.seed);
    let dev = device::default_device();
    let d = data.dim();
    let exact = data.exact(a.reference, &noise)?;
    let den = exact.denoiser(&dev);
    let t = a.steps;
    let batch = BatchNoise::new(noise, 0..n as u64);
    let x_t = batch.prior(d, &dev);
    // The truth: a tight adaptive solve from the same noise, and exact samples for the law.
    let tight = Sampler::Ode {
        method: OdeMethod::Rk45 {
            rtol: 1e-7,
            atol: 1e-7,
        },
    };
    let (reference_end, _) = samplers::run(
        &tight,
        &den,
        &sched,
        x_t.clone(),
        t,
        ENDPOINT_STEP,
        &batch,
        &mut silent,
    )?;
    let reference_end = to_vec(&reference_end)?;
    let truth = data.sample(&noise, n as u64..2 * n as u64);
    let mut out = Output::new(a.common.out.as_deref(), "converge")?;
    let mut results = serde_json::Map::new();
    let (mut err_series, mut ed_series) = (vec![], vec![]);
    let bar = crate::progress::bar((a.samplers.len() * a.nfe.len()) as u64, "converge");
    for (c, name) in a.samplers.iter().enumerate() {
        let choice = SamplerArgs {
            sampler: *name,
            variance: VarianceName::Posterior,
            nfe: None,
            grid: Some(if *name == SamplerName::Ddim {
                "trailing".into()
            } else {
                a.grid.clone()
            }),
            eta: None,
            churn: 0.0,
            grid_steps: None,
            tol: 1e-5,
            sigma_max: None,
            sigma_min: None,
        };
        let deterministic = *name != SamplerName::EulerAncestral;
        let (mut nfes, mut errors, mut eds) = (vec![], vec![], vec![]);
        for budget in &a.nfe {
            let choice = SamplerArgs {
                nfe: Some(*budget),
                ..choice.clone()
            };
            let (end, used) = samplers::run(
                &sampler(&choice, t - ENDPOINT_STEP, ENDPOINT_STEP)?,
                &den,
                &sched,
                x_t.clone(),
                t,
                ENDPOINT_STEP,
                &batch,
                &mut silent,
            )?;
            let end = to_vec(&end)?;
            let err = end
                .iter()
                .zip(&reference_end)
                .map(|(p, q)| (p - q).abs())
                .sum::<f64>()
                / end.len() as f64;
            let (x0, _) = samplers::run(
                &sampler(&choice, t, 0)?,
                &den,
                &sched,
                x_t.clone(),
                t,
                0,
                &batch,
                &mut silent,
            )?;
            let ed = energy_distance(&to_vec(&x0)?, &truth, d);
            nfes.push(used as f64);
            errors.push(err);
            eds.push(ed);
            bar.inc(1);
        }
        let label = super::undiffuse::sampler_name(&choice);
        let order = if deterministic {
            -loglog_slope(&nfes, &errors)
        } else {
            f64::NAN
        };
        results.insert(
            label.clone(),
            json!({
                "nfe": nfes,
                "endpoint_error": if deterministic { json!(errors) } else { serde_json::Value::Null },
                "energy_distance": eds,
                "order": if order.is_finite() { json!(order) } else { serde_json::Value::Null },
            }),
        );
        if deterministic {
            let pts = nfes
                .iter()
                .zip(&errors)
                .map(|(x, y)| (x.log10(), y.max(1e-300).log10()))
                .collect();
            err_series.push(Series::line(format!("{label} (order {order:.2})"), pts, c));
        }
        let pts = nfes
            .iter()
            .zip(&eds)
            .map(|(x, y)| (x.log10(), *y))
            .collect();
        ed_series.push(Series::line(label, pts, c).styled(Style::Line(2)));
    }
    bar.finish_and_clear();
    out.set("data", a.data.clone());
    out.set("schedule", sched.name());
    out.set("steps", a.steps);
    out.set("grid", a.grid.clone());
    out.set("n", n);
    out.set("endpoint_step", ENDPOINT_STEP);
    out.set("exact_energy_distance_n", truth.len() / d);
    out.set("samplers", serde_json::Value::Object(results));
    lines(
        &out.path("orders.png"),
        &Figure::new(
            format!(
                "Endpoint error against evaluations ({}, exact denoiser)",
                a.data
            ),
            "log10 NFE",
            "log10 mean |x - x_ref| at the last step",
        ),
        &err_series,
    )?;
    lines(
        &out.path("energy.png"),
        &Figure::new(
            format!("Energy distance to exact samples ({})", a.data),
            "log10 NFE",
            "energy distance",
        ),
        &ed_series,
    )?;
    done(&out.finish()?);
    Ok(())
}
