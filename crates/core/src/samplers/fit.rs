//! A sigma grid fitted to the denoiser, in the spirit of Sabour et al. (2024), "Align Your Steps":
//! keep the sampler, move its levels. With ten evaluations a fixed family (Karras, exponential)
//! spends steps where the data's flow is straight and too few where it bends: where the modes
//! split (sigma near their spacing) and where each component takes its width (sigma near its
//! standard deviation). Here the n - 1 free levels of an n-step grid (the first stays at
//! sigma_max) are chosen to minimise the distance between the sampler's end points and those of
//! an accurate solve of the same ODE from the same pilot noise ([`super::endpoints`]: where the
//! samples sit in the reference's distribution, plus how far they are in its units); the
//! objective is a black box, minimised by Nelder-Mead in log sigma from the best of the
//! exponential and Karras grids (and, with few-step ends, whose first step is free, exponential
//! grids whose second level is 1, 2 or 4 times the data's largest standard deviation along an
//! axis: Nelder-Mead does not walk that far down from the others). On point masses every sample lands on
//! an atom, the error is flat between the grids that move a sample to another atom, and the fit
//! keeps its start.
//!
//! Absolute distances, not squared: a pilot sample near the split between two modes that changes
//! side contributes the whole spacing, and squared such samples dominate a pilot of a few
//! hundred; the fit then tunes the grid to them. On the narrow 1-D mixture of the few-step tests
//! (UniPC, 10 steps), squared error gave grids whose 10,000 fresh samples failed a KS test at
//! 0.001 for 2 of 8 pilots of 256 samples and 1 of 8 of 1,024; absolute error for none of 16 and
//! 16 (smallest p 0.008 and 0.005).
//!
//! Only deterministic samplers are fitted: their end point is a function of the start, which is
//! what the objective compares. The cost is some 10^4 to 10^5 evaluations of the whole pilot:
//! under a second for a mixture, a minute for a small 1-D MLP, far too much for an image UNet
//! on this machine.

use burn::tensor::Tensor;

use super::endpoints::EndpointDistance;
use super::{
    BatchNoise, Ends, GridKind, Sampler, SigmaMethod, SigmaRange, run, sigma_grid, silent,
};
use crate::denoiser::Denoiser;
use crate::error::{Result, invalid};
use crate::noise::NoiseSource;
use crate::optimize::{Stop, nelder_mead};
use crate::schedule::Schedule;
use crate::tensor::to_vec;

/// Steps of the reference solve: DPM-Solver++(3M), order 3, on an exponential grid.
const REFERENCE_STEPS: usize = 400;
/// The longest step (in log sigma) allowed after a step of length 1. Multistep updates
/// extrapolate the previous step's denoised value with coefficients like DPM-Solver++(2M)'s
/// 1 / (2 r), r = h_prev / h, so a long step after a short one amplifies the difference of two
/// nearly equal evaluations. Unbounded, a DPM-Solver++(2M) fit (of squared error) on a
/// 256-sample pilot put a step of 0.004 before one of 1.2 (the pilot's error fell), and samples
/// near the split between two modes, absent from the pilot, landed in the wrong mode. 1 + sqrt 2 is the zero-stability bound of
/// variable-step two-step BDF (Grigorieff 1983), taken here as a conservative limit.
const MAX_STEP_RATIO: f64 = 1.0 + std::f64::consts::SQRT_2;
/// Nelder-Mead restarts from the best point so far (a restart rebuilds a collapsed simplex).
const ROUNDS: usize = 3;

/// A fitted grid and what it bought (errors NaN for one step, which has nothing to fit).
#[derive(Debug, Clone, PartialEq)]
pub struct FittedGrid {
    /// The levels, one per step, decreasing (a run to 0 appends 0).
    pub sigmas: Vec<f64>,
    /// The end points' distance to the reference solve's on the pilot
    /// ([`super::endpoints`]), with the exponential grid of the same range and steps.
    pub error_exponential: f64,
    /// The same with the Karras grid (rho = 7).
    pub error_karras: f64,
    /// The same with the fitted grid.
    pub error_fitted: f64,
    /// Denoiser evaluations spent on fitting (each on the whole pilot).
    pub nfe: usize,
}

/// A grid is fitted by comparing end points, which only a deterministic sampler has.
pub(crate) fn check_fittable(method: SigmaMethod) -> Result<()> {
    if !method.is_deterministic() {
        return invalid(
            "a grid is fitted for deterministic samplers only (not euler-ancestral or heun with churn)",
        );
    }
    Ok(())
}

