//! Running the `diffuse` binary as a user does, for every test file of the CLI.
// Each test file uses some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `diffuse ARGS`.
pub fn diffuse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diffuse"))
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
