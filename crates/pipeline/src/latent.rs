//! `train --model latent --vae DIR`: a text-to-image model shaped as Stable Diffusion, trained
//! here: the images of a captioned data set encoded once by a VAE trained with `--model vae`, a
//! `UNet2DConditionModel` trained on their scaled latents while it attends to the token states
//! of MiniLM (the text encoder the project runs) for one of each image's captions, written as a
//! diffusers pipeline folder:
//!
//! ```text
//! DIR/model_index.json            StableDiffusionPipeline; text_encoder names MiniLM
//! DIR/unet/                       config.json, diffusion_pytorch_model.safetensors
//! DIR/vae/                        the VAE folder, copied
//! DIR/scheduler/scheduler_config.json
//! DIR/text_encoder/config.json    which installed encoder, read as token states
//! DIR/loss.csv, DIR/training.json
//! ```

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Tensor, TensorData};
use diffuse_core::{NoiseSource, Schedule, Stream};
use diffuse_data::Source;
use diffuse_data::captions::captions;
use diffuse_nn::sd::{
    AutoencoderKl, LatentTraining, Prompt, UNet2DCondition, UnetConfig, save_component,
    train_latent,
};
use serde_json::json;

use crate::generate::text_encoder;
use crate::report::Report;
use crate::run::Watch;
use crate::train::{TrainReport, TrainRun, advance, stopped};
use crate::{dataset, positive};

/// The class `model_index.json` and `text_encoder/config.json` give a MiniLM read as token
/// states.
pub const TOKEN_STATES_ENCODER: &str = "MiniLMTokenStates";
/// The sentence-transformers model it is.
pub const MINILM: &str = "all-MiniLM-L6-v2";

/// Stable Diffusion's training schedule: scaled linear 0.00085 to 0.012 over 1,000 steps.
fn sd_schedule() -> Result<Schedule> {
    Ok(Schedule::scaled_linear(0.00085, 0.012, 1000)?)
}

/// The UNet config of a run: levels of c, 2c, 2c channels, cross-attention in the first two
/// (at the latents' full and half size) and in the middle, one ResNet per level, 4 heads,
/// attending to `context`-wide token states.
pub fn latent_unet_config(
    channels: usize,
    latent: usize,
    size: usize,
    context: usize,
) -> Result<serde_json::Value> {
    if channels == 0 || !channels.is_multiple_of(8) {
        bail!(
            "--channels {channels}: the latent UNet needs a multiple of 8 (groups of 4, 4 heads)"
        );
    }
    Ok(json!({
        "_class_name": "UNet2DConditionModel",
        "sample_size": size,
        "in_channels": latent,
        "out_channels": latent,
        "block_out_channels": [channels, 2 * channels, 2 * channels],
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "layers_per_block": 1,
        "attention_head_dim": 4,
        "cross_attention_dim": context,
        "norm_num_groups": channels / 4,
        "norm_eps": 1e-5,
        "act_fn": "silu",
        "flip_sin_to_cos": true,
        "freq_shift": 0,
    }))
}

/// The posterior mean and log-variance of every image of the set, `[n, latent x h x w]` each.
struct Encoded {
    mean: Vec<f32>,
    logvar: Vec<f32>,
    labels: Vec<usize>,
    dim: usize,
}

/// Reports each batch to `watch` (on lavapipe the 70,000 Fashion-MNIST images take many minutes).
fn encode_all(
    vae: &AutoencoderKl,
    im: &diffuse_data::images::ImageSet,
    watch: &mut dyn Watch,
) -> Result<Encoded> {
    let (c, h, w) = (im.channels, im.height, im.width);
    let device = vae.device();
    let (mut mean, mut logvar) = (vec![], vec![]);
    let mut dim = 0;
    watch.begin("encoding the images", im.len() as u64);
    for start in (0..im.len()).step_by(256) {
        let end = (start + 256).min(im.len());
        let x = crate::vae::planar_images(im, start, end);
        let x = Tensor::<4>::from_data(TensorData::new(x, [end - start, c, h, w]), &device);
        let (m, lv) = vae.encode(x);
        let [_, l, lh, lw] = m.dims();
        dim = l * lh * lw;
        mean.extend(m.into_data().try_to_vec::<f32>()?);
        logvar.extend(lv.into_data().try_to_vec::<f32>()?);
        watch.advance((end - start) as u64)?;
    }
    watch.finish();
    Ok(Encoded {
        mean,
        logvar,
        labels: im.labels.clone(),
        dim,
    })
}

