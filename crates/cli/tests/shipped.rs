//! Issue 5's acceptance with the models shipped in the binary: the Fashion-MNIST model, sampled
//! with 20-NFE DPM-Solver++ at guidance 3, draws the class it is asked for (judged by the
//! shipped classifier), and prompts in words never used in training land on the right class.

mod common;

use common::{diffuse, ok, s, summary, tmp};

const SAMPLER: [&str; 6] = ["--sampler", "dpmpp-2m", "--nfe", "20", "--guidance", "3"];

/// 100 images of each class of the shipped `model`, judged by the shipped `classifier`: the
/// share drawn as asked, with the Frechet distance on its features above its floor (real
/// training images against the same test images).
fn class_accuracy(model: &str, classifier: &str) -> f64 {
    let dir = tmp(&format!("classes-{model}"));
    let samples = dir.join("s");
    let mut args = vec!["sample", "--model", model, "--label", "all", "--n", "100"];
    args.extend(SAMPLER);
    args.extend(["--batch", "100", "--out", s(&samples)]);
    ok(&args);
    let e = dir.join("e");
    ok(&[
        "eval",
        "--samples",
        s(&samples),
        "--classifier",
        classifier,
        "--out",
        s(&e),
    ]);
    let v = summary(&e);
    println!("{v:#}");
    assert_eq!(v["n"], 1000);
    let (fd, floor) = (
        v["frechet_distance"].as_f64().unwrap(),
        v["frechet_floor"].as_f64().unwrap(),
    );
    assert!(
        fd.is_finite() && floor > 0.0 && fd > floor,
        "{fd} vs floor {floor}"
    );
    v["accuracy"].as_f64().unwrap()
}

/// Prompts that name a class in words no training caption of `classes` uses; 20 images each
/// (seed 1), judged by `classifier`: the share of all of them of the class meant. `list` names
/// the test's own folder (tests of one file run at once, in one process).
fn prompt_accuracy(
    list: &str,
    model: &str,
    classifier: &str,
    classes: &[&str],
    prompts: &[(&str, &str)],
) -> f64 {
    let captions: Vec<String> = classes
        .iter()
        .flat_map(|c| diffuse_data::captions::captions(c))
        .collect();
    let dir = tmp(&format!("prompts-{list}"));
    let (mut hits, mut n) = (0.0, 0.0);
    for (k, (prompt, class)) in prompts.iter().enumerate() {
        assert!(
            !captions.iter().any(|c| c.eq_ignore_ascii_case(prompt)),
            "'{prompt}' is a training caption"
        );
        let out = dir.join(format!("p{k}"));
        let mut args = vec!["sample", "--model", model, "--prompt", prompt, "--n", "20"];
        args.extend(SAMPLER);
        args.extend(["--seed", "1", "--out", s(&out)]);
        ok(&args);
        let e = dir.join(format!("e{k}"));
        ok(&[
            "eval",
            "--samples",
            s(&out),
            "--classifier",
            classifier,
            "--class",
            class,
            "--out",
            s(&e),
        ]);
        // The model reads the prompt as one of its captions, and says which.
        let read = summary(&out);
        assert!(
            read["prompt_read_as"].is_string() && read["prompt_read_as_class"].is_string(),
            "{prompt}: {read}"
        );
        let v = summary(&e);
        let acc = v["accuracy"].as_f64().unwrap();
        println!(
            "{prompt:>48} -> {class:<10} {acc:.2}  {}",
            v["predicted_counts"]
        );
        hits += acc * 20.0;
        n += 20.0;
    }
    println!("all prompts: {:.3}", hits / n);
    hits / n
}

/// [`prompt_accuracy`] of the shipped Fashion-MNIST model, judged by its classifier.
fn fashion_prompt_accuracy(list: &str, prompts: &[(&str, &str)]) -> f64 {
    let classes = diffuse_data::images::FASHION_MNIST_CLASSES;
    prompt_accuracy(
        list,
        "fashion-mnist",
        "fashion-mnist-classifier",
        &classes,
        prompts,
    )
}

