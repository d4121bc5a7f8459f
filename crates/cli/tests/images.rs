//! Issue 5 from the command line: prompt-conditioned image models, the classifier that judges
//! generated images, and `eval --classifier`.

mod common;

use std::path::Path;

use common::{fails, ok, s, summary, tmp};

/// Writes images as a `diffuse sample` folder would: samples.csv (model units) and labels.csv.
fn write_sample_folder(dir: &Path, rows: &[Vec<f64>], labels: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    let d = rows[0].len();
    let mut csv = (0..d)
        .map(|j| format!("x{j}"))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in rows {
        csv += &(r
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
            + "\n");
    }
    std::fs::write(dir.join("samples.csv"), csv).unwrap();
    std::fs::write(
        dir.join("labels.csv"),
        format!("label\n{}\n", labels.join("\n")),
    )
    .unwrap();
}

/// The classifier learns the digits, and `eval --classifier` is consistent with it: on the very
/// images it was scored on, with their true classes, eval's accuracy is the classifier's test
/// accuracy exactly, and the Frechet distance of a set to itself is 0 while the floor (a
/// resample of the training images) is not; with every class shifted by one, the accuracy falls
/// to the confusions only.
#[test]
fn the_classifier_judges_images_consistently() {
    let dir = tmp("classifier");
    let c = dir.join("c");
    ok(&[
        "classifier",
        "--data",
        "digits",
        "--test-data",
        "digits",
        "--steps",
        "300",
        "--batch",
        "64",
        "--out",
        s(&c),
    ]);
    let acc = summary(&c)["test_accuracy"].as_f64().unwrap();
    // Chance is 0.1; 300 steps of a small convnet on 8x8 digits get well past 0.9.
    assert!(acc > 0.9, "{acc}");
    let set = diffuse_data::images::digits().unwrap();
    let rows: Vec<Vec<f64>> = (0..set.len()).map(|i| set.unit_row(i).collect()).collect();
    let labels: Vec<String> = set.labels.iter().map(|l| set.classes[*l].clone()).collect();
    let real = dir.join("real");
    write_sample_folder(&real, &rows, &labels);
    let e = dir.join("e");
    ok(&[
        "eval",
        "--samples",
        s(&real),
        "--classifier",
        s(&c),
        "--out",
        s(&e),
    ]);
    let v = summary(&e);
    assert_eq!(v["accuracy"].as_f64().unwrap(), acc);
    assert_eq!(v["n"], 1797);
    assert_eq!(v["reference_n"], 1797);
    let (fd, floor) = (
        v["frechet_distance"].as_f64().unwrap(),
        v["frechet_floor"].as_f64().unwrap(),
    );
    assert!(fd.abs() < 1e-6 * floor, "{fd} vs floor {floor}");
    assert!(floor > 0.0);
    let shifted: Vec<String> = set
        .labels
        .iter()
        .map(|l| set.classes[(l + 1) % 10].clone())
        .collect();
    write_sample_folder(&real, &rows, &shifted);
    ok(&[
        "eval",
        "--samples",
        s(&real),
        "--classifier",
        s(&c),
        "--force",
        "--out",
        s(&e),
    ]);
    assert!(summary(&e)["accuracy"].as_f64().unwrap() < 1.0 - acc + 1e-9);
    // Bad input: an unknown class, samples of the wrong size, a classifier folder that is not one.
    assert!(
        fails(&[
            "eval",
            "--samples",
            s(&real),
            "--classifier",
            s(&c),
            "--class",
            "cat"
        ])
        .contains("cat")
    );
    write_sample_folder(&real, &[vec![0.0; 10]], &["1".into()]);
    assert!(fails(&["eval", "--samples", s(&real), "--classifier", s(&c)]).contains("10 columns"));
    assert!(
        fails(&["eval", "--samples", s(&real), "--classifier", s(&real)]).contains("config.json")
    );
}

/// A prompt-conditioned UNet (a few steps on the digits: the plumbing, not the quality): it
/// records its captions and label embeddings, samples a prompt, a label and every class, states
/// the truncation of an over-long prompt, and refuses what it cannot do.
#[test]
fn a_prompt_model_trains_and_samples_prompts_labels_and_all_classes() {
    let dir = tmp("prompt");
    let m = dir.join("m");
    ok(&[
        "train",
        "--data",
        "digits",
        "--model",
        "unet",
        "--channels",
        "8",
        "--cond",
        "prompt",
        "--steps",
        "10",
        "--batch",
        "16",
        "--out",
        s(&m),
    ]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(m.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model"]["text"], 384);
    assert_eq!(cfg["label_embeddings"].as_array().unwrap().len(), 10);
    assert!(
        cfg["captions"][7]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "the digit seven")
    );
    let p = dir.join("p");
    ok(&[
        "sample",
        "--model",
        s(&m),
        "--prompt",
        "a handwritten seven",
        "--guidance",
        "3",
        "--n",
        "3",
        "--sampler",
        "dpmpp-2m",
        "--nfe",
        "4",
        "--out",
        s(&p),
    ]);
    assert_eq!(summary(&p)["prompt"], "a handwritten seven");
    assert!(p.join("images/0002.png").exists());
    let all = dir.join("all");
    ok(&[
        "sample",
        "--model",
        s(&m),
        "--label",
        "all",
        "--n",
        "2",
        "--sampler",
        "ddim",
        "--nfe",
        "3",
        "--out",
        s(&all),
    ]);
    let labels = std::fs::read_to_string(all.join("labels.csv")).unwrap();
    let labels: Vec<&str> = labels.lines().skip(1).collect();
    assert_eq!(labels.len(), 20);
    assert_eq!(
        (labels[0], labels[1], labels[2], labels[19]),
        ("0", "0", "1", "9")
    );
    assert!(all.join("images/0019.png").exists());
    let long = ["a seven"; 200].join(" and ");
    let t = dir.join("t");
    let err = ok(&[
        "sample",
        "--model",
        s(&m),
        "--prompt",
        &long,
        "--n",
        "1",
        "--sampler",
        "ddim",
        "--nfe",
        "2",
        "--out",
        s(&t),
    ]);
    assert!(err.contains("reads the first 256"), "{err}");
    assert_eq!(summary(&t)["prompt_tokens_before_truncation"], 601);
    assert!(fails(&["sample", "--model", s(&m), "--label", "eleven"]).contains("eleven"));
    assert!(
        fails(&[
            "train", "--data", "digits", "--cond", "prompt", "--steps", "1"
        ])
        .contains("unet")
    );
    assert!(
        fails(&[
            "train", "--data", "spiral", "--model", "unet", "--cond", "prompt"
        ])
        .contains("labelled")
    );
}
