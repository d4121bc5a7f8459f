//! `diffuse sample`: samples of a trained model (seeds 000, 001, 003, 004 and the image models)
//! with any sampler, asked for a label or a prompt.

use anyhow::{Result, bail};
use diffuse_core::tensor::to_vec;
use diffuse_nn::Conditioning;
use diffuse_pipeline::{Ask, Request, eval, generate, load_on};

use crate::args::SampleArgs;
use crate::figures::{PathRecorder, animate, guess_plot, paths, versus, write_images};
use crate::output::Output;
use crate::progress::Bars;

/// `diffuse sample`.
pub fn run(a: &SampleArgs) -> Result<()> {
    // A diffusers folder, or a shipped one (colour-fashion), runs as Stable Diffusion.
    let folder = diffuse_pipeline::shipped::model_folder(&a.model)?;
    if diffuse_pipeline::sd::is_pipeline(&folder) {
        return super::sd::run(a, &folder);
    }
    if let Some(flag) = a.sd.given().first() {
        bail!("{flag} is for Stable Diffusion folders (with model_index.json)");
    }
    let model = load_on(&a.model, &a.compute.device()?)?;
    // Flags that mean nothing for this model are refused, not ignored.
    if a.animate && model.image_shape().is_none() {
        bail!(
            "--animate films image models; the model in {} draws points (its paths.png shows \
             the reverse process of 1-D models)",
            a.model.display()
        );
    }
    if a.prompt_as_is && a.prompt.is_none() {
        bail!("--prompt-as-is goes with --prompt");
    }
    if a.prompt_as_is && !model.reads_prompts() {
        bail!(
            "--prompt-as-is is for models trained on captions (--cond prompt); the model in {} \
             was not",
            a.model.display()
        );
    }
    if a.no_clip && !model.clips() {
        bail!(
            "--no-clip applies to image models, whose predicted clean images are clipped to \
             [-1, 1]; the model in {} is not clipped",
            a.model.display()
        );
    }
    let defaults = model.defaults();
    let ask = Ask::from_options(a.label.as_deref(), a.prompt.as_deref())?;
    let sampler = a.sampling.spec_or(defaults.sampler, defaults.nfe)?;
    let request = Request {
        batch: a.batch.unwrap_or(10_000),
        seed: a.common.seed,
        clip: !a.no_clip,
        prompt_as_is: a.prompt_as_is,
        ..Request::for_model(&model, ask, a.n, a.guidance, sampler)
    };
    let n = request.n;
    let d = model.dim();
    let shape = model.image_shape();
    // Paths of the first samples (1-D models).
    let mut recorder = PathRecorder::new(if d == 1 { a.trajectories.min(n) } else { 0 });
    // The reverse process of the first images of each group, for --animate (16 in all).
    let groups = if request.ask.every_class(&model) {
        model.record.classes.len().max(1)
    } else {
        1
    };
    let per_group = if a.animate && shape.is_some() {
        (16 / groups).clamp(1, n.max(1))
    } else {
        0
    };
    let mut frames: Vec<Vec<f64>> = vec![];
    // The folder is claimed before the long work (after the request's own errors), so that a
    // refusal costs nothing.
    request.check()?;
    let mut out = Output::new(&a.common, "sample")?;
    let samples = {
        let (mut batch_start, mut frame) = (u64::MAX, 0);
        let mut watch = Bars::watching(Box::new(|rows, t, x| {
            recorder.record(rows.start as usize, t, x);
            if rows.start != batch_start {
                (batch_start, frame) = (rows.start, 0);
            }
            let keep = if rows.start.is_multiple_of(n as u64) {
                per_group.min((rows.end - rows.start) as usize)
            } else {
                0
            };
            if keep > 0 {
                let v = to_vec(&x.clone().narrow(0, 0, keep))?;
                if frames.len() <= frame {
                    frames.push(vec![]);
                }
                frames[frame].extend(v);
                frame += 1;
            }
            Ok(())
        }));
        generate(&model, &request, &mut watch)?
    };
    if let Some((caption, class)) = &samples.prompt_read_as {
        println!(
            "read the prompt as the model's caption \"{caption}\" ({class}); --prompt-as-is gives the model the prompt itself"
        );
    }
    let x = &samples.x;
    let record = &model.record;
    if d == 1 {
        // The model samples standardised data: paths go back to the data's units.
        let traj: Vec<Vec<(f64, f64)>> = recorder
            .finish()?
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|(time, x)| {
                        let mut y = [x];
                        record.standardization.invert(&mut y);
                        (time, y[0])
                    })
                    .collect()
            })
            .collect();
        if !traj.is_empty() {
            paths(
                &out.path("paths.png"),
                &format!("{} reverse paths of the model", traj.len()),
                "step t",
                &traj,
            )?;
            // Seed 000's "best guess of z against x_t", in the model's coordinates, over where
            // the paths went (at least [-3, 3]).
            let st = &record.standardization;
            let (mean, std) = (st.mean[0], st.std[0]);
            let span: Vec<f64> = traj
                .iter()
                .flatten()
                .map(|&(_, y)| (y - mean) / std)
                .collect();
            let title = if mean == 0.0 && std == 1.0 {
                "Best guess of the noise z given x_t (the model)"
            } else {
                "Best guess of the noise z given x_t (the model, standardised x)"
            };
            guess_plot(
                &out.path("guess.png"),
                title,
                &model.denoiser,
                &model.schedule,
                record.steps,
                &span,
                &[],
            )?;
        }
    }
    out.samples(x, d)?;
    if record.cond == Conditioning::Sign
        && request.guidance != 0.0
        && let Some(l) = a.prompt.as_ref().or(a.label.as_ref())
    {
        out.num(
            "fraction_matching_prompt",
            eval::fraction_matching_sign(x, d, l),
        );
    }
    out.set("model", a.model.display().to_string());
    out.report(samples.report(&request));
    out.set("device", a.compute.name());
    if !samples.labels.is_empty() {
        // The class each sample was asked for, for `diffuse eval --classifier`.
        let mut s = String::from("label\n");
        for l in &samples.labels {
            s.push_str(l);
            s.push('\n');
        }
        let path = out.path("labels.csv");
        std::fs::write(&path, s)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let Some((h, w)) = shape {
        // Pictures are judged by eye and by a classifier, not by distances between pixel
        // vectors, which would also cost O(n^2 d) here.
        write_images(&out.path(""), x, h, w)?;
        // What the shipped judge of the model's data sees in the pictures.
        if let Some(v) = eval::shipped_verdict(&record.data, x, h, w)? {
            let counts = v.counts();
            let said: Vec<String> = counts.iter().map(|(c, k)| format!("{c} {k}")).collect();
            let accuracy = v.accuracy(&samples.labels);
            println!(
                "{} sees: {}{}",
                v.judge,
                said.join(", "),
                accuracy.map_or(String::new(), |a| format!(
                    " ({:.1}% of the classes asked for)",
                    100.0 * a
                ))
            );
            out.report(v.report(&samples.labels));
        }
        if !frames.is_empty() {
            animate(&out.path("animation.gif"), &frames, h, w)?;
        }
        out.finish()?;
        return Ok(());
    }
    let unconditioned = a.label.is_none() && a.prompt.is_none();
    if let Some(c) = eval::against_data(&record.data, x, d, n, a.common.seed, unconditioned) {
        out.report(c.report);
        versus(
            &out.path("histogram.png"),
            &out.path("scatter.png"),
            &format!("Samples of the model against the data ({})", record.data),
            ("model", x),
            ("data", &c.reference),
            d,
            c.data.analytic(),
            "data density",
        )?;
    }
    out.finish()?;
    Ok(())
}
