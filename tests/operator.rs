//! The operator's experience, through the binary: which stream each kind of output
//! goes to (data on stdout, talk on stderr), the wording of human output, shell
//! completions and the man page, and the messages for common mistakes.
//!
//! Bundles are made from the shipped OCI layout (`fixtures/oci`), so only the tests
//! that push need a registry (a real `docker-registry` on loopback).

mod support;

use std::path::{Path, PathBuf};

use support::cli::{airlock, cmd, repo_root};
use support::registry::TestRegistry;

/// `airlock save oci:fixtures/oci -o DIR/NAME`, which must succeed.
fn fixture_bundle(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let layout = format!("oci:{}", repo_root().join("fixtures/oci").display());
    airlock(&[
        "--no-progress",
        "save",
        &layout,
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    out
}

#[test]
fn push_dry_run_plan_goes_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = fixture_bundle(dir.path(), "b.tar.zst");
    let tgt = TestRegistry::start();
    let target = format!("{}/mirror", tgt.addr());
    let run = airlock(&[
        "push",
        bundle.to_str().unwrap(),
        &target,
        "--dry-run",
        "--no-progress",
    ])
    .ok();
    assert!(run.stdout.contains("Dry run"), "the plan is data: {run}");
    assert!(run.stdout.contains("would upload"), "{run}");
    assert!(!run.stderr.contains("Dry run"), "{run}");
    // --quiet silences talk, not the result asked for.
    let quiet = airlock(&["-q", "push", bundle.to_str().unwrap(), &target, "--dry-run"]).ok();
    assert!(quiet.stdout.contains("Dry run"), "{quiet}");
    assert_eq!(quiet.stderr, "", "{quiet}");
    // --json: one JSON document on stdout, nothing else there.
    let json = airlock(&[
        "push",
        bundle.to_str().unwrap(),
        &target,
        "--dry-run",
        "--json",
    ])
    .ok();
    assert_eq!(json.json()["dry_run"], true, "{json}");
}

#[test]
fn ls_and_verify_results_go_to_stdout_and_progress_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = fixture_bundle(dir.path(), "b.tar.zst");
    let b = bundle.to_str().unwrap();

    let ls = airlock(&["ls", b]).ok();
    assert!(ls.stdout.contains("NAME"), "the listing is data: {ls}");
    assert_eq!(ls.stderr, "", "{ls}");

    let verify = airlock(&["verify", b, "--no-progress"]).ok();
    assert!(
        verify.stdout.starts_with("OK"),
        "the verdict is data: {verify}"
    );
    assert!(!verify.stderr.contains("OK"), "{verify}");

    for args in [&["ls", b, "--json"][..], &["verify", b, "--json"]] {
        let run = airlock(args).ok();
        let doc = run.json();
        assert!(doc.is_object(), "{run}");
        assert_eq!(run.stderr, "", "--json leaves stderr to errors: {run}");
    }

    // A failed verify still puts its verdict on stdout.
    let plain = fixture_bundle(dir.path(), "b.tar");
    let listing = airlock(&["ls", plain.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let digest = listing["images"][0]["digest"].as_str().unwrap().to_string();
    let blob = format!("blobs/{}", digest.replace(':', "/"));
    let broken = dir.path().join("broken.tar");
    support::cli::copy_with_flipped_byte(&plain, &broken, &blob, 10);
    let bad = airlock(&["verify", broken.to_str().unwrap(), "--no-progress"]).expect_code(1);
    assert!(!bad.stdout.is_empty(), "{bad}");
}

#[test]
fn save_summary_is_talk_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar");
    let layout = format!("oci:{}", repo_root().join("fixtures/oci").display());
    let run = airlock(&[
        "--no-progress",
        "save",
        &layout,
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(run.stdout, "", "{run}");
    assert!(run.stderr.contains("Saved"), "{run}");
}

#[test]
fn log_progress_counts_layers_and_names_the_finishing_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar");
    let layout = format!("oci:{}", repo_root().join("fixtures/oci").display());
    // stderr is not a terminal here, so progress comes as log lines.
    let run = airlock(&["save", &layout, "-o", out.to_str().unwrap()]).ok();
    // The phase counts layers (the summary counts every blob), and so does its end.
    assert!(
        run.stderr.contains("fetching: 5 layers, 129.6 KiB\n")
            && run
                .stderr
                .contains("fetching: done, 5 layers, 129.6 KiB in ")
            && run.stderr.contains("14 blobs (135.2 KiB)"),
        "{run}"
    );
    assert!(!run.stderr.contains(" item"), "{run}");
    // A blob shared by four images: its digest, the first image, how many more, which layer.
    let shared = run
        .stderr
        .lines()
        .find(|l| l.contains(" example.com/airlock/hello:1.0 +3 layer 1/2 ("))
        .unwrap_or_else(|| panic!("no line for the shared layer: {run}"));
    let digest = shared.split(' ').nth(1).unwrap();
    assert!(
        digest.len() == 12 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("finishing: flushing the compressor, syncing to disk, renaming into place\n")
            && run.stderr.contains("finishing: done in "),
        "{run}"
    );
}

#[test]
fn counts_agree_with_their_nouns_and_words_say_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.tar");
    let layout = format!("oci:{}:1.0", repo_root().join("fixtures/oci").display());
    let save = airlock(&[
        "--no-progress",
        "save",
        &layout,
        "-o",
        one.to_str().unwrap(),
    ])
    .ok();
    assert!(save.stderr.contains("Saved 1 image name, "), "{save}");
    let b = one.to_str().unwrap();

    let ls = airlock(&["ls", b]).ok();
    assert!(ls.stdout.contains(": 1 image, "), "{ls}");
    assert!(
        ls.stdout.contains("(uncompressed, "),
        "a plain tar says so: {ls}"
    );
    assert!(!ls.stdout.contains("(s)"), "{ls}");
    assert_eq!(
        airlock(&["ls", b, "--json"]).ok().json()["compression"],
        "none"
    );

    let verify = airlock(&["verify", b, "--no-progress"]).ok();
    assert!(verify.stdout.starts_with("OK: 1 image, "), "{verify}");

    let out = dir.path().join("for-docker.tar");
    let load = airlock(&["--no-progress", "load", b, "-o", out.to_str().unwrap()]).ok();
    assert!(
        load.stderr.contains("Wrote 1 name for linux/amd64"),
        "{load}"
    );
    assert!(
        !load.stderr.to_lowercase().contains("loaded"),
        "-o loads nothing: {load}"
    );
    assert!(!load.stderr.contains("(s)"), "{load}");

    let help = airlock(&["--help"]).ok();
    assert!(help.stdout.contains("130 interrupted"), "{help}");
}

#[test]
fn bash_completion_loads_and_completes_sa_to_save() {
    let script = airlock(&["completions", "bash"]).ok();
    assert_eq!(script.stderr, "", "{script}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("airlock.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    // Load the script as bash-completion would, then complete `airlock sa<TAB>` the way
    // bash calls a completion function: COMP_WORDS/COMP_CWORD set, then FUNC CMD CUR PREV.
    let probe = format!(
        r#"set -e
source {file}
spec=$(complete -p airlock)
func=$(sed -E 's/.* -F ([^ ]+) .*/\1/' <<<"$spec")
COMP_WORDS=(airlock sa); COMP_CWORD=1; COMP_LINE="airlock sa"; COMP_POINT=${{#COMP_LINE}}
"$func" airlock sa airlock
printf '%s\n' "${{COMPREPLY[@]}}""#,
        file = file.display()
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bash: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = stdout.lines().collect();
    assert_eq!(words, ["save"], "completions of `airlock sa`");

    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let run = airlock(&["completions", shell]).ok();
        assert!(run.stdout.contains("save"), "{run}");
    }
    let bad = airlock(&["completions", "tcsh"]).expect_code(2);
    assert!(bad.stderr.contains("bash"), "{bad}");
}

#[test]
fn man_page_renders() {
    let run = airlock(&["man"]).ok();
    assert!(run.stdout.contains(".TH AIRLOCK 1"), "{run}");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("airlock.1");
    std::fs::write(&page, &run.stdout).unwrap();
    // With man-db, render it as a reader would; without, the roff check above stands.
    let Ok(out) = std::process::Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
    else {
        eprintln!("man is not installed: checked the roff only");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "man -l: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("NAME") && text.contains("airlock"), "{text}");
    assert!(
        text.contains("verify") && text.contains("completions"),
        "{text}"
    );
}

/// stderr of a failed run holds no control character but newlines (no raw input bytes).
fn assert_printable(run: &support::cli::Run) {
    assert!(
        !run.stderr
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{fffd}'),
        "raw bytes in the message: {run}"
    );
}

#[test]
fn a_directory_given_as_a_bundle_is_called_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for cmd in ["ls", "verify"] {
        let run = airlock(&[cmd, d, "--no-progress"]).expect_code(1);
        assert!(
            run.stderr.contains("is a directory, not a bundle file"),
            "{run}"
        );
        assert!(!run.stderr.contains("oci:"), "not an OCI layout: {run}");
    }
    let layout = repo_root().join("fixtures/oci");
    for cmd in ["ls", "verify"] {
        let run = airlock(&[cmd, layout.to_str().unwrap(), "--no-progress"]).expect_code(1);
        assert!(
            run.stderr.contains("it is an OCI image layout")
                && run
                    .stderr
                    .contains(&format!("airlock save oci:{}", layout.display())),
            "{run}"
        );
    }
}

#[test]
fn an_output_in_a_missing_directory_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}", repo_root().join("fixtures/oci").display());
    let run = cmd(&["save", &layout, "-o", "no/such/dir/x.tar.zst"])
        .current_dir(dir.path())
        .run()
        .expect_code(2);
    assert!(
        run.stderr
            .contains("the directory `no/such/dir` does not exist"),
        "{run}"
    );
    assert!(!run.stderr.contains(".lock"), "no hidden file named: {run}");
    assert!(!dir.path().join("no").exists());
}

#[test]
fn a_push_target_with_a_scheme_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = fixture_bundle(dir.path(), "b.tar");
    let run = airlock(&[
        "push",
        bundle.to_str().unwrap(),
        "http://localhost:1/mirror",
    ])
    .expect_code(2);
    assert!(
        run.stderr
            .contains("TARGET is host[:port][/prefix], without a scheme")
            && run.stderr.contains("`localhost:1/mirror`"),
        "{run}"
    );
    assert!(
        !run.stderr.contains("docker.io/library/x"),
        "no dummy image: {run}"
    );
}

#[test]
fn a_plain_tar_is_not_an_airlock_bundle_nor_hostile() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir(&content).unwrap();
    std::fs::write(content.join("f"), "hello\n").unwrap();
    let tar = dir.path().join("plain.tar");
    let made = std::process::Command::new("tar")
        .arg("-C")
        .arg(&content)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(made.success());
    let t = tar.to_str().unwrap();

    let ls = airlock(&["ls", t]).expect_code(1);
    assert!(
        ls.stderr
            .contains("not an airlock bundle (it has no airlock.json)"),
        "{ls}"
    );
    assert!(!ls.stderr.contains("suspicious"), "{ls}");

    let verify = airlock(&["verify", t, "--no-progress"]).expect_code(1);
    assert!(
        verify
            .stdout
            .contains("not an airlock bundle (no airlock.json"),
        "{verify}"
    );
    assert!(!verify.stdout.contains("hostile"), "{verify}");
    assert!(verify.stdout.contains("FAILED: 1 problem in"), "{verify}");
}

