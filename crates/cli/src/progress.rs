//! Progress on stderr for the pipeline's long runs: bars, a spinner while a grid is fitted,
//! warnings. When stderr is not a terminal (a log file, `nohup`, CI) the bars are hidden and a
//! long run says how far it is in a plain line every half minute instead.

use std::io::IsTerminal;
use std::ops::Range;
use std::time::{Duration, Instant};

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

/// How often a run whose stderr is not a terminal says how far it is.
const PLAIN_EVERY: Duration = Duration::from_secs(30);

/// Progress as plain lines, for a stderr that is not a terminal: nothing for a run shorter than
/// [`PLAIN_EVERY`], then one line per interval (what, how far, time spent and left).
struct Plain {
    what: String,
    total: u64,
    done: u64,
    start: Instant,
    last: Instant,
}

impl Plain {
    fn new(what: &str, total: u64) -> Self {
        let now = Instant::now();
        Self {
            what: what.to_string(),
            total,
            done: 0,
            start: now,
            last: now,
        }
    }

    fn advance(&mut self, units: u64) {
        self.done += units;
        if self.last.elapsed() < PLAIN_EVERY {
            return;
        }
        self.last = Instant::now();
        let spent = self.start.elapsed().as_secs_f64();
        let left = if self.done > 0 {
            spent * (self.total.saturating_sub(self.done)) as f64 / self.done as f64
        } else {
            f64::NAN
        };
        eprintln!(
            "{}: {}/{} ({:.0}%), {} spent, about {} left",
            self.what,
            self.done,
            self.total,
            100.0 * self.done as f64 / self.total.max(1) as f64,
            clock(spent),
            clock(left)
        );
    }
}

/// Seconds as `1h02m`, `3m05s` or `42s`.
fn clock(s: f64) -> String {
    if !s.is_finite() {
        return "?".into();
    }
    let s = s.round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
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
    plain: Option<Plain>,
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
        self.plain = (!std::io::stderr().is_terminal()).then(|| Plain::new(what, total));
    }

    fn advance(&mut self, units: u64) -> anyhow::Result<()> {
        if let Some(b) = &self.bar {
            b.inc(units);
        }
        if let Some(p) = &mut self.plain {
            p.advance(units);
        }
        Ok(())
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        self.plain = None;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_as_hours_minutes_and_seconds() {
        assert_eq!(clock(42.4), "42s");
        assert_eq!(clock(185.0), "3m05s");
        assert_eq!(clock(3725.0), "1h02m");
        assert_eq!(clock(f64::NAN), "?");
    }
}
