//! `diffuse nll`: log-likelihoods by the probability-flow ODE (seed 004), of an exact mixture
//! denoiser (`--data`) or a trained model (`--model`).

use anyhow::{Context, Result, bail};
use diffuse_core::likelihood::{Divergence, LikelihoodConfig, log_likelihood};
use diffuse_core::tensor::from_flat;
use diffuse_core::{Denoiser, NoiseSource, Schedule, device};

use super::learn::load_model;
use super::{batches, dataset, done, mean_var, positive, schedule};
use crate::args::NllArgs;
use crate::output::Output;

/// Where the density comes from.
struct Source {
    denoiser: Box<dyn Denoiser>,
    schedule: Schedule,
    /// The model's standardisation of the data, if it has one.
    standardization: Option<diffuse_nn::Standardization>,
    /// The true density of --data, when it has one.
    truth: Option<diffuse_core::Mixture>,
    label: (&'static str, String),
}

fn source(a: &NllArgs, noise: &NoiseSource) -> Result<Source> {
    let dev = device::default_device();
    if let Some(dir) = &a.model {
        let (den, record, sched) = load_model(dir, &dev)?;
        return Ok(Source {
            denoiser: Box::new(den),
            schedule: sched,
            standardization: Some(record.standardization),
            truth: None,
            label: ("model", dir.display().to_string()),
        });
    }
    let spec = a
        .data
        .as_deref()
        .context("give --data SPEC or --model DIR")?;
    let data = dataset(spec)?;
    positive("--reference", a.reference)?;
    let exact = data.exact(a.reference, noise)?;
    Ok(Source {
        denoiser: Box::new(exact.denoiser(&dev)),
        schedule: schedule(&a.schedule, a.steps)?,
        standardization: None,
        truth: data.analytic().filter(|q| q.is_continuous()).cloned(),
        label: ("data", spec.to_string()),
    })
}

/// `diffuse nll`.
pub fn run(a: &NllArgs) -> Result<()> {
    positive("--ode-steps", a.ode_steps)?;
    positive("--batch", a.batch)?;
    let noise = NoiseSource::new(a.common.seed);
    let src = source(a, &noise)?;
    let table = diffuse_data::read_csv(&a.samples).context("--samples")?;
    let d = table.dim();
    if d != src.denoiser.dim() {
        bail!(
            "{} has {d} columns but the {} has {} dimensions",
            a.samples.display(),
            src.label.0,
            src.denoiser.dim()
        );
    }
    let config = LikelihoodConfig {
        divergence: if a.probes == 0 {
            Divergence::Exact
        } else {
            Divergence::Hutchinson(a.probes)
        },
        steps: a.ode_steps,
        ..LikelihoodConfig::default()
    };
    let dev = device::default_device();
    let n = table.len();
    let mut ll = Vec::with_capacity(n);
    let mut nfe = 0;
    let bar = crate::progress::bar(n as u64, "nll");
    for rows in batches(n, a.batch) {
        let (s, e) = (rows.start as usize, rows.end as usize);
        let mut z = table.values[s * d..e * d].to_vec();
        // log p(x) = log p_z(z) + ln |dz/dx| for the model's z = (x - mean) / std.
        let log_det = match &src.standardization {
            Some(st) => {
                st.apply(&mut z);
                st.log_det()
            }
            None => 0.0,
        };
        let x = from_flat(&z, e - s, d, &dev);
        let (part, evals) = log_likelihood(
            &*src.denoiser,
            &src.schedule,
            &x,
            config,
            &noise,
            rows.start,
        )?;
        ll.extend(part.into_iter().map(|l| l + log_det));
        nfe += evals;
        bar.inc((e - s) as u64);
    }
    bar.finish_and_clear();
    let nll: Vec<f64> = ll.iter().map(|l| -l).collect();
    let (m, v) = mean_var(&nll);
    let mut out = Output::new(a.common.out.as_deref(), "nll")?;
    out.set("samples", a.samples.display().to_string());
    out.set(src.label.0, src.label.1.clone());
    out.set("schedule", src.schedule.name());
    out.set("steps", src.schedule.steps());
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
    if let Some(q) = &src.truth {
        let truth: Vec<f64> = table
            .values
            .chunks(d)
            .map(|row| -q.log_density(row))
            .collect();
        let (tm, _) = mean_var(&truth);
        out.num("true_nll_nats", tm);
        out.num("error_nats_per_dim", (m - tm) / d as f64);
    }
    diffuse_data::write_csv(&out.path("loglik.csv"), &ll, 1)?;
    let path = out.finish()?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        println!("{text}");
    }
    done(&path);
    Ok(())
}
