//! The tour's runner: each experiment is a command line of `diffuse`, run into a folder of its
//! own; the page shows under each its caption, the command, its figures and the numbers of its
//! summary.json.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde::Serialize;

use super::glossary;
use crate::args::Cli;

/// One experiment of the tour or of a demo.
pub struct Experiment {
    /// Folder name under the tour's output.
    pub name: &'static str,
    /// Heading.
    pub title: &'static str,
    /// Which seed it follows and what to look for; `{key}` is replaced by the run's own value of
    /// `key` in its summary.json (a caption never types a result by hand).
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

/// The arguments of an experiment: in quick mode, smaller samples, a tenth of the training and
/// four pictures per prompt for a text-to-image model's judged prompts.
fn arguments(e: &Experiment, quick: bool, out: &Path) -> Vec<String> {
    let words = words(&e.args.replace("{out}", &out.display().to_string()));
    let training = words.first().is_some_and(|w| w == "train");
    let prompts =
        words.first().is_some_and(|w| w == "eval") && words.iter().any(|w| w == "--model");
    let mut args = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let after_steps = i > 0 && words[i - 1] == "--steps";
        let after_n = i > 0 && words[i - 1] == "--n";
        args.push(match w.as_str() {
            "10000" | "4000" if quick => "2000".to_string(),
            _ if quick && prompts && after_n => "4".to_string(),
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
    caption: String,
    command: String,
    /// The experiment's folder, relative to the page.
    folder: String,
    /// (file, caption) of the figures it wrote.
    figures: Vec<(&'static str, &'static str)>,
    /// (key, value, what it means) of its summary.json: the verdicts first.
    rows: Vec<Row>,
    /// How many of the rows are verdicts (shown in bold).
    verdicts: usize,
    /// The data files it wrote.
    files: Vec<&'static str>,
}

/// One number of a section, with what it means when the glossary knows.
#[derive(Serialize)]
struct Row {
    key: String,
    value: String,
    note: &'static str,
}

/// The page: a heading, a table of contents and the sections.
const PAGE: &str = include_str!("page.html");

/// Writes `root`/index.html.
fn page(root: &Path, intro: &str, sections: &[Section]) -> Result<std::path::PathBuf> {
    let mut env = minijinja::Environment::new();
    env.add_template("page.html", PAGE)?;
    let tests: usize = sections
        .iter()
        .map(|s| {
            s.rows
                .iter()
                .filter(|r| glossary::is_p_value(&r.key))
                .count()
        })
        .sum();
    let html = env.get_template("page.html")?.render(minijinja::context! {
        intro,
        tests,
        sections => minijinja::value::Serde(sections)
    })?;
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
    let values = v.as_object().cloned().unwrap_or_default();
    let mut rows: Vec<Row> = values
        .iter()
        .map(|(k, val)| Row {
            key: k.clone(),
            value: shown(val),
            note: glossary::entry(k).map_or("", |e| e.note),
        })
        .collect();
    let verdict = |r: &Row| glossary::entry(&r.key).is_some_and(|e| e.verdict);
    // Verdicts first, in the glossary's order; the rest as written.
    let rank = |r: &Row| glossary::ENTRIES.iter().position(|e| e.key == r.key);
    rows.sort_by_key(|r| if verdict(r) { rank(r) } else { None }.map_or(usize::MAX, |i| i));
    let verdicts = rows.iter().filter(|r| verdict(r)).count();
    let caption = fill(e.caption, &values).with_context(|| format!("experiment {}", e.name))?;
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
        caption,
        command: command.to_string(),
        folder: dir.strip_prefix(root).unwrap_or(dir).display().to_string(),
        figures: e
            .figures
            .iter()
            .copied()
            .filter(|(file, _)| dir.join(file).exists())
            .collect(),
        rows,
        verdicts,
        files,
    })
}

/// `caption` with each `{key}` replaced by the run's value of `key` (three significant figures;
/// `{key%}` as a percentage); a
/// key the run did not record is an error, so that a caption cannot drift from its numbers.
fn fill(caption: &str, values: &serde_json::Map<String, serde_json::Value>) -> Result<String> {
    let mut out = String::with_capacity(caption.len());
    let mut rest = caption;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        // `{key}` or `{key%}` (a fraction as a percentage), a key being lower-case letters,
        // digits and underscores; other braces are the caption's own (x_{t-1}, {-15, -5}).
        let inner = rest[open + 1..].split('}').next().unwrap_or_default();
        let (key, percent) = match inner.strip_suffix('%') {
            Some(k) => (k, true),
            None => (inner, false),
        };
        let is_key = key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && rest[open + 1..].contains('}');
        if !is_key {
            out.push('{');
            rest = &rest[open + 1..];
            continue;
        }
        let close = inner.len() + 1;
        let Some(v) = values.get(key) else {
            bail!("the caption names {key}, which its summary.json does not hold");
        };
        match v.as_f64() {
            Some(f) if percent => out.push_str(&format!("{:.1}%", 100.0 * f)),
            _ => out.push_str(&brief(v)),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A number as a sentence shows it: three significant figures.
fn brief(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(f) if f != 0.0 && (f.abs() < 1e-3 || f.abs() >= 1e5) => format!("{f:.2e}"),
        Some(f) if f.fract() == 0.0 => format!("{f}"),
        Some(f) => {
            let digits = (2 - f.abs().log10().floor() as i32).max(0) as usize;
            format!("{f:.digits$}")
        }
        None => shown(v),
    }
}

/// A summary value as the page shows it: whole numbers as they are, others to six places (in
/// scientific notation below 1e-4), no value as "n/a", a list of records one record per line,
/// a record of records one named record per line, a list of numbers to three figures each.
fn shown(val: &serde_json::Value) -> String {
    match val {
        serde_json::Value::Null => "n/a".to_string(),
        serde_json::Value::Array(items) if items.iter().all(|i| i.is_object()) => {
            items.iter().map(shown).collect::<Vec<_>>().join("\n")
        }
        serde_json::Value::Array(items) if items.iter().all(|i| i.is_number()) => {
            let items: Vec<String> = items.iter().map(brief).collect();
            format!("[{}]", items.join(", "))
        }
        serde_json::Value::Object(map)
            if !map.is_empty() && map.values().all(|v| v.is_object()) =>
        {
            map.iter()
                .map(|(k, v)| format!("{k}: {}", shown(v)))
                .collect::<Vec<_>>()
                .join("\n")
        }
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k} {}", shown(v)))
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Number(n) if n.as_f64().is_some_and(|f| f != 0.0 && f.abs() < 1e-4) => {
            format!("{:.2e}", n.as_f64().unwrap_or_default())
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_take_the_runs_numbers_and_refuse_unknown_keys() {
        let v: serde_json::Value = serde_json::json!({
            "p": 0.0123456, "tiny": 3.2e-7, "share": 0.9995, "n": 2000, "counts": [1, 2]
        });
        let m = v.as_object().unwrap();
        assert_eq!(
            fill("p {p}, {tiny}, {share%} of {n}: {counts}", m).unwrap(),
            "p 0.0123, 3.20e-7, 100.0% of 2000: [1, 2]"
        );
        assert!(
            fill("{missing}", m)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
        assert_eq!(
            fill("x_{t-1}, {-15, 1}, {p", m).unwrap(),
            "x_{t-1}, {-15, 1}, {p"
        );
    }

    #[test]
    fn tables_show_records_one_per_line_and_no_value_as_n_a() {
        let v = serde_json::json!([{"t": 0.1, "p": 0.5}, {"t": 1, "p": 0.25}]);
        assert_eq!(shown(&v), "p 0.500000, t 0.100000\np 0.250000, t 1");
        assert_eq!(shown(&serde_json::Value::Null), "n/a");
        assert_eq!(shown(&serde_json::json!(2.5e-7)), "2.50e-7");
        let nested = serde_json::json!({"heun": {"error": [40.888, 0.97979, 0.0053713], "nfe": [5.0, 10.0]}, "ddim": {"order": 0.963201}});
        assert_eq!(
            shown(&nested),
            "ddim: order 0.963201\nheun: error [40.9, 0.980, 0.00537], nfe [5, 10]"
        );
    }
}
