//! The registry client against real `docker-registry` instances: pulls byte-exact,
//! not-found answers, its own uploads and mounts, Basic auth from `config.json` and from
//! a credential helper, one client shared by many threads, and errors that come before
//! any request (a bad CA file, a refused connection). What no real component here
//! produces (token servers, dropped connections, 429/503, redirects) is tested through
//! an in-test HTTP server in `registry_client_server.rs`.

mod support;

use std::io::Read;
use std::sync::Arc;

use airlock::digest::Digest;
use airlock::oci::RawManifest;
use airlock::registry::{Client, ClientOptions, RegistryError};
use base64::Engine as _;
use support::cli::docker_config_with_auth;
use support::client::{Setup, client, layer_bytes, manifest_for, options, read_all, setup};
use support::registry::TestRegistry;

#[test]
fn pulls_manifests_and_blobs_byte_exact() {
    let Setup {
        reg,
        image: p,
        client: c,
    } = setup("team/app", 300_000, None);

    let m = c.get_manifest(&reg.addr(), "team/app", "v1").unwrap();
    assert_eq!(m.bytes, p.manifest, "raw bytes kept");
    assert_eq!(
        m.digest.as_str(),
        p.digest,
        "digest = Docker-Content-Digest"
    );
    assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");

    let by_digest = c.get_manifest(&reg.addr(), "team/app", &p.digest).unwrap();
    assert_eq!(by_digest.bytes, p.manifest);

    let blob = read_all(
        c.get_blob(
            &reg.addr(),
            "team/app",
            &p.layer_digest,
            p.layer.len() as u64,
        )
        .unwrap(),
    );
    assert_eq!(blob, p.layer);
    // Never more than the declared size.
    let short = read_all(
        c.get_blob(&reg.addr(), "team/app", &p.layer_digest, 1000)
            .unwrap(),
    );
    assert_eq!(short, &p.layer[..1000]);
}

#[test]
fn missing_things_are_not_found() {
    let Setup {
        reg,
        image: p,
        client: c,
    } = setup("team/app", 10, None);
    let e = c.get_manifest(&reg.addr(), "team/app", "nope").unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&reg.addr()) && msg.contains("team/app:nope"),
        "{msg}"
    );

    let e = c
        .get_manifest(&reg.addr(), "team/absent", "v1")
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");

    let missing = Digest::of(b"not there");
    let e = c
        .get_blob(&reg.addr(), "team/app", &missing, 9)
        .err()
        .unwrap();
    assert!(e.is_not_found(), "{e:?}");
    assert!(!c.blob_exists(&reg.addr(), "team/app", &missing).unwrap());
    assert!(
        c.blob_exists(&reg.addr(), "team/app", &p.layer_digest)
            .unwrap()
    );
}

#[test]
fn basic_auth_from_config_json() {
    let Setup {
        reg,
        image: p,
        client: c,
    } = setup("priv/app", 1000, Some(("alice", "s3cret-pw")));
    let m = c.get_manifest(&reg.addr(), "priv/app", "v1").unwrap();
    assert_eq!(m.bytes, p.manifest);
    let blob = read_all(
        c.get_blob(&reg.addr(), "priv/app", &p.layer_digest, 1000)
            .unwrap(),
    );
    assert_eq!(blob, p.layer);

    // Anonymous: told to log in.
    let e = client()
        .get_manifest(&reg.addr(), "priv/app", "v1")
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("docker login {}", reg.addr())),
        "{e}"
    );

    // Wrong password: rejected, named, never echoed.
    let bad = docker_config_with_auth(&reg.addr(), "alice", "WRONG-pass-123");
    let c = Client::new(options(bad.path())).unwrap();
    let e = c.get_manifest(&reg.addr(), "priv/app", "v1").unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    let full = format!("{e} {e:?} {:?}", std::error::Error::source(&e));
    assert!(e.to_string().contains(&reg.addr()), "{e}");
    assert!(e.to_string().contains("rejected"), "{e}");
    assert!(!full.contains("WRONG-pass-123"), "{full}");
    let b64 = base64::engine::general_purpose::STANDARD.encode("alice:WRONG-pass-123");
    assert!(!full.contains(&b64), "{full}");
}

