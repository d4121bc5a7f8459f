//! The probability-flow ODE of a Gaussian N(m, C), solved in closed form: in the noise-level
//! view x~ = x0 + sigma z, dx~/dsigma = (x~ - D(x~, sigma)) / sigma with
//! D = m + C (C + sigma^2 I)^-1 (x~ - m), whose solution from sigma_0 to sigma_1 is
//!
//!   x~_1 = m + (C + sigma_1^2 I)^(1/2) (C + sigma_0^2 I)^(-1/2) (x~_0 - m).
//!
//! At the top of a grid (sigma far above the data's spread) every distribution's flow is its
//! Gaussian's to first order in C / sigma^2 (Wang & Vastola 2023, "The hidden linear structure in
//! score-based models"), so a sampler can take its first step this way without evaluating the
//! denoiser when the data's mean and covariance are known (an exact mixture's are).

use burn::tensor::Tensor;

use crate::error::{CoreError, Result, invalid};
use crate::frechet::symmetric_eigen;
use crate::tensor::from_flat;

/// The closed-form flow of N(mean, cov).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianFlow {
    mean: Vec<f64>,
    /// Eigenvalues of the covariance (clamped at 0).
    lambda: Vec<f64>,
    /// Its eigenvectors, columns of a row-major `[d, d]` matrix.
    vectors: Vec<f64>,
}

