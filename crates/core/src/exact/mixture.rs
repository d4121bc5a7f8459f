//! Isotropic Gaussian mixtures: sampling, densities, and the exact denoiser.

use std::ops::Range;

use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

use crate::denoiser::{Denoiser, Level, Prediction, Target, check_dim};
use crate::error::{CoreError, Result, invalid};
use crate::noise::{NoiseSource, Stream};
use crate::tensor::{from_flat, to_vec};

/// sum_c w_c N(mu_c, s_c^2 I) in d dimensions; s_c = 0 is a point mass.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    stds: Vec<f64>,
}

impl Mixture {
    /// A mixture from weights (non-negative, summing to 1 within 1e-6), means (one row per
    /// component, all of one dimension) and standard deviations (finite, >= 0).
    pub fn new(weights: Vec<f64>, means: Vec<Vec<f64>>, stds: Vec<f64>) -> Result<Self> {
        if weights.is_empty() {
            return invalid("a mixture needs at least one component");
        }
        if means.len() != weights.len() || stds.len() != weights.len() {
            return Err(CoreError::Shape(format!(
                "{} weights, {} means and {} stds: one of each per component",
                weights.len(),
                means.len(),
                stds.len()
            )));
        }
        let d = means[0].len();
        if d == 0 {
            return invalid("mixture means must have at least one coordinate");
        }
        for (c, m) in means.iter().enumerate() {
            if m.len() != d {
                return Err(CoreError::Shape(format!(
                    "mean {c} has {} coordinates, mean 0 has {d}",
                    m.len()
                )));
            }
            if m.iter().any(|v| !v.is_finite()) {
                return Err(CoreError::NonFinite(format!("mean {c} is not finite")));
            }
        }
        for (c, s) in stds.iter().enumerate() {
            if !s.is_finite() || *s < 0.0 {
                return invalid(format!("std {c} is {s}: stds must be finite and >= 0"));
            }
        }
        for (c, w) in weights.iter().enumerate() {
            if !w.is_finite() || *w < 0.0 {
                return invalid(format!(
                    "weight {c} is {w}: weights must be finite and >= 0"
                ));
            }
        }
        let total: f64 = weights.iter().sum();
        if (total - 1.0).abs() > 1e-6 {
            return invalid(format!("weights sum to {total}, not 1"));
        }
        Ok(Self {
            weights,
            means,
            stds,
        })
    }

    /// Equal-weight point masses in 1-D (`delta:V,...`).
    pub fn deltas(values: &[f64]) -> Result<Self> {
        Self::empirical(values.iter().map(|v| vec![*v]).collect())
    }

