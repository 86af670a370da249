//! Walking each image's graph (index → manifests → config and layers) into a plan.
//!
//! The walk fetches every small object (child manifests, configs), verifies each
//! against the descriptor that named it, and stores it in the staging directory; it
//! only *lists* layers, which the fetch stage streams later. The result is everything
//! the bundle's first entries need (TOC, `index.json`, `manifest.json`), so those can
//! be written before any layer byte is read.
//!
//! Each manifest and index saved is recorded as a subject; [`super::referrers`] then
//! finds what refers to them. BuildKit's attestation manifests inside an index are
//! carried as artifacts (recorded, blobs listed), not walked as images.
//!
//! Platform filtering happens here: with `--platform`, an index keeps only matching
//! children. One remaining child makes the name point at that child's manifest (a
//! digest the source also serves); several make a new index, whose digest is new. Both
//! cases record the source's digest and say why they differ. An attestation entry is
//! kept when the manifest it refers to is (and referrers are wanted); the choice between
//! one manifest and a new index counts image entries only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context, bail};

use super::referrers::{self, WalkedArtifact, attestation_subject};
use super::staging::Staging;
use crate::bundle::toc::ArtifactFound;
use crate::digest::{Digest, read_verified};
use crate::oci::{
    Descriptor, ImageConfig, ImageIndex, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, Parsed, Platform,
    RawManifest, media,
};
use crate::settings::Wanted;
use crate::source::{BlobStore, SourceImage};

/// An image manifest reached from a name, with what Docker needs to load it.
#[derive(Debug, Clone)]
pub(crate) struct PlannedManifest {
    pub digest: Digest,
    pub platform: Option<Platform>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// `rootfs.diff_ids` count of the config, when it has one (Docker needs it equal to the layer count).
    pub diff_ids: Option<usize>,
}

/// Everything about one source image once walked.
pub(crate) struct WalkedImage {
    /// The root the names point at in the bundle (the source's, or a filtered one).
    pub root: Descriptor,
    /// The source's root digest when `root` differs from it.
    pub source_digest: Option<Digest>,
    pub note: Option<String>,
    pub manifests: Vec<PlannedManifest>,
    /// Indexes, manifests and configs reached (stored in staging), with media types and sizes.
    pub small: Vec<Descriptor>,
    /// Layers reached (not fetched yet).
    pub layers: Vec<Descriptor>,
    pub store: Arc<dyn BlobStore>,
    /// Manifests and indexes saved as the source serves them (not artifacts, not a
    /// filtered index): what referrers are looked for.
    pub subjects: Vec<Digest>,
    /// Signatures, attestations, SBOMs carried (manifests in `small`, blobs in `layers`).
    pub artifacts: Vec<WalkedArtifact>,
    /// `registry/repository` of the image's first name, for the TOC's artifacts.
    pub repository: String,
}

impl WalkedImage {
    /// Every blob digest this image reaches, for sizes and for naming affected images.
    pub fn blob_digests(&self) -> BTreeSet<&Digest> {
        self.small
            .iter()
            .chain(&self.layers)
            .map(|d| &d.digest)
            .collect()
    }
    pub fn platforms(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .manifests
            .iter()
            .filter_map(|m| m.platform.as_ref())
            .map(|p| p.to_string())
            .collect();
        v.dedup();
        v
    }
}

pub(crate) struct Walker<'a> {
    pub staging: &'a Staging,
    pub platforms: Option<&'a [Platform]>,
    /// `None` with `--no-referrers`.
    pub referrers: Option<&'a Wanted>,
}

