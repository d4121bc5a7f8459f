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
    /// E(x) = A (x^2 - 1)^2: two wells at -1 and 1 with a barrier of height A between them, a
    /// law with no closed form whose dynamics (hopping the barrier) is slow.
    DoubleWell {
        /// The barrier height A > 0.
        a: f64,
    },
}

/// Beyond this rise above the minimum, exp(-E) is below e^-40 and counts as no mass.
const NEGLIGIBLE: f64 = 40.0;

/// Simpson panels of the quadratures of laws without a closed form.
const PANELS: usize = 1000;

impl Energy {
    /// Parses `quadratic[:K]` (K = 1 by default) or `double-well[:A]` (A = 1 by default).
    pub fn parse(spec: &str) -> Result<Self> {
        let (name, arg) = spec
            .split_once(':')
            .map_or((spec, None), |(a, b)| (a, Some(b)));
        let number = |what: &str| -> Result<f64> {
            let v = match arg {
                None => 1.0,
                Some(a) => a.parse::<f64>().map_err(|_| {
                    crate::CoreError::Invalid(format!("energy '{spec}': '{a}' is not a number"))
                })?,
            };
            if !(v.is_finite() && v > 0.0) {
                return invalid(format!("energy '{spec}': {what} must be a positive number"));
            }
            Ok(v)
        };
        match name {
            "quadratic" => Ok(Energy::Quadratic { k: number("K")? }),
            "double-well" => Ok(Energy::DoubleWell { a: number("A")? }),
            _ => invalid(format!(
                "unknown energy '{spec}' (expected quadratic[:K] or double-well[:A])"
            )),
        }
    }

    /// E(x).
    pub fn value(&self, x: f64) -> f64 {
        match self {
            Energy::Quadratic { k } => 0.5 * k * x * x,
            Energy::DoubleWell { a } => a * (x * x - 1.0).powi(2),
        }
    }

    /// E'(x).
    pub fn gradient(&self, x: f64) -> f64 {
        match self {
            Energy::Quadratic { k } => k * x,
            Energy::DoubleWell { a } => 4.0 * a * x * (x * x - 1.0),
        }
    }

    /// An interval outside which exp(-E) / Z is negligible (E rises 40 above its minimum).
    pub fn support(&self) -> (f64, f64) {
        let r = match self {
            Energy::Quadratic { k } => (2.0 * NEGLIGIBLE / k).sqrt(),
            Energy::DoubleWell { a } => (1.0 + (NEGLIGIBLE / a).sqrt()).sqrt(),
        };
        (-r, r)
    }

    /// The CDF of the stationary law exp(-E) / Z.
    pub fn stationary_cdf(&self, x: f64) -> f64 {
        match self {
            Energy::Quadratic { k } => normal_cdf(x * k.sqrt()),
            Energy::DoubleWell { .. } => {
                let (lo, hi) = self.support();
                let x = x.clamp(lo, hi);
                let boltzmann = |v: f64| (-self.value(v)).exp();
                // Panels in proportion to the covered length, so that F(hi) = 1 to round-off.
                let panels = ((PANELS as f64 * (x - lo) / (hi - lo)).ceil() as usize).max(1);
                (simpson(boltzmann, lo, x, panels) / self.partition()).min(1.0)
            }
        }
    }

    /// The density of the stationary law exp(-E) / Z.
    pub fn stationary_density(&self, x: f64) -> f64 {
        match self {
            Energy::Quadratic { k } => (k / std::f64::consts::TAU).sqrt() * (-self.value(x)).exp(),
            Energy::DoubleWell { .. } => (-self.value(x)).exp() / self.partition(),
        }
    }

    /// The variance of the stationary law exp(-E) / Z.
    pub fn stationary_variance(&self) -> f64 {
        match self {
            Energy::Quadratic { k } => 1.0 / k,
            // Symmetric: the mean is 0.
            Energy::DoubleWell { .. } => {
                let (lo, hi) = self.support();
                simpson(|v| v * v * (-self.value(v)).exp(), lo, hi, PANELS) / self.partition()
            }
        }
    }

