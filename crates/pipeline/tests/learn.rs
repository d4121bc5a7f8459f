//! The pipeline's own behaviour, through its library API: training runs with every target, a
//! weight average and resume; guidance towards a prompt or a label; what it refuses.

use std::path::{Path, PathBuf};

use diffuse_core::samplers::{SamplerName, SamplerSpec};
use diffuse_core::{NoiseSource, Stream, Target};
use diffuse_nn::Conditioning;
use diffuse_pipeline::{Ask, Request, Silent, TrainRun, generate, load, train};

/// A fresh, empty folder for one test.
fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("diffuse-pipeline-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small MLP on `data` (T = 100 or 200, 2 x `hidden`, batch 128).
fn small(data: &str, timesteps: usize, hidden: usize, steps: usize) -> TrainRun {
    TrainRun {
        timesteps,
        hidden,
        depth: 2,
        batch: 128,
        ..TrainRun::new(data, steps)
    }
}

fn sample(dir: &Path, n: usize, sampler: SamplerSpec, ask: Ask, guidance: f64) -> Vec<f64> {
    let model = load(dir).unwrap();
    let request = Request {
        sampler,
        ask,
        guidance,
        ..Request::new(n)
    };
    generate(&model, &request, &mut Silent).unwrap().x
}

/// Models trained to predict eps, x0 or v all sample the two points, with DDPM and
/// DPM-Solver++: every prediction is converted to the form each sampler uses.
#[test]
fn every_prediction_target_trains_and_samples() {
    let dir = tmp("targets");
    for target in [Target::Eps, Target::X0, Target::V] {
        let m = dir.join(target.as_str());
        let run = TrainRun {
            target,
            ..small("delta:-1,1", 100, 64, 1500)
        };
        train(&run, &m, &mut Silent).unwrap();
        for spec in [
            SamplerSpec::new(SamplerName::Ddpm),
            SamplerSpec::new(SamplerName::DpmPP2M).with_nfe(20),
        ] {
            let x = sample(&m, 1000, spec.clone(), Ask::Nothing, 1.0);
            let near = x
                .iter()
                .filter(|v| (*v - 1.0).abs().min((*v + 1.0).abs()) < 0.3)
                .count() as f64
                / 1000.0;
            let left = x.iter().filter(|v| **v < 0.0).count() as f64 / 1000.0;
            // Binomial(1000, 1/2): 5 standard errors are 0.079.
            assert!(
                near > 0.95 && (left - 0.5).abs() < 0.079,
                "{target:?} {}: {near} near the points, {left} left",
                spec.name
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With an average the folder holds the averaged weights for sampling and the raw ones for
/// resuming; a resume must name the same average.
#[test]
fn ema_weights_are_sampled_and_resumed() {
    let m = tmp("ema");
    let run = TrainRun {
        ema: Some(0.99),
        ..small("delta:-1,1", 100, 64, 1000)
    };
    train(&run, &m, &mut Silent).unwrap();
    assert!(m.join("raw.safetensors").exists());
    assert_ne!(
        std::fs::read(m.join("raw.safetensors")).unwrap(),
        std::fs::read(m.join("model.safetensors")).unwrap()
    );
    let more = TrainRun {
        steps: 200,
        resume: true,
        ..run.clone()
    };
    let r = train(&more, &m, &mut Silent).unwrap();
    assert_eq!(r.record.expect("a denoiser record").trained_steps, 1200);
    assert_eq!(r.losses.len(), 1200);
    let x = sample(
        &m,
        1000,
        SamplerSpec::new(SamplerName::Ddpm),
        Ask::Nothing,
        1.0,
    );
    let near = x
        .iter()
        .filter(|v| (*v - 1.0).abs().min((*v + 1.0).abs()) < 0.3)
        .count();
    assert!(near > 950, "{near} of 1000 near the points");
    let without = TrainRun {
        ema: None,
        resume: true,
        steps: 10,
        ..run
    };
    let e = train(&without, &m, &mut Silent).err().unwrap().to_string();
    assert!(e.contains("--ema"), "{e}");
    std::fs::remove_dir_all(&m).unwrap();
}

/// Seed 000's prompt, and classes from a CSV's label column, with classifier-free guidance:
/// each prompt lands on its side, each label in its region, and guidance 3 tightens the
/// samples around their class against guidance 1.
#[test]
fn prompts_and_labels_steer_the_samples() {
    let dir = tmp("cond");
    let m = dir.join("sign");
    let run = TrainRun {
        cond: Conditioning::Sign,
        ..small("delta:-0.5,0.5", 200, 64, 1500)
    };
    train(&run, &m, &mut Silent).unwrap();
    let ddpm = SamplerSpec::new(SamplerName::Ddpm);
    for (prompt, below) in [("left", true), ("right", false)] {
        let x = sample(&m, 1000, ddpm.clone(), Ask::Prompt(prompt.into()), 1.0);
        let share = x.iter().filter(|v| (**v < 0.0) == below).count() as f64 / x.len() as f64;
        assert!(share > 0.95, "prompt {prompt}: only {share} on its side");
    }
    let model = load(&m).unwrap();
    let up = Request {
        ask: Ask::Prompt("up".into()),
        ..Request::new(10)
    };
    let e = generate(&model, &up, &mut Silent).unwrap_err().to_string();
    assert!(e.contains("left, right"), "{e}");

    // Three labelled clusters in 2-D.
    let centers = [("a", -2.0, 0.0), ("b", 2.0, 0.0), ("c", 0.0, 2.0)];
    let z = NoiseSource::new(1).normals(Stream::Other, 0, 0..3000, 2);
    let mut csv = String::from("x0,x1,label\n");
    for (i, p) in z.chunks(2).enumerate() {
        let (name, cx, cy) = centers[i % 3];
        csv.push_str(&format!("{},{},{name}\n", cx + 0.5 * p[0], cy + 0.5 * p[1]));
    }
    let data = dir.join("clusters.csv");
    std::fs::write(&data, csv).unwrap();
    let lm = dir.join("labels");
    let run = TrainRun {
        cond: Conditioning::Label,
        ..small(&format!("csv:{}", data.display()), 100, 128, 2000)
    };
    train(&run, &lm, &mut Silent).unwrap();
    for (name, cx, cy) in centers {
        let mut spread = vec![];
        for w in [1.0, 3.0] {
            let x = sample(&lm, 1000, ddpm.clone(), Ask::Label(name.into()), w);
            let nearest_own = x
                .chunks(2)
                .filter(|p| {
                    let d = |c: (f64, f64)| (p[0] - c.0).powi(2) + (p[1] - c.1).powi(2);
                    centers
                        .iter()
                        .all(|(_, ox, oy)| d((cx, cy)) <= d((*ox, *oy)))
                })
                .count() as f64
                / 1000.0;
            assert!(
                nearest_own > 0.9,
                "label {name}, guidance {w}: only {nearest_own} in its region"
            );
            spread.push(
                x.chunks(2)
                    .map(|p| ((p[0] - cx).powi(2) + (p[1] - cy).powi(2)).sqrt())
                    .sum::<f64>()
                    / 1000.0,
            );
        }
        assert!(
            spread[1] < spread[0],
            "label {name}: guidance 3 did not tighten ({spread:?})"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Guidance without anything to guide towards is refused, not silently ignored; so is a label
/// for a model trained without classes, and a folder that is not one of ours.
#[test]
fn guidance_needs_a_condition_and_unknown_folders_are_named() {
    let m = tmp("refuse");
    train(&small("delta:-1,1", 100, 16, 50), &m, &mut Silent).unwrap();
    let model = load(&m).unwrap();
    let guided = Request {
        guidance: 3.0,
        ..Request::new(10)
    };
    let e = generate(&model, &guided, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--guidance 3") && e.contains("--prompt"), "{e}");
    let labelled = Request {
        ask: Ask::Label("a".into()),
        ..Request::new(10)
    };
    let e = generate(&model, &labelled, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("without classes"), "{e}");
    let sd = tmp("sd");
    std::fs::write(sd.join("model_index.json"), "{}").unwrap();
    let e = load(&sd).err().unwrap().to_string();
    assert!(e.contains("model_index.json"), "{e}");
    std::fs::remove_dir_all(&m).unwrap();
    std::fs::remove_dir_all(&sd).unwrap();
}

/// `--model vae`: a diffusers `vae/` folder that the Stable Diffusion loader reads, its scaling
/// factor set from the latents' spread, the held-out PSNR reported; non-image data refused.
#[test]
fn a_vae_trains_into_a_diffusers_folder() {
    let dir = tmp("vae");
    let run = TrainRun {
        model: "vae".into(),
        channels: 4,
        batch: 4,
        save_every: 2,
        ..TrainRun::new("colour-fashion", 3)
    };
    let r = train(&run, &dir, &mut Silent).unwrap();
    assert!(r.record.is_none());
    assert_eq!(r.losses.len(), 3);
    let psnr = r.report.get("psnr_db").and_then(|v| v.as_f64()).unwrap();
    assert!(psnr.is_finite() && psnr > 0.0, "{psnr}");
    let (vae, cfg) = diffuse_nn::sd::AutoencoderKl::load(&dir, &burn::tensor::Device::flex())
        .expect("the folder loads as a diffusers VAE");
    assert_eq!((vae.latent_channels(), vae.scale_factor()), (4, 4));
    let scale = r.report.get("scaling_factor").and_then(|v| v.as_f64());
    assert_eq!(Some(cfg.scaling_factor), scale);
    assert!(cfg.scaling_factor > 0.0 && cfg.scaling_factor != 1.0);
    for file in ["loss.csv", "training.json"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let e = train(
        &TrainRun {
            model: "vae".into(),
            ..TrainRun::new("spiral", 1)
        },
        &tmp("vae-spiral"),
        &mut Silent,
    )
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(e.contains("needs image data"), "{e}");
}

/// `--model latent`: a UNet trained on a VAE's latents of captioned images, written as a
/// diffusers pipeline folder whose parts the Stable Diffusion loaders read; what it refuses.
#[test]
fn a_latent_text_to_image_model_trains_into_a_pipeline_folder() {
    // Two classes of 16x16 pictures: a bright square on the left or on the right.
    let images = tmp("latent-images");
    for (class, x0) in [("left", 2usize), ("right", 9)] {
        std::fs::create_dir_all(images.join(class)).unwrap();
        for k in 0..4 {
            let mut px = vec![0u8; 256];
            for y in 4..12 {
                for x in x0..x0 + 5 {
                    px[y * 16 + x] = 150 + 20 * k as u8;
                }
            }
            let path = images.join(class).join(format!("{k}.png"));
            diffuse_data::images::write_png(&path, &px, 16, 16, 1).unwrap();
        }
    }
    let data = format!("images:{}", images.display());
    let vae_dir = tmp("latent-vae");
    let vae_run = TrainRun {
        model: "vae".into(),
        channels: 4,
        batch: 4,
        ..TrainRun::new(&data, 2)
    };
    train(&vae_run, &vae_dir, &mut Silent).unwrap();
    let dir = tmp("latent");
    let run = TrainRun {
        model: "latent".into(),
        channels: 8,
        batch: 4,
        save_every: 2,
        vae: Some(vae_dir.display().to_string()),
        ..TrainRun::new(&data, 3)
    };
    let r = train(&run, &dir, &mut Silent).unwrap();
    assert_eq!(r.losses.len(), 3);
    assert!(r.losses.iter().all(|(_, l)| l.is_finite()));
    let device = burn::tensor::Device::flex();
    let (_, layout) = diffuse_nn::sd::UNet2DCondition::load(&dir.join("unet"), &device)
        .expect("unet/ loads as a diffusers UNet");
    // MiniLM's token states are 384 wide; the VAE's latents have 4 channels.
    assert_eq!((layout.context_dim, layout.config.in_channels), (384, 4));
    diffuse_nn::sd::AutoencoderKl::load(&dir.join("vae"), &device).expect("vae/ loads");
    for f in ["diffusion_pytorch_model.safetensors", "config.json"] {
        assert_eq!(
            std::fs::read(dir.join("vae").join(f)).unwrap(),
            std::fs::read(vae_dir.join(f)).unwrap(),
            "vae/{f} is the VAE trained"
        );
    }
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model_index.json")).unwrap())
            .unwrap();
    assert_eq!(index["_class_name"], "StableDiffusionPipeline");
    assert_eq!(
        index["text_encoder"][1],
        diffuse_pipeline::TOKEN_STATES_ENCODER
    );
    diffuse_pipeline::sd::SchedulerConfig::read(&dir.join("scheduler")).expect("scheduler");
    // The Stable Diffusion pipeline runs it: MiniLM's states for the prompt and for the empty
    // negative prompt have different lengths, padded and masked under guidance.
    let sd = diffuse_pipeline::sd::StableDiffusion::load(&dir, &device).expect("loads as SD");
    let mut request = diffuse_pipeline::sd::SdRequest::new("a square on the left");
    (request.n, request.steps, request.guidance) = (2, 3, 3.0);
    let out = diffuse_pipeline::sd::generate(&sd, &request, &mut Silent).expect("generates");
    assert_eq!(out.images.dims(), [2, 1, 16, 16]);
    assert_eq!(out.prompt_embeds.dims()[2], 384);
    assert_ne!(out.prompt_embeds.dims()[1], out.negative_embeds.dims()[1]);
    let long = "left ".repeat(300);
    assert_eq!(sd.too_long("a square").unwrap(), None);
    assert!(matches!(sd.too_long(&long).unwrap(), Some((_, 256))));
    let e = sd
        .clip("the bench")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("MiniLM"), "{e}");
    // Seed 002's token swap on MiniLM's states: "right" is token 5 after [CLS] a square on the.
    let (a, b) = ("a square on the left", "a square on the right");
    let (swapped, at) = diffuse_pipeline::sd::swap_token(&sd, a, b, "right").expect("swap");
    assert_eq!(at, [5]);
    let (sa, _) = sd.encode_prompt(a).unwrap();
    let (sb, _) = sd.encode_prompt(b).unwrap();
    let row = |t: &burn::tensor::Tensor<3>, k: usize| -> Vec<f32> {
        t.clone()
            .narrow(1, k, 1)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(row(&swapped, 5), row(&sb, 5));
    assert_eq!(row(&swapped, 4), row(&sa, 4));
    let e = diffuse_pipeline::sd::swap_token(&sd, a, b, "circle")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not among the tokens") && e.contains("right"),
        "{e}"
    );

    let refused = |run: TrainRun| {
        train(&run, &tmp("latent-refused"), &mut Silent)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default()
    };
    let e = refused(TrainRun {
        vae: None,
        ..run.clone()
    });
    assert!(e.contains("needs --vae"), "{e}");
    let e = refused(TrainRun {
        data: "colour-fashion".into(),
        ..run.clone()
    });
    assert!(e.contains("reads 1-channel images"), "{e}");
    // 8x8 digits make 2x2 latents, which the UNet's two halvings do not divide.
    let e = refused(TrainRun {
        data: "digits".into(),
        ..run.clone()
    });
    assert!(e.contains("multiple of 4"), "{e}");
    let e = refused(TrainRun {
        channels: 12,
        ..run
    });
    assert!(e.contains("multiple of 8"), "{e}");
}
