//! Noise schedules: a table of beta_k for k = 1..T and everything derived from it.
//!
//! Conventions (DDPM; seeds 000, 001, 004): x_k = sqrt(alpha_k) x_{k-1} + sqrt(beta_k) z with
//! alpha_k = 1 - beta_k, and alpha-bar_k = prod_{i<=k} alpha_i, so that
//! q(x_k | x_0) = N(sqrt(alpha-bar_k) x_0, (1 - alpha-bar_k) I). Step 0 is the data
//! (alpha-bar_0 = 1). sigma_k = sqrt((1 - alpha-bar_k) / alpha-bar_k) is the noise level of the
//! variance-exploding view (EDM, k-diffusion), and log-SNR_k = ln(alpha-bar_k / (1 - alpha-bar_k)).
//!
//! Continuous time: for t in [0, T] (in units of steps) ln alpha-bar(t) is interpolated linearly
//! between whole steps. The VP SDE dx = -beta(t)/2 x dt + sqrt(beta(t)) dw with
//! beta(t) = -ln(alpha_k) on (k-1, k] then has exactly the marginals of the discrete chain at every
//! whole step, which is what lets the reverse SDE and the probability-flow ODE end on the same
//! distributions as DDPM.

use crate::error::{Result, invalid};

/// A noise schedule of T steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    name: String,
    /// beta_k at index k - 1.
    betas: Vec<f64>,
    /// ln alpha-bar_k at index k, k = 0..=T (entry 0 is 0).
    log_alpha_bars: Vec<f64>,
}

impl Schedule {
    /// A schedule from its beta table (beta_1 .. beta_T), each in (0, 1).
    pub fn from_betas(name: impl Into<String>, betas: Vec<f64>) -> Result<Self> {
        if betas.is_empty() {
            return invalid("a schedule needs at least one step (steps = 0)");
        }
        if let Some((k, b)) = betas
            .iter()
            .enumerate()
            .find(|(_, b)| !(b.is_finite() && **b > 0.0 && **b < 1.0))
        {
            return invalid(format!("beta_{} = {b} is not in (0, 1)", k + 1));
        }
        let mut log_alpha_bars = Vec::with_capacity(betas.len() + 1);
        log_alpha_bars.push(0.0);
        let mut acc = 0.0;
        for b in &betas {
            acc += (-b).ln_1p();
            log_alpha_bars.push(acc);
        }
        Ok(Self {
            name: name.into(),
            betas,
            log_alpha_bars,
        })
    }

    /// DDPM's linear schedule: beta linear from `start` to `end` (seed 000: 1e-4 to 0.02).
    pub fn linear(start: f64, end: f64, steps: usize) -> Result<Self> {
        Self::from_betas(format!("linear:{start}:{end}"), linspace(start, end, steps))
    }

    /// Stable Diffusion's "scaled linear": sqrt(beta) linear from sqrt(start) to sqrt(end).
    pub fn scaled_linear(start: f64, end: f64, steps: usize) -> Result<Self> {
        let betas = linspace(start.sqrt(), end.sqrt(), steps)
            .into_iter()
            .map(|b| b * b)
            .collect();
        Self::from_betas(format!("scaled-linear:{start}:{end}"), betas)
    }

    /// Seed 001's sigmoid schedule: sigmoid(linspace(-6, 6, T)) * (end - start) + start.
    pub fn sigmoid(start: f64, end: f64, steps: usize) -> Result<Self> {
        let betas = linspace(-6.0, 6.0, steps)
            .into_iter()
            .map(|u| 1.0 / (1.0 + (-u).exp()) * (end - start) + start)
            .collect();
        Self::from_betas(format!("sigmoid:{start}:{end}"), betas)
    }

