//! Line and scatter figures.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::{PALETTE, Result, atomic_png, padded_range};

/// Titles and labels of a figure.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    /// The title above the plot.
    pub title: String,
    /// The x-axis label.
    pub x_label: String,
    /// The y-axis label.
    pub y_label: String,
    /// Fixed x range (otherwise fitted to the data).
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range (otherwise fitted to the data).
    pub y_range: Option<(f64, f64)>,
}

impl Figure {
    /// A figure with a title and axis labels.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }
    /// With a fixed x range.
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    /// With a fixed y range.
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// A line of the given width in pixels.
    Line(u32),
    /// A dashed line.
    Dashed,
    /// Dots of the given radius, with an opacity in [0, 1].
    Points(u32, f64),
}

/// One named series of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry (empty: not in the legend).
    pub label: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
    /// Index into [`PALETTE`].
    pub color: usize,
    /// How to draw it.
    pub style: Style,
}

impl Series {
    /// A solid line.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            style: Style::Line(2),
        }
    }
    /// Dots.
    pub fn points(label: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            style: Style::Points(2, 0.5),
        }
    }
    /// With another style.
    pub fn styled(mut self, style: Style) -> Self {
        self.style = style;
        self
    }
}

/// A chart of f64 axes on a bitmap.
pub(crate) type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The frame every figure shares: a white ground, the title, labelled axes, and a faint grid
/// unless `grid` is false.
pub(crate) fn frame<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    fig: &Figure,
    x: (f64, f64),
    y: (f64, f64),
    grid: bool,
) -> std::result::Result<Chart<'a, 'b>, String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(root)
        .caption(&fig.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(|e| e.to_string())?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(fig.x_label.as_str())
        .y_desc(fig.y_label.as_str())
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(246, 246, 246));
    if !grid {
        mesh.disable_mesh();
    }
    mesh.draw().map_err(|e| e.to_string())?;
    Ok(chart)
}

/// The legend box of the labelled series.
pub(crate) fn legend<'a, 'b>(chart: &mut Chart<'a, 'b>) -> std::result::Result<(), String>
where
    'b: 'a,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())
}

pub(crate) fn rgb(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

pub(crate) fn draw_series<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    series: &[Series],
) -> std::result::Result<bool, String> {
    let mut legend = false;
    for s in series {
        let color = rgb(s.color);
        let anno = match s.style {
            Style::Line(w) => chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(w),
                ))
                .map_err(|e| e.to_string())?,
            Style::Dashed => chart
                .draw_series(DashedLineSeries::new(
                    s.points.iter().copied(),
                    8,
                    5,
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?,
            Style::Points(r, alpha) => chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|p| Circle::new(*p, r, color.mix(alpha).filled())),
                )
                .map_err(|e| e.to_string())?,
        };
        if !s.label.is_empty() {
            legend = true;
            anno.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        }
    }
    Ok(legend)
}

fn plot(path: &std::path::Path, fig: &Figure, series: &[Series]) -> Result<()> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let xr = fig
        .x_range
        .unwrap_or_else(|| padded_range(all().map(|p| p.0)));
    let yr = fig
        .y_range
        .unwrap_or_else(|| padded_range(all().map(|p| p.1)));
    atomic_png(path, |tmp| {
        let root = BitMapBackend::new(tmp, (900, 560)).into_drawing_area();
        let mut chart = frame(&root, fig, xr, yr, true)?;
        if draw_series(&mut chart, series)? {
            legend(&mut chart)?;
        }
        root.present().map_err(|e| e.to_string())
    })
}

/// Lines (paths over time, loss curves, theory curves) in one figure.
pub fn lines(path: &std::path::Path, fig: &Figure, series: &[Series]) -> Result<()> {
    plot(path, fig, series)
}

/// A scatter plot of 2-D point sets.
pub fn scatter(path: &std::path::Path, fig: &Figure, sets: &[Series]) -> Result<()> {
    plot(path, fig, sets)
}
