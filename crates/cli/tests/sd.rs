//! `diffuse sample --model DIR` on the tiny Stable Diffusion pipelines, as a user runs it: the
//! run from diffusers' injected latents matches diffusers through the files the command writes,
//! its outputs are all there, seed 002's hacks run from flags, and bad input is one line with
//! nothing written.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use common::{diffuse, fails, ok, s, summary, tmp};
use diffuse_nn::sd::Weights;
use diffuse_pipeline::sd::{read_tensor4, write_tensors};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../nn/tests/fixtures/sd")
        .join(name)
}

fn reference(name: &str) -> (Weights, serde_json::Value) {
    let dir = tiny("");
    let stem = format!("{name}.reference");
    let w = Weights::open(&dir, &stem, &Device::flex()).unwrap();
    let meta =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{stem}.json"))).unwrap())
            .unwrap();
    (w, meta)
}

fn get4(w: &Weights, name: &str) -> Tensor<4> {
    let shape: [usize; 4] = w.shape(name).unwrap().try_into().unwrap();
    w.tensor(name, shape).unwrap()
}

/// The diffusers run of the fixtures, from the command line with --init-latents: the latents it
/// writes match diffusers' (tolerance as in the pipeline's tests/sd_runs.rs).
#[test]
fn a_run_from_given_latents_matches_diffusers_through_the_files() {
    for pipeline in ["tiny-sd1", "tiny-sd2"] {
        let (r, meta) = reference(pipeline);
        let run = &meta["run"];
        let dir = tmp(&format!("sd-parity-{pipeline}"));
        let latents = get4(&r, "run.latents");
        let given = dir.join("given.safetensors");
        write_tensors(&given, &[("latents", &latents)]).unwrap();
        let [n, _, h, w] = latents.dims();
        // The VAEs' factors: 2 (two levels) and 4 (three).
        let f = if pipeline == "tiny-sd1" { 2 } else { 4 };
        for sampler in ["lms", "ddim"] {
            let out = dir.join(sampler);
            let steps = run["steps"].to_string();
            let guidance = run["guidance"].to_string();
            let (height, width) = ((h * f).to_string(), (w * f).to_string());
            ok(&[
                "sample",
                "--model",
                s(&tiny(pipeline)),
                "--prompt",
                run["prompt"].as_str().unwrap(),
                "--negative-prompt",
                run["negative_prompt"].as_str().unwrap(),
                "--guidance",
                &guidance,
                "--sampler",
                sampler,
                "--nfe",
                &steps,
                "--n",
                &n.to_string(),
                "--height",
                &height,
                "--width",
                &width,
                "--init-latents",
                s(&given),
                "--out",
                s(&out),
            ]);
            let got =
                read_tensor4(&out.join("latents.safetensors"), "latents", &Device::flex()).unwrap();
            let want = get4(&r, &format!("run.{sampler}.latents"));
            let err: f32 = (got - want).abs().max().into_scalar();
            println!("{pipeline} {sampler}: latents.safetensors max abs error {err:.2e}");
            assert!(err <= 1e-4, "{pipeline} {sampler}: {err}");
            let sum = summary(&out);
            assert_eq!(sum["sampler"], sampler);
            assert_eq!(sum["nfe"], run["steps"]);
        }
    }
}

