//! The probability-flow ODE (Song et al. 2021; seed 004) in the noise-level view of Karras et
//! al. 2022 (EDM): with x~ = x / sqrt(alpha-bar) and sigma = sqrt((1 - alpha-bar) / alpha-bar),
//! dx/dt = -beta(t)/2 (x + grad log q_t(x)) becomes dx~/dsigma = (x~ - D(x~, sigma)) / sigma = eps(x, sigma),
//! which depends on the schedule only through where it starts and stops, and is smooth in sigma.

use burn::tensor::Tensor;

use super::Event;
use super::sigma::{SigmaDenoiser, to_vp};
use crate::denoiser::{Denoiser, Prediction, check_dim};
use crate::error::{CoreError, Result, invalid};
use crate::schedule::Schedule;

/// How to integrate the probability-flow ODE.
#[derive(Debug, Clone, PartialEq)]
pub enum OdeMethod {
    /// Adaptive Dormand-Prince 5(4) with relative and absolute tolerances. The step sizes
    /// depend on the whole batch; [`super::fix_grid`] turns them into a [`OdeMethod::Dopri5`] grid.
    Rk45 {
        /// Relative tolerance.
        rtol: f64,
        /// Absolute tolerance.
        atol: f64,
    },
    /// Dormand-Prince fifth-order steps on a given decreasing sigma grid (for instance the one an
    /// adaptive solve chose); a last sigma of 0 is reached by the Euler step x~ <- D(x~, sigma).
    Dopri5(Vec<f64>),
}

/// What an ODE solve did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OdeStats {
    /// Denoiser evaluations.
    pub nfe: usize,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps (adaptive only).
    pub rejected: usize,
    /// The sigma grid the solve went through, start and end included.
    pub sigmas: Vec<f64>,
}

/// The smallest sigma an adaptive solve integrates to before the last step to sigma = 0, which
/// is the Euler step x~ <- D(x~, sigma_stop).
const SIGMA_STOP: f64 = 1e-3;

/// eps at (x~, sigma), with the prediction it came from.
fn eps(model: &SigmaDenoiser, x_tilde: &Tensor<2>, sigma: f64) -> Result<(Tensor<2>, Prediction)> {
    let pred = model.predict(x_tilde, sigma)?;
    Ok((pred.eps(), pred))
}

/// Integrates the probability-flow ODE from step-time `t_from` down to `t_to` (continuous, in
/// schedule steps). RK45 chooses its own steps; Dopri5 follows its grid. Returns x at `t_to`
/// (variance-preserving scaling) and what the solve did.
pub fn probability_flow(
    denoiser: &dyn Denoiser,
    schedule: &Schedule,
    x: Tensor<2>,
    t_from: f64,
    t_to: f64,
    method: &OdeMethod,
    callback: &mut dyn FnMut(&Event),
) -> Result<(Tensor<2>, OdeStats)> {
    check_dim(&x, denoiser.dim())?;
    if !(t_to >= 0.0 && t_to <= t_from && t_from <= schedule.steps() as f64) {
        return invalid(format!(
            "cannot integrate the ODE from t = {t_from} to t = {t_to}"
        ));
    }
    let sigma = |t: f64| (1.0 / schedule.alpha_bar_at(t) - 1.0).max(0.0).sqrt();
    let (s0, s_end) = (sigma(t_from), sigma(t_to));
    let flow = SigmaDenoiser::new(denoiser, schedule);
    let x_tilde = x * schedule.alpha_bar_at(t_from).sqrt().recip();
    let mut stats = OdeStats {
        sigmas: vec![s0],
        ..OdeStats::default()
    };
    let mut report = |s: f64, x_tilde: &Tensor<2>, pred: &Prediction, total: usize| {
        stats.accepted += 1;
        stats.sigmas.push(s);
        let t = if s == 0.0 {
            t_to
        } else {
            schedule.t_at_sigma(s).max(t_to)
        };
        let total = total.max(stats.accepted);
        callback(&Event {
            step: stats.accepted,
            steps: total,
            t,
            x: &to_vp(x_tilde, s),
            x0: &pred.x0(),
        });
    };
    let (x_tilde, rejected) = match method {
        OdeMethod::Rk45 { rtol, atol } => {
            adaptive(&flow, x_tilde, s0, s_end, *rtol, *atol, &mut report)?
        }
        OdeMethod::Dopri5(grid) => (on_grid(&flow, x_tilde, grid, s0, s_end, &mut report)?, 0),
    };
    stats.rejected = rejected;
    stats.nfe = flow.nfe();
    Ok((to_vp(&x_tilde, s_end), stats))
}

/// Reports an accepted step: the sigma reached, x~ there, the prediction made on the way, and
/// the steps in all (0 when not known in advance).
type Report<'a> = dyn FnMut(f64, &Tensor<2>, &Prediction, usize) + 'a;

