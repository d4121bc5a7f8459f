//! The forward process q: step by step (seed 000's `ForwardDiffusion`), in closed form (seed
//! 000's `ForwardDiffusionFast`), and the posterior q(x_{k-1} | x_k, x_0) (seed 004).

use std::ops::Range;

use burn::tensor::Tensor;

use crate::error::{CoreError, Result, invalid};
use crate::noise::{NoiseSource, Stream};
use crate::schedule::Schedule;

fn check_rows(x: &Tensor<2>, rows: &Range<u64>) -> Result<()> {
    let n = x.dims()[0] as u64;
    if rows.end.saturating_sub(rows.start) != n {
        return Err(CoreError::Shape(format!(
            "batch has {n} rows but rows {}..{} were given for its noise",
            rows.start, rows.end
        )));
    }
    Ok(())
}

fn check_step(schedule: &Schedule, k: usize, what: &str) -> Result<()> {
    if k > schedule.steps() {
        return invalid(format!(
            "{what} {k} is past the schedule's last step {}",
            schedule.steps()
        ));
    }
    Ok(())
}

/// One step of the chain: x_k = sqrt(alpha_k) x_{k-1} + sqrt(beta_k) z.
pub fn step(x_prev: Tensor<2>, schedule: &Schedule, k: usize, z: Tensor<2>) -> Tensor<2> {
    x_prev * schedule.alpha(k).sqrt() + z * schedule.beta(k).sqrt()
}

/// Runs the chain step by step from x_0 to step `to`, calling `on_step(k, &x_k)` after each step
/// (k = 1..=to). Row i of the batch is global sample `rows.start + i`: its noise at step k is
/// (seed, Forward, k, row), whatever the batch.
pub fn diffuse(
    x0: Tensor<2>,
    schedule: &Schedule,
    to: usize,
    noise: &NoiseSource,
    rows: Range<u64>,
    on_step: &mut dyn FnMut(usize, &Tensor<2>),
) -> Result<Tensor<2>> {
    check_rows(&x0, &rows)?;
    check_step(schedule, to, "step")?;
    let (d, device) = (x0.dims()[1], x0.device());
    let mut x = x0;
    for k in 1..=to {
        let z = noise.normal_tensor(Stream::Forward, k as u64, rows.clone(), d, &device);
        x = step(x, schedule, k, z);
        on_step(k, &x);
    }
    Ok(x)
}

/// Jumps from x_0 to step k in one draw: x_k = sqrt(alpha-bar_k) x_0 + sqrt(1 - alpha-bar_k) eps.
/// Returns (x_k, eps): the noise is what a network learns to guess (seed 000).
pub fn jump(
    x0: Tensor<2>,
    schedule: &Schedule,
    k: usize,
    noise: &NoiseSource,
    rows: Range<u64>,
) -> Result<(Tensor<2>, Tensor<2>)> {
    check_rows(&x0, &rows)?;
    check_step(schedule, k, "step")?;
    let (d, device) = (x0.dims()[1], x0.device());
    let eps = noise.normal_tensor(Stream::Jump, k as u64, rows, d, &device);
    Ok((jump_with(x0, schedule, k, eps.clone()), eps))
}

/// x_k = sqrt(alpha-bar_k) x_0 + sqrt(1 - alpha-bar_k) eps for a given eps.
pub fn jump_with(x0: Tensor<2>, schedule: &Schedule, k: usize, eps: Tensor<2>) -> Tensor<2> {
    x0 * schedule.alpha_bar(k).sqrt() + eps * schedule.one_minus_alpha_bar(k).sqrt()
}

