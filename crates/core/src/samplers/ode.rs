//! The probability-flow ODE (Song et al. 2021; seed 004) in the noise-level view of Karras et
//! al. 2022 (EDM): with x~ = x / sqrt(alpha-bar) and sigma = sqrt((1 - alpha-bar) / alpha-bar),
//! dx/dt = -beta(t)/2 (x + grad log q_t(x)) becomes dx~/dsigma = (x~ - D(x~, sigma)) / sigma = eps(x, sigma),
//! which depends on the schedule only through where it starts and stops, and is smooth in sigma.

use burn::tensor::Tensor;

use super::{Event, level_at_sigma};
use crate::denoiser::{Denoiser, Prediction, check_dim};
use crate::error::{CoreError, Result, invalid};
use crate::schedule::Schedule;

/// How to integrate the probability-flow ODE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OdeMethod {
    /// Euler on the schedule's own steps (the DDIM eta = 0 update in disguise).
    Euler,
    /// Heun's second-order method on the schedule's own steps (EDM Algorithm 1).
    Heun,
    /// Adaptive Dormand-Prince 5(4) with relative and absolute tolerances.
    Rk45 {
        /// Relative tolerance.
        rtol: f64,
        /// Absolute tolerance.
        atol: f64,
    },
}

/// What an ODE solve did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OdeStats {
    /// Denoiser evaluations.
    pub nfe: usize,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps (adaptive only).
    pub rejected: usize,
}

/// The smallest sigma an adaptive solve integrates to before the last step to sigma = 0, which
/// is the Euler step x~ <- D(x~, sigma_stop).
const SIGMA_STOP: f64 = 1e-3;

struct Flow<'a> {
    denoiser: &'a dyn Denoiser,
    schedule: &'a Schedule,
    nfe: usize,
}

impl Flow<'_> {
    /// eps at (x~, sigma), with the prediction for the callback.
    fn eps(&mut self, x_tilde: &Tensor<2>, sigma: f64) -> Result<(Tensor<2>, Prediction)> {
        let level = level_at_sigma(self.schedule, sigma);
        let pred = self
            .denoiser
            .predict(&(x_tilde.clone() * level.signal()), level)?;
        self.nfe += 1;
        Ok((pred.eps(), pred))
    }
}

fn vp(x_tilde: &Tensor<2>, sigma: f64) -> Tensor<2> {
    x_tilde.clone() / (1.0 + sigma * sigma).sqrt()
}

/// Integrates the probability-flow ODE from step-time `t_from` down to `t_to` (continuous, in
/// schedule steps). Euler and Heun take `steps` steps uniform in t; RK45 chooses its own.
/// Returns x at `t_to` (variance-preserving scaling) and what the solve did.
pub fn probability_flow(
    denoiser: &dyn Denoiser,
    schedule: &Schedule,
    x: Tensor<2>,
    t_from: f64,
    t_to: f64,
    method: OdeMethod,
    steps: usize,
    callback: &mut dyn FnMut(&Event),
) -> Result<(Tensor<2>, OdeStats)> {
    check_dim(&x, denoiser.dim())?;
    if !(t_to >= 0.0 && t_to <= t_from && t_from <= schedule.steps() as f64) {
        return invalid(format!(
            "cannot integrate the ODE from t = {t_from} to t = {t_to}"
        ));
    }
    let sigma = |t: f64| (1.0 / schedule.alpha_bar_at(t) - 1.0).max(0.0).sqrt();
    let mut flow = Flow {
        denoiser,
        schedule,
        nfe: 0,
    };
    let mut x_tilde = x * schedule.alpha_bar_at(t_from).sqrt().recip();
    let mut stats = OdeStats::default();
    match method {
        OdeMethod::Euler | OdeMethod::Heun => {
            if steps == 0 {
                return invalid("the ODE solver needs at least one step (steps = 0)");
            }
            let h = (t_from - t_to) / steps as f64;
            for i in 0..steps {
                let t = t_from - i as f64 * h;
                let t_next = if i + 1 == steps { t_to } else { t - h };
                let (s, s_next) = (sigma(t), sigma(t_next));
                let (d, pred) = flow.eps(&x_tilde, s)?;
                let euler = x_tilde.clone() + d.clone() * (s_next - s);
                // EDM Algorithm 1: the second-order correction, except on the last step to sigma = 0.
                x_tilde = if method == OdeMethod::Heun && s_next > 0.0 {
                    let (d2, _) = flow.eps(&euler, s_next)?;
                    x_tilde + (d + d2) * (0.5 * (s_next - s))
                } else {
                    euler
                };
                stats.accepted += 1;
                callback(&Event {
                    step: i + 1,
                    steps,
                    t: t_next,
                    x: &vp(&x_tilde, s_next),
                    x0: &pred.x0(),
                });
            }
        }
        OdeMethod::Rk45 { rtol, atol } => {
            if !(rtol > 0.0 && atol > 0.0) {
                return invalid("ODE tolerances must be positive");
            }
            let (s0, s_end) = (sigma(t_from), sigma(t_to));
            let s_stop = if s_end > 0.0 {
                s_end
            } else {
                SIGMA_STOP.min(s0)
            };
            x_tilde = dormand_prince(
                &mut flow, x_tilde, s0, s_stop, rtol, atol, &mut stats, schedule, callback,
            )?;
            if s_end == 0.0 {
                // The last step to sigma = 0 is the denoised estimate.
                let (_, pred) = flow.eps(&x_tilde, s_stop)?;
                x_tilde = pred.x0();
                stats.accepted += 1;
                callback(&Event {
                    step: stats.accepted,
                    steps: stats.accepted,
                    t: t_to,
                    x: &x_tilde,
                    x0: &x_tilde,
                });
            }
        }
    }
    stats.nfe = flow.nfe;
    Ok((vp(&x_tilde, sigma(t_to)), stats))
}

