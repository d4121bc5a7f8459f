//! Nothing a user sees changes when the code under the command line moves: for fixed seeds,
//! these runs write the same samples.csv, images and labels, byte for byte, as the binary of
//! commit 8fcb4d3 (before the pipeline layer) wrote. The fingerprints below were printed by that
//! binary:
//! `DIFFUSE_BIN=<old diffuse> DIFFUSE_PRINT=1 cargo test -p diffuse-cli --test unchanged -- --nocapture`.
//!
//! The matrix kernels (gemm, pulp) choose their code at run time by the CPU's vector width, and
//! different kernels round differently, so the bytes are the same on one kind of CPU, not on
//! every kind. Where a second fingerprint is listed, it is what commit 69324f1 printed on an
//! AVX2-only AMD EPYC (no AVX-512); that commit printed the first fingerprint of every line on
//! the machine the first fingerprints came from.
//!
//! The image model's third fingerprints are those of its own inference kernels
//! (crates/nn/src/cpu: convolutions that sum each output in another order than burn's, and a
//! fused GroupNorm with f64 statistics), printed on the AVX2 machine. Against the binary of
//! 69324f1 the first kernel's samples.csv differed by at most 2.6e-5 (values in [-1, 1]) after
//! the 10 and 8 guided steps of these two runs; against that kernel's binary (7ec1947) today's
//! differ by at most 5.8e-5 and 8.0e-6.
//!
//! On an Intel Xeon with AVX-512 (commit 2ac9a71, the same kernels) the image model drew
//! `fashion-all` with the AVX2 machine's bytes, but `fashion-prompt` differently: its prompt
//! goes through the text encoder, whose matrix products take gemm's AVX-512 kernels there.
//! That fingerprint is listed fourth.
//!
//! The last fingerprint of each image-model line is that of the direct convolution kernel
//! (crates/nn/src/cpu/direct.rs: each output one chain of fused multiply-adds), printed on the
//! AVX2 machine; against the binary before it (816cb09) samples.csv differed by at most 4.9e-5
//! (`fashion-all`) and 1.4e-5 (`fashion-prompt`).

mod common;

use std::path::{Path, PathBuf};

use common::{fingerprint, ok, s, tmp};

/// samples.csv, then labels.csv if any, then images/NNNN.png in order.
fn outputs(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![dir.join("samples.csv")];
    if dir.join("labels.csv").exists() {
        files.push(dir.join("labels.csv"));
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("images")) {
        let mut images: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        images.sort();
        files.extend(images);
    }
    files
}

/// Runs each command line (`{dir}` stands for the test's folder, `~` for a space within a
/// word; a line without `--out` writes to `{dir}/out`) and checks the fingerprint of the last
/// one's outputs.
fn check(name: &str, lines: &[&str], want: &[u64]) {
    let dir = tmp(name);
    let out = dir.join("out");
    for line in lines {
        let line = line.replace("{dir}", s(&dir));
        let words: Vec<String> = line.split(' ').map(|w| w.replace('~', " ")).collect();
        let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
        if !args.contains(&"--out") {
            args.extend(["--out", s(&out)]);
        }
        ok(&args);
    }
    let got = fingerprint(&outputs(&out));
    if std::env::var_os("DIFFUSE_PRINT").is_some() {
        println!("{name}: {got:#018x}");
    } else {
        assert!(
            want.contains(&got),
            "{name}: the outputs changed: fingerprint {got:#018x}, want one of {want:#018x?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn undiffusing_8gaussians_gives_the_same_samples() {
    // Since issue 15, 20 evaluations or fewer fit their grid by default: the lines that ran on
    // the old default say --grid karras. The fitted grid's objective changed then too (it
    // weighs where samples sit in the distribution, not only how far they moved), so its
    // fingerprint is that binary's.
    let base = "undiffuse --data 8gaussians --prior normal --n 1500 --seed 3";
    for (name, sampler, want) in [
        (
            "dpmpp-2m",
            "--steps 1000 --sampler dpmpp-2m --nfe 10 --grid karras",
            &[0xd8a54a9afd9da1b9u64][..],
        ),
        (
            "unipc-fitted",
            "--steps 1000 --sampler unipc --nfe 8 --grid fitted",
            &[0x60fd9e0864f0708f],
        ),
        (
            "heun-batches",
            "--steps 1000 --sampler heun --nfe 9 --batch 400 --grid karras",
            &[0xc56497fa3a62179b],
        ),
        (
            "euler-ancestral",
            "--steps 1000 --sampler euler-ancestral --nfe 20",
            &[0x1746cd6628466351],
        ),
        (
            "ddim",
            "--steps 1000 --sampler ddim --nfe 10 --eta 0.5",
            &[0x3b80f5fe3dcba865],
        ),
        (
            "ode",
            "--steps 1000 --sampler ode --batch 700",
            &[0x3d08a7b5d2c05ec3, 0xa83e9c52d9a03cae],
        ),
        ("ddpm", "--sampler ddpm --steps 200", &[0x5e36d5fb05294480]),
    ] {
        check(name, &[&format!("{base} {sampler}")], want);
    }
}

#[test]
fn a_trained_spiral_model_gives_the_same_samples() {
    // Since issue 17 the optimiser lives across checkpoints, so --save-every 100 trains what the
    // old binary trained in one chunk (--save-every 300); the fingerprints are that binary's
    // (commit 3f3d9f3) for --save-every 300.
    let train =
        "train --data spiral --steps 300 --batch 64 --save-every 100 --ema 0.99 --out {dir}/model";
    for (name, sample, want) in [
        (
            "spiral-dpmpp",
            "sample --model {dir}/model --n 500 --sampler dpmpp-2m --nfe 20",
            &[0x4a40702b29afff1f],
        ),
        (
            "spiral-ddpm",
            "sample --model {dir}/model --n 500 --batch 128 --seed 4",
            &[0x46b0b69caff76bb9],
        ),
    ] {
        check(name, &[train, sample], want);
    }
    let sign = "train --data delta:-0.5,0.5 --cond sign --steps 200 --hidden 32 --out {dir}/model";
    check(
        "sign-prompt",
        &[
            sign,
            "sample --model {dir}/model --prompt left --guidance 2 --n 300 --sampler euler --nfe 15",
        ],
        &[0x0bcc2fc8f1eb6c4f, 0x606e5a8ed2d1ec48],
    );
}

#[test]
fn the_shipped_image_model_draws_the_same_images() {
    check(
        "fashion-all",
        &[
            "sample --model fashion-mnist --label all --n 3 --sampler dpmpp-2m --nfe 10 --guidance 3",
        ],
        &[
            0x765f80da9c0db6d6,
            0x361df1c95cdb8c83,
            0x356f2381828d6d6d,
            0x7473f9f990d587a5,
        ],
    );
    check(
        "fashion-prompt",
        &[
            // As it is: the embedding of the sentence itself, as before prompts were read as
            // captions (shipped.rs checks that reading one equals asking for its caption).
            "sample --model fashion-mnist --prompt a~shoe~for~running --prompt-as-is --n 4 --sampler unipc --nfe 8 --guidance 3 --animate",
        ],
        &[
            0x65febada2cac16da,
            0xfba1adffe08f1c74,
            0xa7100bebff87ceee,
            0xc733b45ecef36d3e,
            0xb49950d0b6378c44,
            // The direct convolution kernel on an AVX-512 Xeon: its text encoder takes gemm's
            // AVX-512 kernels (see 7e6fa63); f9d3e3b itself printed these bytes there.
            0x67015009d8c50112,
        ],
    );
}
