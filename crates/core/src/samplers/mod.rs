//! Reverse-process samplers: each a short loop over a time or noise grid that asks a
//! [`Denoiser`](crate::denoiser::Denoiser) for its prediction and never knows whether it is exact
//! or learned. Progress and trajectories leave through a callback; samplers never print.

mod ddpm;
mod ode;
mod sde;

use std::ops::Range;

use burn::tensor::{Device, Tensor};

pub use ddpm::{Variance, ddpm};
pub use ode::{OdeMethod, OdeStats, probability_flow};
pub use sde::reverse_sde;

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

/// A reverse sampler and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampler {
    /// DDPM ancestral sampling on the schedule's own steps.
    Ddpm(Variance),
    /// The reverse SDE by Euler-Maruyama in `steps` steps.
    Sde {
        /// Number of Euler-Maruyama steps.
        steps: usize,
    },
    /// The probability-flow ODE.
    Ode {
        /// The integrator.
        method: OdeMethod,
        /// Steps for the fixed-step integrators.
        steps: usize,
    },
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
        Sampler::Ode { method, steps } => {
            let (x, stats) = probability_flow(
                denoiser,
                schedule,
                x,
                from as f64,
                to as f64,
                method,
                *steps,
                callback,
            )?;
            Ok((x, stats.nfe))
        }
    }
}

/// Turns a sampler whose steps adapt to the batch (RK45) into one with a fixed grid, chosen by an
/// adaptive solve on `pilot` (for instance the first few hundred samples of a run). Every batch then
/// takes the same steps, so a sample does not depend on the batch it is drawn in. Other samplers
/// are returned as they are.
pub fn fix_grid(
    sampler: &Sampler,
    denoiser: &dyn crate::denoiser::Denoiser,
    schedule: &Schedule,
    pilot: Tensor<2>,
    from: usize,
    to: usize,
) -> crate::Result<Sampler> {
    match sampler {
        Sampler::Ode {
            method: method @ OdeMethod::Rk45 { .. },
            steps,
        } => {
            let (_, stats) = probability_flow(
                denoiser,
                schedule,
                pilot,
                from as f64,
                to as f64,
                method,
                *steps,
                &mut silent,
            )?;
            Ok(Sampler::Ode {
                method: OdeMethod::Dopri5(stats.sigmas),
                steps: *steps,
            })
        }
        other => Ok(other.clone()),
    }
}

/// A no-op callback.
pub fn silent(_: &Event) {}

#[cfg(test)]
mod tests;
