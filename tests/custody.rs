//! Chain of custody (issue 12): signed bundles made, carried and checked through the
//! binary, on the shipped fixtures (`oci:fixtures/oci`). Keys come from
//! `airlock key generate` and from `openssl genpkey` (Ed25519 and P-256); tampering is
//! done byte by byte (TOC, signature entry, parts index, a part, a blob), parts are
//! swapped between two signed bundles, a delta is checked against the wrong base, and
//! `push`/`load --trust` must refuse before writing anything. The openssl recipe of
//! `docs/bundle-format.md` is run as written (`bash`), with `openssl`, `jq` and `zstd`
//! (installed by `scripts/test.sh`).

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::cli::{Bundle, airlock, bundle_tar_bytes, cmd, copy_with_flipped_byte, repo_root};
use support::registry::TestRegistry;
use support::registry_api::catalog;

fn fixture_oci() -> String {
    format!("oci:{}", repo_root().join("fixtures/oci").display())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `airlock save oci:fixtures/oci -o OUT EXTRA...`, which must succeed.
fn save(out: &Path, extra: &[&str]) {
    let mut args = vec!["save".to_string(), fixture_oci(), "-o".into(), s(out)];
    args.extend(extra.iter().map(|a| a.to_string()));
    airlock(&args).ok();
}

/// `airlock key generate --out DIR/NAME`: the private and public key files, and the key id.
fn generate(dir: &Path, name: &str, algorithm: &str) -> (PathBuf, PathBuf, String) {
    let out = dir.join(name);
    let run = airlock(&[
        "key",
        "generate",
        "--out",
        &s(&out),
        "--algorithm",
        algorithm,
    ])
    .ok();
    let id = run.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{run}");
    assert!(
        run.stderr.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
        "{run}"
    );
    assert!(run.stderr.contains("AIRLOCK_KEY_PASSPHRASE"), "{run}");
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
        id,
    )
}

fn sh(dir: &Path, script: &str) -> std::process::Output {
    Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .expect("bash runs")
}

