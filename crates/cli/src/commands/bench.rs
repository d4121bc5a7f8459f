//! `diffuse bench`: the pipeline's timing protocol (seed 003's MLP and the shipped UNet's
//! architecture); bench/run.sh runs the same in PyTorch on the same machine and prints ratios.

use anyhow::{Context, Result};
use diffuse_pipeline::bench::{BenchRun, bench};
use diffuse_pipeline::sd::StableDiffusion;
use diffuse_pipeline::sd::bench::time;

use crate::args::BenchArgs;
use crate::output::Output;

/// `diffuse bench`.
pub fn run(a: &BenchArgs) -> Result<()> {
    if let Some(dir) = &a.sd {
        let folder = diffuse_pipeline::shipped::model_folder(dir)?;
        let sd = StableDiffusion::load(&folder, &a.compute.device()?)
            .with_context(|| format!("--sd {}", dir.display()))?;
        // The output folder is checked before minutes of timing, not after.
        let mut out = Output::new(&a.common, "bench")?;
        let latent = a
            .sd_latent
            .unwrap_or(sd.unet_layout.config.sample_size.unwrap_or(64));
        let images = a
            .sd_images
            .unwrap_or(if sd.trained_here() { 100 } else { 0 });
        let t = time(&sd, latent, a.repeats, images, &mut |line| {
            eprintln!("{line}")
        })?;
        out.set("model", dir.display().to_string());
        out.set("device", a.compute.name());
        out.set("latent", latent);
        out.num("unet_step_seconds", t.unet_step_seconds);
        out.num("vae_decode_seconds", t.vae_decode_seconds);
        if let Some((n, steps, seconds)) = t.images {
            eprintln!("{n} images at {steps} steps: {seconds:.2} s");
            out.set("images", n);
            out.set("images_steps", steps);
            out.num("images_seconds", seconds);
        }
        return out.finish_and_print();
    }
    let run = BenchRun {
        train_steps: a.train_steps,
        batches: a.batches.clone(),
        sample_n: a.sample_n,
        repeats: a.repeats,
        unet_steps: a.unet_steps,
        unet_channels: a.unet_channels,
        seed: a.common.seed,
        device: a.compute.device()?,
    };
    let mut out = Output::new(&a.common, "bench")?;
    let report = bench(&run, &mut |line| eprintln!("{line}"))?;
    out.report(report);
    out.set("device", a.compute.name());
    out.finish_and_print()
}
