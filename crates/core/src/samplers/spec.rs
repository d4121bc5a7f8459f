//! A sampler as a user names it (`"dpmpp-2m"`, an evaluation budget, a grid), and the rule that
//! turns the budget into steps. The budget is what the user asks for; the count a run reports
//! (`samplers::run`'s second value) is what it spent, and the two can differ (Heun's last step,
//! DDIM on a short span, an adaptive solve).

use std::fmt;
use std::str::FromStr;

use super::{Churn, Ends, GridKind, OdeMethod, Sampler, SigmaMethod, SigmaRange, Variance};
use crate::error::{CoreError, Result, invalid};

/// The reverse samplers, by the names the community knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SamplerName {
    /// DDPM ancestral sampling on every step of the schedule.
    Ddpm,
    /// DDIM on `nfe` of the schedule's steps.
    Ddim,
    /// Euler steps of the probability-flow ODE on a sigma grid.
    Euler,
    /// Euler steps with ancestral noise.
    EulerAncestral,
    /// Heun's second-order method (EDM Algorithm 1, or 2 with churn).
    Heun,
    /// Linear multistep of order 4 (Stable Diffusion's original sampler).
    Lms,
    /// DPM-Solver++(2M).
    DpmPP2M,
    /// DPM-Solver++(3M), of order 3.
    DpmPP3M,
    /// DPM-Solver++(3M) as diffusers and k-diffusion write it (of order 2).
    DpmPP3MDiffusers,
    /// UniPC (bh2, order 2).
    Unipc,
    /// The reverse SDE by Euler-Maruyama.
    Sde,
    /// The probability-flow ODE by an adaptive Dormand-Prince solver.
    Ode,
}

impl SamplerName {
    /// Every sampler, in the order help texts list them.
    pub const ALL: [SamplerName; 12] = [
        SamplerName::Ddpm,
        SamplerName::Ddim,
        SamplerName::Euler,
        SamplerName::EulerAncestral,
        SamplerName::Heun,
        SamplerName::Lms,
        SamplerName::DpmPP2M,
        SamplerName::DpmPP3M,
        SamplerName::DpmPP3MDiffusers,
        SamplerName::Unipc,
        SamplerName::Sde,
        SamplerName::Ode,
    ];

    /// The name users type.
    pub fn as_str(self) -> &'static str {
        match self {
            SamplerName::Ddpm => "ddpm",
            SamplerName::Ddim => "ddim",
            SamplerName::Euler => "euler",
            SamplerName::EulerAncestral => "euler-ancestral",
            SamplerName::Heun => "heun",
            SamplerName::Lms => "lms",
            SamplerName::DpmPP2M => "dpmpp-2m",
            SamplerName::DpmPP3M => "dpmpp-3m",
            SamplerName::DpmPP3MDiffusers => "dpmpp-3m-diffusers",
            SamplerName::Unipc => "unipc",
            SamplerName::Sde => "sde",
            SamplerName::Ode => "ode",
        }
    }

    /// One line on what it is.
    pub fn about(self) -> &'static str {
        match self {
            SamplerName::Ddpm => "DDPM ancestral sampling on every step of the schedule",
            SamplerName::Ddim => "DDIM on nfe of the schedule's steps (eta 0 deterministic)",
            SamplerName::Euler => "Euler steps of the probability-flow ODE on a sigma grid",
            SamplerName::EulerAncestral => "Euler steps with ancestral noise (eta)",
            SamplerName::Heun => "Heun's second-order method (EDM Algorithm 1; churn: 2)",
            SamplerName::Lms => "linear multistep of order 4 (Stable Diffusion's original)",
            SamplerName::DpmPP2M => "DPM-Solver++(2M)",
            SamplerName::DpmPP3M => "DPM-Solver++(3M), of order 3",
            SamplerName::DpmPP3MDiffusers => "DPM-Solver++(3M) as diffusers writes it (order 2)",
            SamplerName::Unipc => "UniPC (bh2, order 2)",
            SamplerName::Sde => "the reverse SDE by Euler-Maruyama",
            SamplerName::Ode => "the probability-flow ODE by adaptive Dormand-Prince (tol)",
        }
    }

    /// Whether it runs on a sigma grid (and so takes a sigma range).
    pub fn on_sigma_grid(self) -> bool {
        !matches!(
            self,
            SamplerName::Ddpm | SamplerName::Ddim | SamplerName::Sde | SamplerName::Ode
        )
    }

    /// Whether an evaluation budget means anything to it (ddpm takes every step, sde its own
    /// steps, ode as many as its tolerance needs).
    pub fn has_budget(self) -> bool {
        !matches!(
            self,
            SamplerName::Ddpm | SamplerName::Sde | SamplerName::Ode
        )
    }

    /// The grid it runs on when none is named.
    pub fn default_grid(self) -> &'static str {
        if self == SamplerName::Ddim {
            "trailing"
        } else {
            "karras"
        }
    }
}

