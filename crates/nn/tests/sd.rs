//! Stable Diffusion's networks against diffusers and transformers, seam by seam, on the pipelines
//! `scripts/sd-fixtures.py` builds with random weights: the tiny ones committed under
//! `tests/fixtures/sd/`, the full-size SD 1.x and 2.x architectures (built on demand into
//! $DIFFUSE_SD_FULL) in the `--ignored` tests.
//!
//! Tolerances: float32 round-off, about 6e-8 relative per operation, grows with the number of
//! terms in each sum and the layers stacked; the bounds below are per network, relative to the
//! size of its output, and each test prints the error it saw.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use diffuse_nn::sd::{AutoencoderKl, ClipText, UNet2DCondition, Weights};

fn device() -> Device {
    Device::flex()
}

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sd")
        .join(name)
}

/// The reference tensors and metadata written next to a pipeline folder.
fn reference(folder: &Path) -> (Weights, serde_json::Value) {
    let dir = folder.parent().expect("fixture folder has a parent");
    let stem = format!(
        "{}.reference",
        folder.file_name().expect("named").to_string_lossy()
    );
    let w = Weights::open(dir, &stem, &device()).expect("reference tensors");
    let meta = std::fs::read_to_string(dir.join(format!("{stem}.json"))).expect("reference json");
    (w, serde_json::from_str(&meta).expect("json"))
}

fn get<const D: usize>(w: &Weights, name: &str) -> Tensor<D> {
    let shape: [usize; D] = w
        .shape(name)
        .unwrap_or_else(|| panic!("no reference {name}"))
        .try_into()
        .expect("rank");
    w.tensor(name, shape).expect("reference tensor")
}

/// (max |a - b|, max |b|).
fn error<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> (f32, f32) {
    assert_eq!(a.dims(), b.dims());
    let err = (a - b.clone()).abs().max().into_scalar();
    let size = b.abs().max().into_scalar();
    (err, size)
}

fn ids(meta: &serde_json::Value, rows: &[usize]) -> Tensor<2, Int> {
    let tokens = meta["tokens"].as_array().expect("tokens");
    let mut flat = Vec::new();
    for &r in rows {
        for v in tokens[r]["ids"].as_array().expect("ids") {
            flat.push(v.as_i64().expect("id"));
        }
    }
    let l = flat.len() / rows.len();
    Tensor::from_data(TensorData::new(flat, [rows.len(), l]), &device())
}

fn check_text(folder: &Path, rel_tol: f32) {
    let (r, meta) = reference(folder);
    let (clip, _) = ClipText::load(&folder.join("text_encoder"), &device()).expect("text encoder");
    let hidden = clip.forward(ids(&meta, &[0, 1]));
    let (err, size) = error(hidden, get::<3>(&r, "text.hidden"));
    println!(
        "{}: text hidden states, max abs error {err:.2e} (max |ref| {size:.2})",
        folder.display()
    );
    assert!(err <= rel_tol * size.max(1.0), "text encoder error {err}");
}

fn check_unet(folder: &Path, rel_tol: f32) {
    let (r, meta) = reference(folder);
    let (unet, _) = UNet2DCondition::load(&folder.join("unet"), &device()).expect("unet");
    let x = get::<4>(&r, "unet.sample");
    let context = get::<3>(&r, "text.hidden");
    for which in ["int", "frac"] {
        let t = meta["unet_timesteps"][which].as_f64().expect("t") as f32;
        let ts = Tensor::<1>::from_floats([t, t].as_slice(), &device());
        let out = unet.forward(x.clone(), ts, context.clone());
        let (err, size) = error(out, get::<4>(&r, &format!("unet.out.{which}")));
        println!(
            "{}: UNet at t = {t}, max abs error {err:.2e} (max |ref| {size:.2})",
            folder.display()
        );
        assert!(
            err <= rel_tol * size.max(1.0),
            "UNet error {err} at t = {t}"
        );
    }
}

fn check_vae(folder: &Path, rel_tol: f32) {
    let (r, _) = reference(folder);
    let (vae, _) = AutoencoderKl::load(&folder.join("vae"), &device()).expect("vae");
    let decoded = vae.decode(get::<4>(&r, "vae.z"));
    let (err, size) = error(decoded, get::<4>(&r, "vae.decoded"));
    println!(
        "{}: VAE decode, max abs error {err:.2e} (max |ref| {size:.2})",
        folder.display()
    );
    assert!(err <= rel_tol * size.max(1.0), "VAE decode error {err}");
    let (mean, _) = vae.encode(get::<4>(&r, "vae.image"));
    let (err, size) = error(mean, get::<4>(&r, "vae.mean"));
    println!(
        "{}: VAE encoder mean, max abs error {err:.2e} (max |ref| {size:.2})",
        folder.display()
    );
    assert!(err <= rel_tol * size.max(1.0), "VAE encode error {err}");
}

// The tiny networks are 2-5 layers of widths 8-64: a few hundred terms per sum, about 1e-6
// relative round-off; 1e-5 leaves a decade.
#[test]
fn tiny_text_encoders_match_transformers() {
    check_text(&tiny("tiny-sd1"), 1e-5);
    check_text(&tiny("tiny-sd2"), 1e-5);
}

#[test]
fn tiny_unets_match_diffusers() {
    check_unet(&tiny("tiny-sd1"), 1e-5);
    check_unet(&tiny("tiny-sd2"), 1e-5);
}

#[test]
fn tiny_vaes_match_diffusers() {
    check_vae(&tiny("tiny-sd1"), 1e-5);
    check_vae(&tiny("tiny-sd2"), 1e-5);
}

fn full(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("DIFFUSE_SD_FULL")?).join(name);
    dir.join("model_index.json").is_file().then_some(dir)
}

// Full size: sums of up to 11,520 terms (3 x 3 x 1280) through ~25 layers; float32 round-off is
// then about 1e-5 to 1e-4 relative, and 1e-3 of the output's size bounds it.
#[test]
#[ignore = "needs the full-size pipelines of scripts/sd-fixtures.py --full in $DIFFUSE_SD_FULL"]
fn full_size_networks_match_diffusers() {
    for name in ["sd1-full", "sd2-full"] {
        let Some(dir) = full(name) else {
            panic!("set DIFFUSE_SD_FULL to the folder of scripts/sd-fixtures.py --full");
        };
        let t0 = std::time::Instant::now();
        check_text(&dir, 1e-4);
        check_unet(&dir, 1e-3);
        check_vae(&dir, 1e-3);
        println!("{name}: {:.1} s", t0.elapsed().as_secs_f64());
    }
}
