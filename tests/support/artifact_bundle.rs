//! Bundles with artifacts (signatures, SBOMs) built by hand with airlock's
//! `BundleWriter`, for the `ls`, `verify` and `push` tests of artifacts that need
//! exact control over the TOC (a missing blob, a wrong subject) or no source registry.
//!
//! [`fixture`] makes, for repository `REPO`: an image manifest (config and two
//! layers) named `REPO:12`, an index holding it named `REPO:multi`, and four
//! artifacts: a cosign-style signature of the manifest (tag `sha256-<hex>.sig`, no
//! `subject`), an SPDX SBOM referring to the manifest (`subject`, found by the
//! referrers tag), a signature referring to the SBOM (`subject`: an artifact about an
//! artifact), and an attestation referring to the index. [`write`] writes it, leaving
//! out chosen blobs. Included by path (`#[path = "support/artifact_bundle.rs"]`).
#![allow(dead_code)]

use std::path::Path;

use airlock::bundle::BundleWriter;
use airlock::bundle::toc::{
    ArtifactFound, ArtifactKind, FORMAT_VERSION, TOC_NAME, Toc, TocArtifact, TocBlob, TocImage,
};
use airlock::bundle::writer::WriteOptions;
use airlock::digest::Digest;
use airlock::oci::media;
use serde_json::{Value, json};

pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const SPDX: &str = "application/spdx+json";
pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIG_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
pub const INTOTO: &str = "application/vnd.in-toto+json";

pub fn desc(mt: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": mt, "digest": Digest::of(bytes).to_string(), "size": bytes.len()})
}

/// One blob of the fixture.
#[derive(Clone)]
pub struct Blob {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            digest: Digest::of(&bytes),
            media_type: media_type.to_string(),
            bytes,
        }
    }
}

pub struct Fixture {
    pub repo: String,
    pub blobs: Vec<Blob>,
    pub toc: Toc,
    pub index_json: Vec<u8>,
    /// The image manifest (`REPO:12`) and the index (`REPO:multi`).
    pub manifest: Blob,
    pub index: Blob,
    /// The cosign signature of the manifest, its layer and its tag.
    pub sig: Blob,
    pub sig_layer: Blob,
    pub sig_tag: String,
    /// The SBOM about the manifest and its layer.
    pub sbom: Blob,
    pub sbom_layer: Blob,
    /// The signature about the SBOM.
    pub sbom_sig: Blob,
    /// The attestation about the index.
    pub att: Blob,
    /// The empty config `{}` the artifacts share.
    pub empty: Blob,
}

impl Fixture {
    pub fn blob(&self, d: &Digest) -> &Blob {
        self.blobs
            .iter()
            .find(|b| &b.digest == d)
            .expect("a fixture blob")
    }

    pub fn artifact(&self, d: &Digest) -> &TocArtifact {
        self.toc
            .artifacts
            .iter()
            .find(|a| &a.digest == d)
            .expect("a fixture artifact")
    }

    pub fn name(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repo)
    }
}

