//! Training a [`UNet2DCondition`] in a VAE's latent space on captioned data (latent diffusion,
//! Rombach et al. 2022; DDPM's Algorithm 1 on latents): a random step t per example, z_t by the
//! closed form, the squared error between the true and the predicted noise, the UNet attending
//! to the token states of one of the example's captions, or of the empty prompt with probability
//! `prompt_dropout` (what classifier-free guidance subtracts at sampling).
//!
//! Captions' token states have their own lengths; a batch pads them to its longest and the
//! cross-attention's mask leaves the padding out ([`UNet2DCondition::forward_masked`]).

use std::ops::Range;

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::{Bool, Device, Tensor, TensorData};
use diffuse_core::{NoiseSource, Schedule, Stream};

use super::UNet2DCondition;
use crate::{NnError, Result};

/// One prompt's token states, `[tokens, dim]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub states: Vec<f32>,
    pub tokens: usize,
}

/// Settings of a latent training run.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentTraining {
    /// Optimiser steps.
    pub steps: usize,
    /// Examples per step.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Probability of showing the empty prompt instead of the example's caption.
    pub prompt_dropout: f64,
    /// Seed of the steps, the noise and the captions drawn.
    pub seed: u64,
    /// Decay of an exponential moving average of the weights (0.999 is usual): when set, `save`
    /// is given the average, the weights to sample with.
    pub ema: Option<f64>,
}

/// A batch of contexts: the token states of `prompts` padded to the longest, `[B, L, d]`, and
/// the padding mask `[B, L]` (true at padding).
pub fn pad_prompts(
    prompts: &[&Prompt],
    dim: usize,
    device: &Device,
) -> (Tensor<3>, Tensor<2, Bool>) {
    let b = prompts.len();
    let l = prompts.iter().map(|p| p.tokens).max().unwrap_or(1).max(1);
    let mut states = vec![0f32; b * l * dim];
    let mut pad = vec![true; b * l];
    for (i, p) in prompts.iter().enumerate() {
        states[i * l * dim..i * l * dim + p.tokens * dim].copy_from_slice(&p.states);
        pad[i * l..i * l + p.tokens].fill(false);
    }
    (
        Tensor::from_data(TensorData::new(states, [b, l, dim]), device),
        Tensor::from_data(TensorData::new(pad, [b, l]), device),
    )
}

