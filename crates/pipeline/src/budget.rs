//! A memory budget checked before allocating: work whose arguments need more memory than the
//! machine has available is refused with the estimate, instead of growing until the allocator
//! aborts (or the machine swaps).

use anyhow::{Result, bail};

/// The share of the available memory one run may plan to take.
const SHARE: f64 = 0.8;

/// Bytes of memory available for new work (`MemAvailable` in /proc/meminfo), where known.
pub fn available() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// Refuses `what` (the flags that set its size, as the user wrote them) when its estimated
/// `bytes` exceed the budget. Without /proc/meminfo only sizes no machine has (above 2^50
/// bytes) are refused.
pub fn check(what: &str, bytes: f64) -> Result<()> {
    let limit = available().map_or(2f64.powi(50), |a| a * SHARE);
    if !bytes.is_finite() || bytes > limit {
        bail!(
            "{what} needs about {} of memory, more than the {} this machine has available; ask for less",
            human(bytes),
            human(limit / SHARE)
        );
    }
    Ok(())
}

/// A byte count as people read it.
fn human(bytes: f64) -> String {
    if !bytes.is_finite() || bytes >= 1e15 {
        return format!("{bytes:.1e} bytes");
    }
    let (v, unit) = if bytes >= 1e12 {
        (bytes / 1e12, "TB")
    } else if bytes >= 1e9 {
        (bytes / 1e9, "GB")
    } else {
        (bytes / 1e6, "MB")
    };
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_work_fits_and_impossible_work_is_refused_with_the_estimate() {
        assert!(check("--n 10", 80.0).is_ok());
        let e = check("--n 1e12", 8e12 * 4.0).unwrap_err().to_string();
        assert!(
            e.starts_with("--n 1e12 needs about 32.0 TB of memory"),
            "{e}"
        );
        assert!(check("--steps", f64::INFINITY).is_err());
        if let Some(a) = available() {
            assert!(a > 0.0);
        }
    }
}
