//! `train --model vae`: the KL autoencoder of latent diffusion trained on an image set, written
//! as a diffusers `vae/` folder (`config.json`, `diffusion_pytorch_model.safetensors`) that the
//! Stable Diffusion loader reads, with `loss.csv` and `training.json` beside it.
//!
//! Each checkpoint sets the config's `scaling_factor` as Stable Diffusion's was set: one over the
//! standard deviation of posterior samples of training images, so that scaled latents have unit
//! variance for the diffusion model. The report gives the reconstruction PSNR on the data's test
//! split (images the VAE never saw).

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use diffuse_core::{NoiseSource, Stream};
use diffuse_data::images::ImageSet;
use diffuse_data::{Dataset, Source};
use diffuse_nn::sd::{AutoencoderKl, VaeConfig, VaeStep, VaeTraining, save_component, train_vae};
use serde_json::json;

use crate::report::Report;
use crate::run::Watch;
use crate::train::{TrainReport, TrainRun, advance, stopped};
use crate::{dataset, positive};

/// Training images used to set the scaling factor (from rows far from the training stream).
const SCALE_IMAGES: u64 = 512;
/// Held-out images the PSNR is measured on.
const PSNR_IMAGES: usize = 1000;

/// The VAE config of a run: levels of `c`, 2c, 2c channels (32x32 images to 8x8 latents), one
/// ResNet block per level, 4 latent channels, groups of 4 channels.
pub fn vae_config(
    channels: usize,
    image_channels: usize,
    size: usize,
) -> Result<serde_json::Value> {
    if channels == 0 || !channels.is_multiple_of(4) {
        bail!("--channels {channels}: a VAE needs a multiple of 4 (GroupNorm groups of 4)");
    }
    Ok(json!({
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": [channels, 2 * channels, 2 * channels],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
        "in_channels": image_channels,
        "out_channels": image_channels,
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": channels / 4,
        "sample_size": size,
        "scaling_factor": 1.0,
        "mid_block_add_attention": true,
        "use_quant_conv": true,
        "use_post_quant_conv": true,
    }))
}

/// Images as the data sets store them (pixels interleaved, as PNG does: `[n, H, W, C]`) as
/// the networks read them, `[n, C, H, W]` row-major.
pub(crate) fn planar(hwc: impl IntoIterator<Item = f64>, c: usize, hw: usize) -> Vec<f32> {
    let x: Vec<f64> = hwc.into_iter().collect();
    let mut out = vec![0f32; x.len()];
    for (i, img) in x.chunks(c * hw).enumerate() {
        for p in 0..hw {
            for ch in 0..c {
                out[i * c * hw + ch * hw + p] = img[p * c + ch] as f32;
            }
        }
    }
    out
}

/// Images `start..end` of `im` in [-1, 1], `[n, C, H, W]`.
pub(crate) fn planar_images(im: &ImageSet, start: usize, end: usize) -> Vec<f32> {
    let values = (start..end).flat_map(|i| im.unit_row(i));
    planar(values, im.channels, im.height * im.width)
}

/// The images `data` draws for `rows`, `[n, C, H, W]` in [-1, 1].
fn drawn(data: &Dataset, noise: &NoiseSource, rows: std::ops::Range<u64>) -> Vec<f32> {
    let Source::Images(im) = &data.source else {
        unreachable!("checked to be images")
    };
    planar(data.sample(noise, rows), im.channels, im.height * im.width)
}

