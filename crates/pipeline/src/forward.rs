//! The forward process (seeds 000, 004): data diffused step by step and by the closed-form
//! jump, batch by batch, with the states of the first samples for their paths.

use anyhow::{Result, bail};
use diffuse_core::tensor::{from_flat, to_vec};
use diffuse_core::{Mixture, NoiseSource, Schedule, device, forward};
use diffuse_data::Dataset;

use crate::report::Report;
use crate::run::{Watch, batches};
use crate::{dataset, eval, positive, schedule};

/// A forward run.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The data spec.
    pub data: String,
    /// The schedule spec.
    pub schedule: String,
    /// T.
    pub steps: usize,
    /// Stop after step B (default T).
    pub to: Option<usize>,
    /// Samples.
    pub n: usize,
    /// Samples per batch; the samples do not depend on it.
    pub batch: usize,
    /// Seed.
    pub seed: u64,
}

/// What a forward run produced.
pub struct Diffused {
    /// The data.
    pub data: Dataset,
    /// The schedule.
    pub schedule: Schedule,
    /// Step B.
    pub to: usize,
    /// The data x_0, row-major.
    pub x0: Vec<f64>,
    /// x_B step by step.
    pub stepped: Vec<f64>,
    /// x_B by one jump.
    pub jumped: Vec<f64>,
    /// q_B in closed form, when the data has one.
    pub theory: Option<Mixture>,
    /// Step by step against the jump and against q_B.
    pub report: Report,
}

/// Runs the forward process of `f`; `watch` hears every step's state.
pub fn diffuse(f: &Forward, watch: &mut dyn Watch) -> Result<Diffused> {
    let data = dataset(&f.data, watch)?;
    let sched = schedule(&f.schedule, f.steps)?;
    let to = f.to.unwrap_or(f.steps);
    if to > f.steps {
        bail!("--to {to} is past the schedule's last step {}", f.steps);
    }
    let n = positive("--n", f.n)?;
    positive("--batch", f.batch)?;
    let d = data.dim();
    // x_0, x_B stepped and jumped, and the samples written.
    crate::budget::check(&format!("--n {n}"), n as f64 * d as f64 * 8.0 * 4.0)?;
    let noise = NoiseSource::new(f.seed);
    let dev = device::default_device();
    let (mut x0_all, mut stepped, mut jumped) = (vec![], vec![], vec![]);
    let watching = watch.watches_states();
    watch.begin("forward", (n * to.max(1)) as u64);
    for rows in batches(n, f.batch) {
        let m = (rows.end - rows.start) as usize;
        let x0v = data.sample(&noise, rows.clone());
        let x0 = from_flat(&x0v, m, d, &dev);
        if watching {
            watch.state(&rows, 0.0, &x0)?;
        }
        let mut seen = Ok(());
        let x_b = forward::diffuse(x0.clone(), &sched, to, &noise, rows.clone(), &mut |t, x| {
            if watching && seen.is_ok() {
                seen = watch.state(&rows, t as f64, x);
            }
            if seen.is_ok() {
                seen = watch.advance(m as u64);
            }
        })?;
        seen?;
        let (x_j, _) = forward::jump(x0, &sched, to, &noise, rows)?;
        stepped.extend(to_vec(&x_b)?);
        jumped.extend(to_vec(&x_j)?);
        x0_all.extend(x0v);
    }
    watch.finish();
    let theory = data.analytic().map(|m| m.diffused(sched.alpha_bar(to)));
    let continuous = theory.as_ref().filter(|q| q.is_continuous());
    let report = eval::step_vs_closed_form(&stepped, &jumped, d, continuous, &noise);
    Ok(Diffused {
        data,
        schedule: sched,
        to,
        x0: x0_all,
        stepped,
        jumped,
        theory,
        report,
    })
}
