//! Exact denoisers, derived from the data distribution itself.
//!
//! Point masses, Gaussian mixtures and an empirical data set are all isotropic Gaussian mixtures
//! (a point mass is a component of width 0; a data set of N points is N equal-weight point masses),
//! and diffusing a mixture keeps it a mixture (seed 004): component c becomes
//! N(sqrt(alpha-bar) mu_c, v_c I) with v_c = alpha-bar s_c^2 + 1 - alpha-bar. So one type serves all
//! three, and its denoiser is the optimal one: the posterior mean E[x_0 | x_t].

mod mixture;

pub use mixture::{ExactDenoiser, Mixture};
