//! A training run: a new model or one resumed from its folder, the DDPM loss in chunks of
//! `save_every` steps with a checkpoint after each, an optional weight average, and the loss
//! history in `loss.csv`.
//!
//! The folder's contract: `config.json` (the [`Checkpoint`] record), `model.safetensors` (the
//! weights to sample with: the average when `ema` is set), `raw.safetensors` (with `ema`, the
//! trained weights that `resume` continues) and `loss.csv` (step, loss).

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use diffuse_core::{NoiseSource, Target, device};
use diffuse_data::captions::captions;
use diffuse_nn::{
    Activation, Checkpoint, Checkpoints, Conditioning, Ema, MlpConfig, Model, ModelConfig, NnError,
    Parallel, Standardization, TimeEncoding, TrainConfig, UNetConfig,
};

use crate::generate::text_encoder;
use crate::report::Report;
use crate::run::Watch;
use crate::{dataset, positive, schedule_of};

/// Rows of the data stream used to fit the standardisation (far from the training rows).
const FIT_ROWS: std::ops::Range<u64> = (1 << 41)..(1 << 41) + 10_000;

/// The text encoder prompt-conditioned models read.
const TEXT_ENCODER: &str = "all-MiniLM-L6-v2";

/// A training run's settings.
#[derive(Debug, Clone)]
pub struct TrainRun {
    /// Data to learn (the --data grammar).
    pub data: String,
    /// mlp, conditional-mlp, sinusoidal-mlp or unet.
    pub model: String,
    /// Number of sin/cos time features of sinusoidal-mlp.
    pub time_features: usize,
    /// Channels of the UNet's first level.
    pub channels: usize,
    /// Width of the MLP's hidden layers.
    pub hidden: usize,
    /// Number of hidden layers.
    pub depth: usize,
    /// relu, elu, silu or softplus.
    pub activation: String,
    /// The schedule spec.
    pub schedule: String,
    /// T, the steps of the diffusion.
    pub timesteps: usize,
    /// Optimiser steps (more, when resuming).
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: Option<f64>,
    /// Train on the data as they are, not standardised per coordinate.
    pub no_standardize: bool,
    /// Clip the gradient norm to this.
    pub clip: Option<f64>,
    /// A checkpoint every this many steps (and at the end).
    pub save_every: usize,
    /// Continue the model in the folder.
    pub resume: bool,
    /// How the model is conditioned.
    pub cond: Conditioning,
    /// What the model predicts.
    pub target: Target,
    /// Decay of a weight average to sample with.
    pub ema: Option<f64>,
    /// Probability of hiding the condition in training (for guidance).
    pub label_dropout: f64,
    /// `--cond prompt`: the largest per-coordinate noise put on a caption's embedding in
    /// training (see [`diffuse_nn::TrainConfig::prompt_noise`]).
    pub prompt_noise: f64,
    /// `--model vae`: the weight of the KL term ([`KL_WEIGHT`] by default).
    pub kl_weight: f64,
    /// `--model latent`: the folder of the VAE (trained with `--model vae`) whose latents the
    /// UNet learns.
    pub vae: Option<String>,
    /// Seed of all randomness.
    pub seed: u64,
    /// Where to train ([`device::parse`]); MLPs and pixel UNets only so far.
    pub device: Device,
    /// Further devices and processes sharing every batch (`--devices`, `--nodes`); MLPs and
    /// pixel UNets only.
    pub parallel: Parallel,
}

/// The KL weight of latent diffusion's KL-f8 autoencoder (against per-image sums of squared
/// errors).
pub const KL_WEIGHT: f64 = 1e-6;

