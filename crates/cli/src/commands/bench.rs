//! `diffuse bench`: the pipeline's timing protocol (seed 003's MLP and the shipped UNet's
//! architecture); bench/run.sh runs the same in PyTorch on the same machine and prints ratios.

use anyhow::Result;
use diffuse_pipeline::bench::{BenchRun, bench};

use crate::args::BenchArgs;
use crate::output::Output;

/// `diffuse bench`.
pub fn run(a: &BenchArgs) -> Result<()> {
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
    let mut out = Output::new(a.common.out.as_deref(), "bench")?;
    out.report(report);
    out.finish_and_print()
}
