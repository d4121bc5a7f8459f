//! Reverse-process samplers: each a short loop over a time or noise grid that asks a
//! [`Denoiser`](crate::denoiser::Denoiser) for its prediction and never knows whether it is exact
//! or learned. Progress and trajectories leave through a callback; samplers never print.

mod ddim;
mod ddpm;
mod endpoints;
pub mod fit;
pub mod gaussian_flow;
pub mod grid;
pub mod karras;
mod ode;
mod sde;
pub mod sigma;
pub mod spec;

use std::ops::Range;

use burn::tensor::{Device, Tensor};

pub use ddim::ddim;
pub use ddpm::{Variance, ddpm};
pub use grid::{GridKind, SigmaRange, Spacing, sigma_grid};
pub use karras::Churn;
pub use ode::{OdeMethod, OdeStats, probability_flow};
pub use sde::reverse_sde;
pub use spec::{SamplerName, SamplerSpec, grid_name};

use crate::denoiser::Level;
use crate::noise::{NoiseSource, Stream};
use crate::schedule::Schedule;

/// What a sampler reports after each step.
pub struct Event<'a> {
    /// Steps done so far (1-based).
    pub step: usize,
    /// Steps in the whole run (for an adaptive solver, the steps taken so far).
    pub steps: usize,
    /// The continuous time reached, in schedule steps.
    pub t: f64,
    /// The state x_t (variance-preserving scaling).
    pub x: &'a Tensor<2>,
    /// The denoiser's estimate of x_0 at the step's start.
    pub x0: &'a Tensor<2>,
}

/// Where a batch's noise comes from: a source and the global indices of its rows, so that a
/// sample's noise is the same whatever batch it is drawn in.
#[derive(Debug, Clone)]
pub struct BatchNoise {
    /// The seeded source.
    pub source: NoiseSource,
    /// Global sample indices of the batch's rows.
    pub rows: Range<u64>,
}

impl BatchNoise {
    /// Noise for rows `rows` of `source`.
    pub fn new(source: NoiseSource, rows: Range<u64>) -> Self {
        Self { source, rows }
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        (self.rows.end - self.rows.start) as usize
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Standard normals `[rows, dim]` for `stream` at `step`.
    pub fn normal(&self, stream: Stream, step: u64, dim: usize, device: &Device) -> Tensor<2> {
        self.source
            .normal_tensor(stream, step, self.rows.clone(), dim, device)
    }

    /// The generative starting point x_T ~ N(0, I).
    pub fn prior(&self, dim: usize, device: &Device) -> Tensor<2> {
        self.normal(Stream::Prior, 0, dim, device)
    }
}

/// The level at whole step k of a schedule.
pub fn level_at_step(schedule: &Schedule, k: usize) -> Level {
    Level {
        t: k as f64,
        alpha_bar: schedule.alpha_bar(k),
    }
}

/// The level at continuous time t.
pub fn level_at_time(schedule: &Schedule, t: f64) -> Level {
    Level {
        t,
        alpha_bar: schedule.alpha_bar_at(t),
    }
}

/// The level at VE noise level sigma: alpha-bar = 1 / (1 + sigma^2).
pub fn level_at_sigma(schedule: &Schedule, sigma: f64) -> Level {
    Level {
        t: schedule.t_at_sigma(sigma),
        alpha_bar: 1.0 / (1.0 + sigma * sigma),
    }
}

/// A sampler of the noise-level view, over a sigma grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SigmaMethod {
    /// Euler steps of the probability-flow ODE.
    Euler,
    /// Euler steps with ancestral noise of strength eta.
    EulerAncestral {
        /// 1 for the full ancestral step, 0 for Euler.
        eta: f64,
    },
    /// Heun (EDM Algorithm 1, or 2 with churn).
    Heun(Churn),
    /// Linear multistep of order 1 to 4.
    Lms {
        /// The order (Stable Diffusion used 4).
        order: usize,
    },
    /// DPM-Solver++(2M).
    DpmPP2M,
    /// DPM-Solver++(3M).
    DpmPP3M {
        /// The reference implementations' update, whose second-difference term is half the
        /// Taylor coefficient (order 2); false: the order-3 update.
        diffusers_form: bool,
    },
    /// UniPC, order 2, bh2.
    UniPc,
}