fn prompt_of(encoder: &diffuse_text::TextEncoder, text: &str) -> Result<Prompt> {
    let t = encoder.token_states(text)?;
    let tokens = t.ids.len();
    Ok(Prompt {
        states: t.states.into_data().try_to_vec::<f32>()?,
        tokens,
    })
}

/// Checks a pipeline's `text_encoder/config.json` names the encoder this build runs.
pub fn check_text_encoder(dir: &Path) -> Result<()> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    match v.get("model").and_then(serde_json::Value::as_str) {
        Some(MINILM) => Ok(()),
        other => bail!(
            "{}: model {:?}: only {MINILM} (installed by scripts/text-encoder.sh) is supported",
            path.display(),
            other.unwrap_or("missing")
        ),
    }
}

/// Trains the latent text-to-image model of `run` into `dir`.
pub fn train(run: &TrainRun, dir: &Path, watch: &mut dyn Watch) -> Result<TrainReport> {
    if run.resume {
        bail!("--resume is not yet supported for --model latent");
    }
    let Some(vae_dir) = &run.vae else {
        bail!("--model latent needs --vae DIR, a VAE trained with `diffuse train --model vae`");
    };
    let vae_dir = Path::new(vae_dir);
    let data = dataset(&run.data, watch)?;
    let Source::Images(im) = &data.source else {
        bail!("--model latent needs captioned image data (--data colour-fashion)");
    };
    positive("--steps", run.steps)?;
    positive("--batch", run.batch)?;
    positive("--save-every", run.save_every)?;
    if !(0.0..1.0).contains(&run.label_dropout) {
        bail!(
            "--label-dropout must be in [0, 1) (got {})",
            run.label_dropout
        );
    }
    // The images are encoded, and the UNet trained, where the run says; the captions' token
    // states are computed on the CPU (host data, handed to the device per batch).
    let plain = run.device.clone();
    let (vae, vae_config) = AutoencoderKl::load(vae_dir, &plain).context("--vae")?;
    if vae_config.in_channels != im.channels {
        bail!(
            "--vae {}: the VAE reads {}-channel images, --data {} has {}",
            vae_dir.display(),
            vae_config.in_channels,
            run.data,
            im.channels
        );
    }
    let f = vae.scale_factor();
    if !im.height.is_multiple_of(f) || im.height != im.width {
        bail!(
            "--data {}: {}x{} images do not make square latents of the VAE's factor {f}",
            run.data,
            im.height,
            im.width
        );
    }
    let (lat, side) = (vae.latent_channels(), im.height / f);
    if !side.is_multiple_of(4) {
        bail!(
            "--data {}: {side}x{side} latents (the VAE's factor {f}); the UNet halves them twice, \
             so their side must be a multiple of 4",
            run.data
        );
    }
    let encoder = text_encoder()?;
    let context = encoder.dim();
    let unet_json = latent_unet_config(run.channels, lat, side, context)?;
    let layout = UnetConfig::from_value(unet_json.clone()).context("--model latent")?;
    let encoded = encode_all(&vae, im, watch)?;
    watch.preparing("encoding the captions", None);
    let names = data.label_names();
    let prompts: Vec<Vec<Prompt>> = names
        .iter()
        .map(|n| {
            captions(n)
                .iter()
                .map(|c| prompt_of(&encoder, c))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    let empty = prompt_of(&encoder, "")?;
    watch.prepared();
    let scale = vae_config.scaling_factor as f32;
    let noise = NoiseSource::new(run.seed);
    let n = encoded.labels.len();
    let dim = encoded.dim;
    // A uniform image per row, its posterior sampled, scaled as the UNet sees latents.
    let draw = |rows: std::ops::Range<u64>| {
        let mut z = Vec::with_capacity((rows.end - rows.start) as usize * dim);
        let mut labels = Vec::with_capacity(z.capacity() / dim.max(1));
        let eps = noise.normals(Stream::Data, 1 << 20, rows.clone(), dim);
        for (k, r) in rows.enumerate() {
            let u = noise.uniform(Stream::Data, 1 << 21, r, 0);
            let i = ((u * n as f64) as usize).min(n - 1);
            for j in 0..dim {
                let (m, lv) = (encoded.mean[i * dim + j], encoded.logvar[i * dim + j]);
                z.push((m + (lv * 0.5).exp() * eps[k * dim + j] as f32) * scale);
            }
            labels.push(encoded.labels[i]);
        }
        (z, labels)
    };
    let dev = plain.autodiff();
    dev.seed(run.seed);
    let (unet, unet_names) = UNet2DCondition::fresh(&layout, run.seed, &dev)?;
    let schedule = sd_schedule()?;
    let cfg = LatentTraining {
        steps: run.steps,
        batch: run.batch,
        lr: run.lr,
        prompt_dropout: run.label_dropout,
        seed: run.seed,
        ema: run.ema,
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    write_folder(dir, vae_dir)?;
    let losses: RefCell<Vec<(usize, f64)>> = RefCell::new(vec![]);
    let mut saved_at = None;
    let mut save = |step: usize, unet: &UNet2DCondition| -> diffuse_nn::Result<()> {
        let history: String = std::iter::once("step,loss\n".to_string())
            .chain(losses.borrow().iter().map(|(k, l)| format!("{k},{l}\n")))
            .collect();
        let meta = serde_json::to_string_pretty(&json!({
            "data": run.data, "vae": vae_dir.display().to_string(), "trained_steps": step,
            "batch": run.batch, "lr": run.lr, "prompt_dropout": run.label_dropout,
            "seed": run.seed, "text_encoder": MINILM, "ema": run.ema,
        }))
        .unwrap_or_default();
        save_component(
            &dir.join("unet"),
            &unet_json,
            unet,
            &unet_names,
            &[
                ("loss.csv", history.as_bytes()),
                ("training.json", meta.as_bytes()),
            ],
        )?;
        saved_at = Some(step);
        Ok(())
    };
    watch.begin("train", run.steps as u64);
    let started = Instant::now();
    let trained = train_latent(
        unet,
        &schedule,
        [lat, side, side],
        &draw,
        &prompts,
        &empty,
        &cfg,
        0,
        &mut |k, l| {
            losses.borrow_mut().push((k, l));
            advance(watch, k)
        },
        run.save_every,
        &mut save,
    );
    watch.finish();
    trained.map_err(|e| stopped(e, saved_at, dir))?;
    let elapsed = started.elapsed().as_secs_f64();
    let losses = losses.into_inner();
    let tail: Vec<f64> = losses.iter().rev().take(100).map(|p| p.1).collect();
    let mut report = Report::new();
    report.set("data", run.data.clone());
    report.set("model", "latent");
    report.set("vae", vae_dir.display().to_string());
    report.set("unet", unet_json);
    report.set("text_encoder", MINILM);
    report.set("trained_steps", run.steps);
    report.set("batch", run.batch);
    report.num("lr", run.lr);
    report.num("prompt_dropout", run.label_dropout);
    if let Some(e) = run.ema {
        report.num("ema", e);
    }
    report.num(
        "final_loss_mean_of_last_100",
        tail.iter().sum::<f64>() / tail.len().max(1) as f64,
    );
    report.num("steps_per_second", run.steps as f64 / elapsed);
    Ok(TrainReport {
        record: None,
        losses,
        report,
    })
}

/// The pipeline folder around the UNet: `model_index.json`, the scheduler's config, the text
/// encoder's name, and the VAE copied in (each file written whole before it is renamed).
fn write_folder(dir: &Path, vae_dir: &Path) -> Result<()> {
    let index = json!({
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "DPMSolverMultistepScheduler"],
        "text_encoder": ["diffuse", TOKEN_STATES_ENCODER],
        "tokenizer": [null, null],
        "safety_checker": [null, null],
        "feature_extractor": [null, null],
        "requires_safety_checker": false,
    });
    let scheduler = json!({
        "_class_name": "DPMSolverMultistepScheduler",
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "prediction_type": "epsilon",
        "timestep_spacing": "linspace",
        "steps_offset": 0,
    });
    let text = json!({ "_class_name": TOKEN_STATES_ENCODER, "model": MINILM });
    let write = |rel: &str, value: &serde_json::Value| -> Result<()> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(value)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    };
    write("model_index.json", &index)?;
    write("scheduler/scheduler_config.json", &scheduler)?;
    write("text_encoder/config.json", &text)?;
    let vae_out = dir.join("vae");
    std::fs::create_dir_all(&vae_out)
        .with_context(|| format!("cannot create {}", vae_out.display()))?;
    // The VAE's training.json (how it was made) goes along when there is one.
    for name in [
        "config.json",
        "diffusion_pytorch_model.safetensors",
        "training.json",
    ] {
        let (from, to) = (vae_dir.join(name), vae_out.join(name));
        if name == "training.json" && !from.is_file() {
            continue;
        }
        let tmp = to.with_extension("tmp");
        std::fs::copy(&from, &tmp).with_context(|| {
            format!("cannot copy {} into {}", from.display(), vae_out.display())
        })?;
        std::fs::rename(&tmp, &to).with_context(|| format!("cannot write {}", to.display()))?;
    }
    Ok(())
}
