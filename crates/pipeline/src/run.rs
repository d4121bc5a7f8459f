//! The one sampling loop every front end shares: fix the grid once on a pilot batch, then run
//! every batch on it, each row with its own noise, so that a sample is the same whatever batch
//! it is drawn in.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::tensor::Tensor;
use diffuse_core::samplers::{self, BatchNoise, Fixed, GridKind, Sampler, level_at_step};
use diffuse_core::tensor::to_vec;
use diffuse_core::{Denoiser, NoiseSource, Schedule};

/// Rows of the pilot batch on which adaptive and fitted grids are chosen.
pub const PILOT: usize = 256;

/// What a long run tells its front end. Every method has a silent default.
pub trait Watch {
    /// Work of `total` units (samples, steps) begins.
    fn begin(&mut self, _what: &str, _total: u64) {}
    /// `units` more are done. An error stops the work and is returned by the run (a front end
    /// stops a run this way: Ctrl-C in Python, a closed page); a training run keeps its last
    /// checkpoint.
    fn advance(&mut self, _units: u64) -> Result<()> {
        Ok(())
    }
    /// The work is over.
    fn finish(&mut self) {}
    /// A preparation of unknown progress begins (fitting a grid), with its expected seconds.
    fn preparing(&mut self, _what: &str, _seconds: Option<f64>) {}
    /// The preparation is over.
    fn prepared(&mut self) {}
    /// The state x of samples `rows` at continuous time t: each batch's start, then after every
    /// sampler step (for paths and animations).
    fn state(&mut self, _rows: &Range<u64>, _t: f64, _x: &Tensor<2>) -> Result<()> {
        Ok(())
    }
    /// After sampler step `step` of `steps` on the samples `rows`, with the denoiser's estimate
    /// of their clean values at the step's start (model units, `[m, d]`): live progress within a
    /// batch, previews of flat images, and a stop between steps (an error stops the run).
    fn stepped(
        &mut self,
        _rows: &Range<u64>,
        _step: usize,
        _steps: usize,
        _x0: &Tensor<2>,
    ) -> Result<()> {
        Ok(())
    }
    /// A flag that, once set, stops the run at its next denoiser evaluation (between sampler
    /// steps), with [`diffuse_core::CoreError::Stopped`]: a cancel button.
    fn stop_flag(&self) -> Option<Arc<AtomicBool>> {
        None
    }
    /// Whether [`Watch::state`] wants to be called (it costs a read-back when it does).
    fn watches_states(&self) -> bool {
        false
    }
    /// Every how many sampler steps [`Watch::preview`] wants pictures (0: never; each costs a
    /// decode, for Stable Diffusion a VAE decode).
    fn preview_every(&self) -> usize {
        0
    }
    /// Pictures of the run's current prediction of the clean samples of `rows` after sampler
    /// step `step` (Stable Diffusion: the VAE's images of the predicted clean latents),
    /// `[m, 3, H, W]` in [0, 1].
    fn preview(&mut self, _rows: &Range<u64>, _step: usize, _images: &Tensor<4>) -> Result<()> {
        Ok(())
    }
    /// Something the user should know that is not an error.
    fn warn(&mut self, _message: &str) {}
}

/// A watch that hears nothing.
pub struct Silent;

impl Watch for Silent {}

/// The row ranges of `n` samples in batches of `batch`.
pub fn batches(n: usize, batch: usize) -> impl Iterator<Item = Range<u64>> {
    let batch = batch.max(1);
    (0..n)
        .step_by(batch)
        .map(move |s| s as u64..(s + batch).min(n) as u64)
}

/// Fixes `sampler`'s grid on `pilot` ([`samplers::fix_grid`]): an adaptive solve or a fitted
/// grid is chosen once, and every batch then takes the same steps. A fit is announced to
/// `watch` with its expected time (one pilot evaluation, timed, times the ~80,000 evaluations
/// fits took here: README, "Fitted grids").
pub fn fix(
    sampler: &Sampler,
    den: &dyn Denoiser,
    sched: &Schedule,
    pilot: Tensor<2>,
    from: usize,
    to: usize,
    watch: &mut dyn Watch,
) -> Result<Fixed> {
    let fitting = matches!(
        sampler,
        Sampler::Sigma {
            grid: GridKind::Fitted,
            ..
        }
    );
    if fitting {
        let clock = Instant::now();
        den.predict(&pilot, level_at_step(sched, from))?;
        let seconds = clock.elapsed().as_secs_f64() * 80_000.0;
        watch.preparing(
            &format!(
                "fitting the grid on the pilot samples ({} rows, ~80,000 evaluations)",
                pilot.dims()[0]
            ),
            Some(seconds),
        );
    }
    let fixed = samplers::fix_grid(sampler, den, sched, pilot, from, to)?;
    if fitting {
        watch.prepared();
    }
    Ok(fixed)
}

/// Runs `sampler` (fixed by [`fix`]) from whole step `from` down to `to` on rows `rows` in
/// batches of `batch`, each batch starting from `start(rows)`; returns the samples, row-major,
/// and the evaluations one batch took. Progress goes to `watch` one sample at a time.
#[allow(clippy::too_many_arguments)]
pub fn run_batches(
    sampler: &Sampler,
    den: &dyn Denoiser,
    sched: &Schedule,
    from: usize,
    to: usize,
    rows: Range<u64>,
    batch: usize,
    noise: NoiseSource,
    start: &mut dyn FnMut(Range<u64>) -> Result<Tensor<2>>,
    watch: &mut dyn Watch,
) -> Result<(Vec<f64>, usize)> {
    let (mut out, mut nfe) = (vec![], 0);
    let n = (rows.end - rows.start) as usize;
    for local in batches(n, batch) {
        let rows = rows.start + local.start..rows.start + local.end;
        let noise = BatchNoise::new(noise, rows.clone());
        let x = start(rows.clone())?;
        let watching = watch.watches_states();
        if watching {
            watch.state(&rows, from as f64, &x)?;
        }
        let mut seen = Ok(());
        let result = samplers::run(sampler, den, sched, x, from, to, &noise, &mut |e| {
            if watching && seen.is_ok() {
                seen = watch.state(&rows, e.t, e.x);
            }
            if seen.is_ok() {
                seen = watch.stepped(&rows, e.step, e.steps, e.x0);
            }
        });
        // A stop asked for by the watch comes before whatever the sampler made of the rest.
        seen?;
        let (x, evals) = result?;
        let d = x.dims()[1].max(1);
        let values = to_vec(&x)?;
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            bail!(
                "sample {} came out {v}: the denoiser gave a non-finite value (a model with NaN or \
                 infinite weights?) or the sampler diverged (try another --sampler, more --nfe or \
                 the default --grid)",
                rows.start + (i / d) as u64
            );
        }
        out.extend(values);
        nfe = evals;
        watch.advance(rows.end - rows.start)?;
    }
    Ok((out, nfe))
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_cover_the_rows_once() {
        let b: Vec<_> = super::batches(10, 4).collect();
        assert_eq!(b, vec![0..4, 4..8, 8..10]);
        assert_eq!(super::batches(3, 0).count(), 3);
    }
}
