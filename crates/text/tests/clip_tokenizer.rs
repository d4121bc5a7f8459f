//! CLIP's tokenizer against transformers' `CLIPTokenizer` on the tiny Stable Diffusion folders
//! (one in the slow shape, vocab.json + merges.txt, padded with `<|endoftext|>`; one in the fast
//! shape, tokenizer.json, padded with `!`): every id equal, including a prompt over 77 tokens.

use std::path::{Path, PathBuf};

use diffuse_text::ClipTokenizer;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../nn/tests/fixtures/sd")
}

fn check(name: &str) {
    check_in(&fixtures(), name)
}

fn check_in(dir: &Path, name: &str) {
    let tok = ClipTokenizer::load(&dir.join(name).join("tokenizer")).expect("tokenizer");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.reference.json"))).expect("json"),
    )
    .expect("json");
    let cases = meta["tokens"].as_array().expect("tokens");
    let mut truncated = 0;
    for case in cases {
        let prompt = case["prompt"].as_str().expect("prompt");
        let want: Vec<u32> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        let got = tok.encode(prompt).expect("encode");
        assert_eq!(got.ids, want, "{name}: ids of {prompt:?}");
        let full = case["untruncated_len"].as_u64().expect("len") as usize;
        let expect_cut = (full > tok.max_len()).then_some(full);
        assert_eq!(
            got.truncated_from, expect_cut,
            "{name}: truncation of {prompt:?}"
        );
        truncated += usize::from(expect_cut.is_some());
    }
    assert!(truncated >= 1, "the fixtures hold a prompt over 77 tokens");
}

#[test]
fn slow_shape_matches_transformers() {
    check("tiny-sd1");
}

#[test]
fn fast_shape_matches_transformers() {
    check("tiny-sd2");
}

/// CLIP's full 49,408-token vocabulary, in the full-size folders of `scripts/sd-fixtures.py --full`.
#[test]
#[ignore = "needs the full-size pipelines of scripts/sd-fixtures.py --full in $DIFFUSE_SD_FULL"]
fn full_vocabulary_matches_transformers() {
    let dir = PathBuf::from(std::env::var_os("DIFFUSE_SD_FULL").expect("set DIFFUSE_SD_FULL"));
    check_in(&dir, "sd1-full");
    check_in(&dir, "sd2-full");
}