/// How a sigma-grid sampler takes its first and last steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ends {
    /// As k-diffusion and diffusers: the first step evaluates the denoiser at sigma_max, and a
    /// run to 0 ends with x = D(x) (DPM-Solver++(2M)'s last step is first order).
    #[default]
    Plain,
    /// For few evaluations on a denoiser that knows its data's mean and covariance (an exact
    /// mixture): the first step, from sigma_max to the grid's second level, is the closed-form
    /// flow of that Gaussian ([`gaussian_flow`]: no evaluation, so the grid has one level more
    /// than the run spends evaluations), and DPM-Solver++(2M)'s last step to 0 is of second
    /// order in sigma ([`karras::dpmpp_2m`]).
    FewStep,
}

impl Ends {
    /// The name users type (`--ends`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ends::Plain => "plain",
            Ends::FewStep => "few-step",
        }
    }

    /// Grid levels the first step takes without an evaluation.
    pub fn free_levels(self) -> usize {
        match self {
            Ends::Plain => 0,
            Ends::FewStep => 1,
        }
    }
}

impl std::str::FromStr for Ends {
    type Err = crate::error::CoreError;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "plain" => Ok(Ends::Plain),
            "few-step" => Ok(Ends::FewStep),
            other => crate::error::invalid(format!("unknown ends '{other}' (plain or few-step)")),
        }
    }
}

/// A reverse sampler and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampler {
    /// DDPM ancestral sampling on every step of the schedule.
    Ddpm(Variance),
    /// DDIM on `steps` of the schedule's steps spaced as diffusers spaces them.
    Ddim {
        /// 0: deterministic; 1: DDPM-like.
        eta: f64,
        /// How the steps are chosen.
        spacing: Spacing,
        /// Number of steps (= evaluations).
        steps: usize,
    },
    /// The reverse SDE by Euler-Maruyama in `steps` steps.
    Sde {
        /// Number of Euler-Maruyama steps.
        steps: usize,
    },
    /// The probability-flow ODE by an adaptive or a replayed Dormand-Prince solve.
    Ode {
        /// The integrator.
        method: OdeMethod,
    },
    /// A sampler of the noise-level view on a sigma grid of `steps` steps.
    Sigma {
        /// The update.
        method: SigmaMethod,
        /// The grid family.
        grid: GridKind,
        /// Number of steps (levels of the grid).
        steps: usize,
        /// Where the grid starts and stops.
        range: SigmaRange,
        /// How the first and last steps are taken.
        ends: Ends,
    },
}

/// The schedule steps DDIM visits: `n` of the steps between `from` and `to`, spaced as diffusers
/// does over that span, then `to`.
pub fn ddim_steps(spacing: Spacing, from: usize, to: usize, n: usize) -> crate::Result<Vec<usize>> {
    let span = from.saturating_sub(to);
    if n == 0 || n > span {
        return crate::error::invalid(format!(
            "DDIM needs 1 to {span} steps between {from} and {to} (got {n})"
        ));
    }
    let mut steps: Vec<usize> = grid::diffusers_timesteps(spacing, span, n)
        .into_iter()
        .map(|tau| to + tau + 1)
        .collect();
    steps.dedup();
    steps.push(to);
    Ok(steps)
}