fn sh_ok(dir: &Path, script: &str) -> String {
    let out = sh(dir, script);
    assert!(
        out.status.success(),
        "`{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl genpkey` of `alg` (`ed25519` or `p256`) into DIR/NAME.key and NAME.pub; the
/// key id as openssl computes it (sha256 of the public key's DER).
fn openssl_key(dir: &Path, name: &str, alg: &str) -> (PathBuf, PathBuf, String) {
    let genargs = match alg {
        "ed25519" => "-algorithm ed25519",
        _ => "-algorithm EC -pkeyopt ec_paramgen_curve:P-256",
    };
    let id = sh_ok(
        dir,
        &format!(
            "openssl genpkey {genargs} -out {name}.key && openssl pkey -in {name}.key -pubout -out {name}.pub \
             && openssl pkey -pubin -in {name}.pub -outform DER | sha256sum | cut -d' ' -f1"
        ),
    );
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
        format!("sha256:{}", id.trim()),
    )
}

/// `verify BUNDLE --json EXTRA...`: exit code and report.
fn verify_json(bundle: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["verify".to_string(), s(bundle), "--json".into()];
    args.extend(extra.iter().map(|a| a.to_string()));
    let run = airlock(&args);
    let code = run.code;
    (code, run.json())
}

fn kinds(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn keys_from_airlock_and_openssl_sign_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = [
        generate(d, "airlock-ed", "ed25519"),
        generate(d, "airlock-p256", "ecdsa-p256"),
        openssl_key(d, "openssl-ed", "ed25519"),
        openssl_key(d, "openssl-p256", "p256"),
    ];
    // The private key file is born 0600; the public one is SPKI PEM with the same key
    // id openssl computes.
    assert_eq!(
        fs::metadata(&keys[0].0).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let openssl_id = sh_ok(
        d,
        "openssl pkey -pubin -in airlock-ed.pub -outform DER | sha256sum | cut -d' ' -f1",
    );
    assert_eq!(keys[0].2, format!("sha256:{}", openssl_id.trim()));
    let (_, wrong_pub, _) = openssl_key(d, "wrong", "ed25519");
    let unsigned = d.join("unsigned.tar.zst");
    save(&unsigned, &[]);
    for (i, (key, public, id)) in keys.iter().enumerate() {
        let out = d.join(format!("b{i}.tar.zst"));
        save(&out, &["--sign-key", &s(key)]);
        let (code, report) = verify_json(&out, &["--trust", &s(public)]);
        assert_eq!(code, Some(0), "{report:#}");
        let signer = &report["signature"]["signers"][0];
        assert_eq!(signer["key_id"], id.as_str(), "{report:#}");
        assert_eq!(
            signer["algorithm"],
            if i % 2 == 0 {
                "ed25519"
            } else {
                "ecdsa-p256-sha256"
            }
        );
        assert_eq!(signer["trusted"], true);
        assert_eq!(report["signature"]["trusted"], true);
        // Without --trust a signed bundle verifies and names its signer.
        let (code, report) = verify_json(&out, &[]);
        assert_eq!(code, Some(0));
        assert_eq!(report["signature"]["signers"][0]["trusted"], false);
        // With another key: exit 1, untrusted signer.
        let (code, report) = verify_json(&out, &["--trust", &s(&wrong_pub)]);
        assert_eq!(code, Some(1));
        assert_eq!(kinds(&report), ["untrusted_signer"], "{report:#}");
        // ls shows the signer.
        let ls = airlock(&["ls", &s(&out)]).ok();
        let short = &id["sha256:".len().."sha256:".len() + 12];
        assert!(ls.stdout.contains(&format!("signed by {short} (")), "{ls}");
        let ls = airlock(&["ls", &s(&out), "--json"]).ok().json();
        assert_eq!(ls["signature"]["signers"][0]["key_id"], id.as_str());
    }
    // Unsigned: fine without --trust, exit 1 with it.
    let (code, report) = verify_json(&unsigned, &[]);
    assert_eq!(code, Some(0));
    assert!(report.get("signature").is_none(), "{report:#}");
    let (code, report) = verify_json(&unsigned, &["--trust", &s(&keys[0].1)]);
    assert_eq!(code, Some(1));
    assert_eq!(kinds(&report), ["unsigned"]);
    assert_eq!(report["signature"]["signed"], false);
    assert!(
        airlock(&["ls", &s(&unsigned)])
            .ok()
            .stdout
            .contains("\nunsigned\n")
    );
    // A private key given to --trust, or a missing one: usage errors naming the file.
    let run = airlock(&["verify", &s(&unsigned), "--trust", &s(&keys[0].0)]).expect_code(2);
    assert!(run.stderr.contains(&s(&keys[0].0)), "{run}");
}

/// A signed plain-tar bundle, its key pair, and the key's public file.
fn signed_tar(d: &Path) -> (PathBuf, PathBuf) {
    let (key, public, _) = generate(d, "k", "ed25519");
    let out = d.join("b.tar");
    save(&out, &["--sign-key", &s(&key)]);
    (out, public)
}

#[test]
fn a_flipped_byte_in_toc_signature_or_blob_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bundle, public) = signed_tar(d);
    let trust = ["--trust", public.to_str().unwrap()];
    let b = Bundle::open(&bundle);
    assert_eq!(
        b.position("airlock.sig.json"),
        b.position("airlock.json") + 1
    );
    let layer = b
        .blob_digests()
        .into_iter()
        .max_by_key(|dg| b.blob(dg).len())
        .unwrap();
    let cases: Vec<(&str, String, u64, &str)> = vec![
        ("toc", "airlock.json".into(), 40, "statement_mismatch"),
        ("sig", "airlock.sig.json".into(), 60, "bad_signature"),
        (
            "sig-sig",
            "airlock.sig.json".into(),
            b.entry("airlock.sig.json").len() as u64 - 20,
            "bad_signature",
        ),
        (
            "blob",
            support::cli::blob_path(&layer),
            100,
            "digest_mismatch",
        ),
    ];
    for (label, entry, offset, kind) in cases {
        let bad = d.join(format!("{label}.tar"));
        copy_with_flipped_byte(&bundle, &bad, &entry, offset);
        let (code, report) = verify_json(&bad, &trust);
        assert_eq!(code, Some(1), "{label}: {report:#}");
        assert!(
            kinds(&report).iter().any(|k| k == kind),
            "{label}: {report:#}"
        );
        if kind != "digest_mismatch" {
            // The signature problem is listed first.
            assert_eq!(kinds(&report)[0], kind, "{label}: {report:#}");
        }
    }
    // The signature entry anywhere but right after airlock.json is refused.
    let moved = d.join("moved.tar");
    let mut builder = tar::Builder::new(fs::File::create(&moved).unwrap());
    let mut sig = None;
    for (name, data) in &b.entries {
        if name == "airlock.sig.json" {
            sig = Some(data.clone());
            continue;
        }
        append(&mut builder, name, data);
        if name == "index.json" {
            append(&mut builder, "airlock.sig.json", sig.as_ref().unwrap());
        }
    }
    builder.finish().unwrap();
    drop(builder);
    let (code, report) = verify_json(&moved, &trust);
    assert_eq!(code, Some(1));
    assert!(
        kinds(&report).contains(&"unexpected_entry".to_string()),
        "{report:#}"
    );
}

