//! `diffuse langevin` and `diffuse metropolis`: chains whose stationary law is exp(-E) (seed 000).

use anyhow::{Context, Result};
use diffuse_core::NoiseSource;
use diffuse_core::mcmc::{self, Energy, Proposal};
use diffuse_pipeline::{eval, positive};
use diffuse_plot::{Figure, Hist, Series, histogram};

use crate::args::{ChainArgs, LangevinArgs, MetropolisArgs};
use crate::figures::{grid, paths};
use crate::output::Output;

/// Records the first `k` chains at every step.
struct Recorder {
    k: usize,
    paths: Vec<Vec<(f64, f64)>>,
}

impl Recorder {
    fn new(k: usize, start: f64) -> Self {
        Self {
            k,
            paths: (0..k).map(|_| vec![(0.0, start)]).collect(),
        }
    }
    fn record(&mut self, step: usize, x: &[f64]) {
        for (p, v) in self.paths.iter_mut().zip(x.iter().take(self.k)) {
            p.push((step as f64, *v));
        }
    }
}

fn prepare(c: &ChainArgs) -> Result<Energy> {
    positive("--chains", c.chains)?;
    positive("--steps", c.steps)?;
    // States, noise, uniforms and starts: a few numbers per chain.
    diffuse_pipeline::budget::check(
        &format!("--chains {}", c.chains),
        c.chains as f64 * 8.0 * 5.0,
    )?;
    if !c.start.is_finite() {
        anyhow::bail!("--start must be a finite number");
    }
    Energy::parse(&c.energy).context("--energy")
}

/// Histogram of final states against exp(-E), paths, and the common numbers.
fn report(
    out: &mut Output,
    energy: &Energy,
    c: &ChainArgs,
    states: &[f64],
    rec: &Recorder,
    what: &str,
) -> Result<()> {
    let stats = eval::against_stationary(energy, states);
    let p_value = stats
        .get("ks_p_value")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN);
    out.set("chains", c.chains);
    out.set("steps", c.steps);
    out.report(stats);
    out.samples(states, 1)?;
    let (lo, hi) = diffuse_plot::padded_range(states.iter().copied());
    let theory: Vec<(f64, f64)> = grid(lo, hi, 400)
        .into_iter()
        .map(|x| (x, energy.stationary_density(x)))
        .collect();
    histogram(
        &out.path("histogram.png"),
        &Figure::new(
            format!(
                "{what}: {} chains after {} steps (KS p = {:.3})",
                c.chains, c.steps, p_value
            ),
            "x",
            "density",
        )
        .x_range(lo, hi),
        &[Hist {
            label: "final states".into(),
            values: states.to_vec(),
            color: 0,
        }],
        80,
        &[Series::line("exp(-E) / Z", theory, 3)],
    )?;
    if rec.k > 0 {
        paths(
            &out.path("paths.png"),
            &format!("{what}: {} chains", rec.k),
            "step",
            &rec.paths,
        )?;
    }
    Ok(())
}

/// `diffuse langevin`.
pub fn langevin(a: &LangevinArgs) -> Result<()> {
    let energy = prepare(&a.chain)?;
    let mut out = Output::new(&a.common, "langevin")?;
    let noise = NoiseSource::new(a.common.seed);
    let c = &a.chain;
    let mut rec = Recorder::new(c.trajectories.min(c.chains), c.start);
    let bar = crate::progress::bar(c.steps as u64, "langevin");
    let states = mcmc::langevin(
        &energy,
        &vec![c.start; c.chains],
        a.delta,
        c.steps,
        &noise,
        0..c.chains as u64,
        &mut |k, x| {
            rec.record(k, x);
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    out.num("delta", a.delta);
    if let Some(v) = energy.langevin_variance(a.delta) {
        out.num("discretised_stationary_variance", v);
    }
    report(
        &mut out,
        &energy,
        c,
        &states,
        &rec,
        &format!("Langevin, delta = {}", a.delta),
    )?;
    out.finish()?;
    Ok(())
}

/// `diffuse metropolis`.
pub fn metropolis(a: &MetropolisArgs) -> Result<()> {
    let energy = prepare(&a.chain)?;
    let proposal = Proposal::parse(&a.proposal).context("--proposal")?;
    let mut out = Output::new(&a.common, "metropolis")?;
    let noise = NoiseSource::new(a.common.seed);
    let c = &a.chain;
    let mut rec = Recorder::new(c.trajectories.min(c.chains), c.start);
    let bar = crate::progress::bar(c.steps as u64, "metropolis");
    let r = mcmc::metropolis(
        &energy,
        &vec![c.start; c.chains],
        proposal,
        c.steps,
        &noise,
        0..c.chains as u64,
        &mut |k, x| {
            rec.record(k, x);
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    r.check_moved(&a.proposal).context("--proposal")?;
    out.set("proposal", a.proposal.clone());
    out.num("acceptance", r.acceptance());
    report(
        &mut out,
        &energy,
        c,
        &r.states,
        &rec,
        &format!(
            "Metropolis ({}), acceptance {:.4}",
            a.proposal,
            r.acceptance()
        ),
    )?;
    out.finish()?;
    Ok(())
}
