//! DDIM (Song, Meng & Ermon 2021, eq. 12) on a decreasing list of the schedule's steps:
//! x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - s^2) eps + s z, with
//! s = eta sqrt((1 - ab_prev) / (1 - ab)) sqrt(1 - ab / ab_prev).
//! eta = 0 is deterministic (the Euler step of the probability-flow ODE in sigma); eta = 1 on
//! every step is DDPM ancestral sampling with the posterior variance.

use burn::tensor::Tensor;

use super::{BatchNoise, Event, level_at_step};
use crate::denoiser::{Denoiser, check_dim};
use crate::error::{Result, invalid};
use crate::noise::Stream;
use crate::schedule::Schedule;

/// Runs DDIM through `steps` (decreasing; the last is where it stops, 0 for the data).
pub fn ddim(
    denoiser: &dyn Denoiser,
    schedule: &Schedule,
    x: Tensor<2>,
    steps: &[usize],
    eta: f64,
    noise: &BatchNoise,
    callback: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check_dim(&x, denoiser.dim())?;
    if steps.len() < 2 || !steps.windows(2).all(|w| w[1] < w[0]) || steps[0] > schedule.steps() {
        return invalid("DDIM needs a decreasing list of at least two steps within the schedule");
    }
    if !(eta >= 0.0 && eta.is_finite()) {
        return invalid(format!("eta must be a non-negative number (got {eta})"));
    }
    let (d, device) = (x.dims()[1], x.device());
    let n = steps.len() - 1;
    let mut x = x;
    for (i, w) in steps.windows(2).enumerate() {
        let (k, k_prev) = (w[0], w[1]);
        let pred = denoiser.predict(&x, level_at_step(schedule, k))?;
        let (x0, eps) = (pred.x0(), pred.eps());
        let (ab, ab_prev) = (schedule.alpha_bar(k), schedule.alpha_bar(k_prev));
        let (om, om_prev) = (
            schedule.one_minus_alpha_bar(k),
            schedule.one_minus_alpha_bar(k_prev),
        );
        let s2 = eta * eta * (om_prev / om) * (1.0 - ab / ab_prev);
        x = x0.clone() * ab_prev.sqrt() + eps * (om_prev - s2).max(0.0).sqrt();
        if s2 > 0.0 {
            // The same noise stream and step index as DDPM, so eta = 1 on every step is DDPM.
            x = x + noise.normal(Stream::Reverse, k as u64, d, &device) * s2.sqrt();
        }
        callback(&Event {
            step: i + 1,
            steps: n,
            t: k_prev as f64,
            x: &x,
            x0: &x0,
        });
    }
    Ok(x)
}
