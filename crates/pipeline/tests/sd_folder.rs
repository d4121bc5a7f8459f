//! Loading a diffusers Stable Diffusion folder: the tiny pipelines of `scripts/sd-fixtures.py`
//! load whole, a prompt's token states match transformers', and broken folders are refused with
//! one line naming the file, key or tensor.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use diffuse_nn::sd::Weights;
use diffuse_pipeline::sd::StableDiffusion;

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../nn/tests/fixtures/sd")
        .join(name)
}

fn device() -> Device {
    Device::flex()
}

#[test]
fn tiny_pipelines_load_and_encode_prompts_as_transformers() {
    for name in ["tiny-sd1", "tiny-sd2"] {
        let sd = StableDiffusion::load(&tiny(name), &device()).expect("pipeline loads");
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tiny(&format!("{name}.reference.json"))).expect("json"),
        )
        .expect("json");
        let prompt = meta["tokens"][0]["prompt"].as_str().expect("prompt");
        let (states, tokens) = sd.encode_prompt(prompt).expect("encode");
        assert_eq!(tokens.ids.len(), 77);
        let r =
            Weights::open(&tiny(""), &format!("{name}.reference"), &device()).expect("reference");
        let d = sd.context_dim();
        let want = r
            .tensor::<3>("text.hidden", [2, 77, d])
            .expect("hidden")
            .narrow(0, 0, 1);
        let err: f32 = (states - want).abs().max().into_scalar();
        println!("{name}: prompt states, max abs error {err:.2e}");
        assert!(err < 1e-5, "{name}: {err}");
        assert_eq!(sd.default_size(), 8 * sd.vae_scale());
    }
}

/// A copy of a tiny pipeline in a fresh temporary folder.
fn copy(name: &str, tag: &str) -> PathBuf {
    fn rec(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read_dir") {
            let e = e.expect("entry");
            let target = to.join(e.file_name());
            if e.path().is_dir() {
                rec(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).expect("copy");
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("diffuse-sd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    rec(&tiny(name), &dir);
    dir
}

fn refused(dir: &Path, needles: &[&str]) {
    let err = match StableDiffusion::load(dir, &device()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => format!("{e:#}"),
    };
    println!("{err}");
    assert!(!err.contains('\n'), "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} should name {n:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    f(&mut v);
    std::fs::write(path, serde_json::to_string(&v).expect("json")).expect("write");
}

#[test]
fn broken_folders_are_refused_by_name() {
    let d = copy("tiny-sd1", "no-index");
    std::fs::remove_file(d.join("model_index.json")).expect("rm");
    refused(&d, &["model_index.json"]);

    let d = copy("tiny-sd1", "no-vae");
    std::fs::remove_dir_all(d.join("vae")).expect("rm");
    refused(&d, &["vae"]);

    let d = copy("tiny-sd1", "block");
    edit_json(&d.join("unet/config.json"), |c| {
        c["down_block_types"][0] = "SimpleCrossAttnDownBlock2D".into();
    });
    refused(&d, &["unet/config.json", "SimpleCrossAttnDownBlock2D"]);

    let d = copy("tiny-sd1", "sdxl-key");
    edit_json(&d.join("unet/config.json"), |c| {
        c.insert("addition_embed_type".into(), "text_time".into());
    });
    refused(&d, &["addition_embed_type"]);

    // SD 2.x-style weights (linear projections) under an SD 1.x-style config.
    let d = copy("tiny-sd1", "shapes");
    edit_json(&d.join("unet/config.json"), |c| {
        c.insert("use_linear_projection".into(), true.into());
    });
    refused(&d, &["proj_in.weight", "shape"]);

    let d = copy("tiny-sd1", "truncated");
    let f = d.join("vae/diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&f).expect("read");
    std::fs::write(&f, &bytes[..bytes.len() / 2]).expect("write");
    refused(&d, &["vae/diffusion_pytorch_model.safetensors", "complete"]);

    let d = copy("tiny-sd1", "xl");
    edit_json(&d.join("model_index.json"), |c| {
        c["_class_name"] = "StableDiffusionXLPipeline".into();
    });
    refused(&d, &["StableDiffusionXLPipeline"]);

    let d = copy("tiny-sd1", "prediction");
    edit_json(&d.join("scheduler/scheduler_config.json"), |c| {
        c["prediction_type"] = "flow".into();
    });
    refused(&d, &["prediction_type", "flow"]);
}