impl fmt::Display for SamplerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SamplerName {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self> {
        SamplerName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| {
                CoreError::Invalid(format!(
                    "unknown sampler '{s}' (expected one of {})",
                    SamplerName::ALL.map(SamplerName::as_str).join(", ")
                ))
            })
    }
}

/// A sampler by name with the settings a user gives; [`SamplerSpec::sampler`] turns it into a
/// [`Sampler`] for a run of a given span.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerSpec {
    /// Which sampler.
    pub name: SamplerName,
    /// DDPM's step variance.
    pub variance: Variance,
    /// The evaluation budget (default: 50, or one level per given sigma).
    pub nfe: Option<usize>,
    /// The grid (default: [`SamplerName::default_grid`]).
    pub grid: Option<GridKind>,
    /// Noise of ddim (default 0) and euler-ancestral (default 1).
    pub eta: Option<f64>,
    /// EDM's S_churn for heun.
    pub churn: f64,
    /// Euler-Maruyama steps of the SDE (default 4 per schedule step).
    pub grid_steps: Option<usize>,
    /// Relative and absolute tolerance of the adaptive ODE solver.
    pub tol: f64,
    /// Where a sigma grid starts and stops.
    pub range: SigmaRange,
    /// How a sigma sampler takes its first and last steps (`None`: plain, or what the run
    /// chooses for few evaluations on an exact mixture).
    pub ends: Option<Ends>,
}

impl SamplerSpec {
    /// `name` with every setting at its default.
    pub fn new(name: SamplerName) -> Self {
        Self {
            name,
            variance: Variance::Posterior,
            nfe: None,
            grid: None,
            eta: None,
            churn: 0.0,
            grid_steps: None,
            tol: 1e-5,
            range: SigmaRange::FULL,
            ends: None,
        }
    }

    /// The sampler a user named with their budget, or else a model's `default` sampler with
    /// the user's budget or the model's `default_nfe`. A default budget belongs to the default
    /// sampler: a user who names another sampler gets that sampler's own default. Every front
    /// end (the command line, Python, the web page) chooses this way.
    pub fn chosen(
        name: Option<SamplerName>,
        nfe: Option<usize>,
        default: SamplerName,
        default_nfe: Option<usize>,
    ) -> Self {
        Self {
            nfe: match name {
                Some(_) => nfe,
                None => nfe.or(default_nfe),
            },
            ..Self::new(name.unwrap_or(default))
        }
    }

    /// The same sampler with a budget of `nfe` evaluations.
    pub fn with_nfe(mut self, nfe: usize) -> Self {
        self.nfe = Some(nfe);
        self
    }

    /// The same sampler on `grid`.
    pub fn with_grid(mut self, grid: GridKind) -> Self {
        self.grid = Some(grid);
        self
    }