#[test]
fn a_docker_archive_that_is_not_a_tar_is_called_so_without_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    // Bytes a tar reader chokes on, control characters and invalid UTF-8 included.
    let bytes: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&junk, bytes).unwrap();
    let out = dir.path().join("o.tar");
    let run = airlock(&[
        "--no-progress",
        "save",
        &format!("docker-archive:{}", junk.display()),
        "-o",
        out.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(run.stderr.contains("is not a tar archive"), "{run}");
    assert_printable(&run);
}

#[test]
fn a_cut_zstd_bundle_says_where_the_file_ends() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = fixture_bundle(dir.path(), "b.tar.zst");
    let cut = dir.path().join("cut.tar.zst");
    let bytes = std::fs::read(&bundle).unwrap();
    std::fs::write(&cut, &bytes[..3000]).unwrap();
    let run = airlock(&["ls", cut.to_str().unwrap()]).expect_code(1);
    assert!(
        run.stderr
            .contains("the file is cut short: it ends at byte 3000, inside zstd frame 0"),
        "{run}"
    );
    assert!(!run.stderr.contains("cannot be decoded"), "{run}");
}

#[test]
fn a_refused_connection_is_retried_once_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::registry::free_port();
    let out = dir.path().join("b.tar");
    let started = std::time::Instant::now();
    let run = airlock(&[
        "--no-progress",
        "save",
        &format!("localhost:{port}/x:1"),
        "-o",
        out.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(
        run.stderr
            .contains("is the registry running, and is the port right?"),
        "{run}"
    );
    assert!(run.stderr.contains("after 2 attempts"), "{run}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}: {run}",
        started.elapsed()
    );
}

#[test]
fn a_push_to_a_name_that_does_not_resolve_fails_at_once_in_two_lines() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = fixture_bundle(dir.path(), "b.tar");
    let run = airlock(&[
        "--no-progress",
        "push",
        bundle.to_str().unwrap(),
        "no-such-host.invalid/mirror",
    ])
    .expect_code(1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line of cause, one hint: {run}");
    assert!(
        lines[0].contains("cannot reach no-such-host.invalid: the host name does not resolve"),
        "{run}"
    );
    assert!(
        lines[1].starts_with("hint: check the name's spelling"),
        "{run}"
    );
}

#[test]
fn a_dry_run_to_a_dead_port_says_what_it_could_not_check() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = fixture_bundle(dir.path(), "b.tar");
    let target = format!("127.0.0.1:{}/mirror", support::registry::free_port());
    let run = airlock(&[
        "--no-progress",
        "push",
        bundle.to_str().unwrap(),
        &target,
        "--dry-run",
    ])
    .expect_code(1);
    assert!(
        run.stderr.contains("this was a dry run")
            && run.stderr.contains("already has could not be checked"),
        "{run}"
    );
    assert!(
        !run.stderr.contains("to finish"),
        "a dry run finishes nothing: {run}"
    );
    assert!(run.stderr.contains("is the registry running"), "{run}");
}

#[test]
fn a_background_child_dies_with_a_panicking_test() {
    let child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("start sleep");
    let pid = child.id();
    let guard = support::cli::KillOnDrop::new(child);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _running = guard;
        panic!("a test fails while its child runs");
    }));
    assert!(panicked.is_err());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the child {pid} outlived the panic"
    );
}

#[test]
fn help_keeps_its_tables_whole_and_global_options_apart() {
    let save = airlock(&["save", "--help"]).ok();
    assert!(
        save.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("localhost:5000/app:1")
                && l.trim_end().ends_with("over plain HTTP")),
        "the IMAGE forms table is not re-wrapped: {save}"
    );
    for cmd in ["save", "push", "load", "verify", "ls"] {
        let run = airlock(&[cmd, "--help"]).ok();
        let global = run
            .stdout
            .find("Global options:")
            .unwrap_or_else(|| panic!("no Global options heading: {run}"));
        assert!(run.stdout[global..].contains("--no-progress"), "{run}");
        assert!(
            !run.stdout[..global].contains("--no-progress"),
            "global options are not mixed into the command's own: {run}"
        );
    }
}
