//! A heat map over a grid (for example a density q_t(x) over (t, x)), with lines on top.

use plotters::prelude::*;

use crate::figure::{draw_series, frame};
use crate::{Figure, Result, Series, atomic_png};

/// Values on a regular grid: `values[i][j]` at x = x_range cell i, y = y_range cell j.
#[derive(Debug, Clone)]
pub struct Heatmap {
    /// The grid, `values[i][j]` for column i (x) and row j (y).
    pub values: Vec<Vec<f64>>,
    /// The x extent.
    pub x_range: (f64, f64),
    /// The y extent.
    pub y_range: (f64, f64),
    /// Values at or above this saturate the colour map (None: the maximum).
    pub v_max: Option<f64>,
}

/// Viridis, sampled at 8 points and interpolated linearly.
fn viridis(t: f64) -> RGBColor {
    const C: [(f64, f64, f64); 8] = [
        (68.0, 1.0, 84.0),
        (70.0, 50.0, 127.0),
        (54.0, 92.0, 141.0),
        (39.0, 127.0, 142.0),
        (31.0, 161.0, 135.0),
        (74.0, 194.0, 109.0),
        (159.0, 218.0, 58.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 7.0;
    let i = (t.floor() as usize).min(6);
    let f = t - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(
        mix(C[i].0, C[i + 1].0),
        mix(C[i].1, C[i + 1].1),
        mix(C[i].2, C[i + 1].2),
    )
}

/// Draws the heat map and the overlay series.
pub fn heatmap(
    path: &std::path::Path,
    fig: &Figure,
    map: &Heatmap,
    overlay: &[Series],
) -> Result<()> {
    let nx = map.values.len().max(1);
    let ny = map.values.first().map_or(1, Vec::len).max(1);
    let vmax = map
        .v_max
        .unwrap_or_else(|| {
            map.values
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max)
        })
        .max(f64::MIN_POSITIVE);
    let (x0, x1) = map.x_range;
    let (y0, y1) = map.y_range;
    let (dx, dy) = ((x1 - x0) / nx as f64, (y1 - y0) / ny as f64);
    atomic_png(path, |tmp| {
        let root = BitMapBackend::new(tmp, (1000, 560)).into_drawing_area();
        let mut chart = frame(&root, fig, (x0, x1), (y0, y1), false)?;
        chart
            .draw_series(map.values.iter().enumerate().flat_map(|(i, col)| {
                col.iter().enumerate().map(move |(j, v)| {
                    let (xa, ya) = (x0 + i as f64 * dx, y0 + j as f64 * dy);
                    Rectangle::new([(xa, ya), (xa + dx, ya + dy)], viridis(v / vmax).filled())
                })
            }))
            .map_err(|e| e.to_string())?;
        draw_series(&mut chart, overlay)?;
        root.present().map_err(|e| e.to_string())
    })
}
