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
    /// A logarithmic y axis (values at or below 0 are left out).
    pub y_log: bool,
    /// One unit of x as long as one unit of y on the page (2-D data: a circle stays round).
    pub equal_aspect: bool,
    /// Where the legend goes (away from the lines).
    pub legend: Corner,
}

/// A corner of the plot.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Corner {
    /// Top right.
    #[default]
    UpperRight,
    /// Top left.
    UpperLeft,
    /// Bottom left: free when curves fall from left to right (errors against evaluations).
    LowerLeft,
    /// Bottom right.
    LowerRight,
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
    /// With a logarithmic y axis.
    pub fn y_log(mut self) -> Self {
        self.y_log = true;
        self
    }
    /// With a logarithmic y axis when positive values span more than two decades (energy
    /// distances, errors), a linear one otherwise.
    pub fn y_log_if_wide(mut self, series: &[Series]) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for (_, y) in series.iter().flat_map(|s| s.points.iter()) {
            if *y > 0.0 && y.is_finite() {
                lo = lo.min(*y);
                hi = hi.max(*y);
            }
        }
        self.y_log = hi > 0.0 && hi / lo > 100.0;
        self
    }
    /// With the legend in `corner`.
    pub fn legend_at(mut self, corner: Corner) -> Self {
        self.legend = corner;
        self
    }
    /// With equal units on both axes.
    pub fn equal_aspect(mut self) -> Self {
        self.equal_aspect = true;
        self
    }
}

