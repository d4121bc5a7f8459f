//! Progress on stderr for the pipeline's long runs: bars, a spinner while a grid is fitted,
//! warnings; hidden when stderr is not a terminal.

use std::ops::Range;

use burn::tensor::Tensor;
use diffuse_pipeline::Watch;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` units with a message.
pub fn bar(len: u64, message: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>12} [{bar:40}] {pos}/{len} {elapsed_precise} {pace} eta {eta}",
    ) {
        // The pace as seconds per unit when a unit takes a second or more (a Stable Diffusion
        // step), else units per second.
        let style = style.with_key(
            "pace",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let (done, secs) = (s.pos(), s.elapsed().as_secs_f64());
                let _ = if done == 0 {
                    Ok(())
                } else if secs >= done as f64 {
                    write!(w, "{:.1} s/it", secs / done as f64)
                } else {
                    write!(w, "{:.1} it/s", done as f64 / secs.max(1e-9))
                };
            },
        );
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(message.to_string());
    pb
}

/// A spinner with a message and the time elapsed, for work of unknown length.
pub fn spinner(message: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed_precise}") {
        pb.set_style(style);
    }
    pb.set_message(message.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

/// What hears the states of a run (paths, animation frames).
pub type States<'a> = Box<dyn FnMut(&Range<u64>, f64, &Tensor<2>) -> anyhow::Result<()> + 'a>;

/// What hears the pictures of a run's predictions (rows, step, images in [0, 1]).
pub type Previews<'a> = Box<dyn FnMut(&Range<u64>, usize, &Tensor<4>) -> anyhow::Result<()> + 'a>;

/// The command line's [`Watch`]: a bar per piece of work, a spinner while a grid is fitted
/// (said first when it will take more than a minute), warnings on stderr, and optionally a
/// listener for the run's states.
#[derive(Default)]
pub struct Bars<'a> {
    bar: Option<ProgressBar>,
    spinner: Option<ProgressBar>,
    states: Option<States<'a>>,
    previews: Option<Previews<'a>>,
}

impl<'a> Bars<'a> {
    /// Bars and warnings only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bars, warnings, and `previews` called with the pictures of the predictions after every
    /// step.
    pub fn previewing(previews: Previews<'a>) -> Self {
        Self {
            previews: Some(previews),
            ..Self::default()
        }
    }

    /// Bars, warnings, and `states` called with every state of the run.
    pub fn watching(states: States<'a>) -> Self {
        Self {
            states: Some(states),
            ..Self::default()
        }
    }
}

impl Watch for Bars<'_> {
    fn begin(&mut self, what: &str, total: u64) {
        self.bar = Some(bar(total, what));
    }

    fn advance(&mut self, units: u64) -> anyhow::Result<()> {
        if let Some(b) = &self.bar {
            b.inc(units);
        }
        Ok(())
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    fn preparing(&mut self, what: &str, seconds: Option<f64>) {
        if let Some(s) = seconds.filter(|s| *s > 60.0) {
            eprintln!(
                "{what} takes about {:.0} minutes; reuse its levels (grid_sigmas in summary.json) with --grid sigmas:...",
                s / 60.0
            );
        }
        self.spinner = Some(spinner(what));
    }

    fn prepared(&mut self) {
        if let Some(s) = self.spinner.take() {
            s.finish_and_clear();
        }
    }

    fn state(&mut self, rows: &Range<u64>, t: f64, x: &Tensor<2>) -> anyhow::Result<()> {
        match &mut self.states {
            Some(f) => f(rows, t, x),
            None => Ok(()),
        }
    }

    fn watches_states(&self) -> bool {
        self.states.is_some()
    }

    fn preview_every(&self) -> usize {
        usize::from(self.previews.is_some())
    }

    fn preview(
        &mut self,
        rows: &Range<u64>,
        step: usize,
        images: &Tensor<4>,
    ) -> anyhow::Result<()> {
        match &mut self.previews {
            Some(f) => f(rows, step, images),
            None => Ok(()),
        }
    }

    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }
}
