//! The DDPM training loop (Ho et al. 2020, Algorithm 1; seeds 001 and 003): a random step t per
//! sample, x_t by the closed form, and the mean squared error between the true and the guessed
//! noise, minimised by Adam (or AdamW, with decoupled weight decay) with PyTorch's settings
//! (eps = 1e-8) and optional norm clipping.

use std::ops::Range;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use diffuse_core::{NoiseSource, Schedule, Stream, Target};
use serde::{Deserialize, Serialize};

use crate::model::{Model, ModelConfig};
use crate::parallel::{Inputs, Parallel, Sharded, my_rows};
use crate::{NnError, Result};

/// Data standardisation stored with a model (seed 003 trains on (x - mean) / std).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    /// Per-coordinate mean.
    pub mean: Vec<f64>,
    /// Per-coordinate standard deviation.
    pub std: Vec<f64>,
}

impl Standardization {
    /// The mean and standard deviation of row-major samples of dimension d.
    pub fn fit(x: &[f64], d: usize) -> Self {
        let n = (x.len() / d).max(1) as f64;
        let mean: Vec<f64> = (0..d)
            .map(|j| x.iter().skip(j).step_by(d).sum::<f64>() / n)
            .collect();
        let std = (0..d)
            .map(|j| {
                let v = x
                    .iter()
                    .skip(j)
                    .step_by(d)
                    .map(|v| (v - mean[j]).powi(2))
                    .sum::<f64>()
                    / (n - 1.0).max(1.0);
                if v > 0.0 { v.sqrt() } else { 1.0 }
            })
            .collect();
        Self { mean, std }
    }

    /// The identity (mean 0, std 1): data used as they are.
    pub fn identity(d: usize) -> Self {
        Self {
            mean: vec![0.0; d],
            std: vec![1.0; d],
        }
    }

    /// (x - mean) / std.
    pub fn apply(&self, x: &mut [f64]) {
        let d = self.mean.len();
        for (i, v) in x.iter_mut().enumerate() {
            *v = (*v - self.mean[i % d]) / self.std[i % d];
        }
    }

    /// ln |det| of the map x -> (x - mean) / std: log p(x) = log p_z(z) + this.
    pub fn log_det(&self) -> f64 {
        -self.std.iter().map(|s| s.ln()).sum::<f64>()
    }

    /// x std + mean.
    pub fn invert(&self, x: &mut [f64]) {
        let d = self.mean.len();
        for (i, v) in x.iter_mut().enumerate() {
            *v = *v * self.std[i % d] + self.mean[i % d];
        }
    }
}

/// Settings of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// AdamW's decoupled weight decay (Loshchilov & Hutter 2019); None: plain Adam.
    pub weight_decay: Option<f64>,
    /// Clip the gradient's global norm to this (seed 001 clips at 1).
    pub clip: Option<f64>,
    /// Seed of the initial weights, the batches, the steps and the noise.
    pub seed: u64,
    /// Probability of hiding a sample's class during training (classifier-free guidance).
    pub label_dropout: f64,
    /// For a prompt-conditioned model: each shown caption's embedding gets Gaussian noise of a
    /// per-coordinate standard deviation drawn uniformly in [0, this] and is scaled back to unit
    /// length, so that the model learns to answer a neighbourhood of each caption (where a
    /// paraphrase lands) rather than its point only. 0: the captions as they are.
    pub prompt_noise: f64,
    /// What the model learns to predict: eps (DDPM), x0, or v = sqrt(ab) eps - sqrt(1 - ab) x0.
    pub target: Target,
    /// For a prompt-conditioned model: the sentence embeddings of each class's captions; each
    /// sample is shown one of its class's captions, drawn at random.
    pub prompts: Vec<Vec<Vec<f32>>>,
    /// Where to train (its autodiff form is used); the batches are drawn on the host and copied
    /// there, so the same seed draws the same batches on every device.
    pub device: Device,
    /// Further devices and processes that share every batch (data parallelism).
    pub parallel: Parallel,
}