/// The posterior q(x_{k-1} | x_k, x_0) = N(mean, variance I) for k >= 1 (seed 004).
pub fn posterior(
    schedule: &Schedule,
    k: usize,
    x_k: Tensor<2>,
    x0: Tensor<2>,
) -> Result<(Tensor<2>, f64)> {
    if k == 0 {
        return invalid("the posterior q(x_{k-1} | x_k, x_0) needs k >= 1");
    }
    check_step(schedule, k, "step")?;
    let (c0, ct) = schedule.posterior_mean_coefficients(k);
    Ok((x0 * c0 + x_k * ct, schedule.posterior_variance(k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ks_one_sample, ks_two_sample, normal_cdf};
    use crate::tensor::{from_flat, to_vec};

    /// Seed 000: forward diffusion of a point mass, step by step and by the closed form, to
    /// several T. Both must be N(sqrt(ab_T) x0, 1 - ab_T): KS tests at level 0.001 each.
    #[test]
    fn step_by_step_and_closed_form_give_the_same_law() {
        let device = crate::device::cpu();
        let s = Schedule::linear(1e-4, 0.02, 200).unwrap();
        let n = 10_000u64;
        let x0 = from_flat(&vec![0.4; n as usize], n as usize, 1, &device);
        let noise = NoiseSource::new(11);
        let mut paths: Vec<Vec<f64>> = vec![];
        let checkpoints = [1usize, 25, 125, 200];
        diffuse(x0.clone(), &s, 200, &noise, 0..n, &mut |k, x| {
            if checkpoints.contains(&k) {
                paths.push(to_vec(x).unwrap());
            }
        })
        .unwrap();
        for (i, &k) in checkpoints.iter().enumerate() {
            let (jumped, _) = jump(x0.clone(), &s, k, &noise, 0..n).unwrap();
            let jumped = to_vec(&jumped).unwrap();
            let (m, sd) = (s.alpha_bar(k).sqrt() * 0.4, s.one_minus_alpha_bar(k).sqrt());
            let cdf = |x: f64| normal_cdf((x - m) / sd);
            let p_step = ks_one_sample(&paths[i], cdf).p_value;
            let p_jump = ks_one_sample(&jumped, cdf).p_value;
            let p_two = ks_two_sample(&paths[i], &jumped).p_value;
            assert!(
                p_step > 1e-3 && p_jump > 1e-3 && p_two > 1e-3,
                "T={k}: {p_step} {p_jump} {p_two}"
            );
        }
    }

    #[test]
    fn posterior_of_one_step_back_is_the_closed_form() {
        // With x_0 known, E[x_{k-1} | x_k, x_0] is the Gaussian conditional of the joint
        // (x_{k-1}, x_k) given x_0: check the coefficients against that conditional directly.
        let s = Schedule::linear(1e-4, 0.02, 50).unwrap();
        let device = crate::device::cpu();
        let k = 30;
        let (ab_prev, a) = (s.alpha_bar(k - 1), s.alpha(k));
        // x_{k-1} = sqrt(ab_prev) x0 + sqrt(1 - ab_prev) e1 ; x_k = sqrt(a) x_{k-1} + sqrt(1 - a) e2
        let (var_prev, cov, var_k) = (
            1.0 - ab_prev,
            a.sqrt() * (1.0 - ab_prev),
            a * (1.0 - ab_prev) + 1.0 - a,
        );
        let x0v = 0.7;
        let xkv = -0.2;
        let (mean_prev, mean_k) = (ab_prev.sqrt() * x0v, s.alpha_bar(k).sqrt() * x0v);
        let want_mean = mean_prev + cov / var_k * (xkv - mean_k);
        let want_var = var_prev - cov * cov / var_k;
        let (mean, var) = posterior(
            &s,
            k,
            from_flat(&[xkv], 1, 1, &device),
            from_flat(&[x0v], 1, 1, &device),
        )
        .unwrap();
        assert!((to_vec(&mean).unwrap()[0] - want_mean).abs() < 1e-6);
        assert!((var - want_var).abs() < 1e-12);
    }

    #[test]
    fn batches_do_not_change_samples() {
        let device = crate::device::cpu();
        let s = Schedule::cosine(20).unwrap();
        let noise = NoiseSource::new(5);
        let x0 = from_flat(&(0..30).map(f64::from).collect::<Vec<_>>(), 10, 3, &device);
        let whole = to_vec(&diffuse(x0.clone(), &s, 20, &noise, 100..110, &mut |_, _| {}).unwrap())
            .unwrap();
        let tail = x0.clone().slice([4..10, 0..3]);
        let part =
            to_vec(&diffuse(tail, &s, 20, &noise, 104..110, &mut |_, _| {}).unwrap()).unwrap();
        assert_eq!(&whole[12..], &part[..]);
        assert!(diffuse(x0, &s, 20, &noise, 0..5, &mut |_, _| {}).is_err());
    }
}
