//! Writing results: the output folder, samples.csv, summary.json.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use diffuse_pipeline::Report;
use serde_json::Value;

/// An output folder and the numbers of its summary.json.
pub struct Output {
    dir: PathBuf,
    summary: Report,
}

impl Output {
    /// Creates (or reuses) the folder `out`, or `out/<command>` by default.
    pub fn new(out: Option<&Path>, command: &str) -> Result<Self> {
        let dir = out.map_or_else(|| PathBuf::from("out").join(command), Path::to_path_buf);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        let mut summary = Report::new();
        summary.set("command", command);
        Ok(Self { dir, summary })
    }

    /// A file in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Records a number (or anything JSON) in summary.json.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.summary.set(key, value);
    }

    /// Records a float; JSON has no NaN or infinity, so such a number is written as null.
    pub fn num(&mut self, key: &str, value: f64) {
        self.summary.num(key, value);
    }

    /// Records everything in `report`.
    pub fn report(&mut self, report: Report) {
        self.summary.extend(report);
    }

    /// Records the settings of the sampler that ran.
    pub fn report_settings(
        &mut self,
        fixed: &diffuse_core::samplers::Fixed,
        spec: &diffuse_core::samplers::SamplerSpec,
    ) {
        self.summary.settings(fixed.describe(spec));
    }

    /// Writes samples.csv.
    pub fn samples(&self, values: &[f64], d: usize) -> Result<()> {
        diffuse_data::write_csv(&self.path("samples.csv"), values, d)?;
        Ok(())
    }

    /// Writes summary.json (atomically), says where the outputs went, and returns its path.
    pub fn finish(self) -> Result<PathBuf> {
        let path = self.path("summary.json");
        let tmp = self.path("summary.json.tmp");
        let text = serde_json::to_string_pretty(&Value::Object(self.summary.into_map()))?;
        std::fs::write(&tmp, text + "\n")
            .and_then(|_| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", self.dir.display());
        Ok(path)
    }

    /// [`Output::finish`], then prints summary.json on stdout.
    pub fn finish_and_print(self) -> Result<()> {
        let path = self.finish()?;
        if let Ok(text) = std::fs::read_to_string(&path) {
            println!("{text}");
        }
        Ok(())
    }
}