impl GaussianFlow {
    /// The flow of N(`mean`, `cov`), `cov` row-major `[d, d]`, symmetric.
    pub fn new(mean: Vec<f64>, cov: Vec<f64>) -> Result<Self> {
        let d = mean.len();
        if d == 0 || cov.len() != d * d {
            return Err(CoreError::Shape(format!(
                "a Gaussian of mean {d} needs a {d} x {d} covariance (got {} values)",
                cov.len()
            )));
        }
        if mean.iter().chain(&cov).any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite(
                "the Gaussian's mean or covariance".into(),
            ));
        }
        let scale = cov.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
        for i in 0..d {
            for j in 0..i {
                if (cov[i * d + j] - cov[j * d + i]).abs() > 1e-9 * scale {
                    return invalid(format!("the covariance is not symmetric at ({i}, {j})"));
                }
            }
        }
        let (lambda, vectors) = symmetric_eigen(&cov, d);
        if let Some(l) = lambda.iter().find(|l| **l < -1e-9 * scale) {
            return invalid(format!("the covariance has a negative eigenvalue {l}"));
        }
        Ok(Self {
            mean,
            lambda: lambda.into_iter().map(|l| l.max(0.0)).collect(),
            vectors,
        })
    }

    /// The data's dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// V f(Lambda) V^T, row-major.
    fn spectral(&self, f: impl Fn(f64) -> f64) -> Vec<f64> {
        let d = self.dim();
        let mut a = vec![0.0; d * d];
        for (k, l) in self.lambda.iter().enumerate() {
            let fk = f(*l);
            for i in 0..d {
                let vik = self.vectors[i * d + k] * fk;
                for j in 0..d {
                    a[i * d + j] += vik * self.vectors[j * d + k];
                }
            }
        }
        a
    }

    /// m + A (x - m) for each row of `x` (A symmetric).
    fn affine(&self, x: &Tensor<2>, a: &[f64]) -> Result<Tensor<2>> {
        let d = self.dim();
        let [_, dx] = x.dims();
        if dx != d {
            return Err(CoreError::Shape(format!(
                "data has {dx} dimensions, the Gaussian {d}"
            )));
        }
        let device = x.device();
        let m = from_flat(&self.mean, 1, d, &device);
        let a = from_flat(a, d, d, &device);
        Ok((x.clone() - m.clone()).matmul(a) + m)
    }

    /// Carries `x` (the noise-level view, rows at `from`) along the flow to `to`.
    pub fn transport(&self, x: &Tensor<2>, from: f64, to: f64) -> Result<Tensor<2>> {
        let (s0, s1) = (from * from, to * to);
        if !(s0 > 0.0 && s0.is_finite() && s1.is_finite()) {
            return invalid(format!(
                "the Gaussian flow runs between finite sigmas, the first above 0 (got {from} to {to})"
            ));
        }
        self.affine(x, &self.spectral(|l| ((l + s1) / (l + s0)).sqrt()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::Mixture;
    use crate::samplers::karras::dpmpp_3m;
    use crate::samplers::sigma::SigmaDenoiser;
    use crate::samplers::silent;
    use crate::schedule::Schedule;
    use crate::tensor::{from_rows, to_rows};

    fn cpu() -> burn::tensor::Device {
        crate::device::cpu()
    }

    #[test]
    fn the_flow_of_one_gaussian_is_the_odes_solution() {
        // A one-component mixture is an isotropic Gaussian with an exact denoiser; the
        // correlated case is checked on the closed form below.
        let m = Mixture::new(vec![1.0], vec![vec![0.5, -1.0]], vec![0.3]).unwrap();
        let flow = GaussianFlow::new(vec![0.5, -1.0], vec![0.09, 0.0, 0.0, 0.09]).unwrap();
        let s = Schedule::linear(1e-4, 0.02, 1000).unwrap();
        let den = m.denoiser(&cpu());
        let model = SigmaDenoiser::new(&den, &s);
        let x = from_rows(&[vec![3.0, 1.0], vec![-2.0, 0.5], vec![0.0, -7.0]], &cpu());
        // An accurate solve from sigma 10 to 0.05: 3M on 400 log-spaced levels.
        let n = 400;
        let sigmas: Vec<f64> = (0..=n)
            .map(|i| (10f64.ln() + (0.05f64.ln() - 10f64.ln()) * i as f64 / n as f64).exp())
            .collect();
        let solved = dpmpp_3m(&model, x.clone() * 10.0, &sigmas, false, &mut silent).unwrap();
        let closed = flow.transport(&(x * 10.0), 10.0, 0.05).unwrap();
        for (a, b) in to_rows(&solved)
            .unwrap()
            .iter()
            .zip(to_rows(&closed).unwrap())
        {
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() < 1e-4, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn the_flow_carries_the_gaussians_marginals() {
        // N(m, C + s0^2 I) carried to s1 is N(m, C + s1^2 I): the transport matrix squared
        // against (C + s0^2) gives C + s1^2, checked on the closed form.
        let cov = vec![2.0, -0.6, -0.6, 0.5];
        let flow = GaussianFlow::new(vec![1.0, 2.0], cov.clone()).unwrap();
        let (s0, s1) = (3.0f64, 0.2f64);
        let a = flow.spectral(|l| ((l + s1 * s1) / (l + s0 * s0)).sqrt());
        let c0 = [cov[0] + s0 * s0, cov[1], cov[2], cov[3] + s0 * s0];
        // A C0 A^T.
        let mul = |p: &[f64], q: &[f64]| -> Vec<f64> {
            (0..4)
                .map(|ij| {
                    (0..2)
                        .map(|k| p[(ij / 2) * 2 + k] * q[k * 2 + ij % 2])
                        .sum()
                })
                .collect()
        };
        let got = mul(&mul(&a, &c0), &a);
        let want = [cov[0] + s1 * s1, cov[1], cov[2], cov[3] + s1 * s1];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} {want:?}");
        }
        // The mean stays.
        let x = from_rows(&[vec![1.0, 2.0]], &cpu());
        let y = to_rows(&flow.transport(&x, s0, s1).unwrap()).unwrap();
        assert!((y[0][0] - 1.0).abs() < 1e-6 && (y[0][1] - 2.0).abs() < 1e-6);
    }

    #[test]
    fn bad_moments_are_errors() {
        assert!(GaussianFlow::new(vec![0.0, 0.0], vec![1.0, 0.0, 0.0]).is_err());
        assert!(GaussianFlow::new(vec![0.0, 0.0], vec![1.0, 0.5, 0.0, 1.0]).is_err());
        assert!(GaussianFlow::new(vec![0.0, 0.0], vec![1.0, 0.0, 0.0, -1.0]).is_err());
        assert!(GaussianFlow::new(vec![f64::NAN], vec![1.0]).is_err());
        let flow = GaussianFlow::new(vec![0.0], vec![1.0]).unwrap();
        assert!(
            flow.transport(&from_rows(&[vec![1.0]], &cpu()), 0.0, 1.0)
                .is_err()
        );
        let wrong = from_rows(&[vec![1.0, 2.0]], &cpu());
        assert!(flow.transport(&wrong, 1.0, 0.5).is_err());
    }
}
