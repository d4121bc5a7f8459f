//! Text to image with a Stable Diffusion folder, as diffusers' `StableDiffusionPipeline` does it:
//! the prompt and the negative prompt to token states, seeded latents (or given ones) scaled by
//! the scheduler's initial sigma, the project's sampler on the steps diffusers' scheduler of the
//! same name would take, classifier-free guidance as one UNet batch of 2n, then the VAE.

use anyhow::{Result, bail};
use burn::tensor::{Tensor, TensorData};
use diffuse_core::denoiser::{Denoiser, Level, Prediction, Target};
use diffuse_core::noise::NoiseSource;
use diffuse_core::samplers::sigma::{SigmaDenoiser, to_vp};
use diffuse_core::samplers::{BatchNoise, Event, SamplerName, ddim, karras};
use diffuse_core::schedule::Schedule;
use diffuse_nn::sd::UNet2DCondition;
use diffuse_text::ClipTokens;

use super::StableDiffusion;
use crate::run::Watch;

/// What to draw.
#[derive(Debug, Clone)]
pub struct SdRequest {
    pub prompt: String,
    /// What guidance pushes away from ("" by default, as diffusers).
    pub negative_prompt: String,
    /// Classifier-free guidance scale; at 1 or below only the prompt's prediction is used (one
    /// UNet batch of n), as diffusers does.
    pub guidance: f64,
    /// The sampler; `None` takes the one that stands for the folder's scheduler.
    pub sampler: Option<SamplerName>,
    /// Denoising steps.
    pub steps: usize,
    pub seed: u64,
    pub n: usize,
    /// Image size in pixels; `None` is the UNet's `sample_size` times the VAE's factor.
    pub height: Option<usize>,
    pub width: Option<usize>,
    /// Starting latents `[n, C, h, w]` in place of the seeded noise (scaled by the initial
    /// sigma, as diffusers scales latents it is given).
    pub latents: Option<Tensor<4>>,
}

impl SdRequest {
    /// A request with diffusers' defaults: guidance 7.5, no negative prompt, 25 steps, seed 0.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            negative_prompt: String::new(),
            guidance: 7.5,
            sampler: None,
            steps: 25,
            seed: 0,
            n: 1,
            height: None,
            width: None,
            latents: None,
        }
    }
}

/// What a run gives back.
pub struct SdImages {
    /// The final latents before decoding, not divided by the scaling factor (diffusers'
    /// `output_type="latent"`), `[n, C, h, w]`.
    pub latents: Tensor<4>,
    /// The decoded images in [0, 1], `[n, 3, H, W]`.
    pub images: Tensor<4>,
    /// `[1, 77, d]` each.
    pub prompt_embeds: Tensor<3>,
    pub negative_embeds: Tensor<3>,
    pub tokens: ClipTokens,
    pub negative_tokens: ClipTokens,
    pub sampler: SamplerName,
    /// The scheduler's timesteps (0-based training steps) the sampler visited.
    pub timesteps: Vec<f64>,
    /// UNet evaluations (each of a batch of n, or 2n with guidance).
    pub nfe: usize,
}

/// The UNet under classifier-free guidance, as a core [`Denoiser`] of flattened latents.
struct GuidedUnet<'a> {
    unet: &'a UNet2DCondition,
    shape: [usize; 3],
    cond: Tensor<3>,
    uncond: Tensor<3>,
    guidance: f64,
    target: Target,
}

