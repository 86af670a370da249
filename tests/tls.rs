//! TLS is verified by default: a real `docker-registry` serving HTTPS with a test CA
//! (on a network-namespace host, since loopback registries are always plain HTTP) is
//! refused without `--ca-file`, with an error that says the certificate is not trusted
//! and names `--ca-file`, and accepted with it, for `save` and `push`.
//!
//! Needs root for the namespace (CI runs as root); see [`support::tls`].

mod support;

use support::cli::{Bundle, airlock};
use support::images::{ImageSpec, PushOptions, file, layer, push, random_file, sha256};
use support::tls::TlsRegistry;

#[test]
fn https_registry_needs_its_ca_and_works_with_it() {
    let reg = TlsRegistry::start();
    let addr = reg.addr();
    let image = ImageSpec::new("linux/amd64")
        .layer(&layer(&[file("etc/os-release", "ID=tls\n")]))
        .layer(&layer(&[random_file("data.bin", 7, 64 * 1024)]))
        .build();
    // skopeo reaches it over HTTPS without verification (the input comes from outside airlock).
    push(
        &image,
        &format!("{addr}/x:1"),
        &PushOptions {
            format: None,
            creds: None,
        },
    );
    let digest = sha256(&image.manifest.bytes);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar");
    let bundle_s = bundle.to_str().unwrap();
    let ca = reg.certs.ca.to_str().unwrap();
    let name = format!("{addr}/x:1");

    // Without the CA: refused, saying why and what to do.
    let run = airlock(&["save", &name, "-o", bundle_s]).expect_code(1);
    let err = run.stderr.to_lowercase();
    assert!(
        err.contains("not trusted") && err.contains("--ca-file"),
        "the error says the certificate is not trusted and names --ca-file: {run}"
    );
    assert!(!bundle.exists(), "no bundle after a refused save");

    // With it: saved, verified, digests kept.
    airlock(&["save", &name, "-o", bundle_s, "--ca-file", ca]).ok();
    airlock(&["verify", bundle_s]).ok();
    let b = Bundle::open(&bundle);
    b.assert_sound();
    assert_eq!(b.toc_image(&name)["digest"], digest.as_str());

    // push: refused without the CA, works with it; the pushed tag reads back the same.
    let target = format!("{addr}/mirror");
    let run = airlock(&["push", bundle_s, &target]).expect_code(1);
    assert!(
        run.stderr.to_lowercase().contains("not trusted") && run.stderr.contains("--ca-file"),
        "{run}"
    );
    airlock(&["push", bundle_s, &target, "--ca-file", ca]).ok();
    let again = dir.path().join("again.tar");
    let mirrored = format!("{addr}/mirror/x:1");
    airlock(&[
        "save",
        &mirrored,
        "-o",
        again.to_str().unwrap(),
        "--ca-file",
        ca,
    ])
    .ok();
    assert_eq!(
        Bundle::open(&again).toc_image(&mirrored)["digest"],
        digest.as_str()
    );
    drop(reg);
}
