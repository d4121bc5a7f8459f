//! Markov chains with a known stationary law exp(-E(x)) (seed 000): Langevin dynamics and the
//! Metropolis method. Chains are 1-D and many at once; chain i is global row `rows.start + i`.

mod energy;
mod langevin;
mod metropolis;

pub use energy::Energy;
pub use langevin::langevin;
pub use metropolis::{Metropolis, Proposal, metropolis};