fn append(builder: &mut tar::Builder<fs::File>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut h, name, data).unwrap();
}

#[test]
fn split_bundles_signed_index_parts_swapped_and_checked_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public, id) = generate(d, "k", "ed25519");
    let trust = ["--trust", public.to_str().unwrap()];
    let a = d.join("a/b.tar.zst");
    let other = d.join("other/b.tar.zst");
    fs::create_dir_all(a.parent().unwrap()).unwrap();
    fs::create_dir_all(other.parent().unwrap()).unwrap();
    save(&a, &["--split", "16K", "--sign-key", &s(&key)]);
    save(
        &other,
        &[
            "--split",
            "16K",
            "--sign-key",
            &s(&key),
            "--zstd-level",
            "9",
        ],
    );
    let index = d.join("a/b.tar.zst.parts.json");
    let idx: Value = serde_json::from_slice(&fs::read(&index).unwrap()).unwrap();
    assert!(
        idx["statement"]
            .as_str()
            .unwrap()
            .starts_with("airlock parts statement v1\n")
    );
    assert_eq!(idx["signatures"][0]["key_id"], id.as_str());
    let count = idx["parts"].as_array().unwrap().len();
    assert!(count >= 4, "{idx:#}");
    let (code, report) = verify_json(&a, &trust);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["parts_signature"]["trusted"], true);

    // One part alone (the others deleted), then the same part damaged.
    let alone = d.join("alone");
    fs::create_dir_all(&alone).unwrap();
    fs::copy(&index, alone.join("b.tar.zst.parts.json")).unwrap();
    fs::copy(d.join("a/b.tar.zst.002"), alone.join("b.tar.zst.002")).unwrap();
    let part = alone.join("b.tar.zst.002");
    let run = airlock(&["verify", &s(&part), "--part", trust[0], trust[1]]).ok();
    assert!(
        run.stdout.contains(&format!("part 3 of {count}"))
            && run.stdout.contains(&id)
            && run.stdout.contains("bytes verified"),
        "{run}"
    );
    let mut bytes = fs::read(&part).unwrap();
    bytes[1000] ^= 1;
    fs::write(&part, &bytes).unwrap();
    let run =
        airlock(&["verify", &s(&part), "--part", trust[0], trust[1], "--json"]).expect_code(1);
    assert_eq!(kinds(&run.json()), ["foreign_part"], "{run}");
    // An untrusted key: the part's bytes do not matter.
    let (_, wrong, _) = generate(d, "wrong", "ed25519");
    fs::copy(d.join("a/b.tar.zst.002"), &part).unwrap();
    airlock(&["verify", &s(&part), "--part", "--trust", &s(&wrong)]).expect_code(1);

    // A flipped byte in one part of the whole set.
    let set = d.join("flip");
    copy_dir(&d.join("a"), &set);
    let p1 = set.join("b.tar.zst.001");
    let mut bytes = fs::read(&p1).unwrap();
    bytes[5000] ^= 0x10;
    fs::write(&p1, &bytes).unwrap();
    let (code, report) = verify_json(&set.join("b.tar.zst"), &trust);
    assert_eq!(code, Some(1));
    assert!(
        kinds(&report).contains(&"foreign_part".to_string()),
        "{report:#}"
    );

    // A part swapped for the same-numbered part of another signed bundle.
    let swapped = d.join("swapped");
    copy_dir(&d.join("a"), &swapped);
    fs::copy(d.join("other/b.tar.zst.001"), swapped.join("b.tar.zst.001")).unwrap();
    let (code, report) = verify_json(&swapped.join("b.tar.zst"), &trust);
    assert_eq!(code, Some(1));
    assert!(
        kinds(&report).contains(&"foreign_part".to_string()),
        "{report:#}"
    );
    let run = airlock(&[
        "verify",
        &s(&swapped.join("b.tar.zst.001")),
        "--part",
        trust[0],
        trust[1],
    ]);
    assert_eq!(run.code, Some(1), "{run}");

    // A byte changed in the parts index (a part's sha256, still valid JSON).
    let edited = d.join("edited");
    copy_dir(&d.join("a"), &edited);
    let text = fs::read_to_string(edited.join("b.tar.zst.parts.json")).unwrap();
    let sha = idx["parts"][1]["sha256"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        &sha[..63],
        if sha.ends_with('0') { "1" } else { "0" }
    );
    fs::write(
        edited.join("b.tar.zst.parts.json"),
        text.replacen(sha, &flipped, 1),
    )
    .unwrap();
    let (code, report) = verify_json(&edited.join("b.tar.zst"), &trust);
    assert_eq!(code, Some(1));
    assert_eq!(kinds(&report)[0], "statement_mismatch", "{report:#}");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_signed_delta_names_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public, _) = generate(d, "k", "ed25519");
    let base = d.join("base.tar.zst");
    let another = d.join("another.tar.zst");
    let delta = d.join("delta.tar.zst");
    save(&base, &["--sign-key", &s(&key)]);
    save(&another, &["--sign-key", &s(&key)]);
    save(&delta, &["--base", &s(&base), "--sign-key", &s(&key)]);
    let b = Bundle::open(&delta);
    let sig: Value = serde_json::from_slice(b.entry("airlock.sig.json")).unwrap();
    let base_toc = support::images::sha256(Bundle::open(&base).entry("airlock.json"));
    assert!(
        sig["statement"].as_str().unwrap().ends_with(&format!(
            "base_toc_sha256: {}\n",
            &base_toc["sha256:".len()..]
        )),
        "{sig:#}"
    );
    let trust = ["--trust", public.to_str().unwrap()];
    let (code, report) = verify_json(&delta, &[trust[0], trust[1], "--base", &s(&base)]);
    assert_eq!(code, Some(0), "{report:#}");
    let (code, report) = verify_json(&delta, &[trust[0], trust[1], "--base", &s(&another)]);
    assert_eq!(code, Some(1));
    assert_eq!(kinds(&report), ["statement_mismatch"], "{report:#}");
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("made against another base"),
        "{report:#}"
    );
}