/// Acceptance 1 of issue 5: the classifier (test accuracy stated in its summary) assigns at
/// least 85% of the Fashion-MNIST model's images to the class asked for.
#[test]
fn the_shipped_model_draws_the_class_asked_for() {
    let acc = class_accuracy("fashion-mnist", "fashion-mnist-classifier");
    assert!(acc >= 0.85, "accuracy {acc}");
}

/// Acceptance 2 of issue 5: prompts in new words, at least 70% of the class meant. Read as the
/// model's captions (the default since issue 16) the shipped model scores 0.75 here (0.715 given
/// the prompts' own embeddings); the two it misses are the encoder's, whose caption vote puts
/// the anorak with the bags and hiking through mud with the sneakers.
#[test]
fn prompts_in_new_words_land_on_their_class() {
    const PROMPTS: [(&str, &str); 10] = [
        ("a shoe for running", "sneaker"),
        ("something to wear on your legs", "trouser"),
        ("a satchel for carrying books", "bag"),
        ("a warm woolly jersey", "pullover"),
        ("what a bride wears at her wedding", "dress"),
        ("footwear for the beach", "sandal"),
        ("an anorak for the rain", "coat"),
        ("footwear for hiking through mud", "ankle-boot"),
        ("a plain crew-neck top", "t-shirt"),
        ("something a businessman wears under his suit", "shirt"),
    ];
    let acc = fashion_prompt_accuracy("fashion-mnist-readme", &PROMPTS);
    assert!(acc >= 0.7, "{acc}");
}

/// Issue 16: a second list for the Fashion-MNIST model, written before any model was sampled on
/// it; no caption uses their distinctive words (checked in diffuse-data's captions tests). The
/// shipped model scores 0.845 reading the prompts as its captions (seed 1, 20 images each; 0.61
/// given the prompts' own embeddings); the bound leaves room for round-off elsewhere changing
/// a few images. A model trained 9,000 steps on twice as many captions per class scored 0.47
/// here given the prompts' own embeddings (0.65 on the list above) and was not shipped.
#[test]
fn a_second_list_of_new_prompts_lands_on_its_class() {
    const PROMPTS: [(&str, &str); 10] = [
        ("a jogging shoe", "sneaker"),
        ("blue denim for the lower body", "trouser"),
        ("something to carry groceries home in", "bag"),
        ("a turtleneck", "pullover"),
        ("a ballgown", "dress"),
        ("open-toed footwear", "sandal"),
        ("a heavy outer garment for cold weather", "coat"),
        (
            "sturdy lace-up footwear that reaches the ankle",
            "ankle-boot",
        ),
        ("a simple top to wear at the gym", "t-shirt"),
        ("an office shirt with cuffs", "shirt"),
    ];
    let acc = fashion_prompt_accuracy("fashion-mnist-richer", &PROMPTS);
    assert!(acc >= 0.75, "{acc}");
}

/// Issue 16: a third list, written before the captions' vote was measured on it or any model
/// sampled on it, and left out of the choice of the vote's temperature (made on the two lists
/// above): the shipped model scores 0.87 (0.68 given the prompts' own embeddings).
#[test]
fn a_third_list_held_out_from_the_prompt_reading_lands_on_its_class() {
    const PROMPTS: [(&str, &str); 10] = [
        ("a shoe for the basketball court", "sneaker"),
        ("a pair of chinos", "trouser"),
        ("a duffel for a weekend away", "bag"),
        ("cozy knitwear", "pullover"),
        ("what she wore to the prom", "dress"),
        ("strappy shoes for a hot day", "sandal"),
        ("a puffer for the snow", "coat"),
        ("a combat boot", "ankle-boot"),
        ("a top with a band logo printed on it", "t-shirt"),
        ("an oxford shirt with a pocket", "shirt"),
    ];
    let acc = fashion_prompt_accuracy("fashion-mnist-third", &PROMPTS);
    assert!(acc >= 0.75, "{acc}");
}

