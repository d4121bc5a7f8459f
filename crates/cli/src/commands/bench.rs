//! `diffuse bench`: seed 003's model (3 x 256 ReLU MLP on 2-D data, T = 1000, Adam 1e-3) timed
//! for training steps and for sampling with 1000 DDPM steps; bench/run.sh runs the same in
//! PyTorch on the same machine and prints the ratios.

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use diffuse_core::samplers::{self, BatchNoise, Sampler, Variance};
use diffuse_core::tensor::to_vec;
use diffuse_core::{NoiseSource, Schedule, device};
use diffuse_data::Dataset;
use diffuse_nn::{Activation, LearnedDenoiser, MlpConfig, ModelConfig, TimeEncoding, TrainConfig};
use serde_json::json;

use super::{done, positive};
use crate::args::BenchArgs;
use crate::output::Output;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The shipped Fashion-MNIST model's architecture (28x28, prompt-conditioned on 384-wide
/// embeddings): training steps per second at batch 64 on random images and prompts, and the
/// seconds to sample 100 images with 20-NFE DPM-Solver++(2M) at guidance 3 (two forwards per
/// step), each the median of the repeats.
fn unet(a: &BenchArgs, noise: &NoiseSource) -> Result<(f64, f64)> {
    use diffuse_nn::UNetConfig;
    let cfg: ModelConfig = UNetConfig {
        channels: a.unet_channels,
        text: 384,
        ..UNetConfig::small(28, 28, 0)
    }
    .into();
    let sched = Schedule::linear(1e-4, 0.02, 1000)?;
    let d = 28 * 28;
    let prompts: Vec<Vec<Vec<f32>>> = (0..10)
        .map(|c| {
            let e = noise.normals(diffuse_core::Stream::Other, 7, c..c + 1, 384);
            vec![e.iter().map(|v| *v as f32 / 20.0).collect()]
        })
        .collect();
    let draw = |rows: std::ops::Range<u64>| {
        let x: Vec<f64> = noise
            .uniforms(
                diffuse_core::Stream::Other,
                8,
                rows.start * d as u64..rows.end * d as u64,
            )
            .iter()
            .map(|u| 2.0 * u - 1.0)
            .collect();
        let labels = rows.map(|r| (r % 10) as usize).collect();
        (x, Some(labels))
    };
    let (mut rates, mut times) = (vec![], vec![]);
    let mut model = None;
    for _ in 0..a.repeats {
        let tc = TrainConfig {
            steps: a.unet_steps,
            batch: 64,
            lr: 1e-3,
            weight_decay: None,
            clip: Some(1.0),
            seed: a.common.seed,
            label_dropout: 0.1,
            prompts: prompts.clone(),
            target: diffuse_core::Target::Eps,
        };
        let start = Instant::now();
        let m = diffuse_nn::train(&cfg, None, &sched, &draw, &tc, 0, None, &mut |_, _| {})?;
        rates.push(a.unet_steps as f64 / start.elapsed().as_secs_f64());
        model = Some(m);
    }
    let dev = device::default_device();
    let model = model.map_or_else(|| cfg.init(&dev), |m| m.valid());
    let den = LearnedDenoiser::with_text(model, d, 1000, 384)
        .prompted(prompts[3][0].clone(), 3.0)?
        .clipped(-1.0, 1.0);
    let chosen = samplers::Sampler::Sigma {
        method: samplers::SigmaMethod::DpmPP2M,
        grid: samplers::GridKind::Karras { rho: 7.0 },
        steps: 20,
        range: samplers::SigmaRange::FULL,
    };
    for _ in 0..a.repeats {
        let batch = BatchNoise::new(*noise, 0..100);
        let start = Instant::now();
        let (x, _) = samplers::run(
            &chosen,
            &den,
            &sched,
            batch.prior(d, &dev),
            1000,
            0,
            &batch,
            &mut samplers::silent,
        )?;
        let _ = to_vec(&x)?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok((median(rates), median(times)))
}

/// `diffuse bench`.
pub fn run(a: &BenchArgs) -> Result<()> {
    positive("--train-steps", a.train_steps)?;
    positive("--sample-n", a.sample_n)?;
    positive("--repeats", a.repeats)?;
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
    let noise = NoiseSource::new(a.common.seed);
    let draw = |rows: std::ops::Range<u64>| (data.sample(&noise, rows), None);
    let mut out = Output::new(a.common.out.as_deref(), "bench")?;
    let mut train = serde_json::Map::new();
    let mut model = None;
    for &b in &a.batches {
        positive("--batches", b)?;
        let mut rates = vec![];
        for _ in 0..a.repeats {
            let tc = TrainConfig {
                steps: a.train_steps,
                batch: b,
                lr: 1e-3,
                weight_decay: None,
                clip: None,
                seed: a.common.seed,
                label_dropout: 0.0,
                prompts: vec![],
                target: diffuse_core::Target::Eps,
            };
            let start = Instant::now();
            let m = diffuse_nn::train(
                &cfg.clone().into(),
                None,
                &sched,
                &draw,
                &tc,
                0,
                None,
                &mut |_, _| {},
            )?;
            rates.push(a.train_steps as f64 / start.elapsed().as_secs_f64());
            model = Some(m);
        }
        let r = median(rates);
        eprintln!("train, batch {b}: {r:.0} steps/s");
        train.insert(b.to_string(), json!(r));
    }
    let dev = device::default_device();
    let den = LearnedDenoiser::new(
        model.map_or_else(|| ModelConfig::from(cfg.clone()).init(&dev), |m| m.valid()),
        2,
        1000,
        0,
    );
    let mut times = vec![];
    for _ in 0..a.repeats {
        let batch = BatchNoise::new(noise, 0..a.sample_n as u64);
        let start = Instant::now();
        let (x, _) = samplers::run(
            &Sampler::Ddpm(Variance::Beta),
            &den,
            &sched,
            batch.prior(2, &dev),
            1000,
            0,
            &batch,
            &mut samplers::silent,
        )?;
        let _ = to_vec(&x)?;
        times.push(start.elapsed().as_secs_f64());
    }
    let t = median(times);
    eprintln!("sample {} points, 1000 DDPM steps: {t:.2} s", a.sample_n);
    out.set("train_steps_per_second", serde_json::Value::Object(train));
    out.num("sample_seconds", t);
    if a.unet_steps > 0 {
        let (train_rate, sample_s) = unet(a, &noise)?;
        eprintln!(
            "UNet ({} channels, 28x28, prompt-conditioned): train, batch 64: {train_rate:.2} steps/s; \
             sample 100 images, 20-NFE DPM-Solver++(2M), guidance 3: {sample_s:.1} s",
            a.unet_channels
        );
        out.num("unet_train_steps_per_second", train_rate);
        out.num("unet_sample_100_seconds", sample_s);
        out.set("unet_channels", a.unet_channels);
    }
    out.set("sample_n", a.sample_n);
    out.set("repeats", a.repeats);
    let path = out.finish()?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        println!("{text}");
    }
    done(&path);
    Ok(())
}
