//! Text to image with a Stable Diffusion folder, as diffusers' `StableDiffusionPipeline` does it:
//! the prompt and the negative prompt to token states, seeded latents (or given ones) scaled by
//! the scheduler's initial sigma, the project's sampler on the steps diffusers' scheduler of the
//! same name would take, classifier-free guidance as one UNet batch of 2n, then the VAE.

use anyhow::{Result, bail};
use burn::tensor::{Bool, Tensor, TensorData};
use diffuse_core::denoiser::{Denoiser, Level, Prediction, Target};
use diffuse_core::noise::NoiseSource;
use diffuse_core::samplers::sigma::{SigmaDenoiser, to_vp};
use diffuse_core::samplers::{BatchNoise, Event, SamplerName, ddim, karras};
use diffuse_core::schedule::Schedule;
use diffuse_nn::sd::{AutoencoderKl, UNet2DCondition};
use diffuse_text::ClipTokens;

use super::StableDiffusion;
use super::guide::{LossGuide, LossGuided};
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
    /// Denoising steps (with an init image, of which the last `strength` part runs).
    pub steps: usize,
    pub seed: u64,
    pub n: usize,
    /// Images denoised together; the images do not depend on it (each has its own noise).
    pub batch: usize,
    /// Image size in pixels; `None` is the init image's size, else the UNet's `sample_size`
    /// times the VAE's factor.
    pub height: Option<usize>,
    pub width: Option<usize>,
    /// Starting latents `[n, C, h, w]` in place of the seeded noise (scaled by the initial
    /// sigma, as diffusers scales latents it is given).
    pub latents: Option<Tensor<4>>,
    /// Token states `[1, 77, d]` used in place of the prompt's (prompt-embedding edits).
    pub prompt_embeds: Option<Tensor<3>>,
    /// img2img: a `[1, 3, H, W]` image in [-1, 1] whose latents (the encoder's mean) are noised
    /// to the level `strength` of the way up the steps, then denoised.
    pub init_image: Option<Tensor<4>>,
    /// img2img: how much of the schedule runs, in (0, 1] (diffusers' default 0.8).
    pub strength: f64,
    /// Seed 002's loss-guided sampling.
    pub loss: Option<LossGuide>,
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
            batch: 1,
            height: None,
            width: None,
            latents: None,
            prompt_embeds: None,
            init_image: None,
            strength: 0.8,
            loss: None,
        }
    }

    /// A request with `sd`'s defaults: diffusers' for a downloaded pipeline; guidance 3 and
    /// 20 steps for a model trained here on MiniLM token states (measured on colour-fashion:
    /// stronger guidance pushes some colours toward their neighbours, such as blue to cyan).
    pub fn for_pipeline(sd: &super::StableDiffusion, prompt: impl Into<String>) -> Self {
        let (guidance, steps) = sd.default_guidance_and_steps();
        Self {
            guidance,
            steps,
            ..Self::new(prompt)
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
    /// UNet evaluations per image (each of a batch of n, or 2n with guidance).
    pub nfe: usize,
    /// Loss guidance: (step, mean loss of the batch before its correction) of the first batch.
    pub losses: Vec<(usize, f64)>,
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
        // This crate counts schedule steps from 1; diffusers' timestep tau is step tau + 1.
        let t = (level.t - 1.0) as f32;
        let device = x.device();
        let guided = self.guidance > 1.0;
        let rows = if guided { 2 } else { 1 };
        let ts = Tensor::<1>::from_data(TensorData::new(vec![t; rows], [rows]), &device);
        // One image at a time (with its unconditional twin under guidance): the convolutions'
        // round-off then does not depend on how many images share a batch, so a picture is the
        // same bytes whatever --batch.
        let (context, pad) = if guided {
            pair(&self.uncond, &self.cond)
        } else {
            (self.cond.clone(), None)
        };
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            let xi = x.clone().narrow(0, i, 1).reshape([1, c, h, w]);
            let input = if guided {
                Tensor::cat(vec![xi.clone(), xi], 0)
            } else {
                xi
            };
            let out = self
                .unet
                .forward_masked(input, ts.clone(), context.clone(), pad.clone());
            values.push(if guided {
                let u = out.clone().narrow(0, 0, 1);
                let cnd = out.narrow(0, 1, 1);
                u.clone() + (cnd - u) * self.guidance
            } else {
                out
            });
        }
        let value = Tensor::cat(values, 0);
        Ok(Prediction {
            target: self.target,
            value: value.reshape([n, c * h * w]),
            x: x.clone(),
            level,
        })
    }
}