/// Held while a new model's weights are drawn.
static DRAWING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Touches every weight, so that a lazily initialised one is drawn now.
struct Materialise;

impl ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// A new module's weights, drawn by `init` on the CPU from `seed` and moved to `device`'s
/// autodiff form: each backend has its own random generator, and the same seed must give the
/// same model wherever it trains. They are drawn all at once, under one lock: burn draws
/// lazily, on first use, with each backend's own generator, which is one per process (two runs
/// seeding it at once would mix their draws, and a replica forked before the first use would
/// draw its own weights).
pub(crate) fn drawn_on_host<M: Module>(
    seed: u64,
    device: &Device,
    init: impl FnOnce(&Device) -> Result<M>,
) -> Result<M> {
    let _drawing = DRAWING.lock().unwrap_or_else(|e| e.into_inner());
    let host = Device::flex().autodiff();
    host.seed(seed);
    let m = init(&host)?;
    m.visit(&mut Materialise);
    Ok(if *device == Device::flex() {
        m
    } else {
        m.fork(&device.clone().autodiff())
    })
}

/// A batch of training data: standardised row-major samples and, for a conditional model,
/// their class indices.
pub type Batch = (Vec<f64>, Option<Vec<usize>>);

/// Saves a model as trained to a step (and its weight average, if any).
pub type SaveFn<'a> = dyn FnMut(usize, &Model, Option<&crate::ema::Ema>) -> Result<()> + 'a;

/// Where a training run saves itself: `save(step, model, average)` after every `every` steps
/// and after the last. The optimiser lives on across saves, so how often a run saves does not
/// change its weights.
pub struct Checkpoints<'a> {
    /// Steps between saves.
    pub every: usize,
    /// Saves the model as trained to `step` (and its weight average, if any).
    pub save: &'a mut SaveFn<'a>,
}

/// Trains `mlp` (or a new model of `config`) for `train.steps` steps on data drawn by `draw`
/// (global rows -> row-major samples, already standardised). `on_step(step, loss)` sees every
/// loss and may stop the run by returning an error (the last checkpoint is kept); `checkpoints`
/// saves along the way. Training stops with [`NnError::Diverged`] at the
/// first non-finite loss.
#[allow(clippy::too_many_arguments)]
pub fn train(
    config: &ModelConfig,
    start: Option<Model>,
    schedule: &Schedule,
    draw: &dyn Fn(Range<u64>) -> Batch,
    train: &TrainConfig,
    first_step: usize,
    mut ema: Option<&mut crate::ema::Ema>,
    on_step: &mut dyn FnMut(usize, f64) -> Result<()>,
    mut checkpoints: Option<Checkpoints<'_>>,
) -> Result<Model> {
    if checkpoints.as_ref().is_some_and(|c| c.every == 0) {
        return Err(NnError::Invalid("checkpoints need every >= 1 step".into()));
    }
    if train.steps == 0 || train.batch == 0 || !(train.lr > 0.0 && train.lr.is_finite()) {
        return Err(NnError::Invalid(
            "training needs steps >= 1, batch >= 1 and a positive learning rate".into(),
        ));
    }
    let device = train.device.clone().autodiff();
    let mut model = match start {
        Some(m) if train.device == Device::flex() => m,
        Some(m) => m.fork(&device),
        None => drawn_on_host(train.seed, &train.device, |host| Ok(config.init(host)))?,
    };
    config.validate()?;
    if let Some(w) = train.weight_decay.filter(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(NnError::Invalid(format!(
            "weight decay must be a non-negative number (got {w})"
        )));
    }
    let clip = train.clip.map(|c| GradientClippingConfig::Norm(c as f32));
    let mut adam = match train.weight_decay {
        None => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_grad_clipping(clip)
            .init(),
        Some(w) => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(w as f32)
            .with_grad_clipping(clip)
            .init(),
    };
    let noise = NoiseSource::new(train.seed);
    let (d, b) = (config.dim(), train.batch);
    let mut sharded = if train.parallel.is_single() {
        None
    } else {
        Some(Sharded::new(
            &train.device,
            &train.parallel,
            b,
            d,
            fingerprint(config, train, first_step),
        )?)
    };
    let batch = Shard {
        config,
        schedule,
        train,
        noise: &noise,
        draw,
    };
    for step in first_step + 1..=first_step + train.steps {
        let rows = (step as u64 - 1) * b as u64..step as u64 * b as u64;
        let value;
        (model, value) = match sharded.as_mut() {
            None => {
                let loss = batch.inputs(step, rows)?.loss(&model, &device, None);
                descend(model, loss, &mut adam, train.lr, step)?
            }
            Some(sh) => {
                let inputs = my_rows(&train.parallel, rows)
                    .into_iter()
                    .map(|r| batch.inputs(step, r))
                    .collect::<Result<Vec<_>>>()?;
                sh.step(model, inputs, &mut adam, train.lr, step)?
            }
        };
        if let Some(e) = ema.as_deref_mut() {
            e.update(&model);
        }
        on_step(step, value)?;
        if let Some(c) = checkpoints.as_mut()
            && ((step - first_step).is_multiple_of(c.every) || step == first_step + train.steps)
        {
            (c.save)(step, &model, ema.as_deref())?;
        }
    }
    Ok(model)
}

