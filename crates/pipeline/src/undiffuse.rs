//! The reverse process driven by the exact denoiser of the data (seed 000's `Undiffuse` with the
//! ideal `GuessZ`; seed 004's reverse SDE and probability-flow ODE), with the draws of q_B it
//! is judged against.

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};
use diffuse_core::samplers::{BatchNoise, Fixed, SamplerSpec};
use diffuse_core::tensor::{from_flat, to_vec};
use diffuse_core::{Mixture, NoiseSource, Schedule, device, forward};
use diffuse_data::Dataset;

use crate::report::Report;
use crate::run::{PILOT, Watch, fix, run_batches};
use crate::{dataset, eval, grid_choice, positive, schedule};

/// Above this alpha-bar at the start, N(0, I) is visibly not the diffused data (the data's mean
/// survives scaled by its square root: 0.1 of it here).
const NOT_DIFFUSED_AWAY: f64 = 0.01;

/// Where the reverse process starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Prior {
    /// Data diffused to step A in closed form (seed 000): the exact q_A.
    Diffused,
    /// N(0, I): the generative setting.
    Normal,
    /// Every sample at this point.
    Point(Vec<f64>),
}

/// An undiffusion request.
#[derive(Debug, Clone)]
pub struct Undiffusion {
    /// The data spec whose exact denoiser drives the run.
    pub data: String,
    /// The schedule spec.
    pub schedule: String,
    /// T, its steps.
    pub steps: usize,
    /// Start at step A (default T).
    pub from: Option<usize>,
    /// Stop at step B.
    pub to: usize,
    /// What x_A is.
    pub prior: Prior,
    /// Samples.
    pub n: usize,
    /// Samples per batch; the samples do not depend on it.
    pub batch: usize,
    /// The sampler.
    pub sampler: SamplerSpec,
    /// Size of the sample whose empirical distribution stands in for a toy data set.
    pub reference: usize,
    /// Seed of all randomness.
    pub seed: u64,
    /// Where the samples are drawn (the exact denoiser computes in f64 on the CPU and hands its
    /// results over).
    pub device: Device,
}

/// What an undiffusion produced.
pub struct Undiffused {
    /// The data.
    pub data: Dataset,
    /// The schedule.
    pub schedule: Schedule,
    /// The mixture whose exact denoiser ran.
    pub exact: Mixture,
    /// Step A.
    pub from: usize,
    /// The samples x_B, row-major.
    pub x: Vec<f64>,
    /// A fresh draw of q_B: data diffused to B in closed form.
    pub reference: Vec<f64>,
    /// q_B in closed form, when the data has one.
    pub theory: Option<Mixture>,
    /// Evaluations of one batch.
    pub nfe: usize,
    /// The sampler that ran, its grid fixed.
    pub fixed: Fixed,
    /// The measures of x_B against q_B.
    pub report: Report,
}

