//! Registry dialects: `airlock push` through a quirk server ([`support::faulty`]) in
//! front of a real `docker-registry`, one quirk at a time.
//!
//! The quirks are those of registries an enclave may run: manifest `HEAD` not
//! implemented (405/501), uploads taken only by `PATCH` (`BLOB_UPLOAD_INVALID` for a
//! monolithic `PUT`), request size limits (413), an OCI-only registry refusing one
//! image's Docker manifest (`MANIFEST_INVALID`), repositories that must exist first
//! (ECR's `NAME_UNKNOWN`), path-depth limits (GitLab's `NAME_INVALID`) and a manifest
//! `PUT` answered `BLOB_UNKNOWN` (Nexus). For each, the push either succeeds with
//! every tag serving the source's digest (asked of the registry itself), or fails
//! with exit 1 and a message naming the cause and the flag to use; no tag ever names
//! an incomplete image.

mod support;

use std::path::PathBuf;
use std::sync::LazyLock;

use serde_json::Value;
use support::cli::{Run, airlock, cmd};
use support::corpus::{Corpus, base_layer, data_layer};
use support::faulty::{Fault, FaultyProxy, Rule, Seen};
use support::images::{Image, PushOptions, hex_of, push};
use support::registry::TestRegistry;
use support::registry_api::{registry_manifest, tags, try_registry_manifest};

const KEEP: PushOptions<'static> = PushOptions {
    format: None,
    creds: None,
};
const V2S2: PushOptions<'static> = PushOptions {
    format: Some("v2s2"),
    creds: None,
};
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A small base layer, then ~96 KiB of incompressible bytes per seed.
static IMAGES: LazyLock<Corpus> = LazyLock::new(|| {
    Corpus::new(base_layer("dialects", &[]), |seed| {
        data_layer(seed, 96 * 1024)
    })
});

/// The images of the bundle: (repository, tag); `docker` is a Docker schema-2 image,
/// the others are OCI.
const NAMES: [&str; 3] = ["app", "docker", "other"];

/// A source registry holding `app:1` (OCI), `docker:1` (Docker schema 2) and `other:1`
/// (OCI), and a bundle of all three.
/// The bundle of the three source images, and what the source registry served for
/// each name (read while it ran: a registry in a static would outlive the test run).
struct Saved {
    /// The source registry's address (names in the bundle start with it).
    src_addr: String,
    /// The source's digest of each name's tag `1`.
    digests: std::collections::BTreeMap<String, String>,
    app: Image,
    _dir: tempfile::TempDir,
    bundle: PathBuf,
}

static SAVED: LazyLock<Saved> = LazyLock::new(|| {
    let src = TestRegistry::start();
    let app = IMAGES.image("linux/amd64", 1);
    push(&app, &format!("{}/app:1", src.addr()), &KEEP);
    push(
        IMAGES.image("linux/amd64", 2),
        &format!("{}/docker:1", src.addr()),
        &V2S2,
    );
    push(
        IMAGES.image("linux/amd64", 3),
        &format!("{}/other:1", src.addr()),
        &KEEP,
    );
    // Under cargo's scratch directory for integration tests, not /tmp: a static is never
    // dropped, so this directory stays until `cargo clean`.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bundle = dir.path().join("b.tar.zst");
    let mut args: Vec<String> = vec!["save".into()];
    args.extend(NAMES.iter().map(|n| format!("{}/{n}:1", src.addr())));
    args.extend(["-o".into(), bundle.display().to_string(), "-q".into()]);
    airlock(&args).ok();
    let digests = NAMES
        .iter()
        .map(|n| {
            let digest = registry_manifest(&src.addr(), n, "1", None).digest;
            (n.to_string(), digest)
        })
        .collect();
    Saved {
        src_addr: src.addr().to_string(),
        digests,
        app,
        _dir: dir,
        bundle,
    }
});

impl Saved {
    fn digest(&self, name: &str) -> String {
        self.digests[name].clone()
    }
}

/// `airlock push BUNDLE TARGET --no-progress EXTRA...`.
fn push_to(target: &str, extra: &[&str]) -> Run {
    let mut c = cmd(&[
        "push",
        SAVED.bundle.to_str().unwrap(),
        target,
        "--no-progress",
    ]);
    for a in extra {
        c = c.arg(a);
    }
    c.run()
}

/// Every image's tag on the target (under `prefix`) serves the source's digest.
fn assert_all_tagged(target: &TestRegistry, prefix: &str, why: &str) {
    for name in NAMES {
        let got = registry_manifest(&target.addr(), &format!("{prefix}{name}"), "1", None);
        assert_eq!(
            got.digest,
            SAVED.digest(name),
            "{why}: {name}:1 on the target"
        );
    }
}

