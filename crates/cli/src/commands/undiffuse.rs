//! `diffuse undiffuse`: the reverse process driven by the exact denoiser of the data (seed 000's
//! `Undiffuse` with the ideal `GuessZ`; seed 004's reverse SDE and probability-flow ODE).

use anyhow::{Context, Result};
use diffuse_core::device;
use diffuse_pipeline::{Prior, Undiffusion, undiffuse};
use diffuse_plot::Hist;

use crate::args::{DEFAULT_STEPS, PriorName, UndiffuseArgs};
use crate::figures::{PathRecorder, density_map, guess_plot, histogram_with_theory, paths, versus};
use crate::output::Output;
use crate::progress::Bars;

fn parse_start(s: &str) -> Result<Vec<f64>> {
    s.split(',')
        .map(|t| t.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .with_context(|| format!("--start {s}: expected comma-separated finite numbers"))
}

/// `diffuse undiffuse`.
pub fn run(a: &UndiffuseArgs) -> Result<()> {
    let p = &a.diffusion;
    let prior = match (&a.start, a.prior) {
        (Some(s), _) => Prior::Point(parse_start(s)?),
        (None, PriorName::Normal) => Prior::Normal,
        (None, PriorName::Diffused) => Prior::Diffused,
    };
    // N(0, I) stands for x_T only when the data are diffused away: 200 steps of the default
    // linear schedule keep alpha-bar = 0.13, 1000 (DDPM's) keep 4e-5.
    let steps = p.steps.unwrap_or(match prior {
        Prior::Normal => 1000,
        _ => DEFAULT_STEPS,
    });
    let request = Undiffusion {
        data: p.data.clone(),
        schedule: p.schedule.clone(),
        steps,
        from: a.from,
        to: a.to,
        prior,
        n: p.n,
        batch: p.batch,
        sampler: a.sampling.spec()?,
        reference: a.reference,
        seed: a.common.seed,
        device: a.compute.device()?,
    };
    // Paths of the first samples (drawn in 1-D).
    let mut recorder = PathRecorder::new(p.trajectories.min(p.n));
    let u = {
        let mut watch = Bars::watching(Box::new(|rows, t, x| {
            recorder.record(rows.start as usize, t, x);
            Ok(())
        }));
        undiffuse(&request, &mut watch)?
    };
    let d = u.data.dim();
    let traj = recorder.finish()?;
    let name = a.sampling.name().as_str();
    let (from, to, n, nfe) = (u.from, a.to, u.x.len() / d, u.nfe);
    let mut out = Output::new(&a.common, "undiffuse")?;
    out.set("data", p.data.clone());
    out.set("schedule", u.schedule.name());
    out.set("steps", steps);
    out.set("sampler", name);
    out.report_settings(&u.fixed, &request.sampler);
    out.set("from", from);
    out.set("to", to);
    out.set(
        "prior",
        match &request.prior {
            Prior::Point(_) => "start point",
            Prior::Normal => "normal",
            Prior::Diffused => "diffused",
        },
    );
    out.set("n", n);
    out.set("seed", a.common.seed);
    out.set("nfe", nfe);
    if u.data.analytic().is_none() {
        out.set("exact_denoiser_reference_points", u.exact.weights().len());
    }
    out.samples(&u.x, d)?;
    out.report(u.report.clone());
    out.set("device", a.compute.name());
    versus(
        &out.path("compare.png"),
        &out.path("scatter.png"),
        &format!("Undiffused from {from} to {to} against diffused from 0 to {to}"),
        (&format!("undiffused {from} -> {to}"), &u.x),
        (&format!("diffused 0 -> {to}"), &u.reference),
        d,
        u.theory.as_ref(),
        &format!("q_{to}(x)"),
    )?;
    if d == 1 {
        let theory_label = format!("q_{to}(x)");
        histogram_with_theory(
            &out.path("histogram.png"),
            &format!("Undiffused to step {to} by {name} ({n} samples, {nfe} evaluations)"),
            vec![Hist {
                label: "undiffused".into(),
                values: u.x.clone(),
                color: 0,
            }],
            u.theory.as_ref(),
            &theory_label,
        )?;
        if !traj.is_empty() {
            paths(
                &out.path("paths.png"),
                &format!("{} reverse paths ({name})", traj.len()),
                "step t",
                &traj,
            )?;
        }
        guess_plot(
            &out.path("guess.png"),
            "Best guess of the noise z given x_t (exact denoiser)",
            &u.exact.denoiser(&device::default_device()),
            &u.schedule,
            from,
            &u.x,
            &u.reference,
        )?;
        if let Some(m) = u.data.analytic() {
            density_map(
                &out.path("heatmap.png"),
                m,
                &u.schedule,
                from,
                &traj,
                &u.reference,
            )?;
        }
    }
    out.finish()?;
    Ok(())
}