fn tensor(v: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// One over the standard deviation of posterior samples of training images.
fn scaling_factor(
    vae: &AutoencoderKl,
    data: &Dataset,
    shape: [usize; 3],
    noise: &NoiseSource,
) -> f64 {
    let [c, h, w] = shape;
    let start = 1u64 << 42;
    let x = drawn(data, noise, start..start + SCALE_IMAGES);
    let (mean, logvar) = vae.encode(tensor(x, [SCALE_IMAGES as usize, c, h, w], &vae.device()));
    let [n, l, lh, lw] = mean.dims();
    let eps: Vec<f32> = noise
        .normals(Stream::Other, 1 << 42, 0..n as u64, l * lh * lw)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let z = mean + (logvar * 0.5).exp() * tensor(eps, [n, l, lh, lw], &vae.device());
    let z: Vec<f32> = z.into_data().try_to_vec().unwrap_or_default();
    inverse_std(&z)
}

/// One over the (population) standard deviation of `z`, as SD's scaling factor was found; 1
/// for constant values.
fn inverse_std(z: &[f32]) -> f64 {
    let m = z.iter().map(|v| f64::from(*v)).sum::<f64>() / z.len().max(1) as f64;
    let var = z.iter().map(|v| (f64::from(*v) - m).powi(2)).sum::<f64>() / z.len().max(1) as f64;
    if var > 0.0 { 1.0 / var.sqrt() } else { 1.0 }
}

/// Sums of squared errors and counts of pixels in [-1, 1] (`x` the images, `y` their
/// reconstructions) as pixels in [0, 1], where PSNR is measured: the error halves.
fn squared_error(x: &[f32], y: &[f32]) -> (f64, usize) {
    let sq = x
        .iter()
        .zip(y)
        .map(|(a, b)| (f64::from(a - b) / 2.0).powi(2))
        .sum();
    (sq, x.len().min(y.len()))
}

/// PSNR in dB of a mean squared error of pixels in [0, 1] (peak 1).
fn psnr_db(sq: f64, count: usize) -> f64 {
    let mse = sq / count.max(1) as f64;
    10.0 * (1.0 / mse).log10()
}

/// PSNR (dB, pixels in [0, 1]) of the reconstructions (the posterior mean decoded, clamped) of
/// the first `PSNR_IMAGES` images of `test`.
pub fn psnr(vae: &AutoencoderKl, test: &Dataset) -> Result<(f64, usize)> {
    let Source::Images(im) = &test.source else {
        bail!("{}: not images", test.spec)
    };
    let n = im.len().min(PSNR_IMAGES);
    let (c, h, w) = (im.channels, im.height, im.width);
    let (mut sq, mut count) = (0.0, 0usize);
    for start in (0..n).step_by(100) {
        let end = (start + 100).min(n);
        let x = planar_images(im, start, end);
        let xt = tensor(x.clone(), [end - start, c, h, w], &vae.device());
        let (mean, _) = vae.encode(xt);
        let y: Vec<f32> = vae.decode(mean).clamp(-1.0, 1.0).into_data().try_to_vec()?;
        let (s, k) = squared_error(&x, &y);
        sq += s;
        count += k;
    }
    Ok((psnr_db(sq, count), n))
}

/// 8-bit pictures, each interleaved as the data sets store them.
pub type Pictures = Vec<Vec<u8>>;

/// One image of each label of `test` (the first of each, in label order) and its
/// reconstruction (the posterior mean decoded), as 8-bit pictures interleaved as the data set
/// stores them: the originals, then the reconstructions.
pub fn reconstructions(vae: &AutoencoderKl, test: &Dataset) -> Result<(Pictures, Pictures)> {
    let Source::Images(im) = &test.source else {
        bail!("{}: not images", test.spec)
    };
    let (c, h, w) = (im.channels, im.height, im.width);
    let labels = im.labels.iter().copied().max().map_or(0, |m| m + 1);
    let picked: Vec<usize> = (0..labels)
        .filter_map(|l| im.labels.iter().position(|x| *x == l))
        .collect();
    let x: Vec<f32> = picked
        .iter()
        .flat_map(|i| planar_images(im, *i, i + 1))
        .collect();
    let xt = tensor(x.clone(), [picked.len(), c, h, w], &vae.device());
    let (mean, _) = vae.encode(xt);
    let y: Vec<f32> = vae.decode(mean).clamp(-1.0, 1.0).into_data().try_to_vec()?;
    let pictures = |v: &[f32]| -> Pictures {
        v.chunks(c * h * w)
            .map(|img| {
                let mut out = vec![0u8; c * h * w];
                for p in 0..h * w {
                    for ch in 0..c {
                        out[p * c + ch] = ((img[ch * h * w + p] + 1.0) * 127.5).round() as u8;
                    }
                }
                out
            })
            .collect()
    };
    Ok((pictures(&x), pictures(&y)))
}

/// Trains the VAE of `run` (`--model vae`) into `dir`.
pub fn train(run: &TrainRun, dir: &Path, watch: &mut dyn Watch) -> Result<TrainReport> {
    if run.resume {
        bail!("--resume is not yet supported for --model vae");
    }
    let data = dataset(&run.data, watch)?;
    let Source::Images(im) = &data.source else {
        bail!("--model vae needs image data (--data colour-fashion, fashion-mnist, images:DIR)");
    };
    if run.ema.is_some() {
        bail!(
            "--ema averages the weights of a denoiser (--model unet, latent); the VAE keeps its trained weights"
        );
    }
    positive("--steps", run.steps)?;
    positive("--batch", run.batch)?;
    positive("--save-every", run.save_every)?;
    if !(run.lr.is_finite() && run.lr > 0.0) {
        bail!("--lr must be a positive number (got {})", run.lr);
    }
    let (c, h, w) = (im.channels, im.height, im.width);
    if !h.is_multiple_of(4) || !w.is_multiple_of(4) {
        bail!(
            "--data {}: {h}x{w} images; the VAE halves them twice (pad them to a multiple of 4)",
            run.data
        );
    }
    let mut config = vae_config(run.channels, c, h.max(w))?;
    let cfg = VaeConfig::from_value(config.clone()).context("--model vae")?;
    let noise = NoiseSource::new(run.seed);
    // New weights come from the seed's own stream (Weights::fresh), the same on every device.
    let dev = run.device.clone().autodiff();
    dev.seed(run.seed);
    let (vae, names) = AutoencoderKl::fresh(&cfg, run.seed, &dev)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    let shape = [c, h, w];
    let training = VaeTraining {
        steps: run.steps,
        batch: run.batch,
        lr: run.lr,
        kl_weight: run.kl_weight,
        seed: run.seed,
    };
    let losses: RefCell<Vec<(usize, VaeStep)>> = RefCell::new(vec![]);
    let mut saved_at = None;
    let mut scale = 1.0;
    let mut save = |step: usize, vae: &AutoencoderKl| -> diffuse_nn::Result<()> {
        scale = scaling_factor(&vae.valid(), &data, shape, &noise);
        config["scaling_factor"] = json!(scale);
        let history: String = std::iter::once("step,loss,mse,kl\n".to_string())
            .chain(
                losses
                    .borrow()
                    .iter()
                    .map(|(k, s)| format!("{k},{},{},{}\n", s.loss, s.mse, s.kl)),
            )
            .collect();
        let meta = json!({
            "data": run.data, "trained_steps": step, "batch": run.batch, "lr": run.lr,
            "kl_weight": run.kl_weight, "seed": run.seed,
        });
        let meta = serde_json::to_string_pretty(&meta).unwrap_or_default();
        save_component(
            dir,
            &config,
            vae,
            &names,
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
    let draw = |rows: std::ops::Range<u64>| drawn(&data, &noise, rows);
    let trained = train_vae(
        vae,
        shape,
        &draw,
        &training,
        0,
        &mut |k, s| {
            losses.borrow_mut().push((k, s));
            advance(watch, k)
        },
        run.save_every,
        &mut save,
    );
    watch.finish();
    let vae = trained.map_err(|e| stopped(e, saved_at, dir))?;
    let elapsed = started.elapsed().as_secs_f64();
    let losses = losses.into_inner();
    let tail: Vec<&VaeStep> = losses.iter().rev().take(100).map(|p| &p.1).collect();
    let mean =
        |f: fn(&VaeStep) -> f64| tail.iter().map(|s| f(s)).sum::<f64>() / tail.len().max(1) as f64;
    let mut report = Report::new();
    report.set("data", run.data.clone());
    report.set("model", "vae");
    report.set("vae", config.clone());
    report.set("trained_steps", run.steps);
    report.set("batch", run.batch);
    report.num("lr", run.lr);
    report.num("kl_weight", run.kl_weight);
    report.num("final_loss_mean_of_last_100", mean(|s| s.loss));
    report.num("final_mse_mean_of_last_100", mean(|s| s.mse));
    report.num("final_kl_mean_of_last_100", mean(|s| s.kl));
    report.num("scaling_factor", scale);
    report.num("steps_per_second", run.steps as f64 / elapsed);
    if let Some(spec) = crate::eval::test_split(&run.data) {
        let test = dataset(&spec, watch)?;
        let (p, n) = psnr(&vae.valid(), &test)?;
        report.set("psnr_data", spec);
        report.set("psnr_images", n);
        report.num("psnr_db", p);
    }
    Ok(TrainReport {
        record: None,
        losses: losses.iter().map(|(k, s)| (*k, s.loss)).collect(),
        report,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn interleaved_pixels_become_planes() {
        // Two 1x2 RGB images: pixel p of image i has channel values 100 i + 10 p + ch.
        let hwc: Vec<f64> = (0..2)
            .flat_map(|i| {
                (0..2).flat_map(move |p| (0..3).map(move |ch| f64::from(100 * i + 10 * p + ch)))
            })
            .collect();
        let chw = super::planar(hwc, 3, 2);
        assert_eq!(
            chw,
            [
                0., 10., 1., 11., 2., 12., 100., 110., 101., 111., 102., 112.
            ]
        );
    }

    /// An error of 0.2 everywhere in [-1, 1] units is 0.1 in [0, 1]: mse 0.01, PSNR 20 dB; an
    /// error of 1/255 of the range is 48.13 dB (20 log10 255).
    #[test]
    fn psnr_is_the_closed_form_of_a_constant_error() {
        let x: Vec<f32> = (0..300).map(|i| (i as f32 / 150.0) - 1.0).collect();
        let y: Vec<f32> = x.iter().map(|v| v + 0.2).collect();
        let (sq, n) = super::squared_error(&x, &y);
        assert_eq!(n, 300);
        assert!((super::psnr_db(sq, n) - 20.0).abs() < 1e-4);
        let y: Vec<f32> = x.iter().map(|v| v - 2.0 / 255.0).collect();
        let (sq, n) = super::squared_error(&x, &y);
        assert!((super::psnr_db(sq, n) - 20.0 * 255f64.log10()).abs() < 1e-3);
    }

    /// Values +-a about any mean have standard deviation a: the factor is 1/a; constant latents
    /// (no spread to scale) keep 1.
    #[test]
    fn the_scaling_factor_is_one_over_the_latents_std() {
        let z: Vec<f32> = (0..1000)
            .map(|i| 3.0 + if i % 2 == 0 { 0.25 } else { -0.25 })
            .collect();
        assert!((super::inverse_std(&z) - 4.0).abs() < 1e-9);
        assert_eq!(super::inverse_std(&[2.0; 10]), 1.0);
    }
}
