//! `diffuse train`: a learned denoiser (seeds 000, 001, 003, 004; the image UNet) trained with
//! the DDPM loss into a model folder.

use anyhow::{Context, Result};
use diffuse_pipeline::{TrainRun, train};

use crate::args::TrainArgs;
use crate::figures::loss_plot;
use crate::output::Output;
use crate::progress::Bars;

/// `diffuse train`.
pub fn run(a: &TrainArgs) -> Result<()> {
    let run = TrainRun {
        data: a.data.clone(),
        model: a.model.clone(),
        time_features: a.time_features,
        channels: a.channels,
        hidden: a.hidden,
        depth: a.depth,
        activation: a.activation.clone(),
        schedule: a.schedule.clone(),
        timesteps: a.timesteps,
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        weight_decay: a.weight_decay,
        no_standardize: a.no_standardize,
        clip: a.clip,
        save_every: a.save_every,
        resume: a.resume,
        cond: a.cond.parse().context("--cond")?,
        target: a.target.parse().context("--target")?,
        ema: a.ema,
        label_dropout: a.label_dropout,
        prompt_noise: a.prompt_noise,
        kl_weight: a.kl_weight,
        vae: a.vae.clone(),
        seed: a.common.seed,
        device: a.compute.device()?,
        parallel: a.parallel.parallel(&a.compute.device)?,
    };
    let mut out = Output::for_training(&a.common, a.resume)?;
    let trained = train(&run, &out.path(""), &mut Bars::new())?;
    loss_plot(&out.path("loss.png"), &trained.losses)?;
    out.report(trained.report);
    let on_cpu = run.device == diffuse_core::device::cpu();
    out.set("device", if on_cpu { "cpu" } else { a.compute.name() });
    out.set("devices", run.parallel.per_process());
    if let Some(p) = &run.parallel.peers {
        out.set("nodes", p.nodes);
        out.set("rank", p.rank);
    }
    out.finish()?;
    Ok(())
}