/// A tick label: as few decimals as the ticks' spacing needs (steps read "20", not "20.0"),
/// never "-0".
pub fn tick(v: f64, range: (f64, f64)) -> String {
    // Ticks sit on round numbers: the fewest decimals that write this one to within a
    // millionth of the axis.
    let tol = 1e-6 * (range.1 - range.0).abs().max(f64::MIN_POSITIVE);
    let decimals = (0..10)
        .find(|d| {
            let scale = 10f64.powi(*d as i32);
            ((v * scale).round() / scale - v).abs() <= tol
        })
        .unwrap_or(10);
    let s = format!("{v:.decimals$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// A tick label on a logarithmic axis at log10 value `v`: over two decades or more only the
/// powers of ten are labelled, as 0.01, 1, 100 or 1e-5; on a narrower axis every tick, as its
/// value.
pub fn log_tick(v: f64, range: (f64, f64)) -> String {
    let wide = (range.1 - range.0).abs() >= 2.0;
    let k = v.round();
    if wide {
        if (v - k).abs() > 1e-6 {
            return String::new();
        }
        return if (-3.0..=4.0).contains(&k) {
            let x = 10f64.powf(k);
            if k < 0.0 {
                format!("{x:.prec$}", prec = (-k) as usize)
            } else {
                format!("{x:.0}")
            }
        } else {
            format!("1e{k}")
        };
    }
    let x = 10f64.powf(v);
    let digits = (1 - x.log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
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
    let x_fmt = |v: &f64| tick(*v, x);
    let y_fmt = |v: &f64| {
        if fig.y_log {
            log_tick(*v, y)
        } else {
            tick(*v, y)
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(fig.x_label.as_str())
        .y_desc(fig.y_label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(246, 246, 246));
    if !grid {
        mesh.disable_mesh();
    }
    mesh.draw().map_err(|e| e.to_string())?;
    Ok(chart)
}

/// The legend box of the labelled series, in `corner`.
pub(crate) fn legend<'a, 'b>(
    chart: &mut Chart<'a, 'b>,
    corner: Corner,
) -> std::result::Result<(), String>
where
    'b: 'a,
{
    let position = match corner {
        Corner::UpperRight => SeriesLabelPosition::UpperRight,
        Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
        Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        Corner::LowerRight => SeriesLabelPosition::LowerRight,
    };
    chart
        .configure_series_labels()
        .position(position)
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
    let (xr, yr) = (chart.x_range(), chart.y_range());
    let inside = |p: &(f64, f64)| xr.contains(&p.0) && yr.contains(&p.1);
    for s in series {
        let color = rgb(s.color);
        // A line leaves the frame where it crosses it (drawn along the frame, a value out of
        // range would look like one at the edge); dots outside are left out.
        let pieces = clip(&s.points, (xr.start, xr.end), (yr.start, yr.end));
        let anno = match s.style {
            Style::Line(w) => {
                let mut a = None;
                for piece in &pieces {
                    a = Some(
                        chart
                            .draw_series(LineSeries::new(
                                piece.iter().copied(),
                                color.stroke_width(w),
                            ))
                            .map_err(|e| e.to_string())?,
                    );
                }
                a
            }
            Style::Dashed => {
                let mut a = None;
                for piece in &pieces {
                    a = Some(
                        chart
                            .draw_series(DashedLineSeries::new(
                                piece.iter().copied(),
                                8,
                                5,
                                color.stroke_width(2),
                            ))
                            .map_err(|e| e.to_string())?,
                    );
                }
                a
            }
            Style::Points(r, alpha) => Some(
                chart
                    .draw_series(
                        s.points
                            .iter()
                            .filter(|p| inside(p))
                            .map(|p| Circle::new(*p, r, color.mix(alpha).filled())),
                    )
                    .map_err(|e| e.to_string())?,
            ),
        };
        let Some(anno) = anno else {
            continue;
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

/// The parts of a polyline inside the box, cut where it crosses the box's edges (the crossing
/// points included, so that a line ends at the edge rather than short of it).
pub(crate) fn clip(points: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let inside = |p: (f64, f64)| p.0 >= x.0 && p.0 <= x.1 && p.1 >= y.0 && p.1 <= y.1;
    // Liang-Barsky: the part of segment a-b inside the box, if any.
    let cut = |a: (f64, f64), b: (f64, f64)| -> Option<((f64, f64), (f64, f64))> {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, a.0 - x.0),
            (dx, x.1 - a.0),
            (-dy, a.1 - y.0),
            (dy, y.1 - a.1),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
        (t0 <= t1).then(|| {
            let at = |t: f64| (a.0 + t * dx, a.1 + t * dy);
            (at(t0), at(t1))
        })
    };
    let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let mut out: Vec<Vec<(f64, f64)>> = vec![];
    let mut cur: Vec<(f64, f64)> = vec![];
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        if !finite(&a) || !finite(&b) {
            if cur.len() > 1 {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
            continue;
        }
        match cut(a, b) {
            Some((p, q)) => {
                if cur.is_empty() {
                    cur.push(p);
                }
                cur.push(q);
                if !inside(b) {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => {
                if cur.len() > 1 {
                    out.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    if cur.len() > 1 {
        out.push(cur);
    }
    if points.len() == 1 && finite(&points[0]) && inside(points[0]) {
        out.push(points.to_vec());
    }
    out
}

/// `series` as drawn on `fig`'s axes: y as log10 y on a logarithmic axis (values at or below 0
/// dropped, which breaks a line there).
fn on_axes(fig: &Figure, series: &[Series]) -> Vec<Series> {
    series
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if fig.y_log {
                s.points = s
                    .points
                    .iter()
                    .map(|&(x, y)| (x, if y > 0.0 { y.log10() } else { f64::NAN }))
                    .collect();
            }
            s
        })
        .collect()
}

/// Widens the shorter of two ranges so that a unit of x and of y take as many pixels on a plot
/// area of `w` x `h` pixels.
fn equalise(x: (f64, f64), y: (f64, f64), w: u32, h: u32) -> ((f64, f64), (f64, f64)) {
    let (sx, sy) = ((x.1 - x.0) / f64::from(w), (y.1 - y.0) / f64::from(h));
    let grow = |r: (f64, f64), per_px: f64, px: u32| {
        let (mid, half) = ((r.0 + r.1) / 2.0, per_px * f64::from(px) / 2.0);
        (mid - half, mid + half)
    };
    if sx > sy {
        (x, grow(y, sx, h))
    } else {
        (grow(x, sy, w), y)
    }
}

fn plot(path: &std::path::Path, fig: &Figure, series: &[Series]) -> Result<()> {
    let series = on_axes(fig, series);
    let all = || series.iter().flat_map(|s| s.points.iter());
    let xr = fig
        .x_range
        .unwrap_or_else(|| padded_range(all().map(|p| p.0)));
    let mut yr = fig
        .y_range
        .map(|(a, b)| {
            if fig.y_log {
                (a.log10(), b.log10())
            } else {
                (a, b)
            }
        })
        .unwrap_or_else(|| padded_range(all().map(|p| p.1)));
    let mut xr = xr;
    atomic_png(path, |tmp| {
        let root = BitMapBackend::new(tmp, (900, 560)).into_drawing_area();
        if fig.equal_aspect {
            // The plot area's size is known once a frame is laid out; the second frame, on the
            // widened ranges, is the one drawn on.
            let (w, h) = frame(&root, fig, xr, yr, true)?
                .plotting_area()
                .dim_in_pixel();
            (xr, yr) = equalise(xr, yr, w, h);
        }
        let mut chart = frame(&root, fig, xr, yr, true)?;
        if draw_series(&mut chart, &series)? {
            legend(&mut chart, fig.legend)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws with `draw` into a fresh file and returns the pixels (x, y) of palette colour
    /// `color` (within a small tolerance: anti-aliasing).
    fn pixels_of(
        name: &str,
        color: usize,
        draw: impl FnOnce(&std::path::Path) -> Result<()>,
    ) -> Vec<(u32, u32)> {
        let dir = std::env::temp_dir().join(format!("diffuse-plot-fig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        draw(&p).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        let c = crate::PALETTE[color];
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).abs();
        img.enumerate_pixels()
            .filter(|(_, _, px)| d(px[0], c.0) + d(px[1], c.1) + d(px[2], c.2) < 30)
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    fn rows(px: &[(u32, u32)]) -> std::collections::BTreeMap<u32, usize> {
        let mut rows = std::collections::BTreeMap::new();
        for (_, y) in px {
            *rows.entry(*y).or_insert(0) += 1;
        }
        rows
    }

    #[test]
    fn ticks_say_what_the_axis_needs() {
        assert_eq!(tick(20.0, (0.0, 200.0)), "20");
        assert_eq!(tick(-0.0, (-1.0, 1.0)), "0");
        assert_eq!(tick(4.0, (-4.5, 4.5)), "4");
        assert_eq!(tick(-0.5, (-1.0, 1.0)), "-0.5");
        assert_eq!(tick(0.05, (0.0, 0.5)), "0.05");
        assert_eq!(tick(0.30000000000000004, (0.0, 1.0)), "0.3");
        assert_eq!(log_tick(-2.0, (-3.0, 1.0)), "0.01");
        assert_eq!(log_tick(2.0, (-3.0, 3.0)), "100");
        assert_eq!(log_tick(-6.0, (-7.0, 0.0)), "1e-6");
        assert_eq!(log_tick(-2.5, (-3.0, 1.0)), "");
        assert_eq!(log_tick(0.5, (0.0, 1.0)), "3.2");
    }

    #[test]
    fn clipping_cuts_a_line_where_it_leaves_the_box() {
        let pts = vec![(0.0, 0.0), (1.0, 2.0), (2.0, 0.0), (3.0, -5.0)];
        let parts = clip(&pts, (0.0, 3.0), (-1.0, 1.0));
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[0], vec![(0.0, 0.0), (0.5, 1.0)]);
        assert_eq!(parts[1][0], (1.5, 1.0));
        assert_eq!(parts[1].last(), Some(&(2.2, -1.0)));
    }

    /// A line beyond the y range is not drawn along the frame (seed 000's guess plot: a steep
    /// curve read as a square wave at the edges).
    #[test]
    fn a_line_leaving_the_range_is_not_drawn_on_the_frame() {
        let steep: Vec<(f64, f64)> = (0..=200)
            .map(|i| {
                let x = -1.0 + i as f64 / 100.0;
                (x, 100.0 * x)
            })
            .collect();
        let px = pixels_of("clip.png", 3, |p| {
            lines(
                p,
                &Figure::new("t", "x", "y").y_range(-4.5, 4.5),
                &[Series::line("", steep, 3)],
            )
        });
        let widest = rows(&px).values().copied().max().unwrap_or(0);
        assert!(px.len() > 50, "the line is missing ({} pixels)", px.len());
        assert!(
            widest < 40,
            "a row holds {widest} pixels of the line: drawn along the frame"
        );
    }

    /// On a log axis, decades are equally far apart.
    #[test]
    fn a_log_axis_spaces_decades_evenly() {
        let pts: Vec<(f64, f64)> = (0..4).map(|k| (k as f64, 10f64.powi(k - 3))).collect();
        let px = pixels_of("log.png", 0, |p| {
            lines(
                p,
                &Figure::new("t", "x", "y").y_log(),
                &[Series::points("", pts, 0).styled(Style::Points(6, 1.0))],
            )
        });
        // The dots' centres, by column clusters from left to right.
        let mut xs: Vec<u32> = px.iter().map(|p| p.0).collect();
        xs.sort_unstable();
        xs.dedup();
        let mut clusters: Vec<Vec<u32>> = vec![];
        for x in xs {
            match clusters.last_mut() {
                Some(c) if x - c.last().copied().unwrap_or(x) <= 2 => c.push(x),
                _ => clusters.push(vec![x]),
            }
        }
        assert_eq!(clusters.len(), 4, "{} dots", clusters.len());
        let centre_y = |c: &Vec<u32>| {
            let ys: Vec<f64> = px
                .iter()
                .filter(|p| c.contains(&p.0))
                .map(|p| f64::from(p.1))
                .collect();
            ys.iter().sum::<f64>() / ys.len() as f64
        };
        let ys: Vec<f64> = clusters.iter().map(centre_y).collect();
        let gaps: Vec<f64> = ys.windows(2).map(|w| w[0] - w[1]).collect();
        assert!(gaps.iter().all(|g| *g > 50.0), "{ys:?}");
        assert!(
            gaps.iter().all(|g| (g - gaps[0]).abs() < 3.0),
            "decades not evenly spaced: {gaps:?}"
        );
    }

    /// With equal aspect a circle is round on the page.
    #[test]
    fn equal_aspect_keeps_a_circle_round() {
        let circle: Vec<(f64, f64)> = (0..400)
            .map(|i| {
                let a = i as f64 * std::f64::consts::TAU / 400.0;
                (a.cos(), a.sin())
            })
            .collect();
        let px = pixels_of("circle.png", 1, |p| {
            scatter(
                p,
                &Figure::new("t", "x", "y").equal_aspect(),
                &[Series::points("", circle, 1).styled(Style::Points(2, 1.0))],
            )
        });
        let span = |v: Vec<u32>| f64::from(v.iter().max().unwrap() - v.iter().min().unwrap());
        let w = span(px.iter().map(|p| p.0).collect());
        let h = span(px.iter().map(|p| p.1).collect());
        assert!((w / h - 1.0).abs() < 0.03, "the circle is {w} x {h} pixels");
    }
}