/// `seed` varies the layers, so two fixtures share nothing but the empty config.
pub fn fixture(repo: &str, seed: u8) -> Fixture {
    let layer1 = Blob::new(media::OCI_LAYER_GZIP, vec![seed; 3000]);
    let layer2 = Blob::new(media::OCI_LAYER_GZIP, vec![seed.wrapping_add(1); 5000]);
    let config = Blob::new(
        media::OCI_CONFIG,
        serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [
                Digest::of(&[seed]).to_string(), Digest::of(&[seed, 1]).to_string()
            ]}
        }))
        .unwrap(),
    );
    let manifest = Blob::new(
        media::OCI_MANIFEST,
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": desc(media::OCI_CONFIG, &config.bytes),
            "layers": [desc(media::OCI_LAYER_GZIP, &layer1.bytes), desc(media::OCI_LAYER_GZIP, &layer2.bytes)]
        }))
        .unwrap(),
    );
    let mut mdesc = desc(media::OCI_MANIFEST, &manifest.bytes);
    mdesc["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let index = Blob::new(
        media::OCI_INDEX,
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [mdesc]
        }))
        .unwrap(),
    );
    let empty = Blob::new(EMPTY, b"{}".to_vec());

    // A cosign signature: simple-signing payload as the layer, found by its tag.
    let payload = serde_json::to_vec(&json!({
        "critical": {"identity": {"docker-reference": repo},
                     "image": {"docker-manifest-digest": manifest.digest.to_string()},
                     "type": "cosign container image signature"},
        "optional": null
    }))
    .unwrap();
    let sig_layer = Blob::new(SIMPLESIGNING, payload);
    let sig_config = Blob::new(
        media::OCI_CONFIG,
        serde_json::to_vec(&json!({"architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(&sig_layer.bytes).to_string()]}}))
        .unwrap(),
    );
    let mut sig_ldesc = desc(SIMPLESIGNING, &sig_layer.bytes);
    sig_ldesc["annotations"] = json!({"dev.cosignproject.cosign/signature": "MEUCIQDfakefakefake"});
    let sig = Blob::new(
        media::OCI_MANIFEST,
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": desc(media::OCI_CONFIG, &sig_config.bytes),
            "layers": [sig_ldesc]
        }))
        .unwrap(),
    );
    let sig_tag = format!("sha256-{}.sig", manifest.digest.hex());

    // An SBOM referrer of the manifest.
    let sbom_layer = Blob::new(
        SPDX,
        serde_json::to_vec(&json!({"spdxVersion": "SPDX-2.3", "name": repo, "seed": seed}))
            .unwrap(),
    );
    let sbom = Blob::new(
        media::OCI_MANIFEST,
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": SPDX,
            "config": desc(EMPTY, &empty.bytes),
            "layers": [desc(SPDX, &sbom_layer.bytes)],
            "subject": desc(media::OCI_MANIFEST, &manifest.bytes),
            "annotations": {"org.opencontainers.image.created": "2024-05-01T12:00:00Z"}
        }))
        .unwrap(),
    );
    // A signature of the SBOM (a referrer of a referrer).
    let sbom_sig_layer = Blob::new(
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        serde_json::to_vec(&json!({"about": sbom.digest.to_string()})).unwrap(),
    );
    let sbom_sig = Blob::new(
        media::OCI_MANIFEST,
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "config": desc(EMPTY, &empty.bytes),
            "layers": [desc("application/vnd.dev.sigstore.bundle.v0.3+json", &sbom_sig_layer.bytes)],
            "subject": desc(media::OCI_MANIFEST, &sbom.bytes)
        }))
        .unwrap(),
    );
    // An attestation referrer of the index.
    let att_layer = Blob::new(
        INTOTO,
        serde_json::to_vec(&json!({"_type": "https://in-toto.io/Statement/v1", "seed": seed}))
            .unwrap(),
    );
    let att = Blob::new(
        media::OCI_MANIFEST,
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": INTOTO,
            "config": desc(EMPTY, &empty.bytes),
            "layers": [desc(INTOTO, &att_layer.bytes)],
            "subject": desc(media::OCI_INDEX, &index.bytes)
        }))
        .unwrap(),
    );

    let blobs = vec![
        index.clone(),
        manifest.clone(),
        config.clone(),
        layer1.clone(),
        layer2.clone(),
        sig.clone(),
        sig_config,
        sig_layer.clone(),
        sbom.clone(),
        empty.clone(),
        sbom_layer.clone(),
        sbom_sig.clone(),
        sbom_sig_layer,
        att.clone(),
        att_layer,
    ];
    let image_size: u64 = [&manifest, &config, &layer1, &layer2]
        .iter()
        .map(|b| b.bytes.len() as u64)
        .sum();
    let image = |tag: &str, root: &Blob, size: u64| TocImage {
        name: format!("{repo}:{tag}"),
        source: format!("{repo}:{tag}"),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        platforms: vec!["linux/amd64".to_string()],
        size,
        source_digest: None,
        note: None,
        docker: None,
        docker_skipped: Some("a test bundle has no Docker side".to_string()),
    };
    let artifact = |b: &Blob,
                    kind: ArtifactKind,
                    artifact_type: &str,
                    subject: &Blob,
                    found: ArtifactFound,
                    tag: Option<String>| TocArtifact {
        digest: b.digest.clone(),
        media_type: b.media_type.clone(),
        size: b.bytes.len() as u64,
        artifact_type: Some(artifact_type.to_string()),
        kind,
        subject: subject.digest.clone(),
        repository: repo.to_string(),
        found,
        tag,
    };
    let toc = Toc {
        format_version: FORMAT_VERSION,
        tool: "airlock test".to_string(),
        created: "2024-05-01T12:00:00Z".to_string(),
        docker_platform: "linux/amd64".to_string(),
        images: vec![
            image("12", &manifest, image_size),
            image("multi", &index, image_size + index.bytes.len() as u64),
        ],
        blobs: blobs
            .iter()
            .map(|b| TocBlob {
                digest: b.digest.clone(),
                size: b.bytes.len() as u64,
                media_type: b.media_type.clone(),
            })
            .collect(),
        base: None,
        artifacts: vec![
            artifact(
                &sig,
                ArtifactKind::Signature,
                media::OCI_CONFIG,
                &manifest,
                ArtifactFound::CosignTag,
                Some(sig_tag.clone()),
            ),
            artifact(
                &sbom,
                ArtifactKind::Sbom,
                SPDX,
                &manifest,
                ArtifactFound::ReferrersTag,
                None,
            ),
            artifact(
                &sbom_sig,
                ArtifactKind::Signature,
                "application/vnd.dev.sigstore.bundle.v0.3+json",
                &sbom,
                ArtifactFound::ReferrersTag,
                None,
            ),
            artifact(
                &att,
                ArtifactKind::Attestation,
                INTOTO,
                &index,
                ArtifactFound::ReferrersApi,
                None,
            ),
        ],
        compact: Vec::new(),
    };
    let entry = |root: &Blob, tag: &str| {
        let mut d = desc(&root.media_type, &root.bytes);
        d["annotations"] = json!({
            "io.containerd.image.name": format!("{repo}:{tag}"),
            "org.opencontainers.image.ref.name": tag,
        });
        d
    };
    let index_json = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX,
        "manifests": [entry(&manifest, "12"), entry(&index, "multi")]
    }))
    .unwrap();
    Fixture {
        repo: repo.to_string(),
        blobs,
        toc,
        index_json,
        manifest,
        index,
        sig,
        sig_layer,
        sig_tag,
        sbom,
        sbom_layer,
        sbom_sig,
        att,
        empty,
    }
}

/// Writes `toc` with the fixture's layout files and every blob but those in `skip`.
pub fn write_with(fx: &Fixture, toc: &Toc, path: &Path, skip: &[&Digest]) {
    let mut w = BundleWriter::create(path, WriteOptions::for_path(path)).unwrap();
    w.add_file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .unwrap();
    w.add_file(TOC_NAME, &serde_json::to_vec_pretty(toc).unwrap())
        .unwrap();
    w.add_file("index.json", &fx.index_json).unwrap();
    w.add_dir("blobs").unwrap();
    w.add_dir("blobs/sha256/").unwrap();
    for b in &fx.blobs {
        if skip.contains(&&b.digest) {
            continue;
        }
        w.add_blob(&b.digest, b.bytes.len() as u64, &mut &b.bytes[..])
            .unwrap();
    }
    w.finish().unwrap();
}

/// Writes the fixture as it is (every blob) to `path`.
pub fn write(fx: &Fixture, path: &Path) {
    write_with(fx, &fx.toc, path, &[]);
}
