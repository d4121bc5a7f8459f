//! Log-likelihoods by the probability-flow ODE (seed 004) over a table of points, in batches,
//! with the standardisation's Jacobian for a model trained on standardised data.

use std::path::Path;

use anyhow::Result;
use burn::tensor::Device;
use diffuse_core::likelihood::{LikelihoodConfig, log_likelihood};
use diffuse_core::tensor::from_flat;
use diffuse_core::{Denoiser, Mixture, NoiseSource, Schedule, device};
use diffuse_nn::Standardization;

use crate::eval::mean_var;
use crate::load::load_on;
use crate::report::Report;
use crate::run::{Watch, batches};
use crate::{dataset, positive, schedule};

/// A density defined by a denoiser and its schedule.
pub struct Density {
    /// The denoiser.
    pub denoiser: Box<dyn Denoiser>,
    /// Its schedule (the last step must reach N(0, I): the prior).
    pub schedule: Schedule,
    /// A model's standardisation of the data, so that log p(x) = log p_z(z) + ln |dz/dx|.
    pub standardization: Option<Standardization>,
    /// The density itself, when it is known in closed form.
    pub truth: Option<Mixture>,
    /// Where the denoiser computes, and so where the points go.
    pub device: Device,
}

impl Density {
    /// The density of the trained model at `path`, in the data's units (unconditional), loaded
    /// on the device [`log_likelihoods`] computes on.
    pub fn of_model(path: &Path) -> Result<Self> {
        let device = device::default_device();
        let model = load_on(path, &device)?;
        Ok(Self {
            denoiser: Box::new(model.denoiser),
            schedule: model.schedule,
            standardization: Some(model.record.standardization),
            truth: None,
            device,
        })
    }

    /// The density of the exact denoiser of `data` (its empirical law on `reference` points
    /// for a toy set) under `schedule` with T = `steps`.
    pub fn of_data(
        data: &str,
        schedule_spec: &str,
        steps: usize,
        reference: usize,
        seed: u64,
        watch: &mut dyn Watch,
    ) -> Result<Self> {
        let data = dataset(data, watch)?;
        positive("--reference", reference)?;
        let exact = data.exact(reference, &NoiseSource::new(seed))?;
        Ok(Self {
            denoiser: Box::new(exact.denoiser(&device::default_device())),
            schedule: schedule(schedule_spec, steps)?,
            standardization: None,
            truth: data.analytic().filter(|q| q.is_continuous()).cloned(),
            device: device::default_device(),
        })
    }
}

/// Log-likelihoods of points and their summary.
pub struct Likelihoods {
    /// log p(x) per point, in nats.
    pub ll: Vec<f64>,
    /// Denoiser evaluations in all.
    pub nfe: usize,
    /// Mean negative log-likelihood, its standard error, bits per dimension and, when the
    /// true density is known, the true mean and the error per dimension.
    pub report: Report,
}

/// The log-likelihood under `density` of every row of `x` (dimension `d`), in batches.
pub fn log_likelihoods(
    density: &Density,
    x: &[f64],
    d: usize,
    config: LikelihoodConfig,
    batch: usize,
    seed: u64,
    watch: &mut dyn Watch,
) -> Result<Likelihoods> {
    let noise = NoiseSource::new(seed);
    let dev = &density.device;
    let n = x.len() / d;
    let alpha_bar_t = density.schedule.alpha_bar(density.schedule.steps());
    if alpha_bar_t > ALPHA_BAR_T_WARN {
        watch.warn(&format!(
            "the schedule ends at alpha_bar_T = {alpha_bar_t:.3e}: x_T keeps sqrt(alpha_bar_T) = \
             {:.3} of the data, so it is not N(0, I) as the likelihood assumes, and the numbers are \
             off by an amount the run cannot know; diffuse further (more --steps or larger betas) \
             until alpha_bar_T is below {ALPHA_BAR_T_WARN:e}",
            alpha_bar_t.sqrt()
        ));
    }
    let mut ll = Vec::with_capacity(n);
    let mut nfe = 0;
    watch.begin("nll", n as u64);
    for rows in batches(n, batch) {
        let (s, e) = (rows.start as usize, rows.end as usize);
        let mut z = x[s * d..e * d].to_vec();
        let log_det = match &density.standardization {
            Some(st) => {
                st.apply(&mut z);
                st.log_det()
            }
            None => 0.0,
        };
        let xt = from_flat(&z, e - s, d, dev);
        let (part, evals) = log_likelihood(
            &*density.denoiser,
            &density.schedule,
            &xt,
            config,
            &noise,
            rows.start,
        )?;
        ll.extend(part.into_iter().map(|l| l + log_det));
        nfe += evals;
        watch.advance((e - s) as u64)?;
    }
    watch.finish();
    let nll: Vec<f64> = ll.iter().map(|l| -l).collect();
    let (m, v) = mean_var(&nll);
    let mut report = Report::new();
    report.set("n", n);
    report.set("dim", d);
    report.set("nfe", nfe);
    report.num("nll_nats", m);
    report.num("stderr", (v / n as f64).sqrt());
    report.num("bits_per_dim", m / (d as f64 * std::f64::consts::LN_2));
    report.num("alpha_bar_T", alpha_bar_t);
    if let Some(q) = &density.truth {
        let truth: Vec<f64> = x.chunks(d).map(|row| -q.log_density(row)).collect();
        let (tm, _) = mean_var(&truth);
        report.num("true_nll_nats", tm);
        report.num("error_nats_per_dim", (m - tm) / d as f64);
    }
    Ok(Likelihoods { ll, nfe, report })
}

/// Above this alpha_bar_T (x_T keeping more than 3% of the data), the prior's mismatch is said.
const ALPHA_BAR_T_WARN: f64 = 1e-3;
