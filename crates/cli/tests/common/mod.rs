//! Running the `diffuse` binary as a user does, for every test file of the CLI.
// Each test file uses some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `diffuse ARGS` (the binary `DIFFUSE_BIN` names, when set: another build to compare).
pub fn diffuse(args: &[&str]) -> Output {
    let bin = std::env::var_os("DIFFUSE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_diffuse")),
        PathBuf::from,
    );
    Command::new(bin)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs and requires success; returns stderr.
pub fn ok(args: &[&str]) -> String {
    let out = diffuse(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "diffuse {}: {err}", args.join(" "));
    err
}

/// Runs and requires a one-line error; returns it.
pub fn fails(args: &[&str]) -> String {
    let out = diffuse(args);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(
        !out.status.success(),
        "diffuse {} succeeded",
        args.join(" ")
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

/// A fresh, empty folder for one test.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("diffuse-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The values of `DIR/samples.csv`, row-major.
pub fn samples(dir: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    text.lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .map(|v| v.parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `DIR/summary.json`.
pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// FNV-1a (64 bits) of the bytes of `files`, in order: a fingerprint of outputs that must not
/// change.
pub fn fingerprint(files: &[PathBuf]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
