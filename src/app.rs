//! Running a parsed command line: settings are validated, the pipeline runs, and its
//! report is printed (human text on stderr/stdout, or JSON on stdout).
//!
//! `main.rs` stays thin: it calls [`run`], prints the error chain as "Caused by:"
//! lines via [`print_error`], and maps errors to exit codes with [`exit_code`].

use std::io::{self, Write};
use std::process::ExitCode;

use crate::cli::{Cli, Command, LoadArgs, LsArgs, PushArgs, SaveArgs, VerifyArgs};
use crate::export::{self, SaveSummary};
use crate::import::{load, push};
use crate::progress::{Mode, human_bytes};
use crate::settings::{LoadSettings, PushSettings, SaveSettings, UsageError};

/// How much the user wants to hear.
#[derive(Debug, Clone, Copy)]
struct Output {
    quiet: bool,
    verbose: bool,
    progress: Mode,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.global.quiet;
    let json = matches!(
        &cli.command,
        Command::Verify(VerifyArgs { json: true, .. })
            | Command::Ls(LsArgs { json: true, .. })
            | Command::Push(PushArgs { json: true, .. })
            | Command::Load(LoadArgs { json: true, .. })
    );
    let progress = if cli.global.no_progress || json {
        Mode::Silent
    } else {
        Mode::detect(quiet)
    };
    let out = Output {
        quiet,
        verbose: cli.global.verbose > 0,
        progress,
    };
    match &cli.command {
        Command::Save(args) => save(args, out),
        Command::Verify(args) => verify(args, out),
        Command::Push(args) => {
            let settings = PushSettings::from_args(args)?;
            let summary = push::push(&settings, &*out.progress.reporter())?;
            report(&summary, args.json, out, |s, w| s.print_human(w))
        }
        Command::Load(args) => {
            let settings = LoadSettings::from_args(args)?;
            let summary = load::load(&settings, &*out.progress.reporter())?;
            report(&summary, args.json, out, |s, w| s.print_human(w))
        }
        Command::Ls(args) => ls(args),
    }
}

/// Prints a command's summary: JSON on stdout, or the human form on stderr unless quiet.
fn report<T: serde::Serialize>(
    summary: &T,
    json: bool,
    out: Output,
    human: impl Fn(&T, &mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<ExitCode> {
    if json {
        let mut stdout = io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, summary)?;
        writeln!(stdout)?;
    } else if !out.quiet {
        human(summary, &mut io::stderr().lock())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn save(args: &SaveArgs, out: Output) -> anyhow::Result<ExitCode> {
    let settings = SaveSettings::from_args(args)?;
    let reporter = out.progress.reporter();
    let started = std::time::Instant::now();
    let summary = export::save(&settings, &*reporter)?;
    if !out.quiet {
        print_save_summary(&summary, started.elapsed().as_secs_f64(), out.verbose);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_save_summary(s: &SaveSummary, secs: f64, verbose: bool) {
    let mut err = io::stderr().lock();
    if verbose {
        for image in &s.images {
            let _ = writeln!(
                err,
                "{} {} [{}] {}",
                image.name,
                image.digest,
                image.platforms.join(", "),
                human_bytes(image.size)
            );
        }
    }
    for image in &s.images {
        if let Some(note) = &image.note {
            let _ = writeln!(err, "note: {}: {note}", image.name);
        }
        if let Some(why) = &image.docker_skipped {
            let _ = writeln!(
                err,
                "note: {}: not in manifest.json for `docker load`: {why}",
                image.name
            );
        }
    }
    let _ = writeln!(
        err,
        "Saved {} image name(s), {} blobs ({}) to {} ({} on disk) in {secs:.1}s",
        s.images.len(),
        s.blobs,
        human_bytes(s.blob_bytes),
        s.output.display(),
        human_bytes(s.file_size),
    );
}

fn verify(args: &VerifyArgs, out: Output) -> anyhow::Result<ExitCode> {
    let reporter = out.progress.reporter();
    let report = crate::bundle::verify(&args.bundle, &*reporter)?;
    let mut stdout = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else if !out.quiet || !report.ok {
        report.print_human(&mut stdout)?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn ls(args: &LsArgs) -> anyhow::Result<ExitCode> {
    let bundle = crate::bundle::Bundle::open(&args.bundle)?;
    let report = crate::inspect::ListReport::from_bundle(&bundle);
    let mut stdout = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else {
        report.print_human(&mut stdout)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit status for an error: 2 for usage errors, 0 for a closed stdout pipe
/// (`airlock ls | head`), 1 for everything else.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<UsageError>().is_some() {
        return ExitCode::from(2);
    }
    if is_broken_pipe(e) {
        return ExitCode::SUCCESS;
    }
    ExitCode::from(1)
}

pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Prints `error: <top>` and one `Caused by:` line per underlying cause.
pub fn print_error(e: &anyhow::Error) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    for cause in e.chain().skip(1) {
        let _ = writeln!(err, "  Caused by: {cause}");
    }
}
