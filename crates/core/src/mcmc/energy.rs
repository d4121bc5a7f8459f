//! Energies E(x) whose Boltzmann law exp(-E) the chains sample.

use crate::error::{Result, invalid};
use crate::metrics::normal_cdf;

/// An energy function of one coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Energy {
    /// E(x) = K x^2 / 2, whose law exp(-E) is N(0, 1/K) (seed 000's harmonic oscillator).
    Quadratic {
        /// The spring constant K > 0.
        k: f64,
    },
}

impl Energy {
    /// Parses `quadratic[:K]` (K = 1 by default).
    pub fn parse(spec: &str) -> Result<Self> {
        let (name, arg) = spec
            .split_once(':')
            .map_or((spec, None), |(a, b)| (a, Some(b)));
        match name {
            "quadratic" => {
                let k = match arg {
                    None => 1.0,
                    Some(a) => a.parse::<f64>().map_err(|_| {
                        crate::CoreError::Invalid(format!("energy '{spec}': '{a}' is not a number"))
                    })?,
                };
                if !(k.is_finite() && k > 0.0) {
                    return invalid(format!("energy '{spec}': K must be a positive number"));
                }
                Ok(Energy::Quadratic { k })
            }
            _ => invalid(format!("unknown energy '{spec}' (expected quadratic[:K])")),
        }
    }

    /// E(x).
    pub fn value(&self, x: f64) -> f64 {
        match self {
            Energy::Quadratic { k } => 0.5 * k * x * x,
        }
    }

    /// E'(x).
    pub fn gradient(&self, x: f64) -> f64 {
        match self {
            Energy::Quadratic { k } => k * x,
        }
    }

    /// The CDF of the stationary law exp(-E) / Z.
    pub fn stationary_cdf(&self, x: f64) -> f64 {
        match self {
            Energy::Quadratic { k } => normal_cdf(x * k.sqrt()),
        }
    }

    /// The density of the stationary law exp(-E) / Z.
    pub fn stationary_density(&self, x: f64) -> f64 {
        match self {
            Energy::Quadratic { k } => (k / std::f64::consts::TAU).sqrt() * (-self.value(x)).exp(),
        }
    }

    /// The variance of the stationary law exp(-E) / Z.
    pub fn stationary_variance(&self) -> f64 {
        match self {
            Energy::Quadratic { k } => 1.0 / k,
        }
    }

    /// The stationary variance of the *discretised* Langevin chain with step delta, where it has
    /// a closed form: x' = (1 - delta K) x + sqrt(2 delta) z gives 1 / (K (1 - delta K / 2)).
    pub fn langevin_variance(&self, delta: f64) -> Option<f64> {
        match self {
            Energy::Quadratic { k } if delta * k < 2.0 => Some(1.0 / (k * (1.0 - delta * k / 2.0))),
            Energy::Quadratic { .. } => None,
        }
    }
}
