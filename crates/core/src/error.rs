//! Typed errors of the core math. Core never panics on a value a user can choose.

use thiserror::Error;

/// Everything that can go wrong in the core math.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// An argument is outside the values the math accepts.
    #[error("{0}")]
    Invalid(String),
    /// Two things that must agree in shape do not.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A NaN or an infinity appeared where a finite number is needed.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// The tensor engine failed to read a result back.
    #[error("tensor engine: {0}")]
    Engine(String),
    /// The caller asked the run to stop ([`crate::Stoppable`]).
    #[error("stopped on request")]
    Stopped,
}

/// Result with [`CoreError`].
pub type Result<T> = std::result::Result<T, CoreError>;

/// Shorthand for an [`CoreError::Invalid`] error.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(CoreError::Invalid(msg.into()))
}
