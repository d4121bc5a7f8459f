//! The Fokker-Planck equation of Langevin dynamics (seed 000, approach 3): the density of
//! x' = x - delta E'(x) + sqrt(2 delta) z obeys, as delta -> 0,
//!
//!   d rho / dt = d/dx ( E'(x) rho + d rho / dx ) = -dJ/dx,   J = -exp(-E) d/dx ( exp(E) rho ),
//!
//! with time t = steps x delta, and exp(-E) / Z is its stationary solution (J = 0).
//!
//! The scheme: finite volumes on a uniform grid of cells (cell masses m_i, density m_i / dx), the
//! Scharfetter-Gummel flux between neighbouring cells,
//!
//!   J_{i+1/2} = ( B(u) rho_i - B(-u) rho_{i+1} ) / dx,   u = E(x_{i+1}) - E(x_i),  B(u) = u / (e^u - 1),
//!
//! zero flux through the two ends, and backward-Euler steps in time (one tridiagonal solve each).
//! Every column of the step's matrix sums to one, so mass is conserved to round-off; the matrix
//! is an M-matrix, so densities stay non-negative at any time step; and the flux vanishes exactly
//! on rho_i proportional to exp(-E(x_i)), so the discrete equilibrium is the Boltzmann law at the
//! cell centres. The error is second order in dx and first order in the time step.

use crate::error::{Result, invalid};

use super::Energy;

/// The density of Langevin dynamics on a grid, stepped in time.
#[derive(Debug, Clone)]
pub struct FokkerPlanck {
    /// Cell centres.
    centres: Vec<f64>,
    /// The cell width.
    dx: f64,
    /// Cell masses (summing to 1).
    mass: Vec<f64>,
    /// Flux coefficients B(u_i) / dx^2 and B(-u_i) / dx^2 of face i+1/2.
    right: Vec<f64>,
    left: Vec<f64>,
    /// The time reached.
    t: f64,
}

/// B(u) = u / (e^u - 1), the Bernoulli function, with B(0) = 1.
fn bernoulli(u: f64) -> f64 {
    if u.abs() < 1e-12 {
        1.0 - u / 2.0
    } else {
        u / u.exp_m1()
    }
}