/// Runs `sampler` from whole step `from` (x = x_from) down to step `to`; returns x_to and the
/// number of denoiser evaluations.
pub fn run(
    sampler: &Sampler,
    denoiser: &dyn crate::denoiser::Denoiser,
    schedule: &Schedule,
    x: Tensor<2>,
    from: usize,
    to: usize,
    noise: &BatchNoise,
    callback: &mut dyn FnMut(&Event),
) -> crate::Result<(Tensor<2>, usize)> {
    match sampler {
        Sampler::Ddpm(variance) => {
            let x = ddpm(denoiser, schedule, x, from, to, *variance, noise, callback)?;
            Ok((x, from.saturating_sub(to)))
        }
        Sampler::Ddim {
            eta,
            spacing,
            steps,
        } => {
            let steps = ddim_steps(*spacing, from, to, *steps)?;
            let x = ddim(denoiser, schedule, x, &steps, *eta, noise, callback)?;
            Ok((x, steps.len() - 1))
        }
        Sampler::Sde { steps } => {
            let x = reverse_sde(
                denoiser,
                schedule,
                x,
                from as f64,
                to as f64,
                *steps,
                noise,
                callback,
            )?;
            Ok((x, *steps))
        }
        Sampler::Ode { method } => {
            let (x, stats) = probability_flow(
                denoiser,
                schedule,
                x,
                from as f64,
                to as f64,
                method,
                callback,
            )?;
            Ok((x, stats.nfe))
        }
        Sampler::Sigma {
            method,
            grid,
            steps,
            range,
            ends,
        } => {
            crate::denoiser::check_dim(&x, denoiser.dim())?;
            let all = sigma_grid(grid, schedule, from, to, *steps, *range)?;
            let model = sigma::SigmaDenoiser::new(denoiser, schedule);
            let mut x = sigma::to_ve(x, all[0]);
            let sigmas = match ends {
                Ends::Plain => &all[..],
                Ends::FewStep => {
                    if all.len() < 3 || all[1] == 0.0 {
                        return crate::error::invalid(
                            "few-step ends need a grid of at least two levels above 0 (the first step is free)",
                        );
                    }
                    let Some((mean, cov)) = denoiser.moments() else {
                        return crate::error::invalid(
                            "few-step ends need the data's mean and covariance, which only an exact mixture's denoiser knows",
                        );
                    };
                    x = gaussian_flow::GaussianFlow::new(mean, cov)?
                        .transport(&x, all[0], all[1])?;
                    &all[1..]
                }
            };
            let x = match method {
                SigmaMethod::Euler => karras::euler(&model, x, sigmas, callback)?,
                SigmaMethod::EulerAncestral { eta } => {
                    karras::euler_ancestral(&model, x, sigmas, *eta, noise, callback)?
                }
                SigmaMethod::Heun(churn) => {
                    karras::heun(&model, x, sigmas, *churn, noise, callback)?
                }
                SigmaMethod::Lms { order } => karras::lms(&model, x, sigmas, *order, callback)?,
                SigmaMethod::DpmPP2M => {
                    let second_order_end = *ends == Ends::FewStep;
                    karras::dpmpp_2m(&model, x, sigmas, second_order_end, callback)?
                }
                SigmaMethod::DpmPP3M { diffusers_form } => {
                    karras::dpmpp_3m(&model, x, sigmas, *diffusers_form, callback)?
                }
                SigmaMethod::UniPc => karras::unipc(&model, x, sigmas, callback)?,
            };
            Ok((sigma::to_vp(&x, sigmas[sigmas.len() - 1]), model.nfe()))
        }
    }
}

/// A sampler whose grid no longer depends on the batch, and what fixing it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixed {
    /// The sampler to run on every batch.
    pub sampler: Sampler,
    /// Denoiser evaluations spent on the pilot (each on all of its rows).
    pub pilot_nfe: usize,
    /// For a fitted grid, the fit and its errors.
    pub fit: Option<fit::FittedGrid>,
}

/// Turns a sampler whose steps adapt to the batch (RK45) into one with a fixed grid, chosen by an
/// adaptive solve on `pilot` (for instance the first few hundred samples of a run), and a sigma
/// sampler on a [`GridKind::Fitted`] grid into one on the levels [`fit::fit_grid`] fits on
/// `pilot`. Every batch then takes the same steps, so a sample does not depend on the batch it is
/// drawn in. Other samplers are returned as they are.
pub fn fix_grid(
    sampler: &Sampler,
    denoiser: &dyn crate::denoiser::Denoiser,
    schedule: &Schedule,
    pilot: Tensor<2>,
    from: usize,
    to: usize,
) -> crate::Result<Fixed> {
    match sampler {
        Sampler::Ode {
            method: method @ OdeMethod::Rk45 { .. },
        } => {
            let (_, stats) = probability_flow(
                denoiser,
                schedule,
                pilot,
                from as f64,
                to as f64,
                method,
                &mut silent,
            )?;
            let sampler = Sampler::Ode {
                method: OdeMethod::Dopri5(stats.sigmas),
            };
            Ok(Fixed {
                sampler,
                pilot_nfe: stats.nfe,
                fit: None,
            })
        }
        Sampler::Sigma {
            method,
            grid: GridKind::Fitted,
            steps,
            range,
            ends,
        } => {
            if to != 0 {
                return crate::error::invalid("a fitted grid runs to step 0");
            }
            let fitted = fit::fit_grid(
                *method, *ends, denoiser, schedule, pilot, from, *steps, *range,
            )?;
            let sampler = Sampler::Sigma {
                method: *method,
                grid: GridKind::Given(fitted.sigmas.clone()),
                steps: *steps,
                range: SigmaRange::FULL,
                ends: *ends,
            };
            Ok(Fixed {
                sampler,
                pilot_nfe: fitted.nfe,
                fit: Some(fitted),
            })
        }
        other => Ok(Fixed {
            sampler: other.clone(),
            pilot_nfe: 0,
            fit: None,
        }),
    }
}

/// A no-op callback.
pub fn silent(_: &Event) {}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod order_tests;

#[cfg(test)]
mod reference_tests;

#[cfg(test)]
mod few_step_tests;