    /// Nichol & Dhariwal's cosine schedule with offset s = 0.008, in floating point:
    /// alpha-bar(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2), beta_k = min(1 - f(k/T) / f((k-1)/T), 0.999).
    pub fn cosine(steps: usize) -> Result<Self> {
        let f = |u: f64| {
            ((u + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        let t = steps as f64;
        let betas = (0..steps)
            .map(|i| (1.0 - f((i + 1) as f64 / t) / f(i as f64 / t)).min(0.999))
            .collect();
        Self::from_betas("cosine", betas)
    }

    /// A constant beta at every step (seed 004: beta = 0.2^2).
    pub fn constant(beta: f64, steps: usize) -> Result<Self> {
        Self::from_betas(format!("constant:{beta}"), vec![beta; steps])
    }

    /// Parses `linear[:START:END]`, `scaled-linear[:START:END]`, `sigmoid[:START:END]`,
    /// `cosine` or `constant:BETA` into a schedule of `steps` steps.
    pub fn parse(spec: &str, steps: usize) -> Result<Self> {
        if steps == 0 {
            return invalid("steps must be at least 1 (got 0)");
        }
        let mut parts = spec.split(':');
        let kind = parts.next().unwrap_or_default();
        let args: Vec<&str> = parts.collect();
        let nums = args
            .iter()
            .map(|a| {
                a.trim().parse::<f64>().map_err(|_| {
                    crate::CoreError::Invalid(format!("schedule '{spec}': '{a}' is not a number"))
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        let pair = |default: (f64, f64)| -> Result<(f64, f64)> {
            match nums.as_slice() {
                [] => Ok(default),
                [a, b] => Ok((*a, *b)),
                _ => invalid(format!("schedule '{spec}': expected {kind}:START:END")),
            }
        };
        match kind {
            "linear" => {
                let (a, b) = pair((1e-4, 0.02))?;
                Self::linear(a, b, steps)
            }
            "scaled-linear" => {
                let (a, b) = pair((0.00085, 0.012))?;
                Self::scaled_linear(a, b, steps)
            }
            "sigmoid" => {
                let (a, b) = pair((1e-5, 1e-2))?;
                Self::sigmoid(a, b, steps)
            }
            "cosine" if nums.is_empty() => Self::cosine(steps),
            "constant" => match nums.as_slice() {
                [b] => Self::constant(*b, steps),
                _ => invalid(format!("schedule '{spec}': expected constant:BETA")),
            },
            _ => invalid(format!(
                "unknown schedule '{spec}' (expected linear:START:END, scaled-linear:START:END, \
                 sigmoid:START:END, cosine or constant:BETA)"
            )),
        }
    }

    /// The schedule's spec string.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// T, the number of steps.
    pub fn steps(&self) -> usize {
        self.betas.len()
    }

    /// beta_k for k in 1..=T.
    pub fn beta(&self, k: usize) -> f64 {
        self.betas[k - 1]
    }

    /// alpha_k = 1 - beta_k for k in 1..=T.
    pub fn alpha(&self, k: usize) -> f64 {
        1.0 - self.betas[k - 1]
    }

    /// alpha-bar_k for k in 0..=T (alpha-bar_0 = 1).
    pub fn alpha_bar(&self, k: usize) -> f64 {
        self.log_alpha_bars[k].exp()
    }

    /// 1 - alpha-bar_k, computed without cancellation.
    pub fn one_minus_alpha_bar(&self, k: usize) -> f64 {
        -self.log_alpha_bars[k].exp_m1()
    }

    /// sigma_k = sqrt((1 - alpha-bar_k) / alpha-bar_k), the VE noise level of step k.
    pub fn sigma(&self, k: usize) -> f64 {
        (self.one_minus_alpha_bar(k) / self.alpha_bar(k)).sqrt()
    }

    /// log-SNR_k = ln(alpha-bar_k / (1 - alpha-bar_k)); +infinity at k = 0.
    pub fn log_snr(&self, k: usize) -> f64 {
        self.log_alpha_bars[k] - self.one_minus_alpha_bar(k).ln()
    }

    /// Variance of the posterior q(x_{k-1} | x_k, x_0) (seed 004):
    /// beta-tilde_k = (1 - alpha-bar_{k-1}) / (1 - alpha-bar_k) * beta_k.
    pub fn posterior_variance(&self, k: usize) -> f64 {
        self.one_minus_alpha_bar(k - 1) / self.one_minus_alpha_bar(k) * self.beta(k)
    }

    /// Coefficients (c0, ct) of the posterior mean mu-tilde = c0 x_0 + ct x_k (seed 004):
    /// c0 = sqrt(alpha-bar_{k-1}) beta_k / (1 - alpha-bar_k),
    /// ct = sqrt(alpha_k) (1 - alpha-bar_{k-1}) / (1 - alpha-bar_k).
    pub fn posterior_mean_coefficients(&self, k: usize) -> (f64, f64) {
        let denom = self.one_minus_alpha_bar(k);
        (
            self.alpha_bar(k - 1).sqrt() * self.beta(k) / denom,
            self.alpha(k).sqrt() * self.one_minus_alpha_bar(k - 1) / denom,
        )
    }

    /// ln alpha-bar(t) for continuous t in [0, T], linear between whole steps.
    pub fn log_alpha_bar_at(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, self.steps() as f64);
        let k = (t.floor() as usize).min(self.steps() - 1);
        let frac = t - k as f64;
        self.log_alpha_bars[k] + frac * (self.log_alpha_bars[k + 1] - self.log_alpha_bars[k])
    }

    /// alpha-bar(t) for continuous t in [0, T].
    pub fn alpha_bar_at(&self, t: f64) -> f64 {
        self.log_alpha_bar_at(t).exp()
    }

    /// beta(t) = -d ln alpha-bar / dt, the rate of the VP SDE: -ln(alpha_k) on (k-1, k].
    pub fn beta_at(&self, t: f64) -> f64 {
        let k = (t.ceil() as usize).clamp(1, self.steps());
        -(-self.beta(k)).ln_1p()
    }

    /// The continuous time t at which alpha-bar(t) = `alpha_bar` (inverse of
    /// [`Self::alpha_bar_at`]), clamped to [0, T].
    pub fn t_at_alpha_bar(&self, alpha_bar: f64) -> f64 {
        let target = alpha_bar.ln();
        let lab = &self.log_alpha_bars;
        if target >= 0.0 {
            return 0.0;
        }
        if target <= lab[self.steps()] {
            return self.steps() as f64;
        }
        // lab is strictly decreasing: find k with lab[k] >= target > lab[k + 1].
        let k = lab.partition_point(|v| *v >= target) - 1;
        k as f64 + (target - lab[k]) / (lab[k + 1] - lab[k])
    }

    /// The continuous time t at which sigma(t) = `sigma`.
    pub fn t_at_sigma(&self, sigma: f64) -> f64 {
        self.t_at_alpha_bar(1.0 / (1.0 + sigma * sigma))
    }
}

/// `n` points from `a` to `b` inclusive (numpy's linspace; a single point is `a`).
pub fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![a],
        _ => (0..n)
            .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs())
    }

    #[test]
    fn linear_matches_numpy_linspace_and_alpha_bar_is_the_product() {
        let s = Schedule::linear(1e-4, 0.02, 200).unwrap();
        assert_eq!(s.steps(), 200);
        assert!(close(s.beta(1), 1e-4, 1e-12));
        assert!(close(s.beta(200), 0.02, 1e-12));
        assert!(close(
            s.beta(101),
            1e-4 + (0.02 - 1e-4) * 100.0 / 199.0,
            1e-12
        ));
        let prod: f64 = (1..=200).map(|k| 1.0 - s.beta(k)).product();
        assert!(close(s.alpha_bar(200), prod, 1e-12));
        assert_eq!(s.alpha_bar(0), 1.0);
    }

    /// Reference numbers: diffusers' `scaled_linear` (0.00085, 0.012, 1000) and
    /// `squaredcos_cap_v2` (1000) beta formulas, evaluated in float64 by a Python transcription.
    #[test]
    fn scaled_linear_and_cosine_match_diffusers_formulas() {
        let s = Schedule::scaled_linear(0.00085, 0.012, 1000).unwrap();
        assert!(close(s.beta(1), 0.00085, 1e-12));
        assert!(close(s.beta(1000), 0.012, 1e-12));
        assert!(close(s.alpha_bar(1000), 0.004660098513077234, 1e-9));
        assert!(close(s.alpha_bar(500), 0.27766965045646763, 1e-9));
        let c = Schedule::cosine(1000).unwrap();
        assert!(close(c.beta(1), 4.128422482196914e-05, 1e-9));
        assert!(close(c.beta(1000), 0.999, 1e-12));
        assert!(close(c.alpha_bar(500), 0.4938435904406382, 1e-9));
        // Cosine in floating point: alpha-bar_k close to f(k/T)/f(0) wherever beta was not capped.
        let f = |u: f64| {
            ((u + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        for k in [1, 10, 250, 900] {
            assert!(
                close(c.alpha_bar(k), f(k as f64 / 1000.0) / f(0.0), 1e-9),
                "k = {k}"
            );
        }
    }

    #[test]
    fn sigmoid_is_seed_001s_formula() {
        let s = Schedule::sigmoid(1e-5, 1e-2, 100).unwrap();
        let sig = |u: f64| 1.0 / (1.0 + (-u).exp());
        assert!(close(s.beta(1), sig(-6.0) * (1e-2 - 1e-5) + 1e-5, 1e-12));
        assert!(close(s.beta(100), sig(6.0) * (1e-2 - 1e-5) + 1e-5, 1e-12));
        // Symmetric around the middle: beta_k + beta_{T+1-k} = end + start.
        assert!(close(s.beta(30) + s.beta(71), 1e-2 + 1e-5, 1e-9));
    }

    #[test]
    fn derived_tables_agree_with_their_definitions() {
        let s = Schedule::parse("linear", 50).unwrap();
        for k in 1..=50 {
            let ab = s.alpha_bar(k);
            assert!(close(s.sigma(k), ((1.0 - ab) / ab).sqrt(), 1e-9));
            assert!(close(s.log_snr(k), (ab / (1.0 - ab)).ln(), 1e-9));
            assert!(s.log_snr(k) < s.log_snr(k - 1));
            // beta-tilde_k and the mean coefficients of seed 004's posterior.
            let abp = s.alpha_bar(k - 1);
            assert!(close(
                s.posterior_variance(k),
                (1.0 - abp) / (1.0 - ab) * s.beta(k),
                1e-9
            ));
            let (c0, ct) = s.posterior_mean_coefficients(k);
            assert!(close(c0, abp.sqrt() * s.beta(k) / (1.0 - ab), 1e-9));
            assert!(close(
                ct,
                s.alpha(k).sqrt() * (1.0 - abp) / (1.0 - ab),
                1e-9
            ));
        }
        assert_eq!(s.posterior_variance(1), 0.0);
    }

    #[test]
    fn continuous_time_interpolates_and_inverts() {
        let s = Schedule::cosine(100).unwrap();
        for k in 0..=100 {
            assert!(close(s.alpha_bar_at(k as f64), s.alpha_bar(k), 1e-12));
        }
        for t in [0.3, 1.0, 17.25, 50.5, 99.9] {
            let back = s.t_at_alpha_bar(s.alpha_bar_at(t));
            assert!((back - t).abs() < 1e-9, "{t} -> {back}");
            assert!((s.t_at_sigma((1.0 / s.alpha_bar_at(t) - 1.0).sqrt()) - t).abs() < 1e-9);
        }
        // exp(-integral of beta(t) dt from 0 to k) = alpha-bar_k: the SDE's marginals are the chain's.
        let mut integral = 0.0;
        let h = 1e-3;
        for i in 0..37_000 {
            integral += s.beta_at((i as f64 + 0.5) * h) * h;
        }
        assert!(close((-integral).exp(), s.alpha_bar(37), 1e-9));
    }

    #[test]
    fn bad_specs_are_errors() {
        for spec in [
            "linear:1",
            "quadratic",
            "constant",
            "constant:1.5",
            "linear:a:b",
            "cosine:3",
        ] {
            assert!(Schedule::parse(spec, 10).is_err(), "{spec}");
        }
        assert!(Schedule::parse("linear", 0).is_err());
        assert!(Schedule::parse("linear:0.1:2", 10).is_err());
    }
}
