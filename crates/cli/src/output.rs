//! Writing results: the output folder, samples.csv, summary.json.

use std::path::PathBuf;

use std::fs::{File, TryLockError};

use anyhow::{Context, Result, bail};
use diffuse_pipeline::Report;
use serde_json::Value;

use crate::args::Common;

/// An output folder and the numbers of its summary.json, locked while it is written.
pub struct Output {
    dir: PathBuf,
    summary: Report,
    /// Held open (and locked) until the run ends: a second run on the folder is refused.
    _lock: File,
}

/// The marker a run leaves in its folder: the folder's outputs are diffuse's to replace.
const MARKER: &str = ".diffuse";

/// What an earlier run leaves, in the order a refusal names them.
const RESULTS: [&str; 6] = [
    "summary.json",
    "samples.csv",
    "model.safetensors",
    "config.json",
    "images",
    "loss.csv",
];

/// Outputs that would be stale beside a new run's (a smaller run's images beside a larger
/// one's), removed before a replacing run when diffuse wrote them.
const STALE: [&str; 7] = [
    "images",
    "samples.csv",
    "labels.csv",
    "summary.json",
    "raw.safetensors",
    "loss-diverged.csv",
    "animation.gif",
];

impl Output {
    /// The folder `--out` (or `out/<command>` by default), locked for this run. A folder given
    /// with `--out` that holds an earlier run's results is refused unless `--force`; the default
    /// folder is a scratch folder whose earlier results are replaced, and said so.
    pub fn new(common: &Common, command: &str) -> Result<Self> {
        Self::open(common, command, false)
    }

    /// [`Output::new`] for `train`: with `--resume` the folder's model is the one continued.
    pub fn for_training(common: &Common, resume: bool) -> Result<Self> {
        Self::open(common, "train", resume)
    }

    fn open(common: &Common, command: &str, resume: bool) -> Result<Self> {
        let dir = common
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("out").join(command));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        let lock_path = dir.join(".lock");
        let lock = File::create(&lock_path)
            .with_context(|| format!("cannot write {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "another diffuse run is writing {}: wait for it to finish, or choose another --out",
                dir.display()
            ),
            Err(TryLockError::Error(e)) => {
                bail!("cannot lock {}: {e}", lock_path.display())
            }
        }
        let earlier = RESULTS.iter().find(|f| dir.join(f).exists());
        if let Some(found) = earlier
            && !resume
        {
            if common.out.is_some() && !common.force {
                bail!(
                    "--out {} holds an earlier run's results ({}): give --force to replace them{}, or choose another --out",
                    dir.display(),
                    dir.join(found).display(),
                    if command == "train" {
                        ", --resume to continue its training"
                    } else {
                        ""
                    }
                );
            }
            if dir.join(MARKER).exists() {
                for name in STALE {
                    let p = dir.join(name);
                    let gone = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else if p.exists() {
                        std::fs::remove_file(&p)
                    } else {
                        Ok(())
                    };
                    gone.with_context(|| format!("cannot remove the stale {}", p.display()))?;
                }
            }
            if common.out.is_none() {
                eprintln!("replacing the earlier results in {}", dir.display());
            }
        }
        let marker = dir.join(MARKER);
        std::fs::write(&marker, format!("{command}\n"))
            .with_context(|| format!("cannot write {}", marker.display()))?;
        let mut summary = Report::new();
        summary.set("command", command);
        Ok(Self {
            dir,
            summary,
            _lock: lock,
        })
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
