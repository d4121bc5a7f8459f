//! The wgpu backend against the CPU, for the same seed: training an MLP, sampling a learned
//! model and undiffusing an exact mixture. Built only with `--features wgpu`; on a machine
//! without a GPU it runs on lavapipe (Debian's mesa-vulkan-drivers: Vulkan on the CPU, with
//! `XDG_RUNTIME_DIR` set to a private folder).
//!
//! Tolerances: both backends compute in f32 and differ only in the order of their sums (a
//! matrix product of width k has relative error ~ sqrt(k) 2^-24, 5e-7 at k = 64); training
//! compounds that over its steps, sampling over its network evaluations, hence 1e-5 for values
//! of order 1. Measured on lavapipe: losses over 60 steps 3.6e-7 apart, samples 6e-7; an
//! exact mixture's samples are equal (its f64 denoiser runs on the CPU either way, and the
//! sampler's element-wise f32 updates round the same on both).
#![cfg(feature = "wgpu")]

use std::path::PathBuf;

use diffuse_core::device;
use diffuse_core::samplers::{SamplerName, SamplerSpec};
use diffuse_pipeline::{
    Prior, Request, Silent, TrainRun, Undiffusion, generate, load_on, train, undiffuse,
};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("diffuse-wgpu-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn gpu() -> burn::tensor::Device {
    device::parse("wgpu").unwrap()
}

/// The same run trained on the CPU and on wgpu: the same losses step by step and the same
/// samples from each model on each device.
#[test]
fn training_and_sampling_on_wgpu_agree_with_the_cpu() {
    let run = |device, name: &str| {
        let r = TrainRun {
            hidden: 64,
            depth: 2,
            batch: 128,
            timesteps: 100,
            device,
            ..TrainRun::new("spiral", 60)
        };
        let dir = tmp(name);
        let report = train(&r, &dir, &mut Silent).unwrap();
        let losses: Vec<f64> = report.losses.iter().map(|(_, l)| *l).collect();
        (losses, dir)
    };
    let (cpu_losses, cpu_dir) = run(device::cpu(), "cpu");
    let (gpu_losses, gpu_dir) = run(gpu(), "gpu");
    let loss_gap = max_abs(&cpu_losses, &gpu_losses);
    eprintln!("largest loss difference over 60 steps: {loss_gap:e}");
    assert!(loss_gap < 1e-5, "losses differ by {loss_gap}");

    let draw = |dir: &PathBuf, dev: &burn::tensor::Device| {
        let model = load_on(dir, dev).unwrap();
        let request = Request {
            sampler: SamplerSpec::new(SamplerName::Unipc).with_nfe(10),
            ..Request::new(500)
        };
        generate(&model, &request, &mut Silent).unwrap().x
    };
    // The CPU's model sampled on both devices: only the arithmetic differs.
    let same_model = max_abs(&draw(&cpu_dir, &device::cpu()), &draw(&cpu_dir, &gpu()));
    eprintln!("one model, sampled on each device: {same_model:e}");
    assert!(same_model < 1e-5, "samples differ by {same_model}");
    // Each device's own model on its own device: what a user on either gets.
    let own = max_abs(&draw(&cpu_dir, &device::cpu()), &draw(&gpu_dir, &gpu()));
    eprintln!("each device's model on its device: {own:e}");
    assert!(own < 1e-5, "samples differ by {own}");
    let _ = std::fs::remove_dir_all(cpu_dir);
    let _ = std::fs::remove_dir_all(gpu_dir);
}

/// An exact mixture's denoiser computes in f64 on the CPU and hands its result to the device:
/// the samples agree to float32 round-off.
#[test]
fn undiffusion_on_wgpu_agrees_with_the_cpu() {
    let run = |dev| {
        let u = Undiffusion {
            data: "8gaussians".into(),
            schedule: "linear:1e-4:0.02".into(),
            steps: 1000,
            from: None,
            to: 0,
            prior: Prior::Normal,
            n: 300,
            batch: 300,
            sampler: SamplerSpec::new(SamplerName::DpmPP2M)
                .with_nfe(10)
                .with_grid(diffuse_core::samplers::GridKind::Karras { rho: 7.0 }),
            reference: 500,
            seed: 3,
            device: dev,
        };
        undiffuse(&u, &mut Silent).unwrap().x
    };
    let gap = max_abs(&run(device::cpu()), &run(gpu()));
    eprintln!("undiffuse, 10 steps: {gap:e}");
    assert!(gap < 1e-5, "samples differ by {gap}");
}
