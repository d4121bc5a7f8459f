//! Stable Diffusion's networks made here to be trained (issue 13): PyTorch's default
//! initialisation, a gradient for every parameter, and a trained network written as a diffusers
//! component folder that the loader of downloaded folders reads back to the same numbers.

use std::path::{Path, PathBuf};

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use diffuse_nn::sd::{
    AutoencoderKl, UNet2DCondition, UnetConfig, VaeConfig, Weights, named_bytes, save_component,
};

fn fixture(component: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sd/tiny-sd1")
        .join(component)
}

fn config(component: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(component).join("config.json")).expect("config");
    serde_json::from_str(&text).expect("json")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("diffuse-sd-fresh-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Smooth images `[n, 3, s, s]` in [-1, 1].
fn images(n: usize, s: usize, device: &Device) -> Tensor<4> {
    let mut v = Vec::with_capacity(n * 3 * s * s);
    for i in 0..n {
        for c in 0..3 {
            for y in 0..s {
                for x in 0..s {
                    let (fx, fy) = (x as f32 / s as f32, y as f32 / s as f32);
                    v.push((3.0 * fx + (i + c) as f32).sin() * (2.0 * fy - c as f32).cos());
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(v, [n, 3, s, s]), device)
}

#[test]
fn fresh_weights_follow_pytorch_defaults() {
    let cfg = VaeConfig::from_value(config("vae")).expect("config");
    let device = Device::flex();
    let (vae, names) = AutoencoderKl::fresh(&cfg, 7, &device).expect("fresh");
    let dir = tmp("init");
    save_component(&dir, &config("vae"), &vae, &names, &[]).expect("save");
    let w = Weights::open(&dir, "diffusion_pytorch_model", &device).expect("open");
    let file = std::fs::read(dir.join("diffusion_pytorch_model.safetensors")).expect("file");
    let st = safetensors::SafeTensors::deserialize(&file).expect("safetensors");
    let mut checked = 0;
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let v: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let layer = name.rsplit_once('.').expect("dotted").0;
        let weight_shape = w
            .shape(&format!("{layer}.weight"))
            .expect("weight")
            .to_vec();
        if weight_shape.len() == 1 {
            // A norm: weight ones, bias zeros.
            let want = if name.ends_with(".weight") { 1.0 } else { 0.0 };
            assert!(v.iter().all(|x| *x == want), "{name}");
            continue;
        }
        let fan_in: usize = weight_shape[1..].iter().product();
        let b = 1.0 / (fan_in as f64).sqrt();
        assert!(
            v.iter().all(|x| f64::from(x.abs()) <= b),
            "{name} beyond +-{b}"
        );
        if v.len() >= 1000 {
            // Uniform on +-b: variance b^2 / 3; the sample variance's relative sd is
            // sqrt(0.8 / n), under 3% here: 15% is five of them.
            let var = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64;
            let rel = var / (b * b / 3.0) - 1.0;
            assert!(rel.abs() < 0.15, "{name} {shape:?}: variance off by {rel}");
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} tensors large enough to check");
    // Another seed, other weights; the same seed, the same bytes.
    let (again, n2) = AutoencoderKl::fresh(&cfg, 7, &device).expect("fresh");
    let (other, n3) = AutoencoderKl::fresh(&cfg, 8, &device).expect("fresh");
    let bytes = |m: &AutoencoderKl, n| named_bytes(m, n).expect("bytes");
    assert_eq!(bytes(&again, &n2), file);
    assert_ne!(bytes(&other, &n3), file);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_trained_vae_and_unet_load_back_as_diffusers_folders() {
    let device = Device::flex().autodiff();
    let cfg = VaeConfig::from_value(config("vae")).expect("config");
    let (mut vae, names) = AutoencoderKl::fresh(&cfg, 1, &device).expect("fresh");
    let x = images(2, 16, &device);
    let mut adam = AdamConfig::new().init();
    let mut losses = vec![];
    for _ in 0..25 {
        let (mean, _) = vae.encode(x.clone());
        let loss = (vae.decode(mean) - x.clone()).square().mean();
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = loss.backward();
        let grads = GradientsParams::from_grads(grads, &vae);
        // Every parameter takes part in the reconstruction (the encoder's log-variance half of
        // conv_out and quant_conv too: a gradient of zeros is still a gradient).
        assert_eq!(grads.len(), names.len());
        vae = adam.step(1e-3, vae, grads);
    }
    assert!(
        losses[24] < 0.5 * losses[0],
        "reconstruction did not learn: {losses:?}"
    );
    let dir = tmp("vae");
    save_component(&dir, &config("vae"), &vae, &names, &[]).expect("save");
    let plain = Device::flex();
    let w = Weights::open(&dir, "diffusion_pytorch_model", &plain).expect("open");
    let back = AutoencoderKl::from_weights(&w, &cfg).expect("load");
    w.all_used().expect("every stored tensor has a place");
    assert_eq!(
        named_bytes(&back, &w.names()).expect("bytes"),
        named_bytes(&vae, &names).expect("bytes"),
        "the folder read back holds other weights"
    );
    // The same numbers out (the plain device runs the fast SiLU: round-off apart).
    let (m1, _) = vae.encode(x);
    let (m2, _) = back.encode(images(2, 16, &plain));
    close(m1, m2, "encoder mean");
    let _ = std::fs::remove_dir_all(dir);

    // The UNet: one training step moves it; the folder loads back to the same prediction.
    let lay = UnetConfig::from_value(config("unet")).expect("config");
    let (unet, names) = UNet2DCondition::fresh(&lay, 2, &device).expect("fresh");
    let c = lay.config.in_channels;
    let s = lay.config.sample_size.unwrap_or(8);
    let z = images(1, s, &device).narrow(1, 0, c.min(3));
    let z = if c > 3 {
        Tensor::cat(vec![z.clone(), z.narrow(1, 0, c - 3)], 1)
    } else {
        z
    };
    let t = Tensor::<1>::from_data(TensorData::new(vec![500f32], [1]), &device);
    let ctx = Tensor::<3>::ones([1, 5, lay.context_dim], &device);
    let loss = unet
        .forward(z.clone(), t.clone(), ctx.clone())
        .square()
        .mean();
    let grads = GradientsParams::from_grads(loss.backward(), &unet);
    assert_eq!(grads.len(), names.len());
    let unet = adam_step(unet, grads);
    let dir = tmp("unet");
    save_component(&dir, &config("unet"), &unet, &names, &[]).expect("save");
    let plain = Device::flex();
    let w = Weights::open(&dir, "diffusion_pytorch_model", &plain).expect("open");
    let back = UNet2DCondition::from_weights(&w, &lay).expect("load");
    w.all_used().expect("every stored tensor has a place");
    assert_eq!(
        named_bytes(&back, &w.names()).expect("bytes"),
        named_bytes(&unet, &names).expect("bytes")
    );
    let on = |x: Tensor<4>| Tensor::<4>::from_data(x.into_data(), &plain);
    let b = back.forward(
        on(z.clone()),
        Tensor::from_data(t.clone().into_data(), &plain),
        Tensor::from_data(ctx.clone().into_data(), &plain),
    );
    close(unet.forward(z, t, ctx), b, "UNet prediction");
    let _ = std::fs::remove_dir_all(dir);
}

/// Equal within float32 round-off of a few layers: 1e-5 of the output's size.
fn close(a: Tensor<4>, b: Tensor<4>, what: &str) {
    let a: Vec<f32> = a.into_data().try_to_vec::<f32>().expect("f32");
    let b: Vec<f32> = b.into_data().try_to_vec::<f32>().expect("f32");
    let size = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(err <= 1e-5 * size, "{what}: max error {err} of {size}");
}

fn adam_step(unet: UNet2DCondition, grads: GradientsParams) -> UNet2DCondition {
    AdamConfig::new().init().step(1e-3, unet, grads)
}

#[test]
fn the_vae_loss_is_the_squared_error_plus_the_posteriors_kl() {
    let device = Device::flex();
    let cfg = VaeConfig::from_value(config("vae")).expect("config");
    let (vae, _) = AutoencoderKl::fresh(&cfg, 3, &device).expect("fresh");
    let x = images(3, 16, &device);
    let (mean, logvar) = vae.encode(x.clone());
    let dims = mean.dims();
    // With eps = 0 the sample is the mean: the error is that of decoding the mean.
    let zero = Tensor::<4>::zeros(dims, &device);
    let (loss, mse, kl) = diffuse_nn::sd::vae_loss(&vae, x.clone(), zero, 1e-3);
    let want_mse = (vae.decode(mean.clone()) - x.clone())
        .square()
        .mean()
        .into_scalar::<f32>();
    assert_eq!(mse.clone().into_scalar::<f32>(), want_mse);
    // KL(N(m, v) || N(0, 1)) = (m^2 + v - 1 - ln v) / 2 per value, summed per image, in f64.
    let m: Vec<f32> = mean.into_data().try_to_vec::<f32>().expect("f32");
    let lv: Vec<f32> = logvar.into_data().try_to_vec::<f32>().expect("f32");
    let want_kl = m
        .iter()
        .zip(&lv)
        .map(|(m, lv)| {
            let (m, lv) = (f64::from(*m), f64::from(*lv));
            0.5 * (m * m + lv.exp() - 1.0 - lv)
        })
        .sum::<f64>()
        / 3.0;
    let kl = f64::from(kl.into_scalar::<f32>());
    assert!(
        (kl - want_kl).abs() <= 1e-5 * want_kl.abs().max(1.0),
        "{kl} vs {want_kl}"
    );
    // The loss weighs the per-image KL against the per-pixel error: beta / (C H W).
    let want = f64::from(want_mse) + 1e-3 * want_kl / (3.0 * 16.0 * 16.0);
    let loss = f64::from(loss.into_scalar::<f32>());
    assert!((loss - want).abs() <= 1e-5 * want, "{loss} vs {want}");
    // A sampled posterior decodes somewhere else.
    let eps = Tensor::<4>::ones(dims, &device);
    let (_, mse_eps, _) = diffuse_nn::sd::vae_loss(&vae, x, eps, 1e-3);
    assert_ne!(mse_eps.into_scalar::<f32>(), want_mse);
}

#[test]
fn cross_attention_ignores_masked_padding() {
    let device = Device::flex();
    let lay = UnetConfig::from_value(config("unet")).expect("config");
    let (unet, _) = UNet2DCondition::fresh(&lay, 4, &device).expect("fresh");
    device.seed(5);
    let (c, s, d) = (
        lay.config.in_channels,
        lay.config.sample_size.unwrap_or(8),
        lay.context_dim,
    );
    let x = Tensor::<4>::random(
        [2, c, s, s],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let t = Tensor::<1>::from_data(TensorData::new(vec![10f32, 700.0], [2]), &device);
    // Row 0 has 3 tokens, row 1 has 5; padded to 7 with junk that a mask must hide.
    let tokens = Tensor::<3>::random([2, 5, d], burn::tensor::Distribution::Default, &device);
    let junk = Tensor::<3>::random([2, 4, d], burn::tensor::Distribution::Default, &device) * 9.0;
    let row = |i: usize, n: usize| {
        let real = tokens.clone().narrow(0, i, 1).narrow(1, 0, n);
        let alone = unet.forward(
            x.clone().narrow(0, i, 1),
            t.clone().narrow(0, i, 1),
            real.clone(),
        );
        let padded = Tensor::cat(
            vec![real, junk.clone().narrow(0, i, 1).narrow(1, 0, 7 - n)],
            1,
        );
        (alone, padded)
    };
    let (a0, p0) = row(0, 3);
    let (a1, p1) = row(1, 5);
    let context = Tensor::cat(vec![p0, p1], 0);
    let pad: Vec<bool> = (0..14)
        .map(|k| k % 7 >= if k < 7 { 3 } else { 5 })
        .collect();
    let pad = Tensor::<2, burn::tensor::Bool>::from_data(TensorData::new(pad, [2, 7]), &device);
    let masked = unet.forward_masked(x.clone(), t.clone(), context.clone(), Some(pad));
    close(masked.clone().narrow(0, 0, 1), a0.clone(), "row 0 masked");
    close(masked.narrow(0, 1, 1), a1, "row 1 masked");
    // Without the mask the junk is read.
    let (err, _) = {
        let plain: Vec<f32> = unet
            .forward(x, t, context)
            .narrow(0, 0, 1)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        let a: Vec<f32> = a0.into_data().try_to_vec::<f32>().expect("f32");
        let e = plain
            .iter()
            .zip(&a)
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        (e, ())
    };
    assert!(
        err > 1e-3,
        "junk tokens changed nothing ({err}): the test would not see a bad mask"
    );
}

/// Latent training learns to follow the prompt: latents all +1 for one label and all -1 for the
/// other, each with its own captions (random token states of their own lengths); afterwards the
/// UNet's clean-latent guess from z_t = 0 takes the sign of the prompt it is given, and the
/// padded, masked batches train as rows of their own length would.
#[test]
fn latent_training_follows_the_prompt() {
    use diffuse_nn::sd::{LatentTraining, Prompt, pad_prompts, train_latent};
    let device = Device::flex().autodiff();
    device.seed(11);
    let lay = UnetConfig::from_value(config("unet")).expect("config");
    let (unet, _) = UNet2DCondition::fresh(&lay, 5, &device).expect("fresh");
    let (c, s, d) = (4, 8, lay.context_dim);
    let noise = diffuse_core::NoiseSource::new(3);
    let prompt = |k: u64, tokens: usize| Prompt {
        states: noise
            .normals(diffuse_core::Stream::Other, k, 0..tokens as u64, d)
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        tokens,
    };
    let captions = vec![
        vec![prompt(1, 3), prompt(2, 5)],
        vec![prompt(3, 4), prompt(4, 2)],
    ];
    let empty = prompt(5, 2);
    // The padding layout: rows of 3 and 5 tokens in a [2, 5, d] batch.
    let (ctx, pad) = pad_prompts(&[&captions[0][0], &captions[0][1]], d, &Device::flex());
    assert_eq!(ctx.dims(), [2, 5, d]);
    let pad: Vec<bool> = pad.into_data().try_to_vec::<bool>().expect("bool");
    assert_eq!(
        pad,
        [
            false, false, false, true, true, false, false, false, false, false
        ]
    );

    let schedule = diffuse_core::Schedule::scaled_linear(0.00085, 0.012, 1000).expect("schedule");
    let draw = |rows: std::ops::Range<u64>| {
        let labels: Vec<usize> = rows.map(|r| (r % 2) as usize).collect();
        let z = labels
            .iter()
            .flat_map(|l| vec![if *l == 0 { 1f32 } else { -1.0 }; c * s * s])
            .collect();
        (z, labels)
    };
    let cfg = LatentTraining {
        steps: 500,
        batch: 8,
        lr: 2e-3,
        prompt_dropout: 0.1,
        seed: 0,
        ema: None,
    };
    let mut losses = vec![];
    let mut saved = vec![];
    let unet = train_latent(
        unet,
        &schedule,
        [c, s, s],
        &draw,
        &captions,
        &empty,
        &cfg,
        0,
        &mut |_, l| {
            losses.push(l);
            Ok(())
        },
        50,
        &mut |k, _| {
            saved.push(k);
            Ok(())
        },
    )
    .expect("trains");
    assert_eq!(saved.last(), Some(&cfg.steps));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&losses[100..]) < 0.5 * mean(&losses[..10]),
        "{:?}",
        losses
    );
    // From pure noise at the last step, where the latent says little about its label (sqrt(ab)
    // = 0.068 against noise of std 1 per value), the clean-latent guess (z_t - sqrt(1 - ab)
    // eps_hat) / sqrt(ab) follows the prompt: ideally +1 and -1. The prompt is learned slowly
    // (it only helps where the noise hides the latent, a small part of the loss): after 500
    // steps the two guesses are 0.21 apart; wrong signs, a mask that hides the prompt or a
    // context the loop drops would leave them in the other order or equal.
    let k = 1000;
    let (a, sd) = (
        schedule.alpha_bar(k).sqrt(),
        schedule.one_minus_alpha_bar(k).sqrt(),
    );
    let z: Vec<f32> = noise
        .normals(diffuse_core::Stream::Other, 99, 0..1, c * s * s)
        .into_iter()
        .map(|v| (sd * v) as f32)
        .collect();
    let guess = |label: usize| {
        let (ctx, pad) = pad_prompts(&[&captions[label][0]], d, &device);
        let zt = Tensor::<4>::from_data(TensorData::new(z.clone(), [1, c, s, s]), &device);
        let eps = unet.forward_masked(
            zt.clone(),
            Tensor::from_data(TensorData::new(vec![(k - 1) as f32], [1]), &device),
            ctx,
            Some(pad),
        );
        f64::from(((zt - eps * sd) / a).mean().into_scalar::<f32>())
    };
    let (plus, minus) = (guess(0), guess(1));
    assert!(plus - minus > 0.1, "guesses {plus} and {minus}");
    // A label without captions is refused by name.
    let e = train_latent(
        UNet2DCondition::fresh(&lay, 5, &device).expect("fresh").0,
        &schedule,
        [c, s, s],
        &draw,
        &[captions[0].clone(), vec![]],
        &empty,
        &cfg,
        0,
        &mut |_, _| Ok(()),
        50,
        &mut |_, _| Ok(()),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("label 1 has no captions"), "{e}");
}

/// The cross-attention carries the prompt: from identical inputs, the UNet learns in a few
/// dozen steps to output +1 for one padded, masked prompt and -1 for another.
#[test]
fn cross_attention_learns_to_tell_prompts_apart() {
    use diffuse_nn::sd::{Prompt, pad_prompts};
    let device = Device::flex().autodiff();
    let lay = UnetConfig::from_value(config("unet")).expect("config");
    let (mut unet, _) = UNet2DCondition::fresh(&lay, 5, &device).expect("fresh");
    let noise = diffuse_core::NoiseSource::new(3);
    let d = lay.context_dim;
    let prompt = |k: u64, tokens: usize| Prompt {
        states: noise
            .normals(diffuse_core::Stream::Other, k, 0..tokens as u64, d)
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        tokens,
    };
    let prompts = [prompt(1, 3), prompt(3, 4)];
    let mut adam = AdamConfig::new().init();
    let target = Tensor::cat(
        vec![
            Tensor::<4>::ones([1, 4, 8, 8], &device),
            Tensor::<4>::ones([1, 4, 8, 8], &device) * -1.0,
        ],
        0,
    );
    let mut last = f32::INFINITY;
    for _ in 0..50 {
        let (ctx, pad) = pad_prompts(&[&prompts[0], &prompts[1]], d, &device);
        let x = Tensor::<4>::zeros([2, 4, 8, 8], &device);
        let t = Tensor::<1>::from_data(TensorData::new(vec![999f32, 999.0], [2]), &device);
        let loss = (unet.forward_masked(x, t, ctx, Some(pad)) - target.clone())
            .square()
            .mean();
        last = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &unet);
        unet = adam.step(1e-3, unet, grads);
    }
    // Measured 0.0085 (from 1.08): a UNet that could not see the prompt stays at 1.
    assert!(last < 0.05, "loss {last}");
}

/// With an average of decay 1/2, what `save` gets after two steps is the closed form
/// (w1 + w2) / 2 of the weights after each step (the average starts at the first step's
/// weights), while the returned UNet holds w2.
#[test]
fn latent_training_saves_the_average_of_the_weights() {
    use burn::module::{Module, ModuleVisitor, Param};
    use diffuse_nn::sd::{LatentTraining, Prompt, train_latent};
    struct First(Option<Vec<f32>>);
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0.is_none() {
                self.0 = param.val().into_data().try_to_vec::<f32>().ok();
            }
        }
    }
    let first = |m: &UNet2DCondition| {
        let mut v = First(None);
        m.visit(&mut v);
        v.0.expect("a parameter")
    };
    let device = Device::flex().autodiff();
    device.seed(3);
    let lay = UnetConfig::from_value(config("unet")).expect("config");
    let (unet, _) = UNet2DCondition::fresh(&lay, 5, &device).expect("fresh");
    let d = lay.context_dim;
    let empty = Prompt {
        states: vec![0.5; 2 * d],
        tokens: 2,
    };
    let draw = |rows: std::ops::Range<u64>| {
        let n = (rows.end - rows.start) as usize;
        (vec![0.3f32; n * 4 * 8 * 8], vec![0; n])
    };
    let schedule = diffuse_core::Schedule::scaled_linear(0.00085, 0.012, 1000).expect("schedule");
    let cfg = LatentTraining {
        steps: 2,
        batch: 2,
        lr: 1e-2,
        prompt_dropout: 0.0,
        seed: 0,
        ema: Some(0.5),
    };
    let mut saved = vec![];
    let trained = train_latent(
        unet,
        &schedule,
        [4, 8, 8],
        &draw,
        &[vec![empty.clone()]],
        &empty,
        &cfg,
        0,
        &mut |_, _| Ok(()),
        1,
        &mut |_, m| {
            saved.push(first(m));
            Ok(())
        },
    )
    .expect("trains");
    let (w1, avg, w2) = (&saved[0], &saved[1], first(&trained));
    assert!(w1.iter().zip(&w2).any(|(a, b)| a != b), "the weights moved");
    for i in 0..w2.len() {
        let want = 0.5 * (w1[i] + w2[i]);
        assert!((avg[i] - want).abs() <= 1e-6 * want.abs().max(1.0), "{i}");
    }
    // A decay outside (0, 1) is refused.
    let bad = LatentTraining {
        ema: Some(1.0),
        ..cfg
    };
    let lay2 = UNet2DCondition::fresh(&lay, 5, &device).expect("fresh").0;
    let e = train_latent(
        lay2,
        &schedule,
        [4, 8, 8],
        &draw,
        &[vec![empty.clone()]],
        &empty,
        &bad,
        0,
        &mut |_, _| Ok(()),
        1,
        &mut |_, _| Ok(()),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("decay"), "{e}");
}
