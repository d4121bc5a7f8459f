//! Seed 000, approach 3: Langevin chains against the Fokker-Planck equation of their density,
//! solved on a grid from the same point mass, at several times, and both against exp(-E) / Z.

use std::ops::Range;

use anyhow::{Context, Result, bail};
use diffuse_core::NoiseSource;
use diffuse_core::mcmc::{self, Energy, FokkerPlanck};
use diffuse_core::metrics::{ks_critical, ks_one_sample};

use crate::positive;
use crate::report::Report;
use crate::run::Watch;

/// A comparison of the chains with the density's equation.
#[derive(Debug, Clone)]
pub struct Dynamics {
    /// The energy spec (`quadratic[:K]`, `double-well[:A]`).
    pub energy: String,
    /// Where every chain, and the equation's point mass, starts.
    pub start: f64,
    /// Chains.
    pub chains: usize,
    /// The Langevin step delta; chain time is steps x delta.
    pub delta: f64,
    /// The times at which the histograms are compared (each rounded to a whole number of steps).
    pub times: Vec<f64>,
    /// Grid cells of the equation.
    pub cells: usize,
    /// Seed of the chains' noise.
    pub seed: u64,
}

/// The chains and the equation at one time.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The time, steps x delta.
    pub t: f64,
    /// The Langevin step it is reached at.
    pub step: usize,
    /// The chains' states.
    pub states: Vec<f64>,
    /// The equation's density at its cell centres, (x, rho).
    pub density: Vec<(f64, f64)>,
    /// KS statistic and p-value of the chains against the equation's CDF.
    pub ks_statistic: f64,
    /// See `ks_statistic`.
    pub ks_p_value: f64,
    /// The largest gap between the equation's CDF and the stationary law's.
    pub pde_to_stationary: f64,
}

/// What a comparison found.
#[derive(Debug, Clone)]
pub struct Compared {
    /// The energy.
    pub energy: Energy,
    /// At each asked time.
    pub snapshots: Vec<Snapshot>,
    /// Over time (every few steps): (t, KS statistic of the chains against the equation, KS
    /// statistic of the chains against exp(-E)/Z, sup gap of the equation to exp(-E)/Z).
    pub distances: Vec<[f64; 4]>,
    /// The KS statistic a sample of this many chains exceeds with probability 0.001 when it does
    /// follow the equation's law: the noise floor of the distances.
    pub critical: f64,
    /// The numbers for summary.json.
    pub report: Report,
}

/// Points of the distance-over-time curve.
const CURVE: usize = 200;

/// The step length of the equation: backward Euler is first order in it, and at a tenth of
/// the default delta its error is far below the chains' sampling noise (tests).
const PDE_DT: f64 = 1e-3;

impl Dynamics {
    /// Checks every setting: the energy, and the times as whole numbers of Langevin steps
    /// (sorted, without repeats).
    pub fn check(&self) -> Result<(Energy, Vec<usize>)> {
        let energy = Energy::parse(&self.energy).context("--energy")?;
        positive("--chains", self.chains)?;
        if self.cells < 3 {
            bail!("--cells must be at least 3 (got {})", self.cells);
        }
        if !(self.delta.is_finite() && self.delta > 0.0) {
            bail!("--delta must be a positive number (got {})", self.delta);
        }
        if !self.start.is_finite() {
            bail!("--start must be a finite number (got {})", self.start);
        }
        if self.times.is_empty() {
            bail!("--times: give at least one time");
        }
        let mut steps: Vec<usize> = Vec::new();
        for t in &self.times {
            if !(t.is_finite() && *t > 0.0) {
                bail!("--times: {t} is not a positive time");
            }
            let k = (t / self.delta).round();
            if k < 1.0 {
                bail!(
                    "--times: {t} is shorter than one step of delta = {}",
                    self.delta
                );
            }
            if k > 1e7 {
                bail!(
                    "--times: {t:e} is {k:.3e} steps of delta = {}; at most 10,000,000",
                    self.delta
                );
            }
            steps.push(k as usize);
        }
        steps.sort_unstable();
        steps.dedup();
        // The chains (their states, noise and one copy per asked time) and the grid's arrays.
        crate::budget::check(
            &format!("--chains {} --times ({} of them)", self.chains, steps.len()),
            self.chains as f64 * 8.0 * (steps.len() as f64 + 4.0),
        )?;
        crate::budget::check(
            &format!("--cells {}", self.cells),
            self.cells as f64 * 8.0 * 10.0,
        )?;
        Ok((energy, steps))
    }
}

