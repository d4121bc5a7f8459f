//! The wgpu backend against the CPU, for the same seed: training and sampling an MLP and a pixel
//! UNet, training the classifier that judges images, undiffusing an exact mixture, and Stable Diffusion's tiny pipelines (against diffusers'
//! own numbers, and with loss guidance, whose gradient runs on the device). Built only with `--features wgpu`; on a machine
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

mod common;

use std::path::PathBuf;

use burn::tensor::Tensor;
use diffuse_core::device;
use diffuse_core::likelihood::LikelihoodConfig;
use diffuse_core::samplers::{SamplerName, SamplerSpec};
use diffuse_nn::Conditioning;
use diffuse_pipeline::eval::{ClassifierRun, train_classifier};
use diffuse_pipeline::sd::{ImageLoss, LossGuide, SdRequest, StableDiffusion};
use diffuse_pipeline::{
    Ask, Density, Prior, Request, Silent, TrainRun, Undiffusion, generate, load_on,
    log_likelihoods, train, undiffuse,
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

/// The largest difference between two pictures' tensors, wherever each is.
fn max_abs_f32(a: Tensor<4>, b: Tensor<4>) -> f32 {
    let a: Vec<f32> = a.into_data().try_to_vec::<f32>().unwrap();
    let b: Vec<f32> = b.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
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

    // `diffuse nll --model`: the density loads on the device its points go to (it once loaded
    // on the CPU and sent the points to wgpu: "input tensor `rhs` is on the wrong backend").
    let points = draw(&cpu_dir, &device::cpu());
    let config = LikelihoodConfig {
        steps: 8,
        ..LikelihoodConfig::default()
    };
    let on_gpu = Density::of_model(&cpu_dir).unwrap();
    assert_eq!(
        on_gpu.device,
        gpu(),
        "a wgpu build computes likelihoods on wgpu"
    );
    let on_cpu = Density {
        denoiser: Box::new(load_on(&cpu_dir, &device::cpu()).unwrap().denoiser),
        device: device::cpu(),
        ..Density::of_model(&cpu_dir).unwrap()
    };
    let ll = |d: &Density| {
        log_likelihoods(d, &points[..200], 2, config, 50, 1, &mut Silent)
            .unwrap()
            .ll
    };
    // The divergence is a central difference of eps-hat over h = 1e-3 sqrt(sigma^2 + 0.01), so
    // the devices' ~1e-6 apart eps-hats (as the samples above) become ~1e-6 / 2h = 5e-4 apart
    // divergences, weighted by sigma du in the integral; their errors have random signs.
    // Measured on lavapipe: 9.9e-5.
    let ll_gap = max_abs(&ll(&on_cpu), &ll(&on_gpu));
    eprintln!("log-likelihoods of 100 points, CPU against wgpu: {ll_gap:e}");
    assert!(ll_gap < 1e-3, "log-likelihoods differ by {ll_gap}");
    let _ = std::fs::remove_dir_all(cpu_dir);
    let _ = std::fs::remove_dir_all(gpu_dir);
}

/// An exact mixture's denoiser computes in f64 on the CPU and hands its result to the device:
/// the samples agree to float32 round-off, on a grid given and on the grid fitted by default at
/// few steps (whose pilot runs on the CPU, so every device runs the same grid).
#[test]
fn undiffusion_on_wgpu_agrees_with_the_cpu() {
    use diffuse_core::samplers::GridKind;
    for grid in [Some(GridKind::Karras { rho: 7.0 }), None] {
        let run = |dev| {
            let mut sampler = SamplerSpec::new(SamplerName::DpmPP2M).with_nfe(10);
            if let Some(g) = grid.clone() {
                sampler = sampler.with_grid(g);
            }
            let u = Undiffusion {
                data: "8gaussians".into(),
                schedule: "linear:1e-4:0.02".into(),
                steps: 1000,
                from: None,
                to: 0,
                prior: Prior::Normal,
                n: 300,
                batch: 300,
                sampler,
                reference: 500,
                seed: 3,
                device: dev,
            };
            undiffuse(&u, &mut Silent).unwrap().x
        };
        let gap = max_abs(&run(device::cpu()), &run(gpu()));
        eprintln!("undiffuse, 10 steps, grid {grid:?}: {gap:e}");
        assert!(gap < 1e-5, "samples differ by {gap}");
    }
}

/// A pixel UNet (GroupNorm, SiLU, attention, strided and transposed paths) trained for a few
/// steps on each device from the same seed, then each model sampled on its own device with a
/// label and guidance. Wider sums than the MLP's (3x3 convolutions over 8 channels: k = 72)
/// and a deeper network, so 1e-4 on pixels in [-1, 1].
#[test]
fn a_pixel_unet_on_wgpu_agrees_with_the_cpu() {
    // Two classes of 8x8 pictures: a bright bar at the top or at the bottom.
    let images = tmp("unet-images");
    for (class, y0) in [("top", 1usize), ("bottom", 5)] {
        std::fs::create_dir_all(images.join(class)).unwrap();
        for k in 0..4u8 {
            let mut px = vec![20 * k; 64];
            for y in y0..y0 + 2 {
                for x in 1..7 {
                    px[y * 8 + x] = 180 + 10 * k;
                }
            }
            let path = images.join(class).join(format!("{k}.png"));
            diffuse_data::images::write_png(&path, &px, 8, 8, 1).unwrap();
        }
    }
    let run = |dev, name: &str| {
        let r = TrainRun {
            model: "unet".into(),
            channels: 8,
            batch: 8,
            timesteps: 100,
            cond: Conditioning::Label,
            device: dev,
            ..TrainRun::new(&format!("images:{}", images.display()), 5)
        };
        let dir = tmp(name);
        let report = train(&r, &dir, &mut Silent).unwrap();
        let losses: Vec<f64> = report.losses.iter().map(|(_, l)| *l).collect();
        (losses, dir)
    };
    let (cpu_losses, cpu_dir) = run(device::cpu(), "unet-cpu");
    let (gpu_losses, gpu_dir) = run(gpu(), "unet-gpu");
    let loss_gap = max_abs(&cpu_losses, &gpu_losses);
    // Measured on lavapipe: equal to the last bit over the 5 steps (the run is on the device:
    // the loss tensors are wgpu's), while the sampling below differs by ~3e-6.
    eprintln!("UNet: largest loss difference over 5 steps: {loss_gap:e}");
    assert!(loss_gap < 1e-4, "losses differ by {loss_gap}");
    let draw = |dir: &PathBuf, dev: &burn::tensor::Device| {
        let model = load_on(dir, dev).unwrap();
        let sampler = SamplerSpec::new(SamplerName::DpmPP2M).with_nfe(6);
        let request = Request::for_model(
            &model,
            Ask::Label("top".into()),
            Some(6),
            Some(3.0),
            sampler,
        );
        generate(&model, &request, &mut Silent).unwrap().x
    };
    let gap = max_abs(&draw(&cpu_dir, &device::cpu()), &draw(&gpu_dir, &gpu()));
    eprintln!("UNet: each device's model sampled on its device: {gap:e}");
    assert!(gap < 1e-4, "samples differ by {gap}");
    for dir in [images, cpu_dir, gpu_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `diffuse classifier` trained on each device from the same seed (its weights drawn on the CPU,
/// its batches on the host): the same weights, seen through its features of every digit on the
/// CPU, and the same test accuracy.
#[test]
fn a_classifier_trained_on_wgpu_agrees_with_the_cpu() {
    let run = |dev, name: &str| {
        let r = ClassifierRun {
            data: "digits".into(),
            test_data: Some("digits".into()),
            steps: 30,
            batch: 32,
            lr: 1e-3,
            channels: 8,
            seed: 3,
            device: dev,
        };
        let dir = tmp(name);
        let report = train_classifier(&r, &dir, &mut Silent).unwrap().into_map();
        (report, dir)
    };
    let (cpu_report, cpu_dir) = run(device::cpu(), "classifier-cpu");
    let (gpu_report, gpu_dir) = run(gpu(), "classifier-gpu");
    let number = |r: &serde_json::Map<String, serde_json::Value>, k: &str| r[k].as_f64().unwrap();
    let loss_gap = (number(&cpu_report, "final_loss_mean_of_last_100")
        - number(&gpu_report, "final_loss_mean_of_last_100"))
    .abs();
    eprintln!("classifier: mean loss difference over 30 steps: {loss_gap:e}");
    let set = diffuse_data::images::digits().unwrap();
    let x: Vec<f64> = (0..set.len()).flat_map(|i| set.unit_row(i)).collect();
    let judge = |dir: &PathBuf| {
        let (model, _) = diffuse_nn::load_classifier(dir, &device::cpu()).unwrap();
        diffuse_nn::classify(&model, &x, set.dim(), &device::cpu()).unwrap()
    };
    let ((cpu_classes, cpu_features), (gpu_classes, gpu_features)) =
        (judge(&cpu_dir), judge(&gpu_dir));
    let gap = max_abs(&cpu_features.concat(), &gpu_features.concat());
    let differ = cpu_classes
        .iter()
        .zip(&gpu_classes)
        .filter(|(a, b)| a != b)
        .count();
    eprintln!(
        "classifier: features of {} digits {gap:e} apart, {differ} classes differ",
        set.len()
    );
    // Measured on lavapipe: mean losses 4.8e-8 apart, features 3.8e-7, no class differs.
    assert!(loss_gap < 1e-5, "losses differ by {loss_gap}");
    assert!(gap < 1e-5, "features differ by {gap}");
    assert_eq!(
        number(&cpu_report, "test_accuracy"),
        number(&gpu_report, "test_accuracy")
    );
    for dir in [cpu_dir, gpu_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `--model vae` then `--model latent` (a latent text-to-image model on MiniLM's token states)
/// trained on each device from the same seed: the same losses step by step.
#[test]
fn vae_and_latent_training_on_wgpu_agree_with_the_cpu() {
    // Two classes of 16x16 pictures: a bright square on the left or on the right.
    let images = tmp("latent-images");
    for (class, x0) in [("left", 2usize), ("right", 9)] {
        std::fs::create_dir_all(images.join(class)).unwrap();
        for k in 0..4u8 {
            let mut px = vec![10 * k; 256];
            for y in 4..12 {
                for x in x0..x0 + 5 {
                    px[y * 16 + x] = 150 + 20 * k;
                }
            }
            let path = images.join(class).join(format!("{k}.png"));
            diffuse_data::images::write_png(&path, &px, 16, 16, 1).unwrap();
        }
    }
    let data = format!("images:{}", images.display());
    let losses = |dir: &PathBuf, run: &TrainRun| -> Vec<f64> {
        let r = train(run, dir, &mut Silent).unwrap();
        r.losses.iter().map(|(_, l)| *l).collect()
    };
    let mut dirs = vec![images.clone()];
    let mut runs = vec![];
    for (dev, name) in [(device::cpu(), "cpu"), (gpu(), "gpu")] {
        let vae_dir = tmp(&format!("vae-{name}"));
        let vae = losses(
            &vae_dir,
            &TrainRun {
                model: "vae".into(),
                channels: 4,
                batch: 4,
                device: dev.clone(),
                ..TrainRun::new(&data, 3)
            },
        );
        let latent_dir = tmp(&format!("latent-{name}"));
        let latent = losses(
            &latent_dir,
            &TrainRun {
                model: "latent".into(),
                channels: 8,
                batch: 4,
                vae: Some(vae_dir.display().to_string()),
                device: dev,
                ..TrainRun::new(&data, 3)
            },
        );
        dirs.extend([vae_dir, latent_dir]);
        runs.push((vae, latent));
    }
    let vae_gap = max_abs(&runs[0].0, &runs[1].0);
    let latent_gap = max_abs(&runs[0].1, &runs[1].1);
    eprintln!(
        "VAE losses over 3 steps: {vae_gap:e}; latent UNet losses over 3 steps: {latent_gap:e}"
    );
    // The VAE's loss sums squared errors over the picture (of order 10-100): 1e-4 relative.
    let vae_size = runs[0].0.iter().fold(1.0, |m: f64, l| m.max(l.abs()));
    assert!(vae_gap < 1e-4 * vae_size, "VAE losses differ by {vae_gap}");
    assert!(
        latent_gap < 1e-4,
        "latent UNet losses differ by {latent_gap}"
    );
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Stable Diffusion's tiny SD 1.x- and 2.x-style pipelines loaded on wgpu: the same runs as
/// tests/sd_runs.rs (4 guided steps from injected latents, one per sampler) against diffusers,
/// within the same tolerances as on the CPU.
#[test]
fn stable_diffusion_on_wgpu_matches_diffusers() {
    common::check_runs(&common::tiny("tiny-sd1"), &gpu(), 1e-4, 1e-4);
    common::check_runs(&common::tiny("tiny-sd2"), &gpu(), 1e-4, 1e-4);
}

/// The shipped latent text-to-image model trained here (`colour-fashion`: MiniLM's token states,
/// a latent UNet and a VAE) drawn on each device from the same seed.
#[test]
fn a_latent_model_trained_here_on_wgpu_agrees_with_the_cpu() {
    let Some(shipped) = diffuse_pipeline::shipped::PIPELINES
        .iter()
        .find(|p| p.name == "colour-fashion")
    else {
        panic!("colour-fashion ships");
    };
    let scratch = tmp("colour-fashion");
    let folder = shipped.unpack_in(&scratch).unwrap();
    let run = |dev: &burn::tensor::Device| {
        let sd = StableDiffusion::load(&folder, dev).unwrap();
        let mut r = SdRequest::for_pipeline(&sd, "a red sneaker");
        r.steps = 4;
        r.n = 2;
        r.batch = 2;
        r.seed = 1;
        diffuse_pipeline::sd::generate(&sd, &r, &mut Silent)
            .unwrap()
            .images
    };
    let gap = max_abs_f32(run(&device::cpu()), run(&gpu()));
    eprintln!("colour-fashion pictures, CPU against wgpu: {gap:e}");
    assert!(gap < 1e-4, "pictures differ by {gap}");
    let _ = std::fs::remove_dir_all(scratch);
}

/// Loss guidance (seed 002's blue loss): its gradient through the VAE decoder runs on the
/// device, and the guided pictures agree with the CPU's.
#[test]
fn loss_guidance_on_wgpu_agrees_with_the_cpu() {
    let run = |dev: &burn::tensor::Device| {
        let sd = StableDiffusion::load(&common::tiny("tiny-sd1"), dev).unwrap();
        let mut r = SdRequest::new("a photo of an octopus");
        r.sampler = Some(SamplerName::Lms);
        r.steps = 4;
        r.n = 2;
        r.batch = 2;
        r.loss = Some(LossGuide {
            loss: ImageLoss::parse("blue").unwrap(),
            scale: 1000.0,
            every: 1,
        });
        diffuse_pipeline::sd::generate(&sd, &r, &mut Silent)
            .unwrap()
            .images
    };
    let gap = max_abs_f32(run(&device::cpu()), run(&gpu()));
    eprintln!("loss-guided pictures, CPU against wgpu: {gap:e}");
    assert!(gap < 1e-4, "pictures differ by {gap}");
}
