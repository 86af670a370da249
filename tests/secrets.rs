//! Secrets stay secret: with a Basic-auth registry and a Bearer token flow, `save` and
//! `push` run with `-v`, succeeding and failing, and the password, its base64 (alone
//! and as `user:password`) and every token handed out never appear in stdout, stderr
//! (where a panic message would go), the bundle file or its decompressed tar.
//!
//! A logging proxy ([`support::faulty`]) shows who was sent what: Basic credentials
//! only go to the realm the registry named, tokens only to the registry, and nothing
//! to the storage host a blob download is redirected to.

mod support;

use std::path::Path;
use std::sync::LazyLock;

use base64::Engine as _;
use support::cli::{Run, bundle_tar_bytes, cmd, docker_config_with_auth};
use support::corpus::{Corpus, base_layer, data_layer};
use support::faulty::{Fault, FaultyProxy, Rule};
use support::images::{PushOptions, push};
use support::registry::TestRegistry;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Everything that must never be seen: the password, its base64 forms, `extra`.
fn secrets(user: &str, pass: &str, extra: &[String]) -> Vec<String> {
    let mut v = vec![pass.to_string(), b64(pass), b64(&format!("{user}:{pass}"))];
    v.extend(extra.iter().cloned());
    v
}

fn assert_clean(what: &str, haystack: &[u8], secrets: &[String]) {
    for s in secrets {
        let hit = haystack.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(!hit, "a secret ({} bytes) appears in {what}", s.len());
    }
}

fn assert_run_clean(run: &Run, secrets: &[String]) {
    assert!(!run.stderr.contains("panicked"), "airlock panicked: {run}");
    assert_clean(
        &format!("the output of `airlock {}`", run.args.join(" ")),
        run.output().as_bytes(),
        secrets,
    );
}

fn assert_bundle_clean(bundle: &Path, secrets: &[String]) {
    assert_clean("the bundle file", &std::fs::read(bundle).unwrap(), secrets);
    assert_clean("the bundle's tar", &bundle_tar_bytes(bundle), secrets);
}

/// This file's images: a small base layer, then 48 KiB of incompressible bytes.
static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(base_layer("secrets", &[]), |seed| {
        data_layer(seed, 48 * 1024)
    })
    .unlabelled()
});

/// `airlock -v ARGS` with `DOCKER_CONFIG` at `config`.
fn run_with(config: &Path, args: &[&str]) -> Run {
    let mut c = cmd(&["-v"]);
    for a in args {
        c = c.arg(a);
    }
    c.env("DOCKER_CONFIG", config).run()
}

#[test]
fn basic_auth_passwords_never_leak() {
    let (user, pass) = ("alice", "pw-Sekr1t-basic-9f3a");
    let reg = TestRegistry::start_with_basic_auth(user, pass);
    let img = IMAGES.image("linux/amd64", 3);
    push(
        &img,
        &format!("{}/app:1", reg.addr()),
        &PushOptions {
            format: None,
            creds: Some((user, pass)),
        },
    );
    let flip = Rule::new(
        "*",
        img.layers[1].digest().trim_start_matches("sha256:"),
        Fault::FlipByte,
    );
    let proxy = FaultyProxy::start(&reg.url(), vec![]);
    let broken = FaultyProxy::start(&reg.url(), vec![flip]);
    let wrong_pass = "pw-Wr0ng-basic-77c1";
    let secrets = secrets(user, pass, &secrets(user, wrong_pass, &[]));
    let good = docker_config_with_auth(&proxy.addr(), user, pass);
    let good_broken = docker_config_with_auth(&broken.addr(), user, pass);
    let bad = docker_config_with_auth(&proxy.addr(), user, wrong_pass);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar.zst");
    let b = bundle.to_str().unwrap();

    // save: success, wrong bytes (failure), wrong password (failure).
    let name = format!("{}/app:1", proxy.addr());
    let run = run_with(good.path(), &["save", &name, "-o", b]).ok();
    assert_run_clean(&run, &secrets);
    assert_bundle_clean(&bundle, &secrets);
    let other = dir.path().join("x.tar");
    let run = run_with(
        good_broken.path(),
        &[
            "save",
            &format!("{}/app:1", broken.addr()),
            "-o",
            other.to_str().unwrap(),
        ],
    )
    .expect_code(1);
    assert_run_clean(&run, &secrets);
    let run = run_with(bad.path(), &["save", &name, "-o", other.to_str().unwrap()]).expect_code(1);
    assert!(run.stderr.contains("rejected"), "{run}");
    assert_run_clean(&run, &secrets);

    // push: success, wrong bytes in the upload (failure), wrong password (failure).
    let run = run_with(
        good.path(),
        &["push", b, &format!("{}/mirror", proxy.addr())],
    )
    .ok();
    assert_run_clean(&run, &secrets);
    let run = run_with(
        good_broken.path(),
        &["push", b, &format!("{}/broken", broken.addr())],
    )
    .expect_code(1);
    assert_run_clean(&run, &secrets);
    let run = run_with(
        bad.path(),
        &["push", b, &format!("{}/denied", proxy.addr())],
    )
    .expect_code(1);
    assert_run_clean(&run, &secrets);

    // Basic credentials only ever went to the registry they belong to.
    for s in proxy.seen().iter().chain(broken.seen().iter()) {
        if let Some(a) = &s.authorization {
            assert!(a.starts_with("Basic "), "{} {}: {a:.12}…", s.method, s.path);
        }
    }
}

