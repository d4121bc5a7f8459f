//! # diffuse-core
//!
//! The math of diffusion models, with no networks, files or printing: noise schedules, the
//! forward process, exact denoisers for point masses, Gaussian mixtures and data sets, reverse
//! samplers (DDPM, reverse SDE, probability-flow ODE), Langevin and Metropolis chains, and
//! two-sample metrics. Batches are burn tensors, so exact and learned denoisers share one path.
//!
//! Sources: `shared/seeds/000_*.txt` (Langevin, Metropolis, forward diffusion, undiffusion) and
//! `shared/seeds/004_*.txt` (marginals, posteriors, Tweedie, reverse SDE, probability-flow ODE).

pub mod denoiser;
pub mod device;
pub mod error;
pub mod exact;
pub mod forward;
pub mod frechet;
pub mod guidance;
pub mod likelihood;
pub mod mcmc;
pub mod metrics;
pub mod noise;
pub mod optimize;
pub mod samplers;
pub mod schedule;
pub mod tensor;

pub use denoiser::{Denoiser, Level, Prediction, Target};
pub use error::{CoreError, Result};
pub use exact::{ExactDenoiser, Mixture};
pub use guidance::{Clipped, Condition, ConditionalDenoiser, Guided, Stoppable, TokenStates};
pub use noise::{NoiseSource, Stream};
pub use schedule::Schedule;
