//! What more than one test file needs: the tiny Stable Diffusion pipelines and a whole run
//! compared with the diffusers reference `scripts/sd-fixtures.py` wrote next to each.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use diffuse_core::samplers::SamplerName;
use diffuse_nn::sd::Weights;
use diffuse_pipeline::Silent;
use diffuse_pipeline::sd::{SdRequest, StableDiffusion, generate};

pub fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../nn/tests/fixtures/sd")
        .join(name)
}

fn get<const D: usize>(w: &Weights, name: &str) -> Tensor<D> {
    let shape: [usize; D] = w.shape(name).expect("tensor").try_into().expect("rank");
    w.tensor(name, shape).expect("tensor")
}

fn max_err<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

/// Every run of the folder's reference (4 guided steps from injected latents, one per sampler)
/// on `device`: the final latents and the decoded image within the tolerances.
pub fn check_runs(folder: &Path, device: &Device, latent_tol: f32, image_tol: f32) {
    let sd = StableDiffusion::load(folder, device).expect("pipeline");
    let dir = folder.parent().expect("parent");
    let stem = format!(
        "{}.reference",
        folder.file_name().expect("name").to_string_lossy()
    );
    let r = Weights::open(dir, &stem, device).expect("reference");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{stem}.json"))).expect("json"),
    )
    .expect("json");
    let run = &meta["run"];
    for case in meta["runs"].as_array().expect("runs") {
        let name = case["name"].as_str().expect("name");
        let sampler: SamplerName = name.parse().expect("sampler name");
        let mut req = SdRequest::new(run["prompt"].as_str().expect("prompt"));
        req.negative_prompt = run["negative_prompt"].as_str().expect("neg").into();
        req.guidance = run["guidance"].as_f64().expect("g");
        req.steps = run["steps"].as_u64().expect("steps") as usize;
        req.sampler = Some(sampler);
        let latents = get::<4>(&r, "run.latents");
        let [_, _, h, w] = latents.dims();
        req.height = Some(h * sd.vae_scale());
        req.width = Some(w * sd.vae_scale());
        req.latents = Some(latents);
        let out = generate(&sd, &req, &mut Silent).expect("generate");
        let want = get::<4>(&r, &format!("run.{name}.latents"));
        let size: f32 = want.clone().abs().max().into_scalar();
        let lat = max_err(out.latents, want);
        let img = max_err(out.images, get::<4>(&r, &format!("run.{name}.image")));
        println!(
            "{}: {name}, {} steps: latents max abs error {lat:.2e} (max |ref| {size:.1}), image {img:.2e}",
            folder.display(),
            req.steps
        );
        assert!(lat <= latent_tol, "{name}: latents error {lat}");
        assert!(img <= image_tol, "{name}: image error {img}");
    }
}