/// Trains `unet` (on an autodiff device) on latents: `draw(rows)` gives the scaled latents
/// (`[B, C, H, W]` row-major, `shape` = [C, H, W]) and the label of each row; `captions[label]`
/// are the label's prompts, `empty` the empty prompt's. Steps run from `first + 1`;
/// `on_step(step, loss)` sees every loss and may stop the run; `save(step, unet)` runs every
/// `every` steps and after the last (the average of the weights when `cfg.ema` is set; the
/// returned UNet is the trained one). A non-finite loss stops with [`NnError::Diverged`].
#[allow(clippy::too_many_arguments)]
pub fn train_latent(
    mut unet: UNet2DCondition,
    schedule: &Schedule,
    shape: [usize; 3],
    draw: &dyn Fn(Range<u64>) -> (Vec<f32>, Vec<usize>),
    captions: &[Vec<Prompt>],
    empty: &Prompt,
    cfg: &LatentTraining,
    first: usize,
    on_step: &mut dyn FnMut(usize, f64) -> Result<()>,
    every: usize,
    save: &mut dyn FnMut(usize, &UNet2DCondition) -> Result<()>,
) -> Result<UNet2DCondition> {
    if cfg.steps == 0 || cfg.batch == 0 || every == 0 || !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return Err(NnError::Invalid(
            "latent training needs steps, batch and save interval >= 1 and a positive learning \
             rate"
                .into(),
        ));
    }
    if !(0.0..1.0).contains(&cfg.prompt_dropout) {
        return Err(NnError::Invalid(format!(
            "the prompt dropout must be in [0, 1) (got {})",
            cfg.prompt_dropout
        )));
    }
    let dim = empty.states.len() / empty.tokens.max(1);
    if let Some((label, _)) = captions.iter().enumerate().find(|(_, c)| {
        c.is_empty()
            || c.iter()
                .any(|p| p.tokens == 0 || p.states.len() != p.tokens * dim)
    }) {
        return Err(NnError::Invalid(format!(
            "label {label} has no captions, or one whose token states are not {dim} wide"
        )));
    }
    if let Some(e) = cfg.ema.filter(|e| !(*e > 0.0 && *e < 1.0)) {
        return Err(NnError::Invalid(format!(
            "the average's decay must be in (0, 1) (got {e})"
        )));
    }
    let mut ema = cfg.ema.map(crate::ema::Ema::new);
    let device = unet_device(&unet);
    let mut adam: ModuleOptimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let noise = NoiseSource::new(cfg.seed);
    let [c, h, w] = shape;
    let (b, d, t_max) = (cfg.batch, c * h * w, schedule.steps());
    for step in first + 1..=first + cfg.steps {
        let rows = (step as u64 - 1) * b as u64..step as u64 * b as u64;
        let (z0, labels) = draw(rows.clone());
        if z0.len() != b * d || labels.len() != b {
            return Err(NnError::Invalid(format!(
                "a batch of {} latents and {} labels where {b} of {shape:?} were asked for",
                z0.len() / d.max(1),
                labels.len()
            )));
        }
        let k = 4 * step as u64;
        let ts: Vec<usize> = noise
            .uniforms(Stream::Other, k, rows.clone())
            .iter()
            .map(|u| ((u * t_max as f64) as usize).min(t_max - 1) + 1)
            .collect();
        let hide = noise.uniforms(Stream::Other, k + 1, rows.clone());
        let pick = noise.uniforms(Stream::Other, k + 2, rows.clone());
        let eps = noise.normals(Stream::Other, k + 3, rows, d);
        let mut prompts = Vec::with_capacity(b);
        for i in 0..b {
            let list = captions
                .get(labels[i])
                .ok_or_else(|| NnError::Invalid(format!("label {} has no captions", labels[i])))?;
            prompts.push(if hide[i] < cfg.prompt_dropout {
                empty
            } else {
                &list[((pick[i] * list.len() as f64) as usize).min(list.len() - 1)]
            });
        }
        let (context, pad) = pad_prompts(&prompts, dim, &device);
        let mut zt = vec![0f32; b * d];
        for i in 0..b {
            let (a, s) = (
                schedule.alpha_bar(ts[i]).sqrt(),
                schedule.one_minus_alpha_bar(ts[i]).sqrt(),
            );
            for j in 0..d {
                zt[i * d + j] = (a * f64::from(z0[i * d + j]) + s * eps[i * d + j]) as f32;
            }
        }
        let eps: Vec<f32> = eps.into_iter().map(|v| v as f32).collect();
        // diffusers counts timesteps from 0: this crate's step t is its timestep t - 1.
        let t_in: Vec<f32> = ts.iter().map(|t| (*t - 1) as f32).collect();
        let zt = Tensor::<4>::from_data(TensorData::new(zt, [b, c, h, w]), &device);
        let target = Tensor::<4>::from_data(TensorData::new(eps, [b, c, h, w]), &device);
        let t_in = Tensor::<1>::from_data(TensorData::new(t_in, [b]), &device);
        let loss = (unet.forward_masked(zt, t_in, context, Some(pad)) - target)
            .square()
            .mean();
        let value;
        (unet, value) = crate::train::descend(unet, loss, &mut adam, cfg.lr, step)?;
        if let Some(e) = &mut ema {
            e.update(&unet);
        }
        on_step(step, value)?;
        if (step - first).is_multiple_of(every) || step == first + cfg.steps {
            match &ema {
                Some(e) => save(step, &e.apply(unet.clone()))?,
                None => save(step, &unet)?,
            }
        }
    }
    Ok(unet)
}

fn unet_device(unet: &UNet2DCondition) -> Device {
    use burn::module::Module;
    unet.devices()
        .into_iter()
        .next()
        .unwrap_or_else(diffuse_core::device::cpu)
}
