//! The reverse-time SDE (Anderson 1982; Song et al. 2021; seed 004), by Euler-Maruyama:
//! dx = [-beta(t)/2 x - beta(t) grad log q_t(x)] dt + sqrt(beta(t)) dw-bar.

use burn::tensor::Tensor;

use super::{BatchNoise, Event, level_at_time};
use crate::denoiser::{Denoiser, check_dim};
use crate::error::{Result, invalid};
use crate::noise::Stream;
use crate::schedule::Schedule;

/// Integrates the reverse SDE from time `t_from` down to `t_to` (schedule steps) in `steps`
/// equal steps of h. Each step uses the exact mean of beta over the step,
/// beta-bar = (ln alpha-bar(t - h) - ln alpha-bar(t)) / h:
/// x <- x + h beta-bar (x / 2 + score(x, t)) + sqrt(h beta-bar) z.
/// A run that ends at t = 0 ends with the noise-free denoised estimate E[x_0 | x_h] (Tweedie),
/// as score-SDE samplers do, instead of a last noisy step.
pub fn reverse_sde(
    denoiser: &dyn Denoiser,
    schedule: &Schedule,
    x: Tensor<2>,
    t_from: f64,
    t_to: f64,
    steps: usize,
    noise: &BatchNoise,
    callback: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check_dim(&x, denoiser.dim())?;
    if steps == 0 {
        return invalid("the reverse SDE needs at least one step (steps = 0)");
    }
    if !(t_to >= 0.0 && t_to <= t_from && t_from <= schedule.steps() as f64) {
        return invalid(format!(
            "cannot integrate the reverse SDE from t = {t_from} to t = {t_to}"
        ));
    }
    let (d, device) = (x.dims()[1], x.device());
    let h = (t_from - t_to) / steps as f64;
    let mut x = x;
    for i in 0..steps {
        let t = t_from - i as f64 * h;
        let t_next = if i + 1 == steps { t_to } else { t - h };
        let beta_h = schedule.log_alpha_bar_at(t_next) - schedule.log_alpha_bar_at(t); // = h beta-bar
        let pred = denoiser.predict(&x, level_at_time(schedule, t))?;
        x = if t_next == 0.0 {
            pred.x0()
        } else {
            let z = noise.normal(Stream::Reverse, i as u64, d, &device);
            x.clone() + (x * 0.5 + pred.score()) * beta_h + z * beta_h.sqrt()
        };
        callback(&Event {
            step: i + 1,
            steps,
            t: t_next,
            x: &x,
            x0: &pred.x0(),
        });
    }
    Ok(x)
}
