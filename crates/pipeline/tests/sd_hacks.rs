//! Seed 002's hacks and the pipeline's other paths on the tiny SD 1.x-style pipeline: loss
//! guidance moves the picture's blue channel the way its loss says, a walk between two prompts'
//! embeddings is monotone, a token swap replaces exactly the word's states, img2img runs the
//! last part of the schedule from the picture, and pictures do not depend on the batch.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use diffuse_core::samplers::SamplerName;
use diffuse_pipeline::Silent;
use diffuse_pipeline::sd::{
    ImageLoss, LossGuide, SdRequest, StableDiffusion, decode, generate, interpolate, swap_token,
};

fn tiny() -> StableDiffusion {
    let dir: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../nn/tests/fixtures/sd/tiny-sd1");
    StableDiffusion::load(&dir, &Device::flex()).expect("pipeline")
}

fn request() -> SdRequest {
    let mut r = SdRequest::new("a photo of an octopus, national geographic, dlsr");
    r.sampler = Some(SamplerName::Lms);
    r.steps = 10;
    r.n = 4;
    r.batch = 4;
    r
}

fn mean_blue(images: &Tensor<4>) -> f64 {
    f64::from(images.clone().narrow(1, 2, 1).mean().into_scalar::<f32>())
}

fn blue_distance(images: &Tensor<4>, target: f64) -> f64 {
    f64::from(
        (images.clone().narrow(1, 2, 1) - target)
            .abs()
            .mean()
            .into_scalar::<f32>(),
    )
}

fn max_diff<const D: usize>(a: &Tensor<D>, b: &Tensor<D>) -> f32 {
    (a.clone() - b.clone()).abs().max().into_scalar()
}

/// The loss is per picture and its correction small next to the pictures' spread, so the
/// differences below (a few 1e-3 at k = 1000 on random weights) stand far above float32
/// round-off (1e-6); larger k moves further (README).
#[test]
fn loss_guidance_moves_blue_the_way_the_loss_says() {
    let sd = tiny();
    let plain = generate(&sd, &request(), &mut Silent).expect("plain");
    let guided = |loss: &str| {
        let mut r = request();
        r.loss = Some(LossGuide {
            loss: ImageLoss::parse(loss).expect("loss"),
            scale: 1000.0,
            every: 2,
        });
        generate(&sd, &r, &mut Silent).expect("guided")
    };
    let drained = guided("blue:0");
    let (b0, b1) = (mean_blue(&plain.images), mean_blue(&drained.images));
    println!("mean blue: unguided {b0:.5}, blue:0 guided {b1:.5}");
    assert!(
        b1 < b0 - 1e-3,
        "blue:0 should lower the blue channel: {b0} -> {b1}"
    );
    // Guided at steps 2, 4, 6, 8 of 10, the loss falling at each.
    assert_eq!(
        drained.losses.iter().map(|l| l.0).collect::<Vec<_>>(),
        vec![2, 4, 6, 8]
    );
    assert!(
        drained.losses.windows(2).all(|w| w[1].1 < w[0].1),
        "{:?}",
        drained.losses
    );
    // The seed's loss pulls blue towards 0.9.
    let seed = guided("blue");
    let (d0, d1) = (
        blue_distance(&plain.images, 0.9),
        blue_distance(&seed.images, 0.9),
    );
    println!("mean |blue - 0.9|: unguided {d0:.5}, blue guided {d1:.5}");
    assert!(d1 < d0 - 1e-3, "blue should approach 0.9: {d0} -> {d1}");
}

#[test]
fn a_walk_between_prompts_is_monotone_in_the_embeddings() {
    let sd = tiny();
    let (a, _) = sd.encode_prompt("an adorable photo of a puppy").expect("a");
    let (b, _) = sd.encode_prompt("a adorable photo of a koala").expect("b");
    let frames = interpolate(&a, &b, 6).expect("walk");
    assert_eq!(frames.len(), 6);
    assert_eq!(max_diff(&frames[0], &a), 0.0);
    assert!(max_diff(&frames[5], &b) < 1e-6);
    let to_a: Vec<f32> = frames.iter().map(|f| max_diff(f, &a)).collect();
    let to_b: Vec<f32> = frames.iter().map(|f| max_diff(f, &b)).collect();
    assert!(to_a.windows(2).all(|w| w[1] > w[0]), "{to_a:?}");
    assert!(to_b.windows(2).all(|w| w[1] < w[0]), "{to_b:?}");
    assert!(interpolate(&a, &b, 1).is_err());
}

#[test]
fn a_token_swap_replaces_the_words_states_and_nothing_else() {
    let sd = tiny();
    let (pa, pb) = (
        "an adorable photo of a puppy",
        "a adorable photo of a koala",
    );
    let (a, _) = sd.encode_prompt(pa).expect("a");
    let (b, _) = sd.encode_prompt(pb).expect("b");
    let (s, at) = swap_token(&sd, pa, pb, "koala").expect("swap");
    assert!(!at.is_empty() && at[0] >= 1, "{at:?}");
    let l = a.dims()[1];
    for p in 0..l {
        let row = |t: &Tensor<3>| t.clone().narrow(1, p, 1);
        let want = if at.contains(&p) { row(&b) } else { row(&a) };
        assert_eq!(max_diff(&row(&s), &want), 0.0, "position {p}");
    }
    let Err(e) = swap_token(&sd, pa, pb, "giraffe") else {
        panic!("a word not in the prompt was swapped");
    };
    assert!(format!("{e}").contains("giraffe"), "{e}");
}

#[test]
fn img2img_runs_the_last_part_of_the_schedule_from_the_picture() {
    let sd = tiny();
    let plain = generate(&sd, &request(), &mut Silent).expect("plain");
    // The picture to start from: the first unguided one, in [-1, 1].
    let init = plain.images.clone().narrow(0, 0, 1) * 2.0 - 1.0;
    let (mean, _) = sd.vae.encode(init.clone());
    let reconstruction = decode(&sd, mean * sd.vae_config.scaling_factor);
    let run = |strength: f64| {
        let mut r = request();
        r.n = 1;
        r.guidance = 1.0;
        r.init_image = Some(init.clone());
        r.strength = strength;
        generate(&sd, &r, &mut Silent).expect("img2img")
    };
    let light = run(0.2);
    assert_eq!(light.timesteps.len(), 2);
    let full = run(1.0);
    assert_eq!(full.timesteps.len(), 10);
    let (near, far) = (
        max_diff(&light.images, &reconstruction),
        max_diff(&full.images, &reconstruction),
    );
    println!("img2img: strength 0.2 is {near:.4} from the picture, strength 1 {far:.4}");
    assert!(near < far, "{near} {far}");
    let mut r = request();
    r.init_image = Some(init);
    r.strength = 0.05;
    assert!(generate(&sd, &r, &mut Silent).is_err(), "no step runs");
}

#[test]
fn pictures_do_not_depend_on_the_batch() {
    let sd = tiny();
    let mut r = request();
    r.sampler = Some(SamplerName::EulerAncestral);
    r.steps = 4;
    r.n = 3;
    r.batch = 3;
    let together = generate(&sd, &r, &mut Silent).expect("batch 3");
    r.batch = 1;
    let apart = generate(&sd, &r, &mut Silent).expect("batch 1");
    let d = max_diff(&together.latents, &apart.latents);
    assert_eq!(d, 0.0, "batch 3 and batch 1 differ by {d}");
}
