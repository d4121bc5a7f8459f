//! Density histograms with theory curves on top.

use plotters::prelude::*;

use crate::figure::{draw_series, frame, legend, rgb};
use crate::{Figure, Result, Series, atomic_png, padded_range};

/// One sample to histogram.
#[derive(Debug, Clone)]
pub struct Hist {
    /// Legend entry.
    pub label: String,
    /// The values.
    pub values: Vec<f64>,
    /// Index into the palette.
    pub color: usize,
}

/// Bin counts normalised to a density over `bins` equal bins of [lo, hi).
pub fn density(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let w = (hi - lo) / bins as f64;
    let mut c = vec![0.0; bins];
    for v in values {
        let i = ((v - lo) / w).floor();
        if i >= 0.0 && (i as usize) < bins {
            c[i as usize] += 1.0;
        }
    }
    let n = values.len().max(1) as f64;
    c.iter().map(|k| k / (n * w)).collect()
}

/// Overlaid density histograms (translucent), with curves (a theory density) drawn on top.
pub fn histogram(
    path: &std::path::Path,
    fig: &Figure,
    hists: &[Hist],
    bins: usize,
    curves: &[Series],
) -> Result<()> {
    let bins = bins.max(1);
    let (lo, hi) = fig
        .x_range
        .unwrap_or_else(|| padded_range(hists.iter().flat_map(|h| h.values.iter().copied())));
    let dens: Vec<Vec<f64>> = hists
        .iter()
        .map(|h| density(&h.values, lo, hi, bins))
        .collect();
    let top = dens
        .iter()
        .flatten()
        .copied()
        .chain(curves.iter().flat_map(|s| s.points.iter().map(|p| p.1)))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let yr = fig
        .y_range
        .unwrap_or((0.0, if top > 0.0 { top * 1.08 } else { 1.0 }));
    let w = (hi - lo) / bins as f64;
    atomic_png(path, |tmp| {
        let root = BitMapBackend::new(tmp, (900, 560)).into_drawing_area();
        let mut chart = frame(&root, fig, (lo, hi), yr, true)?;
        for (h, d) in hists.iter().zip(&dens) {
            let color = rgb(h.color);
            chart
                .draw_series(d.iter().enumerate().map(|(i, v)| {
                    let x0 = lo + i as f64 * w;
                    Rectangle::new([(x0, 0.0), (x0 + w, v.min(yr.1))], color.mix(0.45).filled())
                }))
                .map_err(|e| e.to_string())?
                .label(h.label.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 20, y + 5)], color.mix(0.45).filled())
                });
        }
        draw_series(&mut chart, curves)?;
        legend(&mut chart, fig.legend)?;
        root.present().map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_integrates_to_the_share_inside() {
        let v: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let d = density(&v, 0.0, 0.5, 10);
        let mass: f64 = d.iter().map(|x| x * 0.05).sum();
        assert!((mass - 0.5).abs() < 1e-12);
    }

    #[test]
    fn writes_a_png() {
        let dir = std::env::temp_dir().join(format!("diffuse-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("h.png");
        let h = Hist {
            label: "sample".into(),
            values: (0..500).map(|i| (i as f64 * 0.1).sin()).collect(),
            color: 0,
        };
        let curve = Series::line("theory", vec![(-1.0, 0.3), (1.0, 0.3)], 3);
        histogram(&p, &Figure::new("t", "x", "density"), &[h], 30, &[curve]).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (900, 560));
        let near = |px: &image::Rgb<u8>, c: (u8, u8, u8)| {
            let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).abs();
            d(px[0], c.0) + d(px[1], c.1) + d(px[2], c.2) < 24
        };
        // The bars: the series colour at 45% on white, over a good part of the plot.
        let (r, g, b) = crate::PALETTE[0];
        let mix = |c: u8| (0.45 * f64::from(c) + 0.55 * 255.0).round() as u8;
        let bars = img
            .pixels()
            .filter(|px| near(px, (mix(r), mix(g), mix(b))))
            .count();
        assert!(bars > 900 * 560 / 20, "{bars} bar pixels");
        // The theory curve: a horizontal line in colour 3 at density 0.3, one row holding most
        // of its pixels (the legend's swatch holds a few more).
        let red: Vec<u32> = img
            .enumerate_pixels()
            .filter(|(_, _, px)| near(px, crate::PALETTE[3]))
            .map(|(_, y, _)| y)
            .collect();
        let mut rows = std::collections::BTreeMap::new();
        for y in &red {
            *rows.entry(*y).or_insert(0) += 1;
        }
        let widest = rows.values().copied().max().unwrap_or(0);
        assert!(widest > 150, "the line's longest row has {widest} pixels");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
