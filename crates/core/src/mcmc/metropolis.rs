//! The Metropolis-Hastings method (seed 000): propose x' from q(x' | x), accept with
//! probability min(1, exp(-E(x')) q(x | x') / (exp(-E(x)) q(x' | x))).

use std::ops::Range;

use super::{Energy, check_rows, check_starts};
use crate::error::{CoreError, Result, invalid};
use crate::noise::{NoiseSource, Stream};

/// A proposal distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Proposal {
    /// x' = x + width z: symmetric, so the Hastings ratio is 1.
    Gaussian {
        /// Standard deviation of the step.
        width: f64,
    },
    /// Drift then diffuse (seed 000; MALA): x' = x - delta E'(x) + sqrt(2 delta) z.
    Langevin {
        /// The Langevin step delta.
        delta: f64,
    },
}

impl Proposal {
    /// Parses `gaussian:WIDTH` or `langevin:DELTA`.
    pub fn parse(spec: &str) -> Result<Self> {
        let Some((name, arg)) = spec.split_once(':') else {
            return invalid(format!(
                "proposal '{spec}': expected gaussian:WIDTH or langevin:DELTA"
            ));
        };
        let v: f64 = arg.parse().map_err(|_| {
            CoreError::Invalid(format!("proposal '{spec}': '{arg}' is not a number"))
        })?;
        if !(v.is_finite() && v > 0.0) {
            return invalid(format!(
                "proposal '{spec}': the step must be a positive number"
            ));
        }
        match name {
            "gaussian" => Ok(Proposal::Gaussian { width: v }),
            "langevin" => Ok(Proposal::Langevin { delta: v }),
            _ => invalid(format!(
                "unknown proposal '{spec}' (expected gaussian:WIDTH or langevin:DELTA)"
            )),
        }
    }

    /// A proposal from x with standard normal z.
    fn propose(&self, energy: &Energy, x: f64, z: f64) -> f64 {
        match self {
            Proposal::Gaussian { width } => x + width * z,
            Proposal::Langevin { delta } => {
                x - delta * energy.gradient(x) + (2.0 * delta).sqrt() * z
            }
        }
    }

    /// ln q(to | from), up to a constant that cancels in the ratio.
    fn log_q(&self, energy: &Energy, from: f64, to: f64) -> f64 {
        match self {
            Proposal::Gaussian { .. } => 0.0,
            Proposal::Langevin { delta } => {
                let m = from - delta * energy.gradient(from);
                -(to - m) * (to - m) / (4.0 * delta)
            }
        }
    }
}

/// The chains' final states and their acceptance counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Metropolis {
    /// Final state of each chain.
    pub states: Vec<f64>,
    /// Proposals accepted, over all chains and steps.
    pub accepted: u64,
    /// Proposals made.
    pub proposed: u64,
}

impl Metropolis {
    /// The fraction of proposals accepted.
    pub fn acceptance(&self) -> f64 {
        self.accepted as f64 / self.proposed.max(1) as f64
    }

    /// Refuses a run whose chains never moved: with at least 100 proposals and none accepted,
    /// the final states are the start, not draws of exp(-E) (a proposal far too wide or too
    /// narrow for the energy).
    pub fn check_moved(&self, proposal: &str) -> Result<()> {
        if self.proposed >= 100 && self.accepted == 0 {
            return invalid(format!(
                "no proposal of {} was accepted: the chains never left their start; the \
                 proposal '{proposal}' does not fit this energy (try a width near 1)",
                self.proposed
            ));
        }
        Ok(())
    }
}

