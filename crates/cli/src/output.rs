//! Writing results: the output folder, samples.csv, summary.json.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

/// An output folder and the numbers of its summary.json.
pub struct Output {
    dir: PathBuf,
    summary: Map<String, Value>,
}

impl Output {
    /// Creates (or reuses) the folder `out`, or `out/<command>` by default.
    pub fn new(out: Option<&Path>, command: &str) -> Result<Self> {
        let dir = out.map_or_else(|| PathBuf::from("out").join(command), Path::to_path_buf);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        let mut summary = Map::new();
        summary.insert("command".into(), json!(command));
        Ok(Self { dir, summary })
    }

    /// A file in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Records a number (or anything JSON) in summary.json.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.summary.insert(key.to_string(), value.into());
    }

    /// Records a float; JSON has no NaN or infinity, so such a number is written as null.
    pub fn num(&mut self, key: &str, value: f64) {
        self.set(
            key,
            if value.is_finite() {
                json!(value)
            } else {
                Value::Null
            },
        );
    }

    /// Writes samples.csv.
    pub fn samples(&self, values: &[f64], d: usize) -> Result<()> {
        diffuse_data::write_csv(&self.path("samples.csv"), values, d)?;
        Ok(())
    }

    /// Writes summary.json (atomically) and returns its path.
    pub fn finish(self) -> Result<PathBuf> {
        let path = self.path("summary.json");
        let tmp = self.path("summary.json.tmp");
        let text = serde_json::to_string_pretty(&Value::Object(self.summary))?;
        std::fs::write(&tmp, text + "\n")
            .and_then(|_| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}