/// `--prompt-as-is` gives the model the prompt's own embedding: nothing is read as a caption,
/// and the pictures differ from the default's ("a puffer for the snow" is read as "a winter
/// coat"; as it is, the shipped model draws bags).
#[test]
fn prompt_as_is_gives_the_model_the_prompt_itself() {
    let dir = tmp("as-is");
    let (read, raw) = (dir.join("read"), dir.join("raw"));
    let base = [
        "sample",
        "--model",
        "fashion-mnist",
        "--prompt",
        "a puffer for the snow",
        "--n",
        "4",
    ];
    ok(&[&base[..], &["--out", s(&read)]].concat());
    ok(&[&base[..], &["--prompt-as-is", "--out", s(&raw)]].concat());
    let (r, w) = (summary(&read), summary(&raw));
    assert_eq!(r["prompt_read_as"], "a winter coat");
    assert_eq!(r["prompt_read_as_class"], "coat");
    assert!(w.get("prompt_read_as").is_none(), "{w}");
    assert_ne!(
        std::fs::read(read.join("images/0000.png")).unwrap(),
        std::fs::read(raw.join("images/0000.png")).unwrap()
    );
    // Reading a prompt as a caption is asking for that caption.
    let caption = dir.join("caption");
    ok(&[
        "sample",
        "--model",
        "fashion-mnist",
        "--prompt",
        "a winter coat",
        "--prompt-as-is",
        "--n",
        "4",
        "--out",
        s(&caption),
    ]);
    for i in 0..4 {
        let name = format!("images/{i:04}.png");
        assert_eq!(
            std::fs::read(read.join(&name)).unwrap(),
            std::fs::read(caption.join(&name)).unwrap(),
            "{name}"
        );
    }
}

/// Prompts for the MNIST model in words its captions ("7", "seven", "the digit 7", "the number
/// seven", "a handwritten 7", ...) do not use, written before the model was first sampled.
const MNIST_PROMPTS: [(&str, &str); 10] = [
    ("a scribbled zero", "0"),
    ("the numeral one", "1"),
    ("number two written by hand", "2"),
    ("a 3 drawn with a pen", "3"),
    ("the figure four", "4"),
    ("a handwritten numeral five", "5"),
    ("six, written quickly", "6"),
    ("a seven as written on an envelope", "7"),
    ("the numeral 8", "8"),
    ("a nine scrawled on paper", "9"),
];