    /// The empirical distribution of a data set: equal-weight point masses.
    pub fn empirical(points: Vec<Vec<f64>>) -> Result<Self> {
        let n = points.len();
        if n == 0 {
            return invalid("an empirical distribution needs at least one point");
        }
        Self::new(vec![1.0 / n as f64; n], points, vec![0.0; n])
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.means[0].len()
    }
    /// The mixture's mean and covariance (row-major `[d, d]`):
    /// sum_c w_c mu_c and sum_c w_c (s_c^2 I + mu_c mu_c^T) - mean mean^T.
    pub fn moments(&self) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim();
        let mut mean = vec![0.0; d];
        for (w, m) in self.weights.iter().zip(&self.means) {
            for (a, v) in mean.iter_mut().zip(m) {
                *a += w * v;
            }
        }
        let mut cov = vec![0.0; d * d];
        for ((w, m), s) in self.weights.iter().zip(&self.means).zip(&self.stds) {
            for i in 0..d {
                cov[i * d + i] += w * s * s;
                for j in 0..d {
                    cov[i * d + j] += w * (m[i] - mean[i]) * (m[j] - mean[j]);
                }
            }
        }
        (mean, cov)
    }

    /// The component weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    /// The component means.
    pub fn means(&self) -> &[Vec<f64>] {
        &self.means
    }
    /// The component standard deviations.
    pub fn stds(&self) -> &[f64] {
        &self.stds
    }

    /// Draws rows `rows` (global sample indices) as a row-major `[n, d]` vector: a component by
    /// its weight, then mu_c + s_c z.
    pub fn sample(&self, noise: &NoiseSource, rows: Range<u64>) -> Vec<f64> {
        let d = self.dim();
        let u = noise.uniforms(Stream::Component, 0, rows.clone());
        let z = noise.normals(Stream::Data, 0, rows, d);
        let mut cumulative = Vec::with_capacity(self.weights.len());
        let mut acc = 0.0;
        for w in &self.weights {
            acc += w;
            cumulative.push(acc);
        }
        let mut out = Vec::with_capacity(z.len());
        for (i, ui) in u.iter().enumerate() {
            let c = cumulative
                .partition_point(|cw| *cw <= ui * acc)
                .min(self.weights.len() - 1);
            for j in 0..d {
                out.push(self.means[c][j] + self.stds[c] * z[i * d + j]);
            }
        }
        out
    }

    /// Whether every component has a positive width, so that the mixture has a density (and a
    /// continuous CDF for KS tests).
    pub fn is_continuous(&self) -> bool {
        self.stds.iter().all(|s| *s > 0.0)
    }

    /// The mixture diffused to `alpha_bar`: component c becomes N(sqrt(ab) mu_c, (ab s_c^2 + 1 - ab) I).
    pub fn diffused(&self, alpha_bar: f64) -> Mixture {
        let a = alpha_bar.sqrt();
        Mixture {
            weights: self.weights.clone(),
            means: self
                .means
                .iter()
                .map(|m| m.iter().map(|v| a * v).collect())
                .collect(),
            stds: self
                .stds
                .iter()
                .map(|s| (alpha_bar * s * s + (1.0 - alpha_bar)).sqrt())
                .collect(),
        }
    }

    /// ln (pi_c N(x; mu_c, s_c^2 I)) for every component c at one point.
    fn component_log_densities(&self, x: &[f64]) -> Vec<f64> {
        let d = self.dim() as f64;
        (0..self.weights.len())
            .map(|c| {
                let v = self.stds[c] * self.stds[c];
                let r2: f64 = x
                    .iter()
                    .zip(&self.means[c])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                self.weights[c].ln() - 0.5 * d * (std::f64::consts::TAU * v).ln() - r2 / (2.0 * v)
            })
            .collect()
    }

    /// ln p(x) at one point (every component needs s_c > 0 for a finite density).
    pub fn log_density(&self, x: &[f64]) -> f64 {
        log_sum_exp(&self.component_log_densities(x))
    }

    /// The score grad ln p(x) at one point: sum_c pi_c(x) (mu_c - x) / s_c^2 (seed 004).
    pub fn score(&self, x: &[f64]) -> Vec<f64> {
        let resp = self.responsibilities(x);
        let mut g = vec![0.0; x.len()];
        for (c, r) in resp.iter().enumerate() {
            let v = self.stds[c] * self.stds[c];
            for j in 0..x.len() {
                g[j] += r * (self.means[c][j] - x[j]) / v;
            }
        }
        g
    }

    /// The posterior probabilities pi_c(x) of the components at one point.
    pub fn responsibilities(&self, x: &[f64]) -> Vec<f64> {
        let logits = self.component_log_densities(x);
        let m = log_sum_exp(&logits);
        logits.iter().map(|l| (l - m).exp()).collect()
    }

    /// The CDF of a 1-D mixture at x: sum_c w_c Phi((x - mu_c) / s_c) (a step for s_c = 0).
    pub fn cdf_1d(&self, x: f64) -> f64 {
        self.weights
            .iter()
            .zip(&self.means)
            .zip(&self.stds)
            .map(|((w, m), s)| {
                let p = if *s > 0.0 {
                    crate::metrics::normal_cdf((x - m[0]) / s)
                } else if x >= m[0] {
                    1.0
                } else {
                    0.0
                };
                w * p
            })
            .sum()
    }

    /// The CDF of the projection <u, x> for a unit vector u: a 1-D mixture with means <u, mu_c>
    /// and the same widths (isotropy).
    pub fn projected(&self, u: &[f64]) -> Mixture {
        Mixture {
            weights: self.weights.clone(),
            means: self
                .means
                .iter()
                .map(|m| vec![m.iter().zip(u).map(|(a, b)| a * b).sum()])
                .collect(),
            stds: self.stds.clone(),
        }
    }

    /// The exact denoiser of this mixture on `device`.
    pub fn denoiser(&self, device: &Device) -> ExactDenoiser {
        ExactDenoiser::new(self.clone(), device)
    }
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// The optimal denoiser of a mixture: E[x_0 | x_t] = sum_c pi_c(x_t) E[x_0 | x_t, c] with
/// E[x_0 | x_t, c] = mu_c + k_c (x_t - sqrt(ab) mu_c), k_c = sqrt(ab) s_c^2 / v_c.
///
/// It computes each row on its own in f64 (rows in parallel): a row's answer is the same to the
/// last bit whatever batch it comes in, which a batched matrix product does not promise.
pub struct ExactDenoiser {
    mixture: Mixture,
    device: Device,
}