/// Adaptive Dormand-Prince 5(4) from s0 down to s_end (or to [`SIGMA_STOP`], then the Euler
/// step to the denoised estimate, when s_end = 0): steps whose error estimate passes the
/// tolerances are taken, the step size follows the usual 0.9 ratio^(-1/5) rule. Returns x~ at
/// the end and the number of rejected steps.
fn adaptive(
    flow: &SigmaDenoiser,
    x_tilde: Tensor<2>,
    s0: f64,
    s_end: f64,
    rtol: f64,
    atol: f64,
    report: &mut Report,
) -> Result<(Tensor<2>, usize)> {
    if !(rtol > 0.0 && atol > 0.0) {
        return invalid("ODE tolerances must be positive");
    }
    let s_stop = if s_end > 0.0 {
        s_end
    } else {
        SIGMA_STOP.min(s0)
    };
    let (mut y, mut s, mut rejected) = (x_tilde, s0, 0);
    let span = s_stop - s0; // negative: sigma decreases
    let mut h = span / 50.0;
    let (mut k1, _) = eps(flow, &y, s)?;
    while span != 0.0 && (s_stop - s) / span > 1e-12 {
        if (s + h - s_stop) / span > 0.0 {
            h = s_stop - s;
        }
        let step = dopri_step(flow, &y, &k1, s, h)?;
        let scale = y.clone().abs().max_pair(step.y.clone().abs()) * rtol + atol;
        let ratio = crate::tensor::to_vec(&(step.error / scale).square().mean())?[0].sqrt();
        if !ratio.is_finite() {
            return Err(CoreError::NonFinite(format!(
                "ODE error estimate at sigma = {s}"
            )));
        }
        if ratio <= 1.0 {
            s = if (s + h - s_stop).abs() <= 1e-12 * s_stop.abs() {
                s_stop
            } else {
                s + h
            };
            (y, k1) = (step.y, step.k7);
            report(s, &y, &step.pred, 0);
        } else {
            rejected += 1;
        }
        h *= (0.9 * ratio.powf(-0.2)).clamp(0.2, 5.0);
    }
    if s_end == 0.0 {
        // The last step to sigma = 0 is the denoised estimate.
        let (_, pred) = eps(flow, &y, s_stop)?;
        y = pred.x0();
        report(0.0, &y, &pred, 0);
    }
    Ok((y, rejected))
}

/// Dormand-Prince fifth-order steps on a given grid from s0 to s_end; a last level of 0 is
/// reached by the Euler step to the denoised estimate.
fn on_grid(
    flow: &SigmaDenoiser,
    x_tilde: Tensor<2>,
    grid: &[f64],
    s0: f64,
    s_end: f64,
    report: &mut Report,
) -> Result<Tensor<2>> {
    let ok = grid.len() >= 2
        && (grid[0] - s0).abs() <= 1e-9 * s0.max(1.0)
        && (grid[grid.len() - 1] - s_end).abs()
            <= 1e-9 * s0.max(1.0) + if s_end == 0.0 { 0.0 } else { 1e-12 }
        && grid.windows(2).all(|w| w[1] < w[0] && w[1] >= 0.0);
    if !ok {
        return invalid(format!(
            "a Dopri5 grid must fall from sigma(t_from) = {s0} to sigma(t_to) = {s_end}"
        ));
    }
    let mut y = x_tilde;
    let (mut k1, _) = eps(flow, &y, grid[0])?;
    for w in grid.windows(2) {
        let (s, s_next) = (w[0], w[1]);
        if s_next == 0.0 {
            let (_, pred) = eps(flow, &y, s)?;
            y = pred.x0();
            report(0.0, &y, &pred, grid.len() - 1);
        } else {
            let step = dopri_step(flow, &y, &k1, s, s_next - s)?;
            (y, k1) = (step.y, step.k7);
            report(s_next, &y, &step.pred, grid.len() - 1);
        }
    }
    Ok(y)
}

// Dormand & Prince (1980) RK5(4)7M tableau.
const C: [f64; 5] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0];
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
    // The fifth-order weights b: the last stage is evaluated at the new point (FSAL).
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

struct DopriStep {
    /// The fifth-order solution.
    y: Tensor<2>,
    /// The derivative at the new point (the next step's first stage).
    k7: Tensor<2>,
    /// The prediction at the new point.
    pred: Prediction,
    /// The local error estimate.
    error: Tensor<2>,
}

/// One Dormand-Prince step of size h from (s, y) with k1 = f(s, y).
fn dopri_step(
    flow: &SigmaDenoiser,
    y: &Tensor<2>,
    k1: &Tensor<2>,
    s: f64,
    h: f64,
) -> Result<DopriStep> {
    let mut k = vec![k1.clone()];
    for (stage, row) in A.iter().enumerate() {
        let mut yi = y.clone();
        for (a, kj) in row.iter().zip(&k) {
            if *a != 0.0 {
                yi = yi + kj.clone() * (h * a);
            }
        }
        let s_stage = if stage < C.len() {
            s + C[stage] * h
        } else {
            s + h
        };
        let (ki, pred) = eps(flow, &yi, s_stage)?;
        k.push(ki);
        if stage == A.len() - 1 {
            let error = E
                .iter()
                .zip(&k)
                .fold(yi.zeros_like(), |acc, (e, kj)| acc + kj.clone() * (h * e));
            let k7 = k.pop().unwrap_or_else(|| k1.clone());
            return Ok(DopriStep {
                y: yi,
                k7,
                pred,
                error,
            });
        }
    }
    unreachable!("the tableau has a last row")
}
