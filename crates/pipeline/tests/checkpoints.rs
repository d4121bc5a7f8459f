//! Every checkpoint written by earlier versions still loads and samples the same: the fixtures
//! (see `fixtures/README.md`) were written before checkpoints had typed fields and a format per
//! model kind (`diffuse-mlp-1` then also named UNets).

use std::path::{Path, PathBuf};

use diffuse_core::samplers::{SamplerName, SamplerSpec};
use diffuse_nn::{Conditioning, ModelConfig};
use diffuse_pipeline::{Ask, Request, Silent, generate, load};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected(name: &str) -> Vec<f64> {
    diffuse_data::read_csv(&fixture(name)).unwrap().values
}

/// Samples equal to the fixture's within float32 round-off. The fixture was written on a CPU
/// with AVX-512; gemm picks its micro-kernel by vector width at run time, so an AVX2 CPU sums
/// the UNet's products in another order and lands ~2e-7 away (seen on an AMD EPYC). A checkpoint
/// read wrongly (a transposed or missing tensor) moves samples by tenths, not millionths.
fn assert_same_samples(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 1e-5, "samples differ by up to {worst:e}");
}

fn ddim(nfe: usize, ask: Ask, n: usize) -> Request {
    Request {
        sampler: SamplerSpec::new(SamplerName::Ddim).with_nfe(nfe),
        ask,
        ..Request::new(n)
    }
}

#[test]
fn an_old_mlp_checkpoint_loads_typed_and_samples_the_same() {
    let model = load(&fixture("old-mlp")).unwrap();
    assert_eq!(model.record.format, "diffuse-mlp-1");
    assert_eq!(model.record.cond, Conditioning::Sign);
    assert_eq!(model.record.target, diffuse_core::Target::V);
    assert_eq!(model.record.ema, Some(0.99));
    let x = generate(&model, &ddim(5, Ask::Prompt("left".into()), 5), &mut Silent).unwrap();
    assert_eq!(x.x, expected("old-mlp-samples.csv"));
}

#[test]
fn an_old_unet_checkpoint_loads_and_samples_the_same() {
    let model = load(&fixture("old-unet")).unwrap();
    assert_eq!(model.record.format, "diffuse-mlp-1");
    assert!(matches!(model.record.model, ModelConfig::UNet(_)));
    assert_eq!(model.record.cond, Conditioning::Label);
    let x = generate(&model, &ddim(3, Ask::AllLabels, 1), &mut Silent).unwrap();
    assert_same_samples(&x.x, &expected("old-unet-samples.csv"));
}

/// A copy saved by the current code is written in its kind's format and loads back the same;
/// a format that names another kind is refused by name.
#[test]
fn a_resaved_checkpoint_names_its_kind() {
    let dir = std::env::temp_dir().join(format!("diffuse-resave-{}", std::process::id()));
    let dev = diffuse_core::device::cpu();
    let (model, record) = diffuse_nn::load(&fixture("old-unet"), &dev).unwrap();
    diffuse_nn::save(&dir, &model, &record).unwrap();
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(text.contains("\"diffuse-unet-1\""), "{text}");
    let again = load(&dir).unwrap();
    assert_eq!(again.record.format, "diffuse-unet-1");
    let x = generate(&again, &ddim(3, Ask::AllLabels, 1), &mut Silent).unwrap();
    assert_same_samples(&x.x, &expected("old-unet-samples.csv"));
    let wrong = text.replace("\"diffuse-unet-1\"", "\"diffuse-sd-9\"");
    std::fs::write(dir.join("config.json"), wrong).unwrap();
    let e = format!("{:#}", load(&dir).err().unwrap());
    assert!(
        e.contains("diffuse-sd-9") && e.contains("config.json"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
