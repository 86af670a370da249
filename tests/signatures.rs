//! Offline image signature checks (`verify --key`, `push --key`, `--policy` at save and
//! push) against cosign-format signatures made by an independent tool: every key and
//! every signature here comes from `openssl` (ECDSA P-256, Ed25519, RSA), over
//! simple-signing payloads the test writes (`support/image_trust.rs`). Images live in a
//! real `docker-registry` (pushed with skopeo) and are saved by airlock. Most cases add
//! the signature manifests to the saved bundle the way `save` records them, so each
//! case controls exactly which signatures an image carries; the last ones push the
//! signatures to the registry under cosign's tag (`support/referrers.rs`) and let
//! `save` find them.

mod support;

use std::fs;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::json;

use airlock::digest::Digest;
use support::cli::{airlock, dir_listing};
use support::image_trust::{
    Alg, SigManifest, image_findings, key, openssl, payload, sig_manifest, signed, tool_ok_bytes,
    verify_json, with_signatures, write_policy,
};
use support::images::{self, Flavor, ImageSpec, PushOptions, file, layer};
use support::referrers::{Keys, Options, cosign_signature, push_artifact, signed_debian};
use support::registry::TestRegistry;
use support::registry_api::{catalog, tags};

/// A registry holding `corp/app:1` (one platform) and `corp/multi:2` (an index of two),
/// and a bundle of both saved from it.
struct Fixture {
    reg: TestRegistry,
    dir: tempfile::TempDir,
    bundle: PathBuf,
    /// `127.0.0.1:PORT/corp/app` and its tag's digest.
    app: String,
    app_digest: String,
    multi: String,
    multi_digest: String,
    children: Vec<String>,
}

fn fixture() -> Fixture {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let base = layer(&[file("etc/os-release", "ID=signatures-test\n")]);
    let app = ImageSpec::new("linux/amd64")
        .layer(&base)
        .label("t", "app")
        .build();
    let multi = images::index(
        Flavor::Oci,
        vec![
            ImageSpec::new("linux/amd64")
                .layer(&base)
                .label("t", "m1")
                .build(),
            ImageSpec::new("linux/arm64")
                .layer(&base)
                .label("t", "m2")
                .build(),
        ],
    );
    images::push(&app, &format!("{addr}/corp/app:1"), &PushOptions::default());
    images::push(
        &multi,
        &format!("{addr}/corp/multi:2"),
        &PushOptions::default(),
    );
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("plain.tar");
    airlock(&[
        "save",
        &format!("{addr}/corp/app:1"),
        &format!("{addr}/corp/multi:2"),
        "-o",
        bundle.to_str().unwrap(),
    ])
    .ok();
    Fixture {
        app: format!("{addr}/corp/app"),
        app_digest: app.manifest.digest.clone(),
        multi: format!("{addr}/corp/multi"),
        multi_digest: multi.index.digest.clone(),
        children: multi
            .images
            .iter()
            .map(|i| i.manifest.digest.clone())
            .collect(),
        reg,
        dir,
        bundle,
    }
}

impl Fixture {
    /// A copy of the bundle carrying `sigs`, named `name`.
    fn signed_bundle(&self, name: &str, sigs: &[&SigManifest]) -> PathBuf {
        let out = self.dir.path().join(format!("{name}.tar"));
        // Both repositories' signatures are recorded under the repository they sign.
        let (app, multi): (Vec<&SigManifest>, Vec<&SigManifest>) =
            sigs.iter().partition(|s| s.subject == self.app_digest);
        let mid = self.dir.path().join(format!("{name}.mid.tar"));
        with_signatures(&self.bundle, &mid, &self.app, &app);
        with_signatures(&mid, &out, &self.multi, &multi);
        fs::remove_file(mid).unwrap();
        out
    }

    fn app_name(&self) -> String {
        format!("{}:1", self.app)
    }

    fn multi_name(&self) -> String {
        format!("{}:2", self.multi)
    }
}

