//! The layout's own documents: `oci-layout`, and `index.json`, `manifest.json` and
//! `repositories` against the TOC.
//!
//! `index.json` must have exactly the TOC's images, in order, with their digests, media
//! types, sizes, names and tags, and no field airlock never writes; `manifest.json` and
//! `repositories` must hold exactly the Docker side the TOC describes; and each image's
//! media type must be its root blob's. In a plain `.tar` these documents are not hashed
//! anywhere, so this is what catches a damaged byte in them. (The TOC itself carries a
//! checksum.) Each document has its own `check_*` step returning its findings; the
//! findings come out in the order the steps run. Whether the blobs these documents name
//! are there is the image graph's business (`graph`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Finding, FindingKind, Seen};
use crate::bundle::toc::{TOC_NAME, Toc, TocImage};
use crate::oci::{self, Descriptor, DockerLoadEntry, ImageIndex, ImageManifest, media};
use crate::reference::Reference;

/// `oci-layout` must be there and be `{"imageLayoutVersion":"1.0.0"}`.
pub(super) fn check_layout(seen: &Seen) -> Vec<Finding> {
    let Some(b) = seen.meta.get("oci-layout") else {
        return vec![
            Finding::new(
                FindingKind::MissingEntry,
                "entry `oci-layout` is missing, so OCI tools will not read the bundle",
            )
            .with_entry("oci-layout"),
        ];
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    match serde_json::from_slice::<Layout>(b) {
        Ok(l) if l.image_layout_version == "1.0.0" => Vec::new(),
        _ => vec![
            Finding::new(
                FindingKind::InvalidJson,
                "entry `oci-layout` is not {\"imageLayoutVersion\":\"1.0.0\"}",
            )
            .with_entry("oci-layout"),
        ],
    }
}

/// Checks the layout's own documents against the TOC (see the module documentation).
pub(super) fn check_docs(toc: &Toc, seen: &Seen) -> Vec<Finding> {
    let refs: Vec<Option<Reference>> = toc
        .images
        .iter()
        .map(|i| Reference::parse(&i.name).ok())
        .collect();
    let mut out = check_image_types(toc, seen);
    out.extend(check_image_names(toc, &refs));
    out.extend(check_index(toc, &refs, seen));
    out.extend(check_index_keys(seen));
    out.extend(check_docker_manifest(toc, &refs, seen));
    out.extend(check_repositories(toc, &refs, seen));
    out
}

/// Each image's media type in the TOC is the one its root blob declares.
fn check_image_types(toc: &Toc, seen: &Seen) -> Vec<Finding> {
    let mut out = Vec::new();
    for img in &toc.images {
        let sniffed = seen
            .json
            .get(&img.digest)
            .and_then(|b| oci::sniff_media_type(b));
        if let Some(mt) = sniffed
            && mt != img.media_type
        {
            out.push(
                Finding::new(
                    FindingKind::TocMismatch,
                    format!(
                        "image {} is `{}` in airlock.json but its manifest {} says `{mt}`",
                        img.name, img.media_type, img.digest
                    ),
                )
                .with_digest(img.digest.clone())
                .with_entry(TOC_NAME),
            );
        }
    }
    out
}

/// Each image's name in the TOC is a valid reference (`refs` holds them parsed).
fn check_image_names(toc: &Toc, refs: &[Option<Reference>]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (img, r) in toc.images.iter().zip(refs) {
        if r.is_none() {
            out.push(
                Finding::new(
                    FindingKind::TocMismatch,
                    format!(
                        "image name `{}` in airlock.json is not a valid reference",
                        img.name
                    ),
                )
                .with_digest(img.digest.clone())
                .with_entry(TOC_NAME),
            );
        }
    }
    out
}

/// `index.json` (when it parses; the graph reports it otherwise) is an OCI index
/// listing the TOC's images, entry by entry.
fn check_index(toc: &Toc, refs: &[Option<Reference>], seen: &Seen) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(index) = seen
        .meta
        .get("index.json")
        .and_then(|b| serde_json::from_slice::<ImageIndex>(b).ok())
    else {
        return out;
    };
    if index.schema_version != 2 || index.media_type.as_deref() != Some(media::OCI_INDEX) {
        out.push(
            Finding::new(
                FindingKind::InvalidJson,
                format!(
                    "index.json has schemaVersion {} and mediaType {:?}, not 2 and `{}`",
                    index.schema_version,
                    index.media_type,
                    media::OCI_INDEX
                ),
            )
            .with_entry("index.json"),
        );
    }
    if index.manifests.len() != toc.images.len() {
        out.push(
            Finding::new(
                FindingKind::TocMismatch,
                format!(
                    "index.json lists {} images but airlock.json {}",
                    index.manifests.len(),
                    toc.images.len()
                ),
            )
            .with_entry("index.json"),
        );
    }
    for (i, (d, (img, r))) in index
        .manifests
        .iter()
        .zip(toc.images.iter().zip(refs))
        .enumerate()
    {
        let wrong = index_entry_problems(d, img, r.as_ref());
        if !wrong.is_empty() {
            out.push(
                Finding::new(
                    FindingKind::TocMismatch,
                    format!(
                        "index.json entry {i} does not match image {} of airlock.json: {}",
                        img.name,
                        wrong.join(", ")
                    ),
                )
                .with_digest(img.digest.clone())
                .with_entry("index.json"),
            );
        }
    }
    out
}

