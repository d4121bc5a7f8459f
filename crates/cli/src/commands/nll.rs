//! `diffuse nll`: log-likelihoods by the probability-flow ODE (seed 004), of an exact mixture
//! denoiser (`--data`) or a trained model (`--model`).

use anyhow::{Context, Result, bail};
use diffuse_core::Denoiser;
use diffuse_core::likelihood::{Divergence, LikelihoodConfig};
use diffuse_pipeline::{Density, log_likelihoods, positive};

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
    let (density, source) = match (&a.model, &a.data) {
        (Some(dir), _) => (
            Density::of_model(dir)?,
            ("model", dir.display().to_string()),
        ),
        (None, Some(spec)) => (
            Density::of_data(
                spec,
                &a.schedule,
                a.steps,
                a.reference,
                a.common.seed,
                &mut watch,
            )?,
            ("data", spec.clone()),
        ),
        (None, None) => bail!("give --data SPEC or --model DIR"),
    };
    let dim = density.denoiser.dim();
    if d != dim {
        bail!(
            "{} has {d} columns but the {} has {dim} dimensions",
            a.samples.display(),
            source.0
        );
    }
    let result = log_likelihoods(
        &density,
        &table.values,
        d,
        config,
        a.batch,
        a.common.seed,
        &mut watch,
    )?;
    let mut out = Output::new(&a.common, "nll")?;
    out.set("samples", a.samples.display().to_string());
    out.set(source.0, source.1);
    out.set("schedule", density.schedule.name());
    out.set("steps", density.schedule.steps());
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
