//! The tour's runner: each experiment is a command line of `diffuse`, run into a folder of its
//! own; the page shows under each its caption, the command, its figures and the numbers of its
//! summary.json.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde::Serialize;

use crate::args::Cli;

/// One experiment of the tour or of a demo.
pub struct Experiment {
    /// Folder name under the tour's output.
    pub name: &'static str,
    /// Heading.
    pub title: &'static str,
    /// Which seed it follows and what to look for.
    pub caption: &'static str,
    /// The command, without `diffuse` and `--out`.
    pub args: &'static str,
    /// Figures in display order (those the command wrote are shown).
    pub figures: &'static [(&'static str, &'static str)],
}

/// Splits a command line at spaces, keeping "double-quoted words" together.
fn words(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut quoted = false;
    let mut cur = String::new();
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The arguments of an experiment: in quick mode, smaller samples and a tenth of the training.
fn arguments(e: &Experiment, quick: bool, out: &Path) -> Vec<String> {
    let words = words(&e.args.replace("{out}", &out.display().to_string()));
    let training = words.first().is_some_and(|w| w == "train");
    let mut args = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let after_steps = i > 0 && words[i - 1] == "--steps";
        args.push(match w.as_str() {
            "10000" | "4000" if quick => "2000".to_string(),
            n if quick && training && after_steps => (n.parse::<usize>().unwrap_or(1000) / 10)
                .max(100)
                .to_string(),
            _ => w.clone(),
        });
    }
    args
}

/// Runs one experiment into `root`/NAME; returns its section of the page.
fn run_experiment(e: &Experiment, quick: bool, root: &Path) -> Result<Section> {
    let dir = root.join(e.name);
    let mut argv = vec!["diffuse".to_string()];
    argv.extend(arguments(e, quick, root));
    argv.extend(["--out".to_string(), dir.display().to_string()]);
    let cli = Cli::try_parse_from(&argv).with_context(|| format!("experiment {}", e.name))?;
    crate::commands::run(cli.command).with_context(|| format!("experiment {}", e.name))?;
    let shown: Vec<String> = argv[1..]
        .iter()
        .map(|w| {
            if w.contains(' ') {
                format!("\"{w}\"")
            } else {
                w.clone()
            }
        })
        .collect();
    section(e, &shown.join(" "), &dir, root)
}

/// One experiment on the page.
#[derive(Serialize)]
struct Section {
    name: &'static str,
    title: &'static str,
    caption: &'static str,
    command: String,
    /// The experiment's folder, relative to the page.
    folder: String,
    /// (file, caption) of the figures it wrote.
    figures: Vec<(&'static str, &'static str)>,
    /// (key, value) of its summary.json.
    rows: Vec<(String, String)>,
    /// The data files it wrote.
    files: Vec<&'static str>,
}

/// The page: a heading, a table of contents and the sections.
const PAGE: &str = include_str!("page.html");

/// Writes `root`/index.html.
fn page(root: &Path, intro: &str, sections: &[Section]) -> Result<std::path::PathBuf> {
    let mut env = minijinja::Environment::new();
    env.add_template("page.html", PAGE)?;
    let html = env
        .get_template("page.html")?
        .render(minijinja::context! { intro, sections => minijinja::value::Serde(sections) })?;
    let index = root.join("index.html");
    std::fs::write(&index, html).with_context(|| format!("cannot write {}", index.display()))?;
    Ok(index)
}

/// Runs `experiments` into `root` (created if need be) with a progress bar labelled `label`,
/// then writes `root`/index.html; returns its path.
pub fn run_all(
    root: &Path,
    intro: &str,
    label: &str,
    experiments: &[&Experiment],
    quick: bool,
) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    // A page's folder is its own: a folder it wrote before (the marker) has its experiments
    // replaced; any other folder holding one of their names is refused, nothing touched.
    let marker = root.join(".diffuse-page");
    let owned = marker.exists();
    for e in experiments {
        let dir = root.join(e.name);
        if dir.exists() && !owned {
            bail!(
                "--out {}: {} exists and was not written by diffuse; choose another --out",
                root.display(),
                dir.display()
            );
        }
    }
    std::fs::write(&marker, "tour\n")
        .with_context(|| format!("cannot write {}", marker.display()))?;
    for e in experiments {
        let dir = root.join(e.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot replace {}", dir.display()))?;
        }
    }
    let bar = crate::progress::bar(experiments.len() as u64, label);
    let mut sections = vec![];
    for e in experiments {
        bar.set_message(e.name);
        sections.push(run_experiment(e, quick, root)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    page(root, intro, &sections)
}

/// The section of experiment `e`, run as `command` into `dir`.
fn section(e: &Experiment, command: &str, dir: &Path, root: &Path) -> Result<Section> {
    let summary =
        std::fs::read_to_string(dir.join("summary.json")).context("reading summary.json")?;
    let v: serde_json::Value = serde_json::from_str(&summary)?;
    let rows = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, val)| (k.clone(), shown(val)))
        .collect();
    let files = [
        "samples.csv",
        "summary.json",
        "loss.csv",
        "config.json",
        "loglik.csv",
    ]
    .into_iter()
    .filter(|f| dir.join(f).exists())
    .collect();
    Ok(Section {
        name: e.name,
        title: e.title,
        caption: e.caption,
        command: command.to_string(),
        folder: dir.strip_prefix(root).unwrap_or(dir).display().to_string(),
        figures: e
            .figures
            .iter()
            .copied()
            .filter(|(file, _)| dir.join(file).exists())
            .collect(),
        rows,
        files,
    })
}

/// A summary value as the page shows it: whole numbers as they are, others to six places.
fn shown(val: &serde_json::Value) -> String {
    match val {
        serde_json::Value::Number(n) => n.as_f64().map_or_else(
            || n.to_string(),
            |f| {
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{f}")
                } else {
                    format!("{f:.6}")
                }
            },
        ),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
