//! Overdamped Langevin dynamics (seed 000): x <- x - delta E'(x) + sqrt(2 delta) z.

use std::ops::Range;

use super::{Energy, check_rows, check_starts, runaway_bound};
use crate::error::{CoreError, Result, invalid};
use crate::noise::{NoiseSource, Stream};

/// Runs one chain per entry of `x0` for `steps` steps of size `delta`, calling
/// `on_step(k, &states)` after step k. Returns the final states.
pub fn langevin(
    energy: &Energy,
    x0: &[f64],
    delta: f64,
    steps: usize,
    noise: &NoiseSource,
    rows: Range<u64>,
    on_step: &mut dyn FnMut(usize, &[f64]),
) -> Result<Vec<f64>> {
    if !(delta.is_finite() && delta > 0.0) {
        return invalid(format!(
            "the Langevin step delta must be positive (got {delta})"
        ));
    }
    check_rows(x0, &rows)?;
    check_starts(energy, x0)?;
    let mut x = x0.to_vec();
    let scale = (2.0 * delta).sqrt();
    let bound = runaway_bound(energy, x0);
    for k in 1..=steps {
        let z = noise.normals(Stream::Chain, k as u64, rows.clone(), 1);
        for (xi, zi) in x.iter_mut().zip(&z) {
            *xi = *xi - delta * energy.gradient(*xi) + scale * zi;
        }
        // A chain this far out is running away (the step overshoots the well by more each
        // time), long before it overflows: say so at the step it happens.
        if let Some((i, v)) = x
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && v.abs() < bound))
        {
            return Err(CoreError::NonFinite(format!(
                "Langevin chains diverged at step {k} (chain {}, at x = {v:.3e}): delta = {delta} \
                 is too large for this energy{}; try a smaller --delta",
                rows.start + i as u64,
                match energy {
                    Energy::Quadratic { k } => format!(" (E'' = {k} needs delta < {})", 2.0 / k),
                    _ => String::new(),
                }
            )));
        }
        on_step(k, &x);
    }
    Ok(x)
}