#[test]
fn bearer_tokens_go_only_to_the_registry_and_credentials_only_to_the_realm() {
    let (user, pass) = ("bob", "pw-Sekr1t-bearer-41d0");
    let reg = TestRegistry::start();
    let img = IMAGES.image("linux/amd64", 5);
    push(
        &img,
        &format!("{}/app:1", reg.addr()),
        &PushOptions {
            format: None,
            creds: None,
        },
    );
    // Blob downloads are redirected to a storage host (`localhost:PORT`: another origin).
    let storage = FaultyProxy::start(&reg.url(), vec![]);
    let storage_port = storage.addr().rsplit(':').next().unwrap().to_string();
    let redirect = Rule::new(
        "GET",
        "/blobs/sha256:",
        Fault::Redirect(format!("http://localhost:{storage_port}")),
    );
    let front = FaultyProxy::bearer(&reg.url(), vec![redirect], user, pass);
    let config = docker_config_with_auth(&front.addr(), user, pass);
    let wrong_pass = "pw-Wr0ng-bearer-0be2";
    let bad = docker_config_with_auth(&front.addr(), user, wrong_pass);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar.zst");
    let b = bundle.to_str().unwrap();
    let name = format!("{}/app:1", front.addr());

    let save = run_with(config.path(), &["save", &name, "-o", b]).ok();
    let pushed = run_with(
        config.path(),
        &["push", b, &format!("{}/mirror", front.addr())],
    )
    .ok();
    let refused = run_with(
        bad.path(),
        &[
            "save",
            &name,
            "-o",
            dir.path().join("x.tar").to_str().unwrap(),
        ],
    )
    .expect_code(1);
    assert!(refused.stderr.contains("rejected"), "{refused}");

    let tokens = front.tokens();
    assert!(
        tokens.len() >= 2,
        "pull and push tokens were handed out: {tokens:?}"
    );
    let secrets = secrets(user, pass, &secrets(user, wrong_pass, &tokens));
    for run in [&save, &pushed, &refused] {
        assert_run_clean(run, &secrets);
    }
    assert_bundle_clean(&bundle, &secrets);

    // Who was sent what.
    let realm = front.realm().unwrap();
    let basic = format!("Basic {}", b64(&format!("{user}:{pass}")));
    let mut bearer_sent = 0;
    for s in front.seen() {
        match (s.server, s.authorization.as_deref()) {
            (_, None) => {}
            ("realm", Some(a)) => assert!(
                a == basic || a == format!("Basic {}", b64(&format!("{user}:{wrong_pass}"))),
                "the realm {realm} was sent something other than the Basic credentials"
            ),
            ("registry", Some(a)) => {
                let t = a.strip_prefix("Bearer ").unwrap_or_else(|| {
                    panic!(
                        "the registry was sent a non-Bearer Authorization: {} {}",
                        s.method, s.path
                    )
                });
                assert!(tokens.iter().any(|x| x == t), "an unknown token was sent");
                bearer_sent += 1;
            }
            (server, Some(_)) => panic!("unexpected server {server}"),
        }
    }
    assert!(bearer_sent > 0, "tokens were used");
    let redirected = storage.seen();
    assert!(!redirected.is_empty(), "blob downloads were redirected");
    for s in redirected {
        assert_eq!(
            s.authorization, None,
            "Authorization followed a redirect to another host: {} {}",
            s.method, s.path
        );
    }
}
