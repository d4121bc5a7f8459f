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
        let sd = StableDiffusion::load(dir, &diffuse_core::device::cpu())
            .with_context(|| format!("--sd {}", dir.display()))?;
        let t = time(&sd, a.sd_latent, a.repeats, &mut |line| eprintln!("{line}"))?;
        let mut out = Output::new(&a.common, "bench")?;
        out.set("model", dir.display().to_string());
        out.set("latent", a.sd_latent);
        out.num("unet_step_seconds", t.unet_step_seconds);
        out.num("vae_decode_seconds", t.vae_decode_seconds);
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
    };
    let report = bench(&run, &mut |line| eprintln!("{line}"))?;
    let mut out = Output::new(&a.common, "bench")?;
    out.report(report);
    out.finish_and_print()
}
