//! Running a parsed command line, by one route for every command: its arguments become
//! validated settings ([`crate::settings`]) before any work starts, one function per
//! command runs its pipeline, and the result is printed: JSON on stdout with `--json`,
//! otherwise the summary's or report's own human form (each pipeline module prints its
//! own; this module chooses the stream and whether to print at all).
//!
//! The rule: data on stdout, talk on stderr. Results (the `ls` listing, `verify`'s
//! verdict, `push --dry-run`'s plan, `key generate`'s key id, every `--json` document)
//! go to stdout, so `> file` captures them; progress, notes, summaries of what was done
//! and errors go to stderr.
//!
//! `main.rs` stays thin: it calls [`run`], prints the error chain as "Caused by:"
//! lines via [`print_error`], and maps errors to exit codes with [`exit_code`].
//! `save` and `push` install the Ctrl-C / SIGTERM handler ([`crate::interrupt`]) first:
//! they stop cleanly, keep what they did, and exit with status 130. `serve` installs it
//! once it listens: there a signal is the ordinary way to stop, and it exits with 0.
//!
//! `key generate` writes a key pair and prints its key id (data on stdout, the note on
//! encrypting the key on stderr); `verify --trust`, `verify --part` and
//! `verify --base` of a signed differential bundle add their signature checks here, on
//! top of [`crate::bundle::verify_trusting`]; `verify --key`/`--policy` judge the
//! images' cosign signatures through [`crate::bundle::verify::verify_with`].

use std::io::{self, Write};
use std::process::ExitCode;

use crate::cli::{Cli, Command, FormatArgs, GlobalArgs};
use crate::export;
use crate::hint::Hint;
use crate::import::{load, push};
use crate::progress::{Mode, human_bytes};
use crate::settings::{
    InventorySettings, KeyGenerateSettings, LoadSettings, LsSettings, PushSettings, SaveSettings,
    UsageError, VerifySettings,
};

/// How much the user wants to hear, and in which form.
#[derive(Debug, Clone, Copy)]
struct Output {
    quiet: bool,
    verbose: bool,
    /// `--json`: the result as JSON on stdout, and no progress.
    json: bool,
    progress: Mode,
}

impl Output {
    fn new(global: &GlobalArgs, format: FormatArgs) -> Output {
        let progress = if global.no_progress || format.json {
            Mode::Silent
        } else {
            Mode::detect(global.quiet)
        };
        Output {
            quiet: global.quiet,
            verbose: global.verbose > 0,
            json: format.json,
            progress,
        }
    }
}

