//! The one interface every model answers, and the conversions between what models predict.
//!
//! A model sees x_t in the variance-preserving scaling, x_t = sqrt(alpha-bar) x_0 + sqrt(1 - alpha-bar) eps,
//! at a noise [`Level`], and predicts eps, x_0 or v (Salimans & Ho 2022:
//! v = sqrt(alpha-bar) eps - sqrt(1 - alpha-bar) x_0). Samplers ask for whichever form their
//! update uses through [`Prediction`]; the conversions live here, once.

use burn::tensor::Tensor;

use crate::error::{CoreError, Result};

/// A noise level: the continuous time t (in schedule steps, for models that were trained on
/// step indices) and alpha-bar at that time (for everything else).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Continuous time in units of schedule steps, t in [0, T].
    pub t: f64,
    /// alpha-bar(t), in (0, 1].
    pub alpha_bar: f64,
}

impl Level {
    /// sqrt(alpha-bar), the signal scale.
    pub fn signal(&self) -> f64 {
        self.alpha_bar.sqrt()
    }
    /// sqrt(1 - alpha-bar), the noise scale.
    pub fn noise(&self) -> f64 {
        (1.0 - self.alpha_bar).max(0.0).sqrt()
    }
    /// sigma = sqrt((1 - alpha-bar) / alpha-bar), the variance-exploding noise level.
    pub fn sigma(&self) -> f64 {
        self.noise() / self.signal()
    }
}

/// What a model's output means (written `eps`, `x0`, `v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The noise eps that was added (DDPM, seeds 000-004).
    Eps,
    /// The clean data x_0.
    X0,
    /// The velocity v = sqrt(alpha-bar) eps - sqrt(1 - alpha-bar) x_0.
    V,
}

impl Target {
    /// The name users write.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Eps => "eps",
            Target::X0 => "x0",
            Target::V => "v",
        }
    }
}

impl std::str::FromStr for Target {
    type Err = CoreError;

    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "eps" => Target::Eps,
            "x0" => Target::X0,
            "v" => Target::V,
            other => {
                return Err(CoreError::Invalid(format!(
                    "unknown prediction target '{other}' (expected eps, x0 or v)"
                )));
            }
        })
    }
}

/// A model's output at (x_t, level), convertible to any target.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// What `value` holds.
    pub target: Target,
    /// The output, shaped like x_t.
    pub value: Tensor<2>,
    /// The input x_t it was made from.
    pub x: Tensor<2>,
    /// The level it was made at.
    pub level: Level,
}

impl Prediction {
    /// The predicted noise eps (seed 000's `GuessZ`).
    pub fn eps(&self) -> Tensor<2> {
        let (a, s) = (self.level.signal(), self.level.noise());
        match self.target {
            Target::Eps => self.value.clone(),
            // eps = (x - sqrt(ab) x0) / sqrt(1 - ab)
            Target::X0 => (self.x.clone() - self.value.clone() * a) / s,
            // eps = sqrt(1 - ab) x + sqrt(ab) v
            Target::V => self.x.clone() * s + self.value.clone() * a,
        }
    }

    /// The predicted clean data x_0 (Tweedie's formula for an exact denoiser).
    pub fn x0(&self) -> Tensor<2> {
        let (a, s) = (self.level.signal(), self.level.noise());
        match self.target {
            // x0 = (x - sqrt(1 - ab) eps) / sqrt(ab)
            Target::Eps => (self.x.clone() - self.value.clone() * s) / a,
            Target::X0 => self.value.clone(),
            // x0 = sqrt(ab) x - sqrt(1 - ab) v
            Target::V => self.x.clone() * a - self.value.clone() * s,
        }
    }

    /// The predicted v.
    pub fn v(&self) -> Tensor<2> {
        let (a, s) = (self.level.signal(), self.level.noise());
        self.eps() * a - self.x0() * s
    }

    /// The score grad_x log q_t(x) = -eps / sqrt(1 - alpha-bar) (seed 004, Tweedie).
    pub fn score(&self) -> Tensor<2> {
        self.eps() / (-self.level.noise())
    }
}

/// Anything that predicts the noise of x_t: an exact denoiser or a trained network. Samplers
/// take `&dyn Denoiser` and never know which.
pub trait Denoiser {
    /// The dimension d of the data.
    fn dim(&self) -> usize;

    /// Predicts at `level` for a batch `x` of shape `[n, dim]`.
    fn predict(&self, x: &Tensor<2>, level: Level) -> Result<Prediction>;

    /// The data's mean and covariance (row-major `[d, d]`) when the denoiser knows them, as an
    /// exact mixture does; a sampler's Gaussian first step needs them.
    fn moments(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        None
    }
}

/// A boxed denoiser is a denoiser (a front end picks the combinators at run time).
impl<D: Denoiser + ?Sized> Denoiser for Box<D> {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> Result<Prediction> {
        (**self).predict(x, level)
    }

    fn moments(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        (**self).moments()
    }
}

/// A borrowed denoiser is a denoiser (combinators wrap a `&dyn Denoiser`).
impl<D: Denoiser + ?Sized> Denoiser for &D {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> Result<Prediction> {
        (**self).predict(x, level)
    }

    fn moments(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        (**self).moments()
    }
}

/// Checks that a batch has the denoiser's dimension.
pub fn check_dim(x: &Tensor<2>, dim: usize) -> Result<()> {
    let [_, d] = x.dims();
    if d != dim {
        return Err(CoreError::Shape(format!(
            "data has {d} dimensions, the denoiser {dim}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{from_rows, to_vec};

    #[test]
    fn conversions_agree_with_the_forward_equation() {
        let device = crate::device::cpu();
        let x0 = from_rows(&[vec![0.4, -1.0], vec![2.0, 0.5]], &device);
        let eps = from_rows(&[vec![-0.3, 1.2], vec![0.7, 0.1]], &device);
        let level = Level {
            t: 10.0,
            alpha_bar: 0.36,
        };
        let (a, s) = (0.6, 0.8);
        let x = x0.clone() * a + eps.clone() * s;
        let v = eps.clone() * a - x0.clone() * s;
        for (target, value) in [
            (Target::Eps, eps.clone()),
            (Target::X0, x0.clone()),
            (Target::V, v.clone()),
        ] {
            let p = Prediction {
                target,
                value,
                x: x.clone(),
                level,
            };
            for (got, want) in [(p.eps(), &eps), (p.x0(), &x0), (p.v(), &v)] {
                for (g, w) in to_vec(&got).unwrap().iter().zip(to_vec(want).unwrap()) {
                    assert!((g - w).abs() < 1e-6, "{target:?}: {g} vs {w}");
                }
            }
            let score = to_vec(&p.score()).unwrap();
            for (g, e) in score.iter().zip(to_vec(&eps).unwrap()) {
                assert!((g + e / s).abs() < 1e-5);
            }
        }
    }
}
