//! Hostile bundles: files crafted to attack the reader, each refused with a clear error
//! by every command that reads bundles, with bounded memory, no panic, and nothing
//! written outside the place airlock writes to.
//!
//! Each case starts from a real bundle (`save oci:fixtures/oci`), takes its entries
//! and rebuilds the tar with one hostile change, using the `tar` crate's `Header` API
//! and raw header bytes where the crate refuses (`..`, absolute names). Each is then
//! given to `verify` (in process and through the binary), `ls`, `push --dry-run` and
//! `load -o`, all run under `prlimit --as=1G` (a reader that trusted a size would die
//! allocating); the exit code must be 1 (never 101, a panic), stderr must say what is
//! wrong, and `load -o` runs in an empty directory that must stay empty.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airlock::bundle::seekable::encode_seek_table;
use airlock::bundle::toc::{TOC_NAME, Toc};
use airlock::bundle::verify;
use airlock::progress::Silent;
use support::cli::{airlock_bin, cmd, repo_root};
use support::registry::TestRegistry;

/// The entries of a real bundle, in order: name, bytes (`None` for directories).
fn fixture_entries(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let out = dir.join("base.tar");
    cmd(&[
        "save",
        "oci:fixtures/oci",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ])
    .current_dir(repo_root())
    .run()
    .ok();
    let bytes = fs::read(&out).unwrap();
    let mut entries = Vec::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if e.header().entry_type().is_dir() {
            entries.push((name, None));
        } else {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            entries.push((name, Some(data)));
        }
    }
    entries
}

/// A ustar header with `name` written as raw bytes (the crate refuses `..` and `/…`).
fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_mtime(1_700_000_000);
    let raw = &mut h.as_old_mut().name;
    raw[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    h
}

