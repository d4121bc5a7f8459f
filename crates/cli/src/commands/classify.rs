//! `diffuse classifier`: trains an image classifier on real data, to judge generated images
//! with `diffuse eval --classifier`.

use anyhow::Result;
use diffuse_pipeline::eval::{ClassifierRun, train_classifier};

use crate::args::ClassifierArgs;
use crate::output::Output;
use crate::progress::Bars;

/// `diffuse classifier`.
pub fn run(a: &ClassifierArgs) -> Result<()> {
    let run = ClassifierRun {
        data: a.data.clone(),
        test_data: a.test_data.clone(),
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        channels: a.channels,
        seed: a.common.seed,
        device: a.compute.device()?,
    };
    let mut out = Output::new(&a.common, "classifier")?;
    let report = train_classifier(&run, &out.path(""), &mut Bars::new())?;
    out.report(report);
    out.set("device", a.compute.name());
    out.finish()?;
    Ok(())
}