/// Runs the chains and the equation side by side.
pub fn compare(d: &Dynamics, watch: &mut dyn Watch) -> Result<Compared> {
    let (energy, steps) = d.check()?;
    let chains = d.chains;
    let last = *steps.last().unwrap_or(&1);
    let (lo, hi) = energy.support();
    let (lo, hi) = (lo.min(d.start - 1.0), hi.max(d.start + 1.0));
    let mut pde = FokkerPlanck::point(&energy, d.start, lo, hi, d.cells)?;
    let stationary = tabulated(|x| energy.stationary_cdf(x), lo, hi, 4000);
    let every = (last / CURVE).max(1);

    let mut snapshots = vec![];
    let mut distances = vec![];
    let mut failed = Ok(());
    watch.begin("langevin and fokker-planck", last as u64);
    let rows: Range<u64> = 0..chains as u64;
    mcmc::langevin(
        &energy,
        &vec![d.start; chains],
        d.delta,
        last,
        &NoiseSource::new(d.seed),
        rows,
        &mut |k, x| {
            if failed.is_ok()
                && let Err(e) = watch.advance(1)
            {
                failed = Err(e);
            }
            let asked = steps.binary_search(&k).is_ok();
            if failed.is_err() || !(asked || k % every == 0) {
                return;
            }
            let t = k as f64 * d.delta;
            if let Err(e) = pde.advance_to(t, PDE_DT.min(d.delta)) {
                failed = Err(e.into());
                return;
            }
            let ks = ks_one_sample(x, pde.cdf());
            let to_stationary = pde.sup_distance(&stationary);
            if k % every == 0 {
                let chains_to_stationary = ks_one_sample(x, &stationary).statistic;
                distances.push([t, ks.statistic, chains_to_stationary, to_stationary]);
            }
            if asked {
                snapshots.push(Snapshot {
                    t,
                    step: k,
                    states: x.to_vec(),
                    density: pde.centres().iter().copied().zip(pde.density()).collect(),
                    ks_statistic: ks.statistic,
                    ks_p_value: ks.p_value,
                    pde_to_stationary: to_stationary,
                });
            }
        },
    )?;
    watch.finish();
    failed?;

    let critical = ks_critical(chains, 1e-3);
    let mut report = Report::new();
    report.set("energy", d.energy.clone());
    report.num("start", d.start);
    report.set("chains", chains);
    report.num("delta", d.delta);
    report.set("cells", d.cells);
    report.num("dx", pde.dx());
    report.num("grid_lo", pde.centres()[0] - pde.dx() / 2.0);
    report.num("grid_hi", pde.centres()[d.cells - 1] + pde.dx() / 2.0);
    report.num("pde_dt", PDE_DT.min(d.delta));
    report.set(
        "pde_scheme",
        "finite volumes, Scharfetter-Gummel fluxes, zero flux at the ends, backward Euler",
    );
    report.num("mass_error", (pde.mass() - 1.0).abs());
    report.num("ks_critical_0.001", critical);
    report.set(
        "times",
        snapshots
            .iter()
            .map(|s| {
                serde_json::json!({
                    "t": s.t,
                    "step": s.step,
                    "ks_statistic": s.ks_statistic,
                    "ks_p_value": s.ks_p_value,
                    "pde_to_stationary": s.pde_to_stationary,
                })
            })
            .collect::<Vec<_>>(),
    );
    report.num(
        "min_ks_p_value",
        snapshots.iter().map(|s| s.ks_p_value).fold(1.0, f64::min),
    );
    Ok(Compared {
        energy,
        snapshots,
        distances,
        critical,
        report,
    })
}