#[test]
fn verify_key_tells_each_reason_apart() {
    let fx = fixture();
    let keys = tempfile::tempdir().unwrap();
    let ec = key(keys.path(), "cosign", Alg::Ecdsa);
    let other = key(keys.path(), "other", Alg::Ecdsa);
    let pub_key = ec.public.to_str().unwrap();
    let index_sig = signed(&ec, &fx.multi_digest, &fx.multi, &fx.multi_digest);

    // Valid: both images signed by the key, for their digest and their name.
    let good = signed(&ec, &fx.app_digest, &fx.app, &fx.app_digest);
    let b = fx.signed_bundle("valid", &[&good, &index_sig]);
    let (code, report) = verify_json(&b, &["--key", pub_key]);
    assert_eq!(code, Some(0), "{report:#}");
    let verdicts = report["image_signatures"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2);
    for v in verdicts {
        assert_eq!(v["ok"], true, "{v}");
    }
    let app = verdicts
        .iter()
        .find(|v| v["image"] == fx.app_name())
        .unwrap();
    assert_eq!(app["signed_by"]["manifest"], good.digest());
    let key_der = tool_ok_bytes(&["pkey", "-pubin", "-in", pub_key, "-outform", "DER"]);
    assert_eq!(app["signed_by"]["key_id"], Digest::of(&key_der).to_string());
    let human = airlock(&["verify", b.to_str().unwrap(), "--key", pub_key]).ok();
    assert!(
        human
            .stdout
            .contains(&format!("image signed: {}", fx.app_name())),
        "{human}"
    );
    // The same bundle without --key is just a sound bundle: no image check at all.
    let (code, report) = verify_json(&b, &[]);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(report.get("image_signatures").is_none());

    // Each way the app image can fail; the index stays validly signed.
    let tampered = {
        let p = payload(&fx.app, &fx.app_digest);
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(ec.sign(&p))
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0x01;
        sig_manifest(
            &fx.app_digest,
            &[(p, base64::engine::general_purpose::STANDARD.encode(raw))],
        )
    };
    let cases: Vec<(&str, Option<SigManifest>, &str)> = vec![
        ("missing", None, "image_unsigned"),
        (
            "wrong-key",
            Some(signed(&other, &fx.app_digest, &fx.app, &fx.app_digest)),
            "image_wrong_key",
        ),
        (
            "other-digest",
            Some(signed(&ec, &fx.app_digest, &fx.app, &fx.multi_digest)),
            "image_payload_digest",
        ),
        (
            "identity",
            Some(signed(
                &ec,
                &fx.app_digest,
                &format!("{}/corp/other", fx.reg.addr()),
                &fx.app_digest,
            )),
            "image_identity",
        ),
        ("tampered", Some(tampered), "image_wrong_key"),
        (
            "not-base64",
            Some(sig_manifest(
                &fx.app_digest,
                &[(payload(&fx.app, &fx.app_digest), "not*base64".into())],
            )),
            "image_signature_encoding",
        ),
    ];
    for (name, sig, kind) in cases {
        let mut sigs = vec![&index_sig];
        if let Some(s) = &sig {
            sigs.push(s);
        }
        let b = fx.signed_bundle(name, &sigs);
        let (code, report) = verify_json(&b, &["--key", pub_key]);
        assert_eq!(code, Some(1), "{name}: {report:#}");
        let found = image_findings(&report);
        // The signature manifest is named (the image's digest when there is none).
        let named = sig.as_ref().map_or(fx.app_digest.clone(), |s| s.digest());
        assert_eq!(
            found,
            vec![(kind.to_string(), vec![fx.app_name()], named)],
            "{name}: {report:#}"
        );
        // Nothing else is wrong with the bundle: only the image signature findings.
        assert_eq!(
            report["findings"].as_array().unwrap().len(),
            1,
            "{name}: {report:#}"
        );
        let multi = report["image_signatures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["image"] == fx.multi_name())
            .unwrap()
            .clone();
        assert_eq!(multi["ok"], true, "{name}: {multi}");
        if name == "missing" {
            let human = airlock(&["verify", b.to_str().unwrap(), "--key", pub_key]).expect_code(1);
            assert!(
                human.stdout.contains(&format!(
                    "image unsigned: {} ({}): no signature refers to it\n",
                    fx.app_name(),
                    fx.app_digest
                )),
                "{human}"
            );
        }
    }
}

#[test]
fn a_signature_on_a_child_does_not_sign_the_index() {
    let fx = fixture();
    let keys = tempfile::tempdir().unwrap();
    let ec = key(keys.path(), "cosign", Alg::Ecdsa);
    let pub_key = ec.public.to_str().unwrap();
    let app = signed(&ec, &fx.app_digest, &fx.app, &fx.app_digest);
    let children: Vec<SigManifest> = fx
        .children
        .iter()
        .map(|c| signed(&ec, c, &fx.multi, c))
        .collect();
    let mut sigs = vec![&app];
    sigs.extend(children.iter());
    let b = fx.signed_bundle("children", &sigs);
    let (code, report) = verify_json(&b, &["--key", pub_key]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        image_findings(&report),
        vec![(
            "image_unsigned".to_string(),
            vec![fx.multi_name()],
            fx.multi_digest.clone()
        )]
    );
    let multi = report["image_signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["image"] == fx.multi_name())
        .unwrap();
    let mut signed_children: Vec<&str> = multi["signed_children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    signed_children.sort();
    let mut expected: Vec<&str> = fx.children.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(signed_children, expected);
    let human = airlock(&["verify", b.to_str().unwrap(), "--key", pub_key]).expect_code(1);
    assert!(
        human
            .stdout
            .contains("a signature on a child covers only that child"),
        "{human}"
    );

    // The index signed as well: accepted, children still reported.
    let index = signed(&ec, &fx.multi_digest, &fx.multi, &fx.multi_digest);
    sigs.push(&index);
    let b = fx.signed_bundle("index-and-children", &sigs);
    let (code, report) = verify_json(&b, &["--key", pub_key]);
    assert_eq!(code, Some(0), "{report:#}");
}

#[test]
fn ed25519_and_rsa_keys_verify_and_any_given_key_is_accepted() {
    let fx = fixture();
    let keys = tempfile::tempdir().unwrap();
    let ed = key(keys.path(), "ed", Alg::Ed25519);
    let rsa = key(keys.path(), "rsa", Alg::Rsa);
    let app = signed(&ed, &fx.app_digest, &fx.app, &fx.app_digest);
    let multi = signed(&rsa, &fx.multi_digest, &fx.multi, &fx.multi_digest);
    let b = fx.signed_bundle("ed-rsa", &[&app, &multi]);
    let (ed_pub, rsa_pub) = (ed.public.to_str().unwrap(), rsa.public.to_str().unwrap());
    let (code, report) = verify_json(&b, &["--key", ed_pub, "--key", rsa_pub]);
    assert_eq!(code, Some(0), "{report:#}");
    let algorithms: Vec<&str> = report["image_signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["signed_by"]["algorithm"].as_str().unwrap())
        .collect();
    assert!(algorithms.contains(&"ed25519"), "{report:#}");
    assert!(algorithms.contains(&"rsa-pkcs1v15-sha256"), "{report:#}");
    // Only the Ed25519 key: the RSA-signed index is refused, naming its signature.
    let (code, report) = verify_json(&b, &["--key", ed_pub]);
    assert_eq!(code, Some(1));
    assert_eq!(
        image_findings(&report),
        vec![(
            "image_wrong_key".to_string(),
            vec![fx.multi_name()],
            multi.digest()
        )]
    );
    // A private key, or a file that is no key, is a usage error naming the file.
    let run = airlock(&[
        "verify",
        b.to_str().unwrap(),
        "--key",
        ed.private.to_str().unwrap(),
    ])
    .expect_code(2);
    assert!(run.stderr.contains("ed.key"), "{run}");
    // An RSA key too small to trust is refused by name.
    let small = keys.path().join("small.key");
    let small_pub = keys.path().join("small.pub");
    openssl(&["genrsa", "-out", small.to_str().unwrap(), "1024"]);
    openssl(&[
        "pkey",
        "-in",
        small.to_str().unwrap(),
        "-pubout",
        "-out",
        small_pub.to_str().unwrap(),
    ]);
    let run = airlock(&[
        "verify",
        b.to_str().unwrap(),
        "--key",
        small_pub.to_str().unwrap(),
    ])
    .expect_code(2);
    assert!(
        run.stderr.contains("small.pub holds a 1024-bit RSA"),
        "{run}"
    );
    // --key and --policy are one or the other.
    airlock(&[
        "verify",
        b.to_str().unwrap(),
        "--key",
        ed_pub,
        "--policy",
        "p.json",
    ])
    .expect_code(2);
}

#[test]
fn policy_rules_apply_by_longest_prefix_and_mistakes_are_usage_errors() {
    let fx = fixture();
    let keys = tempfile::tempdir().unwrap();
    let ec = key(keys.path(), "cosign", Alg::Ecdsa);
    let app = signed(&ec, &fx.app_digest, &fx.app, &fx.app_digest);
    let b = fx.signed_bundle("policy", &[&app]);
    let addr = fx.reg.addr();
    // corp/app requires the key (signed: ok); the rest of the registry only a digest
    // (multi was saved by tag: refused).
    let policy = write_policy(
        keys.path(),
        json!({"version": 1, "rules": [
            {"prefix": format!("{addr}/corp/app"), "keys": ["cosign.pub"]},
            {"prefix": addr, "require_digest": true}
        ]}),
    );
    let (code, report) = verify_json(&b, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        image_findings(&report),
        vec![(
            "image_not_pinned".to_string(),
            vec![fx.multi_name()],
            fx.multi_digest.clone()
        )]
    );
    // Rejected by prefix, with the reason given.
    let policy = write_policy(
        keys.path(),
        json!({"default": {"keys": ["cosign.pub"]},
               "rules": [{"prefix": format!("{addr}/corp/multi"), "reject": true, "reason": "retired"}]}),
    );
    let run = airlock(&[
        "verify",
        b.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(
        run.stdout.contains(&format!(
            "policy: rejected: {} ({}): the policy rejects it: retired",
            fx.multi_name(),
            fx.multi_digest
        )),
        "{run}"
    );
    // Mistakes: exit 2, naming the file and the field.
    for (doc, field) in [
        (
            json!({"rules": [{"prefix": "a.example", "require_signatur": true}]}),
            "`rules[0].require_signatur`",
        ),
        (
            json!({"rules": [{"prefix": "a.example", "keys": ["missing.pub"]}]}),
            "`rules[0].keys[0]`",
        ),
        (
            json!({"default": {"require_signature": true}}),
            "`default.keys`",
        ),
        (
            json!({"rules": [{"prefix": "nginx:1.25"}]}),
            "`rules[0].prefix`",
        ),
    ] {
        let policy = write_policy(keys.path(), doc);
        let run = airlock(&[
            "verify",
            b.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ])
        .expect_code(2);
        assert!(
            run.stderr
                .contains(&format!("policy {}: {field}", policy.display())),
            "{run}"
        );
    }
    fs::write(keys.path().join("policy.json"), "{not json").unwrap();
    let run = airlock(&[
        "verify",
        b.to_str().unwrap(),
        "--policy",
        keys.path().join("policy.json").to_str().unwrap(),
    ])
    .expect_code(2);
    assert!(run.stderr.contains("not valid JSON"), "{run}");
}

#[test]
fn push_refuses_before_writing_and_leaves_the_target_untouched() {
    let fx = fixture();
    let keys = tempfile::tempdir().unwrap();
    let ec = key(keys.path(), "cosign", Alg::Ecdsa);
    let pub_key = ec.public.to_str().unwrap();
    let index = signed(&ec, &fx.multi_digest, &fx.multi, &fx.multi_digest);
    let b = fx.signed_bundle("half", &[&index]);
    let target = TestRegistry::start();
    let tgt = format!("{}/mirror", target.addr());

    let run = airlock(&["push", b.to_str().unwrap(), &tgt, "--key", pub_key]).expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "{} ({}): no signature refers to it",
            fx.app_name(),
            fx.app_digest
        )),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("1 of 2 images refused by --key; nothing was pushed"),
        "{run}"
    );
    assert!(!run.stderr.contains(&fx.multi_name()), "{run}");
    assert_eq!(catalog(&target.addr(), None), Vec::<String>::new());

    let policy = write_policy(
        keys.path(),
        json!({"rules": [{"prefix": format!("{}/corp", fx.reg.addr()), "keys": ["cosign.pub"]}]}),
    );
    let run = airlock(&[
        "push",
        b.to_str().unwrap(),
        &tgt,
        "--policy",
        policy.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(run.stderr.contains("refused by"), "{run}");
    assert_eq!(catalog(&target.addr(), None), Vec::<String>::new());

    // Only the signed image selected: pushed.
    airlock(&[
        "push",
        b.to_str().unwrap(),
        &tgt,
        "--key",
        pub_key,
        "--image",
        &fx.multi_name(),
    ])
    .ok();
    // The image's tag, and its signature's cosign tag (signatures go with their images).
    let sig_tag = format!("{}.sig", fx.multi_digest.replace(':', "-"));
    assert_eq!(
        tags(&target.addr(), "mirror/corp/multi", None),
        vec!["2".to_string(), sig_tag]
    );
    assert_eq!(
        tags(&target.addr(), "mirror/corp/app", None),
        Vec::<String>::new()
    );
}

#[test]
fn save_policy_refuses_before_writing_a_bundle() {
    let fx = fixture();
    let keys = tempfile::tempdir().unwrap();
    let addr = fx.reg.addr();
    let policy = write_policy(
        keys.path(),
        json!({"rules": [
            {"prefix": format!("{addr}/corp/app"), "require_digest": true},
            {"prefix": format!("{addr}/corp/multi"), "reject": true, "reason": "retired"}
        ]}),
    );
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("refused.tar.zst");
    let run = airlock(&[
        "save",
        &fx.app_name(),
        &fx.multi_name(),
        "-o",
        bundle.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "{} ({}): asked for by tag (`{}`)",
            fx.app_name(),
            fx.app_digest,
            fx.app_name()
        )),
        "{run}"
    );
    assert!(
        run.stderr.contains("the policy rejects it: retired"),
        "{run}"
    );
    assert!(run.stderr.contains("no bundle was written"), "{run}");
    assert_eq!(dir_listing(out.path()), Vec::<String>::new());

    // Pinned by digest: accepted and written.
    let pinned = format!("{}@{}", fx.app, fx.app_digest);
    airlock(&[
        "save",
        &pinned,
        "-o",
        bundle.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ])
    .ok();
    assert!(bundle.is_file());
}

// ---------------------------------------------------------------------------------
// End to end: signatures found by `save` itself in a real registry (cosign's tag
// `sha256-<hex>.sig`, written by tests/support/referrers.rs with openssl-made keys).

#[test]
fn save_carries_cosign_signatures_that_verify_key_checks_offline() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let signed = signed_debian(&addr, Options::default());
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("signed.tar.zst");
    airlock(&["save", &signed.name, "-o", bundle.to_str().unwrap()]).ok();
    let key = signed.keys.public_pem.to_str().unwrap();
    let (code, report) = verify_json(&bundle, &["--key", key]);
    assert_eq!(code, Some(0), "{report:#}");
    let v = &report["image_signatures"][0];
    assert_eq!(v["image"], signed.name);
    assert_eq!(v["signed_by"]["manifest"], signed.signature.digest());
    // Another key: the image is refused, its signature manifest named.
    let other = Keys::generate();
    let (code, report) = verify_json(&bundle, &["--key", other.public_pem.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        image_findings(&report),
        vec![(
            "image_wrong_key".to_string(),
            vec![signed.name.clone()],
            signed.signature.digest().to_string()
        )]
    );
    // push --key of the same bundle: accepted, and the image arrives.
    let target = TestRegistry::start();
    airlock(&[
        "push",
        bundle.to_str().unwrap(),
        &format!("{}/mirror", target.addr()),
        "--key",
        key,
    ])
    .ok();
    assert!(tags(&target.addr(), "mirror/corp/debian", None).contains(&"12".to_string()));
}

#[test]
fn save_policy_judges_the_signatures_it_found_before_writing() {
    let reg = TestRegistry::start();
    let addr = reg.addr();
    let signed = signed_debian(&addr, Options::default());
    // corp/app:1, signed by a key the policy does not accept; corp/tools:1 unsigned.
    let base = layer(&[file("etc/os-release", "ID=policy-test\n")]);
    let app = ImageSpec::new("linux/amd64")
        .layer(&base)
        .label("t", "app")
        .build();
    let tools = ImageSpec::new("linux/amd64")
        .layer(&base)
        .label("t", "tools")
        .build();
    images::push(&app, &format!("{addr}/corp/app:1"), &PushOptions::default());
    images::push(
        &tools,
        &format!("{addr}/corp/tools:1"),
        &PushOptions::default(),
    );
    let stranger = Keys::generate();
    let app_sig = cosign_signature(&stranger, &format!("{addr}/corp/app"), &app.manifest.digest);
    push_artifact(&addr, "corp/app", &app_sig);

    let keys = tempfile::tempdir().unwrap();
    fs::copy(&signed.keys.public_pem, keys.path().join("corp.pub")).unwrap();
    let policy = write_policy(
        keys.path(),
        json!({"rules": [{"prefix": format!("{addr}/corp"), "keys": ["corp.pub"]}]}),
    );
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("release.tar.zst");
    let run = airlock(&[
        "save",
        &signed.name,
        &format!("{addr}/corp/app:1"),
        &format!("{addr}/corp/tools:1"),
        "-o",
        bundle.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(run.stderr.contains("2 of 3 images refused by"), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "{addr}/corp/app:1 ({}): signature manifest {} (layer 0): no accepted key verifies it",
            app.manifest.digest,
            app_sig.digest()
        )),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "{addr}/corp/tools:1 ({}): no signature refers to it",
            tools.manifest.digest
        )),
        "{run}"
    );
    assert!(
        !run.stderr
            .contains(&format!("{}:12 (", signed.docker_reference)),
        "{run}"
    );
    assert_eq!(dir_listing(out.path()), Vec::<String>::new());

    // The signed image alone: accepted, and its bundle carries the signature.
    airlock(&[
        "save",
        &signed.name,
        "-o",
        bundle.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ])
    .ok();
    let (code, report) = verify_json(&bundle, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{report:#}");
}