fn assert_no_tags(target: &TestRegistry, prefix: &str, run: &Run) {
    for name in NAMES {
        assert_eq!(
            tags(&target.addr(), &format!("{prefix}{name}"), None),
            Vec::<String>::new(),
            "a failed push left a tag; {run}"
        );
    }
}

fn count(seen: &[Seen], method: &str, path: &str, faulted: bool) -> usize {
    seen.iter()
        .filter(|s| s.method == method && s.path.contains(path) && s.fault.is_some() == faulted)
        .count()
}

#[test]
fn manifest_head_not_implemented_falls_back_to_get_and_is_remembered() {
    for status in [405, 501] {
        let target = TestRegistry::start();
        let proxy = FaultyProxy::start(
            &target.url(),
            vec![Rule::new(
                "HEAD",
                "/manifests/",
                Fault::refuse(status, "UNSUPPORTED", "HEAD is not implemented"),
            )],
        );
        push_to(&proxy.addr(), &["--jobs", "1"]).ok();
        assert_all_tagged(&target, "", &format!("HEAD manifest {status}"));
        let seen = proxy.seen();
        assert_eq!(
            count(&seen, "HEAD", "/manifests/", true),
            1,
            "HEAD {status} is remembered: manifests after the first are asked with GET"
        );
        assert!(count(&seen, "GET", "/manifests/", false) >= 6, "{seen:?}");

        // Again: the GET tells that everything is there, nothing is written twice.
        let again = push_to(&proxy.addr(), &["--json"]).ok().json();
        assert_eq!(again["tags"]["unchanged"], 3, "{again}");
        assert_eq!(again["manifests"]["pushed"], 0, "{again}");
    }
}

#[test]
fn patch_only_registry_is_detected_and_remembered() {
    let target = TestRegistry::start();
    let refuse_put = || {
        Rule::new(
            "PUT",
            "/blobs/uploads/",
            Fault::refuse(
                400,
                "BLOB_UPLOAD_INVALID",
                "monolithic uploads are not supported",
            ),
        )
        .with_body(true)
    };
    let proxy = FaultyProxy::start(&target.url(), vec![refuse_put()]);
    push_to(&proxy.addr(), &["--jobs", "1"]).ok();
    assert_all_tagged(&target, "", "PATCH-only registry");
    let seen = proxy.seen();
    assert_eq!(proxy.injected(), 1, "one refusal, then PATCH for the rest");
    // base layer + 3 data layers + 3 configs, each by PATCH.
    assert!(
        count(&seen, "PATCH", "/blobs/uploads/", false) >= 7,
        "{seen:?}"
    );

    // --patch-uploads with --chunk-size: every blob by PATCH (even those far smaller
    // than a chunk), no PUT with a body at all.
    let target = TestRegistry::start();
    let proxy = FaultyProxy::start(&target.url(), vec![refuse_put()]);
    push_to(&proxy.addr(), &["--patch-uploads", "--chunk-size", "64K"]).ok();
    assert_all_tagged(&target, "", "--patch-uploads --chunk-size 64K");
    assert_eq!(proxy.injected(), 0, "no monolithic PUT was sent");
    let seen = proxy.seen();
    // The 96 KiB layers take two chunks each.
    assert!(
        count(&seen, "PATCH", "/blobs/uploads/", false) >= 10,
        "{seen:?}"
    );
}

#[test]
fn request_size_limit_names_chunk_size() {
    let target = TestRegistry::start();
    // A proxy that refuses bodies as large as the app's data layer.
    let layer = SAVED.app.layers[1].digest().to_string();
    let rules = vec![
        Rule::new(
            "PUT",
            hex_of(&layer),
            Fault::refuse(413, "SIZE_INVALID", "request entity too large"),
        )
        .with_body(true),
    ];
    let proxy = FaultyProxy::start(&target.url(), rules.clone());
    let run = push_to(&proxy.addr(), &[]).expect_code(1);
    assert!(
        run.stderr.contains("--chunk-size") && run.stderr.contains(&layer),
        "{run}"
    );
    assert!(run.stderr.contains("request entity too large"), "{run}");
    // A failed blob stops the push before any manifest.
    assert_no_tags(&target, "", &run);

    let proxy = FaultyProxy::start(&target.url(), rules);
    push_to(&proxy.addr(), &["--chunk-size", "64K"]).ok();
    assert_all_tagged(&target, "", "--chunk-size 64K past a 413");
}

