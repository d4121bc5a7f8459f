//! A model folder's files written as one unit: a kill at any instant leaves either the whole
//! old checkpoint or the whole new one, never weights of one step beside a config of another.
//!
//! The new files go into `DIR/.next/`, each synced; then `.next/COMPLETE` (the list of names) is
//! written atomically: that rename is the commit. The files then move into place one rename at a
//! time and `.next` goes. A reader that finds `.next/COMPLETE` takes each listed file from
//! `.next/` while it is still there (those not there have already moved), so it sees the new
//! unit whole; a reader that finds `.next/` without `COMPLETE` ignores it (the old unit is
//! untouched). A writer rolls an interrupted commit forward, or an uncommitted one away, before
//! it starts ([`recover`]).

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::Result;
use crate::checkpoint::err;

/// The folder a commit is prepared in.
const NEXT: &str = ".next";
/// The marker whose appearance commits it.
const COMPLETE: &str = "COMPLETE";

/// Writes `files` (name, bytes) into `dir` as one unit, replacing files of the same names.
pub fn commit(dir: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
    recover(dir)?;
    let next = dir.join(NEXT);
    fs::create_dir_all(&next).map_err(|e| err(&next, e.to_string()))?;
    for (name, bytes) in files {
        write_synced(&next.join(name), bytes)?;
    }
    let names: String = files.iter().map(|(n, _)| format!("{n}\n")).collect();
    let tmp = next.join("COMPLETE.tmp");
    write_synced(&tmp, names.as_bytes())?;
    fs::rename(&tmp, next.join(COMPLETE)).map_err(|e| err(&next, e.to_string()))?;
    sync_dir(&next);
    recover(dir)
}

/// Finishes a commit that was interrupted after its marker, or discards one interrupted
/// before it. Nothing to do on a clean folder.
pub fn recover(dir: &Path) -> Result<()> {
    let next = dir.join(NEXT);
    if !next.is_dir() {
        return Ok(());
    }
    if let Some(names) = committed(dir) {
        for name in names {
            let from = next.join(&name);
            if from.exists() {
                fs::rename(&from, dir.join(&name)).map_err(|e| err(&from, e.to_string()))?;
            }
        }
        sync_dir(dir);
    }
    fs::remove_dir_all(&next).map_err(|e| err(&next, e.to_string()))
}

/// The bytes of the file `name` of the folder's current unit.
pub fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    if committed(dir).is_some_and(|names| names.iter().any(|n| n == name)) {
        match fs::read(dir.join(NEXT).join(name)) {
            Ok(bytes) => return Ok(bytes),
            // Moved into place since the marker was read.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(err(&path, e.to_string())),
        }
    }
    fs::read(&path).map_err(|e| err(&path, e.to_string()))
}

/// Whether the folder's current unit has a file `name`.
pub fn exists(dir: &Path, name: &str) -> bool {
    dir.join(name).is_file() || committed(dir).is_some_and(|names| names.iter().any(|n| n == name))
}

/// The names of a committed but not yet finished unit.
fn committed(dir: &Path) -> Option<Vec<String>> {
    let text = fs::read_to_string(dir.join(NEXT).join(COMPLETE)).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| err(path, e.to_string()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| err(path, e.to_string()))
}

/// Makes a folder's renames durable (best effort: not every file system syncs folders).
fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("diffuse-commit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_commit_replaces_every_file_at_once() {
        let d = tmp("whole");
        commit(&d, &[("a", b"1"), ("b", b"1")]).unwrap();
        commit(&d, &[("a", b"2"), ("b", b"2")]).unwrap();
        assert_eq!(read(&d, "a").unwrap(), b"2");
        assert_eq!(read(&d, "b").unwrap(), b"2");
        assert!(!d.join(NEXT).exists());
    }

    /// Every instant of a commit, frozen: the readers see one unit whole.
    #[test]
    fn an_interrupted_commit_is_seen_whole_or_not_at_all() {
        let d = tmp("cut");
        commit(&d, &[("a", b"old"), ("b", b"old")]).unwrap();
        // Killed before the marker: the old unit, and the pending files go on recovery.
        let next = d.join(NEXT);
        fs::create_dir_all(&next).unwrap();
        fs::write(next.join("a"), b"new").unwrap();
        assert_eq!(read(&d, "a").unwrap(), b"old");
        recover(&d).unwrap();
        assert_eq!(read(&d, "a").unwrap(), b"old");
        assert!(!next.exists());
        // Killed after the marker, with "a" already moved: the new unit.
        fs::create_dir_all(&next).unwrap();
        fs::write(d.join("a"), b"new").unwrap();
        fs::write(next.join("b"), b"new").unwrap();
        fs::write(next.join(COMPLETE), "a\nb\n").unwrap();
        assert_eq!(read(&d, "a").unwrap(), b"new");
        assert_eq!(read(&d, "b").unwrap(), b"new");
        assert!(exists(&d, "b"));
        recover(&d).unwrap();
        assert_eq!(read(&d, "b").unwrap(), b"new");
        assert!(!next.exists());
    }
}