    /// Settings given that this sampler does not use, each as a sentence for the user: an
    /// evaluation budget for ddpm, sde or ode, whose steps something else sets. (Settings that
    /// are wrong rather than unused are refused by [`SamplerSpec::sampler`].)
    pub fn unused(&self) -> Vec<String> {
        let sets_steps = match self.name {
            SamplerName::Ddpm => "it takes every step of the schedule",
            SamplerName::Sde => "--grid-steps sets its steps (default 4 per schedule step)",
            SamplerName::Ode => "its tolerance --tol sets its steps",
            _ => return vec![],
        };
        self.nfe
            .map(|n| format!("--nfe {n} does not apply to {}: {sets_steps}", self.name))
            .into_iter()
            .collect()
    }

    /// The evaluation budget: the one given, else one per given level (heun: two per level but
    /// the last; a few-step start takes the first level without an evaluation), else 50 (at
    /// most two per step of the span).
    pub fn budget(&self, span: usize) -> Result<usize> {
        let given_levels = match &self.grid {
            Some(GridKind::Given(levels)) => Some(levels.len()),
            _ => None,
        };
        let free = self.ends.unwrap_or_default().free_levels();
        Ok(match (self.nfe, given_levels) {
            (Some(0), _) => return invalid("nfe must be at least 1 (got 0)"),
            (Some(n), _) => n,
            (None, Some(k)) => {
                let paid = k.saturating_sub(free).max(1);
                match self.name {
                    SamplerName::Heun => 2 * paid - 1,
                    _ => paid,
                }
            }
            (None, None) => 50.min(span.max(1) * 2),
        })
    }

    /// The most denoiser evaluations a run may ask for (and Euler-Maruyama steps of the SDE,
    /// ten times as many): far beyond where any sampler has converged, and short of a run that
    /// would take days.
    pub const MAX_NFE: usize = 100_000;

