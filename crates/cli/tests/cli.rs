//! The `diffuse` binary as a user runs it: acceptance checks of the foundation issue.

mod common;

use std::path::{Path, PathBuf};

use common::{diffuse, fails, ok, s, samples, summary, tmp};

use diffuse_core::metrics::{ks_one_sample, ks_two_sample, normal_cdf};

const LEVEL: f64 = 1e-3;

/// A 1-D mixture with unequal weights and widths, and its CDF.
fn write_gmm(dir: &Path) -> (PathBuf, impl Fn(f64) -> f64) {
    let path = dir.join("gmm.json");
    std::fs::write(
        &path,
        r#"{"weights":[0.3,0.7],"means":[[-2.0],[1.5]],"stds":[0.3,0.6]}"#,
    )
    .unwrap();
    (path, |x: f64| {
        0.3 * normal_cdf((x + 2.0) / 0.3) + 0.7 * normal_cdf((x - 1.5) / 0.6)
    })
}

const SAMPLERS: [&[&str]; 5] = [
    &["--sampler", "ddpm"],
    &["--sampler", "sde"],
    &["--sampler", "ode"],
    &["--sampler", "heun", "--grid", "uniform", "--nfe", "399"],
    &["--sampler", "dpmpp-2m", "--grid", "uniform", "--nfe", "200"],
];