#[test]
fn a_run_writes_pictures_latents_embeddings_and_a_summary() {
    let dir = tmp("sd-outputs");
    let out = dir.join("out");
    let err = ok(&[
        "sample",
        "--model",
        s(&tiny("tiny-sd2")),
        "--prompt",
        "a photo of a cat",
        "--n",
        "3",
        "--nfe",
        "3",
        "--animate",
        "--out",
        s(&out),
    ]);
    assert!(!err.contains("warning"), "{err}");
    for f in [
        "images/0000.png",
        "images/0002.png",
        "grid.png",
        "animation.gif",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // An RGB PNG (colour type 2 in its header) of tiny-sd2's UNet sample_size 8 times the
    // VAE's factor 4.
    let png = std::fs::read(out.join("images/0001.png")).unwrap();
    assert_eq!(png[25], 2, "not 8-bit RGB");
    let (w, h, _) = diffuse_data::images::read_rgb(&out.join("images/0001.png")).unwrap();
    assert_eq!((w, h), (32, 32));
    let dev = Device::flex();
    let latents = read_tensor4(&out.join("latents.safetensors"), "latents", &dev).unwrap();
    assert_eq!(latents.dims(), [3, 4, 8, 8]);
    let embeds = Weights::open(&out, "prompt_embeds", &dev).unwrap();
    assert_eq!(embeds.shape("prompt_embeds").unwrap(), vec![3, 77, 24]);
    assert_eq!(embeds.shape("negative_embeds").unwrap(), vec![3, 77, 24]);
    let sum = summary(&out);
    assert_eq!(sum["n"], 3);
    assert_eq!(sum["guidance"], 7.5);
    // tiny-sd2 names DDIM with v-prediction: its own sampler by default.
    assert_eq!(sum["sampler"], "ddim");
    assert_eq!(sum["steps"], 3);

    // The same seed gives the same bytes whatever the batch.
    let again = dir.join("batch3");
    ok(&[
        "sample",
        "--model",
        s(&tiny("tiny-sd2")),
        "--prompt",
        "a photo of a cat",
        "--n",
        "3",
        "--batch",
        "3",
        "--nfe",
        "3",
        "--out",
        s(&again),
    ]);
    for f in ["latents.safetensors", "images/0002.png"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn seed_002s_hacks_run_from_the_command_line() {
    let dir = tmp("sd-hacks");
    let model = tiny("tiny-sd1");
    let base = [
        "sample",
        "--model",
        s(&model),
        "--sampler",
        "lms",
        "--nfe",
        "10",
        "--n",
        "2",
        "--seed",
        "3",
    ];
    let run = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", s(&out)]);
        ok(&args);
        summary(&out)
    };
    let octopus = "a photo of an octopus, national geographic, dlsr";
    let plain = run("plain", &["--prompt", octopus]);
    let drained = run(
        "drained",
        &[
            "--prompt",
            octopus,
            "--loss",
            "blue:0",
            "--loss-scale",
            "1000",
            "--loss-every",
            "2",
        ],
    );
    let (b0, b1) = (
        plain["mean_blue"].as_f64().unwrap(),
        drained["mean_blue"].as_f64().unwrap(),
    );
    assert!(b1 < b0 - 1e-3, "{b0} -> {b1}");
    assert_eq!(drained["loss_steps"], serde_json::json!([2, 4, 6, 8]));

    let walk = run(
        "walk",
        &[
            "--prompt",
            "an adorable photo of a puppy",
            "--prompt-to",
            "a adorable photo of a koala",
            "--frames",
            "3",
        ],
    );
    assert_eq!(walk["frames"], 3);
    assert_eq!(walk["n"], 6);
    for f in ["strip.png", "interpolation.gif", "images/0005.png"] {
        assert!(dir.join("walk").join(f).is_file(), "{f}");
    }
    let swap = run(
        "swap",
        &[
            "--prompt",
            "an adorable photo of a puppy",
            "--swap-from",
            "a adorable photo of a koala",
            "--swap-token",
            "koala",
        ],
    );
    assert!(!swap["swap_positions"].as_array().unwrap().is_empty());

    // img2img from the first plain picture.
    let img = run(
        "img2img",
        &[
            "--prompt",
            octopus,
            "--init-image",
            s(&dir.join("plain/images/0000.png")),
            "--strength",
            "0.5",
        ],
    );
    assert_eq!(img["steps"], 5);
}

#[test]
fn long_prompts_are_refused_or_cut_and_said() {
    let out = tmp("sd-long").join("out");
    let long = "a very long prompt about a cat ".repeat(20);
    let e = fails(&[
        "sample",
        "--model",
        s(&tiny("tiny-sd1")),
        "--prompt",
        &long,
        "--out",
        s(&out),
    ]);
    assert!(e.contains("--truncate"), "{e}");
    assert!(!out.exists());
    let err = ok(&[
        "sample",
        "--model",
        s(&tiny("tiny-sd1")),
        "--prompt",
        &long,
        "--truncate",
        "--nfe",
        "2",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("warning: --prompt has"), "{err}");
    assert!(
        summary(&out)["prompt_tokens_before_truncation"]
            .as_u64()
            .unwrap()
            > 77
    );
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let dir = tmp("sd-bad");
    let model = tiny("tiny-sd1");
    let wrong = dir.join("wrong.safetensors");
    let dev = Device::flex();
    write_tensors(
        &wrong,
        &[("latents", &Tensor::<4>::zeros([1, 4, 3, 3], &dev))],
    )
    .unwrap();
    let misnamed = dir.join("misnamed.safetensors");
    write_tensors(
        &misnamed,
        &[("noise", &Tensor::<4>::zeros([1, 4, 4, 4], &dev))],
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--height", "20"], "--height 20"),
        (vec!["--init-latents", s(&wrong)], "shape"),
        (vec!["--init-latents", s(&misnamed)], "latents"),
        (
            vec!["--init-latents", "/nonexistent.safetensors"],
            "nonexistent",
        ),
        (vec!["--label", "cat"], "--label"),
        (vec!["--grid", "karras"], "--grid"),
        (vec!["--loss", "red"], "red"),
        (vec!["--sampler", "ddpm"], "ddpm"),
        (
            vec!["--swap-from", "a koala", "--swap-token", "giraffe"],
            "giraffe",
        ),
        (vec!["--init-image", "/nonexistent.png"], "nonexistent.png"),
    ];
    for (extra, says) in cases {
        let out = dir.join("out");
        let mut args = vec![
            "sample",
            "--model",
            s(&model),
            "--prompt",
            "a cat",
            "--nfe",
            "2",
        ];
        args.extend_from_slice(&extra);
        args.extend_from_slice(&["--out", s(&out)]);
        let e = fails(&args);
        assert!(e.contains(says), "{extra:?}: {e}");
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
    // No prompt; a folder whose model_index.json names another pipeline.
    let e = fails(&["sample", "--model", s(&model), "--out", s(&dir.join("o"))]);
    assert!(e.contains("--prompt"), "{e}");
    let broken = dir.join("xl");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("model_index.json"),
        r#"{"_class_name": "StableDiffusionXLPipeline"}"#,
    )
    .unwrap();
    let e = fails(&["sample", "--model", s(&broken), "--prompt", "a cat"]);
    assert!(e.contains("StableDiffusionXLPipeline"), "{e}");
    // Stable Diffusion flags on another model.
    let out = diffuse(&[
        "sample",
        "--model",
        "fashion-mnist",
        "--negative-prompt",
        "x",
        "--n",
        "1",
    ]);
    assert!(!out.status.success());
}