/// The unconditional and conditional token states as one batch `[2, L, d]`: as they are when
/// they have one length (CLIP pads both to 77), else each padded with zeros to the longer and
/// the padding masked (MiniLM's states have the prompt's own length).
fn pair(uncond: &Tensor<3>, cond: &Tensor<3>) -> (Tensor<3>, Option<Tensor<2, Bool>>) {
    let ([_, lu, d], [_, lc, _]) = (uncond.dims(), cond.dims());
    if lu == lc {
        return (Tensor::cat(vec![uncond.clone(), cond.clone()], 0), None);
    }
    let l = lu.max(lc);
    let device = cond.device();
    let padded = |t: &Tensor<3>, n: usize| {
        if n == l {
            t.clone()
        } else {
            Tensor::cat(vec![t.clone(), Tensor::zeros([1, l - n, d], &device)], 1)
        }
    };
    let mask: Vec<bool> = [lu, lc]
        .iter()
        .flat_map(|&n| (0..l).map(move |k| k >= n))
        .collect();
    (
        Tensor::cat(vec![padded(uncond, lu), padded(cond, lc)], 0),
        Some(Tensor::from_data(TensorData::new(mask, [2, l]), &device)),
    )
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

/// The sampler's starting point and its steps, once per run.
struct Plan {
    name: SamplerName,
    schedule: Schedule,
    /// diffusers' timesteps that run (the tail of the schedule's with an init image).
    timesteps: Vec<f64>,
    /// The clean latents of the init image (scaled), `[1, d]`.
    init: Option<Tensor<2>>,
    /// Latent channels, height, width.
    shape: [usize; 3],
}

/// The request's own errors, found before any work (sizes, sampler, inputs that exclude each
/// other); returns the picture's height and width and the sampler.
pub fn check(sd: &StableDiffusion, request: &SdRequest) -> Result<(usize, usize, SamplerName)> {
    let f = sd.vae_scale();
    let down = 1usize << (sd.unet_layout.config.block_out_channels.len() - 1);
    let multiple = f * down;
    let size = sd.default_size();
    let image_size = request.init_image.as_ref().map(|i| {
        let [_, _, h, w] = i.dims();
        (h, w)
    });
    let (height, width) = (
        request.height.or(image_size.map(|s| s.0)).unwrap_or(size),
        request.width.or(image_size.map(|s| s.1)).unwrap_or(size),
    );
    for (name, v) in [("--height", height), ("--width", width)] {
        if v == 0 || !v.is_multiple_of(multiple) {
            bail!(
                "{name} {v} must be a positive multiple of {multiple} (the VAE's factor {f} times \
                 the UNet's {down}x downsampling)"
            );
        }
    }
    if let Some((h, w)) = image_size
        && (h, w) != (height, width)
    {
        bail!("--init-image is {w}x{h} pixels but the run is {width}x{height}; resize the image");
    }
    if request.n == 0 {
        bail!("--n must be at least 1");
    }
    if !request.guidance.is_finite() {
        bail!("--guidance must be a finite number");
    }
    if request.init_image.is_some() && request.latents.is_some() {
        bail!("give --init-image or --init-latents, not both");
    }
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
    let (n, c) = (request.n, sd.unet_layout.config.in_channels);
    let (h, w) = (height / f, width / f);
    if let Some(l) = &request.latents
        && l.dims() != [n, c, h, w]
    {
        bail!(
            "the given latents have shape {:?}; this run needs [{n}, {c}, {h}, {w}]",
            l.dims()
        );
    }
    Ok((height, width, name))
}

/// Generates `request.n` images from the pipeline.
pub fn generate(
    sd: &StableDiffusion,
    request: &SdRequest,
    watch: &mut dyn Watch,
) -> Result<SdImages> {
    let (height, width, name) = check(sd, request)?;
    let f = sd.vae_scale();
    let (h, w, c) = (height / f, width / f, sd.unet_layout.config.in_channels);
    let n = request.n;
    let d = c * h * w;
    let device = sd.device();
    if let Some(l) = &request.latents
        && l.dims() != [n, c, h, w]
    {
        bail!(
            "the given latents have shape {:?}; this run needs [{n}, {c}, {h}, {w}]",
            l.dims()
        );
    }
    if let Some(g) = &request.loss
        && (g.every == 0 || !g.scale.is_finite())
    {
        bail!("loss guidance needs a finite scale and a period of at least 1 step");
    }

    let (prompt_states, tokens) = sd.encode_prompt(&request.prompt)?;
    let cond = match &request.prompt_embeds {
        Some(e) => {
            if e.dims() != prompt_states.dims() {
                bail!(
                    "the given prompt embeddings have shape {:?}; the text encoder gives {:?}",
                    e.dims(),
                    prompt_states.dims()
                );
            }
            e.clone()
        }
        None => prompt_states,
    };
    let (uncond, negative_tokens) = sd.encode_prompt(&request.negative_prompt)?;
    let target = match sd.scheduler.prediction_type.as_str() {
        "v_prediction" => Target::V,
        "sample" => Target::X0,
        _ => Target::Eps,
    };
    let unet = GuidedUnet {
        unet: &sd.unet,
        shape: [c, h, w],
        cond: cond.clone(),
        uncond: uncond.clone(),
        guidance: request.guidance,
        target,
    };

    let schedule = Schedule::from_betas("scheduler", sd.scheduler.betas())?;
    let mut timesteps = sd.scheduler.timesteps(name, request.steps)?;
    let init = match &request.init_image {
        Some(image) => {
            if !(request.strength > 0.0 && request.strength <= 1.0) {
                bail!("--strength must be in (0, 1] (got {})", request.strength);
            }
            // diffusers: the last floor(steps * strength) steps run.
            let runs = ((request.steps as f64 * request.strength) as usize).min(request.steps);
            if runs == 0 {
                bail!(
                    "--strength {} of {} steps runs no step; raise --strength or --nfe",
                    request.strength,
                    request.steps
                );
            }
            timesteps.drain(..timesteps.len() - runs.min(timesteps.len()));
            let (mean, _) = sd.vae.encode(image.clone());
            Some((mean * sd.vae_config.scaling_factor).reshape([1, d]))
        }
        None => None,
    };
    let plan = Plan {
        name,
        schedule,
        timesteps,
        init,
        shape: [c, h, w],
    };
    let guide_vae = match &request.loss {
        Some(_) => Some(AutoencoderKl::load(&sd.folder.join("vae"), &device.clone().autodiff())?.0),
        None => None,
    };

    let batch = request.batch.max(1);
    let batches = n.div_ceil(batch);
    watch.begin("denoising steps", (plan.timesteps.len() * batches) as u64);
    let (mut all_latents, mut all_images) = (vec![], vec![]);
    let (mut nfe, mut losses) = (0, vec![]);
    for rows in crate::run::batches(n, batch) {
        let m = (rows.end - rows.start) as usize;
        let guided = guide_vae.as_ref().zip(request.loss).map(|(vae, g)| {
            LossGuided::new(&unet, vae, sd.vae_config.scaling_factor, [c, h, w], g)
        });
        let model: &dyn Denoiser = match &guided {
            Some(g) => g,
            None => &unet,
        };
        let stoppable = watch
            .stop_flag()
            .map(|flag| diffuse_core::Stoppable::new(model, flag));
        let model: &dyn Denoiser = match &stoppable {
            Some(s) => s,
            None => model,
        };
        let noise = BatchNoise::new(NoiseSource::new(request.seed), rows.clone());
        let z = match &request.latents {
            Some(l) => l.clone().narrow(0, rows.start as usize, m).reshape([m, d]),
            None => noise.prior(d, &device),
        };
        let (x, used) = sample(sd, &plan, model, z, &noise, request.steps, &rows, watch)?;
        nfe = used;
        if let Some(g) = &guided
            && losses.is_empty()
        {
            losses = g.losses.borrow().clone();
        }
        let latents = x.reshape([m, c, h, w]);
        if !latents.clone().is_finite().all().into_scalar::<bool>() {
            bail!(
                "the latents became non-finite during sampling (NaN or inf in the model's output)"
            );
        }
        all_images.push(decode(sd, latents.clone()));
        all_latents.push(latents);
    }
    watch.finish();
    Ok(SdImages {
        latents: Tensor::cat(all_latents, 0),
        images: Tensor::cat(all_images, 0),
        prompt_embeds: cond,
        negative_embeds: uncond,
        tokens,
        negative_tokens,
        sampler: name,
        timesteps: plan.timesteps,
        nfe,
        losses,
    })
}

/// Latents (not yet divided by the scaling factor) to images in [0, 1], one at a time (the same
/// bytes whatever the batch).
pub fn decode(sd: &StableDiffusion, latents: Tensor<4>) -> Tensor<4> {
    let n = latents.dims()[0];
    let images = (0..n)
        .map(|i| {
            let scaled = latents.clone().narrow(0, i, 1) / sd.vae_config.scaling_factor;
            ((sd.vae.decode(scaled) / 2.0) + 0.5).clamp(0.0, 1.0)
        })
        .collect();
    Tensor::cat(images, 0)
}

/// One batch through the sampler from standard-normal latents `z` `[m, d]`; the final latents in
/// the variance-preserving scaling (unscaled latents) and the UNet evaluations.
#[allow(clippy::too_many_arguments)]
fn sample(
    sd: &StableDiffusion,
    plan: &Plan,
    model: &dyn Denoiser,
    z: Tensor<2>,
    noise: &BatchNoise,
    steps: usize,
    rows: &std::ops::Range<u64>,
    watch: &mut dyn Watch,
) -> Result<(Tensor<2>, usize)> {
    let (schedule, timesteps, name) = (&plan.schedule, &plan.timesteps, plan.name);
    let every = watch.preview_every();
    let total = timesteps.len();
    let mut failed: Option<anyhow::Error> = None;
    let mut on_step = |e: &Event| {
        if failed.is_none()
            && let Err(err) = watch.advance(1)
        {
            failed = Some(err);
        }
        if every > 0 && failed.is_none() && (e.step.is_multiple_of(every) || e.step == total) {
            let r = preview(sd, plan.shape, e.x0, rows, e.step, watch);
            if let Err(err) = r {
                failed = Some(err);
            }
        }
    };
    // With an init image the sampler starts from its latents noised to the first level.
    let start = |sigma: f64| -> Tensor<2> {
        match &plan.init {
            Some(z0) => z0.clone().expand(z.dims()) + z.clone() * sigma,
            None => z.clone(),
        }
    };
    let result = if name == SamplerName::Ddim {
        // DDIM walks the steps in the variance-preserving scaling, from x_T = z, to the last
        // step's predecessor: alpha-bar = 1 with set_alpha_to_one, else the first training step's.
        let ratio = sd.scheduler.num_train_timesteps / steps;
        let last = timesteps[timesteps.len() - 1];
        let end = if last >= ratio as f64 {
            (last as usize - ratio) + 1
        } else if sd.scheduler.set_alpha_to_one {
            0
        } else {
            1
        };
        let mut ks: Vec<usize> = timesteps.iter().map(|&t| t as usize + 1).collect();
        if end < ks[ks.len() - 1] {
            ks.push(end);
        }
        let x = match &plan.init {
            Some(_) => {
                let s0 = schedule.sigma(ks[0]);
                to_vp(&start(s0), s0)
            }
            None => z.clone(),
        };
        let x = ddim(model, schedule, x, &ks, 0.0, noise, &mut on_step)?;
        (x, ks.len() - 1)
    } else {
        let mut sigmas: Vec<f64> = timesteps.iter().map(|&t| sigma_at(schedule, t)).collect();
        sigmas.push(0.0);
        let s0 = sigmas[0];
        // diffusers' initial sigma: the sigma-space schedulers start from sigma_max z with
        // "linspace" and "trailing" spacing, from sqrt(sigma_max^2 + 1) z with "leading"; the
        // multistep solvers work in the variance-preserving scaling (z / sqrt(alpha-bar)). An
        // init image is noised to sigma_max exactly (diffusers' add_noise).
        let sigma_space = matches!(
            name,
            SamplerName::Euler | SamplerName::EulerAncestral | SamplerName::Heun | SamplerName::Lms
        );
        let x = match &plan.init {
            Some(_) => start(s0),
            None if sigma_space && sd.scheduler.timestep_spacing != "leading" => z.clone() * s0,
            None => z.clone() * (1.0 + s0 * s0).sqrt(),
        };
        let view = SigmaDenoiser::new(model, schedule);
        let x = match name {
            SamplerName::Euler => karras::euler(&view, x, &sigmas, &mut on_step)?,
            SamplerName::EulerAncestral => {
                karras::euler_ancestral(&view, x, &sigmas, 1.0, noise, &mut on_step)?
            }
            SamplerName::Heun => karras::heun(
                &view,
                x,
                &sigmas,
                diffuse_core::samplers::Churn::default(),
                noise,
                &mut on_step,
            )?,
            SamplerName::Lms => karras::lms(&view, x, &sigmas, 4, &mut on_step)?,
            SamplerName::DpmPP3M => karras::dpmpp_3m(&view, x, &sigmas, false, &mut on_step)?,
            SamplerName::DpmPP3MDiffusers => {
                karras::dpmpp_3m(&view, x, &sigmas, true, &mut on_step)?
            }
            SamplerName::Unipc => karras::unipc(&view, x, &sigmas, &mut on_step)?,
            _ => karras::dpmpp_2m(&view, x, &sigmas, false, &mut on_step)?,
        };
        let nfe = view.nfe();
        (to_vp(&x, 0.0), nfe)
    };
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(result)
}

/// The decoded picture of the predicted clean latents `x0` `[m, d]`, handed to the watch.
fn preview(
    sd: &StableDiffusion,
    [c, h, w]: [usize; 3],
    x0: &Tensor<2>,
    rows: &std::ops::Range<u64>,
    step: usize,
    watch: &mut dyn Watch,
) -> Result<()> {
    let m = x0.dims()[0];
    let images = decode(sd, x0.clone().reshape([m, c, h, w]));
    watch.preview(rows, step, &images)
}
