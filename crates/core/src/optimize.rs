//! Derivative-free minimisation: Nelder and Mead's simplex (1965) with the dimension-adapted
//! coefficients of Gao and Han (2012), as scipy's `minimize(method="Nelder-Mead", adaptive=True)`.
//! Used to fit a sampler's sigma grid, whose error is a black box of a few parameters.

/// When to stop a [`nelder_mead`] run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stop {
    /// Stop when every vertex is within this of the best one, in every coordinate...
    pub x_tol: f64,
    /// ...and every vertex's value is within this of the best value.
    pub f_tol: f64,
    /// Stop after this many evaluations of the objective, converged or not.
    pub max_evals: usize,
}

/// The best point found, its value, and the evaluations spent.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    /// The argument.
    pub x: Vec<f64>,
    /// The objective there.
    pub f: f64,
    /// Objective evaluations.
    pub evals: usize,
    /// Whether the simplex met the tolerances (false: the budget ran out first).
    pub converged: bool,
}

/// Minimises `f` from `x0`. The first simplex steps 5% of each coordinate (0.00025 where it is
/// 0), as scipy does. `f` may return `f64::INFINITY` (or NaN, read as infinity) to forbid a point.
pub fn nelder_mead(f: &mut dyn FnMut(&[f64]) -> f64, x0: &[f64], stop: Stop) -> Minimum {
    let n = x0.len();
    let nf = n.max(1) as f64;
    // Gao and Han's coefficients: reflection, expansion, contraction, shrink.
    let (alpha, gamma, rho, shrink) = (1.0, 1.0 + 2.0 / nf, 0.75 - 0.5 / nf, 1.0 - 1.0 / nf);
    let mut evals = 0;
    let mut eval = |x: &[f64], evals: &mut usize| {
        *evals += 1;
        let v = f(x);
        if v.is_nan() { f64::INFINITY } else { v }
    };
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((x0.to_vec(), eval(x0, &mut evals)));
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] = if x[i] != 0.0 { 1.05 * x[i] } else { 0.00025 };
        let v = eval(&x, &mut evals);
        simplex.push((x, v));
    }
    let mut converged = false;
    while evals < stop.max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, f_best) = (&simplex[0].0, simplex[0].1);
        let x_spread = simplex[1..]
            .iter()
            .flat_map(|(x, _)| x.iter().zip(best).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        let f_spread = simplex[n].1 - f_best;
        if x_spread <= stop.x_tol && f_spread <= stop.f_tol {
            converged = true;
            break;
        }
        // The centroid of all but the worst vertex.
        let mut c = vec![0.0; n];
        for (x, _) in &simplex[..n] {
            for (ci, xi) in c.iter_mut().zip(x) {
                *ci += xi / nf;
            }
        }
        let worst = simplex[n].clone();
        let toward = |t: f64| -> Vec<f64> {
            c.iter()
                .zip(&worst.0)
                .map(|(ci, wi)| ci + t * (ci - wi))
                .collect()
        };
        let xr = toward(alpha);
        let fr = eval(&xr, &mut evals);
        if fr < simplex[0].1 {
            let xe = toward(alpha * gamma);
            let fe = eval(&xe, &mut evals);
            simplex[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
            continue;
        }
        if fr < simplex[n - 1].1 {
            simplex[n] = (xr, fr);
            continue;
        }
        // Contract outside (toward the reflected point) or inside (toward the worst).
        let xc = toward(if fr < worst.1 { alpha * rho } else { -rho });
        let fc = eval(&xc, &mut evals);
        if fc < fr.min(worst.1) {
            simplex[n] = (xc, fc);
            continue;
        }
        // Shrink every vertex toward the best.
        let best = simplex[0].0.clone();
        for v in simplex.iter_mut().skip(1) {
            v.0 = best
                .iter()
                .zip(&v.0)
                .map(|(b, x)| b + shrink * (x - b))
                .collect();
            v.1 = eval(&v.0, &mut evals);
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (x, f) = simplex.swap_remove(0);
    Minimum {
        x,
        f,
        evals,
        converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOP: Stop = Stop {
        x_tol: 1e-8,
        f_tol: 1e-14,
        max_evals: 20_000,
    };

    /// Rosenbrock's valley in n dimensions; its only minimum is 0 at (1, ..., 1).
    fn rosenbrock(x: &[f64]) -> f64 {
        x.windows(2)
            .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
            .sum()
    }

    #[test]
    fn finds_rosenbrocks_minimum_in_2_and_5_dimensions() {
        // From the classic start (-1.2, 1) in 2-D and from 0 in 5-D (from -1.2 everywhere the 5-D
        // valley's other local minimum, near x_1 = -1, is the nearer one).
        for x0 in [vec![-1.2, 1.0], vec![0.0; 5]] {
            let n = x0.len();
            let m = nelder_mead(&mut |x| rosenbrock(x), &x0, STOP);
            assert!(m.converged, "n = {n}: {m:?}");
            for xi in &m.x {
                assert!((xi - 1.0).abs() < 1e-5, "n = {n}: {m:?}");
            }
        }
    }

    #[test]
    fn finds_a_quadratics_centre_and_respects_a_forbidden_region() {
        // min (x - 3)^2 + (y + 1)^2 with x > 3.5 forbidden: the answer is on the boundary.
        let mut f = |x: &[f64]| {
            if x[0] > 3.5 {
                f64::INFINITY
            } else {
                (x[0] - 3.0).powi(2) + (x[1] + 1.0).powi(2)
            }
        };
        let m = nelder_mead(&mut f, &[0.0, 0.0], STOP);
        assert!(
            (m.x[0] - 3.0).abs() < 1e-5 && (m.x[1] + 1.0).abs() < 1e-5,
            "{m:?}"
        );
        let mut g = |x: &[f64]| {
            if x[0] > 2.0 {
                f64::NAN
            } else {
                (x[0] - 3.0).powi(2)
            }
        };
        let m = nelder_mead(&mut g, &[0.0], STOP);
        assert!((m.x[0] - 2.0).abs() < 1e-5, "{m:?}");
    }

    #[test]
    fn stops_at_the_evaluation_budget() {
        let stop = Stop {
            max_evals: 50,
            ..STOP
        };
        let m = nelder_mead(&mut |x| rosenbrock(x), &[-1.2, 1.0, 0.5], stop);
        assert!(!m.converged);
        // The last iteration may finish a shrink: at most n + 1 evaluations past the budget.
        assert!(m.evals >= 50 && m.evals <= 54, "{}", m.evals);
    }
}