impl Denoiser for GuidedUnet<'_> {
    fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> diffuse_core::Result<Prediction> {
        let [c, h, w] = self.shape;
        let n = x.dims()[0];
        let x4 = x.clone().reshape([n, c, h, w]);
        // This crate counts schedule steps from 1; diffusers' timestep tau is step tau + 1.
        let t = (level.t - 1.0) as f32;
        let device = x.device();
        let guided = self.guidance > 1.0;
        let rows = if guided { 2 * n } else { n };
        let ts = Tensor::<1>::from_data(TensorData::new(vec![t; rows], [rows]), &device);
        let [_, l, d] = self.cond.dims();
        let value = if guided {
            let input = Tensor::cat(vec![x4.clone(), x4], 0);
            let context = Tensor::cat(
                vec![
                    self.uncond.clone().expand([n, l, d]),
                    self.cond.clone().expand([n, l, d]),
                ],
                0,
            );
            let out = self.unet.forward(input, ts, context);
            let u = out.clone().narrow(0, 0, n);
            let cnd = out.narrow(0, n, n);
            u.clone() + (cnd - u) * self.guidance
        } else {
            self.unet
                .forward(x4, ts, self.cond.clone().expand([n, l, d]))
        };
        Ok(Prediction {
            target: self.target,
            value: value.reshape([n, c * h * w]),
            x: x.clone(),
            level,
        })
    }
}

/// sigma of diffusers' (possibly fractional) timestep tau: linear in sigma between whole steps,
/// as diffusers' `np.interp` over its sigma table.
fn sigma_at(schedule: &Schedule, tau: f64) -> f64 {
    let lo = tau.floor();
    let k = lo as usize + 1;
    let s0 = schedule.sigma(k);
    if tau == lo || k >= schedule.steps() {
        return s0;
    }
    s0 + (tau - lo) * (schedule.sigma(k + 1) - s0)
}