// Dormand & Prince (1980) RK5(4)7M tableau.
const C: [f64; 6] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A: [&[f64]; 6] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// Fifth-order weights minus the embedded fourth-order ones: the local error estimate.
const E: [f64; 7] = [
    35.0 / 384.0 - 5179.0 / 57600.0,
    0.0,
    500.0 / 1113.0 - 7571.0 / 16695.0,
    125.0 / 192.0 - 393.0 / 640.0,
    -2187.0 / 6784.0 + 92097.0 / 339200.0,
    11.0 / 84.0 - 187.0 / 2100.0,
    -1.0 / 40.0,
];

fn dormand_prince(
    flow: &mut Flow,
    mut y: Tensor<2>,
    s0: f64,
    s_end: f64,
    rtol: f64,
    atol: f64,
    stats: &mut OdeStats,
    schedule: &Schedule,
    callback: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    let span = s_end - s0; // negative: sigma decreases
    if span == 0.0 {
        return Ok(y);
    }
    let mut s = s0;
    let mut h = span / 50.0;
    let (mut k1, _) = flow.eps(&y, s)?;
    while (s_end - s) / span > 1e-12 {
        if (s + h - s_end) / span > 0.0 {
            h = s_end - s;
        }
        let mut k = vec![k1.clone()];
        for (stage, row) in A.iter().enumerate() {
            let mut yi = y.clone();
            for (a, kj) in row.iter().zip(&k) {
                if *a != 0.0 {
                    yi = yi + kj.clone() * (h * a);
                }
            }
            if stage == 5 {
                // The sixth row is the fifth-order solution itself (FSAL).
                let (k7, p7) = flow.eps(&yi, s + h)?;
                k.push(k7);
                let err = E
                    .iter()
                    .zip(&k)
                    .fold(yi.zeros_like(), |acc, (e, kj)| acc + kj.clone() * (h * e));
                let scale = y.clone().abs().max_pair(yi.clone().abs()) * rtol + atol;
                let ratio = crate::tensor::to_vec(&(err / scale).square().mean())?[0].sqrt();
                if !ratio.is_finite() {
                    return Err(CoreError::NonFinite(format!(
                        "ODE error estimate at sigma = {s}"
                    )));
                }
                let factor = (0.9 * ratio.powf(-0.2)).clamp(0.2, 5.0);
                if ratio <= 1.0 {
                    s += h;
                    y = yi;
                    k1 = k.pop().unwrap_or(k1);
                    stats.accepted += 1;
                    let t = schedule.t_at_sigma(s);
                    callback(&Event {
                        step: stats.accepted,
                        steps: stats.accepted,
                        t,
                        x: &vp(&y, s),
                        x0: &p7.x0(),
                    });
                } else {
                    stats.rejected += 1;
                }
                h *= factor;
                break;
            }
            let (ki, _) = flow.eps(&yi, s + C[stage] * h)?;
            k.push(ki);
        }
    }
    Ok(y)
}
