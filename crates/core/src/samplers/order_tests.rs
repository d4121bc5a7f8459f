//! Convergence orders and identities of the fast samplers, against a tight adaptive solve of
//! the same probability-flow ODE from the same starting noise, with exact mixture denoisers.

use super::*;
use crate::exact::Mixture;
use crate::tensor::to_vec;

/// The observed order: minus the log-log slope of error against steps.
pub fn fitted_order(steps: &[usize], errors: &[f64]) -> f64 {
    let x: Vec<f64> = steps.iter().map(|s| *s as f64).collect();
    -crate::metrics::loglog_slope(&x, errors)
}

/// Endpoint errors at sigma(to) (mean absolute, against an RK45 solve at tolerance 1e-9 from
/// the same start) of a sigma-grid sampler for each number of steps.
pub fn endpoint_errors(
    m: &Mixture,
    method: SigmaMethod,
    grid: GridKind,
    steps: &[usize],
) -> Vec<f64> {
    let device = crate::device::cpu();
    let s = Schedule::linear(1e-4, 0.02, 1000).unwrap();
    let (from, to) = (1000, 20);
    let batch = BatchNoise::new(NoiseSource::new(12), 0..400);
    let den = m.denoiser(&device);
    let x = batch.prior(m.dim(), &device);
    let tight = OdeMethod::Rk45 {
        rtol: 1e-9,
        atol: 1e-9,
    };
    let (reference, _) = probability_flow(
        &den,
        &s,
        x.clone(),
        from as f64,
        to as f64,
        &tight,
        &mut silent,
    )
    .unwrap();
    let reference = to_vec(&reference).unwrap();
    steps
        .iter()
        .map(|n| {
            let sampler = Sampler::Sigma {
                method,
                grid: grid.clone(),
                steps: *n,
                range: SigmaRange::FULL,
                ends: Ends::Plain,
            };
            let (y, _) = run(&sampler, &den, &s, x.clone(), from, to, &batch, &mut silent).unwrap();
            let y = to_vec(&y).unwrap();
            y.iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
                / y.len() as f64
        })
        .collect()
}

/// Euler ~1, Heun ~2, DPM-Solver++(2M) ~2 and (3M) ~3 on a grid uniform in log sigma, each
/// within 0.3 (issue 4, acceptance 1). The 3M update as the reference implementations write it
/// (half the Taylor coefficient on its second difference) is shown to be of order 2 only.
#[test]
fn observed_orders_match_the_methods() {
    let one_d = Mixture::new(vec![0.3, 0.7], vec![vec![-2.0], vec![1.5]], vec![0.3, 0.6]).unwrap();
    let two_d = Mixture::new(
        vec![0.25, 0.25, 0.5],
        vec![vec![-2.0, 0.0], vec![2.0, 0.0], vec![0.0, 2.0]],
        vec![0.3, 0.5, 0.4],
    )
    .unwrap();
    // Errors stay above the f32 floor (~2e-5) up to 128 steps for every method here.
    let steps = [32, 48, 64, 96, 128];
    for (name, m) in [("1-D", &one_d), ("2-D", &two_d)] {
        for (method, order) in [
            (SigmaMethod::Euler, 1.0),
            (SigmaMethod::Heun(Churn::default()), 2.0),
            (SigmaMethod::DpmPP2M, 2.0),
            (
                SigmaMethod::DpmPP3M {
                    diffusers_form: false,
                },
                3.0,
            ),
            (
                SigmaMethod::DpmPP3M {
                    diffusers_form: true,
                },
                2.0,
            ),
        ] {
            let errors = endpoint_errors(m, method, GridKind::Exponential, &steps);
            let p = fitted_order(&steps, &errors);
            assert!(
                (p - order).abs() < 0.3,
                "{name} {method:?}: order {p:.2}, errors {errors:?}"
            );
        }
    }
}

/// DDIM with eta = 0 is the Euler step of the probability-flow ODE in sigma (Karras et al. 2022,
/// section 4): on the same steps the two agree to rounding.
#[test]
fn ddim_eta_0_is_euler_on_the_same_grid() {
    let device = crate::device::cpu();
    let m = Mixture::new(vec![0.3, 0.7], vec![vec![-2.0], vec![1.5]], vec![0.3, 0.6]).unwrap();
    let s = Schedule::linear(1e-4, 0.02, 1000).unwrap();
    let batch = BatchNoise::new(NoiseSource::new(3), 0..500);
    let den = m.denoiser(&device);
    let x = batch.prior(1, &device);
    let steps = ddim_steps(Spacing::Trailing, 1000, 0, 10).unwrap();
    let a = to_vec(&ddim(&den, &s, x.clone(), &steps, 0.0, &batch, &mut silent).unwrap()).unwrap();
    // The same steps as a sigma grid (step 0 is sigma = 0).
    let sigmas: Vec<f64> = steps.iter().map(|k| s.sigma(*k)).collect();
    let model = sigma::SigmaDenoiser::new(&den, &s);
    let y = karras::euler(&model, sigma::to_ve(x, sigmas[0]), &sigmas, &mut silent).unwrap();
    let b = to_vec(&y).unwrap();
    let worst = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-4, "DDIM and Euler differ by {worst}");
}

/// DDIM with eta = 1 on every step is DDPM with the posterior variance, noise for noise.
#[test]
fn ddim_eta_1_on_every_step_is_ddpm() {
    let device = crate::device::cpu();
    let m = Mixture::new(vec![0.5, 0.5], vec![vec![-1.0], vec![1.0]], vec![0.2, 0.2]).unwrap();
    let s = Schedule::cosine(100).unwrap();
    let batch = BatchNoise::new(NoiseSource::new(4), 0..300);
    let den = m.denoiser(&device);
    let x = batch.prior(1, &device);
    let (a, _) = run(
        &Sampler::Ddim {
            eta: 1.0,
            spacing: Spacing::Trailing,
            steps: 100,
        },
        &den,
        &s,
        x.clone(),
        100,
        0,
        &batch,
        &mut silent,
    )
    .unwrap();
    let (b, _) = run(
        &Sampler::Ddpm(Variance::Posterior),
        &den,
        &s,
        x,
        100,
        0,
        &batch,
        &mut silent,
    )
    .unwrap();
    let (a, b) = (to_vec(&a).unwrap(), to_vec(&b).unwrap());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-4, "DDIM(eta = 1) and DDPM differ by {worst}");
}

/// LMS coefficients integrate the Lagrange basis exactly: they sum to the step length, and
/// for equal steps of size h, order 2 gives Adams-Bashforth's (3h/2, -h/2).
#[test]
fn lms_coefficients_are_adams_bashforth_on_equal_steps() {
    let t = [5.0, 4.0, 3.0, 2.0, 1.0];
    let c: Vec<f64> = (0..2).map(|j| lms_c(2, &t, 1, j)).collect();
    assert!(
        (c[0] + 1.5).abs() < 1e-12 && (c[1] - 0.5).abs() < 1e-12,
        "{c:?}"
    );
    let c4: Vec<f64> = (0..4).map(|j| lms_c(4, &t, 3, j)).collect();
    // AB4: h/24 (55, -59, 37, -9) with h = -1.
    for (got, want) in c4.iter().zip([55.0, -59.0, 37.0, -9.0]) {
        assert!((got + want / 24.0).abs() < 1e-12, "{c4:?}");
    }
}

fn lms_c(order: usize, t: &[f64], i: usize, j: usize) -> f64 {
    karras::lms_coefficient(order, t, i, j)
}
