//! Training an [`AutoencoderKl`] (Rombach et al. 2022, the KL-regularised autoencoder of latent
//! diffusion): the encoder's posterior N(mean, exp(logvar)) sampled by the reparameterisation
//! z = mean + exp(logvar / 2) eps, decoded, and the loss
//!
//!   sum over pixels (x - D(z))^2 + beta * KL(q(z|x) || N(0, I)),
//!
//! per image as the latent-diffusion code sums it, divided by the pixel count so that the number
//! reads as a mean squared error (Adam does not see the scale). The perceptual and adversarial
//! terms of Stable Diffusion's VAE are left out: on 32x32 images a squared error suffices.

use std::ops::Range;

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use diffuse_core::{NoiseSource, Stream};

use super::AutoencoderKl;
use crate::{NnError, Result};

/// Settings of a VAE training run.
#[derive(Debug, Clone, PartialEq)]
pub struct VaeTraining {
    /// Optimiser steps.
    pub steps: usize,
    /// Images per step.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// beta, the weight of the KL term against the summed squared error (latent diffusion's
    /// KL-f8 autoencoder uses 1e-6).
    pub kl_weight: f64,
    /// Seed of the batches' posterior noise.
    pub seed: u64,
}

/// One step's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VaeStep {
    /// The loss minimised (squared error per pixel + beta KL per pixel).
    pub loss: f64,
    /// The squared error per pixel of the sampled reconstruction.
    pub mse: f64,
    /// KL(q(z|x) || N(0, I)) per image, in nats.
    pub kl: f64,
}

/// The loss terms of a batch `[B, C, H, W]` in [-1, 1], the posterior sampled with `eps`
/// (`[B, latent, h, w]`): (loss, squared error per pixel, KL per image).
pub fn vae_loss(
    vae: &AutoencoderKl,
    x: Tensor<4>,
    eps: Tensor<4>,
    kl_weight: f64,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let [b, c, h, w] = x.dims();
    let pixels = (c * h * w) as f64;
    let (mean, logvar) = vae.encode(x.clone());
    let z = mean.clone() + (logvar.clone() * 0.5).exp() * eps;
    let mse = (vae.decode(z) - x).square().mean();
    // KL of N(m, v) from N(0, 1) per latent value: (m^2 + v - 1 - log v) / 2, summed per image.
    let kl = (mean.square() + logvar.clone().exp() - logvar - 1.0).sum() * (0.5 / b as f64);
    let loss = mse.clone() + kl.clone() * (kl_weight / pixels);
    (loss, mse, kl)
}

/// Trains `vae` (on an autodiff device) on batches `draw(rows)` gives (`[B, C, H, W]` values in
/// [-1, 1], row-major, for the global rows `rows`) from step `first + 1`. `on_step(step, numbers)`
/// sees every step and may stop the run by returning an error; `save(step, vae)` runs every
/// `every` steps and after the last. A non-finite loss stops with [`NnError::Diverged`].
#[allow(clippy::too_many_arguments)]
pub fn train_vae(
    mut vae: AutoencoderKl,
    shape: [usize; 3],
    draw: &dyn Fn(Range<u64>) -> Vec<f32>,
    cfg: &VaeTraining,
    first: usize,
    on_step: &mut dyn FnMut(usize, VaeStep) -> Result<()>,
    every: usize,
    save: &mut dyn FnMut(usize, &AutoencoderKl) -> Result<()>,
) -> Result<AutoencoderKl> {
    if cfg.steps == 0 || cfg.batch == 0 || every == 0 || !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return Err(NnError::Invalid(
            "VAE training needs steps, batch and save interval >= 1 and a positive learning rate"
                .into(),
        ));
    }
    if !(cfg.kl_weight >= 0.0 && cfg.kl_weight.is_finite()) {
        return Err(NnError::Invalid(format!(
            "the KL weight must be a non-negative number (got {})",
            cfg.kl_weight
        )));
    }
    let device = vae.device();
    let mut adam: ModuleOptimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let noise = NoiseSource::new(cfg.seed);
    let [c, h, w] = shape;
    let b = cfg.batch;
    let f = vae.scale_factor();
    let (lat, lh, lw) = (vae.latent_channels(), h / f, w / f);
    for step in first + 1..=first + cfg.steps {
        let rows = (step as u64 - 1) * b as u64..step as u64 * b as u64;
        let x = tensor(draw(rows.clone()), [b, c, h, w], &device)?;
        let eps: Vec<f32> = noise
            .normals(Stream::Other, step as u64, rows, lat * lh * lw)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let eps = tensor(eps, [b, lat, lh, lw], &device)?;
        let (loss, mse, kl) = vae_loss(&vae, x, eps, cfg.kl_weight);
        let mse = f64::from(mse.into_scalar::<f32>());
        let kl = f64::from(kl.into_scalar::<f32>());
        let value;
        (vae, value) = crate::train::descend(vae, loss, &mut adam, cfg.lr, step)?;
        on_step(
            step,
            VaeStep {
                loss: value,
                mse,
                kl,
            },
        )?;
        if (step - first).is_multiple_of(every) || step == first + cfg.steps {
            save(step, &vae)?;
        }
    }
    Ok(vae)
}

fn tensor(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Result<Tensor<4>> {
    let n: usize = shape.iter().product();
    if values.len() != n {
        return Err(NnError::Invalid(format!(
            "a batch of {} values where {shape:?} needs {n}",
            values.len()
        )));
    }
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}