#[test]
fn bad_input_is_one_line_and_a_nonzero_exit_and_loses_nothing() {
    let dir = tmp("bad");
    let w = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let bad_json = format!("gmm:{}", w("bad.json", r#"{"weights":[1],"means":[[0]]"#));
    let neg_std = format!(
        "gmm:{}",
        w("neg.json", r#"{"weights":[1],"means":[[0]],"stds":[-1]}"#)
    );
    let ragged = format!("csv:{}", w("ragged.csv", "x0,x1\n1,2\n3\n"));
    let nan = format!("csv:{}", w("nan.csv", "x\n1\nNaN\n"));
    let two_d = w("two.csv", "x0,x1\n1,2\n3,4\n");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("samples.csv"), "x\n42\n").unwrap();
    let o = s(&out);
    let cases: Vec<Vec<&str>> = vec![
        vec!["undiffuse", "--data", "gaussian:3", "--out", o],
        vec![
            "forward",
            "--data",
            "delta:0.4",
            "--schedule",
            "quadratic",
            "--out",
            o,
        ],
        vec!["forward", "--data", &bad_json, "--out", o],
        vec!["forward", "--data", &neg_std, "--out", o],
        vec!["forward", "--data", &ragged, "--out", o],
        vec!["forward", "--data", &nan, "--out", o],
        vec![
            "eval",
            "--samples",
            &two_d,
            "--data",
            "delta:0.4",
            "--out",
            o,
        ],
        vec!["forward", "--data", "delta:0.4", "--steps", "0", "--out", o],
        vec![
            "undiffuse",
            "--data",
            "delta:0.4",
            "--steps",
            "0",
            "--out",
            o,
        ],
        vec!["forward", "--data", "delta:0.4", "--n", "0", "--out", o],
        vec!["forward", "--data", "delta:0.4", "--to", "300", "--out", o],
        vec![
            "undiffuse",
            "--data",
            "delta:0.4",
            "--from",
            "10",
            "--to",
            "20",
            "--out",
            o,
        ],
        vec![
            "undiffuse",
            "--data",
            "delta:0.4",
            "--sampler",
            "dpm",
            "--out",
            o,
        ],
        vec![
            "undiffuse",
            "--data",
            "delta:0.4",
            "--start",
            "1,2",
            "--out",
            o,
        ],
        vec!["langevin", "--energy", "quartic", "--out", o],
        vec!["langevin", "--delta", "-1", "--out", o],
        vec!["langevin", "--steps", "0", "--out", o],
        vec!["metropolis", "--proposal", "walk:1", "--out", o],
        vec!["fokker-planck", "--energy", "double-well:-1", "--out", o],
        vec!["fokker-planck", "--times", "0.5,-1", "--out", o],
        vec!["fokker-planck", "--cells", "2", "--out", o],
        vec!["forward", "--data", "csv:/no/such/file.csv", "--out", o],
        vec![
            "eval",
            "--samples",
            "/no/such/samples.csv",
            "--data",
            "delta:0",
            "--out",
            o,
        ],
        vec!["forward", "--bogus"],
    ];
    // Each case into the folder holding samples (refused, untouched) and into an empty one
    // (its own error, not the folder's).
    let fresh = dir.join("fresh");
    let cases: Vec<Vec<&str>> = cases
        .iter()
        .flat_map(|c| {
            let elsewhere: Vec<&str> = c
                .iter()
                .map(|w| if *w == o { s(&fresh) } else { w })
                .collect();
            [c.clone(), elsewhere]
        })
        .collect();
    for args in cases {
        let r = diffuse(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        if args.contains(&s(&fresh)) {
            assert!(!err.contains("earlier run"), "{args:?}: {err:?}");
        }
        assert!(!r.status.success(), "{args:?} should fail");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {err:?}"
        );
        assert!(err.starts_with("error"), "{args:?}: {err:?}");
        assert!(
            !err.contains("panicked") && !err.contains("internal error"),
            "{args:?}: {err:?}"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("samples.csv")).unwrap(),
            "x\n42\n",
            "{args:?} overwrote samples"
        );
    }
}

#[test]
fn weights_that_do_not_sum_to_one_are_normalised_and_said() {
    let dir = tmp("weights");
    let p = dir.join("g.json");
    std::fs::write(
        &p,
        r#"{"weights":[1,3],"means":[[-1],[1]],"stds":[0.2,0.2]}"#,
    )
    .unwrap();
    let err = ok(&[
        "forward",
        "--data",
        &format!("gmm:{}", s(&p)),
        "--n",
        "200",
        "--out",
        s(&dir.join("o")),
    ]);
    assert!(
        err.contains("warning") && err.contains("normalised"),
        "{err}"
    );
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_batches_do_not_matter() {
    let dir = tmp("seed");
    let run = |name: &str, args: &[&str]| {
        let out = dir.join(name);
        let mut a = args.to_vec();
        a.extend(["--out", s(&out)]);
        ok(&a);
        std::fs::read_to_string(out.join("samples.csv")).unwrap()
    };
    let base = [
        "--data",
        "mixture1d",
        "--schedule",
        "constant:0.04",
        "--n",
        "500",
    ];
    let mut commands: Vec<Vec<&str>> = vec![
        [&["forward"][..], &base].concat(),
        [&["forward", "--closed-form"][..], &base].concat(),
        vec!["langevin", "--chains", "300", "--steps", "100"],
        vec!["metropolis", "--chains", "300", "--steps", "100"],
        vec!["fokker-planck", "--chains", "300", "--times", "0.5"],
    ];
    for sampler in SAMPLERS {
        commands.push([&["undiffuse", "--prior", "normal"][..], &base, sampler].concat());
    }
    // A fitted grid is fitted once, on the first 256 samples, whatever the batch.
    let fitted = ["--sampler", "unipc", "--nfe", "10", "--grid", "fitted"];
    commands.push([&["undiffuse", "--prior", "normal"][..], &base, &fitted].concat());
    for (i, c) in commands.iter().enumerate() {
        let a = run(&format!("{i}-a"), &[&c[..], &["--seed", "7"]].concat());
        let b = run(&format!("{i}-b"), &[&c[..], &["--seed", "7"]].concat());
        assert!(a == b, "{c:?}: same seed, different bytes");
        let other = run(&format!("{i}-c"), &[&c[..], &["--seed", "8"]].concat());
        assert!(a != other, "{c:?}: another seed, same bytes");
        if c[0] == "forward" || c[0] == "undiffuse" {
            let batched = run(
                &format!("{i}-d"),
                &[&c[..], &["--seed", "7", "--batch", "77"]].concat(),
            );
            assert!(a == batched, "{c:?}: batches of 77 changed the samples");
        }
    }
}

/// Acceptance 2: step by step and closed form give the same law at every T, and both are
/// N(sqrt(ab_T) x0, 1 - ab_T) for a point mass.
#[test]
fn closed_form_and_step_by_step_agree_at_every_t() {
    let dir = tmp("forward");
    for t in ["1", "10", "50", "125", "200"] {
        let (a, b) = (dir.join(format!("s{t}")), dir.join(format!("c{t}")));
        let base = [
            "forward",
            "--data",
            "delta:0.4",
            "--steps",
            "200",
            "--to",
            t,
            "--n",
            "10000",
        ];
        ok(&[&base[..], &["--out", s(&a)]].concat());
        ok(&[&base[..], &["--closed-form", "--seed", "1", "--out", s(&b)]].concat());
        let (x, y) = (samples(&a), samples(&b));
        let p = ks_two_sample(&x, &y).p_value;
        assert!(p > LEVEL, "T = {t}: two-sample KS p = {p}");
        let ab = summary(&a)["alpha_bar"].as_f64().unwrap();
        let (m, sd) = (ab.sqrt() * 0.4, (1.0 - ab).sqrt());
        for (name, v) in [("step", &x), ("closed", &y)] {
            let p = ks_one_sample(v, |z| normal_cdf((z - m) / sd)).p_value;
            assert!(
                p > LEVEL,
                "T = {t}, {name}: KS against the closed form p = {p}"
            );
        }
    }
}

/// Acceptance 3: a point mass comes back exactly; a GMM file comes back with its weights and
/// widths (KS against the true CDF), with each sampler, from q_T and from N(0, 1).
#[test]
fn undiffusion_recovers_point_masses_and_a_gmm_file() {
    let dir = tmp("undiffuse");
    let (gmm, cdf) = write_gmm(&dir);
    let gmm = format!("gmm:{}", s(&gmm));
    for (i, sampler) in SAMPLERS.iter().enumerate() {
        let out = dir.join(format!("delta{i}"));
        ok(&[
            &[
                "undiffuse",
                "--data",
                "delta:0.4",
                "--n",
                "2000",
                "--out",
                s(&out),
            ][..],
            sampler,
        ]
        .concat());
        let worst = samples(&out)
            .iter()
            .map(|v| (v - 0.4).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "{sampler:?}: a sample ended {worst} from 0.4");
        for (j, prior) in [
            ["--steps", "200", "--prior", "diffused"],
            ["--steps", "1000", "--prior", "normal"],
        ]
        .iter()
        .enumerate()
        {
            let out = dir.join(format!("gmm{i}-{j}"));
            ok(&[
                &[
                    "undiffuse",
                    "--data",
                    &gmm,
                    "--n",
                    "10000",
                    "--out",
                    s(&out),
                ][..],
                sampler,
                prior,
            ]
            .concat());
            let p = ks_one_sample(&samples(&out), &cdf).p_value;
            assert!(p > LEVEL, "{sampler:?} {prior:?}: KS p = {p}");
        }
    }
}

/// Issue 15: a user who asks for 10 evaluations and sets nothing else gets a fitted grid and
/// samples that pass, on a 2-D mixture of unequal weights and widths where the Karras grid of
/// the schedule's range gives a KS p below 1e-100; and --prior normal alone diffuses the data
/// away (T = 1000), while 200 steps say why they cannot.
#[test]
fn ten_evaluations_with_default_flags_fit_their_grid() {
    let dir = tmp("few-defaults");
    let gmm = dir.join("unequal.json");
    std::fs::write(
        &gmm,
        r#"{"weights":[0.5,0.3,0.2],"means":[[0,0],[3,1],[-1,3]],"stds":[0.5,0.1,0.25]}"#,
    )
    .unwrap();
    let gmm = format!("gmm:{}", s(&gmm));
    for sampler in ["unipc", "dpmpp-2m"] {
        let out = dir.join(sampler);
        #[rustfmt::skip]
        ok(&["undiffuse", "--data", &gmm, "--prior", "normal", "--sampler", sampler,
             "--nfe", "10", "--n", "3000", "--out", s(&out)]);
        let sum = summary(&out);
        assert_eq!(sum["steps"], 1000, "{sum}");
        assert_eq!(sum["grid"], "fitted", "{sum}");
        assert!(
            sum["grid_choice"].as_str().unwrap().starts_with("fitted"),
            "{sum}"
        );
        let p = sum["ks_vs_theory_p"].as_f64().unwrap();
        assert!(p > LEVEL, "{sampler}, default grid: KS p = {p}");
    }
    // What the user chose is kept, and said.
    let karras = dir.join("karras");
    #[rustfmt::skip]
    ok(&["undiffuse", "--data", &gmm, "--prior", "normal", "--sampler", "unipc", "--nfe", "10",
         "--grid", "karras", "--n", "300", "--out", s(&karras)]);
    assert_eq!(summary(&karras)["grid_choice"], "karras:7: given");
    // N(0, I) is not x_200 of the default schedule: a warning, and the run still happens.
    let short = dir.join("short");
    #[rustfmt::skip]
    let err = ok(&["undiffuse", "--data", &gmm, "--prior", "normal", "--steps", "200",
                   "--sampler", "unipc", "--nfe", "30", "--n", "300", "--out", s(&short)]);
    assert!(
        err.contains("alpha-bar = 0.13") && err.contains("--steps 1000"),
        "{err}"
    );
}

/// The narrow 1-D mixture of the few-step tests (README, "Fitted grids"), written into `dir`, as
/// a `--data` spec.
fn narrow_gmm(dir: &Path) -> String {
    let gmm = dir.join("narrow.json");
    std::fs::write(
        &gmm,
        r#"{"weights":[0.3,0.7],"means":[[-2],[1.5]],"stds":[0.1,0.05]}"#,
    )
    .unwrap();
    format!("gmm:{}", s(&gmm))
}

/// The levels a run's summary records, as `--grid sigmas:` takes them.
fn grid_sigmas(sum: &serde_json::Value) -> Vec<String> {
    sum["grid_sigmas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap().to_string())
        .collect()
}

/// Issue 4, acceptance 3 from the command line: a grid fitted to a mixture whose components are
/// 35 and 70 of their widths apart lets UniPC sample it in 10 evaluations (the exponential and
/// Karras grids do not); the fitted levels are written down, and given back they reproduce the
/// run without fitting again.
#[test]
fn a_fitted_grid_samples_a_narrow_mixture_and_can_be_reused() {
    let dir = tmp("fitted");
    let gmm = narrow_gmm(&dir);
    let base = [
        "undiffuse",
        "--data",
        &gmm,
        "--steps",
        "1000",
        "--prior",
        "normal",
        "--n",
        "10000",
    ];
    let unipc = ["--sampler", "unipc"];
    let fitted = dir.join("fitted");
    ok(&[
        &base[..],
        &unipc,
        &["--nfe", "10", "--grid", "fitted", "--out", s(&fitted)],
    ]
    .concat());
    let sum = summary(&fitted);
    assert_eq!(sum["grid"], "fitted");
    assert_eq!(sum["nfe"], 10);
    assert!(sum["pilot_nfe"].as_u64().unwrap() > 0);
    let p = sum["ks_vs_theory_p"].as_f64().unwrap();
    assert!(p > LEVEL, "fitted grid: KS p = {p}");
    let fit = sum["fit_error_fitted"].as_f64().unwrap();
    assert!(
        fit < sum["fit_error_exponential"].as_f64().unwrap(),
        "{sum}"
    );
    let levels = grid_sigmas(&sum);
    assert_eq!(levels.len(), 10);
    let given = format!("sigmas:{}", levels.join(","));
    let reused = dir.join("reused");
    ok(&[&base[..], &unipc, &["--grid", &given, "--out", s(&reused)]].concat());
    assert_eq!(samples(&reused), samples(&fitted));
    let sum = summary(&reused);
    assert_eq!(sum["grid"], "sigmas");
    assert!(sum.get("pilot_nfe").is_none(), "{sum}");
    // Bad grids are refused with one line.
    let o = s(&dir);
    for bad in [
        vec!["--sampler", "unipc", "--grid", "sigmas:1,10"],
        vec!["--sampler", "unipc", "--grid", "sigmas:1,0.1", "--nfe", "5"],
        vec!["--grid", "fitted", "--sampler", "euler-ancestral"],
    ] {
        let e = fails(&[&base[..], &bad[..], &["--out", o]].concat());
        assert!(e.contains("grid") || e.contains("levels"), "{bad:?}: {e}");
    }
    let e = fails(&["converge", "--data", &gmm, "--grid", "fitted", "--out", o]);
    assert!(e.contains("fitted"), "{e}");
}

/// Issue 15: DPM-Solver++(2M) at 10 evaluations with nothing but the defaults takes a fitted
/// grid with few-step ends (a free Gaussian first step, a second-order last step); the levels it
/// records, given back with `--ends few-step`, redraw the same samples.
#[test]
fn dpmpp_2m_at_few_steps_takes_few_step_ends_by_default_and_they_can_be_reused() {
    let dir = tmp("few-step-ends");
    let gmm = narrow_gmm(&dir);
    let base = [
        "undiffuse",
        "--data",
        &gmm,
        "--prior",
        "normal",
        "--sampler",
        "dpmpp-2m",
        "--n",
        "3000",
    ];
    let default = dir.join("default");
    ok(&[&base[..], &["--nfe", "10", "--out", s(&default)]].concat());
    let sum = summary(&default);
    assert_eq!(sum["grid"], "fitted", "{sum}");
    assert_eq!(sum["ends"], "few-step", "{sum}");
    assert!(
        sum["grid_choice"]
            .as_str()
            .unwrap()
            .contains("few-step ends"),
        "{sum}"
    );
    assert_eq!(sum["nfe"], 10);
    let p = sum["ks_vs_theory_p"].as_f64().unwrap();
    assert!(p > LEVEL, "KS p = {p}");
    let levels = grid_sigmas(&sum);
    assert_eq!(levels.len(), 11, "one free level and ten evaluated: {sum}");
    let given = format!("sigmas:{}", levels.join(","));
    let reused = dir.join("reused");
    ok(&[
        &base[..],
        &["--grid", &given, "--ends", "few-step", "--out", s(&reused)],
    ]
    .concat());
    assert_eq!(samples(&reused), samples(&default));
    assert_eq!(summary(&reused)["nfe"], 10);
    // Plain ends, asked for, are kept; a sampler without a sigma grid refuses the flag.
    let plain = dir.join("plain");
    ok(&[
        &base[..],
        &["--nfe", "10", "--ends", "plain", "--out", s(&plain)],
    ]
    .concat());
    let sum = summary(&plain);
    assert!(sum.get("ends").is_none(), "{sum}");
    assert_eq!(sum["grid_sigmas"].as_array().unwrap().len(), 10);
    let e = fails(&[
        "undiffuse",
        "--data",
        &gmm,
        "--sampler",
        "ddpm",
        "--ends",
        "few-step",
        "--out",
        s(&dir),
    ]);
    assert!(e.contains("ends few-step"), "{e}");
}

/// Acceptance 4: undiffusing from T to B gives the law of diffusing from 0 to B, at every B.
#[test]
fn undiffusing_to_b_matches_diffusing_to_b() {
    let dir = tmp("to-b");
    let (gmm, _) = write_gmm(&dir);
    let gmm = format!("gmm:{}", s(&gmm));
    for b in ["199", "150", "100", "50", "10", "1"] {
        let fwd = dir.join(format!("f{b}"));
        ok(&[
            "forward",
            "--data",
            &gmm,
            "--to",
            b,
            "--n",
            "10000",
            "--closed-form",
            "--seed",
            "3",
            "--out",
            s(&fwd),
        ]);
        let reference = samples(&fwd);
        for (i, sampler) in SAMPLERS.iter().enumerate() {
            let out = dir.join(format!("u{b}-{i}"));
            ok(&[
                &[
                    "undiffuse",
                    "--data",
                    &gmm,
                    "--from",
                    "200",
                    "--to",
                    b,
                    "--n",
                    "10000",
                    "--out",
                    s(&out),
                ][..],
                sampler,
            ]
            .concat());
            let p = ks_two_sample(&samples(&out), &reference).p_value;
            assert!(p > LEVEL, "B = {b}, {sampler:?}: two-sample KS p = {p}");
        }
    }
}

#[test]
fn eval_accepts_the_right_law_and_rejects_a_wrong_one() {
    let dir = tmp("eval");
    let good = dir.join("good");
    ok(&[
        "undiffuse",
        "--data",
        "8gaussians",
        "--steps",
        "500",
        "--prior",
        "normal",
        "--sampler",
        "ode",
        "--n",
        "4000",
        "--out",
        s(&good),
    ]);
    let e = dir.join("e1");
    ok(&[
        "eval",
        "--samples",
        s(&good.join("samples.csv")),
        "--data",
        "8gaussians",
        "--out",
        s(&e),
    ]);
    let p = summary(&e)["ks_p_bonferroni"].as_f64().unwrap();
    assert!(p > LEVEL, "8gaussians: Bonferroni KS p = {p}");
    let e2 = dir.join("e2");
    ok(&[
        "eval",
        "--samples",
        s(&good.join("samples.csv")),
        "--data",
        "moons",
        "--out",
        s(&e2),
    ]);
    let v = summary(&e2);
    assert!(v["ks_two_sample_min_p"].as_f64().unwrap() < 1e-6);
    assert!(
        v["energy_distance"].as_f64().unwrap() > summary(&e)["energy_distance"].as_f64().unwrap()
    );
}

#[test]
fn the_tour_writes_a_page_with_every_figure() {
    let dir = tmp("tour");
    ok(&["tour", "--quick", "--out", s(&dir)]);
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let mut figures = 0;
    for part in html.split("<img src=\"").skip(1) {
        let file = part.split('"').next().unwrap();
        assert!(dir.join(file).exists(), "{file} is linked but missing");
        figures += 1;
    }
    assert!(figures >= 30, "only {figures} figures");
    for needle in [
        "Langevin",
        "Metropolis",
        "heatmap.png",
        "guess.png",
        "compare.png",
        "diffuse forward --data delta:0.4",
        "animation.gif",
        "--prompt &quot;a shoe for running&quot;",
        "frechet_floor",
        "--grid fitted",
        "grid_sigmas",
        "How to read this page",
        "reconstructions.png",
        "grid-held-out.png",
        "guidance.png",
        "interpolation.gif",
        "blue_to_red",
    ] {
        assert!(html.contains(needle), "index.html lacks {needle}");
    }
    // Captions are written from the runs' numbers: no placeholder left, no internal words, and
    // seed 004's share of samples near its points is the one in its table.
    assert!(!html.contains("Issue "), "an internal word on the page");
    for caption in html.split("</h2><p>").skip(1) {
        let caption = caption.split("</p>").next().unwrap();
        for part in caption.split('{').skip(1) {
            let word = part.split('}').next().unwrap();
            assert!(
                !word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '%'),
                "a placeholder left in: {caption}"
            );
        }
    }
    let near = summary(&dir.join("seed004-sample"))["fraction_within_atom_radius"]
        .as_f64()
        .unwrap();
    assert!(
        html.contains(&format!(
            "DDPM from N(0, 1): {:.1}% of the samples",
            100.0 * near
        )),
        "seed004-sample's caption does not say its table's {near}"
    );
}

/// Issue 4, acceptance 4: the ODE likelihood of Gaussian-mixture samples with the mixture's exact
/// denoiser is their true mean log-density within 0.02 nats per dimension.
#[test]
fn nll_of_a_mixture_matches_its_log_density() {
    let dir = tmp("nll");
    let g = dir.join("g.json");
    std::fs::write(
        &g,
        r#"{"weights":[0.3,0.7],"means":[[-2,0.5],[1.5,-1]],"stds":[0.3,0.6]}"#,
    )
    .unwrap();
    let spec = format!("gmm:{}", s(&g));
    let samples = dir.join("x");
    ok(&[
        "forward",
        "--data",
        &spec,
        "--to",
        "0",
        "--n",
        "1000",
        "--trajectories",
        "0",
        "--out",
        s(&samples),
    ]);
    for probes in ["0", "4"] {
        let out = dir.join(format!("nll{probes}"));
        ok(&[
            "nll",
            "--data",
            &spec,
            "--samples",
            s(&samples.join("samples.csv")),
            "--probes",
            probes,
            "--out",
            s(&out),
        ]);
        let v = summary(&out);
        let err = v["error_nats_per_dim"].as_f64().unwrap();
        // Hutchinson's estimate adds its own noise: allow 4 of its standard errors on top.
        let slack = if probes == "0" {
            0.0
        } else {
            4.0 * v["stderr"].as_f64().unwrap()
        };
        assert!(
            err.abs() < 0.02 + slack,
            "probes {probes}: {err} nats/dim off"
        );
        assert!(v["bits_per_dim"].as_f64().unwrap() > 0.0);
        assert!(v["alpha_bar_T"].as_f64().unwrap() < 1e-3);
    }
    // A schedule that stops short of N(0, I) gives numbers that are off: said, with alpha_bar_T.
    let out = dir.join("short");
    let err = ok(&[
        "nll",
        "--data",
        &spec,
        "--samples",
        s(&samples.join("samples.csv")),
        "--schedule",
        "linear:1e-4:0.002",
        "--steps",
        "100",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("warning") && err.contains("alpha_bar_T = 9.0"),
        "{err}"
    );
    assert!(summary(&out)["alpha_bar_T"].as_f64().unwrap() > 0.89);
}

#[test]
fn converge_reports_orders_for_every_sampler() {
    let dir = tmp("converge");
    ok(&[
        "converge",
        "--data",
        "mixture1d",
        "--schedule",
        "constant:0.04",
        "--steps",
        "200",
        "--nfe",
        "10,20,40",
        "--n",
        "300",
        "--out",
        s(&dir),
    ]);
    let v = summary(&dir);
    let samplers = v["samplers"].as_object().unwrap();
    assert_eq!(samplers.len(), 7);
    for (name, r) in samplers {
        assert_eq!(r["nfe"].as_array().unwrap().len(), 3, "{name}");
        assert!(r["order"].as_f64().unwrap().is_finite(), "{name}");
    }
    assert!(dir.join("orders.png").exists() && dir.join("energy.png").exists());
}

/// Issue 3 groundwork: train, checkpoint, resume and sample from the command line.
#[test]
fn train_resume_and_sample_from_a_model_folder() {
    let dir = tmp("train");
    let m = dir.join("m");
    let base = [
        "train",
        "--data",
        "delta:-1,1",
        "--timesteps",
        "100",
        "--hidden",
        "32",
        "--depth",
        "2",
        "--batch",
        "64",
    ];
    ok(&[
        &base[..],
        &["--steps", "200", "--save-every", "100", "--out", s(&m)],
    ]
    .concat());
    for f in [
        "model.safetensors",
        "config.json",
        "loss.csv",
        "loss.png",
        "summary.json",
    ] {
        assert!(m.join(f).exists(), "{f}");
    }
    let losses = |p: &Path| {
        std::fs::read_to_string(p.join("loss.csv"))
            .unwrap()
            .lines()
            .count()
            - 1
    };
    assert_eq!(losses(&m), 200);
    ok(&[&base[..], &["--steps", "100", "--resume", "--out", s(&m)]].concat());
    assert_eq!(losses(&m), 300);
    assert_eq!(summary(&m)["trained_steps"].as_u64(), Some(300));

    let (a, b) = (dir.join("a"), dir.join("b"));
    for out in [&a, &b] {
        ok(&[
            "sample",
            "--model",
            s(&m),
            "--n",
            "300",
            "--sampler",
            "ddim",
            "--nfe",
            "20",
            "--out",
            s(out),
        ]);
    }
    assert_eq!(
        std::fs::read_to_string(a.join("samples.csv")).unwrap(),
        std::fs::read_to_string(b.join("samples.csv")).unwrap()
    );
    let batched = dir.join("c");
    ok(&[
        "sample",
        "--model",
        s(&m),
        "--n",
        "300",
        "--batch",
        "77",
        "--sampler",
        "ddim",
        "--nfe",
        "20",
        "--out",
        s(&batched),
    ]);
    // The noise of a sample never depends on its batch; a network's matrix products may round
    // differently for another number of rows, so learned samples agree to float32 rounding.
    let (x, y) = (samples(&a), samples(&batched));
    let worst = x
        .iter()
        .zip(&y)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-4, "batches of 77 moved a sample by {worst}");

    // Guidance with nothing to guide towards is an error, not a number in summary.json.
    let e = fails(&[
        "sample",
        "--model",
        s(&m),
        "--guidance",
        "3",
        "--out",
        s(&a),
    ]);
    assert!(e.contains("--guidance") && e.contains("--label"), "{e}");

    // A truncated model file: one line, non-zero exit, the previous samples untouched.
    let bytes = std::fs::read(m.join("model.safetensors")).unwrap();
    std::fs::write(m.join("model.safetensors"), &bytes[..bytes.len() / 3]).unwrap();
    let before = std::fs::read_to_string(a.join("samples.csv")).unwrap();
    let r = diffuse(&["sample", "--model", s(&m), "--n", "10", "--out", s(&a)]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success()
            && err.trim_end().lines().count() == 1
            && err.contains("model.safetensors"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(a.join("samples.csv")).unwrap(),
        before
    );
    let r = diffuse(&[&base[..], &["--model", "unet", "--out", s(&dir.join("u"))]].concat());
    assert!(!r.status.success());
}

/// `nll --model`: a trained model's density, in the data's units. Its cross-entropy cannot beat
/// the true density (up to sampling error), and the standardisation's Jacobian is counted: the
/// same data in units ten times smaller trains the same network (the standardised data are the
/// same) and costs exactly ln 10 nats more per sample.
#[test]
fn nll_of_a_trained_model_is_a_density_in_the_data_units() {
    let dir = tmp("nll-model");
    let mut nll = vec![];
    for (scale, name) in [(1.0, "g1"), (10.0, "g10")] {
        let g = dir.join(format!("{name}.json"));
        std::fs::write(
            &g,
            format!(
                r#"{{"weights":[0.3,0.7],"means":[[{}],[{}]],"stds":[{},{}]}}"#,
                -2.0 * scale,
                1.5 * scale,
                0.3 * scale,
                0.6 * scale
            ),
        )
        .unwrap();
        let spec = format!("gmm:{}", s(&g));
        let (m, x) = (dir.join(format!("m{name}")), dir.join(format!("x{name}")));
        ok(&[
            "train",
            "--data",
            &spec,
            "--steps",
            "1500",
            "--batch",
            "256",
            "--out",
            s(&m),
        ]);
        ok(&[
            "forward",
            "--data",
            &spec,
            "--to",
            "0",
            "--n",
            "400",
            "--seed",
            "7",
            "--trajectories",
            "0",
            "--out",
            s(&x),
        ]);
        let samples = x.join("samples.csv");
        let (by_model, by_truth) = (dir.join(format!("nm{name}")), dir.join(format!("nt{name}")));
        ok(&[
            "nll",
            "--model",
            s(&m),
            "--samples",
            s(&samples),
            "--ode-steps",
            "100",
            "--out",
            s(&by_model),
        ]);
        ok(&[
            "nll",
            "--data",
            &spec,
            "--samples",
            s(&samples),
            "--out",
            s(&by_truth),
        ]);
        let read = |d: &Path| -> Vec<f64> {
            std::fs::read_to_string(d.join("loglik.csv"))
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| l.parse::<f64>().unwrap())
                .collect()
        };
        let (lm, lt) = (read(&by_model), read(&by_truth));
        // Paired differences: the model's excess over the true density, in nats per sample.
        let diff: Vec<f64> = lt.iter().zip(&lm).map(|(t, m)| t - m).collect();
        let n = diff.len() as f64;
        let mean = diff.iter().sum::<f64>() / n;
        let se = (diff.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
        assert!(
            mean > -3.0 * se,
            "{name}: the model beats the truth by {mean} (se {se})"
        );
        assert!(
            mean < 0.5,
            "{name}: {mean} nats per sample worse than the truth"
        );
        nll.push(summary(&by_model)["nll_nats"].as_f64().unwrap());
    }
    let shift = nll[1] - nll[0];
    assert!(
        (shift - 10f64.ln()).abs() < 1e-3,
        "scaling the data by 10 moved the model's NLL by {shift}, not ln 10"
    );
}

fn loss_rows(dir: &Path) -> Vec<(usize, f64)> {
    std::fs::read_to_string(dir.join("loss.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (k, v) = l.split_once(',').unwrap();
            (k.parse().unwrap(), v.parse().unwrap())
        })
        .collect()
}

/// Seed 001's ConditionalLinear model and the sinusoidal-embedding MLP train (the loss falls),
/// resume (the loss curve continues), sample with a fast sampler, and refuse to resume as another
/// architecture; AdamW is an option; bad model options are one-line errors.
#[test]
fn every_architecture_trains_resumes_and_samples() {
    let dir = tmp("models");
    let (gmm, _) = write_gmm(&dir);
    let spec = format!("gmm:{}", s(&gmm));
    for model in ["conditional-mlp", "sinusoidal-mlp"] {
        let m = dir.join(model);
        let train = |extra: &[&str]| {
            let mut args = vec![
                "train",
                "--data",
                &spec,
                "--model",
                model,
                "--hidden",
                "64",
                "--depth",
                "2",
                "--timesteps",
                "100",
                "--batch",
                "128",
                "--weight-decay",
                "0.01",
                "--out",
                s(&m),
            ];
            args.extend_from_slice(extra);
            ok(&args);
        };
        train(&["--steps", "600"]);
        train(&["--steps", "100", "--resume"]);
        let losses = loss_rows(&m);
        assert_eq!(losses.len(), 700, "{model}");
        assert!(losses.windows(2).all(|w| w[1].0 == w[0].0 + 1), "{model}");
        let mean = |r: &[(usize, f64)]| r.iter().map(|p| p.1).sum::<f64>() / r.len() as f64;
        let (first, last) = (mean(&losses[..50]), mean(&losses[650..]));
        assert!(last < 0.8 * first, "{model}: loss {first} -> {last}");
        let cfg = std::fs::read_to_string(m.join("config.json")).unwrap();
        assert!(cfg.contains(if model == "conditional-mlp" {
            "per-step"
        } else {
            "sinusoidal"
        }));
        let out = dir.join(format!("{model}-samples"));
        ok(&[
            "sample",
            "--model",
            s(&m),
            "--n",
            "500",
            "--sampler",
            "dpmpp-2m",
            "--nfe",
            "20",
            "--out",
            s(&out),
        ]);
        assert!(
            samples(&out)
                .iter()
                .all(|v| v.is_finite() && v.abs() < 10.0)
        );
        let other = diffuse(&[
            "train",
            "--data",
            &spec,
            "--model",
            "mlp",
            "--timesteps",
            "100",
            "--steps",
            "10",
            "--resume",
            "--out",
            s(&m),
        ]);
        assert!(
            !other.status.success(),
            "{model}: resumed as another architecture"
        );
    }
    for bad in [
        &["--model", "transformer"][..],
        &["--model", "sinusoidal-mlp", "--time-features", "3"],
        &["--weight-decay", "-1"],
        &["--prompt-noise", "0.1"],
        &["--prompt-noise", "-1"],
    ] {
        let mut args = vec!["train", "--data", &spec, "--steps", "10", "--out"];
        let o = dir.join("bad");
        args.push(s(&o));
        args.extend_from_slice(bad);
        let out = diffuse(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.trim().lines().count() == 1,
            "{bad:?}: {err}"
        );
    }
}

/// `diffuse demo`: lists the recipes, refuses an unknown one, and seed 000's recipe (quick)
/// answers its prompts (issue 3, acceptance 3).
#[test]
fn the_seed_000_demo_follows_its_prompts() {
    let list = diffuse(&["demo"]);
    let text = String::from_utf8_lossy(&list.stdout);
    for name in ["seed000", "seed001", "seed003", "seed004"] {
        assert!(text.contains(name), "{text}");
    }
    assert!(!diffuse(&["demo", "seed999"]).status.success());
    let dir = tmp("demo");
    ok(&["demo", "seed000", "--quick", "--out", s(&dir)]);
    for prompt in ["left", "right"] {
        let v = summary(&dir.join(format!("seed000-{prompt}")));
        let f = v["fraction_matching_prompt"].as_f64().unwrap();
        assert!(f > 0.95, "{prompt}: {f}");
    }
    assert!(dir.join("index.html").exists());
}

/// Issue 5 groundwork: image data sets train and sample from the command line. A
/// class-conditional model of scikit-learn's digits writes each sample as an 8x8 grayscale PNG
/// and a grid; Fashion-MNIST is read from the Debian package (60,000 28x28 images, ten classes);
/// a corrupt image in a folder is a one-line error.
#[test]
fn image_data_trains_and_samples_pictures() {
    let dir = tmp("images");
    let m = dir.join("m");
    ok(&[
        "train",
        "--data",
        "digits",
        "--cond",
        "label",
        "--hidden",
        "64",
        "--depth",
        "2",
        "--steps",
        "300",
        "--batch",
        "64",
        "--out",
        s(&m),
    ]);
    let out = dir.join("s");
    ok(&[
        "sample",
        "--model",
        s(&m),
        "--label",
        "3",
        "--n",
        "12",
        "--sampler",
        "dpmpp-2m",
        "--nfe",
        "10",
        "--out",
        s(&out),
    ]);
    for i in 0..12 {
        let png = std::fs::read(out.join("images").join(format!("{i:04}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // IHDR: width and height (big-endian u32 at 16 and 20), bit depth 8, colour type 0 (gray).
        assert_eq!(
            (&png[16..24], png[24], png[25]),
            (&[0, 0, 0, 8, 0, 0, 0, 8][..], 8, 0)
        );
    }
    assert!(out.join("grid.png").exists());
    // The UNet trains on the same images (a few steps: the plumbing, not the quality), resumes,
    // and samples pictures of the training size; it refuses data that are not images.
    let u = dir.join("unet");
    for extra in [&[][..], &["--resume"]] {
        let mut args = vec![
            "train",
            "--data",
            "digits",
            "--model",
            "unet",
            "--channels",
            "8",
            "--cond",
            "label",
            "--steps",
            "20",
            "--batch",
            "16",
            "--out",
            s(&u),
        ];
        args.extend_from_slice(extra);
        ok(&args);
    }
    let cfg = std::fs::read_to_string(u.join("config.json")).unwrap();
    assert!(
        cfg.contains("\"mults\"") && cfg.contains("\"trained_steps\": 40"),
        "{cfg}"
    );
    let us = dir.join("unet-samples");
    ok(&[
        "sample",
        "--model",
        s(&u),
        "--label",
        "7",
        "--n",
        "4",
        "--sampler",
        "dpmpp-2m",
        "--nfe",
        "5",
        "--out",
        s(&us),
    ]);
    assert!(us.join("images").join("0003.png").exists() && us.join("grid.png").exists());
    let e = diffuse(&[
        "train", "--data", "spiral", "--model", "unet", "--steps", "1",
    ]);
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && err.contains("needs image data"),
        "{err}"
    );
    // Fashion-MNIST from the package the README's set-up installs: 784 pixels in [-1, 1].
    let f = dir.join("f");
    ok(&[
        "forward",
        "--data",
        "fashion-mnist",
        "--to",
        "0",
        "--n",
        "20",
        "--trajectories",
        "0",
        "--out",
        s(&f),
    ]);
    let x = samples(&f);
    assert_eq!(x.len(), 20 * 784);
    assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)) && x.iter().any(|v| *v > 0.5));
    // Its colour version: 32x32 RGB, 3,072 values per image; the gray pixel UNet refuses it.
    let c = dir.join("c");
    ok(&[
        "forward",
        "--data",
        "colour-fashion",
        "--to",
        "0",
        "--n",
        "5",
        "--trajectories",
        "0",
        "--out",
        s(&c),
    ]);
    let x = samples(&c);
    assert_eq!(x.len(), 5 * 32 * 32 * 3);
    assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)) && x.iter().any(|v| *v > 0.5));
    let e = diffuse(&[
        "train",
        "--data",
        "colour-fashion",
        "--model",
        "unet",
        "--steps",
        "1",
    ]);
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && err.contains("3 channels") && !err.contains("panicked"),
        "{err}"
    );
    let e = diffuse(&[
        "train",
        "--data",
        "fashion-mnist:/no/such/dir",
        "--steps",
        "1",
    ]);
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && err.contains("dataset-fashion-mnist"),
        "{err}"
    );
    // A corrupt image in an image folder.
    let folder = dir.join("folder");
    std::fs::create_dir_all(folder.join("a")).unwrap();
    std::fs::write(folder.join("a").join("x.png"), b"not a png").unwrap();
    let spec = format!("images:{}", s(&folder));
    let e = diffuse(&[
        "train",
        "--data",
        &spec,
        "--steps",
        "1",
        "--out",
        s(&dir.join("t")),
    ]);
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && err.trim().lines().count() == 1 && err.contains("x.png"),
        "{err}"
    );
}