/// What in `index.json` entry `d` differs from TOC image `img` (named `r`).
fn index_entry_problems(d: &Descriptor, img: &TocImage, r: Option<&Reference>) -> Vec<String> {
    let mut wrong = Vec::new();
    if d.digest != img.digest {
        wrong.push(format!(
            "digest {} (airlock.json: {})",
            d.digest, img.digest
        ));
    }
    if d.media_type != img.media_type {
        wrong.push(format!("media type `{}`", d.media_type));
    }
    let ann = d.annotations.clone().unwrap_or_default();
    if ann.get("io.containerd.image.name") != Some(&img.name) {
        wrong.push(format!("name {:?}", ann.get("io.containerd.image.name")));
    }
    if let Some(r) = r
        && ann
            .get("org.opencontainers.image.ref.name")
            .map(String::as_str)
            != r.tag()
    {
        wrong.push(format!(
            "tag {:?}",
            ann.get("org.opencontainers.image.ref.name")
        ));
    }
    // The platform is optional (a manifest whose config names none has none), but
    // when present it is the image's.
    if let Some(p) = &d.platform
        && !(media::is_manifest(&img.media_type) && img.platforms.first() == Some(&p.to_string()))
    {
        wrong.push(format!("platform {p} (airlock.json: {:?})", img.platforms));
    }
    wrong
}

const INDEX_KEYS: &[&str] = &["schemaVersion", "mediaType", "manifests", "annotations"];
const DESCRIPTOR_KEYS: &[&str] = &[
    "mediaType",
    "digest",
    "size",
    "platform",
    "annotations",
    "urls",
    "artifactType",
];
const PLATFORM_KEYS: &[&str] = &["architecture", "os", "variant", "os.version", "os.features"];

/// Unknown keys in index.json: airlock writes none, and a damaged key name would
/// otherwise make an optional field (`platform`, `annotations`) silently disappear.
fn check_index_keys(seen: &Seen) -> Vec<Finding> {
    let Some(doc) = seen
        .meta
        .get("index.json")
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
    else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    unknown_keys(&doc, INDEX_KEYS, "", &mut unknown);
    for (i, d) in doc["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("manifests[{i}].");
        unknown_keys(d, DESCRIPTOR_KEYS, &at, &mut unknown);
        unknown_keys(
            &d["platform"],
            PLATFORM_KEYS,
            &format!("{at}platform."),
            &mut unknown,
        );
    }
    if unknown.is_empty() {
        return Vec::new();
    }
    vec![
        Finding::new(
            FindingKind::InvalidJson,
            format!(
                "index.json has fields airlock never writes ({}); the bundle is damaged",
                unknown.join(", ")
            ),
        )
        .with_entry("index.json"),
    ]
}

/// Adds `prefix` + every key of the object `v` (if it is one) that is not in `known`.
fn unknown_keys(v: &serde_json::Value, known: &[&str], prefix: &str, out: &mut Vec<String>) {
    if let Some(map) = v.as_object() {
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                out.push(format!("`{prefix}{k}`"));
            }
        }
    }
}

