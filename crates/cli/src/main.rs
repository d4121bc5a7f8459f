//! `diffuse`: parses the command line and calls the library. Errors are one line on stderr.

use std::process::ExitCode;

use clap::Parser;

mod alloc;
mod args;
mod commands;
mod figures;
mod output;
mod progress;
mod tour;

fn main() -> ExitCode {
    alloc::keep_freed_memory();
    // A panic is a bug in diffuse; even then the user gets one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("error: internal error (please report): {msg}");
    }));
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // clap's first line says what is wrong; the usage that follows is what --help is for.
            // The values a refused option takes (the samplers, say) are said on the same line,
            // and the help to read is the subcommand's.
            let text = e.to_string();
            let mut lines = text.lines();
            let mut first = lines
                .next()
                .unwrap_or("error: invalid arguments")
                .to_string();
            if first.ends_with(':') {
                // "the following required arguments were not provided:" and their names below.
                let named: Vec<&str> = lines
                    .take_while(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                first = format!("{first} {}", named.join(", "));
            }
            let values = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("[possible values: "))
                .and_then(|v| v.strip_suffix(']'))
                .map_or(String::new(), |v| format!("; one of: {v}"));
            let command = std::env::args()
                .nth(1)
                .filter(|c| {
                    use clap::CommandFactory;
                    args::Cli::command()
                        .get_subcommands()
                        .any(|s| s.get_name() == c)
                })
                .map_or(String::new(), |c| format!(" {c}"));
            eprintln!("{first}{values} (see 'diffuse{command} --help')");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        args::Command::Tour(a) => tour::run(&a),
        args::Command::Demo(a) => tour::demo::run(&a),
        other => commands::run(other),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = vec![];
    for cause in e.chain() {
        let s = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
