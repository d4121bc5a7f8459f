//! One module per subcommand; each maps its arguments to a pipeline request, calls it, and
//! writes what comes back (samples, summary.json, figures). No command imports another.

mod bench;
mod chains;
mod classify;
mod converge;
mod eval;
mod fokker_planck;
mod forward;
mod nll;
mod sample;
mod sd;
mod serve;
mod train;
mod undiffuse;

use anyhow::{Result, bail};

use crate::args::Command;

/// Runs a parsed command (the tour and the demos, which run commands, are run by `main`).
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Langevin(a) => chains::langevin(&a),
        Command::Metropolis(a) => chains::metropolis(&a),
        Command::FokkerPlanck(a) => fokker_planck::run(&a),
        Command::Forward(a) => forward::run(&a),
        Command::Undiffuse(a) => undiffuse::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Classifier(a) => classify::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Train(a) => train::run(&a),
        Command::Sample(a) => sample::run(&a),
        Command::Converge(a) => converge::run(&a),
        Command::Nll(a) => nll::run(&a),
        Command::Serve(a) => serve::run(&a),
        Command::Tour(_) | Command::Demo(_) => bail!("a tour or a demo cannot run inside another"),
    }
}