/// What a step's inputs are drawn from.
struct Shard<'a> {
    config: &'a ModelConfig,
    schedule: &'a Schedule,
    train: &'a TrainConfig,
    noise: &'a NoiseSource,
    draw: &'a dyn Fn(Range<u64>) -> Batch,
}

impl Shard<'_> {
    /// The inputs of the batch rows `rows` at `step`: t uniform on 1..=T, eps ~ N(0, I),
    /// x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, and the target. Every draw is keyed by the
    /// global row, so a shard's rows are those rows of the whole batch.
    fn inputs(&self, step: usize, rows: Range<u64>) -> Result<Inputs> {
        let (config, train, noise) = (self.config, self.train, self.noise);
        let (d, t_max) = (config.dim(), self.schedule.steps());
        let b = (rows.end - rows.start) as usize;
        let (x0, labels) = (self.draw)(rows.clone());
        let cond = match labels {
            _ if config.cond_width() == 0 => None,
            Some(labels) => {
                // Classifier-free guidance: hide the condition of a fraction of the samples.
                let hide = noise.uniforms(Stream::Other, 2 * step as u64 + (1 << 40), rows.clone());
                let pick = noise.uniforms(Stream::Other, 2 * step as u64 + (1 << 41), rows.clone());
                let hidden: Vec<bool> = hide.iter().map(|u| *u < train.label_dropout).collect();
                let (mut shown, width) =
                    condition_rows(config, &labels, &hidden, &pick, &train.prompts)?;
                if train.prompt_noise > 0.0 && config.text() > 0 {
                    let key = 2 * step as u64 + (1 << 42);
                    let strength = noise.uniforms(Stream::Other, key, rows.clone());
                    let z = noise.normals(Stream::Other, key + 1, rows.clone(), width);
                    let z = z.iter().map(|v| *v as f32).collect::<Vec<_>>();
                    perturb_prompts(
                        &mut shown,
                        width,
                        &hidden,
                        &strength,
                        &z,
                        train.prompt_noise,
                    );
                }
                Some((shown, width))
            }
            None => {
                return Err(NnError::Invalid(
                    "a conditional model needs labelled data".into(),
                ));
            }
        };
        let ts: Vec<usize> = noise
            .uniforms(Stream::Other, 2 * step as u64, rows.clone())
            .iter()
            .map(|u| ((u * t_max as f64) as usize).min(t_max - 1) + 1)
            .collect();
        let eps = noise.normals(Stream::Other, 2 * step as u64 + 1, rows, d);
        let mut xt = vec![0f32; b * d];
        let mut goal = vec![0f32; b * d];
        for i in 0..b {
            let (a, s) = (
                self.schedule.alpha_bar(ts[i]).sqrt(),
                self.schedule.one_minus_alpha_bar(ts[i]).sqrt(),
            );
            for j in 0..d {
                let (x, e) = (x0[i * d + j], eps[i * d + j]);
                xt[i * d + j] = (a * x + s * e) as f32;
                goal[i * d + j] = match train.target {
                    Target::Eps => e,
                    Target::X0 => x,
                    Target::V => a * e - s * x,
                } as f32;
            }
        }
        let t_in: Vec<f32> = ts.iter().map(|t| *t as f32 / t_max as f32).collect();
        Ok(Inputs {
            n: b,
            d,
            xt,
            t_in,
            goal,
            cond,
        })
    }
}