impl FokkerPlanck {
    /// All mass in the cell centred on `start`, on `cells` cells of width `dx` covering `lo..hi`
    /// widened to put `start` at a cell centre: the point mass every Langevin chain starts from.
    pub fn point(energy: &Energy, start: f64, lo: f64, hi: f64, cells: usize) -> Result<Self> {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return invalid(format!("Fokker-Planck grid: need lo < hi (got {lo}, {hi})"));
        }
        if cells < 3 {
            return invalid(format!(
                "Fokker-Planck grid: need at least 3 cells (got {cells})"
            ));
        }
        if !(start.is_finite() && start > lo && start < hi) {
            return invalid(format!(
                "Fokker-Planck grid: the start {start} is outside [{lo}, {hi}]"
            ));
        }
        let dx = (hi - lo) / cells as f64;
        // The cell holding `start`, then the grid shifted to centre it there.
        let k = ((start - lo) / dx).floor();
        let first = start - (k + 0.5) * dx;
        let centres: Vec<f64> = (0..cells).map(|i| first + (i as f64 + 0.5) * dx).collect();
        let mut mass = vec![0.0; cells];
        mass[k as usize] = 1.0;
        let (mut right, mut left) = (vec![0.0; cells - 1], vec![0.0; cells - 1]);
        for i in 0..cells - 1 {
            let u = energy.value(centres[i + 1]) - energy.value(centres[i]);
            right[i] = bernoulli(u) / (dx * dx);
            left[i] = bernoulli(-u) / (dx * dx);
        }
        Ok(Self {
            centres,
            dx,
            mass,
            right,
            left,
            t: 0.0,
        })
    }

    /// One backward-Euler step of length `dt`: (I - dt A) m' = m, solved by the Thomas
    /// algorithm (the matrix is diagonally dominant by columns, so no pivoting is needed).
    pub fn step(&mut self, dt: f64) -> Result<()> {
        if !(dt.is_finite() && dt > 0.0) {
            return invalid(format!(
                "Fokker-Planck: the time step must be positive (got {dt})"
            ));
        }
        let n = self.mass.len();
        // dm_i/dt = J_{i-1/2} - J_{i+1/2}, J_{i+1/2} = right_i m_i - left_i m_{i+1} (per dx^2):
        // row i of A has sub-diagonal right_{i-1}, super-diagonal left_i and diagonal
        // -(right_i + left_{i-1}).
        let sub = |i: usize| -dt * self.right[i - 1];
        let sup = |i: usize| -dt * self.left[i];
        let diag = |i: usize| {
            let out = if i + 1 < n { self.right[i] } else { 0.0 };
            let inn = if i > 0 { self.left[i - 1] } else { 0.0 };
            1.0 + dt * (out + inn)
        };
        let (mut c, mut d) = (vec![0.0; n], vec![0.0; n]);
        let mut b = diag(0);
        c[0] = sup(0) / b;
        d[0] = self.mass[0] / b;
        for i in 1..n {
            b = diag(i) - sub(i) * c[i - 1];
            if i + 1 < n {
                c[i] = sup(i) / b;
            }
            d[i] = (self.mass[i] - sub(i) * d[i - 1]) / b;
        }
        self.mass[n - 1] = d[n - 1];
        for i in (0..n - 1).rev() {
            self.mass[i] = d[i] - c[i] * self.mass[i + 1];
        }
        self.t += dt;
        Ok(())
    }

    /// Steps to time `t` in steps no longer than `max_dt` (all of one length).
    pub fn advance_to(&mut self, t: f64, max_dt: f64) -> Result<()> {
        if !(max_dt.is_finite() && max_dt > 0.0) {
            return invalid(format!(
                "Fokker-Planck: the time step must be positive (got {max_dt})"
            ));
        }
        let left = t - self.t;
        if left <= 0.0 {
            return Ok(());
        }
        let steps = (left / max_dt).ceil().max(1.0) as usize;
        for _ in 0..steps {
            self.step(left / steps as f64)?;
        }
        self.t = t;
        Ok(())
    }

    /// The time reached.
    pub fn time(&self) -> f64 {
        self.t
    }

    /// The cell centres.
    pub fn centres(&self) -> &[f64] {
        &self.centres
    }

    /// The cell width.
    pub fn dx(&self) -> f64 {
        self.dx
    }

    /// The total mass (1 up to round-off).
    pub fn mass(&self) -> f64 {
        self.mass.iter().sum()
    }

    /// The density at the cell centres.
    pub fn density(&self) -> Vec<f64> {
        self.mass.iter().map(|m| m / self.dx).collect()
    }

    /// The CDF, linear within each cell (the density is constant on a cell).
    pub fn cdf(&self) -> impl Fn(f64) -> f64 + '_ {
        let mut below = Vec::with_capacity(self.mass.len() + 1);
        let mut acc = 0.0;
        below.push(0.0);
        for m in &self.mass {
            acc += m;
            below.push(acc);
        }
        let lo = self.centres[0] - self.dx / 2.0;
        move |x: f64| {
            let u = (x - lo) / self.dx;
            if u <= 0.0 {
                return 0.0;
            }
            let i = u.floor() as usize;
            if i >= self.mass.len() {
                return below[self.mass.len()];
            }
            below[i] + (u - i as f64) * self.mass[i]
        }
    }

    /// The largest gap between this CDF and `other`, on the cell faces and centres (where the
    /// piecewise-linear CDF's gap to a smooth one is largest, up to O(dx^2)).
    pub fn sup_distance(&self, other: impl Fn(f64) -> f64) -> f64 {
        let f = self.cdf();
        self.centres
            .iter()
            .flat_map(|c| [c - self.dx / 2.0, *c])
            .map(|x| (f(x) - other(x)).abs())
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::normal_cdf;

    /// The Ornstein-Uhlenbeck law of the quadratic energy from a point x0:
    /// N(x0 e^{-Kt}, (1 - e^{-2Kt}) / K).
    fn ou_cdf(k: f64, x0: f64, t: f64) -> impl Fn(f64) -> f64 {
        let m = x0 * (-k * t).exp();
        let s = ((1.0 - (-2.0 * k * t).exp()) / k).sqrt();
        move |x| normal_cdf((x - m) / s)
    }

    fn quadratic(k: f64, x0: f64, cells: usize) -> FokkerPlanck {
        let e = Energy::Quadratic { k };
        let (lo, hi) = e.support();
        FokkerPlanck::point(&e, x0, lo.min(x0 - 1.0), hi.max(x0 + 1.0), cells).unwrap()
    }

    #[test]
    fn mass_is_conserved_and_densities_stay_non_negative() {
        for energy in [Energy::Quadratic { k: 3.0 }, Energy::DoubleWell { a: 4.0 }] {
            let (lo, hi) = energy.support();
            let mut fp = FokkerPlanck::point(&energy, 1.3, lo, hi, 500).unwrap();
            for dt in [1e-4, 1e-2, 1.0, 50.0] {
                fp.step(dt).unwrap();
                // Exact in exact arithmetic; round-off grows with the matrix's entries, dt/dx^2.
                let tolerance = 64.0 * f64::EPSILON * (1.0 + dt / (fp.dx() * fp.dx()));
                let error = (fp.mass() - 1.0).abs();
                assert!(error < tolerance, "{energy:?} dt {dt}: mass {}", fp.mass());
                assert!(fp.density().iter().all(|v| *v >= 0.0), "{energy:?} dt {dt}");
            }
        }
    }

    #[test]
    fn the_equilibrium_is_exp_minus_e_over_z() {
        // J vanishes exactly on rho_i ~ exp(-E(x_i)): a long run ends there to round-off, and
        // its CDF is the stationary law's up to the grid's O(dx^2).
        for energy in [Energy::Quadratic { k: 1.0 }, Energy::DoubleWell { a: 2.0 }] {
            let (lo, hi) = energy.support();
            let mut fp = FokkerPlanck::point(&energy, 0.5, lo, hi, 800).unwrap();
            fp.advance_to(400.0, 1.0).unwrap();
            let boltzmann: Vec<f64> = fp
                .centres()
                .iter()
                .map(|x| (-energy.value(*x)).exp())
                .collect();
            let z: f64 = boltzmann.iter().sum::<f64>() * fp.dx();
            for (rho, b) in fp.density().iter().zip(&boltzmann) {
                assert!(
                    (rho - b / z).abs() < 1e-9,
                    "{energy:?}: {rho} against {}",
                    b / z
                );
            }
            let gap = fp.sup_distance(|x| energy.stationary_cdf(x));
            assert!(gap < 1e-4, "{energy:?}: CDF gap {gap}");
        }
    }

    #[test]
    fn the_quadratic_follows_the_ornstein_uhlenbeck_law_at_first_order_in_time() {
        // Against the closed form at t = 0.5 and 2 from x0 = 3: the error halves with the time
        // step (backward Euler), down to the grid's floor (dx = 0.0125: O(dx^2) ~ 1e-5).
        let (k, x0) = (1.0, 3.0);
        for t in [0.5, 2.0] {
            let errors: Vec<f64> = [0.02, 0.01, 0.005]
                .iter()
                .map(|dt| {
                    let mut fp = quadratic(k, x0, 1600);
                    fp.advance_to(t, *dt).unwrap();
                    fp.sup_distance(ou_cdf(k, x0, t))
                })
                .collect();
            assert!(errors[2] < 3e-3, "t {t}: errors {errors:?}");
            for w in errors.windows(2) {
                let ratio = w[0] / w[1];
                assert!((1.7..2.3).contains(&ratio), "t {t}: errors {errors:?}");
            }
        }
    }

    #[test]
    fn bad_grids_are_refused() {
        let e = Energy::Quadratic { k: 1.0 };
        assert!(FokkerPlanck::point(&e, 0.0, 1.0, -1.0, 100).is_err());
        assert!(FokkerPlanck::point(&e, 5.0, -1.0, 1.0, 100).is_err());
        assert!(FokkerPlanck::point(&e, 0.0, -1.0, 1.0, 2).is_err());
        let mut fp = FokkerPlanck::point(&e, 0.0, -1.0, 1.0, 10).unwrap();
        assert!(fp.step(-1.0).is_err());
        assert!(fp.advance_to(1.0, 0.0).is_err());
    }
}
