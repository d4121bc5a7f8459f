//! One job on its model: the pipeline's `generate` (ours or Stable Diffusion's) with a watch that
//! turns its progress into the job's state (a fraction, the step, a preview of the predicted
//! clean images every few steps) and stops it between steps when the job is cancelled. The
//! images are encoded as `diffuse sample` writes them, so that the page and the command line
//! give the same files for the same settings.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Result, anyhow};
use burn::tensor::Tensor;
use diffuse_core::tensor::to_vec;
use diffuse_data::images::{encode_png, grid, to_pixels};
use diffuse_pipeline::sd::{self, SdRequest, to_rgb8};
use diffuse_pipeline::{Loaded, Report, Request, Watch, eval, generate};

use crate::jobs::{Job, Made, stopped};
use crate::models::{Model, Served};
use crate::request;

/// Pictures in a preview, at most.
const PREVIEWED: usize = 16;

/// Runs `work` on `served`, reporting to `job`.
pub fn execute(served: &Served, job: &Job, work: &request::Job) -> Result<Made> {
    match (&served.model, work) {
        (Model::Ours(model), request::Job::Ours(r)) => ours(served, model, r, job),
        (Model::Sd(pipeline), request::Job::Sd(r)) => stable_diffusion(served, pipeline, r, job),
        _ => Err(anyhow!(
            "internal error: a request for another kind of model"
        )),
    }
}

fn ours(served: &Served, model: &Loaded, request: &Request, job: &Job) -> Result<Made> {
    let shape = model.image_shape();
    let mut watch = Follow::new(job, shape.map(|(h, w)| (h, w, 1)), 0, 0);
    let samples = generate(model, request, &mut watch)?;
    let mut summary = Report::new();
    summary.set("model", served.info.name.clone());
    summary.set("source", served.info.source.clone());
    summary.set("device", served.info.device.clone());
    summary.extend(samples.report(request));
    if !samples.labels.is_empty() {
        summary.set("labels", samples.labels.clone());
    }
    let mut made = Made::default();
    match shape {
        Some((h, w)) => {
            for x in samples.x.chunks(h * w) {
                made.images.push(encode_png(&to_pixels(x), w, h, 1)?);
            }
            // What the shipped judge of the model's data sees, as `diffuse sample` says it.
            if let Some(v) = eval::shipped_verdict(&model.record.data, &samples.x, h, w)? {
                summary.extend(v.report(&samples.labels));
            }
        }
        None => made.points = Some((samples.x.clone(), samples.dim)),
    }
    summary.set("warnings", watch.warnings.clone());
    made.summary = summary.into_map();
    Ok(made)
}

fn stable_diffusion(
    served: &Served,
    pipeline: &sd::StableDiffusion,
    request: &SdRequest,
    job: &Job,
) -> Result<Made> {
    let every = (request.steps / 8).max(1);
    let side = served.info.image.map_or(0, |i| i.0);
    let mut watch = Follow::new(job, None, every, request.steps);
    let out = sd::generate(pipeline, request, &mut watch)?;
    let [_, _, h, w] = out.images.dims();
    let mut made = Made::default();
    for px in to_rgb8(&out.images)? {
        made.images.push(encode_png(&px, w, h, 3)?);
    }
    let mut summary = Report::new();
    summary.set("model", served.info.name.clone());
    summary.set("source", served.info.source.clone());
    summary.set("device", served.info.device.clone());
    summary.set("prompt", request.prompt.clone());
    summary.set("negative_prompt", request.negative_prompt.clone());
    summary.set("sampler", out.sampler.as_str());
    summary.set("steps", request.steps);
    summary.set("timesteps", out.timesteps.clone());
    summary.num("guidance", request.guidance);
    summary.set("seed", request.seed);
    summary.set("n", request.n);
    summary.set("height", request.height.unwrap_or(side));
    summary.set("width", request.width.unwrap_or(side));
    summary.set("nfe", out.nfe);
    summary.set("warnings", watch.warnings.clone());
    made.summary = summary.into_map();
    Ok(made)
}

/// The pipeline's progress, as the job's state.
struct Follow<'a> {
    job: &'a Job,
    /// `(height, width, channels)` of flat image samples to preview from the sampler's steps.
    flat: Option<(usize, usize, usize)>,
    /// Stable Diffusion: decode a preview every this many steps, of so many.
    every: usize,
    steps: usize,
    total: u64,
    done: u64,
    warnings: Vec<String>,
    previews: u64,
}

impl<'a> Follow<'a> {
    fn new(job: &'a Job, flat: Option<(usize, usize, usize)>, every: usize, steps: usize) -> Self {
        Self {
            job,
            flat,
            every,
            steps,
            total: 0,
            done: 0,
            warnings: vec![],
            previews: 0,
        }
    }

    fn check(&self) -> Result<()> {
        if stopped(self.job) {
            return Err(anyhow!("cancelled"));
        }
        Ok(())
    }

    fn show(&mut self, pictures: &[Vec<u8>], w: usize, h: usize, c: usize) -> Result<()> {
        let (px, gw, gh) = grid(pictures, w, h, c, pictures.len().min(8));
        let png = Arc::new(encode_png(&px, gw, gh, c)?);
        self.previews += 1;
        let number = self.previews;
        self.job.update(|s| s.preview = Some((number, png)));
        Ok(())
    }
}

impl Watch for Follow<'_> {
    fn begin(&mut self, _what: &str, total: u64) {
        (self.total, self.done) = (total.max(1), 0);
    }

    fn advance(&mut self, units: u64) -> Result<()> {
        self.done += units;
        let progress = (self.done as f64 / self.total.max(1) as f64).min(1.0);
        self.job.update(|s| s.progress = progress);
        self.check()
    }

    fn stepped(
        &mut self,
        rows: &Range<u64>,
        step: usize,
        steps: usize,
        x0: &Tensor<2>,
    ) -> Result<()> {
        let part = (rows.end - rows.start) as f64 * step as f64 / steps.max(1) as f64;
        let progress = ((self.done as f64 + part) / self.total.max(1) as f64).min(1.0);
        self.job.update(|s| {
            s.progress = progress;
            s.step = Some((step, steps));
        });
        self.check()?;
        // A picture of the prediction every tenth of the run, and at its last step.
        if let Some((h, w, c)) = self.flat
            && rows.start == 0
            && (step.is_multiple_of((steps / 10).max(1)) || step == steps)
        {
            let m = x0.dims()[0].min(PREVIEWED);
            let values = to_vec(&x0.clone().narrow(0, 0, m))?;
            let pictures: Vec<Vec<u8>> = values.chunks(h * w * c).map(to_pixels).collect();
            self.show(&pictures, w, h, c)?;
        }
        Ok(())
    }

    fn stop_flag(&self) -> Option<Arc<AtomicBool>> {
        Some(self.job.stop.clone())
    }

    fn preview_every(&self) -> usize {
        self.every
    }

    fn preview(&mut self, rows: &Range<u64>, step: usize, images: &Tensor<4>) -> Result<()> {
        if rows.start == 0 {
            let [m, _, h, w] = images.dims();
            let pictures = to_rgb8(&images.clone().narrow(0, 0, m.min(PREVIEWED)))?;
            self.show(&pictures, w, h, 3)?;
            let steps = self.steps;
            self.job.update(|s| s.step = Some((step, steps.max(step))));
        }
        self.check()
    }

    fn warn(&mut self, message: &str) {
        self.warnings.push(message.to_string());
        let m = message.to_string();
        self.job.update(|s| s.warnings.push(m));
    }
}
