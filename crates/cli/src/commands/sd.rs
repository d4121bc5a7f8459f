//! `diffuse sample --model DIR` on a Stable Diffusion folder: a prompt to pictures, with seed
//! 002's hacks (loss guidance, a walk between two prompts' embeddings, a token swap) and img2img.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::Tensor;
use diffuse_pipeline::sd::{
    self, ImageLoss, LossGuide, SdImages, SdRequest, StableDiffusion, to_rgb8, write_tensors,
};

use crate::args::SampleArgs;
use crate::figures::{animate_rgb, write_rgb_images};
use crate::output::Output;
use crate::progress::{Bars, spinner};

/// Flags of the point and pixel models that mean nothing here.
fn refuse_other_flags(a: &SampleArgs) -> Result<()> {
    let s = &a.sampling;
    let given = [
        (a.label.is_some(), "--label"),
        (a.no_clip, "--no-clip"),
        (a.prompt_as_is, "--prompt-as-is"),
        (s.grid.is_some(), "--grid"),
        (s.eta.is_some(), "--eta"),
        (s.churn != 0.0, "--churn"),
        (s.grid_steps.is_some(), "--grid-steps"),
        (s.sigma_max.is_some(), "--sigma-max"),
        (s.sigma_min.is_some(), "--sigma-min"),
        (s.ends.is_some(), "--ends"),
    ];
    if let Some((_, flag)) = given.iter().find(|g| g.0) {
        bail!(
            "{flag} does not apply to a Stable Diffusion folder (its scheduler's config sets the \
             steps; see `diffuse sample --help`, Stable Diffusion)"
        );
    }
    if a.sd.prompt_to.is_some() && a.sd.swap_from.is_some() {
        bail!("give --prompt-to or --swap-from, not both");
    }
    Ok(())
}

