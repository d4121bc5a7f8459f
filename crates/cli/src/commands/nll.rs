//! `diffuse nll`: log-likelihoods by the probability-flow ODE (seed 004), of an exact mixture
//! denoiser (`--data`) or a trained model (`--model`).

use anyhow::{Context, Result, bail};
use diffuse_core::likelihood::{Divergence, LikelihoodConfig};
use diffuse_core::{Denoiser, NoiseSource, device};
use diffuse_pipeline::{dataset, load, log_likelihoods, positive, schedule};

use crate::args::NllArgs;
use crate::output::Output;
use crate::progress::Bars;

/// `diffuse nll`.
pub fn run(a: &NllArgs) -> Result<()> {
    positive("--ode-steps", a.ode_steps)?;
    positive("--batch", a.batch)?;
    let table = diffuse_data::read_csv(&a.samples).context("--samples")?;
    let d = table.dim();
    let config = LikelihoodConfig {
        divergence: if a.probes == 0 {
            Divergence::Exact
        } else {
            Divergence::Hutchinson(a.probes)
        },
        steps: a.ode_steps,
        ..LikelihoodConfig::default()
    };
    let mut watch = Bars::new();
    // The density: a trained model's, or the exact mixture denoiser of --data.
    let (result, source, sched_name, steps) = if let Some(dir) = &a.model {
        let model = load(dir)?;
        check_dim(a, d, "model", model.dim())?;
        let r = log_likelihoods(
            &model.denoiser,
            &model.schedule,
            Some(&model.record.standardization),
            None,
            &table.values,
            d,
            config,
            a.batch,
            a.common.seed,
            &mut watch,
        )?;
        let s = model.schedule;
        (
            r,
            ("model", dir.display().to_string()),
            s.name().to_string(),
            s.steps(),
        )
    } else {
        let spec = a
            .data
            .as_deref()
            .context("give --data SPEC or --model DIR")?;
        let data = dataset(spec, &mut watch)?;
        positive("--reference", a.reference)?;
        let exact = data.exact(a.reference, &NoiseSource::new(a.common.seed))?;
        let den = exact.denoiser(&device::default_device());
        check_dim(a, d, "data", den.dim())?;
        let sched = schedule(&a.schedule, a.steps)?;
        let truth = data.analytic().filter(|q| q.is_continuous());
        let r = log_likelihoods(
            &den,
            &sched,
            None,
            truth,
            &table.values,
            d,
            config,
            a.batch,
            a.common.seed,
            &mut watch,
        )?;
        (
            r,
            ("data", spec.to_string()),
            sched.name().to_string(),
            sched.steps(),
        )
    };
    let mut out = Output::new(a.common.out.as_deref(), "nll")?;
    out.set("samples", a.samples.display().to_string());
    out.set(source.0, source.1);
    out.set("schedule", sched_name);
    out.set("steps", steps);
    out.set(
        "divergence",
        if a.probes == 0 {
            "exact".to_string()
        } else {
            format!("hutchinson, {} probes", a.probes)
        },
    );
    out.set("ode_steps", a.ode_steps);
    out.report(result.report);
    diffuse_data::write_csv(&out.path("loglik.csv"), &result.ll, 1)?;
    out.finish_and_print()
}

fn check_dim(a: &NllArgs, d: usize, what: &str, dim: usize) -> Result<()> {
    if d != dim {
        bail!(
            "{} has {d} columns but the {what} has {dim} dimensions",
            a.samples.display()
        );
    }
    Ok(())
}
