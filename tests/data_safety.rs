//! airlock only ever deletes or replaces files it created. These tests put a user's
//! files where a careless writer would hit them — beside split parts, as the `--base`
//! of a save to the same name, as the `-o` of a load reading that very bundle, as a
//! `docker-archive:` input saved over itself, under the name of the scratch directory —
//! and check that every one of them is still there, byte for byte, afterwards, with a
//! usage error (exit 2) naming both paths where the command could only destroy its input.
//! All on the shipped fixtures, through the binary; no registry needed.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::cli::{airlock, dir_listing, repo_root};
use support::images::{hex_of, sha256};

fn fixture_oci() -> String {
    format!("oci:{}", repo_root().join("fixtures/oci").display())
}

fn save(out: &Path, extra: &[&str]) -> support::cli::Run {
    let mut args = vec![
        "save".to_string(),
        fixture_oci(),
        "-o".to_string(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    airlock(&args)
}

fn parts_of(dir: &Path, name: &str) -> Vec<String> {
    dir_listing(dir)
        .into_iter()
        .filter(|n| {
            n.strip_prefix(&format!("{name}."))
                .is_some_and(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

#[test]
fn split_save_leaves_files_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rel.tar.zst");
    let users: Vec<(PathBuf, &[u8])> = vec![
        (dir.path().join("rel.tar.zst.20240101"), b"a dated copy"),
        (dir.path().join("rel.tar.zst.0001"), b"a file of the user's"),
        (dir.path().join("rel.tar.zst.notes"), b"notes"),
    ];
    for (p, bytes) in &users {
        fs::write(p, bytes).unwrap();
    }
    let first = save(&out, &["--split", "8K"]).ok();
    let many = parts_of(dir.path(), "rel.tar.zst");
    assert!(many.len() > 5, "{first}\n{many:?}");
    for (p, bytes) in &users {
        assert_eq!(&fs::read(p).unwrap(), bytes, "{} was touched", p.display());
    }
    // Dated copies and other numbering are not parts: the set verifies as it is.
    airlock(&["verify", out.to_str().unwrap()]).ok();

    // A second save with bigger parts replaces the set: the old set's parts its index
    // listed go; a look-alike airlock never wrote stays, and the save names it.
    let stray = dir
        .path()
        .join(format!("rel.tar.zst.{:03}", many.len() + 3));
    fs::write(&stray, b"not airlock's").unwrap();
    let second = save(&out, &["--split", "64K"]).ok();
    let few = parts_of(dir.path(), "rel.tar.zst");
    let stray_name = stray.file_name().unwrap().to_str().unwrap().to_string();
    let written: Vec<&String> = few.iter().filter(|n| **n != stray_name).collect();
    assert!(written.len() < many.len(), "{second}\n{few:?}");
    assert_eq!(fs::read(&stray).unwrap(), b"not airlock's");
    assert!(
        second
            .stderr
            .contains(&format!("left `{}` alone", stray.display()))
            && second.stderr.contains("move it away"),
        "{second}"
    );
    for (p, bytes) in &users {
        assert_eq!(&fs::read(p).unwrap(), bytes, "{} was touched", p.display());
    }
    // The note was right: readers see the look-alike as an extra part until it goes.
    airlock(&["verify", out.to_str().unwrap()]).expect_code(1);
    fs::remove_file(&stray).unwrap();
    airlock(&["verify", out.to_str().unwrap()]).ok();
}

#[test]
fn base_that_the_save_would_replace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("a.tar.zst");
    save(&out, &[]).ok();
    let before = fs::read(&out).unwrap();
    fs::hard_link(&out, d.join("hard.tar.zst")).unwrap();
    std::os::unix::fs::symlink(&out, d.join("soft.tar.zst")).unwrap();
    fs::create_dir(d.join("sub")).unwrap();
    for base in [
        out.clone(),
        d.join("hard.tar.zst"),
        d.join("soft.tar.zst"),
        d.join("sub/../a.tar.zst"),
    ] {
        let run = save(&out, &["--base", base.to_str().unwrap()]).expect_code(2);
        assert!(
            run.stderr.contains(&format!("--base `{}`", base.display()))
                && run.stderr.contains(&format!("output `{}`", out.display())),
            "{run}"
        );
        assert_eq!(fs::read(&out).unwrap(), before, "the base was replaced");
    }
    assert_eq!(
        dir_listing(d),
        ["a.tar.zst", "hard.tar.zst", "soft.tar.zst", "sub"]
    );

    // A dated copy is another file: a differential bundle against it is fine.
    let dated = d.join("a.tar.zst.20240101");
    fs::copy(&out, &dated).unwrap();
    save(&out, &["--base", dated.to_str().unwrap()]).ok();
    assert_eq!(fs::read(&dated).unwrap(), before);
}

#[test]
fn base_among_the_outputs_parts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.tar");
    save(&out, &["--split", "64K"]).ok();
    let before: Vec<(String, Vec<u8>)> = dir_listing(dir.path())
        .into_iter()
        .map(|n| {
            let bytes = fs::read(dir.path().join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    for base in ["s.tar.000", "s.tar.001", "s.tar.parts.json"] {
        let base = dir.path().join(base);
        for split in [&["--split", "64K"][..], &[]] {
            let mut extra = vec!["--base", base.to_str().unwrap()];
            extra.extend_from_slice(split);
            let run = save(&out, &extra).expect_code(2);
            assert!(
                run.stderr.contains(&format!("--base `{}`", base.display()))
                    && run.stderr.contains(&format!("`{}`", out.display())),
                "{run}"
            );
        }
    }
    for (n, bytes) in before {
        assert_eq!(fs::read(dir.path().join(&n)).unwrap(), bytes, "{n} changed");
    }
}

#[test]
fn load_to_the_bundle_it_reads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("b.tar");
    save(&single, &[]).ok();
    let split = dir.path().join("p.tar");
    save(&split, &["--split", "64K"]).ok();
    let listing = dir_listing(dir.path());
    let before: Vec<Vec<u8>> = listing
        .iter()
        .map(|n| fs::read(dir.path().join(n)).unwrap())
        .collect();
    for (bundle, o) in [
        ("b.tar", "b.tar"),
        ("b.tar", "./b.tar"),
        ("p.tar", "p.tar.000"),
        ("p.tar.000", "p.tar.000"),
        ("p.tar.parts.json", "p.tar.001"),
    ] {
        let run = support::cli::cmd(&["load", bundle, "-o", o])
            .current_dir(dir.path())
            .run()
            .expect_code(2);
        assert!(
            run.stderr.contains(&format!("-o `{o}`")) && run.stderr.contains(bundle),
            "{run}"
        );
    }
    assert_eq!(dir_listing(dir.path()), listing);
    for (n, bytes) in listing.iter().zip(before) {
        assert_eq!(fs::read(dir.path().join(n)).unwrap(), bytes, "{n} changed");
    }
}

#[test]
fn archive_input_saved_over_itself_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("x.tar");
    fs::copy(
        repo_root().join("fixtures/docker-archive/legacy.tar"),
        &archive,
    )
    .unwrap();
    let before = fs::read(&archive).unwrap();
    let input = format!("docker-archive:{}", archive.display());
    let run = airlock(&["save", &input, "-o", archive.to_str().unwrap()]).expect_code(2);
    assert!(
        run.stderr.contains(&input) && run.stderr.contains("would replace"),
        "{run}"
    );
    assert_eq!(fs::read(&archive).unwrap(), before);
    assert_eq!(dir_listing(dir.path()), ["x.tar"]);
}

#[test]
fn scratch_directory_name_taken_by_a_user_is_not_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let scratch_arg = scratch.path().display().to_string();
    let out = dir.path().join("b.tar");
    // Beside the output, where earlier versions kept their scratch space: a user's
    // directory of that name is no longer in the way, and is left alone.
    let beside = dir.path().join(".b.tar.staging");
    fs::create_dir(&beside).unwrap();
    fs::write(beside.join("keep.txt"), b"mine").unwrap();
    save(&out, &["--scratch", &scratch_arg]).ok();
    assert_eq!(fs::read(beside.join("keep.txt")).unwrap(), b"mine");
    assert_eq!(dir_listing(dir.path()), [".b.tar.staging", "b.tar"]);
    fs::remove_file(&out).unwrap();
    // The save's own name in the scratch directory, taken by a user: refused, not emptied.
    let full = fs::canonicalize(dir.path()).unwrap().join("b.tar");
    let hex = sha256(full.as_os_str().as_encoded_bytes());
    let theirs = scratch
        .path()
        .join(format!("airlock-save-{}", &hex_of(&hex)[..16]));
    fs::create_dir(&theirs).unwrap();
    fs::write(theirs.join("keep.txt"), b"mine").unwrap();
    let run = save(&out, &["--scratch", &scratch_arg]).expect_code(1);
    assert!(
        run.stderr
            .contains(&format!("`{}` is in the way", theirs.display())),
        "{run}"
    );
    assert_eq!(fs::read(theirs.join("keep.txt")).unwrap(), b"mine");
    assert!(!out.exists());
    // airlock's own scratch directories (marked when made), left by a killed save, are
    // emptied and removed: in the scratch directory, and beside the output (earlier
    // versions).
    for d in [&theirs, &beside] {
        fs::remove_file(d.join("keep.txt")).unwrap();
        fs::write(
            d.join("airlock-staging"),
            b"scratch space of an airlock save\n",
        )
        .unwrap();
        fs::create_dir_all(d.join("blobs/sha256")).unwrap();
        fs::write(d.join("blobs/sha256/0123.part"), b"half a layer").unwrap();
    }
    save(&out, &["--scratch", &scratch_arg]).ok();
    assert_eq!(dir_listing(dir.path()), ["b.tar"]);
    assert!(dir_listing(scratch.path()).is_empty());
}