/// `diffuse sample` on the Stable Diffusion folder `folder` (`--model`, or where the shipped
/// pipeline it names was unpacked).
pub fn run(a: &SampleArgs, folder: &Path) -> Result<()> {
    refuse_other_flags(a)?;
    let Some(prompt) = a.prompt.clone() else {
        bail!("--prompt is needed: what to draw, in words");
    };
    let dev = a.compute.device()?;
    let loading = spinner("loading the pipeline");
    let loaded = StableDiffusion::load(folder, &dev);
    loading.finish_and_clear();
    let model = loaded.with_context(|| format!("--model {}", a.model.display()))?;

    // A prompt longer than the encoder reads loses its end: refused unless --truncate for CLIP
    // (what diffusers would silently cut); a model trained here cuts it, as its captions were
    // encoded, and says so.
    let texts = [
        ("--prompt", Some(&prompt)),
        ("--negative-prompt", a.sd.negative_prompt.as_ref()),
        ("--prompt-to", a.sd.prompt_to.as_ref()),
        ("--swap-from", a.sd.swap_from.as_ref()),
    ];
    for (flag, text) in texts {
        if let Some(t) = text
            && let Some((k, max)) = model.too_long(t)?
            && !a.sd.truncate
            && !model.trained_here()
        {
            bail!(
                "{flag} has {k} tokens with the start and end markers but the text encoder reads \
                 {max}: shorten it, or give --truncate to cut it as diffusers does"
            );
        }
    }

    // A model trained here draws small pictures: 16 by default (a 4x4 grid), judged below.
    let n = a.n.unwrap_or(if model.trained_here() { 16 } else { 1 });
    let mut request = SdRequest::for_pipeline(&model, prompt.clone());
    request.negative_prompt = a.sd.negative_prompt.clone().unwrap_or_default();
    if let Some(g) = a.guidance {
        request.guidance = g;
    }
    request.sampler = a.sampling.sampler;
    if let Some(k) = a.sampling.nfe {
        request.steps = k;
    }
    request.seed = a.common.seed;
    request.n = n;
    // Small pictures of a model trained here go 100 at a time (the pictures do not depend on
    // the batch); a downloaded Stable Diffusion one at a time, as diffusers.
    request.batch = a.batch.unwrap_or(if model.trained_here() {
        n.clamp(1, 100)
    } else {
        1
    });
    request.height = a.sd.height;
    request.width = a.sd.width;
    request.strength = a.sd.strength;
    if let Some(path) = &a.sd.init_latents {
        request.latents = Some(sd::read_tensor4(path, "latents", &dev).context("--init-latents")?);
    }
    if let Some(path) = &a.sd.init_image {
        request.init_image = Some(sd::read_image(path, &dev).context("--init-image")?);
    }
    if let Some(l) = &a.sd.loss {
        request.loss = Some(LossGuide {
            loss: ImageLoss::parse(l)?,
            scale: a.sd.loss_scale,
            every: a.sd.loss_every,
        });
    }

    // The token states of each picture set: one, a walk of --frames, or a swap.
    let mut swapped_at = None;
    let embeds: Vec<Option<Tensor<3>>> = if let Some(b) = &a.sd.prompt_to {
        let (ea, _) = model.encode_prompt(&prompt)?;
        let (eb, tb) = model.encode_prompt(b)?;
        warn_truncated("--prompt-to", tb.truncated_from, tb.ids.len());
        sd::interpolate(&ea, &eb, a.sd.frames)?
            .into_iter()
            .map(Some)
            .collect()
    } else if let (Some(b), Some(word)) = (&a.sd.swap_from, &a.sd.swap_token) {
        let (states, at) = sd::swap_token(&model, &prompt, b, word)?;
        swapped_at = Some(at);
        vec![Some(states)]
    } else {
        vec![None]
    };

    // The folder is claimed before the long work (after the request's own errors), so that a
    // refusal costs nothing.
    sd::check(&model, &request)?;
    let mut out = Output::new(&a.common, "sample")?;
    let (mut runs, mut frames): (Vec<SdImages>, Vec<Vec<Vec<u8>>>) = (vec![], vec![]);
    for (k, e) in embeds.iter().enumerate() {
        request.prompt_embeds = e.clone();
        // --animate films the first 16 pictures of the first run.
        let film = a.animate && k == 0;
        let filmed = if film { n.min(16) } else { 0 };
        let mut watch = Bars::previewing(Box::new(|rows, step, images| {
            if rows.start as usize >= filmed {
                return Ok(());
            }
            let keep = (filmed - rows.start as usize).min(images.dims()[0]);
            let pictures = to_rgb8(&images.clone().narrow(0, 0, keep))?;
            if rows.start == 0 {
                frames.push(pictures);
            } else if let Some(f) = frames.get_mut(step - 1) {
                f.extend(pictures);
            }
            Ok(())
        }));
        if !film {
            watch = Bars::new();
        }
        if embeds.len() > 1 {
            eprintln!("frame {} of {}", k + 1, embeds.len());
        }
        runs.push(sd::generate(&model, &request, &mut watch)?);
    }
    let first = &runs[0];
    warn_truncated(
        "--prompt",
        first.tokens.truncated_from,
        first.tokens.ids.len(),
    );
    warn_truncated(
        "--negative-prompt",
        first.negative_tokens.truncated_from,
        first.negative_tokens.ids.len(),
    );

    // Everything is computed: now the outputs.
    let [_, _, height, width] = first.images.dims();
    let mut pictures = vec![];
    for r in &runs {
        pictures.extend(to_rgb8(&r.images)?);
    }
    if runs.len() > 1 {
        // A strip: one row per sample, one column per frame of the walk.
        let mut by_sample = vec![];
        for i in 0..n {
            for k in 0..runs.len() {
                by_sample.push(pictures[k * n + i].clone());
            }
        }
        write_rgb_images(
            &out.path(""),
            &pictures,
            width,
            height,
            runs.len(),
            "grid.png",
        )?;
        let (g, gw, gh) = diffuse_data::images::grid(&by_sample, width, height, 3, runs.len());
        diffuse_data::images::write_png(&out.path("strip.png"), &g, gw, gh, 3)?;
        let walk: Vec<Vec<Vec<u8>>> = (0..runs.len())
            .map(|k| pictures[k * n..(k + 1) * n].to_vec())
            .collect();
        animate_rgb(&out.path("interpolation.gif"), &walk, width, height, 4, 40)?;
    } else {
        write_rgb_images(&out.path(""), &pictures, width, height, 4, "grid.png")?;
    }
    if !frames.is_empty() {
        animate_rgb(&out.path("animation.gif"), &frames, width, height, 4, 12)?;
    }
    let latents = Tensor::cat(runs.iter().map(|r| r.latents.clone()).collect(), 0);
    write_tensors(&out.path("latents.safetensors"), &[("latents", &latents)])?;
    let count = n * runs.len();
    // Each run's states at their own length (MiniLM's are the prompt's; the runs of one
    // command share it).
    let cond = Tensor::cat(
        runs.iter()
            .map(|r| {
                let [_, l, d] = r.prompt_embeds.dims();
                r.prompt_embeds.clone().expand([n, l, d])
            })
            .collect(),
        0,
    );
    let [_, l, d] = first.negative_embeds.dims();
    let uncond = first.negative_embeds.clone().expand([count, l, d]);
    write_tensors(
        &out.path("prompt_embeds.safetensors"),
        &[("prompt_embeds", &cond), ("negative_embeds", &uncond)],
    )?;

    out.set("model", a.model.display().to_string());
    out.set("prompt", prompt);
    out.set("negative_prompt", request.negative_prompt.clone());
    out.set("sampler", first.sampler.as_str());
    out.set("scheduler", model.scheduler.class.clone());
    out.set("steps", first.timesteps.len());
    out.set("timesteps", first.timesteps.clone());
    out.set("nfe", first.nfe);
    out.num("guidance", request.guidance);
    out.set("seed", a.common.seed);
    out.set("device", a.compute.name());
    out.set("n", count);
    out.set("height", height);
    out.set("width", width);
    out.set("tokens", first.tokens.ids.clone());
    if let Some(k) = first.tokens.truncated_from {
        out.set("prompt_tokens_before_truncation", k);
    }
    if let Some(k) = first.negative_tokens.truncated_from {
        out.set("negative_prompt_tokens_before_truncation", k);
    }
    if let Some(p) = &a.sd.init_image {
        out.set("init_image", p.display().to_string());
        out.num("strength", request.strength);
    }
    if let Some(p) = &a.sd.init_latents {
        out.set("init_latents", p.display().to_string());
    }
    if let Some(g) = &request.loss {
        out.set("loss", g.loss.describe());
        out.num("loss_scale", g.scale);
        out.set("loss_every", g.every);
        let steps: Vec<usize> = first.losses.iter().map(|l| l.0).collect();
        let values: Vec<f64> = first.losses.iter().map(|l| l.1).collect();
        out.set("loss_steps", steps);
        out.set("loss_values", values);
    }
    let blue = mean_channel(&runs, 2)?;
    out.num("mean_blue", blue);
    // What the shipped judges see in colour-fashion-sized pictures of a model trained here.
    let size = diffuse_data::colour::SIZE;
    if model.trained_here() && (height, width) == (size, size) {
        let judge =
            diffuse_pipeline::eval::ColourJudge::load(Path::new("fashion-mnist-classifier"))?;
        let seen = judge.judge(&pictures, None)?;
        let said = |key: &str| {
            seen.get(key)
                .and_then(|v| v.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        println!(
            "fashion-mnist-classifier sees: {}; the colour measure sees: {}",
            said("class_counts"),
            said("colour_counts")
        );
        for key in ["class_counts", "colour_counts", "blue_to_red"] {
            if let Some(v) = seen.get(key) {
                out.set(&format!("judge_{key}"), v.clone());
            }
        }
    }
    if let Some(b) = &a.sd.prompt_to {
        out.set("prompt_to", b.clone());
        out.set("frames", runs.len());
    }
    if let (Some(b), Some(at)) = (&a.sd.swap_from, swapped_at) {
        out.set("swap_from", b.clone());
        out.set("swap_token", a.sd.swap_token.clone());
        out.set("swap_positions", at);
    }
    out.finish()?;
    Ok(())
}

/// The mean of one colour channel over every picture, in [0, 1].
fn mean_channel(runs: &[SdImages], c: usize) -> Result<f64> {
    let mut sum = 0.0;
    for r in runs {
        let v: f32 = r.images.clone().narrow(1, c, 1).mean().into_scalar();
        sum += f64::from(v);
    }
    Ok(sum / runs.len() as f64)
}

fn warn_truncated(flag: &str, from: Option<usize>, to: usize) {
    if let Some(k) = from {
        eprintln!(
            "warning: {flag} has {k} tokens with the start and end markers; the text encoder \
             reads {to}, so it was cut (the end is lost)"
        );
    }
}
