//! Samplers over a decreasing sigma grid in the noise-level view, written as k-diffusion writes
//! them: x is x~ at `sigmas[0]`, `model` is D(x~, sigma), and each is one short loop. A grid that
//! ends at 0 ends with the denoised estimate.

use burn::tensor::Tensor;

use super::sigma::{SigmaDenoiser, to_d};
use super::{BatchNoise, Event};
use crate::error::{Result, invalid};
use crate::noise::Stream;

fn check(sigmas: &[f64]) -> Result<()> {
    if sigmas.len() < 2 || !sigmas.windows(2).all(|w| w[1] < w[0] && w[1] >= 0.0) {
        return invalid("a sigma grid needs at least two decreasing, non-negative levels");
    }
    Ok(())
}

/// Euler steps on the probability-flow ODE (Karras et al. 2022, Algorithm 1 without Heun).
pub fn euler(
    model: &SigmaDenoiser,
    x: Tensor<2>,
    sigmas: &[f64],
    cb: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check(sigmas)?;
    let n = sigmas.len() - 1;
    let mut x = x;
    for i in 0..n {
        let (s, s_next) = (sigmas[i], sigmas[i + 1]);
        let denoised = model.denoise(&x, s)?;
        x = x.clone() + to_d(&x, s, &denoised) * (s_next - s);
        model.report(cb, i + 1, n, s_next, &x, &denoised);
    }
    Ok(x)
}

/// sigma_down and sigma_up of an ancestral step from `from` to `to` with strength eta
/// (k-diffusion's get_ancestral_step).
pub fn ancestral_step(from: f64, to: f64, eta: f64) -> (f64, f64) {
    if eta == 0.0 || to == 0.0 {
        return (to, 0.0);
    }
    let up = (eta * (to * to * (from * from - to * to) / (from * from)).sqrt()).min(to);
    ((to * to - up * up).sqrt(), up)
}

/// Euler ancestral: an Euler step down to sigma_down, then fresh noise of scale sigma_up.
pub fn euler_ancestral(
    model: &SigmaDenoiser,
    x: Tensor<2>,
    sigmas: &[f64],
    eta: f64,
    noise: &BatchNoise,
    cb: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check(sigmas)?;
    let n = sigmas.len() - 1;
    let (d, device) = (x.dims()[1], x.device());
    let mut x = x;
    for i in 0..n {
        let (s, s_next) = (sigmas[i], sigmas[i + 1]);
        let denoised = model.denoise(&x, s)?;
        let (down, up) = ancestral_step(s, s_next, eta);
        x = x.clone() + to_d(&x, s, &denoised) * (down - s);
        if up > 0.0 {
            x = x + noise.normal(Stream::Reverse, i as u64, d, &device) * up;
        }
        model.report(cb, i + 1, n, s_next, &x, &denoised);
    }
    Ok(x)
}

/// Stochastic churn of EDM Algorithm 2 (all zero: Algorithm 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// S_churn: total noise added over the run.
    pub s_churn: f64,
    /// S_tmin: churn only at sigma >= this.
    pub s_tmin: f64,
    /// S_tmax: churn only at sigma <= this.
    pub s_tmax: f64,
    /// S_noise: scale of the added noise.
    pub s_noise: f64,
}

impl Default for Churn {
    fn default() -> Self {
        Self {
            s_churn: 0.0,
            s_tmin: 0.0,
            s_tmax: f64::INFINITY,
            s_noise: 1.0,
        }
    }
}

impl super::SigmaMethod {
    /// Steps of a grid that spend `nfe` evaluations: one a step, but Heun takes two on every
    /// step except a last one to sigma = 0 (`ends_at_zero`), which is a plain Euler step (below).
    pub fn steps_for_budget(&self, nfe: usize, ends_at_zero: bool) -> usize {
        match self {
            super::SigmaMethod::Heun(_) if ends_at_zero => nfe.div_ceil(2),
            super::SigmaMethod::Heun(_) => nfe / 2,
            _ => nfe,
        }
    }
}