/// Seed 003's spiral, trained briefly and sampled with 20 steps of DPM-Solver++(2M), lands on
/// the spiral: its excess energy distance to fresh draws is under the bound the pipeline's
/// example (`crates/pipeline/examples/spiral.rs`) holds the same run to.
#[test]
fn a_short_spiral_run_lands_on_the_spiral() {
    let dir = tmp("spiral");
    let m = dir.join("m");
    ok(&[
        "train",
        "--data",
        "spiral",
        "--steps",
        "4000",
        "--batch",
        "128",
        "--out",
        s(&m),
    ]);
    let out = dir.join("s");
    ok(&[
        "sample",
        "--model",
        s(&m),
        "--n",
        "2000",
        "--sampler",
        "dpmpp-2m",
        "--nfe",
        "20",
        "--out",
        s(&out),
    ]);
    let excess = summary(&out)["excess_energy_distance"].as_f64().unwrap();
    assert!(excess < 0.02, "excess energy distance {excess}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Argument errors name what is wrong on their one line: the missing option, the values a
/// refused one takes, and the help of the subcommand at hand.
#[test]
fn argument_errors_name_the_option_and_what_would_work() {
    let e = fails(&["sample"]);
    assert!(
        e.contains("--model") && e.contains("diffuse sample --help"),
        "{e}"
    );
    let e = fails(&["sample", "--model", "fashion-mnist", "--sampler", "rk4"]);
    assert!(
        e.contains("'rk4'") && e.contains("dpmpp-2m") && e.contains("unipc"),
        "{e}"
    );
    let e = fails(&["eval"]);
    assert!(e.contains("--samples"), "{e}");
}

/// Issue 17: an --out holding another run's results is refused (naming the file) unless
/// --force, which first clears the stale outputs diffuse wrote there; a trained model is
/// replaced only with --force, or continued with --resume; two runs cannot write one folder.
#[test]
fn outputs_of_an_earlier_run_are_never_lost_silently() {
    let dir = tmp("outsafe");
    let m = dir.join("m");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            "spiral",
            "--steps",
            "30",
            "--hidden",
            "16",
            "--out",
            s(&m),
        ];
        args.extend(extra);
        diffuse(&args)
    };
    assert!(train(&[]).status.success());
    let before = std::fs::read(m.join("model.safetensors")).unwrap();
    let e = fails(&[
        "train",
        "--data",
        "moons",
        "--steps",
        "20",
        "--hidden",
        "8",
        "--out",
        s(&m),
    ]);
    assert!(
        e.contains("earlier run") && e.contains("--resume") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(std::fs::read(m.join("model.safetensors")).unwrap(), before);
    assert!(train(&["--resume"]).status.success());
    assert_eq!(summary(&m)["trained_steps"], 60);
    // Samples: a second run is refused; with --force, a smaller run's images replace the
    // larger one's, none left behind.
    let out = dir.join("s");
    ok(&[
        "sample",
        "--model",
        "fashion-mnist",
        "--n",
        "12",
        "--out",
        s(&out),
    ]);
    let e = fails(&[
        "sample",
        "--model",
        "fashion-mnist",
        "--n",
        "3",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("summary.json") && e.contains("--force"), "{e}");
    assert_eq!(std::fs::read_dir(out.join("images")).unwrap().count(), 12);
    ok(&[
        "sample",
        "--model",
        "fashion-mnist",
        "--n",
        "3",
        "--force",
        "--out",
        s(&out),
    ]);
    assert_eq!(std::fs::read_dir(out.join("images")).unwrap().count(), 3);
    // The bench refuses the same folder before it times anything (it used to time for minutes,
    // then refuse to write).
    let e = fails(&[
        "bench",
        "--train-steps",
        "1",
        "--batches",
        "5",
        "--sample-n",
        "1",
        "--repeats",
        "1",
        "--unet-steps",
        "0",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("summary.json") && e.contains("--force"), "{e}");
    assert!(!e.contains("steps/s"), "timed before refusing: {e}");
    assert_eq!(std::fs::read_dir(out.join("images")).unwrap().count(), 3);
    // A folder another run is writing is refused.
    let busy = dir.join("busy");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_diffuse"))
        .args([
            "train",
            "--data",
            "spiral",
            "--steps",
            "100000",
            "--out",
            s(&busy),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !busy.join(".lock").exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let e = fails(&[
        "sample",
        "--model",
        "fashion-mnist",
        "--n",
        "2",
        "--force",
        "--out",
        s(&busy),
    ]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(e.contains("another diffuse run"), "{e}");
}

/// `--data mnist` without a folder reads where scripts/mnist.sh installs (or $DIFFUSE_MNIST),
/// and says how to install it when nothing is there.
#[test]
fn mnist_without_a_folder_reads_the_installed_files() {
    let dir = tmp("mnist-default");
    let idx = |dims: &[u32], data: &[u8]| {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    };
    let files = dir.join("mnist");
    std::fs::create_dir_all(&files).unwrap();
    let pixels: Vec<u8> = (0..8 * 16).map(|v| (v * 37 % 256) as u8).collect();
    let labels: Vec<u8> = (0..8).map(|v| v % 10).collect();
    for split in ["train", "t10k"] {
        std::fs::write(
            files.join(format!("{split}-images.idx3-ubyte")),
            idx(&[8, 4, 4], &pixels),
        )
        .unwrap();
        std::fs::write(
            files.join(format!("{split}-labels.idx1-ubyte")),
            idx(&[8], &labels),
        )
        .unwrap();
    }
    let run = |mnist: &Path, out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_diffuse"))
            .args(["train", "--data", "mnist", "--steps", "2", "--batch", "4"])
            .args(["--hidden", "8", "--depth", "1", "--out"])
            .arg(dir.join(out))
            .env("DIFFUSE_MNIST", mnist)
            .output()
            .unwrap()
    };
    let good = run(&files, "m");
    let err = String::from_utf8_lossy(&good.stderr);
    assert!(good.status.success(), "{err}");
    let config = std::fs::read_to_string(dir.join("m").join("config.json")).unwrap();
    assert!(config.contains("\"mnist\""), "{config}");
    let bad = run(&dir.join("nowhere"), "n");
    let err = String::from_utf8_lossy(&bad.stderr).trim().to_string();
    assert!(!bad.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("nowhere") && err.contains("scripts/mnist.sh"),
        "{err}"
    );
    assert!(!dir.join("n").join("config.json").exists());
}

/// Settings that used to run and say nothing wrong (issue 17): each is now one line naming the
/// setting and what would work.
#[test]
fn settings_that_cannot_apply_or_diverge_are_refused_by_name() {
    let dir = tmp("silent");
    let o = s(&dir);
    let base = ["undiffuse", "--data", "8gaussians", "--n", "100"];
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec![
                "langevin", "--delta", "5", "--steps", "100", "--chains", "50",
            ],
            &["diverged at step", "delta = 5", "delta < 2"],
        ),
        (
            vec!["langevin", "--energy", "double-well", "--delta", "0.5"],
            &["diverged at step", "smaller --delta"],
        ),
        (vec!["metropolis", "--start", "1e300"], &["start 1e300"]),
        (vec!["langevin", "--start", "1e300"], &["start 1e300"]),
        (
            [
                &base[..],
                &["--sampler", "ddim", "--nfe", "500", "--steps", "200"],
            ]
            .concat(),
            &["nfe 500", "200 steps"],
        ),
        (
            [&base[..], &["--sampler", "heun", "--churn", "-1"]].concat(),
            &["churn", "-1"],
        ),
        (
            [&base[..], &["--sampler", "euler", "--churn", "1"]].concat(),
            &["churn applies to heun"],
        ),
        (
            [&base[..], &["--sampler", "dpmpp-2m", "--eta", "0.5"]].concat(),
            &["eta applies to ddim and euler-ancestral"],
        ),
        // Sizes no machine has are refused with the estimate before anything is allocated.
        (
            vec!["forward", "--data", "delta:0.4", "--steps", "4294967296"],
            &["--steps 4294967296 needs about", "available"],
        ),
        (
            vec!["langevin", "--chains", "10000000000"],
            &["--chains 10000000000 needs about"],
        ),
        (
            vec!["metropolis", "--chains", "10000000000"],
            &["--chains 10000000000 needs about"],
        ),
        (
            vec!["forward", "--data", "delta:0.4", "--n", "10000000000"],
            &["--n 10000000000 needs about"],
        ),
        (
            [&base[..3], &["--n", "10000000000"]].concat(),
            &["--n 10000000000 needs about"],
        ),
        (
            vec!["fokker-planck", "--cells", "10000000000"],
            &["--cells 10000000000 needs about"],
        ),
        (
            vec![
                "train",
                "--data",
                "spiral",
                "--batch",
                "100000000",
                "--steps",
                "2",
            ],
            &["--batch 100000000 needs about"],
        ),
        (
            [&base[..], &["--sampler", "euler", "--variance", "beta"]].concat(),
            &["variance applies to ddpm"],
        ),
        (
            [&base[..], &["--sampler", "euler", "--grid-steps", "10"]].concat(),
            &["grid-steps applies to sde"],
        ),
        (
            [&base[..], &["--sampler", "euler", "--tol", "1e-3"]].concat(),
            &["tol applies to ode"],
        ),
        (
            [&base[..], &["--sampler", "ode", "--tol", "1e-300"]].concat(),
            &["tol must be in [1e-12, 0.1]", "1e-300"],
        ),
        (
            [&base[..], &["--sampler", "euler", "--grid", "karras:1e308"]].concat(),
            &["--grid", "rho must be in (0, 100]"],
        ),
        (
            [&base[..], &["--from", "0"]].concat(),
            &["--from 0", "no step"],
        ),
        (
            vec![
                "train",
                "--data",
                "spiral",
                "--timesteps",
                "0",
                "--steps",
                "2",
            ],
            &["--timesteps must be at least 1"],
        ),
        (
            [&base[..], &["--sampler", "dpmpp-2m", "--nfe", "100000000"]].concat(),
            &["nfe 100000000 is more than 100000"],
        ),
        (
            [
                &base[..],
                &["--sampler", "sde", "--grid-steps", "100000000000"],
            ]
            .concat(),
            &["grid-steps 100000000000"],
        ),
        (
            [&base[..], &["--reference", "10000000000"]].concat(),
            &["--reference 10000000000 needs about"],
        ),
        (
            vec![
                "metropolis",
                "--proposal",
                "gaussian:1e308",
                "--steps",
                "10",
            ],
            &["--proposal", "no proposal", "never left their start"],
        ),
        (
            vec![
                "sample",
                "--model",
                "fashion-mnist",
                "--prompt",
                " ",
                "--n",
                "2",
            ],
            &["--prompt is empty"],
        ),
        (
            vec![
                "sample",
                "--model",
                "fashion-mnist",
                "--label",
                "bag",
                "--guidance",
                "1e308",
            ],
            &["--guidance 1e308 is not a number in [-1000, 1000]"],
        ),
        // Negative numbers reach the checks that name them (not clap's "unexpected argument").
        (
            vec!["train", "--data", "spiral", "--lr", "-1", "--steps", "2"],
            &["--lr must be a positive number (got -1)"],
        ),
        (
            vec!["train", "--data", "spiral", "--clip", "-1", "--steps", "2"],
            &["--clip must be a positive number (got -1)"],
        ),
        (
            vec![
                "train",
                "--data",
                "spiral",
                "--weight-decay",
                "-1",
                "--steps",
                "2",
            ],
            &["--weight-decay must be a non-negative number"],
        ),
        (
            vec!["fokker-planck", "--times", "-1,2"],
            &["--times: -1 is not a positive time"],
        ),
    ];
    for (args, words) in cases {
        let e = fails(&[&args[..], &["--force", "--out", o]].concat());
        for w in words {
            assert!(e.contains(w), "{args:?}: {e}");
        }
    }
}

/// Flags a point model cannot take, projections beyond reason and an empty label are refused
/// with one line naming them.
#[test]
fn flags_and_values_a_model_or_data_cannot_take_are_refused() {
    let dir = tmp("cannot-take");
    let (m, o) = (dir.join("m"), dir.join("o"));
    tiny_model(&m);
    for (flag, says) in [
        ("--animate", "--animate films image models"),
        ("--no-clip", "--no-clip applies to image models"),
        ("--prompt-as-is", "--prompt-as-is goes with --prompt"),
    ] {
        let e = fails(&[
            "sample",
            "--model",
            s(&m),
            "--n",
            "5",
            flag,
            "--out",
            s(&o),
            "--force",
        ]);
        assert!(e.contains(says), "{e}");
    }
    let e = fails(&[
        "sample",
        "--model",
        s(&m),
        "--prompt",
        "left",
        "--prompt-as-is",
        "--out",
        s(&o),
        "--force",
    ]);
    assert!(
        e.contains("--prompt-as-is is for models trained on captions"),
        "{e}"
    );
    let u = dir.join("u");
    ok(&[
        "undiffuse",
        "--data",
        "delta:-1,1",
        "--n",
        "50",
        "--out",
        s(&u),
    ]);
    let e = fails(&[
        "eval",
        "--data",
        "delta:-1,1",
        "--samples",
        s(&u.join("samples.csv")),
        "--projections",
        "1000000000",
        "--out",
        s(&o),
        "--force",
    ]);
    assert!(
        e.contains("--projections 1000000000 is more than 100000"),
        "{e}"
    );
    let csv = dir.join("l.csv");
    std::fs::write(&csv, "x,label\n1,a\n2,\n").unwrap();
    let data = format!("csv:{}", s(&csv));
    let e = fails(&[
        "train",
        "--data",
        &data,
        "--cond",
        "label",
        "--steps",
        "2",
        "--out",
        s(&o),
        "--force",
    ]);
    assert!(e.contains("l.csv:3") && e.contains("empty label"), "{e}");
}

/// A 1-D model trained for five steps into `m`, to be damaged by a test.
fn tiny_model(m: &Path) {
    ok(&[
        "train",
        "--data",
        "delta:-1,1",
        "--timesteps",
        "50",
        "--hidden",
        "8",
        "--depth",
        "1",
        "--steps",
        "5",
        "--out",
        s(m),
    ]);
}

/// A model whose weights hold a NaN samples nothing: one line saying which sample came out
/// non-finite and why that can be, a non-zero exit, and no samples.csv.
#[test]
fn a_model_with_nan_weights_is_an_error_not_nan_samples() {
    let dir = tmp("nan-weights");
    let m = dir.join("m");
    tiny_model(&m);
    // The first f32 of the safetensors data section (after the 8-byte length and the header).
    let path = m.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header..12 + header].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    for sampler in ["ddpm", "dpmpp-2m"] {
        let out = dir.join(sampler);
        let e = fails(&[
            "sample",
            "--model",
            s(&m),
            "--n",
            "20",
            "--sampler",
            sampler,
            "--out",
            s(&out),
        ]);
        assert!(e.contains("sample 0 came out NaN"), "{sampler}: {e}");
        assert!(!out.join("samples.csv").exists(), "{sampler}");
    }
}

/// A config.json that lies (a zero or negative std, a billion steps, a decay above 1, the wrong
/// number of means) is refused on load, naming the file and the field.
#[test]
fn a_lying_config_is_refused_naming_the_field() {
    let dir = tmp("lying-config");
    let m = dir.join("m");
    tiny_model(&m);
    let text = std::fs::read_to_string(m.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "/standardization/std",
            serde_json::json!([0.0]),
            "standardization.std[0] = 0",
        ),
        (
            "/standardization/std",
            serde_json::json!([-1.0]),
            "standardization.std[0] = -1",
        ),
        (
            "/standardization/mean",
            serde_json::json!([0.0, 1.0]),
            "2 means and 1 stds",
        ),
        (
            "/steps",
            serde_json::json!(1_000_000_000u64),
            "steps 1000000000",
        ),
        ("/ema", serde_json::json!(2.0), "ema 2"),
    ];
    for (i, (field, value, words)) in cases.into_iter().enumerate() {
        let mut c = config.clone();
        *c.pointer_mut(field).unwrap() = value;
        let bad = dir.join(format!("bad{i}"));
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::copy(m.join("model.safetensors"), bad.join("model.safetensors")).unwrap();
        std::fs::write(bad.join("config.json"), c.to_string()).unwrap();
        let out = dir.join(format!("out{i}"));
        let e = fails(&["sample", "--model", s(&bad), "--n", "5", "--out", s(&out)]);
        assert!(
            e.contains("config.json") && e.contains(words),
            "{field}: {e}"
        );
    }
}

/// `--device` names a backend this build has, or the command stops before writing anything,
/// saying which feature adds it; what is not a device at all is refused with the list.
#[test]
fn a_device_this_build_lacks_is_refused_before_anything_is_written() {
    let dir = tmp("device");
    let out = dir.join("out");
    let commands: [&[&str]; 9] = [
        &["train", "--data", "spiral", "--steps", "5"],
        &[
            "classifier",
            "--data",
            "digits",
            "--test-data",
            "digits",
            "--steps",
            "5",
        ],
        &[
            "train",
            "--data",
            "colour-fashion",
            "--model",
            "vae",
            "--steps",
            "1",
        ],
        &["sample", "--model", "fashion-mnist", "--n", "2"],
        &[
            "sample",
            "--model",
            "colour-fashion",
            "--prompt",
            "a red shoe",
        ],
        &["undiffuse", "--data", "8gaussians", "--n", "10"],
        &["bench", "--train-steps", "1", "--unet-steps", "0"],
        &["eval", "--vae", "colour-fashion"],
        &["eval", "--model", "colour-fashion", "--n", "1"],
    ];
    for command in commands {
        for (device, says) in [
            ("cuda:1", "--features cuda"),
            ("tpu", "not a device (one of: auto, cpu"),
        ] {
            if device.starts_with("cuda") && cfg!(feature = "cuda") {
                continue;
            }
            let mut args = command.to_vec();
            args.extend(["--device", device, "--out", s(&out)]);
            let err = fails(&args);
            assert!(err.contains(&format!("--device {device}")), "{err}");
            assert!(err.contains(says), "{err}");
            assert!(!out.exists(), "{} wrote {}", command[0], out.display());
        }
    }
    // The web page's models sample on the device asked for; a bad one stops it before it
    // listens.
    let err = fails(&["serve", "--port", "0", "--device", "tpu"]);
    assert!(err.contains("--device tpu"), "{err}");
}