impl SigmaMethod {
    /// Whether the end point is a function of the start (no noise is drawn on the way): what a
    /// fitted grid needs.
    pub fn is_deterministic(&self) -> bool {
        match self {
            SigmaMethod::EulerAncestral { eta } => *eta <= 0.0,
            SigmaMethod::Heun(churn) => churn.s_churn <= 0.0,
            _ => true,
        }
    }
}

/// Fits the `steps` levels of `method`'s grid (taken with `ends`) for runs from step `from` to 0
/// within `range`, on `pilot` (starting states x_from, VP scaling).
#[allow(clippy::too_many_arguments)]
pub fn fit_grid(
    method: SigmaMethod,
    ends: Ends,
    denoiser: &dyn Denoiser,
    schedule: &Schedule,
    pilot: Tensor<2>,
    from: usize,
    steps: usize,
    range: SigmaRange,
) -> Result<FittedGrid> {
    check_fittable(method)?;
    // Deterministic samplers draw no noise; `run` still asks for a source.
    let rows = pilot.dims()[0] as u64;
    let noise = BatchNoise::new(NoiseSource::new(0), 0..rows);
    let mut nfe = 0;
    let mut end =
        |grid: GridKind, steps: usize, method: SigmaMethod, range: SigmaRange, ends: Ends| {
            let sampler = Sampler::Sigma {
                method,
                grid,
                steps,
                range,
                ends,
            };
            let (x, evals) = run(
                &sampler,
                denoiser,
                schedule,
                pilot.clone(),
                from,
                0,
                &noise,
                &mut silent,
            )?;
            nfe += evals;
            to_vec(&x)
        };
    // The exponential grid of the same range: where the fit starts, and the levels' bounds.
    let start = sigma_grid(&GridKind::Exponential, schedule, from, 0, steps, range)?;
    if steps == 1 {
        // One level, sigma_max: nothing to fit and nothing measured.
        return Ok(FittedGrid {
            sigmas: vec![start[0]],
            error_exponential: f64::NAN,
            error_karras: f64::NAN,
            error_fitted: f64::NAN,
            nfe: 0,
        });
    }
    let (hi, lo) = (start[0], start[steps - 1]);
    let exact = SigmaRange {
        max: Some(hi),
        min: Some(lo),
    };
    let reference_method = SigmaMethod::DpmPP3M {
        diffusers_form: false,
    };
    let reference = end(
        GridKind::Exponential,
        REFERENCE_STEPS,
        reference_method,
        exact,
        Ends::Plain,
    )?;
    let distance = EndpointDistance::new(&reference, pilot.dims()[1]);
    let levels =
        |p: &[f64]| -> Vec<f64> { [hi].into_iter().chain(p.iter().map(|v| v.exp())).collect() };
    let mut failure = None;
    let mut error = |p: &[f64]| -> f64 {
        // Levels fall from hi to no lower than lo, no step more than MAX_STEP_RATIO times the
        // one before it.
        let ln: Vec<f64> = [hi.ln()].into_iter().chain(p.iter().copied()).collect();
        let h: Vec<f64> = ln.windows(2).map(|w| w[0] - w[1]).collect();
        let inside = h.iter().all(|h| *h > 0.0)
            && h.windows(2).all(|w| w[1] <= MAX_STEP_RATIO * w[0])
            && p.last().is_none_or(|v| *v >= lo.ln() - 1e-12);
        if !inside {
            return f64::INFINITY;
        }
        match end(
            GridKind::Given(levels(p)),
            steps,
            method,
            SigmaRange::FULL,
            ends,
        ) {
            Ok(x) => distance.distance(&x),
            Err(e) => {
                failure.get_or_insert(e);
                f64::INFINITY
            }
        }
    };
    // Start from the better of the exponential and the Karras grid (rho = 7) of the same range.
    let karras = sigma_grid(
        &GridKind::Karras { rho: 7.0 },
        schedule,
        from,
        0,
        steps,
        range,
    )?;
    let interior = |g: &[f64]| -> Vec<f64> { g[1..steps].iter().map(|s| s.ln()).collect() };
    let mut p = interior(&start);
    let error_exponential = error(&p);
    let mut best = error_exponential;
    let error_karras = error(&interior(&karras));
    if error_karras < best {
        (p, best) = (interior(&karras), error_karras);
    }
    // A free Gaussian first step can go far down at no cost, further than Nelder-Mead walks
    // from grids that spend their top levels above the data: start also from exponential grids
    // whose second level is 1, 2 or 4 times the data's largest standard deviation.
    if let (Ends::FewStep, Some((_, cov))) = (ends, denoiser.moments()) {
        let d = pilot.dims()[1];
        let spread = (0..d).map(|i| cov[i * d + i]).fold(0.0, f64::max).sqrt();
        for c in [1.0, 2.0, 4.0] {
            let top = (c * spread).min(hi * 0.5);
            if top <= lo || steps < 3 {
                continue;
            }
            let g: Vec<f64> = (0..steps - 1)
                .map(|i| (top.ln() + (lo.ln() - top.ln()) * i as f64 / (steps - 2) as f64).exp())
                .collect();
            let q: Vec<f64> = g.iter().map(|s| s.ln()).collect();
            let e = error(&q);
            if e < best {
                (p, best) = (q, e);
            }
        }
    }
    for _ in 0..ROUNDS {
        if p.is_empty() {
            break;
        }
        let stop = Stop {
            x_tol: 1e-4,
            f_tol: 1e-6 * best,
            max_evals: 600 * p.len(),
        };
        let m = nelder_mead(&mut error, &p, stop);
        let gain = best - m.f;
        if m.f < best {
            (p, best) = (m.x, m.f);
        }
        if gain <= 1e-3 * best {
            break;
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(FittedGrid {
        sigmas: levels(&p),
        error_exponential,
        error_karras,
        error_fitted: best,
        nfe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::Mixture;
    use crate::samplers::Churn;

    fn narrow() -> Mixture {
        Mixture::new(vec![0.3, 0.7], vec![vec![-2.0], vec![1.5]], vec![0.1, 0.05]).unwrap()
    }

    /// Fits `method`'s `steps` levels for the narrow mixture on a 256-row pilot, linear schedule
    /// of 1000 steps, whole range; returns the fit and the schedule.
    fn fit(method: SigmaMethod, steps: usize) -> (Result<FittedGrid>, Schedule) {
        let s = Schedule::linear(1e-4, 0.02, 1000).unwrap();
        let den = narrow().denoiser(&crate::device::cpu());
        let pilot = BatchNoise::new(NoiseSource::new(3), 0..256).prior(1, &crate::device::cpu());
        let f = fit_grid(
            method,
            Ends::Plain,
            &den,
            &s,
            pilot,
            1000,
            steps,
            SigmaRange::FULL,
        );
        (f, s)
    }

    #[test]
    fn a_fitted_grid_keeps_its_bounds_and_beats_both_starts() {
        let (f, s) = fit(SigmaMethod::UniPc, 10);
        let f = f.unwrap();
        let g = &f.sigmas;
        assert_eq!(g.len(), 10);
        assert!((g[0] / s.sigma(1000) - 1.0).abs() < 1e-12, "{g:?}");
        assert!(g.windows(2).all(|w| w[1] < w[0]), "{g:?}");
        assert!(g[9] >= s.sigma(1) * (1.0 - 1e-12), "{g:?}");
        let h: Vec<f64> = g.windows(2).map(|w| (w[0] / w[1]).ln()).collect();
        assert!(h.windows(2).all(|w| w[1] <= MAX_STEP_RATIO * w[0]), "{h:?}");
        assert!(
            f.error_fitted < f.error_exponential.min(f.error_karras),
            "{f:?}"
        );
        assert!(f.nfe > 10 * REFERENCE_STEPS, "{f:?}");
    }

    #[test]
    fn stochastic_samplers_are_not_fitted() {
        let churn = Churn {
            s_churn: 1.0,
            ..Churn::default()
        };
        for method in [
            SigmaMethod::EulerAncestral { eta: 1.0 },
            SigmaMethod::Heun(churn),
        ] {
            assert!(fit(method, 10).0.is_err(), "{method:?}");
        }
    }

    #[test]
    fn one_step_has_nothing_to_fit() {
        let (f, s) = fit(SigmaMethod::Euler, 1);
        let f = f.unwrap();
        assert_eq!(f.sigmas.len(), 1);
        assert!((f.sigmas[0] / s.sigma(1000) - 1.0).abs() < 1e-12);
        assert_eq!(f.nfe, 0);
    }
}