/// Heun's second-order method with optional churn (Karras et al. 2022, Algorithms 1 and 2).
pub fn heun(
    model: &SigmaDenoiser,
    x: Tensor<2>,
    sigmas: &[f64],
    churn: Churn,
    noise: &BatchNoise,
    cb: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check(sigmas)?;
    let n = sigmas.len() - 1;
    let (dim, device) = (x.dims()[1], x.device());
    let mut x = x;
    for i in 0..n {
        let (s, s_next) = (sigmas[i], sigmas[i + 1]);
        let gamma = if churn.s_tmin <= s && s <= churn.s_tmax {
            (churn.s_churn / n as f64).min(std::f64::consts::SQRT_2 - 1.0)
        } else {
            0.0
        };
        let s_hat = s * (gamma + 1.0);
        if gamma > 0.0 {
            let eps = noise.normal(Stream::Reverse, i as u64, dim, &device) * churn.s_noise;
            x = x + eps * (s_hat * s_hat - s * s).sqrt();
        }
        let denoised = model.denoise(&x, s_hat)?;
        let d = to_d(&x, s_hat, &denoised);
        let dt = s_next - s_hat;
        x = if s_next == 0.0 {
            x + d * dt
        } else {
            let x2 = x.clone() + d.clone() * dt;
            let d2 = to_d(&x2, s_next, &model.denoise(&x2, s_next)?);
            x + (d + d2) * (0.5 * dt)
        };
        model.report(cb, i + 1, n, s_next, &x, &denoised);
    }
    Ok(x)
}

/// The coefficient of the j-th most recent derivative in a linear multistep step of `order` from
/// t[i] to t[i+1]: the integral over [t[i], t[i+1]] of the Lagrange basis polynomial through
/// t[i], t[i-1], ..., t[i-order+1], computed exactly by 4-point Gauss-Legendre quadrature
/// (the polynomial has degree order - 1 <= 3).
pub fn lms_coefficient(order: usize, t: &[f64], i: usize, j: usize) -> f64 {
    const NODES: [f64; 4] = [
        -0.861_136_311_594_052_6,
        -0.339_981_043_584_856_3,
        0.339_981_043_584_856_3,
        0.861_136_311_594_052_6,
    ];
    const WEIGHTS: [f64; 4] = [
        0.347_854_845_137_453_85,
        0.652_145_154_862_546_2,
        0.652_145_154_862_546_2,
        0.347_854_845_137_453_85,
    ];
    let (a, b) = (t[i], t[i + 1]);
    let basis = |tau: f64| {
        (0..order)
            .filter(|k| *k != j)
            .map(|k| (tau - t[i - k]) / (t[i - j] - t[i - k]))
            .product::<f64>()
    };
    let half = 0.5 * (b - a);
    NODES
        .iter()
        .zip(WEIGHTS)
        .map(|(x, w)| w * basis(a + half * (x + 1.0)))
        .sum::<f64>()
        * half
}

/// Linear multistep (LMS) of the given order on the Karras derivative, as Stable Diffusion's
/// original sampler (seed 002; k-diffusion's sample_lms).
pub fn lms(
    model: &SigmaDenoiser,
    x: Tensor<2>,
    sigmas: &[f64],
    order: usize,
    cb: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check(sigmas)?;
    if !(1..=4).contains(&order) {
        return invalid(format!("LMS order must be 1 to 4 (got {order})"));
    }
    let n = sigmas.len() - 1;
    let mut x = x;
    let mut ds: Vec<Tensor<2>> = vec![];
    for i in 0..n {
        let denoised = model.denoise(&x, sigmas[i])?;
        ds.push(to_d(&x, sigmas[i], &denoised));
        if ds.len() > order {
            ds.remove(0);
        }
        let cur = (i + 1).min(order);
        for (j, d) in ds.iter().rev().enumerate() {
            x = x + d.clone() * lms_coefficient(cur, sigmas, i, j);
        }
        model.report(cb, i + 1, n, sigmas[i + 1], &x, &denoised);
    }
    Ok(x)
}