/// Runs one chain per entry of `x0` for `steps` steps, calling `on_step(k, &states)` after step k.
pub fn metropolis(
    energy: &Energy,
    x0: &[f64],
    proposal: Proposal,
    steps: usize,
    noise: &NoiseSource,
    rows: Range<u64>,
    on_step: &mut dyn FnMut(usize, &[f64]),
) -> Result<Metropolis> {
    check_rows(x0, &rows)?;
    check_starts(energy, x0)?;
    let mut x = x0.to_vec();
    let mut accepted = 0u64;
    for k in 1..=steps {
        let z = noise.normals(Stream::Chain, k as u64, rows.clone(), 1);
        let u = noise.uniforms(Stream::Accept, k as u64, rows.clone());
        for ((xi, zi), ui) in x.iter_mut().zip(&z).zip(&u) {
            let y = proposal.propose(energy, *xi, *zi);
            let log_ratio = energy.value(*xi) - energy.value(y) + proposal.log_q(energy, y, *xi)
                - proposal.log_q(energy, *xi, y);
            if ui.ln() < log_ratio {
                *xi = y;
                accepted += 1;
            }
        }
        on_step(k, &x);
    }
    Ok(Metropolis {
        states: x,
        accepted,
        proposed: (steps * x0.len()) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::super::langevin;
    use super::*;
    use crate::metrics::{ks_one_sample, normal_cdf};

    const CHAINS: u64 = 20_000;

    fn variance(x: &[f64]) -> f64 {
        let n = x.len() as f64;
        let m = x.iter().sum::<f64>() / n;
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)
    }

    /// Seed 000, approach 1: Langevin chains from x = 0 reach exp(-E) = N(0, 1/K). The
    /// discretised chain's exact law is N(0, 1/(K(1 - delta K/2))): KS against it, and the sample
    /// variance within 5 standard errors (sd of s^2 is sigma^2 sqrt(2/(n-1))).
    #[test]
    fn langevin_reaches_the_boltzmann_law() {
        let e = Energy::Quadratic { k: 2.0 };
        let delta = 0.01;
        let x = langevin(
            &e,
            &vec![0.0; CHAINS as usize],
            delta,
            1500,
            &NoiseSource::new(1),
            0..CHAINS,
            &mut |_, _| {},
        )
        .unwrap();
        let v_exact = e.langevin_variance(delta).unwrap();
        let p = ks_one_sample(&x, |v| normal_cdf(v / v_exact.sqrt())).p_value;
        assert!(p > 1e-3, "KS p = {p}");
        let se = v_exact * (2.0 / (CHAINS - 1) as f64).sqrt();
        assert!((variance(&x) - v_exact).abs() < 5.0 * se);
    }

    /// Seed 000, approach 2: Metropolis with a Gaussian proposal samples exp(-E) exactly.
    #[test]
    fn metropolis_gaussian_samples_the_boltzmann_law() {
        let e = Energy::Quadratic { k: 1.0 };
        let r = metropolis(
            &e,
            &vec![3.0; CHAINS as usize],
            Proposal::Gaussian { width: 1.0 },
            300,
            &NoiseSource::new(2),
            0..CHAINS,
            &mut |_, _| {},
        )
        .unwrap();
        let p = ks_one_sample(&r.states, |v| e.stationary_cdf(v)).p_value;
        assert!(p > 1e-3, "KS p = {p}");
        assert!(r.acceptance() > 0.3 && r.acceptance() < 0.9);
    }

    /// Seed 000: with the drift-then-diffuse proposal, the acceptance ratio tends to 1 as delta
    /// shrinks, and the chain still samples exp(-E) exactly.
    #[test]
    fn langevin_proposal_is_almost_always_accepted_at_small_step() {
        let e = Energy::Quadratic { k: 1.0 };
        let mut last = 0.0;
        for delta in [0.5, 0.1, 0.01] {
            let r = metropolis(
                &e,
                &vec![0.0; 5000],
                Proposal::Langevin { delta },
                200,
                &NoiseSource::new(3),
                0..5000,
                &mut |_, _| {},
            )
            .unwrap();
            assert!(
                r.acceptance() > last,
                "acceptance must grow as delta shrinks"
            );
            last = r.acceptance();
        }
        assert!(last > 0.99, "acceptance {last} at delta = 0.01");
        let r = metropolis(
            &e,
            &vec![0.0; CHAINS as usize],
            Proposal::Langevin { delta: 0.2 },
            400,
            &NoiseSource::new(4),
            0..CHAINS,
            &mut |_, _| {},
        )
        .unwrap();
        assert!(ks_one_sample(&r.states, |v| e.stationary_cdf(v)).p_value > 1e-3);
    }

    #[test]
    fn bad_specs_are_errors() {
        for s in ["gaussian", "gaussian:-1", "walk:1", "langevin:x"] {
            assert!(Proposal::parse(s).is_err(), "{s}");
        }
        for s in ["quadratic:0", "quartic", "quadratic:nan"] {
            assert!(Energy::parse(s).is_err(), "{s}");
        }
        assert_eq!(
            Energy::parse("quadratic").unwrap(),
            Energy::Quadratic { k: 1.0 }
        );
    }
}
