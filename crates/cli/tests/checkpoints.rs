//! Issue 17's checkpoints: the same seed gives the same bytes whatever `--save-every`, and a
//! training run killed (SIGKILL) at any instant leaves a folder whose files all come from one
//! step, that loads, samples and resumes.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok, s, summary, tmp};

const BASE: [&str; 8] = [
    "train", "--data", "spiral", "--hidden", "32", "--batch", "64", "--seed",
];

fn train(out: &Path, steps: &str, save_every: &str, ema: bool) {
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend([
        "7",
        "--steps",
        steps,
        "--save-every",
        save_every,
        "--out",
        s(out),
    ]);
    if ema {
        args.extend(["--ema", "0.9"]);
    }
    ok(&args);
}

#[test]
fn the_same_seed_gives_the_same_bytes_whatever_the_save_period() {
    let dir = tmp("bytes");
    for ema in [false, true] {
        let runs: Vec<_> = [("a", "1000"), ("b", "1000"), ("c", "7"), ("d", "1")]
            .iter()
            .map(|(name, every)| {
                let out = dir.join(format!("{name}{ema}"));
                train(&out, "60", every, ema);
                out
            })
            .collect();
        for file in ["model.safetensors", "config.json", "loss.csv"]
            .into_iter()
            .chain(ema.then_some("raw.safetensors"))
        {
            let first = std::fs::read(runs[0].join(file)).unwrap();
            for r in &runs[1..] {
                assert!(
                    first == std::fs::read(r.join(file)).unwrap(),
                    "{file} of {} differs (ema {ema})",
                    r.display()
                );
            }
        }
    }
}

/// The step of the checkpoint and the last step of its loss history.
fn steps_of(dir: &Path) -> (u64, u64) {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let losses = std::fs::read_to_string(dir.join("loss.csv")).unwrap();
    let last = losses.lines().last().unwrap().split(',').next().unwrap();
    (
        config["trained_steps"].as_u64().unwrap(),
        last.parse().unwrap(),
    )
}

/// A training run saving every step, killed at 20 instants spread over its steps: after each
/// kill the folder's config, weights and loss history are of one step, it samples, and a resume
/// continues from that step.
#[test]
fn a_run_killed_at_any_instant_leaves_a_checkpoint_that_loads_and_resumes() {
    let dir = tmp("kill");
    let bin = env!("CARGO_BIN_EXE_diffuse");
    // A fixed sequence of delays (ms) after the first checkpoint, from a small LCG.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut delay = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % 400
    };
    for ema in [false, true] {
        for k in 0..20 {
            let out = dir.join(format!("run{k}{ema}"));
            let mut args: Vec<&str> = BASE.to_vec();
            args.extend([
                "7",
                "--steps",
                "100000",
                "--save-every",
                "1",
                "--out",
                s(&out),
            ]);
            if ema {
                args.extend(["--ema", "0.9"]);
            }
            let mut child = Command::new(bin)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let started = Instant::now();
            while !out.join("config.json").exists() {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "no checkpoint"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(delay()));
            child.kill().unwrap();
            child.wait().unwrap();
            let (step, last_loss) = steps_of_unit(&out);
            assert_eq!(step, last_loss, "run {k} (ema {ema}): config and loss.csv");
            let sampled = dir.join(format!("sample{k}{ema}"));
            ok(&[
                "sample",
                "--model",
                s(&out),
                "--n",
                "20",
                "--out",
                s(&sampled),
            ]);
            let mut resume: Vec<&str> = BASE.to_vec();
            resume.extend(["7", "--steps", "3", "--resume", "--out", s(&out)]);
            if ema {
                resume.extend(["--ema", "0.9"]);
            }
            ok(&resume);
            let (after, last) = steps_of(&out);
            assert_eq!((after, last), (step + 3, step + 3), "run {k} (ema {ema})");
            assert_eq!(summary(&out)["trained_steps"], step + 3);
        }
    }
}

/// The checkpoint a reader sees: a commit cut after its marker is read from `.next/`.
fn steps_of_unit(dir: &Path) -> (u64, u64) {
    let read =
        |name: &str| String::from_utf8(diffuse_nn::commit::read(dir, name).unwrap()).unwrap();
    let config: serde_json::Value = serde_json::from_str(&read("config.json")).unwrap();
    let losses = read("loss.csv");
    let last = losses.lines().last().unwrap().split(',').next().unwrap();
    (
        config["trained_steps"].as_u64().unwrap(),
        last.parse().unwrap(),
    )
}