#[test]
fn push_round_trip_with_own_uploads() {
    let reg = TestRegistry::start();
    let config = tempfile::tempdir().unwrap();
    let c = Client::new(ClientOptions {
        chunk_size: 100_000,
        ..options(config.path())
    })
    .unwrap();
    let r = reg.addr();
    let config = br#"{"architecture":"arm64","os":"linux"}"#.to_vec();
    let small = layer_bytes(5_000, 1);
    let big = layer_bytes(250_000, 2); // three PATCH chunks
    for blob in [&config, &small, &big] {
        let d = Digest::of(blob);
        assert!(!c.blob_exists(&r, "src/app", &d).unwrap());
        c.upload_blob(&r, "src/app", &d, blob.len() as u64, &mut &blob[..])
            .unwrap();
        assert!(c.blob_exists(&r, "src/app", &d).unwrap());
        let back = read_all(c.get_blob(&r, "src/app", &d, blob.len() as u64).unwrap());
        assert_eq!(&back, blob);
    }
    let cd = Digest::of(&config);
    let bd = Digest::of(&big);
    let bytes = manifest_for(&cd, config.len(), &bd, big.len());
    let manifest = RawManifest::new(bytes.clone(), None);
    let d = c.put_manifest(&r, "src/app", "1.0", &manifest).unwrap();
    assert_eq!(d, manifest.digest);
    c.put_manifest(&r, "src/app", manifest.digest.as_str(), &manifest)
        .unwrap();
    c.put_manifest(&r, "src/app", "latest", &manifest).unwrap();
    let got = c.get_manifest(&r, "src/app", "1.0").unwrap();
    assert_eq!(got.bytes, bytes);

    let mut tags = c.list_tags(&r, "src/app").unwrap();
    tags.sort();
    assert_eq!(tags, vec!["1.0", "latest"]);

    // Cross-repository mount, then the same manifest in the other repository.
    assert!(c.mount_blob(&r, "dst/app", &bd, "src/app").unwrap());
    assert!(c.mount_blob(&r, "dst/app", &cd, "src/app").unwrap());
    assert!(c.blob_exists(&r, "dst/app", &bd).unwrap());
    assert!(
        !c.mount_blob(&r, "dst/app", &Digest::of(b"absent"), "src/app")
            .unwrap()
    );
    c.put_manifest(&r, "dst/app", "1.0", &manifest).unwrap();

    // A manifest whose blobs are missing is refused with the registry's code.
    let orphan = RawManifest::new(
        manifest_for(&Digest::of(b"x"), 1, &Digest::of(b"y"), 1),
        None,
    );
    let e = c
        .put_manifest(&r, "src/app", "orphan", &orphan)
        .unwrap_err();
    assert!(e.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{e}");

    // Bytes that do not match the digest are refused by the registry.
    let e = c
        .upload_blob(&r, "src/app", &Digest::of(b"abc"), 3, &mut &b"abd"[..])
        .unwrap_err();
    assert!(e.to_string().contains("DIGEST_INVALID"), "{e}");
}

#[test]
fn uploads_with_basic_auth() {
    let reg = TestRegistry::start_with_basic_auth("bob", "pw-bob");
    let cfg = docker_config_with_auth(&reg.addr(), "bob", "pw-bob");
    let c = Client::new(ClientOptions {
        chunk_size: 1000,
        ..options(cfg.path())
    })
    .unwrap();
    let blob = layer_bytes(2500, 9);
    let d = Digest::of(&blob);
    c.upload_blob(&reg.addr(), "a/b", &d, blob.len() as u64, &mut &blob[..])
        .unwrap();
    let back = read_all(
        c.get_blob(&reg.addr(), "a/b", &d, blob.len() as u64)
            .unwrap(),
    );
    assert_eq!(back, blob);
}

#[test]
fn credential_helper_supplies_basic_auth() {
    let Setup { reg, image: p, .. } = setup("h/app", 10, Some(("frank", "pw-frank")));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, reg.addr()),
    )
    .unwrap();
    let helper = dir.path().join("docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread url\n[ \"$url\" = \"{}\" ] || {{ echo 'credentials not found'; exit 1; }}\n\
             echo '{{\"ServerURL\":\"'\"$url\"'\",\"Username\":\"frank\",\"Secret\":\"pw-frank\"}}'\n",
            reg.addr()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = Client::new(ClientOptions {
        helper_dir: Some(dir.path().to_path_buf()),
        ..options(dir.path())
    })
    .unwrap();
    let m = c.get_manifest(&reg.addr(), "h/app", "v1").unwrap();
    assert_eq!(m.bytes, p.manifest);
}

#[test]
fn one_client_serves_many_threads() {
    let Setup {
        reg,
        image,
        client: c,
    } = setup("m/app", 100_000, Some(("gina", "pw-gina")));
    let p = Arc::new(image);
    let addr = reg.addr();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (c, p, addr) = (c.clone(), p.clone(), addr.clone());
            std::thread::spawn(move || {
                let m = c.get_manifest(&addr, "m/app", "v1").unwrap();
                assert_eq!(m.bytes, p.manifest);
                let b = read_all(
                    c.get_blob(&addr, "m/app", &p.layer_digest, 100_000)
                        .unwrap(),
                );
                assert_eq!(b, p.layer);
                let mut cfg = c
                    .get_blob(&addr, "m/app", &p.config_digest, 1 << 20)
                    .unwrap();
                let e = cfg.read_to_end(&mut Vec::new()).unwrap_err().to_string();
                assert!(e.contains("descriptor says 1048576 bytes"), "{e}");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn connection_refused_is_a_transport_error_naming_the_url() {
    let port = support::registry::free_port();
    let e = client()
        .get_manifest(&format!("127.0.0.1:{port}"), "a/b", "v1")
        .unwrap_err();
    let RegistryError::RetriesExhausted { source, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(**source, RegistryError::Transport { .. }),
        "{source:?}"
    );
    assert!(
        source
            .to_string()
            .contains(&format!("http://127.0.0.1:{port}/v2/a/b/manifests/v1"))
    );
}

#[test]
fn a_bad_ca_file_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let e = Client::new(ClientOptions {
        ca_file: Some(path.clone()),
        ..options(dir.path())
    })
    .unwrap_err();
    assert!(matches!(e, RegistryError::CaFile { .. }), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    let missing = dir.path().join("absent.pem");
    let e = Client::new(ClientOptions {
        ca_file: Some(missing),
        ..options(dir.path())
    })
    .unwrap_err();
    assert!(e.to_string().contains("absent.pem"), "{e}");
}
