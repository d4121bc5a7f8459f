//! `diffuse converge`: each sampler's error against its number of denoiser evaluations, on a
//! distribution whose exact denoiser makes the truth known, with the fitted order.

use anyhow::Result;
use diffuse_pipeline::study::{ENDPOINT_STEP, ORDER_POINTS, Study, converge};
use diffuse_plot::{Corner, Figure, Series, Style, lines};
use serde_json::{Value, json};

use crate::args::ConvergeArgs;
use crate::output::Output;
use crate::progress::Bars;

/// `diffuse converge`.
pub fn run(a: &ConvergeArgs) -> Result<()> {
    let study = Study {
        data: a.data.clone(),
        schedule: a.schedule.clone(),
        steps: a.steps,
        samplers: a.samplers.clone(),
        nfe: a.nfe.clone(),
        grid: a.grid.clone(),
        n: a.n,
        reference: a.reference,
        seed: a.common.seed,
    };
    let result = converge(&study, &mut Bars::new())?;
    let mut out = Output::new(&a.common, "converge")?;
    let mut results = serde_json::Map::new();
    let (mut err_series, mut ed_series) = (vec![], vec![]);
    for (c, curve) in result.curves.iter().enumerate() {
        let label = curve.sampler.as_str();
        results.insert(
            label.to_string(),
            json!({
                "nfe": curve.nfe,
                "endpoint_error": curve.endpoint_error.as_ref().map_or(Value::Null, |e| json!(e)),
                "energy_distance": curve.energy_distance,
                "order": curve.order.map_or(Value::Null, |o| json!(o)),
            }),
        );
        if let Some(errors) = &curve.endpoint_error {
            let pts = curve
                .nfe
                .iter()
                .zip(errors)
                .map(|(x, y)| (x.log10(), *y))
                .collect();
            let order = curve.order.unwrap_or(f64::NAN);
            err_series.push(Series::line(format!("{label} (order {order:.1})"), pts, c));
        }
        let pts = curve
            .nfe
            .iter()
            .zip(&curve.energy_distance)
            .map(|(x, y)| (x.log10(), *y))
            .collect();
        ed_series.push(Series::line(label, pts, c).styled(Style::Line(2)));
    }
    out.set("data", a.data.clone());
    out.set("schedule", result.schedule);
    out.set("steps", a.steps);
    out.set("grid", a.grid.clone());
    out.set("n", a.n);
    out.set("endpoint_step", ENDPOINT_STEP);
    out.set("order_points", ORDER_POINTS);
    out.set("exact_energy_distance_n", result.exact_n);
    out.set("samplers", Value::Object(results));
    lines(
        &out.path("orders.png"),
        &Figure::new(
            format!(
                "Endpoint error against evaluations ({}; orders over the {ORDER_POINTS} largest)",
                a.data
            ),
            "log10 NFE",
            "mean |x - x_ref| at the last step (log scale)",
        )
        .y_log()
        .legend_at(Corner::LowerLeft),
        &err_series,
    )?;
    let energy = Figure::new(
        format!("Energy distance to exact samples ({})", a.data),
        "log10 NFE",
        "energy distance",
    )
    .y_log_if_wide(&ed_series);
    // On a log axis a distance at or below 0 (sampling noise: the estimate is a difference of
    // averages) is drawn on a dashed floor line that says so, not dropped.
    if energy.y_log {
        let all = || ed_series.iter().flat_map(|s| s.points.iter());
        let floor = all()
            .map(|p| p.1)
            .filter(|y| *y > 0.0)
            .fold(f64::INFINITY, f64::min)
            / 2.0;
        if all().any(|p| p.1 <= 0.0) && floor.is_finite() {
            let (lo, hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.0), hi.max(p.0))
            });
            for s in &mut ed_series {
                for p in &mut s.points {
                    p.1 = p.1.max(floor);
                }
            }
            ed_series.push(
                Series::line(
                    "at or below 0 (sampling noise)",
                    vec![(lo, floor), (hi, floor)],
                    7,
                )
                .styled(Style::Dashed),
            );
        }
    }
    let energy = Figure {
        y_label: if energy.y_log {
            "energy distance (log scale)".into()
        } else {
            energy.y_label
        },
        ..energy
    };
    lines(&out.path("energy.png"), &energy, &ed_series)?;
    out.finish()?;
    Ok(())
}
