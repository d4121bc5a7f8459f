//! Sampling any denoiser from the generative prior: x_T ~ N(0, I) at the schedule's last step,
//! down to step 0. What a front end calls for a denoiser it brings itself (an exact mixture, a
//! Python function); a trained model goes through [`crate::generate`], which adds its
//! conditions, guidance and units. The rows' noise is the same as there and as `undiffuse
//! --prior normal`, so the same seed gives the same samples from every front end.

use anyhow::Result;
use diffuse_core::samplers::{BatchNoise, Fixed, SamplerSpec};
use diffuse_core::{Denoiser, NoiseSource, Schedule, device};

use crate::positive;
use crate::run::{PILOT, Watch, fix, run_batches};

/// Samples drawn by [`sample_prior`].
pub struct Drawn {
    /// The samples, row-major, `n x dim`.
    pub x: Vec<f64>,
    /// Denoiser evaluations of one batch.
    pub nfe: usize,
    /// The sampler that ran, its grid fixed.
    pub fixed: Fixed,
}

/// Draws `n` samples of `den` with `spec` from N(0, I) at step T of `sched` down to 0, in batches
/// of `batch` (the samples do not depend on it).
pub fn sample_prior(
    den: &dyn Denoiser,
    sched: &Schedule,
    spec: &SamplerSpec,
    n: usize,
    batch: usize,
    seed: u64,
    watch: &mut dyn Watch,
) -> Result<Drawn> {
    positive("--n", n)?;
    positive("--batch", batch)?;
    let d = den.dim();
    crate::budget::check(&format!("--n {n}"), n as f64 * d as f64 * 8.0 * 3.0)?;
    let t = sched.steps();
    let sampler = spec.sampler(t, 0)?;
    for w in spec.unused() {
        watch.warn(&w);
    }
    let noise = NoiseSource::new(seed);
    let dev = device::default_device();
    let mut prior = |rows| Ok(BatchNoise::new(noise, rows).prior(d, &dev));
    let pilot = prior(0..n.min(PILOT) as u64)?;
    let fixed = fix(&sampler, den, sched, pilot, t, 0, watch)?;
    watch.begin("sample", n as u64);
    let (x, nfe) = run_batches(
        &fixed.sampler,
        den,
        sched,
        t,
        0,
        0..n as u64,
        batch,
        noise,
        &mut prior,
        watch,
    )?;
    watch.finish();
    Ok(Drawn { x, nfe, fixed })
}
