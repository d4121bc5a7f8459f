//! DDPM ancestral sampling (Ho et al. 2020, Algorithm 2; seed 000's `Undiffuse`, seed 003's
//! `generate`).

use burn::tensor::Tensor;

use super::{BatchNoise, Event, level_at_step};
use crate::denoiser::{Denoiser, check_dim};
use crate::error::{Result, invalid};
use crate::noise::Stream;
use crate::schedule::Schedule;

/// The variance of each reverse step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variance {
    /// beta-tilde_k, the posterior variance: exact when x_0 is known (the default).
    Posterior,
    /// beta_k, as seeds 001 and 003 do; no noise is added at the last step.
    Beta,
}

/// Runs the reverse chain from step `from` (x = x_from) down to step `to`:
/// x_{k-1} = (x_k - beta_k / sqrt(1 - alpha-bar_k) eps(x_k, k)) / sqrt(alpha_k) + sigma_k z
/// (DDPM eq. 11), with z = 0 at k = 1.
pub fn ddpm(
    denoiser: &dyn Denoiser,
    schedule: &Schedule,
    x: Tensor<2>,
    from: usize,
    to: usize,
    variance: Variance,
    noise: &BatchNoise,
    callback: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check_dim(&x, denoiser.dim())?;
    if from > schedule.steps() || to > from {
        return invalid(format!(
            "cannot run the reverse chain from step {from} to step {to} (schedule has {} steps)",
            schedule.steps()
        ));
    }
    let (d, device) = (x.dims()[1], x.device());
    let mut x = x;
    for (i, k) in (to + 1..=from).rev().enumerate() {
        let pred = denoiser.predict(&x, level_at_step(schedule, k))?;
        let eps = pred.eps();
        let coef = schedule.beta(k) / schedule.one_minus_alpha_bar(k).sqrt();
        let mean = (x - eps * coef) / schedule.alpha(k).sqrt();
        let var = match variance {
            Variance::Posterior => schedule.posterior_variance(k),
            Variance::Beta if k > 1 => schedule.beta(k),
            Variance::Beta => 0.0,
        };
        x = if var > 0.0 {
            mean + noise.normal(Stream::Reverse, k as u64, d, &device) * var.sqrt()
        } else {
            mean
        };
        callback(&Event {
            step: i + 1,
            steps: from - to,
            t: (k - 1) as f64,
            x: &x,
            x0: &pred.x0(),
        });
    }
    Ok(x)
}