/// Runs one command: its arguments become validated settings (a [`UsageError`] before
/// any work starts), then the command's function runs them and reports.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let out = Output::new(&cli.global, cli.command.format());
    if matches!(&cli.command, Command::Save(_) | Command::Push(_)) {
        crate::interrupt::install();
    }
    match &cli.command {
        Command::Save(args) => save(&SaveSettings::from_args(args)?, out),
        Command::Verify(args) => verify(&VerifySettings::from_args(args)?, out),
        Command::Push(args) => {
            let settings = PushSettings::from_args(args)?;
            // A dry run's plan is its result (data, on stdout); a push's summary is talk.
            let to = if settings.dry_run {
                To::Stdout
            } else {
                To::Stderr
            };
            match push::push(&settings, &*out.progress.reporter()) {
                Ok(summary) => report(&summary, out, to, |s, w| s.print_human(w)),
                Err(e) => {
                    // Some images were written: say which (stdout for --json), then fail.
                    if let Some(partial) = e.downcast_ref::<push::PartialPush>() {
                        report(&partial.summary, out, to, |s, w| s.print_human(w))?;
                    }
                    Err(e)
                }
            }
        }
        Command::Load(args) => {
            let settings = LoadSettings::from_args(args)?;
            let summary = load::load(&settings, &*out.progress.reporter())?;
            report(&summary, out, To::Stderr, |s, w| s.print_human(w))
        }
        Command::Ls(args) => ls(&LsSettings::from_args(args)?, out),
        Command::Convert(args) => {
            let s = crate::settings::ConvertSettings::from_args(args)?;
            let summary = crate::bundle::convert::convert(
                &s.bundle,
                &s.output,
                s.zstd_level,
                &*out.progress.reporter(),
            )?;
            report(&summary, out, To::Stderr, |s, w| s.print_human(w))
        }
        Command::Inventory(args) => {
            let settings = InventorySettings::from_args(args)?;
            let summary = crate::inventory::take(&settings, &*out.progress.reporter())?;
            report(&summary, out, To::Stderr, |s, w| s.print_human(w))
        }
        Command::Serve(args) => {
            let settings = crate::settings::ServeSettings::from_args(args)?;
            crate::serve::serve(
                &settings,
                crate::serve::LogMode {
                    quiet: out.quiet,
                    json: out.json,
                },
                &*out.progress.reporter(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(args) => match &args.command {
            crate::cli::KeyCommand::Generate(g) => {
                key_generate(&KeyGenerateSettings::from_args(g)?, out)
            }
        },
        Command::Completions(args) => {
            crate::manual::completions(args.shell, &mut io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            crate::manual::man_page(&mut io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What `key generate --json` prints.
#[derive(serde::Serialize)]
struct GeneratedKey {
    key_id: String,
    algorithm: String,
    key_file: String,
    pub_file: String,
}

fn key_generate(settings: &KeyGenerateSettings, out: Output) -> anyhow::Result<ExitCode> {
    let made = crate::signing::generate_key_pair(&settings.out, settings.algorithm)
        .map_err(|e| UsageError(e.to_string()))?;
    let mut stdout = io::stdout().lock();
    if out.json {
        let g = GeneratedKey {
            key_id: made.public_key.key_id().to_string(),
            algorithm: made.public_key.algorithm().name().to_string(),
            key_file: made.key_file.display().to_string(),
            pub_file: made.pub_file.display().to_string(),
        };
        serde_json::to_writer_pretty(&mut stdout, &g)?;
        writeln!(stdout)?;
    } else {
        writeln!(stdout, "{}", made.public_key.key_id())?;
    }
    if !out.quiet {
        let key = made.key_file.display();
        let enc = made.key_file.with_extension("enc.key");
        eprintln!(
            "wrote {key} (private, mode 0600: keep it on the signing side) and {} (public: \
             give it to whoever checks with --trust)\n\
             note: {key} is not encrypted. To encrypt it with a passphrase:\n  \
             openssl pkcs8 -topk8 -v2 aes-256-cbc -in {key} -out {}\n\
             then sign with --sign-key {} and give the passphrase in {} (or type it at the prompt)",
            made.pub_file.display(),
            enc.display(),
            enc.display(),
            crate::signing::PASSPHRASE_ENV
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a command's human report goes: stdout when it is the command's result (data:
/// `push --dry-run`'s plan), stderr when it is a summary of what was done (talk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    Stdout,
    Stderr,
}

/// Prints a command's summary: JSON on stdout; or the human form, on stdout when it is
/// data (even with `--quiet`), on stderr unless quiet when it is talk.
fn report<T: serde::Serialize>(
    summary: &T,
    out: Output,
    to: To,
    human: impl Fn(&T, &mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<ExitCode> {
    if out.json {
        let mut stdout = io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, summary)?;
        writeln!(stdout)?;
    } else if to == To::Stdout {
        let mut stdout = io::stdout().lock();
        human(summary, &mut stdout)?;
        stdout.flush()?;
    } else if !out.quiet {
        human(summary, &mut io::stderr().lock())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn save(settings: &SaveSettings, out: Output) -> anyhow::Result<ExitCode> {
    let reporter = out.progress.reporter();
    let started = std::time::Instant::now();
    let summary = export::save(settings, &*reporter)?;
    report(&summary, out, To::Stderr, |s, w| {
        // The bundle is written by now: a failing stderr does not fail the save.
        let _ = s.print_human(w, out.verbose, started.elapsed().as_secs_f64());
        Ok(())
    })
}

fn verify(settings: &VerifySettings, out: Output) -> anyhow::Result<ExitCode> {
    if settings.part {
        return verify_part(settings, out);
    }
    let reporter = out.progress.reporter();
    let mut report = crate::bundle::verify::verify_with(
        &settings.bundle,
        &settings.trust,
        settings.image_policy.as_ref(),
        &*reporter,
    )?;
    if let Some(base) = &settings.base {
        check_against_base(&mut report, &settings.bundle, base, out)?;
    }
    verdict(&report, report.ok, out, |r, w| r.print_human(w))
}

/// `verify PART --part`: one part against its signed parts index.
fn verify_part(settings: &VerifySettings, out: Output) -> anyhow::Result<ExitCode> {
    let report = crate::bundle::verify::verify_part(&settings.bundle, &settings.trust)?;
    verdict(&report, report.ok, out, |r, w| r.print_human(w))
}

/// Prints a verdict on stdout (JSON, or its human form unless it is sound and `--quiet`
/// asked for silence) and makes it the exit code: 0 when sound, 1 otherwise.
fn verdict<T: serde::Serialize>(
    report: &T,
    ok: bool,
    out: Output,
    human: impl Fn(&T, &mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<ExitCode> {
    let mut stdout = io::stdout().lock();
    if out.json {
        serde_json::to_writer_pretty(&mut stdout, report)?;
        writeln!(stdout)?;
    } else if !out.quiet || !ok {
        human(report, &mut stdout)?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `verify --base`: adds a finding per left-out blob the base does not have, and for a
/// signed differential bundle one when FILE is not the base its statement names.
fn check_against_base(
    report: &mut crate::bundle::VerifyReport,
    bundle: &std::path::Path,
    base: &std::path::Path,
    out: Output,
) -> anyhow::Result<()> {
    let base = crate::inventory::base::BaseSet::open(base)?;
    // A bundle whose TOC cannot be read already has findings saying so.
    let Ok(opened) = crate::bundle::Bundle::open(bundle) else {
        return Ok(());
    };
    let Some(toc_base) = &opened.toc().base else {
        if !out.quiet {
            eprintln!(
                "note: {} is not a differential bundle; --base {} has nothing to check",
                bundle.display(),
                base.file
            );
        }
        return Ok(());
    };
    let mut findings = crate::inventory::base::check_bundle_against(&opened, &base);
    if let Some(named) = report
        .signature
        .as_ref()
        .and_then(|s| s.base_toc_sha256.as_deref())
        && named != base.identity.hex()
    {
        findings.insert(
            0,
            crate::bundle::Finding::new(
                crate::bundle::FindingKind::StatementMismatch,
                format!(
                    "this delta was made against another base: its signed statement names a \
                     base whose {} is sha256:{named}, but {} is {}; apply it onto the bundle or \
                     inventory it was made from",
                    if base.kind == crate::inventory::base::KIND_BUNDLE {
                        "airlock.json"
                    } else {
                        "inventory file"
                    },
                    base.file,
                    base.identity
                ),
            ),
        );
    }
    if findings.is_empty() && !out.quiet && !out.json {
        eprintln!(
            "{} has all {} ({}) this differential bundle leaves out",
            base.describe(),
            crate::words::count(toc_base.omitted.len() as u64, "blob"),
            human_bytes(toc_base.omitted_bytes())
        );
    }
    report.findings.extend(findings);
    report.ok = report.findings.is_empty();
    Ok(())
}

fn ls(settings: &LsSettings, out: Output) -> anyhow::Result<ExitCode> {
    let bundle = crate::bundle::Bundle::open(&settings.bundle)?;
    let mut report = crate::inspect::ListReport::from_bundle(&bundle);
    if let Some((target, keep_registry)) = &settings.target {
        report.add_pull_references(target, *keep_registry)?;
    }
    let mut stdout = io::stdout().lock();
    if out.json {
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else {
        report.print_human(&mut stdout)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit status for an error: 2 for usage errors, 130 for a command stopped by Ctrl-C
/// or SIGTERM, 0 for a closed stdout pipe (`airlock ls | head`), 1 for everything else.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<UsageError>().is_some() {
        return ExitCode::from(2);
    }
    if crate::interrupt::requested() || e.chain().any(|c| c.is::<crate::interrupt::Interrupted>()) {
        return ExitCode::from(crate::interrupt::EXIT_INTERRUPTED);
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

/// Prints `error: <what went wrong>`, one `Caused by:` line per underlying cause, then
/// the hint, if the outermost context is a [`Hint`].
pub fn print_error(e: &anyhow::Error) {
    let mut err = io::stderr().lock();
    let hint = e.downcast_ref::<Hint>();
    let mut chain = e.chain().skip(usize::from(hint.is_some()));
    if let Some(top) = chain.next() {
        let _ = writeln!(err, "error: {top}");
    }
    for cause in chain {
        let _ = writeln!(err, "  Caused by: {cause}");
    }
    let disk_full = e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::StorageFull)
    });
    if disk_full {
        let _ = writeln!(
            err,
            "hint: a disk is full: free some space (or write to another disk with -o) and run the same command again"
        );
    }
    if let Some(h) = hint {
        let _ = writeln!(err, "hint: {h}");
    }
}
