//! Training and checkpoints, end to end on a small problem whose optimal denoiser is known.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use diffuse_core::denoiser::Denoiser;
use diffuse_core::samplers::level_at_step;
use diffuse_core::tensor::{from_flat, to_vec};
use diffuse_core::{Mixture, NoiseSource, Schedule, Stream};
use diffuse_nn::{
    Activation, Checkpoint, LearnedDenoiser, MlpConfig, Standardization, TimeEncoding, TrainConfig,
    load, save, train,
};

fn problem() -> (Mixture, Schedule, MlpConfig) {
    let m = Mixture::new(vec![0.5, 0.5], vec![vec![-1.0], vec![1.0]], vec![0.1, 0.1]).unwrap();
    let s = Schedule::linear(1e-4, 0.02, 100).unwrap();
    (
        m,
        s,
        MlpConfig {
            dim: 1,
            hidden: 64,
            depth: 2,
            activation: Activation::Relu,
            classes: 0,
            time: TimeEncoding::Appended,
        },
    )
}

/// Mean squared error of a denoiser's eps against the true noise on a fixed held-out set.
fn held_out_loss(den: &dyn Denoiser, m: &Mixture, s: &Schedule) -> f64 {
    let device = diffuse_core::device::cpu();
    let noise = NoiseSource::new(999);
    let mut total = 0.0;
    let mut count = 0.0;
    for k in (5..=100).step_by(5) {
        let x0 = m.sample(&noise, 0..256);
        let eps = noise.normals(Stream::Jump, k as u64, 0..256, 1);
        let xt: Vec<f64> = x0
            .iter()
            .zip(&eps)
            .map(|(a, e)| s.alpha_bar(k).sqrt() * a + s.one_minus_alpha_bar(k).sqrt() * e)
            .collect();
        let pred = to_vec(
            &den.predict(&from_flat(&xt, 256, 1, &device), level_at_step(s, k))
                .unwrap()
                .eps(),
        )
        .unwrap();
        total += pred
            .iter()
            .zip(&eps)
            .map(|(p, e)| (p - e).powi(2))
            .sum::<f64>();
        count += 256.0;
    }
    total / count
}

struct Zero;
impl Denoiser for Zero {
    fn dim(&self) -> usize {
        1
    }
    fn predict(
        &self,
        x: &Tensor<2>,
        level: diffuse_core::Level,
    ) -> diffuse_core::Result<diffuse_core::Prediction> {
        Ok(diffuse_core::Prediction {
            target: diffuse_core::Target::Eps,
            value: x.zeros_like(),
            x: x.clone(),
            level,
        })
    }
}

/// Training closes most of the gap between guessing zero noise and the exact denoiser's loss
/// (the least any model can reach) on held-out data; and a checkpoint gives back the same model.
#[test]
fn training_learns_and_checkpoints_round_trip() {
    let (m, s, cfg) = problem();
    let draw = |rows: std::ops::Range<u64>| (m.sample(&NoiseSource::new(5), rows), None);
    let tc = TrainConfig {
        steps: 1500,
        batch: 128,
        lr: 1e-3,
        weight_decay: None,
        clip: Some(1.0),
        seed: 3,
        label_dropout: 0.0,
        prompt_noise: 0.0,
        prompts: vec![],
        target: diffuse_core::Target::Eps,
        device: diffuse_core::device::cpu(),
        parallel: Default::default(),
    };
    let mut losses = vec![];
    let model = train(
        &cfg.clone().into(),
        None,
        &s,
        &draw,
        &tc,
        0,
        None,
        &mut |_, l| {
            losses.push(l);
            Ok(())
        },
        None,
    )
    .unwrap();
    assert_eq!(losses.len(), 1500);
    let device = Device::flex();
    let learned = LearnedDenoiser::new(model.valid(), 1, 100, 0);
    let (zero, best, got) = (
        held_out_loss(&Zero, &m, &s),
        held_out_loss(&m.denoiser(&device), &m, &s),
        held_out_loss(&learned, &m, &s),
    );
    println!(
        "held-out loss {got}: zero {zero}, exact {best}; first losses {:?}, last {:?}",
        &losses[..3],
        &losses[1497..]
    );
    assert!(
        got < best + 0.25 * (zero - best),
        "held-out loss {got}: zero {zero}, exact {best}"
    );

    let dir = std::env::temp_dir().join(format!("diffuse-nn-{}", std::process::id()));
    let record = Checkpoint::new(
        cfg.clone().into(),
        s.name().into(),
        100,
        Standardization {
            mean: vec![0.0],
            std: vec![1.0],
        },
        "test".into(),
        1500,
    );
    save(&dir, &model.valid(), &record).unwrap();
    let (back, rec) = load(&dir, &device).unwrap();
    assert_eq!(rec, record);
    let x = Tensor::<2>::from_data(TensorData::new(vec![0.3f32, -0.7, 1.2], [3, 1]), &device);
    let t = Tensor::<2>::from_data(TensorData::new(vec![0.1f32, 0.5, 0.9], [3, 1]), &device);
    let a: Vec<f32> = model
        .valid()
        .forward(x.clone(), t.clone(), None)
        .into_data()
        .try_to_vec()
        .unwrap();
    let b: Vec<f32> = back.forward(x, t, None).into_data().try_to_vec().unwrap();
    assert_eq!(a, b);

    // A truncated weights file, and weights for another architecture, are clear errors.
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let e = load(&dir, &device)
        .map(|_| ())
        .expect_err("truncated weights must not load")
        .to_string();
    assert!(e.contains("model.safetensors"), "{e}");
    std::fs::write(dir.join("model.safetensors"), &bytes).unwrap();
    let wider = Checkpoint {
        model: MlpConfig { hidden: 32, ..cfg }.into(),
        ..record
    };
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&wider).unwrap(),
    )
    .unwrap();
    assert!(
        load(&dir, &device).is_err(),
        "weights of another architecture must not load"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `Clipped` around a learned model returns the unclipped prediction's x_0 clamped to [lo, hi], at every noise
/// level, and leaves x_0 inside the range untouched.
#[test]
fn clipping_clamps_the_predicted_clean_data() {
    let device = Device::flex();
    device.seed(3);
    let cfg = MlpConfig {
        dim: 3,
        hidden: 16,
        depth: 2,
        activation: Activation::Relu,
        classes: 0,
        time: TimeEncoding::Appended,
    };
    let model = diffuse_nn::ModelConfig::from(cfg).init(&device);
    let s = Schedule::linear(1e-4, 0.02, 1000).unwrap();
    let x = from_flat(&[0.5, -3.0, 2.0, 0.1, 0.0, -0.2], 2, 3, &device);
    let plain = LearnedDenoiser::new(model.clone(), 3, 1000, 0);
    let clipped = diffuse_core::Clipped::new(LearnedDenoiser::new(model, 3, 1000, 0), -1.0, 1.0);
    for t in [1, 100, 999] {
        let level = level_at_step(&s, t);
        let want: Vec<f64> = to_vec(&plain.predict(&x, level).unwrap().x0())
            .unwrap()
            .iter()
            .map(|v| v.clamp(-1.0, 1.0))
            .collect();
        let got = to_vec(&clipped.predict(&x, level).unwrap().x0()).unwrap();
        assert_eq!(got.len(), 6);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "t {t}: {g} vs {w}");
        }
    }
}