/// `f` on `n` + 1 points of [lo, hi], interpolated linearly between them (0 and 1 outside).
fn tabulated(f: impl Fn(f64) -> f64, lo: f64, hi: f64, n: usize) -> impl Fn(f64) -> f64 {
    let h = (hi - lo) / n as f64;
    let table: Vec<f64> = (0..=n).map(|i| f(lo + i as f64 * h)).collect();
    move |x: f64| {
        let u = (x - lo) / h;
        if u <= 0.0 {
            return table[0];
        }
        let i = u.floor() as usize;
        if i >= n {
            return table[n];
        }
        table[i] + (u - i as f64) * (table[i + 1] - table[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Silent;
    use diffuse_core::metrics::normal_cdf;

    fn dynamics(energy: &str, start: f64, delta: f64, times: &[f64]) -> Dynamics {
        Dynamics {
            energy: energy.into(),
            start,
            chains: 10_000,
            delta,
            times: times.to_vec(),
            cells: 1000,
            seed: 3,
        }
    }

    /// Seed 000's third goal: the chains' histogram is the equation's density at every time,
    /// by a KS test at level 0.001 split over the times (n = 10,000 chains; the equation's own
    /// error, O(dt) + O(dx^2), and Euler-Maruyama's O(delta) are far below the noise, 0.0195),
    /// on the seed's quadratic energy and on a double well; the equation conserves mass and
    /// ends near exp(-E)/Z.
    #[test]
    fn langevin_chains_follow_the_fokker_planck_density_at_every_time() {
        for d in [
            dynamics("quadratic", 3.0, 0.01, &[0.1, 0.3, 0.7, 1.5, 4.0]),
            dynamics("double-well:2", 1.0, 0.005, &[0.05, 0.5, 2.0, 6.0, 15.0]),
        ] {
            let c = compare(&d, &mut Silent).unwrap();
            assert_eq!(c.snapshots.len(), d.times.len());
            let level = 1e-3 / d.times.len() as f64;
            for s in &c.snapshots {
                assert!(
                    s.ks_p_value > level,
                    "{} at t = {}: KS p {} (D {})",
                    d.energy,
                    s.t,
                    s.ks_p_value,
                    s.ks_statistic
                );
            }
            let mass = c.report.get("mass_error").and_then(|v| v.as_f64()).unwrap();
            assert!(mass < 1e-10, "{}: mass error {mass}", d.energy);
            // The distance to equilibrium shrinks towards 0.
            let gaps: Vec<f64> = c.snapshots.iter().map(|s| s.pde_to_stationary).collect();
            assert!(
                gaps.windows(2).all(|w| w[1] < w[0]),
                "{}: {gaps:?}",
                d.energy
            );
            assert!(gaps[gaps.len() - 1] < 0.03, "{}: {gaps:?}", d.energy);
            if d.energy == "quadratic" {
                // ... at the Ornstein-Uhlenbeck rate: N(3 e^-t, 1 - e^-2t) against N(0, 1).
                for (s, gap) in c.snapshots.iter().zip(&gaps) {
                    let (m, sd) = ((3.0 * (-s.t).exp()), (1.0 - (-2.0 * s.t).exp()).sqrt());
                    let exact = (0..=4000)
                        .map(|i| -8.0 + 16.0 * i as f64 / 4000.0)
                        .map(|x| (normal_cdf((x - m) / sd) - normal_cdf(x)).abs())
                        .fold(0.0, f64::max);
                    assert!(
                        (gap - exact).abs() < 2e-3,
                        "t {}: {gap} against {exact}",
                        s.t
                    );
                }
            }
        }
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let ok = dynamics("quadratic", 3.0, 0.01, &[0.5]);
        assert!(ok.check().is_ok());
        for (d, name) in [
            (dynamics("cubic", 3.0, 0.01, &[0.5]), "--energy"),
            (dynamics("quadratic", 3.0, 0.0, &[0.5]), "--delta"),
            (dynamics("quadratic", f64::NAN, 0.01, &[0.5]), "--start"),
            (dynamics("quadratic", 3.0, 0.01, &[]), "--times"),
            (dynamics("quadratic", 3.0, 0.01, &[-1.0]), "--times"),
            (dynamics("quadratic", 3.0, 0.01, &[0.001]), "--times"),
            (dynamics("quadratic", 3.0, 0.01, &[1e9]), "--times"),
            (
                Dynamics {
                    cells: 2,
                    ..ok.clone()
                },
                "--cells",
            ),
            (
                Dynamics {
                    chains: 0,
                    ..ok.clone()
                },
                "--chains",
            ),
        ] {
            let e = format!("{:#}", d.check().unwrap_err());
            assert!(e.contains(name), "{e}");
        }
    }
}
