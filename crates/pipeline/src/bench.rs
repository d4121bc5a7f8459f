//! The timing protocol `bench/run.sh` compares with PyTorch: seed 003's model (3 x 256 ReLU MLP
//! on 2-D data, T = 1000, Adam 1e-3) for training steps and 1000-step DDPM sampling, and the
//! shipped Fashion-MNIST UNet's architecture for training and guided sampling. Each time is the
//! median of the repeats.

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::Device;
use diffuse_core::samplers::{
    self, BatchNoise, Ends, GridKind, Sampler, SigmaMethod, SigmaRange, Variance,
};
use diffuse_core::tensor::to_vec;
use diffuse_core::{Clipped, Condition, Denoiser, Guided, NoiseSource, Schedule, Stream, Target};
use diffuse_data::Dataset;
use diffuse_nn::{
    Activation, LearnedDenoiser, MlpConfig, ModelConfig, TimeEncoding, TrainConfig, UNetConfig,
};
use serde_json::json;

use crate::positive;
use crate::report::Report;

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchRun {
    /// Training steps timed at each batch size.
    pub train_steps: usize,
    /// Batch sizes to time.
    pub batches: Vec<usize>,
    /// Points sampled with 1000 DDPM steps.
    pub sample_n: usize,
    /// Repetitions; the median is reported.
    pub repeats: usize,
    /// Training steps of the image UNet timed (0: skip the UNet).
    pub unet_steps: usize,
    /// Channels of the timed UNet.
    pub unet_channels: usize,
    /// Seed.
    pub seed: u64,
    /// Where to train and sample.
    pub device: Device,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn train_config(steps: usize, batch: usize, seed: u64, device: &Device) -> TrainConfig {
    TrainConfig {
        steps,
        batch,
        lr: 1e-3,
        weight_decay: None,
        clip: None,
        seed,
        label_dropout: 0.0,
        prompt_noise: 0.0,
        prompts: vec![],
        target: Target::Eps,
        device: device.clone(),
        parallel: Default::default(),
    }
}

/// The median seconds of `repeats` runs of `sampler` on `n` samples of dimension `d` from the
/// prior over the schedule's 1000 steps, read back to the host.
fn time_sampling(
    sampler: &Sampler,
    den: &dyn Denoiser,
    sched: &Schedule,
    n: usize,
    d: usize,
    repeats: usize,
    noise: &NoiseSource,
    dev: &Device,
) -> Result<f64> {
    let mut times = vec![];
    for _ in 0..repeats {
        let batch = BatchNoise::new(*noise, 0..n as u64);
        let start = Instant::now();
        let (x, _) = samplers::run(
            sampler,
            den,
            sched,
            batch.prior(d, dev),
            1000,
            0,
            &batch,
            &mut samplers::silent,
        )?;
        let _ = to_vec(&x)?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

/// The shipped Fashion-MNIST model's architecture (28x28, prompt-conditioned on 384-wide
/// embeddings): training steps per second at batch 64 on random images and prompts, and the
/// seconds to sample 100 images with 20-NFE DPM-Solver++(2M) at guidance 3 (two forwards per
/// step).
fn unet(b: &BenchRun, noise: &NoiseSource) -> Result<(f64, f64)> {
    let cfg: ModelConfig = UNetConfig {
        channels: b.unet_channels,
        text: 384,
        ..UNetConfig::small(28, 28, 0)
    }
    .into();
    let sched = Schedule::linear(1e-4, 0.02, 1000)?;
    let d = 28 * 28;
    let prompts: Vec<Vec<Vec<f32>>> = (0..10)
        .map(|c| {
            let e = noise.normals(Stream::Other, 7, c..c + 1, 384);
            vec![e.iter().map(|v| *v as f32 / 20.0).collect()]
        })
        .collect();
    let draw = |rows: std::ops::Range<u64>| {
        let x: Vec<f64> = noise
            .uniforms(Stream::Other, 8, rows.start * d as u64..rows.end * d as u64)
            .iter()
            .map(|u| 2.0 * u - 1.0)
            .collect();
        let labels = rows.map(|r| (r % 10) as usize).collect();
        (x, Some(labels))
    };
    let mut rates = vec![];
    let mut model = None;
    for _ in 0..b.repeats {
        let tc = TrainConfig {
            clip: Some(1.0),
            label_dropout: 0.1,
            prompt_noise: 0.0,
            prompts: prompts.clone(),
            ..train_config(b.unet_steps, 64, b.seed, &b.device)
        };
        let start = Instant::now();
        let m = diffuse_nn::train(
            &cfg,
            None,
            &sched,
            &draw,
            &tc,
            0,
            None,
            &mut |_, _| Ok(()),
            None,
        )?;
        rates.push(b.unet_steps as f64 / start.elapsed().as_secs_f64());
        model = Some(m);
    }
    let model = model.map_or_else(|| cfg.init(&b.device), |m| m.valid());
    let learned = LearnedDenoiser::with_text(model, d, 1000, 384);
    let prompt = Condition::Vector(prompts[3][0].clone());
    let den = Clipped::new(Guided::new(&learned, prompt, 3.0), -1.0, 1.0);
    let chosen = Sampler::Sigma {
        method: SigmaMethod::DpmPP2M,
        grid: GridKind::Karras { rho: 7.0 },
        steps: 20,
        range: SigmaRange::FULL,
        ends: Ends::Plain,
    };
    let seconds = time_sampling(&chosen, &den, &sched, 100, d, b.repeats, noise, &b.device)?;
    Ok((median(rates), seconds))
}

/// Runs the timings; `say` hears one line per result as it comes.
pub fn bench(b: &BenchRun, say: &mut dyn FnMut(String)) -> Result<Report> {
    positive("--train-steps", b.train_steps)?;
    positive("--sample-n", b.sample_n)?;
    positive("--repeats", b.repeats)?;
    let sched = Schedule::linear(1e-4, 0.02, 1000)?;
    let cfg = MlpConfig {
        dim: 2,
        hidden: 256,
        depth: 3,
        activation: Activation::Relu,
        classes: 0,
        time: TimeEncoding::Appended,
    };
    let data = Dataset::parse("spiral")?;
    let noise = NoiseSource::new(b.seed);
    let draw = |rows: std::ops::Range<u64>| (data.sample(&noise, rows), None);
    let mut out = Report::new();
    let mut train = serde_json::Map::new();
    let mut model = None;
    for &size in &b.batches {
        positive("--batches", size)?;
        let mut rates = vec![];
        for _ in 0..b.repeats {
            let tc = train_config(b.train_steps, size, b.seed, &b.device);
            let start = Instant::now();
            let m = diffuse_nn::train(
                &cfg.clone().into(),
                None,
                &sched,
                &draw,
                &tc,
                0,
                None,
                &mut |_, _| Ok(()),
                None,
            )?;
            rates.push(b.train_steps as f64 / start.elapsed().as_secs_f64());
            model = Some(m);
        }
        let r = median(rates);
        say(format!("train, batch {size}: {r:.0} steps/s"));
        train.insert(size.to_string(), json!(r));
    }
    let den = LearnedDenoiser::new(
        model.map_or_else(
            || ModelConfig::from(cfg.clone()).init(&b.device),
            |m| m.valid(),
        ),
        2,
        1000,
        0,
    );
    let ddpm = Sampler::Ddpm(Variance::Beta);
    let t = time_sampling(
        &ddpm, &den, &sched, b.sample_n, 2, b.repeats, &noise, &b.device,
    )?;
    say(format!(
        "sample {} points, 1000 DDPM steps: {t:.2} s",
        b.sample_n
    ));
    out.set("train_steps_per_second", serde_json::Value::Object(train));
    out.num("sample_seconds", t);
    if b.unet_steps > 0 {
        let (train_rate, sample_s) = unet(b, &noise)?;
        say(format!(
            "UNet ({} channels, 28x28, prompt-conditioned): train, batch 64: {train_rate:.2} steps/s; \
             sample 100 images, 20-NFE DPM-Solver++(2M), guidance 3: {sample_s:.1} s",
            b.unet_channels
        ));
        out.num("unet_train_steps_per_second", train_rate);
        out.num("unet_sample_100_seconds", sample_s);
        out.set("unet_channels", b.unet_channels);
    }
    out.set("sample_n", b.sample_n);
    out.set("repeats", b.repeats);
    Ok(out)
}