/// A tar of `entries` (plus `extra` raw entries after the first two), end blocks included.
fn build(entries: &[(String, Option<Vec<u8>>)], extra: &[(tar::Header, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (i, (name, data)) in entries.iter().enumerate() {
        if i == 2 {
            for (h, d) in extra {
                b.append(h, &d[..]).unwrap();
            }
        }
        match data {
            None => b
                .append(&header(name, tar::EntryType::Directory, 0), &[][..])
                .unwrap(),
            Some(d) => b
                .append(
                    &header(name, tar::EntryType::Regular, d.len() as u64),
                    &d[..],
                )
                .unwrap(),
        }
    }
    b.into_inner().unwrap()
}

fn toc_of(entries: &[(String, Option<Vec<u8>>)]) -> Toc {
    let bytes = entries
        .iter()
        .find(|(n, _)| n == TOC_NAME)
        .and_then(|(_, d)| d.clone())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn set_entry(entries: &mut [(String, Option<Vec<u8>>)], name: &str, data: Vec<u8>) {
    entries.iter_mut().find(|(n, _)| n == name).unwrap().1 = Some(data);
}

/// Compresses a tar as one zstd frame with a seek table (enough for a reader).
fn zstd_bundle(tar: &[u8]) -> Vec<u8> {
    let frame = zstd::bulk::compress(tar, 3).unwrap();
    let mut out = frame.clone();
    out.extend(encode_seek_table(&[(frame.len() as u32, tar.len() as u32)]));
    out
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
    stdout: String,
}

/// Runs airlock under a 1 GiB address-space limit.
fn limited(args: &[&str], cwd: &Path) -> Outcome {
    let out = Command::new("prlimit")
        .arg("--as=1073741824")
        .arg("--")
        .arg(airlock_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .env("DOCKER_CONFIG", cwd)
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run prlimit (util-linux)");
    Outcome {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// Gives the file to every reading command and checks each refuses it cleanly; returns
/// a one-line summary for the test's report. `expect` must appear in `verify`'s or
/// `ls`'s output.
fn assert_refused(case: &str, path: &Path, target: &str, expect: &[&str]) -> String {
    check(case, path, target, expect, true)
}

/// Like [`assert_refused`] for a bundle whose damage only `verify` can see (a TOC that
/// disagrees with sound blobs): `verify` refuses it; the other commands may work (what
/// they read is sound) but never panic, and `load -o` writes nothing but its output.
fn assert_verify_refuses(case: &str, path: &Path, target: &str, expect: &[&str]) -> String {
    check(case, path, target, expect, false)
}

fn check(case: &str, path: &Path, target: &str, expect: &[&str], all: bool) -> String {
    let report = verify(path, &Silent);
    let verified = match &report {
        Ok(r) => {
            assert!(!r.ok, "{case}: verify passed it");
            format!("{} finding(s)", r.findings.len())
        }
        Err(e) => format!("error: {e}"),
    };
    let work = tempfile::tempdir().unwrap();
    let sandbox = work.path().join("sandbox");
    fs::create_dir(&sandbox).unwrap();
    let p = path.to_str().unwrap();
    let mut said = String::new();
    for args in [
        vec!["verify", p],
        vec!["ls", p],
        vec!["push", "--dry-run", "--no-progress", p, target],
        vec!["load", "--no-progress", p, "-o", "out.tar"],
    ] {
        let run = limited(&args, &sandbox);
        let refused = all || args[0] == "verify";
        assert!(
            run.code == Some(1) || (!refused && run.code == Some(0)),
            "{case}: `airlock {}` exited {:?}\n{}\n{}",
            args.join(" "),
            run.code,
            run.stdout,
            run.stderr
        );
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains("memory allocation"),
            "{case}: {}",
            run.stderr
        );
        said.push_str(&run.stdout);
        said.push_str(&run.stderr);
        // Nothing written anywhere: not in the sandbox, not next to it.
        if run.code == Some(0) && args[0] == "load" {
            fs::remove_file(sandbox.join("out.tar")).unwrap();
        }
        assert!(
            fs::read_dir(&sandbox).unwrap().next().is_none(),
            "{case}: `airlock {}` left files in its directory",
            args.join(" ")
        );
        assert_eq!(fs::read_dir(work.path()).unwrap().count(), 1, "{case}");
    }
    for e in expect {
        assert!(said.contains(e), "{case}: no `{e}` in:\n{said}");
    }
    format!("{case}: refused ({verified})")
}

#[test]
fn hostile_bundles_are_refused() {
    // `push --dry-run` talks to a real (empty) registry.
    let registry = TestRegistry::start();
    let target = registry.addr();
    let dir = tempfile::tempdir().unwrap();
    let base = fixture_entries(dir.path());
    let toc = toc_of(&base);
    let layer = toc
        .blobs
        .iter()
        .filter(|b| b.media_type.contains("layer"))
        .max_by_key(|b| b.size)
        .unwrap()
        .clone();
    let mut lines = Vec::new();
    let mut case = |name: &str, bytes: Vec<u8>, ext: &str, expect: &[&str]| {
        let path: PathBuf = dir.path().join(format!("{name}.{ext}"));
        fs::write(&path, bytes).unwrap();
        let started = std::time::Instant::now();
        // Damage only `verify` can see: documents the other commands do not read
        // (`index.json` and `manifest.json` serve other tools), or a TOC that disagrees
        // with sound blobs.
        // A seek table that is not usable makes readers decode sequentially (safe, and
        // slower); `verify` reports it.
        let verify_only = name.starts_with("toc-")
            || name.starts_with("table-")
            || name == "deep-index"
            || name == "deep-manifest-json"
            || name == "deep-manifest-blob"; // `ls` does not read manifests
        lines.push(if verify_only {
            assert_verify_refuses(name, &path, &target, expect)
        } else {
            assert_refused(name, &path, &target, expect)
        });
        let took = started.elapsed();
        assert!(took.as_secs() < 20, "{name} took {took:?}");
        lines
            .last_mut()
            .unwrap()
            .push_str(&format!(" in {took:.1?}"));
    };
    use tar::EntryType as T;

    // Names and kinds a bundle never holds.
    let raw = |name: &str, kind: T, link: Option<&str>, data: &[u8]| {
        let mut h = header(name, kind, data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
            h.set_cksum();
        }
        build(&base, &[(h, data.to_vec())])
    };
    case(
        "dotdot",
        raw("../../evil", T::Regular, None, b"x"),
        "tar",
        &["`..`"],
    );
    case(
        "dotdot-blob",
        raw("blobs/sha256/../../../evil", T::Regular, None, b"x"),
        "tar",
        &["`..`"],
    );
    case(
        "absolute",
        raw("/tmp/evil", T::Regular, None, b"x"),
        "tar",
        &["absolute path"],
    );
    case(
        "symlink",
        raw("blobs/sha256/evil", T::Symlink, Some("/etc/passwd"), b""),
        "tar",
        &["symbolic link"],
    );
    case(
        "symlink-out",
        raw("evil", T::Symlink, Some("../../../../tmp"), b""),
        "tar",
        &["symbolic link"],
    );
    case(
        "hardlink",
        raw("evil", T::Link, Some("/etc/shadow"), b""),
        "tar",
        &["hard link"],
    );
    case(
        "chardev",
        raw("dev-null", T::Char, None, b""),
        "tar",
        &["not a regular file"],
    );
    case(
        "blockdev",
        raw("dev-sda", T::Block, None, b""),
        "tar",
        &["not a regular file"],
    );
    case(
        "fifo",
        raw("fifo", T::Fifo, None, b""),
        "tar",
        &["not a regular file"],
    );
    case(
        "zstd-dotdot",
        zstd_bundle(&raw("../evil", T::Regular, None, b"x")),
        "tar.zst",
        &["`..`"],
    );

    // The same name twice, with different contents.
    let mut fake_toc = base
        .iter()
        .find(|(n, _)| n == TOC_NAME)
        .unwrap()
        .1
        .clone()
        .unwrap();
    fake_toc[20] ^= 1;
    let h = header(TOC_NAME, T::Regular, fake_toc.len() as u64);
    case(
        "duplicate-toc",
        build(&base, &[(h, fake_toc)]),
        "tar",
        &["twice"],
    );
    let h = header(&layer.digest.blob_path(), T::Regular, 5);
    case(
        "duplicate-blob",
        build(&base, &[(h, b"evil!".to_vec())]),
        "tar",
        &["twice"],
    );

    // Sizes that lie.
    let mut lie = build(&base, &[]);
    let last_header = {
        let mut at = 0;
        for e in tar::Archive::new(&lie[..]).entries().unwrap() {
            let e = e.unwrap();
            at = e.raw_file_position() - 512;
        }
        at as usize
    };
    let mut h = tar::Header::from_byte_slice(&lie[last_header..last_header + 512]).clone();
    h.set_size(1 << 40);
    h.set_cksum();
    lie[last_header..last_header + 512].copy_from_slice(h.as_bytes());
    case("size-past-the-end", lie, "tar", &["ends early"]);
    let mut entries = base.clone();
    let name = layer.digest.blob_path();
    let data = entries
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
        .clone()
        .unwrap();
    set_entry(&mut entries, &name, data[..data.len() - 100].to_vec());
    case(
        "blob-shorter-than-toc",
        build(&entries, &[]),
        "tar",
        &["bytes but airlock.json says"],
    );

    // A zstd frame that claims 1 TiB of content.
    let tar = build(&base, &[]);
    let mut frame = Vec::new();
    frame.extend_from_slice(&[0x28, 0xB5, 0x2F, 0xFD]);
    frame.push(0xE4); // FCS 8 bytes, single segment, checksum
    frame.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let body = zstd::bulk::compress(&tar, 3).unwrap();
    frame.extend_from_slice(&body[6..]); // the blocks and checksum of a real frame
    let mut huge = frame.clone();
    huge.extend(encode_seek_table(&[(frame.len() as u32, u32::MAX)]));
    case("zstd-huge-frame", huge, "tar.zst", &["zstd"]);
    case("zstd-huge-frame-no-table", frame, "tar.zst", &["zstd"]);

    // JSON nested very deep, or too big, in the TOC, index.json, a manifest.
    let deep = "[".repeat(100_000).into_bytes();
    let mut entries = base.clone();
    set_entry(&mut entries, TOC_NAME, deep.clone());
    case("deep-toc", build(&entries, &[]), "tar", &["airlock.json"]);
    let mut entries = base.clone();
    set_entry(&mut entries, "index.json", deep.clone());
    case("deep-index", build(&entries, &[]), "tar", &["index.json"]);
    let mut entries = base.clone();
    set_entry(&mut entries, "manifest.json", deep.clone());
    case(
        "deep-manifest-json",
        build(&entries, &[]),
        "tar",
        &["manifest.json"],
    );
    let mut entries = base.clone();
    let root = &toc.images[0].digest;
    let mut t = toc.clone();
    for b in t.blobs.iter_mut().filter(|b| &b.digest == root) {
        b.size = deep.len() as u64;
    }
    // The image's root manifest replaced by deep JSON under its own digest's name.
    set_entry(&mut entries, &root.blob_path(), deep.clone());
    set_entry(
        &mut entries,
        TOC_NAME,
        serde_json::to_vec_pretty(&t).unwrap(),
    );
    case(
        "deep-manifest-blob",
        build(&entries, &[]),
        "tar",
        &["damaged"],
    );
    let big = {
        let mut tar = build(&base, &[]);
        // airlock.json's header claims 300 MiB (more than the cap), the data is not there.
        let mut h = tar::Header::from_byte_slice(&tar[1024..1536]).clone();
        h.set_size(300 << 20);
        h.set_cksum();
        tar[1024..1536].copy_from_slice(h.as_bytes());
        tar
    };
    case("enormous-toc", big, "tar", &["airlock.json"]);

    // A TOC that disagrees with the blobs (each TOC written with a valid checksum).
    let with_toc = |t: &Toc| {
        let mut entries = base.clone();
        set_entry(
            &mut entries,
            TOC_NAME,
            serde_json::to_vec_pretty(t).unwrap(),
        );
        build(&entries, &[])
    };
    let mut t = toc.clone();
    t.blobs.push(airlock::bundle::toc::TocBlob {
        digest: airlock::digest::Digest::of(b"not there"),
        size: 9,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    });
    case(
        "toc-missing-blob",
        with_toc(&t),
        "tar",
        &["not in the bundle"],
    );
    let mut t = toc.clone();
    t.blobs
        .iter_mut()
        .find(|b| b.digest == layer.digest)
        .unwrap()
        .size += 1;
    case(
        "toc-wrong-size",
        with_toc(&t),
        "tar",
        &["airlock.json says"],
    );
    let mut t = toc.clone();
    t.blobs
        .iter_mut()
        .find(|b| b.digest == layer.digest)
        .unwrap()
        .media_type = "application/vnd.oci.image.config.v1+json".into();
    case("toc-wrong-media-type", with_toc(&t), "tar", &["media type"]);
    let mut t = toc.clone();
    t.images[0].digest = airlock::digest::Digest::of(b"no such image");
    case(
        "toc-image-not-present",
        with_toc(&t),
        "tar",
        &["not in the bundle"],
    );

    // Seek tables with absurd entries.
    let tar = build(&base, &[]);
    let body = zstd::bulk::compress(&tar, 3).unwrap();
    let absurd = |table: Vec<u8>| {
        let mut f = body.clone();
        f.extend(table);
        f
    };
    case(
        "table-past-the-file",
        absurd(encode_seek_table(&[
            (u32::MAX, tar.len() as u32),
            (u32::MAX, 1),
        ])),
        "tar.zst",
        &["seek table"],
    );
    let mut billions = encode_seek_table(&[(body.len() as u32, tar.len() as u32)]);
    let n = billions.len();
    billions[n - 9..n - 5].copy_from_slice(&u32::MAX.to_le_bytes());
    case(
        "table-billions-of-frames",
        absurd(billions),
        "tar.zst",
        &["seek table"],
    );
    let lying = encode_seek_table(&[(body.len() as u32, u32::MAX)]);
    case(
        "table-wrong-content-size",
        absurd(lying),
        "tar.zst",
        &["seek table"],
    );

    for l in &lines {
        eprintln!("{l}");
    }
    eprintln!("{} hostile bundles refused", lines.len());
}