/// The images with a Docker side (and a valid name), each with the `manifest.json`
/// entry the TOC makes it expect and whether the bundle holds its Docker manifest (so
/// that the entry's layers are known).
fn docker_expected<'t>(
    toc: &'t Toc,
    refs: &[Option<Reference>],
    seen: &Seen,
) -> Vec<(&'t TocImage, DockerLoadEntry, bool)> {
    let mut expected = Vec::new();
    for (img, r) in toc.images.iter().zip(refs) {
        let (Some(docker), Some(r)) = (&img.docker, r) else {
            continue;
        };
        let layers = seen
            .json
            .get(&docker.manifest)
            .and_then(|b| serde_json::from_slice::<ImageManifest>(b).ok())
            .map(|m| {
                m.layers
                    .iter()
                    .map(|l| toc.stored_path(&l.digest))
                    .collect()
            });
        expected.push((
            img,
            DockerLoadEntry {
                config: docker.config.blob_path(),
                repo_tags: r.tag().map(|_| vec![r.familiar()]),
                layers: layers.unwrap_or_default(),
            },
            seen.json.contains_key(&docker.manifest),
        ));
    }
    expected
}

/// `manifest.json` (when it parses; the graph reports it otherwise) has one entry per
/// image with a Docker side, in order, with its config, tags and layers.
fn check_docker_manifest(toc: &Toc, refs: &[Option<Reference>], seen: &Seen) -> Vec<Finding> {
    let mut out = Vec::new();
    let expected = docker_expected(toc, refs, seen);
    let Some(list) = seen
        .meta
        .get("manifest.json")
        .and_then(|b| serde_json::from_slice::<Vec<DockerLoadEntry>>(b).ok())
    else {
        return out;
    };
    if list.len() != expected.len() {
        out.push(
            Finding::new(
                FindingKind::DockerManifest,
                format!(
                    "manifest.json has {} entries but airlock.json describes {}",
                    list.len(),
                    expected.len()
                ),
            )
            .with_entry("manifest.json"),
        );
    }
    for (i, (got, (img, want, know_layers))) in list.iter().zip(&expected).enumerate() {
        let same = got.config == want.config
            && got.repo_tags == want.repo_tags
            && (!know_layers || got.layers == want.layers);
        if !same {
            out.push(
                Finding::new(
                    FindingKind::DockerManifest,
                    format!(
                        "manifest.json entry {i} ({}) does not match image {} of airlock.json \
                     (config {}, tags {:?})",
                        got.repo_tags.clone().unwrap_or_default().join(", "),
                        img.name,
                        want.config,
                        want.repo_tags
                    ),
                )
                .with_digest(img.docker.as_ref().map(|d| d.manifest.clone()))
                .with_entry("manifest.json"),
            );
        }
    }
    out
}

/// The tags the TOC gives each repository (familiar name), with the config (hex) each
/// tag names: what a docker-save `repositories` file may hold.
fn docker_repositories(
    toc: &Toc,
    refs: &[Option<Reference>],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (img, r) in toc.images.iter().zip(refs) {
        let (Some(docker), Some(r)) = (&img.docker, r) else {
            continue;
        };
        if let Some(tag) = r.tag() {
            repositories
                .entry(r.familiar_name())
                .or_default()
                .insert(tag.to_string(), docker.config.hex().to_string());
        }
    }
    repositories
}

/// `repositories` is legacy and ignored by modern Docker: every tag it has must be one
/// the TOC gives that config, but it may have fewer.
fn check_repositories(toc: &Toc, refs: &[Option<Reference>], seen: &Seen) -> Vec<Finding> {
    let Some(b) = seen.meta.get("repositories") else {
        return Vec::new();
    };
    let repositories = docker_repositories(toc, refs);
    match serde_json::from_slice::<BTreeMap<String, BTreeMap<String, String>>>(b) {
        Ok(got)
            if got.iter().all(|(repo, tags)| {
                tags.iter().all(|(tag, config)| {
                    repositories.get(repo).and_then(|t| t.get(tag)) == Some(config)
                })
            }) =>
        {
            Vec::new()
        }
        Ok(_) => vec![
            Finding::new(
                FindingKind::DockerManifest,
                "entry `repositories` does not match the tags and configs of airlock.json",
            )
            .with_entry("repositories"),
        ],
        Err(e) => vec![
            Finding::new(
                FindingKind::InvalidJson,
                format!("entry `repositories` is not a docker-save tag map ({e})"),
            )
            .with_entry("repositories"),
        ],
    }
}