#[test]
fn two_signers_and_encrypted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (k1, p1, id1) = generate(d, "one", "ed25519");
    let (k2, p2, id2) = generate(d, "two", "ecdsa-p256");
    let out = d.join("two.tar.zst");
    save(&out, &["--sign-key", &s(&k1), "--sign-key", &s(&k2)]);
    for public in [&p1, &p2] {
        let (code, report) = verify_json(&out, &["--trust", &s(public)]);
        assert_eq!(code, Some(0), "{report:#}");
        let ids: Vec<&str> = report["signature"]["signers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["key_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id1.as_str(), id2.as_str()]);
    }
    // The same key twice is one signer, not two.
    let run = airlock(&[
        "save",
        &fixture_oci(),
        "-o",
        &s(&d.join("x.tar")),
        "--sign-key",
        &s(&k1),
        "--sign-key",
        &s(&k1),
    ])
    .expect_code(2);
    assert!(run.stderr.contains("same key"), "{run}");

    // An encrypted key, with the right passphrase and with a wrong one.
    sh_ok(
        d,
        "openssl pkcs8 -topk8 -v2 aes-256-cbc -in one.key -out one.enc.key -passout pass:s3cret",
    );
    let enc = d.join("one.enc.key");
    let signed = d.join("enc.tar");
    cmd(&[
        "save",
        &fixture_oci(),
        "-o",
        &s(&signed),
        "--sign-key",
        &s(&enc),
    ])
    .env("AIRLOCK_KEY_PASSPHRASE", "s3cret")
    .run()
    .ok();
    let (code, _) = verify_json(&signed, &["--trust", &s(&p1)]);
    assert_eq!(code, Some(0));
    let bad = d.join("bad.tar");
    let run = cmd(&[
        "save",
        &fixture_oci(),
        "-o",
        &s(&bad),
        "--sign-key",
        &s(&enc),
    ])
    .env("AIRLOCK_KEY_PASSPHRASE", "wrong")
    .run()
    .expect_code(2);
    assert!(
        run.stderr.contains(&s(&enc)) && run.stderr.contains("wrong passphrase"),
        "{run}"
    );
    assert!(!bad.exists());
    // No passphrase and no terminal: exit 2, saying how to give one.
    let run = airlock(&[
        "save",
        &fixture_oci(),
        "-o",
        &s(&bad),
        "--sign-key",
        &s(&enc),
    ])
    .expect_code(2);
    assert!(run.stderr.contains("AIRLOCK_KEY_PASSPHRASE"), "{run}");
}