/// Per-component constants of the mixture diffused to one alpha-bar.
struct Diffused {
    /// sqrt(ab) mu_c, row-major `[C, d]`.
    scaled_means: Vec<f64>,
    /// -1 / (2 v_c).
    neg_inv_2v: Vec<f64>,
    /// ln w_c - d/2 ln v_c.
    log_norm: Vec<f64>,
    /// k_c = sqrt(ab) s_c^2 / v_c.
    gain: Vec<f64>,
}

impl Mixture {
    fn at(&self, alpha_bar: f64) -> Diffused {
        let (a, d) = (alpha_bar.sqrt(), self.dim() as f64);
        let mut out = Diffused {
            scaled_means: vec![],
            neg_inv_2v: vec![],
            log_norm: vec![],
            gain: vec![],
        };
        for ((w, m), s) in self.weights.iter().zip(&self.means).zip(&self.stds) {
            let v = (alpha_bar * s * s + (1.0 - alpha_bar)).max(f64::MIN_POSITIVE);
            out.scaled_means.extend(m.iter().map(|mu| a * mu));
            out.neg_inv_2v.push(-0.5 / v);
            out.log_norm.push(w.ln() - 0.5 * d * v.ln());
            out.gain.push(a * s * s / v);
        }
        out
    }

    /// E[x_0 | x_t = x] for x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps: the posterior mean of each
    /// component (seed 004's Gaussian denoising, section 2) weighted by its responsibility.
    pub fn posterior_mean(&self, x: &[f64], alpha_bar: f64) -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        self.posterior_mean_into(
            &self.at(alpha_bar),
            x,
            &mut out,
            &mut vec![0.0; self.weights.len()],
        );
        out
    }

    fn posterior_mean_into(&self, k: &Diffused, x: &[f64], out: &mut [f64], logits: &mut [f64]) {
        let d = x.len();
        let mut top = f64::NEG_INFINITY;
        for (c, l) in logits.iter_mut().enumerate() {
            let mu = &k.scaled_means[c * d..(c + 1) * d];
            let r2: f64 = x.iter().zip(mu).map(|(a, b)| (a - b) * (a - b)).sum();
            *l = k.log_norm[c] + k.neg_inv_2v[c] * r2;
            top = top.max(*l);
        }
        let mut total = 0.0;
        out.iter_mut().for_each(|o| *o = 0.0);
        for (c, l) in logits.iter().enumerate() {
            let p = (l - top).exp();
            if p == 0.0 {
                continue;
            }
            total += p;
            let mu = &k.scaled_means[c * d..(c + 1) * d];
            let a = &self.means[c];
            for j in 0..d {
                out[j] += p * (a[j] + k.gain[c] * (x[j] - mu[j]));
            }
        }
        out.iter_mut().for_each(|o| *o /= total);
    }
}

impl ExactDenoiser {
    /// The exact denoiser of `mixture`, answering with tensors on `device`.
    pub fn new(mixture: Mixture, device: &Device) -> Self {
        Self {
            mixture,
            device: device.clone(),
        }
    }

    /// The mixture this denoiser is exact for.
    pub fn mixture(&self) -> &Mixture {
        &self.mixture
    }
}

impl Denoiser for ExactDenoiser {
    fn dim(&self) -> usize {
        self.mixture.dim()
    }