    /// Z = the integral of exp(-E) (by Simpson's rule over [`Energy::support`] where there is
    /// no closed form).
    pub fn partition(&self) -> f64 {
        match self {
            Energy::Quadratic { k } => (std::f64::consts::TAU / k).sqrt(),
            Energy::DoubleWell { .. } => {
                let (lo, hi) = self.support();
                simpson(|v| (-self.value(v)).exp(), lo, hi, PANELS)
            }
        }
    }

    /// The stationary variance of the *discretised* Langevin chain with step delta, where it has
    /// a closed form: x' = (1 - delta K) x + sqrt(2 delta) z gives 1 / (K (1 - delta K / 2)).
    pub fn langevin_variance(&self, delta: f64) -> Option<f64> {
        match self {
            Energy::Quadratic { k } if delta * k < 2.0 => Some(1.0 / (k * (1.0 - delta * k / 2.0))),
            _ => None,
        }
    }
}

/// Composite Simpson's rule for the integral of `f` over [lo, hi] on `panels` panel pairs.
fn simpson(f: impl Fn(f64) -> f64, lo: f64, hi: f64, panels: usize) -> f64 {
    let n = 2 * panels.max(1);
    let h = (hi - lo) / n as f64;
    let inner: f64 = (1..n)
        .map(|i| f(lo + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
        .sum();
    (f(lo) + f(hi) + inner) * h / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quadrature_agrees_with_the_closed_forms_of_the_quadratic() {
        // The double well's law has no closed form; Simpson's rule, checked on the Gaussian.
        let e = Energy::Quadratic { k: 2.0 };
        let (lo, hi) = e.support();
        let z = simpson(|v| (-e.value(v)).exp(), lo, hi, PANELS);
        // Simpson's error, (b - a) h^4 max|f| / 180 with h <= 0.0064 and max|f| = 12
        // K^2 = 48, is below 2e-10.
        assert!((z / e.partition() - 1.0).abs() < 1e-9, "Z {z}");
        for x in [-1.5, -0.2, 0.0, 0.7, 2.0] {
            let f = simpson(|v| (-e.value(v)).exp(), lo, x, PANELS) / z;
            assert!((f - e.stationary_cdf(x)).abs() < 1e-9, "F({x}) {f}");
        }
    }

    #[test]
    fn the_double_well_law_is_symmetric_normalised_and_has_its_modes_at_the_wells() {
        let e = Energy::DoubleWell { a: 2.0 };
        assert!((e.stationary_cdf(0.0) - 0.5).abs() < 1e-12);
        assert!((e.stationary_cdf(10.0) - 1.0).abs() < 1e-12);
        assert!(e.stationary_cdf(-10.0).abs() < 1e-12);
        assert!(e.stationary_density(1.0) > e.stationary_density(0.0));
        assert!(e.stationary_density(1.0) > e.stationary_density(1.3));
        // The derivative of the CDF is the density.
        let h = 1e-4;
        for x in [-1.2, -0.4, 0.3, 1.0] {
            let d = (e.stationary_cdf(x + h) - e.stationary_cdf(x - h)) / (2.0 * h);
            assert!(
                (d / e.stationary_density(x) - 1.0).abs() < 1e-6,
                "x {x}: {d}"
            );
        }
        // E'(x) by central differences.
        for x in [-1.7, -0.5, 0.0, 0.9] {
            let g = (e.value(x + h) - e.value(x - h)) / (2.0 * h);
            assert!((g - e.gradient(x)).abs() < 1e-6, "x {x}");
        }
        assert!(e.stationary_variance() > 0.5 && e.stationary_variance() < 1.0);
        assert!(Energy::parse("double-well:0").is_err());
        assert_eq!(
            Energy::parse("double-well").unwrap(),
            Energy::DoubleWell { a: 1.0 }
        );
    }
}