/// Issue 16: an image model sampled with only a prompt draws a grid's worth with the settings
/// its numbers were measured at (the same pictures as those flags given), and the shipped judge
/// says what it sees, in a line and in summary.json.
#[test]
fn an_image_model_with_only_a_prompt_draws_a_judged_grid() {
    let dir = tmp("defaults");
    let (plain, flagged) = (dir.join("plain"), dir.join("flagged"));
    let run = diffuse(&[
        "sample",
        "--model",
        "fashion-mnist",
        "--prompt",
        "a shoe for running",
        "--out",
        s(&plain),
    ]);
    assert!(run.status.success());
    let printed = String::from_utf8_lossy(&run.stdout);
    let mut args = vec![
        "sample",
        "--model",
        "fashion-mnist",
        "--prompt",
        "a shoe for running",
        "--n",
        "20",
    ];
    args.extend(SAMPLER);
    args.extend(["--out", s(&flagged)]);
    ok(&args);
    let v = summary(&plain);
    assert_eq!(v["n"], 20);
    assert_eq!(v["sampler"], "dpmpp-2m");
    assert_eq!(v["nfe"], 20);
    assert_eq!(v["guidance"], 3.0);
    assert!(plain.join("grid.png").exists());
    for i in 0..20 {
        let name = format!("images/{i:04}.png");
        assert_eq!(
            std::fs::read(plain.join(&name)).unwrap(),
            std::fs::read(flagged.join(&name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(v["judge"], "fashion-mnist-classifier");
    let counts = v["judge_counts"].as_object().unwrap();
    let total: u64 = counts.values().map(|c| c.as_u64().unwrap()).sum();
    assert_eq!(total, 20);
    assert!(
        printed.contains("fashion-mnist-classifier sees: "),
        "{printed}"
    );
    // Every class asked for: 10 of each, and the judge's accuracy on them.
    let all = dir.join("all");
    ok(&[
        "sample",
        "--model",
        "fashion-mnist",
        "--label",
        "all",
        "--out",
        s(&all),
    ]);
    let v = summary(&all);
    assert_eq!(v["n"], 100);
    let acc = v["judge_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.85, "{acc}");
}

/// Issue 15: the MNIST model (seed 002's data), asked for each digit by its label.
#[test]
fn the_shipped_mnist_model_draws_the_digit_asked_for() {
    let acc = class_accuracy("mnist", "mnist-classifier");
    assert!(acc >= 0.95, "accuracy {acc}");
}

/// Issue 15: the MNIST model asked in words its captions do not use.
#[test]
fn mnist_prompts_in_new_words_land_on_their_digit() {
    let classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    let acc = prompt_accuracy(
        "mnist",
        "mnist",
        "mnist-classifier",
        &classes,
        &MNIST_PROMPTS,
    );
    assert!(acc >= 0.9, "{acc}");
}

/// The held-out prompts' mean share right in class and colour at 100 pictures each is 0.885
/// (README); 240 pictures estimate it within a standard error of 0.02, so below 0.8 is a
/// regression, not chance. The acceptance asks for 0.7.
const HELD_OUT_BOTH: f64 = 0.8;

/// Issue 13: the shipped latent text-to-image model composes a colour and a class it never saw
/// together: the held-out pairs' prompts, 20 pictures each, judged by the shipped classifier
/// and the colour measure (`eval --model`).
#[test]
fn the_shipped_colour_model_draws_held_out_pairs() {
    let dir = tmp("colour-held-out");
    ok(&[
        "eval",
        "--model",
        "colour-fashion",
        "--prompts",
        "held-out",
        "--n",
        "20",
        "--out",
        s(&dir),
    ]);
    let v = summary(&dir);
    assert_eq!(v["held_out_prompts"], 12);
    assert_eq!(v["guidance"][0], 3.0);
    let both = v["held_out_both_mean"].as_f64().unwrap();
    assert!(both >= HELD_OUT_BOTH, "{both}");
    let rows = std::fs::read_to_string(dir.join("prompts.csv")).unwrap();
    assert_eq!(rows.lines().count(), 13, "{rows}");
    assert!(dir.join("grid-held-out.png").exists());
}

/// Issue 13's bad input: words the captions never use still draw (a prompt is a prompt), an
/// empty prompt is unconditional, a prompt over MiniLM's 256 tokens is cut and said, and a
/// corrupted copy of the shipped folder is one line naming the file.
#[test]
fn the_shipped_colour_model_takes_any_prompt_and_names_a_broken_folder() {
    let dir = tmp("colour-prompts");
    let odd = dir.join("odd");
    let said = ok(&[
        "sample",
        "--model",
        "colour-fashion",
        "--prompt",
        "a chartreuse spaceship",
        "--n",
        "4",
        "--out",
        s(&odd),
    ]);
    assert!(odd.join("images/0003.png").exists(), "{said}");
    assert_eq!(summary(&odd)["guidance"], 3.0);
    let empty = dir.join("empty");
    ok(&[
        "sample",
        "--model",
        "colour-fashion",
        "--prompt",
        "",
        "--n",
        "2",
        "--out",
        s(&empty),
    ]);
    assert_eq!(summary(&empty)["n"], 2);
    let long = "a red sandal ".repeat(100);
    let cut = dir.join("cut");
    let said = ok(&[
        "sample",
        "--model",
        "colour-fashion",
        "--prompt",
        &long,
        "--n",
        "1",
        "--out",
        s(&cut),
    ]);
    assert!(said.contains("was cut"), "{said}");
    assert_eq!(summary(&cut)["prompt_tokens_before_truncation"], 402);
    // A copy of the shipped folder with its UNet weights cut in half.
    let copy = dir.join("copy");
    let shipped = diffuse_pipeline::shipped::PIPELINES
        .iter()
        .find(|p| p.name == "colour-fashion")
        .unwrap()
        .unpack_in(&dir.join("cache"))
        .unwrap();
    std::fs::rename(&shipped, &copy).unwrap();
    let unet = copy.join("unet/diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&unet).unwrap();
    std::fs::write(&unet, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.join("never");
    let e = common::fails(&[
        "sample",
        "--model",
        s(&copy),
        "--prompt",
        "a red sandal",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("diffusion_pytorch_model.safetensors"), "{e}");
    assert!(!out.exists());
}
