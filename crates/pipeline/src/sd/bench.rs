//! The Stable Diffusion timing protocol `bench/sd.sh` compares with diffusers on PyTorch: one
//! guided UNet step (a batch of 2: the unconditional and the conditional prediction) at the
//! given latent size, and one VAE decode of a latent of that size; each the median of the
//! repeats after one warm-up; and, when asked, a whole `generate` of a number of images at the
//! pipeline's default guidance and steps (how long a user waits for them).

use std::time::Instant;

use anyhow::{Result, bail};
use burn::tensor::{Int, Tensor, TensorData};
use diffuse_core::noise::NoiseSource;
use diffuse_core::samplers::BatchNoise;

use super::StableDiffusion;

/// Seconds per guided UNet step and per VAE decode.
#[derive(Debug, Clone, Copy)]
pub struct SdTimes {
    pub unet_step_seconds: f64,
    pub vae_decode_seconds: f64,
    /// (images, steps, seconds) of one `generate` of that many images, when asked.
    pub images: Option<(usize, usize, f64)>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `sd` at `latent` x `latent` latents (64 for 512x512 pictures with SD 1.x), and the
/// generation of `images` pictures at its default size, guidance and steps when `images` > 0,
/// calling `say` before each measurement.
pub fn time(
    sd: &StableDiffusion,
    latent: usize,
    repeats: usize,
    images: usize,
    say: &mut dyn FnMut(&str),
) -> Result<SdTimes> {
    if repeats == 0 || latent == 0 {
        bail!("--repeats and the latent size must be at least 1");
    }
    let device = sd.device();
    let c = sd.unet_layout.config.in_channels;
    let d = c * latent * latent;
    let z = BatchNoise::new(NoiseSource::new(0), 0..2)
        .prior(d, &device)
        .reshape([2, c, latent, latent]);
    let states = match sd.clip("the bench") {
        // Token ids 0..77 through CLIP, as bench/sd.sh gives diffusers.
        Ok((tokenizer, encoder)) => {
            let ids: Vec<i64> = (0..tokenizer.max_len() as i64).collect();
            let l = ids.len();
            encoder.forward(Tensor::<2, Int>::from_data(
                TensorData::new(ids, [1, l]),
                &device,
            ))
        }
        // A model trained here: a short prompt's MiniLM states.
        Err(_) => sd.encode_prompt("a red dress")?.0,
    };
    let context = Tensor::cat(vec![states.clone(), states], 0);
    let ts = Tensor::<1>::from_data(TensorData::new(vec![500.0f32; 2], [2]), &device);
    let mut unet = vec![];
    for k in 0..=repeats {
        say(&format!("UNet step {k} of {repeats} (0 is a warm-up)"));
        let t0 = Instant::now();
        let out = sd.unet.forward(z.clone(), ts.clone(), context.clone());
        let _: f32 = out.sum().into_scalar();
        if k > 0 {
            unet.push(t0.elapsed().as_secs_f64());
        }
    }
    let one = z.narrow(0, 0, 1);
    let mut vae = vec![];
    for k in 0..=repeats {
        say(&format!("VAE decode {k} of {repeats} (0 is a warm-up)"));
        let t0 = Instant::now();
        let out = sd.vae.decode(one.clone());
        let _: f32 = out.sum().into_scalar();
        if k > 0 {
            vae.push(t0.elapsed().as_secs_f64());
        }
    }
    let images = if images > 0 {
        let request = super::SdRequest {
            n: images,
            batch: images,
            ..super::SdRequest::for_pipeline(sd, "a red dress")
        };
        say(&format!(
            "{images} images at {} steps, guidance {}",
            request.steps, request.guidance
        ));
        let t0 = Instant::now();
        let out = super::generate(sd, &request, &mut crate::run::Silent)?;
        let seconds = t0.elapsed().as_secs_f64();
        Some((out.images.dims()[0], request.steps, seconds))
    } else {
        None
    };
    Ok(SdTimes {
        unet_step_seconds: median(unet),
        vae_decode_seconds: median(vae),
        images,
    })
}