/// Runs the reverse process of `u`.
pub fn undiffuse(u: &Undiffusion, watch: &mut dyn Watch) -> Result<Undiffused> {
    let data = dataset(&u.data, watch)?;
    let sched = schedule(&u.schedule, u.steps)?;
    let from = u.from.unwrap_or(u.steps);
    if from > u.steps {
        bail!("--from {from} is past the schedule's last step {}", u.steps);
    }
    if u.to == from {
        bail!(
            "--from {from} and --to {}: the reverse process would run no step; start later \
             (--from up to --steps) or stop earlier",
            u.to
        );
    }
    if u.to > from {
        bail!(
            "--to {} must not be after --from {from}: the reverse process runs from A down to B",
            u.to
        );
    }
    let n = positive("--n", u.n)?;
    positive("--batch", u.batch)?;
    positive("--reference", u.reference)?;
    let d = data.dim();
    // The empirical stand-in for a toy data set: its points and their mixture.
    crate::budget::check(
        &format!("--reference {}", u.reference),
        u.reference as f64 * (d as f64 * 8.0 * 3.0 + 48.0),
    )?;
    // The samples, a reference draw of as many, and copies made while evaluating them.
    crate::budget::check(&format!("--n {n}"), n as f64 * d as f64 * 8.0 * 6.0)?;
    if let Prior::Point(p) = &u.prior
        && p.len() != d
    {
        bail!("--start has {} coordinates, the data has {d}", p.len());
    }
    let sampler = u.sampler.sampler(from - u.to, u.to)?;
    for w in u.sampler.unused() {
        watch.warn(&w);
    }
    let alpha_bar = sched.alpha_bar(from);
    if u.prior == Prior::Normal && alpha_bar > NOT_DIFFUSED_AWAY {
        watch.warn(&format!(
            "x_{from} is drawn from N(0, I), but {} keeps alpha-bar = {alpha_bar:.3} of the data \
             at step {from}: the samples can miss the data's law (more steps diffuse it away: \
             --steps 1000)",
            sched.name()
        ));
    }
    let noise = NoiseSource::new(u.seed);
    let dev = u.device.clone();
    let exact = data.exact(u.reference, &noise)?;
    let den = exact.denoiser(&dev);
    let nfe = u.sampler.budget(from - u.to)?;
    let choice = grid_choice::for_mixture(&u.sampler, sampler, nfe, &exact, u.to);
    let sampler = choice.sampler;

    // x_A for global rows `rows`: a given point, N(0, I), or data diffused to A in closed form.
    let mut start = |rows: std::ops::Range<u64>| -> Result<Tensor<2>> {
        let m = (rows.end - rows.start) as usize;
        Ok(match &u.prior {
            Prior::Point(p) => from_flat(&p.repeat(m), m, d, &dev),
            Prior::Normal => BatchNoise::new(noise, rows).prior(d, &dev),
            Prior::Diffused => {
                let x0 = from_flat(&data.sample(&noise, rows.clone()), m, d, &dev);
                forward::jump(x0, &sched, from, &noise, rows)?.0
            }
        })
    };
    // The pilot that fixes the grid (a fit of ~80,000 evaluations, or RK45's adaptive steps) runs
    // on the CPU: the exact denoiser computes there in f64 whatever the device, and handing every
    // evaluation to a device and back took 54 minutes on lavapipe for what the CPU does in
    // seconds. Every device then runs the same grid.
    let cpu = device::cpu();
    let pilot = start(0..n.min(PILOT) as u64)?.to_device(&cpu);
    let fixed = fix(
        &sampler,
        &exact.denoiser(&cpu),
        &sched,
        pilot,
        from,
        u.to,
        watch,
    )?;
    watch.begin("undiffuse", n as u64);
    let (x, nfe) = run_batches(
        &fixed.sampler,
        &den,
        &sched,
        from,
        u.to,
        0..n as u64,
        u.batch,
        noise,
        &mut start,
        watch,
    )?;
    watch.finish();
    // A reference draw of q_B: fresh data (rows n..2n) diffused to B in closed form.
    let reference = {
        let rows = n as u64..2 * n as u64;
        let x0 = from_flat(&data.sample(&noise, rows.clone()), n, d, &dev);
        to_vec(&forward::jump(x0, &sched, u.to, &noise, rows)?.0)?
    };
    let theory = data.analytic().map(|m| m.diffused(sched.alpha_bar(u.to)));
    let mut report = eval::against_marginal(&x, &reference, d, theory.as_ref(), u.to, &noise);
    if let Some(why) = choice.why {
        report.set("grid_choice", why);
    }
    if u.to == 0 && d > 1 {
        report.extend(eval::excess_energy_report(&x, d, &data, &noise));
    }
    Ok(Undiffused {
        data,
        schedule: sched,
        exact,
        from,
        x,
        reference,
        theory,
        nfe,
        fixed,
        report,
    })
}
