//! The noise-level view shared by the fast samplers (k-diffusion's model wrappers, EDM's
//! preconditioning): any variance-preserving model becomes a denoiser D(x~, sigma) of
//! x~ = x / sqrt(alpha-bar) at sigma = sqrt((1 - alpha-bar) / alpha-bar), by feeding it
//! x = x~ / sqrt(1 + sigma^2) at the time t where the schedule reaches sigma.

use std::cell::Cell;

use burn::tensor::Tensor;

use super::{Event, level_at_sigma};
use crate::denoiser::{Denoiser, Prediction};
use crate::error::Result;
use crate::schedule::Schedule;

/// A [`Denoiser`] seen at VE noise levels, counting its evaluations.
pub struct SigmaDenoiser<'a> {
    denoiser: &'a dyn Denoiser,
    schedule: &'a Schedule,
    nfe: Cell<usize>,
}

impl<'a> SigmaDenoiser<'a> {
    /// The sigma view of `denoiser` under `schedule`.
    pub fn new(denoiser: &'a dyn Denoiser, schedule: &'a Schedule) -> Self {
        Self {
            denoiser,
            schedule,
            nfe: Cell::new(0),
        }
    }

    /// The prediction at (x~, sigma); `x0()` of it is D(x~, sigma).
    pub fn predict(&self, x_tilde: &Tensor<2>, sigma: f64) -> Result<Prediction> {
        let level = level_at_sigma(self.schedule, sigma);
        self.nfe.set(self.nfe.get() + 1);
        self.denoiser
            .predict(&(x_tilde.clone() * level.signal()), level)
    }

    /// D(x~, sigma), the denoised estimate of x_0.
    pub fn denoise(&self, x_tilde: &Tensor<2>, sigma: f64) -> Result<Tensor<2>> {
        Ok(self.predict(x_tilde, sigma)?.x0())
    }

    /// Evaluations so far.
    pub fn nfe(&self) -> usize {
        self.nfe.get()
    }

    /// Reports step `step` of `steps`, reached at `sigma`, to a callback (x in the VP scaling).
    pub fn report(
        &self,
        callback: &mut dyn FnMut(&Event),
        step: usize,
        steps: usize,
        sigma: f64,
        x_tilde: &Tensor<2>,
        denoised: &Tensor<2>,
    ) {
        let t = if sigma == 0.0 {
            0.0
        } else {
            self.schedule.t_at_sigma(sigma)
        };
        callback(&Event {
            step,
            steps,
            t,
            x: &to_vp(x_tilde, sigma),
            x0: denoised,
        });
    }
}

/// x = x~ / sqrt(1 + sigma^2).
pub fn to_vp(x_tilde: &Tensor<2>, sigma: f64) -> Tensor<2> {
    x_tilde.clone() / (1.0 + sigma * sigma).sqrt()
}

/// x~ = x sqrt(1 + sigma^2).
pub fn to_ve(x: Tensor<2>, sigma: f64) -> Tensor<2> {
    x * (1.0 + sigma * sigma).sqrt()
}

/// The Karras ODE derivative d = (x~ - D) / sigma.
pub fn to_d(x_tilde: &Tensor<2>, sigma: f64, denoised: &Tensor<2>) -> Tensor<2> {
    (x_tilde.clone() - denoised.clone()) / sigma
}
