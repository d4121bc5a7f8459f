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
        let whole = BitMapBackend::new(tmp, (1000, 560)).into_drawing_area();
        let (root, bar) = whole.split_horizontally(900);
        colour_bar(&bar, vmax)?;
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
        whole.present().map_err(|e| e.to_string())
    })
}

/// The colour scale, 0 at the bottom to `vmax` at the top (values above it saturate), with
/// its ticks, in the strip `area` right of the plot.
fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    vmax: f64,
) -> std::result::Result<(), String> {
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut bar = ChartBuilder::on(area)
        .margin_top(50)
        .margin_bottom(57)
        .margin_left(4)
        .right_y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0, 0.0..vmax)
        .map_err(|e| e.to_string())?;
    let fmt = |v: &f64| crate::figure::tick(*v, (0.0, vmax));
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&fmt)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    const LEVELS: usize = 100;
    bar.draw_series((0..LEVELS).map(|k| {
        let (a, b) = (k as f64 / LEVELS as f64, (k + 1) as f64 / LEVELS as f64);
        Rectangle::new([(0.0, a * vmax), (1.0, b * vmax)], viridis(a).filled())
    }))
    .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The colour bar right of the map runs from the lowest colour at the bottom to the highest
    /// at the top.
    #[test]
    fn a_heat_map_has_its_colour_bar() {
        let dir = std::env::temp_dir().join(format!("diffuse-plot-heat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("h.png");
        let map = Heatmap {
            values: (0..20).map(|i| vec![i as f64; 10]).collect(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            v_max: None,
        };
        heatmap(&p, &Figure::new("t", "x", "y"), &map, &[]).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        let near = |px: &image::Rgb<u8>, c: RGBColor| {
            let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).abs();
            d(px[0], c.0) + d(px[1], c.1) + d(px[2], c.2) < 30
        };
        let (top, bottom) = (viridis(1.0), viridis(0.0));
        let column = (905..945).find(|x| (0..560).any(|y| near(img.get_pixel(*x, y), top)));
        let x = column.expect("no colour bar right of the map");
        let ys_top: Vec<u32> = (0..560)
            .filter(|y| near(img.get_pixel(x, *y), top))
            .collect();
        let ys_bottom: Vec<u32> = (0..560)
            .filter(|y| near(img.get_pixel(x, *y), bottom))
            .collect();
        assert!(!ys_top.is_empty() && !ys_bottom.is_empty());
        assert!(
            ys_top[0] + 300 < ys_bottom[ys_bottom.len() - 1],
            "{ys_top:?} {ys_bottom:?}"
        );
    }
}