#[test]
fn push_and_load_refuse_a_bundle_not_signed_by_a_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public, _) = generate(d, "k", "ed25519");
    let (other_key, _, _) = generate(d, "other", "ed25519");
    let unsigned = d.join("unsigned.tar.zst");
    let by_other = d.join("other.tar.zst");
    let signed = d.join("signed.tar.zst");
    save(&unsigned, &[]);
    save(&by_other, &["--sign-key", &s(&other_key)]);
    save(&signed, &["--sign-key", &s(&key)]);
    let registry = TestRegistry::start();
    let target = format!("{}/mirror", registry.addr());
    for (bundle, why) in [
        (&unsigned, "not signed"),
        (&by_other, "none of the trusted keys"),
    ] {
        let run = airlock(&["push", &s(bundle), &target, "--trust", &s(&public)]).expect_code(1);
        assert!(
            run.stderr.contains(why) && run.stderr.contains("nothing was written"),
            "{run}"
        );
        assert!(catalog(&registry.addr(), None).is_empty());
        let out = d.join("load.tar");
        let run =
            airlock(&["load", &s(bundle), "-o", &s(&out), "--trust", &s(&public)]).expect_code(1);
        assert!(run.stderr.contains(why), "{run}");
        assert!(!out.exists());
    }
    airlock(&["push", &s(&signed), &target, "--trust", &s(&public)]).ok();
    assert!(!catalog(&registry.addr(), None).is_empty());
    let out = d.join("load.tar");
    airlock(&["load", &s(&signed), "-o", &s(&out), "--trust", &s(&public)]).ok();
    assert!(out.exists());
}

/// The shell block of `docs/bundle-format.md` after the marker line
/// `<!-- tests/custody.rs runs this recipe -->`.
fn docs_recipe() -> String {
    let doc = fs::read_to_string(repo_root().join("docs/bundle-format.md")).unwrap();
    let at = doc
        .find("<!-- tests/custody.rs runs this recipe -->")
        .expect("the recipe marker in docs/bundle-format.md");
    let rest = &doc[at..];
    let start = rest.find("```sh\n").expect("a ```sh block") + 6;
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].to_string()
}