impl TrainRun {
    /// Seed 003's model (3 x 256 ReLU MLP, T = 1000, linear 1e-4..0.02, Adam 1e-3) on `data`
    /// for `steps` steps of 256.
    pub fn new(data: &str, steps: usize) -> Self {
        Self {
            data: data.into(),
            model: "mlp".into(),
            time_features: 32,
            channels: 32,
            hidden: 256,
            depth: 3,
            activation: "relu".into(),
            schedule: "linear:1e-4:0.02".into(),
            timesteps: 1000,
            steps,
            batch: 256,
            lr: 1e-3,
            weight_decay: None,
            no_standardize: false,
            clip: None,
            save_every: 1000,
            resume: false,
            cond: Conditioning::None,
            target: Target::Eps,
            ema: None,
            label_dropout: 0.1,
            prompt_noise: 0.0,
            kl_weight: KL_WEIGHT,
            vae: None,
            seed: 0,
            device: device::default_device(),
            parallel: Parallel::default(),
        }
    }
}

/// What a training run did.
pub struct TrainReport {
    /// The model's record as saved last (a denoiser's; None for a VAE, whose folder is a
    /// diffusers component).
    pub record: Option<Checkpoint>,
    /// Every step's loss so far (across resumes).
    pub losses: Vec<(usize, f64)>,
    /// The numbers worth keeping: steps, final loss, speed.
    pub report: Report,
}

/// A training step seen by `watch`: its stop (Ctrl-C, a closed page) stops the run after `step`.
pub(crate) fn advance(watch: &mut dyn Watch, step: usize) -> diffuse_nn::Result<()> {
    watch.advance(1).map_err(|e| NnError::Stopped {
        step,
        reason: format!("{e:#}"),
    })
}

/// The error of a run that stopped: a divergence says which checkpoint of `dir` is kept.
pub(crate) fn stopped(e: NnError, saved_at: Option<usize>, dir: &Path) -> anyhow::Error {
    match e {
        NnError::Diverged { step, loss } => {
            let kept = match saved_at {
                Some(s) => format!("the checkpoint of step {s} in {} is kept", dir.display()),
                None => "no checkpoint had been written".to_string(),
            };
            anyhow::anyhow!(
                "the loss became {loss} at step {step}: training stopped; {kept} (a smaller --lr may help)"
            )
        }
        other => other.into(),
    }
}

fn activation(name: &str) -> Result<Activation> {
    Ok(match name {
        "relu" => Activation::Relu,
        "elu" => Activation::Elu,
        "silu" => Activation::Silu,
        "softplus" => Activation::Softplus,
        _ => bail!("--activation {name}: expected relu, elu, silu or softplus"),
    })
}