    /// The sampler for a run over `span` schedule steps that ends at step `to`.
    pub fn sampler(&self, span: usize, to: usize) -> Result<Sampler> {
        if let Some(n) = self.nfe.filter(|n| *n > Self::MAX_NFE) {
            return invalid(format!(
                "nfe {n} is more than {} evaluations: every sampler has converged long before",
                Self::MAX_NFE
            ));
        }
        if let Some(g) = self.grid_steps.filter(|g| *g > 10 * Self::MAX_NFE) {
            return invalid(format!(
                "grid-steps {g} is more than {} steps of the reverse SDE",
                10 * Self::MAX_NFE
            ));
        }
        let nfe = self.budget(span)?;
        let grid = self
            .grid
            .clone()
            .map_or_else(|| GridKind::parse(self.name.default_grid()), Ok)?;
        let eta = |default: f64| -> Result<f64> {
            let e = self.eta.unwrap_or(default);
            if !(e.is_finite() && e >= 0.0) {
                return invalid(format!("eta must be a non-negative number (got {e})"));
            }
            Ok(e)
        };
        if self.range != SigmaRange::FULL && !self.name.on_sigma_grid() {
            return invalid(
                "sigma-max and sigma-min apply to the sigma-grid samplers (euler, heun, lms, dpmpp-*, unipc)",
            );
        }
        if !(self.churn.is_finite() && self.churn >= 0.0) {
            return invalid(format!(
                "churn must be a non-negative number (got {})",
                self.churn
            ));
        }
        if self.churn != 0.0 && self.name != SamplerName::Heun {
            return invalid(format!(
                "churn applies to heun (EDM's stochastic Heun), not to {}",
                self.name
            ));
        }
        if self.eta.is_some()
            && !matches!(self.name, SamplerName::Ddim | SamplerName::EulerAncestral)
        {
            return invalid(format!(
                "eta applies to ddim and euler-ancestral, not to {}",
                self.name
            ));
        }
        if self.variance != Variance::Posterior && self.name != SamplerName::Ddpm {
            return invalid(format!(
                "variance applies to ddpm's steps, not to {}",
                self.name
            ));
        }
        if self.grid_steps.is_some() && self.name != SamplerName::Sde {
            return invalid(format!(
                "grid-steps applies to sde (the reverse SDE's Euler-Maruyama steps), not to {}",
                self.name
            ));
        }
        if self.tol != Self::new(self.name).tol && self.name != SamplerName::Ode {
            return invalid(format!(
                "tol applies to ode (the adaptive solver's tolerance), not to {}",
                self.name
            ));
        }
        if self.grid.is_some() && !self.name.has_budget() {
            return invalid(format!(
                "a grid applies to ddim and the sigma-grid samplers (euler, heun, lms, dpmpp-*, unipc), not to {}",
                self.name
            ));
        }
        let ends = self.ends.unwrap_or_default();
        if ends != Ends::Plain && !self.name.on_sigma_grid() {
            return invalid(format!(
                "ends {} applies to the sigma-grid samplers (euler, heun, lms, dpmpp-*, unipc), not to {}",
                ends.as_str(),
                self.name
            ));
        }
        let sigma = |method: SigmaMethod| Sampler::Sigma {
            method,
            grid: grid.clone(),
            steps: method.steps_for_budget(nfe, to == 0).max(1) + ends.free_levels(),
            range: self.range,
            ends,
        };
        let sampler = match self.name {
            SamplerName::Ddpm => Sampler::Ddpm(self.variance),
            SamplerName::Ddim => {
                let GridKind::Timesteps(spacing) = grid else {
                    return invalid(format!(
                        "grid {}: ddim runs on the model's own steps (leading, trailing or linspace)",
                        grid_name(&grid)
                    ));
                };
                if self.nfe.is_some_and(|n| n > span.max(1)) {
                    return invalid(format!(
                        "nfe {nfe}: ddim takes one evaluation per model step it visits, and this \
                         run spans {} steps",
                        span.max(1)
                    ));
                }
                Sampler::Ddim {
                    eta: eta(0.0)?,
                    spacing,
                    steps: nfe.min(span.max(1)),
                }
            }
            SamplerName::Euler => sigma(SigmaMethod::Euler),
            SamplerName::EulerAncestral => sigma(SigmaMethod::EulerAncestral { eta: eta(1.0)? }),
            SamplerName::Heun => sigma(SigmaMethod::Heun(Churn {
                s_churn: self.churn,
                ..Churn::default()
            })),
            SamplerName::Lms => sigma(SigmaMethod::Lms { order: 4 }),
            SamplerName::DpmPP2M => sigma(SigmaMethod::DpmPP2M),
            SamplerName::DpmPP3M => sigma(SigmaMethod::DpmPP3M {
                diffusers_form: false,
            }),
            SamplerName::DpmPP3MDiffusers => sigma(SigmaMethod::DpmPP3M {
                diffusers_form: true,
            }),
            SamplerName::Unipc => sigma(SigmaMethod::UniPc),
            SamplerName::Sde => Sampler::Sde {
                steps: match self.grid_steps {
                    Some(0) => return invalid("grid-steps must be at least 1 (got 0)"),
                    Some(g) => g,
                    None => 4 * span.max(1),
                },
            },
            SamplerName::Ode => {
                // Below ~1e-12 the error estimate is float64 round-off and the step size
                // collapses; above 0.1 the solution is not worth the name.
                if !(self.tol.is_finite() && (1e-12..=0.1).contains(&self.tol)) {
                    return invalid(format!(
                        "tol must be in [1e-12, 0.1] (got {:e}): smaller is lost in float64 round-off",
                        self.tol
                    ));
                }
                Sampler::Ode {
                    method: OdeMethod::Rk45 {
                        rtol: self.tol,
                        atol: self.tol,
                    },
                }
            }
        };
        // Refused here, before a front end announces a fit that cannot run.
        if let Sampler::Sigma {
            method,
            grid: GridKind::Fitted,
            ..
        } = &sampler
        {
            super::fit::check_fittable(*method)?;
        }
        Ok(sampler)
    }
}

