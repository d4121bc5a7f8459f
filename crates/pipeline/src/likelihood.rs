//! Log-likelihoods by the probability-flow ODE (seed 004) over a table of points, in batches,
//! with the standardisation's Jacobian for a model trained on standardised data.

use anyhow::Result;
use diffuse_core::likelihood::{LikelihoodConfig, log_likelihood};
use diffuse_core::tensor::from_flat;
use diffuse_core::{Denoiser, Mixture, NoiseSource, Schedule, device};
use diffuse_nn::Standardization;

use crate::eval::mean_var;
use crate::report::Report;
use crate::run::{Watch, batches};

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

/// The log-likelihood of every row of `x` (dimension `d`) under the density that `denoiser`
/// and `schedule` define; `standardization`: the model's, so that log p(x) = log p_z(z) +
/// ln |dz/dx|; `truth`: the density itself, for the error.
#[allow(clippy::too_many_arguments)]
pub fn log_likelihoods(
    denoiser: &dyn Denoiser,
    schedule: &Schedule,
    standardization: Option<&Standardization>,
    truth: Option<&Mixture>,
    x: &[f64],
    d: usize,
    config: LikelihoodConfig,
    batch: usize,
    seed: u64,
    watch: &mut dyn Watch,
) -> Result<Likelihoods> {
    let noise = NoiseSource::new(seed);
    let dev = device::default_device();
    let n = x.len() / d;
    let mut ll = Vec::with_capacity(n);
    let mut nfe = 0;
    watch.begin("nll", n as u64);
    for rows in batches(n, batch) {
        let (s, e) = (rows.start as usize, rows.end as usize);
        let mut z = x[s * d..e * d].to_vec();
        let log_det = match standardization {
            Some(st) => {
                st.apply(&mut z);
                st.log_det()
            }
            None => 0.0,
        };
        let xt = from_flat(&z, e - s, d, &dev);
        let (part, evals) = log_likelihood(denoiser, schedule, &xt, config, &noise, rows.start)?;
        ll.extend(part.into_iter().map(|l| l + log_det));
        nfe += evals;
        watch.advance((e - s) as u64);
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
    if let Some(q) = truth {
        let truth: Vec<f64> = x.chunks(d).map(|row| -q.log_density(row)).collect();
        let (tm, _) = mean_var(&truth);
        report.num("true_nll_nats", tm);
        report.num("error_nats_per_dim", (m - tm) / d as f64);
    }
    Ok(Likelihoods { ll, nfe, report })
}
