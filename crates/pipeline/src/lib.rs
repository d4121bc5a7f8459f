//! # diffuse-pipeline
//!
//! What a front end calls (the `diffuse` command, the Python bindings and the local web page
//! of `diffuse serve`): load a model folder into a ready denoiser, generate samples for a
//! request, run a training run with checkpoints and resume, and the evaluation protocols. Below
//! it, `core` has the math, `nn` the networks, `data` the data sets and `text` the text
//! encoders; above it, a front end only maps its inputs to requests and writes what comes back.
//!
//! End to end (seed 003's spiral, as `examples/spiral.rs` runs it):
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use diffuse_pipeline::{Ask, Request, TrainRun, generate, load, train};
//! let dir = std::path::Path::new("models/spiral");
//! train(&TrainRun::new("spiral", 3000), dir, &mut diffuse_pipeline::Silent)?;
//! let model = load(dir)?;
//! let samples = generate(&model, &Request::new(2000), &mut diffuse_pipeline::Silent)?;
//! # Ok(()) }
//! ```

pub mod bench;
pub mod budget;
pub mod eval;
mod fokker_planck;
mod forward;
mod generate;
pub mod grid_choice;
mod latent;
mod likelihood;
mod load;
pub mod prompt_reading;
mod report;
mod run;
mod sample;
pub mod sd;
pub mod shipped;
pub mod study;
mod train;
mod undiffuse;
mod vae;

pub use fokker_planck::{Compared, Dynamics, Snapshot, compare};
pub use forward::{Diffused, Forward, diffuse};
pub use generate::{Ask, Request, Samples, generate};
pub use latent::{MINILM, TOKEN_STATES_ENCODER, latent_unet_config};
pub use likelihood::{Density, Likelihoods, log_likelihoods};
pub use load::{Defaults, Loaded, load, load_on};
pub use report::Report;
pub use run::{PILOT, Silent, Watch, batches, fix, run_batches};
pub use sample::{Drawn, sample_prior};
pub use train::{KL_WEIGHT, TrainReport, TrainRun, train};
pub use undiffuse::{Prior, Undiffused, Undiffusion, undiffuse};
pub use vae::{psnr, reconstructions, vae_config};

/// Parses a data spec; its warnings go to `watch`.
pub fn dataset(spec: &str, watch: &mut dyn Watch) -> anyhow::Result<diffuse_data::Dataset> {
    use anyhow::Context;
    let d = diffuse_data::Dataset::parse(spec).with_context(|| format!("--data {spec}"))?;
    for w in &d.warnings {
        watch.warn(w);
    }
    Ok(d)
}

/// Refuses a count of zero, naming the setting.
pub fn positive(name: &str, v: usize) -> anyhow::Result<usize> {
    if v == 0 {
        anyhow::bail!("{name} must be at least 1 (got 0)");
    }
    Ok(v)
}

/// Parses a schedule spec with T steps (`--steps`).
pub fn schedule(spec: &str, steps: usize) -> anyhow::Result<diffuse_core::Schedule> {
    schedule_of("--steps", spec, steps)
}

/// Parses a schedule spec with T steps, given by the option `flag` (`--timesteps` in training).
pub fn schedule_of(flag: &str, spec: &str, steps: usize) -> anyhow::Result<diffuse_core::Schedule> {
    use anyhow::Context;
    positive(flag, steps)?;
    // The schedule's tables: betas, log alpha-bars and what the samplers derive from them.
    budget::check(&format!("{flag} {steps}"), steps as f64 * 8.0 * 6.0)?;
    diffuse_core::Schedule::parse(spec, steps).with_context(|| format!("--schedule {spec}"))
}
