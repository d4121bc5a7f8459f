//! # diffuse-plot
//!
//! Figures as PNG files, from plain numbers: this crate knows no diffusion math. Text is drawn
//! with the DejaVu Sans font compiled into the binary, so no system font is needed.

mod figure;
mod heatmap;
mod histogram;

pub use figure::{Corner, Figure, Series, Style, lines, log_tick, scatter, tick};
pub use heatmap::{Heatmap, heatmap};
pub use histogram::{Hist, density, histogram};

use thiserror::Error;

/// A figure could not be drawn or written.
#[derive(Debug, Error)]
#[error("{path}: {message}")]
pub struct PlotError {
    /// The file being written.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// Result with [`PlotError`].
pub type Result<T> = std::result::Result<T, PlotError>;

/// A colour palette for series (Tableau 10).
pub const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

static FONT: std::sync::Once = std::sync::Once::new();

pub(crate) fn ensure_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
        // The font is compiled in and known to parse; a failure would only lose the text.
        let _ =
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes);
    });
}

pub(crate) fn err(path: &std::path::Path, e: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes through a temporary file and renames it into place, so that a failure never leaves a
/// half-drawn figure where a good one was.
pub(crate) fn atomic_png(
    path: &std::path::Path,
    draw: impl FnOnce(&std::path::Path) -> std::result::Result<(), String>,
) -> Result<()> {
    ensure_font();
    let tmp = path.with_extension("tmp.png");
    draw(&tmp).map_err(|e| err(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, e))
}

/// The range of `values` padded by 5% on each side (a unit range around a constant).
pub fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}