#[test]
fn one_refused_manifest_does_not_stop_the_other_tags() {
    let target = TestRegistry::start();
    // An OCI-only registry: Docker schema-2 manifests are refused.
    let proxy = FaultyProxy::start(
        &target.url(),
        vec![
            Rule::new(
                "PUT",
                "/manifests/",
                Fault::refuse(
                    400,
                    "MANIFEST_INVALID",
                    "manifest invalid: unsupported media type",
                ),
            )
            .content_type(DOCKER_MANIFEST),
        ],
    );
    let run = push_to(&proxy.addr(), &["--json"]).expect_code(1);
    for name in ["app", "other"] {
        let got = registry_manifest(&target.addr(), name, "1", None);
        assert_eq!(got.digest, SAVED.digest(name), "{name} was tagged; {run}");
    }
    assert_eq!(
        tags(&target.addr(), "docker", None),
        Vec::<String>::new(),
        "{run}"
    );
    assert!(
        try_registry_manifest(&target.addr(), "docker", &SAVED.digest("docker"), None).is_err(),
        "the refused manifest is not on the target"
    );
    // The error names the image not written, the cause and the media type.
    let docker_name = format!("{}/docker:1", SAVED.src_addr);
    assert!(
        run.stderr.contains("1 of 3 image names was not written")
            && run.stderr.contains(&docker_name)
            && run.stderr.contains(DOCKER_MANIFEST)
            && run.stderr.contains("MANIFEST_INVALID"),
        "{run}"
    );
    // The summary still says what was written.
    let summary: Value = run.json();
    let status = |name: &str| {
        summary["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"].as_str().unwrap().ends_with(&format!("/{name}:1")))
            .map(|i| i["status"].clone())
            .unwrap()
    };
    assert_eq!(status("app"), "pushed");
    assert_eq!(status("other"), "pushed");
    assert_eq!(status("docker"), "not written");

    // The registry is fixed: the same command finishes the rest.
    drop(proxy);
    let again = push_to(&target.addr(), &["--json"]).ok().json();
    assert_eq!(again["tags"]["pushed"], 1, "{again}");
    assert_eq!(again["tags"]["unchanged"], 2, "{again}");
    assert_all_tagged(&target, "", "second push");
}

#[test]
fn repository_that_must_exist_first() {
    let target = TestRegistry::start();
    let proxy = FaultyProxy::start(
        &target.url(),
        vec![Rule::new(
            "POST",
            "/blobs/uploads/",
            Fault::refuse(404, "NAME_UNKNOWN", "repository name not known to registry"),
        )],
    );
    let run = push_to(&proxy.addr(), &[]).expect_code(1);
    assert!(
        run.stderr.contains("create the repository") && run.stderr.contains("NAME_UNKNOWN"),
        "{run}"
    );
    assert_no_tags(&target, "", &run);
}

#[test]
fn path_depth_limit_names_the_path_and_the_prefix() {
    let target = TestRegistry::start();
    let proxy = FaultyProxy::start(
        &target.url(),
        vec![Rule::new(
            "POST",
            "/v2/team/a/b/",
            Fault::refuse(400, "NAME_INVALID", "invalid repository name"),
        )],
    );
    let run = push_to(&format!("{}/team/a/b", proxy.addr()), &[]).expect_code(1);
    assert!(
        run.stderr.contains("team/a/b/app")
            && run.stderr.contains("4 path components")
            && run.stderr.contains("shorter prefix"),
        "{run}"
    );
    assert_no_tags(&target, "team/a/b/", &run);

    // A shorter prefix goes through.
    push_to(&format!("{}/team", proxy.addr()), &[]).ok();
    assert_all_tagged(&target, "team/", "shorter prefix");
}

#[test]
fn missing_child_on_manifest_put_names_the_child() {
    let target = TestRegistry::start();
    let app_root = SAVED.digest("app");
    let config = SAVED.app.config.digest.clone();
    let proxy = FaultyProxy::start(
        &target.url(),
        vec![Rule::new(
            "PUT",
            &format!("/manifests/{app_root}"),
            Fault::Refuse {
                status: 404,
                code: "BLOB_UNKNOWN",
                message: "blob unknown to registry".into(),
                detail: config.clone(),
            },
        )],
    );
    let run = push_to(&proxy.addr(), &[]).expect_code(1);
    assert!(
        run.stderr.contains(&format!("config {config}")) && run.stderr.contains("is missing"),
        "{run}"
    );
    assert_eq!(tags(&target.addr(), "app", None), Vec::<String>::new());
    for name in ["docker", "other"] {
        let got = registry_manifest(&target.addr(), name, "1", None);
        assert_eq!(got.digest, SAVED.digest(name), "{name} was tagged; {run}");
    }
}
