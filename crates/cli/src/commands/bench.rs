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
    out.set("sample_n", a.sample_n);
    out.set("repeats", a.repeats);
    let path = out.finish()?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        println!("{text}");
    }
    done(&path);
    Ok(())
}