impl Walker<'_> {
    /// Walks one source image. Errors name the image and the object that failed.
    pub(crate) fn walk(&self, image: &SourceImage) -> anyhow::Result<WalkedImage> {
        let root = &image.root;
        let mut out = WalkedImage {
            root: Descriptor::new(
                &root.media_type,
                root.digest.clone(),
                root.bytes.len() as u64,
            ),
            source_digest: None,
            note: image.note.clone(),
            manifests: Vec::new(),
            small: Vec::new(),
            layers: Vec::new(),
            store: Arc::clone(&image.store),
            subjects: Vec::new(),
            artifacts: Vec::new(),
            repository: image
                .names
                .first()
                .map(|n| format!("{}/{}", n.registry(), n.repository()))
                .unwrap_or_default(),
        };
        if root.bytes.len() as u64 > MAX_MANIFEST_SIZE {
            bail!(
                "the manifest of {} is {} bytes, over the {MAX_MANIFEST_SIZE}-byte limit",
                image.input,
                root.bytes.len()
            );
        }
        match root.parse()? {
            Parsed::Manifest(_) => {
                self.stage(&mut out, root)?;
                out.subjects.push(root.digest.clone());
                self.walk_manifest(&mut out, root, None)?;
            }
            Parsed::Index(index) => {
                let kept = self.walk_index(&mut out, root, &index, 0)?;
                if let Some(new_root) = kept {
                    out.source_digest = Some(root.digest.clone());
                    out.root = new_root;
                    let why = self.filter_note(&index, &out);
                    out.note = Some(match out.note.take() {
                        Some(n) => format!("{n}; {why}"),
                        None => why,
                    });
                }
            }
        }
        if let Some(wanted) = self.referrers {
            referrers::discover(self, &mut out, wanted)?;
        }
        dedup_by_digest(&mut out.small);
        dedup_by_digest(&mut out.layers);
        Ok(out)
    }

    /// The requested platforms, for messages: `linux/amd64,linux/arm64`.
    fn wanted(&self) -> String {
        let wanted: Vec<String> = self
            .platforms
            .unwrap_or_default()
            .iter()
            .map(|p| p.to_string())
            .collect();
        wanted.join(",")
    }

    /// Why a filtered image's root differs from the source's; `out.root` is the new root.
    fn filter_note(&self, index: &ImageIndex, out: &WalkedImage) -> String {
        let wanted = self.wanted();
        if media::is_index(&out.root.media_type) {
            format!(
                "--platform {} kept {} of the source index's {} entries in a new index; its digest differs from the source's",
                wanted,
                // Image manifests and the in-index attestations kept with them.
                out.manifests.len() + out.artifacts.len(),
                index.manifests.len()
            )
        } else {
            format!(
                "--platform {} kept one platform of the source index's {} entries; the name points at that platform's manifest, not the source's index",
                wanted,
                index.manifests.len()
            )
        }
    }

    /// Walks an index. Returns `Some(new root)` when platform filtering changed it.
    fn walk_index(
        &self,
        out: &mut WalkedImage,
        raw: &RawManifest,
        index: &ImageIndex,
        depth: usize,
    ) -> anyhow::Result<Option<Descriptor>> {
        if depth > 4 {
            bail!("index {} nests deeper than 4 levels", raw.digest);
        }
        let keep = |d: &Descriptor| match (self.platforms, &d.platform) {
            (None, _) => true,
            (Some(_), None) => media::is_index(&d.media_type),
            (Some(wanted), Some(p)) => wanted.iter().any(|w| p.satisfies(w)),
        };
        let kept: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|d| attestation_subject(d).is_none() && keep(d))
            .collect();
        // An attestation follows its subject; once the index is rewritten, only when
        // referrers are wanted (the whole index keeps all of its entries).
        let attestations: Vec<(&Descriptor, Digest)> = index
            .manifests
            .iter()
            .filter_map(|d| attestation_subject(d).map(|s| (d, s)))
            .filter(|(_, s)| {
                self.platforms.is_none()
                    || (self.referrers.is_some() && kept.iter().any(|k| &k.digest == s))
            })
            .collect();
        if kept.is_empty() {
            let have: Vec<String> = index
                .manifests
                .iter()
                .filter(|d| attestation_subject(d).is_none())
                .filter_map(|d| d.platform.as_ref())
                .map(|p| p.to_string())
                .collect();
            bail!(
                "index {} has no manifest for {} (it has: {})",
                raw.digest,
                self.wanted(),
                have.join(", ")
            );
        }
        for child in &kept {
            let bytes = out.store.manifest(child).with_context(|| {
                format!(
                    "cannot fetch manifest {} listed in index {}",
                    child.digest, raw.digest
                )
            })?;
            check_descriptor(child, &bytes)?;
            let bytes = RawManifest {
                media_type: child.media_type.clone(),
                ..bytes
            };
            self.stage(out, &bytes)?;
            out.subjects.push(bytes.digest.clone());
            match bytes.parse() {
                Ok(Parsed::Manifest(_)) => {
                    self.walk_manifest(out, &bytes, child.platform.clone())?
                }
                Ok(Parsed::Index(nested)) => {
                    if self.walk_index(out, &bytes, &nested, depth + 1)?.is_some() {
                        bail!(
                            "index {} holds a nested index {}; --platform cannot filter nested indexes",
                            raw.digest,
                            child.digest
                        );
                    }
                }
                // An artifact (signature, attestation) listed in an index: stored, not walked.
                Err(_) => {}
            }
        }
        let whole = kept.len() + attestations.len() == index.manifests.len();
        for (att, subject) in &attestations {
            let bytes = out.store.manifest(att).with_context(|| {
                format!(
                    "cannot fetch attestation manifest {} listed in index {}",
                    att.digest, raw.digest
                )
            })?;
            check_descriptor(att, &bytes)?;
            let bytes = RawManifest {
                media_type: att.media_type.clone(),
                ..bytes
            };
            // Part of the index when it is kept whole: carried whatever the type filter.
            let wanted = if whole { None } else { self.referrers };
            let via = referrers::Via {
                subject: subject.clone(),
                found: ArtifactFound::InIndex,
                tag: None,
                listed_type: att.artifact_type.as_deref(),
            };
            referrers::carry(self, out, &bytes, via, wanted)?;
        }
        if whole {
            self.stage(out, raw)?;
            out.subjects.push(raw.digest.clone());
            return Ok(None);
        }
        if let [only] = kept.as_slice()
            && media::is_manifest(&only.media_type)
        {
            return Ok(Some((*only).clone()));
        }
        let carried: BTreeSet<&Digest> = out.artifacts.iter().map(|a| &a.desc.digest).collect();
        let filtered = ImageIndex {
            schema_version: 2,
            media_type: index.media_type.clone(),
            manifests: index
                .manifests
                .iter()
                .filter(|d| {
                    kept.iter().any(|k| k.digest == d.digest) || carried.contains(&d.digest)
                })
                .cloned()
                .collect(),
            annotations: index.annotations.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&filtered)?;
        let new = RawManifest::new(bytes, Some(&raw.media_type));
        self.stage(out, &new)?;
        Ok(Some(Descriptor::new(
            &new.media_type,
            new.digest.clone(),
            new.bytes.len() as u64,
        )))
    }

    fn walk_manifest(
        &self,
        out: &mut WalkedImage,
        raw: &RawManifest,
        platform: Option<Platform>,
    ) -> anyhow::Result<()> {
        let Parsed::Manifest(m) = raw.parse()? else {
            unreachable!("caller checked")
        };
        let reader = out.store.blob(&m.config).with_context(|| {
            format!(
                "cannot fetch config {} of manifest {}",
                m.config.digest, raw.digest
            )
        })?;
        let config = read_verified(reader, &m.config.digest, m.config.size, MAX_CONFIG_SIZE)
            .with_context(|| {
                format!(
                    "config {} of manifest {} is damaged",
                    m.config.digest, raw.digest
                )
            })?;
        self.staging.put(&m.config.digest, &config)?;
        out.small.push(m.config.clone());
        // Artifacts have configs that are not image configs; they simply have no platform.
        let parsed: Option<ImageConfig> = serde_json::from_slice(&config).ok();
        let platform = platform.or_else(|| {
            parsed
                .as_ref()
                .filter(|c| !c.os.is_empty())
                .map(ImageConfig::platform)
        });
        let diff_ids = parsed
            .as_ref()
            .and_then(|c| c.rootfs.as_ref())
            .map(|r| r.diff_ids.len());
        out.layers.extend(m.layers.iter().cloned());
        out.manifests.push(PlannedManifest {
            digest: raw.digest.clone(),
            platform,
            config: m.config,
            layers: m.layers,
            diff_ids,
        });
        Ok(())
    }

    pub(crate) fn stage(&self, out: &mut WalkedImage, raw: &RawManifest) -> anyhow::Result<()> {
        self.staging.put(&raw.digest, &raw.bytes)?;
        out.small.push(Descriptor::new(
            &raw.media_type,
            raw.digest.clone(),
            raw.bytes.len() as u64,
        ));
        Ok(())
    }
}

/// A fetched manifest must be exactly what its descriptor names.
pub(crate) fn check_descriptor(desc: &Descriptor, got: &RawManifest) -> anyhow::Result<()> {
    if got.digest != desc.digest {
        bail!(
            "manifest {} was served with content whose digest is {}",
            desc.digest,
            got.digest
        );
    }
    if got.bytes.len() as u64 != desc.size {
        bail!(
            "manifest {} is {} bytes, its descriptor says {}",
            desc.digest,
            got.bytes.len(),
            desc.size
        );
    }
    Ok(())
}

fn dedup_by_digest(v: &mut Vec<Descriptor>) {
    let mut seen = BTreeMap::new();
    v.retain(|d| seen.insert(d.digest.clone(), ()).is_none());
}