    fn moments(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        Some(self.mixture.moments())
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> Result<Prediction> {
        check_dim(x, self.dim())?;
        if !(level.alpha_bar > 0.0 && level.alpha_bar <= 1.0) {
            return invalid(format!("alpha-bar {} is not in (0, 1]", level.alpha_bar));
        }
        let [n, d] = x.dims();
        let xs = to_vec(x)?;
        let k = self.mixture.at(level.alpha_bar);
        let mut x0 = vec![0.0; n * d];
        let rows_per_task = (4096 / self.mixture.weights.len().max(1)).max(1);
        x0.par_chunks_mut(d * rows_per_task)
            .zip(xs.par_chunks(d * rows_per_task))
            .for_each(|(out, inp)| {
                let mut logits = vec![0.0; self.mixture.weights.len()];
                for (o, xi) in out.chunks_mut(d).zip(inp.chunks(d)) {
                    self.mixture.posterior_mean_into(&k, xi, o, &mut logits);
                }
            });
        let value = from_flat(&x0, n, d, &self.device);
        Ok(Prediction {
            target: Target::X0,
            value,
            x: x.clone(),
            level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{from_rows, to_rows};

    fn mix2d() -> Mixture {
        Mixture::new(
            vec![0.2, 0.5, 0.3],
            vec![vec![-2.0, 0.0], vec![1.0, 1.0], vec![3.0, -1.0]],
            vec![0.0, 0.5, 1.5],
        )
        .unwrap()
    }

    /// A single Gaussian N(mu, s^2): E[x0 | xt] = mu + sqrt(ab) s^2 / (ab s^2 + 1 - ab) (xt - sqrt(ab) mu).
    #[test]
    fn gaussian_posterior_mean_is_the_closed_form() {
        let device = crate::device::cpu();
        let g = Mixture::new(vec![1.0], vec![vec![0.7]], vec![1.3]).unwrap();
        let level = Level {
            t: 3.0,
            alpha_bar: 0.4,
        };
        let xs = [-3.0, -0.5, 0.0, 2.5];
        let x = from_rows(&xs.iter().map(|v| vec![*v]).collect::<Vec<_>>(), &device);
        let got = to_rows(&g.denoiser(&device).predict(&x, level).unwrap().x0()).unwrap();
        let (a, s2) = (0.4f64.sqrt(), 1.3f64 * 1.3);
        for (xi, gi) in xs.iter().zip(got) {
            let want = 0.7 + a * s2 / (0.4 * s2 + 0.6) * (xi - a * 0.7);
            assert!((gi[0] - want).abs() < 1e-5, "{} vs {want}", gi[0]);
        }
    }

    /// Tweedie (seed 004): sqrt(ab) E[x0 | x] = x + (1 - ab) grad ln q_t(x), with the score of
    /// the diffused mixture checked against a central difference of its log-density.
    #[test]
    fn denoiser_obeys_tweedie_with_the_finite_difference_score() {
        let device = crate::device::cpu();
        let m = mix2d();
        let ab = 0.3;
        let q = m.diffused(ab);
        let points = vec![
            vec![0.1, 0.2],
            vec![-1.5, 0.4],
            vec![2.5, -2.0],
            vec![4.0, 4.0],
        ];
        let x = from_rows(&points, &device);
        let pred = m
            .denoiser(&device)
            .predict(
                &x,
                Level {
                    t: 5.0,
                    alpha_bar: ab,
                },
            )
            .unwrap();
        let x0 = to_rows(&pred.x0()).unwrap();
        let score = to_rows(&pred.score()).unwrap();
        let h = 1e-5;
        for (i, p) in points.iter().enumerate() {
            for j in 0..2 {
                let (mut up, mut dn) = (p.clone(), p.clone());
                up[j] += h;
                dn[j] -= h;
                let fd = (q.log_density(&up) - q.log_density(&dn)) / (2.0 * h);
                // Seed 004's analytic score of the diffused mixture, sum_c pi_c (mu_c - x) / s_c^2.
                let analytic = q.score(p)[j];
                assert!(
                    (analytic - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                    "{analytic} vs {fd}"
                );
                assert!(
                    (score[i][j] - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                    "{} vs {fd}",
                    score[i][j]
                );
                let tweedie = (p[j] + (1.0 - ab) * fd) / ab.sqrt();
                assert!((x0[i][j] - tweedie).abs() < 1e-4 * (1.0 + tweedie.abs()));
            }
        }
    }

    #[test]
    fn a_row_is_denoised_the_same_alone_or_in_a_batch() {
        let device = crate::device::cpu();
        let pts: Vec<Vec<f64>> = (0..3000)
            .map(|i| vec![(i as f64 * 0.37).sin() * 3.0])
            .collect();
        let m = Mixture::empirical(pts).unwrap();
        let x: Vec<Vec<f64>> = (0..2000).map(|i| vec![(i as f64) * 0.003 - 3.0]).collect();
        let den = m.denoiser(&device);
        let level = Level {
            t: 1.0,
            alpha_bar: 0.9,
        };
        let whole = to_rows(&den.predict(&from_rows(&x, &device), level).unwrap().x0()).unwrap();
        for (i, xi) in x.iter().enumerate().step_by(97) {
            let one = to_rows(
                &den.predict(&from_rows(std::slice::from_ref(xi), &device), level)
                    .unwrap()
                    .x0(),
            )
            .unwrap();
            assert_eq!(one[0][0], whole[i][0]);
        }
    }

    /// Each component's share of 40,000 draws, within 5 binomial standard errors; the
    /// components are 20 widths apart, so a draw's component is read off without error.
    #[test]
    fn moments_are_the_closed_form_and_the_samples() {
        // 1-D by hand: weights 0.3, 0.7 at -2 and 1.5, stds 0.1 and 0.05.
        let m = Mixture::new(vec![0.3, 0.7], vec![vec![-2.0], vec![1.5]], vec![0.1, 0.05]).unwrap();
        let (mean, cov) = m.moments();
        assert!((mean[0] - 0.45).abs() < 1e-12);
        let want = 0.3 * (0.01 + 4.0) + 0.7 * (0.0025 + 2.25) - 0.45 * 0.45;
        assert!((cov[0] - want).abs() < 1e-12, "{cov:?}");
        // 2-D against 200,000 samples: each moment within 5 standard errors.
        let m = mix2d();
        let (mean, cov) = m.moments();
        let n = 200_000u64;
        let x = m.sample(&NoiseSource::new(9), 0..n);
        let rows: Vec<Vec<f64>> = x.chunks(2).map(<[f64]>::to_vec).collect();
        let (em, ec) = crate::frechet::mean_cov(&rows).unwrap();
        for i in 0..2 {
            let se = (cov[i * 2 + i] / n as f64).sqrt();
            assert!((em[i] - mean[i]).abs() < 5.0 * se, "{em:?} {mean:?}");
        }
        for (e, c) in ec.iter().zip(&cov) {
            assert!((e - c).abs() < 0.02 * cov[0].max(cov[3]), "{ec:?} {cov:?}");
        }
    }

    #[test]
    fn sampling_draws_components_by_weight() {
        let m = Mixture::new(
            vec![0.2, 0.5, 0.3],
            vec![vec![-10.0, 0.0], vec![0.0, 10.0], vec![10.0, 0.0]],
            vec![0.0, 0.5, 0.5],
        )
        .unwrap();
        let n = 40_000u64;
        let x = m.sample(&NoiseSource::new(3), 0..n);
        let mut counts = [0usize; 3];
        for row in x.chunks(2) {
            let c = if row[0] < -5.0 {
                0
            } else if row[1] > 5.0 {
                1
            } else {
                2
            };
            counts[c] += 1;
        }
        for (c, w) in m.weights().iter().enumerate() {
            let share = counts[c] as f64 / n as f64;
            let se = (w * (1.0 - w) / n as f64).sqrt();
            assert!(
                (share - w).abs() < 5.0 * se,
                "component {c}: {share} vs {w}"
            );
        }
    }

    #[test]
    fn invalid_mixtures_are_errors() {
        assert!(Mixture::new(vec![0.5, 0.6], vec![vec![0.0], vec![1.0]], vec![1.0, 1.0]).is_err());
        assert!(Mixture::new(vec![1.0], vec![vec![0.0]], vec![-1.0]).is_err());
        assert!(
            Mixture::new(
                vec![0.5, 0.5],
                vec![vec![0.0], vec![1.0, 2.0]],
                vec![1.0, 1.0]
            )
            .is_err()
        );
        assert!(Mixture::new(vec![1.0], vec![vec![f64::NAN]], vec![1.0]).is_err());
        assert!(Mixture::new(vec![], vec![], vec![]).is_err());
    }
}
