//! Markov chains with a known stationary law exp(-E(x)) (seed 000): Langevin dynamics and the
//! Metropolis method, and the Fokker-Planck equation of the chains' density. Chains are 1-D and many at once; chain i is global row `rows.start + i`.

mod energy;
mod fokker_planck;
mod langevin;
mod metropolis;

pub use energy::Energy;
pub use fokker_planck::FokkerPlanck;
pub use langevin::langevin;
pub use metropolis::{Metropolis, Proposal, metropolis};

/// Chain i draws the noise of global row `rows.start + i`: one row per chain.
fn check_rows(x0: &[f64], rows: &std::ops::Range<u64>) -> crate::Result<()> {
    if rows.end - rows.start != x0.len() as u64 {
        return Err(crate::CoreError::Shape(format!(
            "{} chains but {} noise rows",
            x0.len(),
            rows.end - rows.start
        )));
    }
    Ok(())
}

/// Refuses a start where E or E' is not finite: no chain could move from there.
fn check_starts(energy: &Energy, x0: &[f64]) -> crate::Result<()> {
    if let Some(x) = x0
        .iter()
        .find(|x| !(energy.value(**x).is_finite() && energy.gradient(**x).is_finite()))
    {
        return Err(crate::CoreError::Invalid(format!(
            "start {x:e}: the energy there is not a finite number; start where exp(-E) has mass \
             (within {:.3e} of 0)",
            energy.support().1
        )));
    }
    Ok(())
}

/// How far out a chain is taken to have run away: a million times past the starts and the
/// stationary law's support.
fn runaway_bound(energy: &Energy, x0: &[f64]) -> f64 {
    let reach = x0.iter().fold(energy.support().1, |m, x| m.max(x.abs()));
    1e6 * reach.max(1.0)
}
