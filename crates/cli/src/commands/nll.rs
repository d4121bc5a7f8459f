//! `diffuse nll`: log-likelihoods by the probability-flow ODE (seed 004).

use anyhow::Result;
use diffuse_core::likelihood::{Divergence, LikelihoodConfig, log_likelihood};
use diffuse_core::tensor::from_flat;
use diffuse_core::{NoiseSource, device};

use super::{batches, done, mean_var, positive, samples_and_data, schedule};
use crate::args::NllArgs;
use crate::output::Output;

/// `diffuse nll`.
pub fn run(a: &NllArgs) -> Result<()> {
    let (table, data) = samples_and_data(&a.samples, &a.data)?;
    let d = table.dim();
    let sched = schedule(&a.schedule, a.steps)?;
    positive("--ode-steps", a.ode_steps)?;
    positive("--batch", a.batch)?;
    positive("--reference", a.reference)?;
    let noise = NoiseSource::new(a.common.seed);
    let exact = data.exact(a.reference, &noise)?;
    let dev = device::default_device();
    let den = exact.denoiser(&dev);
    let config = LikelihoodConfig {
        divergence: if a.probes == 0 {
            Divergence::Exact
        } else {
            Divergence::Hutchinson(a.probes)
        },
        steps: a.ode_steps,
        ..LikelihoodConfig::default()
    };
    let n = table.len();
    let mut ll = Vec::with_capacity(n);
    let mut nfe = 0;
    let bar = crate::progress::bar(n as u64, "nll");
    for rows in batches(n, a.batch) {
        let (s, e) = (rows.start as usize, rows.end as usize);
        let x = from_flat(&table.values[s * d..e * d], e - s, d, &dev);
        let (part, evals) = log_likelihood(&den, &sched, &x, config, &noise, rows.start)?;
        ll.extend(part);
        nfe += evals;
        bar.inc((e - s) as u64);
    }
    bar.finish_and_clear();
    let nll: Vec<f64> = ll.iter().map(|l| -l).collect();
    let (m, v) = mean_var(&nll);
    let mut out = Output::new(a.common.out.as_deref(), "nll")?;
    out.set("samples", a.samples.display().to_string());
    out.set("data", a.data.clone());
    out.set("schedule", sched.name());
    out.set("steps", a.steps);
    out.set("n", n);
    out.set("dim", d);
    out.set(
        "divergence",
        if a.probes == 0 {
            "exact".to_string()
        } else {
            format!("hutchinson, {} probes", a.probes)
        },
    );
    out.set("ode_steps", a.ode_steps);
    out.set("nfe", nfe);
    out.num("nll_nats", m);
    out.num("stderr", (v / n as f64).sqrt());
    out.num("bits_per_dim", m / (d as f64 * std::f64::consts::LN_2));
    if let Some(q) = data.analytic().filter(|q| q.is_continuous()) {
        let truth: Vec<f64> = table
            .values
            .chunks(d)
            .map(|row| -q.log_density(row))
            .collect();
        let (tm, _) = mean_var(&truth);
        out.num("true_nll_nats", tm);
        out.num("error_nats_per_dim", (m - tm) / d as f64);
    }
    let csv: Vec<f64> = ll.clone();
    diffuse_data::write_csv(&out.path("loglik.csv"), &csv, 1)?;
    let path = out.finish()?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        println!("{text}");
    }
    done(&path);
    Ok(())
}
