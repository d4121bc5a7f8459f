//! Issue 20's data parallelism as a user runs it: `train --devices 2`, and two `diffuse train`
//! processes sharing each batch over the loopback (`--nodes 2 --rank R`), give the model one
//! device gives, and the same samples.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{fails, ok, s, samples, summary, tmp};

fn train_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "train", "--data", "spiral", "--hidden", "32", "--batch", "63", "--steps", "50", "--seed",
        "5", "--out",
    ];
    a.push(s(out));
    a.extend(extra);
    a
}

fn sample(model: &Path, out: &Path) -> Vec<f64> {
    ok(&[
        "sample",
        "--model",
        s(model),
        "--n",
        "300",
        "--seed",
        "2",
        "--out",
        s(out),
    ]);
    samples(out)
}

#[test]
fn two_devices_and_two_processes_train_the_one_device_model() {
    let dir = tmp("parallel");
    let one = dir.join("one");
    let two = dir.join("two");
    ok(&train_args(&one, &[]));
    ok(&train_args(&two, &["--devices", "2"]));
    assert_eq!(summary(&two)["devices"], 2);

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let at = format!("127.0.0.1:{port}");
    // Both ranks start before either is waited for: rank 0 waits for rank 1 to join.
    let started: Vec<_> = (0..2)
        .map(|r| {
            let out = dir.join(format!("rank{r}"));
            let rank = r.to_string();
            let child = Command::new(env!("CARGO_BIN_EXE_diffuse"))
                .args(train_args(
                    &out,
                    &["--nodes", "2", "--rank", &rank, "--coordinator", &at],
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    let ranks: Vec<_> = started
        .into_iter()
        .map(|(out, child)| (out, child.wait_with_output()))
        .collect();
    for (out, child) in &ranks {
        let child = child.as_ref().unwrap();
        assert!(
            child.status.success(),
            "{}: {}",
            out.display(),
            String::from_utf8_lossy(&child.stderr)
        );
        assert_eq!(summary(out)["nodes"], 2);
    }
    // Two shares added in the same order, in one process or two: the same bytes.
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    for (out, _) in &ranks {
        assert!(weights(out) == weights(&two), "{} differs", out.display());
    }
    // Against one device: float32 summation order only.
    let (a, b) = (
        sample(&one, &dir.join("s-one")),
        sample(&two, &dir.join("s-two")),
    );
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    println!("largest sample difference, one device against two: {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
    assert_eq!(sample(&ranks[1].0, &dir.join("s-rank1")), b);
}

#[test]
fn a_bad_group_is_refused_in_one_line() {
    let dir = tmp("parallel-bad");
    let e = fails(&train_args(
        &dir.join("a"),
        &["--nodes", "2", "--rank", "2"],
    ));
    assert!(e.contains("--rank 2 of --nodes 2"), "{e}");
    let e = fails(&train_args(&dir.join("b"), &["--devices", "0"]));
    assert!(e.contains("--devices must be at least 1"), "{e}");
    let e = fails(&train_args(&dir.join("c"), &["--devices", "64"]));
    assert!(e.contains("cannot be shared by 64 devices"), "{e}");
    let e = fails(&train_args(
        &dir.join("d"),
        &[
            "--nodes",
            "2",
            "--rank",
            "1",
            "--coordinator",
            "127.0.0.1:9",
            "--join-timeout",
            "1",
        ],
    ));
    assert!(
        e.contains("could not reach rank 0 at 127.0.0.1:9 within 1 s"),
        "{e}"
    );
}