/// DPM-Solver++(2M) (Lu et al. 2022), in lambda = -ln sigma.
///
/// A run to sigma = 0 ends, as in the reference implementations, with x = D(x): the
/// extrapolation in lambda has no meaning across an infinite step. With `second_order_end` the
/// last step is instead Adams-Bashforth of order 2 in sigma on dx/dsigma = d = (x - D) / sigma,
/// with d interpolated linearly through the last two levels:
///
///   x_0 = D_i - sigma_i^2 / (2 (sigma_{i-1} - sigma_i)) (d_i - d_{i-1}).
///
/// It is exact where d is linear in sigma: for a point mass (d constant) and for a Gaussian
/// component of std s once sigma << s (d = z sigma / sqrt(s^2 + sigma^2)), where x = D(x)
/// contracts the last stretch twice over and draws the component s / sqrt(s^2 + sigma_i^2)
/// of its width.
pub fn dpmpp_2m(
    model: &SigmaDenoiser,
    x: Tensor<2>,
    sigmas: &[f64],
    second_order_end: bool,
    cb: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check(sigmas)?;
    let n = sigmas.len() - 1;
    let mut x = x;
    // (x, D(x)) at the previous level.
    let mut old: Option<(Tensor<2>, Tensor<2>)> = None;
    for i in 0..n {
        let (s, s_next) = (sigmas[i], sigmas[i + 1]);
        let denoised = model.denoise(&x, s)?;
        let x_here = x.clone();
        x = match &old {
            Some((x_prev, d_prev)) if s_next == 0.0 && second_order_end => {
                let s_prev = sigmas[i - 1];
                let slope = to_d(&x, s, &denoised) - to_d(x_prev, s_prev, d_prev);
                denoised.clone() - slope * (s * s / (2.0 * (s_prev - s)))
            }
            _ if s_next == 0.0 => denoised.clone(),
            _ => {
                let h = s.ln() - s_next.ln();
                let d = match &old {
                    Some((_, prev)) => {
                        let r = (sigmas[i - 1].ln() - s.ln()) / h;
                        denoised.clone() * (1.0 + 1.0 / (2.0 * r))
                            - prev.clone() * (1.0 / (2.0 * r))
                    }
                    None => denoised.clone(),
                };
                // x <- (sigma_next / sigma) x - (e^{-h} - 1) D
                x * (s_next / s) - d * (-h).exp_m1()
            }
        };
        model.report(cb, i + 1, n, s_next, &x, &denoised);
        old = Some((x_here, denoised));
    }
    Ok(x)
}

/// DPM-Solver++(3M): the third-order multistep update of Lu et al. (2022) with
/// phi_2 = (e^{-h} - 1)/h + 1 and phi_3 = phi_2 / h - 1/2, started by a first-order and a
/// DPM-Solver++(2M) step, as diffusers' third-order dpmsolver++ does.
///
/// D2 = (D1_0 - D1_1) / (r0 + r1) estimates h^2 D''/2, and the exact integral of the quadratic
/// term of D's Taylor expansion, int_0^h e^{-(h-u)} u^2 D''/2 du, is -2 phi_3 D2. The reference
/// implementations (DPM-Solver, diffusers, k-diffusion) subtract phi_3 D2, half of it, which
/// leaves a local error O(h^3) and a global order of 2. By default this function uses the
/// Taylor coefficient and is of order 3; `diffusers_form` reproduces the reference update.
pub fn dpmpp_3m(
    model: &SigmaDenoiser,
    x: Tensor<2>,
    sigmas: &[f64],
    diffusers_form: bool,
    cb: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check(sigmas)?;
    let n = sigmas.len() - 1;
    let mut x = x;
    // (denoised, h) of the last two steps.
    let mut hist: Vec<(Tensor<2>, f64)> = vec![];
    for i in 0..n {
        let (s, s_next) = (sigmas[i], sigmas[i + 1]);
        let denoised = model.denoise(&x, s)?;
        if s_next == 0.0 {
            x = denoised.clone();
        } else {
            let h = s.ln() - s_next.ln();
            x = x * (s_next / s) - denoised.clone() * (-h).exp_m1();
            let phi_2 = (-h).exp_m1() / h + 1.0;
            match hist.as_slice() {
                [(d1, h1), (d2, h2), ..] => {
                    let (r0, r1) = (h1 / h, h2 / h);
                    let d1_0 = (denoised.clone() - d1.clone()) / r0;
                    let d1_1 = (d1.clone() - d2.clone()) / r1;
                    let dd1 = d1_0.clone() + (d1_0.clone() - d1_1.clone()) * (r0 / (r0 + r1));
                    let dd2 = (d1_0 - d1_1) / (r0 + r1);
                    let phi_3 = phi_2 / h - 0.5;
                    let c2 = if diffusers_form { phi_3 } else { 2.0 * phi_3 };
                    x = x + dd1 * phi_2 - dd2 * c2;
                }
                [(d1, h1)] => {
                    // The second-order start-up step is DPM-Solver++(2M)'s (diffusers' midpoint form).
                    let r = h1 / h;
                    x = x - (denoised.clone() - d1.clone()) / r * (0.5 * (-h).exp_m1());
                }
                [] => {}
            }
            hist.insert(0, (denoised.clone(), h));
            hist.truncate(2);
        }
        model.report(cb, i + 1, n, s_next, &x, &denoised);
    }
    Ok(x)
}

