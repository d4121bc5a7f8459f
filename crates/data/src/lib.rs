//! # diffuse-data
//!
//! Where data comes from, read and checked where it is read: the `--data` grammar
//!
//! | spec | what |
//! |---|---|
//! | `delta:V[,V...]` | equal-weight point masses in 1-D |
//! | `gmm:FILE.json` | `{"weights":[...], "means":[[...],...], "stds":[...]}`, isotropic components |
//! | `swissroll`, `spiral`, `discgrid`, `mixture1d`, `8gaussians`, `moons`, `checkerboard` | the seeds' toy sets |
//! | `csv:PATH` | a CSV file with a header row, one column per dimension (a `label` column is kept apart) |
//! | `fashion-mnist[:DIR]`, `fashion-mnist-test[:DIR]` | Fashion-MNIST's 60,000 training (10,000 test) images, from the Debian package `dataset-fashion-mnist` |
//! | `colour-fashion[:DIR]`, `colour-fashion-test[:DIR]` | Fashion-MNIST at 32x32, tinted in seven named colours, labelled by (colour, class); whole pairs held out of training ([`colour`]) |
//! | `mnist:DIR`, `mnist-test:DIR`, `idx:DIR` | MNIST-style IDX files in DIR, gzipped or not |
//! | `digits` | scikit-learn's 1,797 8x8 digits (compiled in) |
//! | `images:DIR` | PNG/JPEG images, one sub-folder per class, converted to grayscale |
//!
//! Errors name the file, and the line or field, they concern.

pub mod captions;
pub mod colour;
mod csv;
mod gmm;
pub mod images;
mod spec;
mod toy;

pub use csv::{Table, read_csv, write_csv, write_labelled_csv};
pub use gmm::read_gmm;
pub use spec::{Dataset, Source};
pub use toy::Toy;

use thiserror::Error;

/// A problem with the user's data or its spec.
#[derive(Debug, Error)]
pub enum DataError {
    /// The spec itself is not understood.
    #[error("{0}")]
    Spec(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file's content is wrong at a given place.
    #[error("{path}:{line}: {message}")]
    Content {
        /// The file.
        path: String,
        /// 1-based line number (0 when the whole file is concerned).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The core math refused the values.
    #[error("{context}: {source}")]
    Core {
        /// Where the values came from.
        context: String,
        /// The refusal.
        source: diffuse_core::CoreError,
    },
}

/// Result with [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;