/// A grid's name as users write it.
pub fn grid_name(grid: &GridKind) -> String {
    match grid {
        GridKind::Karras { rho } => format!("karras:{rho}"),
        GridKind::Timesteps(s) => format!("{s:?}").to_lowercase(),
        GridKind::Exponential => "exponential".into(),
        GridKind::UniformTime => "uniform".into(),
        GridKind::Given(_) => "sigmas".into(),
        GridKind::Fitted => "fitted".into(),
    }
}

/// One setting of a sampler that ran, for a summary.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// A count (steps, evaluations).
    Count(usize),
    /// A real number.
    Number(f64),
    /// A name (a grid, a variance).
    Name(String),
    /// Noise levels.
    Levels(Vec<f64>),
}

impl super::Fixed {
    /// The settings of the sampler that ran (after [`super::fix_grid`]), as named pairs: its
    /// grid, and for a fitted or adaptive grid the levels chosen and what choosing them cost
    /// (`pilot_nfe`: evaluations on the pilot batch, not counted in a run's nfe).
    pub fn describe(&self, spec: &SamplerSpec) -> Vec<(&'static str, Setting)> {
        use Setting::{Count, Levels, Name, Number};
        let mut out = vec![];
        match &self.sampler {
            Sampler::Ddpm(v) => out.push(("variance", Name(format!("{v:?}").to_lowercase()))),
            Sampler::Sde { steps } => out.push(("grid_steps", Count(*steps))),
            Sampler::Ode {
                method: OdeMethod::Dopri5(grid),
            } => {
                out.push(("tol", Number(spec.tol)));
                out.push(("adaptive_steps", Count(grid.len() - 1)));
            }
            Sampler::Ode { .. } => {}
            Sampler::Ddim {
                eta,
                spacing,
                steps,
            } => {
                out.push(("eta", Number(*eta)));
                out.push(("grid", Name(format!("{spacing:?}").to_lowercase())));
                out.push(("grid_steps", Count(*steps)));
            }
            Sampler::Sigma {
                grid,
                steps,
                range,
                ends,
                ..
            } => {
                if *ends != Ends::Plain {
                    out.push(("ends", Name(ends.as_str().into())));
                }
                let name = match grid {
                    GridKind::Given(levels) => {
                        out.push(("grid_sigmas", Levels(levels.clone())));
                        if self.fit.is_some() {
                            "fitted"
                        } else {
                            "sigmas"
                        }
                        .to_string()
                    }
                    other => grid_name(other),
                };
                out.push(("grid", Name(name)));
                out.push(("grid_steps", Count(*steps)));
                if let Some(v) = range.max {
                    out.push(("sigma_max", Number(v)));
                }
                if let Some(v) = range.min {
                    out.push(("sigma_min", Number(v)));
                }
            }
        }
        if self.pilot_nfe > 0 {
            out.push(("pilot_nfe", Count(self.pilot_nfe)));
        }
        if let Some(fit) = &self.fit {
            // Mean absolute end-point error on the pilot against an accurate solve.
            out.push(("fit_error_exponential", Number(fit.error_exponential)));
            out.push(("fit_error_karras", Number(fit.error_karras)));
            out.push(("fit_error_fitted", Number(fit.error_fitted)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_unused_exactly_by_the_samplers_that_set_their_own_steps() {
        for n in SamplerName::ALL {
            let unused = SamplerSpec::new(n).with_nfe(7).unused();
            assert_eq!(unused.is_empty(), n.has_budget(), "{n}: {unused:?}");
            if let Some(w) = unused.first() {
                assert!(
                    w.starts_with(&format!("--nfe 7 does not apply to {n}: ")),
                    "{w}"
                );
            }
            assert!(SamplerSpec::new(n).unused().is_empty());
        }
    }

    #[test]
    fn every_name_parses_back_to_itself() {
        for n in SamplerName::ALL {
            assert_eq!(n.as_str().parse::<SamplerName>().unwrap(), n);
        }
        let e = "dpm".parse::<SamplerName>().unwrap_err().to_string();
        assert!(e.contains("dpmpp-2m") && e.contains("'dpm'"), "{e}");
    }

    #[test]
    fn the_budget_becomes_steps() {
        let spec = |n: SamplerName, nfe| SamplerSpec::new(n).with_nfe(nfe);
        // Heun spends two evaluations a step, one on the last step to sigma = 0.
        let steps = |s: Sampler| match s {
            Sampler::Sigma { steps, .. } | Sampler::Ddim { steps, .. } => steps,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            steps(spec(SamplerName::Heun, 9).sampler(1000, 0).unwrap()),
            5
        );
        assert_eq!(
            steps(spec(SamplerName::Heun, 9).sampler(999, 1).unwrap()),
            4
        );
        assert_eq!(
            steps(spec(SamplerName::Unipc, 9).sampler(1000, 0).unwrap()),
            9
        );
        // DDIM cannot take more steps than the span has: a budget above it is refused, not cut;
        // without one it takes the span.
        let err = spec(SamplerName::Ddim, 50).sampler(20, 0).unwrap_err();
        assert!(err.to_string().contains("nfe 50"), "{err}");
        assert_eq!(
            steps(spec(SamplerName::Ddim, 20).sampler(20, 0).unwrap()),
            20
        );
        assert_eq!(
            steps(SamplerSpec::new(SamplerName::Ddim).sampler(20, 0).unwrap()),
            20
        );
        // Without a budget: 50, at most two per step.
        assert_eq!(SamplerSpec::new(SamplerName::Euler).budget(10).unwrap(), 20);
        assert_eq!(
            SamplerSpec::new(SamplerName::Euler).budget(1000).unwrap(),
            50
        );
        // A given grid: one evaluation a level (heun: two but the last).
        let given = GridKind::Given(vec![3.0, 1.0, 0.1]);
        let heun = SamplerSpec::new(SamplerName::Heun).with_grid(given.clone());
        assert_eq!(heun.budget(1000).unwrap(), 5);
        assert_eq!(steps(heun.sampler(1000, 0).unwrap()), 3);
        let lms = SamplerSpec::new(SamplerName::Lms).with_grid(given.clone());
        assert_eq!(lms.budget(1000).unwrap(), 3);
        // Few-step ends: the first level is free, so the same grid pays for two levels (heun:
        // three evaluations) and keeps its three levels.
        for (name, nfe) in [(SamplerName::Heun, 3), (SamplerName::DpmPP2M, 2)] {
            let mut few = SamplerSpec::new(name).with_grid(given.clone());
            few.ends = Some(Ends::FewStep);
            assert_eq!(few.budget(1000).unwrap(), nfe, "{name}");
            assert_eq!(steps(few.sampler(1000, 0).unwrap()), 3, "{name}");
        }
    }

    #[test]
    fn settings_that_cannot_apply_are_refused() {
        assert!(spec_err(SamplerSpec::new(SamplerName::Euler).with_nfe(0)).contains("nfe"));
        let ddpm = SamplerSpec::new(SamplerName::Ddpm).with_grid(GridKind::Exponential);
        assert!(spec_err(ddpm).contains("not to ddpm"));
        let ddim = SamplerSpec::new(SamplerName::Ddim).with_grid(GridKind::Exponential);
        assert!(spec_err(ddim).contains("ddim runs on the model's own steps"));
        let mut sde = SamplerSpec::new(SamplerName::Sde);
        sde.range.max = Some(10.0);
        assert!(spec_err(sde).contains("sigma-max"));
        let mut ode = SamplerSpec::new(SamplerName::Ode);
        ode.tol = 0.0;
        assert!(spec_err(ode).contains("tol"));
        let mut ea = SamplerSpec::new(SamplerName::EulerAncestral);
        ea.eta = Some(-1.0);
        assert!(spec_err(ea).contains("eta"));
    }

    fn spec_err(s: SamplerSpec) -> String {
        s.sampler(1000, 0).unwrap_err().to_string()
    }
}