/// Trains (or with `resume`, continues) the model of `run` in the folder `dir`.
pub fn train(run: &TrainRun, dir: &Path, watch: &mut dyn Watch) -> Result<TrainReport> {
    // The MLPs' time encoding; None: the UNet.
    let time = match run.model.as_str() {
        "mlp" => Some(TimeEncoding::Appended),
        "sinusoidal-mlp" => Some(TimeEncoding::Sinusoidal {
            features: run.time_features,
        }),
        "conditional-mlp" => Some(TimeEncoding::PerStep {
            steps: run.timesteps,
        }),
        "unet" => None,
        "vae" | "latent" if !run.parallel.is_single() => {
            bail!(
                "--model {} trains on one device in one process so far",
                run.model
            )
        }
        "vae" | "latent" if run.prompt_noise != 0.0 => {
            bail!("--prompt-noise is for --model unet with --cond prompt so far")
        }
        "vae" => return crate::vae::train(run, dir, watch),
        "latent" => return crate::latent::train(run, dir, watch),
        other => {
            bail!(
                "--model {other}: expected mlp, conditional-mlp, sinusoidal-mlp, unet, vae or \
                 latent"
            )
        }
    };
    if run.time_features == 0 || run.time_features % 2 == 1 {
        bail!(
            "--time-features must be a positive even number (got {})",
            run.time_features
        );
    }
    let data = dataset(&run.data, watch)?;
    let sched = schedule_of("--timesteps", &run.schedule, run.timesteps)?;
    positive("--steps", run.steps)?;
    positive("--batch", run.batch)?;
    positive("--hidden", run.hidden)?;
    positive("--depth", run.depth)?;
    positive("--save-every", run.save_every)?;
    if let Some(c) = run.clip.filter(|c| !(c.is_finite() && *c > 0.0)) {
        bail!("--clip must be a positive number (got {c})");
    }
    if !(run.lr.is_finite() && run.lr > 0.0) {
        bail!("--lr must be a positive number (got {})", run.lr);
    }
    if let Some(w) = run.weight_decay.filter(|w| !(w.is_finite() && *w >= 0.0)) {
        bail!("--weight-decay must be a non-negative number (got {w})");
    }
    let d = data.dim();
    let class_names: Vec<String> = match run.cond {
        Conditioning::None => vec![],
        Conditioning::Sign => vec!["left".into(), "right".into()],
        Conditioning::Label | Conditioning::Prompt => {
            let names = data.label_names();
            if names.is_empty() {
                bail!(
                    "--cond {} needs labelled data: a CSV with a 'label' column, or images",
                    run.cond.as_str()
                );
            }
            names
        }
    };
    if run.cond == Conditioning::Prompt && (time.is_some() || data.image_shape().is_none()) {
        bail!("--cond prompt is for images with --model unet");
    }
    if let Some(e) = run.ema.filter(|e| !(0.0..1.0).contains(e)) {
        bail!("--ema must be a decay in [0, 1) (got {e})");
    }
    if !(0.0..1.0).contains(&run.label_dropout) {
        bail!(
            "--label-dropout must be in [0, 1) (got {})",
            run.label_dropout
        );
    }
    if !(run.prompt_noise.is_finite() && run.prompt_noise >= 0.0) {
        bail!(
            "--prompt-noise must be 0 or more (got {})",
            run.prompt_noise
        );
    }
    if run.prompt_noise > 0.0 && run.cond != Conditioning::Prompt {
        bail!("--prompt-noise is for --model unet with --cond prompt");
    }
    let encoder = if run.cond == Conditioning::Prompt {
        Some(text_encoder()?)
    } else {
        None
    };
    let noise = NoiseSource::new(run.seed);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    let dev = run.device.clone().autodiff();
    let (mut model, mut record, mut ema) = if run.resume {
        let (m, r) = diffuse_nn::load(dir, &dev).context("--resume")?;
        if r.ema != run.ema {
            bail!(
                "--resume: the model in {} was trained with --ema {:?}, not {:?}",
                dir.display(),
                r.ema,
                run.ema
            );
        }
        // With an average, model.safetensors holds the average and raw.safetensors the weights.
        let (m, ema) = match r.ema {
            Some(decay) => {
                let raw = diffuse_nn::load_folder_weights(dir, "raw.safetensors", &r.model, &dev)
                    .context("--resume")?;
                (raw, Some(Ema::starting_at(decay, &m)))
            }
            None => (m, None),
        };
        if r.data != run.data
            || r.steps != run.timesteps
            || r.schedule != sched.name()
            || r.target != run.target
            || r.model.time() != time
        {
            bail!(
                "--resume: the model in {} was trained on --data {} with {} over {} steps (a {:?} model)",
                dir.display(),
                r.data,
                r.schedule,
                r.steps,
                r.model.time()
            );
        }
        (Some(m), r, ema)
    } else {
        let record = new_record(
            run,
            &data,
            sched.name(),
            &class_names,
            time,
            encoder.as_ref(),
            &noise,
        )?;
        (None, record, run.ema.map(Ema::new))
    };
    // A batch's activations, before the first step allocates them.
    crate::budget::check(
        &format!("--batch {}", run.batch),
        run.batch as f64 * record.model.training_bytes_per_example(),
    )?;
    // The sentence embeddings of every class's captions, computed once.
    let encoder = match encoder {
        None if record.cond == Conditioning::Prompt => Some(text_encoder()?),
        e => e,
    };
    let prompts: Vec<Vec<Vec<f32>>> = match &encoder {
        Some(e) => crate::prompt_reading::embed_captions(e, &record.captions)?,
        None => vec![],
    };
    if !prompts.is_empty() {
        // A label asks for the embedding of the class's first caption.
        record.label_embeddings = prompts.iter().map(|p| p[0].clone()).collect();
    }
    let draw = |rows: std::ops::Range<u64>| {
        let mut x = data.sample(&noise, rows.clone());
        let labels = match record.cond {
            // Seed 000: "left" below zero, "right" above.
            Conditioning::Sign => Some(x.chunks(d).map(|r| usize::from(r[0] >= 0.0)).collect()),
            Conditioning::Label | Conditioning::Prompt => data.sample_labels(&noise, rows),
            Conditioning::None => None,
        };
        record.standardization.apply(&mut x);
        (x, labels)
    };
    // The loss history of the checkpoint resumed (a later tail, from a run killed after it, is
    // not part of it).
    let first = record.trained_steps;
    let losses: Vec<(usize, f64)> = if run.resume {
        read_losses(dir)
            .into_iter()
            .filter(|(k, _)| *k <= first)
            .collect()
    } else {
        vec![]
    };
    let losses = RefCell::new(losses);
    let mut saved_at = run.resume.then_some(first);
    let tc = TrainConfig {
        steps: run.steps,
        batch: run.batch,
        lr: run.lr,
        weight_decay: run.weight_decay,
        clip: run.clip,
        seed: run.seed,
        label_dropout: run.label_dropout,
        prompt_noise: run.prompt_noise,
        prompts: prompts.clone(),
        target: run.target,
        device: run.device.clone(),
        parallel: run.parallel.clone(),
    };
    // Each checkpoint, one unit: the weights to sample with (the average, with --ema), the
    // trained weights (with --ema), config.json and the loss history up to it.
    let mut save = |step: usize, m: &Model, average: Option<&Ema>| -> diffuse_nn::Result<()> {
        let trained = m.valid();
        let unsaved = |e: String| NnError::Checkpoint {
            path: dir.join("raw.safetensors").display().to_string(),
            message: e,
        };
        let raw = match average {
            Some(_) => Some(diffuse_nn::weights_bytes(&trained).map_err(unsaved)?),
            None => None,
        };
        let for_sampling = match average {
            Some(e) => e.apply(trained),
            None => trained,
        };
        let history = losses_text(&losses.borrow());
        let mut extra: Vec<(&str, &[u8])> = vec![("loss.csv", history.as_bytes())];
        if let Some(raw) = &raw {
            extra.push(("raw.safetensors", raw));
        }
        diffuse_nn::save_with(
            dir,
            &for_sampling,
            &Checkpoint {
                trained_steps: step,
                ..record.clone()
            },
            &extra,
        )?;
        saved_at = Some(step);
        Ok(())
    };
    watch.begin("train", run.steps as u64);
    let started = Instant::now();
    let trained = diffuse_nn::train(
        &record.model,
        model.take(),
        &sched,
        &draw,
        &tc,
        first,
        ema.as_mut(),
        &mut |k, l| {
            losses.borrow_mut().push((k, l));
            watch.advance(1).map_err(|e| NnError::Stopped {
                step: k,
                reason: format!("{e:#}"),
            })
        },
        Some(Checkpoints {
            every: run.save_every,
            save: &mut save,
        }),
    );
    if let Err(NnError::Diverged { step: k, loss }) = trained {
        watch.finish();
        let history = dir.join("loss-diverged.csv");
        std::fs::write(&history, losses_text(&losses.borrow()))
            .with_context(|| format!("cannot write {}", history.display()))?;
        let kept = match saved_at {
            Some(s) => format!("the checkpoint of step {s} in {} is kept", dir.display()),
            None => "no checkpoint had been written".to_string(),
        };
        bail!(
            "the loss became {loss} at step {k}: training stopped; {kept}; every loss up to it is in {} (a smaller --lr, or --clip 1, may help)",
            history.display()
        );
    }
    trained?;
    let step = first + run.steps;
    let losses = losses.into_inner();
    watch.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let tail: Vec<f64> = losses.iter().rev().take(100).map(|p| p.1).collect();
    let mut report = Report::new();
    report.set("data", run.data.clone());
    report.set("model", serde_json::to_value(&record.model)?);
    report.set("schedule", sched.name());
    report.set("timesteps", run.timesteps);
    report.set("trained_steps", step);
    report.set("batch", run.batch);
    report.num("lr", run.lr);
    if let Some(w) = run.weight_decay {
        report.num("weight_decay", w);
    }
    if run.prompt_noise > 0.0 {
        report.num("prompt_noise", run.prompt_noise);
    }
    report.num(
        "final_loss_mean_of_last_100",
        tail.iter().sum::<f64>() / tail.len().max(1) as f64,
    );
    report.num("steps_per_second", run.steps as f64 / elapsed);
    record.trained_steps = step;
    Ok(TrainReport {
        record: Some(record),
        losses,
        report,
    })
}

