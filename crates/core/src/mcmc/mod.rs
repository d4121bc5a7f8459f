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