#[test]
fn the_openssl_recipe_of_the_docs_verifies_an_airlock_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, _, _) = generate(d, "release", "ed25519");
    save(&d.join("b.tar.zst"), &["--sign-key", &s(&key)]);
    let recipe = docs_recipe();
    assert!(recipe.contains("openssl pkeyutl -verify"), "{recipe}");
    sh_ok(d, &recipe);

    // A tampered statement: the same bundle with one letter of the tool name changed.
    let tampered = d.join("t");
    fs::create_dir_all(&tampered).unwrap();
    fs::copy(d.join("release.pub"), tampered.join("release.pub")).unwrap();
    let tar = d.join("b.tar");
    fs::write(&tar, bundle_tar_bytes(&d.join("b.tar.zst"))).unwrap();
    let sig = Bundle::open(&tar);
    let at = String::from_utf8_lossy(sig.entry("airlock.sig.json"))
        .find("tool: airlock")
        .unwrap() as u64
        + 7;
    copy_with_flipped_byte(&tar, &tampered.join("b.tar"), "airlock.sig.json", at);
    sh_ok(&tampered, "zstd -q b.tar -o b.tar.zst");
    let out = sh(&tampered, &recipe);
    assert!(
        !out.status.success(),
        "the recipe passed a tampered statement"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Signature Verification Failure")
            || String::from_utf8_lossy(&out.stderr).contains("Verification Failure"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // P-256: the documented `openssl dgst` line in place of `pkeyutl`.
    let (p256, _, _) = openssl_key(d, "p256", "p256");
    let p = d.join("p");
    fs::create_dir_all(&p).unwrap();
    fs::copy(d.join("p256.pub"), p.join("release.pub")).unwrap();
    save(&p.join("b.tar.zst"), &["--sign-key", &s(&p256)]);
    let dgst = "openssl dgst -sha256 -verify release.pub -signature sig.bin statement";
    assert!(
        fs::read_to_string(repo_root().join("docs/bundle-format.md"))
            .unwrap()
            .contains(dgst)
    );
    let recipe_p256: String = recipe
        .lines()
        .map(|l| {
            if l.starts_with("openssl pkeyutl -verify") {
                dgst
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    sh_ok(&p, &recipe_p256);
}

#[test]
fn the_private_key_never_appears_in_the_bundle_or_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public, _) = generate(d, "k", "ed25519");
    // PKCS#8 v1 Ed25519: the 32-byte seed is the DER's last 32 bytes.
    let der = sh_ok(d, "openssl pkey -in k.key -outform DER | base64 -w0");
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(der.trim())
        .unwrap();
    let seed = &der[der.len() - 32..];
    let pem = fs::read_to_string(&key).unwrap();
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let out = d.join("b.tar.zst");
    let mut outputs = Vec::new();
    let args = [
        "save".to_string(),
        fixture_oci(),
        "-o".into(),
        s(&out),
        "--split".into(),
        "16K".into(),
        "--sign-key".into(),
        s(&key),
        "-v".into(),
    ];
    outputs.push(airlock(&args).ok().output());
    outputs.push(
        airlock(&["verify", &s(&out), "--trust", &s(&public), "--json"])
            .ok()
            .output(),
    );
    outputs.push(airlock(&["ls", &s(&out), "--json"]).ok().output());
    outputs.push(airlock(&["ls", &s(&out)]).ok().output());
    let joined = d.join("joined.tar.zst");
    sh_ok(d, "cat b.tar.zst.0* > joined.tar.zst");
    let tar = bundle_tar_bytes(&joined);
    let index = fs::read(d.join("b.tar.zst.parts.json")).unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for hay in [&tar, &index] {
        assert!(
            !hay.windows(32).any(|w| w == seed),
            "the seed is in the bundle"
        );
        let text = String::from_utf8_lossy(hay);
        assert!(!text.contains(&b64(seed)) && !text.contains(&hex(seed)));
        for line in &body {
            assert!(!text.contains(line));
        }
    }
    for o in &outputs {
        assert!(!o.contains(&b64(seed)) && !o.contains(&hex(seed)), "{o}");
        for line in &body {
            assert!(!o.contains(line), "{o}");
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
