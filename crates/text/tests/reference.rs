//! all-MiniLM-L6-v2 in Rust against the reference implementation's numbers
//! (`fixtures/minilm.json`, written by `fixtures/make_minilm.py` with sentence-transformers).
//!
//! Needs the encoder installed (`scripts/setup.sh`); without it the tests fail and say how to
//! install it, rather than pass without checking anything.

use burn::tensor::Device;
use diffuse_text::TextEncoder;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    max_seq_length: usize,
    float32_vs_float64_max_abs: f64,
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    ids: Vec<u32>,
    untruncated_tokens: usize,
    embedding: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/minilm.json")).expect("the fixture parses")
}

fn encoder() -> TextEncoder {
    TextEncoder::installed(&Device::flex()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn tokens_and_truncation_match_the_reference() {
    let (f, enc) = (fixture(), encoder());
    assert_eq!(enc.max_tokens(), f.max_seq_length);
    for s in &f.sentences {
        let e = enc.encode(&s.text).unwrap();
        assert_eq!(e.ids, s.ids, "tokens of '{}'", s.text);
        let expected = (s.untruncated_tokens > f.max_seq_length).then_some(s.untruncated_tokens);
        assert_eq!(e.truncated_from, expected, "truncation of '{}'", s.text);
    }
}

/// The reference's own float32 result differs from its float64 result by `spread`; a float32
/// forward pass with another summation order is expected within a small multiple of that. The
/// multiple, 16, allows four extra roundings' worth of error per layer group; a wrong formula
/// (tanh GELU instead of erf, a missing LayerNorm, pooling over [CLS] only) moves embeddings by
/// 1e-4 to 1e-1.
#[test]
fn embeddings_match_the_reference() {
    let (f, enc) = (fixture(), encoder());
    let tol = 16.0 * f.float32_vs_float64_max_abs;
    for s in &f.sentences {
        let e = enc.encode(&s.text).unwrap();
        assert_eq!(e.embedding.len(), s.embedding.len());
        let err = e
            .embedding
            .iter()
            .zip(&s.embedding)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        println!(
            "{:>4} tokens  max |diff| {err:.2e}  ({})",
            e.ids.len(),
            s.text.chars().take(40).collect::<String>()
        );
        assert!(err < tol, "'{}': max |diff| {err:e} > {tol:e}", s.text);
    }
}

#[test]
fn similar_meanings_are_closer() {
    let enc = encoder();
    let e = |t: &str| enc.encode(t).unwrap().embedding;
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let (boot, shoe, coat) = (e("an ankle boot"), e("a leather boot"), e("a winter coat"));
    assert!(cos(&boot, &shoe) > cos(&boot, &coat));
}

#[test]
fn a_missing_folder_says_how_to_install() {
    let err = TextEncoder::load(std::path::Path::new("/nonexistent"), &Device::flex())
        .err()
        .expect("no encoder there");
    assert!(err.to_string().contains("setup.sh"), "{err}");
}

/// The token states a cross-attention UNet reads are the layer the checked embedding pools:
/// their mean, normalised, is that embedding, and there is one state per token read.
#[test]
fn token_states_pool_to_the_embedding() {
    let (f, enc) = (fixture(), encoder());
    for s in &f.sentences {
        let t = enc.token_states(&s.text).unwrap();
        let e = enc.encode(&s.text).unwrap();
        assert_eq!(t.states.dims(), [e.ids.len(), enc.dim()]);
        assert_eq!(t.ids, e.ids);
        assert_eq!(t.truncated_from, e.truncated_from);
        let mean = t.states.mean_dim(0);
        let norm = mean.clone().square().sum().sqrt();
        let pooled: Vec<f32> = (mean / norm.unsqueeze::<2>())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(pooled, e.embedding, "'{}'", s.text);
    }
}