/// The record of a new model: its architecture from the run and the data, the data's
/// standardisation, its classes and (for prompts) captions.
fn new_record(
    run: &TrainRun,
    data: &diffuse_data::Dataset,
    schedule_name: &str,
    class_names: &[String],
    time: Option<TimeEncoding>,
    encoder: Option<&diffuse_text::TextEncoder>,
    noise: &NoiseSource,
) -> Result<Checkpoint> {
    let d = data.dim();
    // Images are already in [-1, 1], the scale image diffusion models are trained at.
    let std = if run.no_standardize || data.image_shape().is_some() {
        Standardization::identity(d)
    } else {
        Standardization::fit(&data.sample(noise, FIT_ROWS), d)
    };
    let cfg: ModelConfig = match (time, data.image_shape()) {
        (Some(time), _) => MlpConfig {
            classes: class_names.len(),
            dim: d,
            hidden: run.hidden,
            depth: run.depth,
            activation: activation(&run.activation)?,
            time,
        }
        .into(),
        (None, Some((h, w))) => {
            if let Some(c) = data.image_channels().filter(|c| *c != 1) {
                bail!(
                    "--data {}: images of {c} channels; the pixel UNet reads gray images",
                    data.spec
                );
            }
            positive("--channels", run.channels)?;
            // Halve the image twice when it allows it (28 -> 14 -> 7), else once or never.
            let mults = if h.is_multiple_of(4) && w.is_multiple_of(4) {
                vec![1, 2, 2]
            } else if h.is_multiple_of(2) && w.is_multiple_of(2) {
                vec![1, 2]
            } else {
                vec![1]
            };
            let (classes, text) = match encoder {
                Some(e) => (0, e.dim()),
                None => (class_names.len(), 0),
            };
            UNetConfig {
                mults,
                channels: run.channels,
                text,
                ..UNetConfig::small(h, w, classes)
            }
            .into()
        }
        (None, None) => bail!(
            "--model unet needs image data (--data fashion-mnist, digits, mnist:DIR or images:DIR)"
        ),
    };
    cfg.validate().context("--model")?;
    let mut record = Checkpoint::new(
        cfg,
        schedule_name.into(),
        run.timesteps,
        std,
        run.data.clone(),
        0,
    );
    record.cond = run.cond;
    record.classes = class_names.to_vec();
    record.target = run.target;
    record.ema = run.ema;
    if encoder.is_some() {
        record.text_encoder = Some(TEXT_ENCODER.into());
        record.captions = class_names.iter().map(|c| captions(c)).collect();
    }
    Ok(record)
}

/// The loss history as loss.csv holds it.
fn losses_text(losses: &[(usize, f64)]) -> String {
    let mut s = String::from("step,loss\n");
    for (k, l) in losses {
        s.push_str(&format!("{k},{l}\n"));
    }
    s
}

/// The loss history of the model folder `dir` (empty when it has none).
fn read_losses(dir: &Path) -> Vec<(usize, f64)> {
    diffuse_nn::commit::read(dir, "loss.csv")
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(',')?;
            Some((k.parse().ok()?, v.parse().ok()?))
        })
        .collect()
}