/// UniPC (Zhao et al. 2023) of order 2 with B(h) = e^h - 1 ("bh2"), data prediction: a
/// multistep predictor (UniP) and a corrector (UniC) that reuses the next step's evaluation, so
/// it costs no extra evaluation; lower order on the first and last steps, as diffusers does.
pub fn unipc(
    model: &SigmaDenoiser,
    x: Tensor<2>,
    sigmas: &[f64],
    cb: &mut dyn FnMut(&Event),
) -> Result<Tensor<2>> {
    check(sigmas)?;
    let n = sigmas.len() - 1;
    let lambda = |s: f64| -s.ln();
    let mut x = x;
    // The previous step's start (x, sigma, denoised) and the denoised before it, for UniC.
    let mut last: Option<(Tensor<2>, usize)> = None;
    let mut outputs: Vec<Tensor<2>> = vec![]; // most recent last
    for i in 0..n {
        let denoised = model.denoise(&x, sigmas[i])?;
        if let Some((x_prev, order)) = last.take() {
            x = unic(x_prev, &sigmas[..=i], &outputs, &denoised, order);
        }
        outputs.push(denoised.clone());
        if outputs.len() > 2 {
            outputs.remove(0);
        }
        let s_next = sigmas[i + 1];
        let order = if i == 0 || i + 1 == n { 1 } else { 2 };
        let x_start = x.clone();
        x = if s_next == 0.0 {
            denoised.clone()
        } else {
            let h = lambda(s_next) - lambda(sigmas[i]);
            let (h_phi_1, b_h) = ((-h).exp_m1(), (-h).exp_m1());
            let mut xp = x * (s_next / sigmas[i]) - denoised.clone() * h_phi_1;
            if order == 2 {
                let rk = (lambda(sigmas[i - 1]) - lambda(sigmas[i])) / h;
                let d1 = (outputs[0].clone() - denoised.clone()) / rk;
                xp = xp - d1 * (0.5 * b_h);
            }
            xp
        };
        last = Some((x_start, order));
        model.report(cb, i + 1, n, s_next, &x, &denoised);
    }
    Ok(x)
}

/// UniC, the corrector: redoes the step from `sigmas[i-1]` to `sigmas[i]` (the last two of
/// `sigmas`) that started at `x_prev`, with the denoised estimates before it (`outputs`, most
/// recent last) and the new evaluation `denoised` at its end, to one order more than the step.
fn unic(
    x_prev: Tensor<2>,
    sigmas: &[f64],
    outputs: &[Tensor<2>],
    denoised: &Tensor<2>,
    order: usize,
) -> Tensor<2> {
    let lambda = |s: f64| -s.ln();
    let i = sigmas.len() - 1;
    let h = lambda(sigmas[i]) - lambda(sigmas[i - 1]);
    let (h_phi_1, b_h) = ((-h).exp_m1(), (-h).exp_m1());
    let m0 = outputs[outputs.len() - 1].clone();
    let xc = x_prev * (sigmas[i] / sigmas[i - 1]) - m0.clone() * h_phi_1;
    let d1_t = denoised.clone() - m0.clone();
    if order == 1 {
        return xc - d1_t * (b_h * 0.5);
    }
    let rk = (lambda(sigmas[i - 2]) - lambda(sigmas[i - 1])) / h;
    let d1 = (outputs[outputs.len() - 2].clone() - m0) / rk;
    let (r, b) = unipc_system(h, rk);
    // rhos_c solves R rho = b for R = [[1, 1], [rk, 1]].
    let det = r[0][0] * r[1][1] - r[0][1] * r[1][0];
    let rho0 = (b[0] * r[1][1] - r[0][1] * b[1]) / det;
    let rho1 = (r[0][0] * b[1] - r[1][0] * b[0]) / det;
    xc - (d1 * rho0 + d1_t * rho1) * b_h
}

/// The order-2 UniC system of the bh2 variant: R = [[1, 1], [rk, 1]] and
/// b_k = h_phi_k * k! / B(h) with h_phi_1 = e^{-h} - 1, h_phi_{k+1} = h_phi_k / (-h) - 1/(k+1)!.
fn unipc_system(h: f64, rk: f64) -> ([[f64; 2]; 2], [f64; 2]) {
    let hh = -h;
    let b_h = hh.exp_m1();
    let mut h_phi_k = hh.exp_m1() / hh - 1.0;
    let mut factorial = 1.0;
    let mut b = [0.0; 2];
    for (i, bi) in b.iter_mut().enumerate() {
        *bi = h_phi_k * factorial / b_h;
        factorial *= (i + 2) as f64;
        h_phi_k = h_phi_k / hh - 1.0 / factorial;
    }
    ([[1.0, 1.0], [rk, 1.0]], b)
}