/// The settings every process of a group must share, as one number (FNV-1a of their text).
fn fingerprint(config: &ModelConfig, train: &TrainConfig, first_step: usize) -> u64 {
    let text = format!(
        "{config:?}|{}|{}|{}|{}|{:?}|{:?}|{}|{}|{:?}|{}|{}",
        train.steps,
        train.batch,
        train.lr.to_bits(),
        train.seed,
        train.weight_decay.map(f64::to_bits),
        train.clip.map(f64::to_bits),
        train.label_dropout.to_bits(),
        train.prompt_noise.to_bits(),
        train.target,
        train.parallel.per_process(),
        first_step
    );
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The tail of every training step: a non-finite loss stops training with the step named;
/// else the gradients of `loss` move `model` by one step of `optim`. Returns the model and the
/// loss.
pub(crate) fn descend<M: burn::module::Module>(
    model: M,
    loss: Tensor<1>,
    optim: &mut ModuleOptimizer,
    lr: f64,
    step: usize,
) -> Result<(M, f64)> {
    let value = f64::from(loss.clone().into_scalar::<f32>());
    if !value.is_finite() {
        return Err(NnError::Diverged { step, loss: value });
    }
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    Ok((optim.step(lr, model, grads), value))
}

/// The condition rows of a batch and their width: one-hot classes (the last slot for a hidden
/// class), or for a prompt-conditioned model the embedding of the caption `pick` chooses among
/// the class's captions (zeros for a hidden prompt).
/// Moves each shown caption embedding (a row of `shown`, `width` wide; hidden rows stay zero)
/// by `strength[i] * max` times the normals of its row of `z`, and scales it back to the length
/// it had: a point near the caption on the encoder's unit sphere.
fn perturb_prompts(
    shown: &mut [f32],
    width: usize,
    hidden: &[bool],
    strength: &[f64],
    z: &[f32],
    max: f64,
) {
    for (i, row) in shown.chunks_exact_mut(width).enumerate() {
        if hidden[i] {
            continue;
        }
        let length = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        let s = (strength[i] * max) as f32;
        for (v, n) in row.iter_mut().zip(&z[i * width..(i + 1) * width]) {
            *v += s * n;
        }
        let moved = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if moved > 0.0 {
            row.iter_mut().for_each(|v| *v *= length / moved);
        }
    }
}

fn condition_rows(
    config: &ModelConfig,
    labels: &[usize],
    hidden: &[bool],
    pick: &[f64],
    prompts: &[Vec<Vec<f32>>],
) -> Result<(Vec<f32>, usize)> {
    let width = config.text();
    if width == 0 {
        let c = config.classes();
        let mut rows = vec![0f32; labels.len() * (c + 1)];
        for (i, (l, h)) in labels.iter().zip(hidden).enumerate() {
            rows[i * (c + 1) + if *h { c } else { (*l).min(c) }] = 1.0;
        }
        return Ok((rows, c + 1));
    }
    let mut rows = vec![0f32; labels.len() * width];
    for (i, l) in labels.iter().enumerate() {
        let captions = prompts.get(*l).filter(|c| !c.is_empty()).ok_or_else(|| {
            NnError::Invalid(format!("class {l} has no caption embeddings to train on"))
        })?;
        if hidden[i] {
            continue;
        }
        let k = ((pick[i] * captions.len() as f64) as usize).min(captions.len() - 1);
        if captions[k].len() != width {
            return Err(NnError::Invalid(format!(
                "a caption embedding has width {}, the model reads {width}",
                captions[k].len()
            )));
        }
        rows[i * width..(i + 1) * width].copy_from_slice(&captions[k]);
    }
    Ok((rows, width))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` unit vectors of `width` drawn from `seed`, with their normals for the noise.
    fn unit_rows(rows: usize, width: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let noise = NoiseSource::new(seed);
        let mut c: Vec<f32> = noise
            .normals(Stream::Other, 0, 0..rows as u64, width)
            .iter()
            .map(|v| *v as f32)
            .collect();
        for row in c.chunks_exact_mut(width) {
            let l = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            row.iter_mut().for_each(|v| *v /= l);
        }
        let z = noise.normals(Stream::Other, 1, 0..rows as u64, width);
        (c, z.iter().map(|v| *v as f32).collect())
    }

    #[test]
    fn prompt_noise_keeps_length_and_hidden_rows_and_nothing_moves_at_zero() {
        let (w, n) = (7, 5);
        let (c, z) = unit_rows(n, w, 3);
        let mut shown = c.clone();
        let hidden = [false, true, false, false, true];
        for (i, h) in hidden.iter().enumerate() {
            if *h {
                shown[i * w..(i + 1) * w].fill(0.0);
            }
        }
        let before = shown.clone();
        perturb_prompts(&mut shown, w, &hidden, &[0.7; 5], &z, 0.0);
        assert_eq!(shown, before);
        perturb_prompts(&mut shown, w, &hidden, &[0.0, 0.3, 0.5, 1.0, 0.9], &z, 0.4);
        for (i, row) in shown.chunks_exact(w).enumerate() {
            let l = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if hidden[i] {
                assert!(row.iter().all(|v| *v == 0.0), "hidden row {i} moved");
            } else {
                assert!((l - 1.0).abs() < 1e-6, "row {i} has length {l}");
            }
        }
        assert_eq!(shown[..w], before[..w], "strength 0 moved row 0");
        assert_ne!(shown[2 * w..3 * w], before[2 * w..3 * w]);
    }

    /// At per-coordinate strength s in `width` dimensions the moved caption's cosine to the
    /// caption is about 1 / sqrt(1 + s^2 width) (|z|^2 ~ width, z.c ~ N(0, 1)): the scale the
    /// README's choice of --prompt-noise is argued in.
    #[test]
    fn prompt_noise_moves_a_caption_by_its_closed_form_angle() {
        let (w, n) = (384, 2000);
        let (c, z) = unit_rows(n, w, 5);
        for s in [0.02f64, 0.05, 0.1] {
            let mut shown = c.clone();
            perturb_prompts(&mut shown, w, &vec![false; n], &vec![1.0; n], &z, s);
            let cos: Vec<f64> = shown
                .chunks_exact(w)
                .zip(c.chunks_exact(w))
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum())
                .collect();
            let mean = cos.iter().sum::<f64>() / n as f64;
            let sd = (cos.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
            let want = 1.0 / (1.0 + s * s * w as f64).sqrt();
            // Five standard errors of the mean, plus the closed form's neglected terms of
            // order s^2 (the fluctuation of |z|^2 and z.c about their means).
            let tol = 5.0 * sd / (n as f64).sqrt() + s * s;
            assert!(
                (mean - want).abs() < tol,
                "s {s}: mean cosine {mean}, closed form {want}"
            );
        }
    }
}