/// Generates `request.n` images from the pipeline.
pub fn generate(
    sd: &StableDiffusion,
    request: &SdRequest,
    watch: &mut dyn Watch,
) -> Result<SdImages> {
    let f = sd.vae_scale();
    let down = 1usize << (sd.unet_layout.config.block_out_channels.len() - 1);
    let multiple = f * down;
    let size = sd.default_size();
    let (height, width) = (
        request.height.unwrap_or(size),
        request.width.unwrap_or(size),
    );
    for (name, v) in [("--height", height), ("--width", width)] {
        if v == 0 || !v.is_multiple_of(multiple) {
            bail!(
                "{name} {v} must be a positive multiple of {multiple} (the VAE's factor {f} times \
                 the UNet's {down}x downsampling)"
            );
        }
    }
    if request.n == 0 {
        bail!("--n must be at least 1");
    }
    if !request.guidance.is_finite() {
        bail!("--guidance must be a finite number");
    }
    let (h, w, c) = (height / f, width / f, sd.unet_layout.config.in_channels);
    let n = request.n;
    let device = sd.text_encoder.device();
    let name = request
        .sampler
        .unwrap_or_else(|| super::sampler_for_class(&sd.scheduler.class));
    if matches!(
        name,
        SamplerName::Ddpm | SamplerName::Sde | SamplerName::Ode
    ) {
        bail!(
            "--sampler {} does not run Stable Diffusion here; use ddim, euler, euler-ancestral, \
             heun, lms, dpmpp-2m, dpmpp-3m or unipc",
            name.as_str()
        );
    }

    let (cond, tokens) = sd.encode_prompt(&request.prompt)?;
    let (uncond, negative_tokens) = sd.encode_prompt(&request.negative_prompt)?;
    let target = match sd.scheduler.prediction_type.as_str() {
        "v_prediction" => Target::V,
        "sample" => Target::X0,
        _ => Target::Eps,
    };
    let model = GuidedUnet {
        unet: &sd.unet,
        shape: [c, h, w],
        cond: cond.clone(),
        uncond: uncond.clone(),
        guidance: request.guidance,
        target,
    };

    let schedule = Schedule::from_betas("scheduler", sd.scheduler.betas())?;
    let timesteps = sd.scheduler.timesteps(name, request.steps)?;
    let d = c * h * w;
    let z = match &request.latents {
        Some(l) => {
            if l.dims() != [n, c, h, w] {
                bail!(
                    "the given latents have shape {:?}; this run needs [{n}, {c}, {h}, {w}]",
                    l.dims()
                );
            }
            l.clone().reshape([n, d])
        }
        None => BatchNoise::new(NoiseSource::new(request.seed), 0..n as u64).prior(d, &device),
    };
    let noise = BatchNoise::new(NoiseSource::new(request.seed), 0..n as u64);

    watch.begin("denoising steps", timesteps.len() as u64);
    let mut on_step = |_: &Event| watch.advance(1);
    let (x, nfe) = if name == SamplerName::Ddim {
        // DDIM walks the steps in the variance-preserving scaling, from x_T = z, to the last
        // step's predecessor: alpha-bar = 1 with set_alpha_to_one, else the first training step's.
        let ratio = sd.scheduler.num_train_timesteps / request.steps;
        let last = timesteps[timesteps.len() - 1];
        let end = if last >= ratio as f64 {
            (last as usize - ratio) + 1
        } else if sd.scheduler.set_alpha_to_one {
            0
        } else {
            1
        };
        let mut steps: Vec<usize> = timesteps.iter().map(|&t| t as usize + 1).collect();
        if end < steps[steps.len() - 1] {
            steps.push(end);
        }
        let x = ddim(&model, &schedule, z, &steps, 0.0, &noise, &mut on_step)?;
        (x, steps.len() - 1)
    } else {
        let mut sigmas: Vec<f64> = timesteps.iter().map(|&t| sigma_at(&schedule, t)).collect();
        sigmas.push(0.0);
        let s0 = sigmas[0];
        // diffusers' initial sigma: the sigma-space schedulers start from sigma_max z with
        // "linspace" and "trailing" spacing, from sqrt(sigma_max^2 + 1) z with "leading"; the
        // multistep solvers work in the variance-preserving scaling (z / sqrt(alpha-bar)).
        let sigma_space = matches!(
            name,
            SamplerName::Euler | SamplerName::EulerAncestral | SamplerName::Heun | SamplerName::Lms
        );
        let init = if sigma_space && sd.scheduler.timestep_spacing != "leading" {
            s0
        } else {
            (1.0 + s0 * s0).sqrt()
        };
        let view = SigmaDenoiser::new(&model, &schedule);
        let x = z * init;
        let x = match name {
            SamplerName::Euler => karras::euler(&view, x, &sigmas, &mut on_step)?,
            SamplerName::EulerAncestral => {
                karras::euler_ancestral(&view, x, &sigmas, 1.0, &noise, &mut on_step)?
            }
            SamplerName::Heun => karras::heun(
                &view,
                x,
                &sigmas,
                diffuse_core::samplers::Churn::default(),
                &noise,
                &mut on_step,
            )?,
            SamplerName::Lms => karras::lms(&view, x, &sigmas, 4, &mut on_step)?,
            SamplerName::DpmPP3M => karras::dpmpp_3m(&view, x, &sigmas, false, &mut on_step)?,
            SamplerName::DpmPP3MDiffusers => {
                karras::dpmpp_3m(&view, x, &sigmas, true, &mut on_step)?
            }
            SamplerName::Unipc => karras::unipc(&view, x, &sigmas, &mut on_step)?,
            _ => karras::dpmpp_2m(&view, x, &sigmas, &mut on_step)?,
        };
        let nfe = view.nfe();
        (to_vp(&x, 0.0), nfe)
    };
    watch.finish();

    let latents = x.reshape([n, c, h, w]);
    if !latents.clone().is_finite().all().into_scalar::<bool>() {
        bail!("the latents became non-finite during sampling (NaN or inf in the model's output)");
    }
    let scaled = latents.clone() / sd.vae_config.scaling_factor;
    let images = ((sd.vae.decode(scaled) / 2.0) + 0.5).clamp(0.0, 1.0);
    Ok(SdImages {
        latents,
        images,
        prompt_embeds: cond,
        negative_embeds: uncond,
        tokens,
        negative_tokens,
        sampler: name,
        timesteps,
        nfe,
    })
}
