//! The `--base` of a differential bundle: what the other side already has.
//!
//! A base is either an earlier airlock bundle (the one last carried across and
//! pushed) or an inventory of the target registry. Either is read into a [`BaseSet`]:
//! every config and layer digest the base vouches for, with where on the target it can
//! be found. For a bundle, that is the TOC's blobs (plus the blobs it left out itself,
//! if it was differential too) and, per blob, the names of the base's images that use
//! it, read from the base's manifests (small entries; no layer is read); the configs
//! and layers of its artifacts (signatures, attestations, SBOMs) count too, found in
//! the artifact's repository. For an inventory, the union of every repository's
//! blobs, with the repositories holding them (an inventory walks every tag, so
//! cosign's tags and referrers tag indexes bring their artifacts' blobs along).
//!
//! The kind is told from the content: JSON whose `format` is `airlock-inventory` is an
//! inventory; anything else is opened as a bundle (a split bundle's first part or parts
//! index included).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use super::Inventory;
use crate::bundle::graph::{read_graph, read_manifest};
use crate::bundle::toc::{TocBase, TocOmitted};
use crate::bundle::{Bundle, Finding, FindingKind};
use crate::digest::Digest;
use crate::oci::Parsed;
use crate::reference::Reference;

/// Where-to-find entries kept per blob (enough to find a repository to mount from).
pub(crate) const MAX_LOCATIONS: usize = 16;

/// `bundle` or `inventory`, as written in the TOC.
pub(crate) const KIND_BUNDLE: &str = "bundle";
pub(crate) const KIND_INVENTORY: &str = "inventory";

/// The blobs a base vouches for.
#[derive(Debug, Clone)]
pub(crate) struct BaseSet {
    /// [`KIND_BUNDLE`] or [`KIND_INVENTORY`].
    pub kind: &'static str,
    /// The base's file name, without its directory.
    pub file: String,
    pub created: Option<String>,
    pub tool: Option<String>,
    /// For an inventory: `host[:port][/prefix]` it describes.
    pub registry: Option<String>,
    /// Every config and layer digest, with where it is on the target: repositories
    /// (inventory) or the base bundle's image names (bundle).
    pub blobs: HashMap<Digest, Vec<String>>,
    /// What names this base exactly: the sha256 of a base bundle's `airlock.json`, or of
    /// the inventory file. A signed differential bundle's statement records it
    /// (`base_toc_sha256`), and `verify --base` compares it.
    pub identity: Digest,
}

impl BaseSet {
    /// Reads a bundle or an inventory; errors name the file and what to do.
    pub fn open(path: &Path) -> anyhow::Result<BaseSet> {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        if Inventory::is_inventory(path) {
            let inv = Inventory::load(path)?;
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read --base `{}`", path.display()))?;
            let mut blobs: HashMap<Digest, Vec<String>> = HashMap::new();
            for (digest, repos) in inv.blob_repositories() {
                blobs.insert(
                    digest.clone(),
                    repos
                        .into_iter()
                        .take(MAX_LOCATIONS)
                        .map(str::to_string)
                        .collect(),
                );
            }
            return Ok(BaseSet {
                kind: KIND_INVENTORY,
                file,
                created: Some(inv.created.clone()),
                tool: Some(inv.tool.clone()),
                registry: Some(inv.target()),
                blobs,
                identity: Digest::of(&bytes),
            });
        }
        let bundle = Bundle::open(path).with_context(|| {
            format!(
                "--base `{}` is neither an airlock bundle nor an `airlock inventory` file",
                path.display()
            )
        })?;
        Self::from_bundle(&bundle, file)
    }

    fn from_bundle(bundle: &Bundle, file: String) -> anyhow::Result<BaseSet> {
        let toc = bundle.toc();
        let mut blobs: HashMap<Digest, Vec<String>> = HashMap::new();
        for image in &toc.images {
            let graph = read_graph(bundle, image).with_context(|| {
                format!(
                    "cannot read `{}` from base bundle {}; run `airlock verify` on it",
                    image.name,
                    bundle.path().display()
                )
            })?;
            let repo = Reference::parse(&image.name)
                .map(|r| r.name())
                .unwrap_or_else(|_| image.name.clone());
            for b in &graph.blobs {
                if !(bundle.has_blob(&b.digest) || toc.is_omitted(&b.digest)) {
                    continue;
                }
                let names = blobs.entry(b.digest.clone()).or_default();
                // One name per source repository is enough to find it on the target.
                let same_repo = names.iter().any(|n| {
                    Reference::parse(n)
                        .map(|r| r.name() == repo)
                        .unwrap_or(false)
                });
                if !same_repo && names.len() < MAX_LOCATIONS {
                    names.push(image.name.clone());
                }
            }
        }
        // Artifacts' configs and layers: where the artifact was pushed, its repository.
        for (digest, repository) in artifact_blobs(bundle) {
            let names = blobs.entry(digest).or_default();
            if !names.contains(&repository) && names.len() < MAX_LOCATIONS {
                names.push(repository);
            }
        }
        // Blobs the TOC lists that no image reaches (should not happen) still count.
        for b in &toc.blobs {
            blobs.entry(b.digest.clone()).or_default();
        }
        Ok(BaseSet {
            kind: KIND_BUNDLE,
            file,
            created: Some(toc.created.clone()),
            tool: Some(toc.tool.clone()),
            registry: None,
            blobs,
            identity: bundle.toc_sha256().clone(),
        })
    }

    /// True when the base has `digest`.
    pub fn has(&self, digest: &Digest) -> bool {
        self.blobs.contains_key(digest)
    }

    /// Where the base says `digest` is (empty when unknown).
    pub(crate) fn locations(&self, digest: &Digest) -> &[String] {
        self.blobs.get(digest).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The TOC record of a bundle made against this base.
    pub(crate) fn toc_base(&self, omitted: Vec<TocOmitted>) -> TocBase {
        TocBase {
            kind: self.kind.to_string(),
            file: self.file.clone(),
            created: self.created.clone(),
            tool: self.tool.clone(),
            registry: self.registry.clone(),
            omitted,
        }
    }

    /// `base bundle last.tar.zst (2024-05-01T12:00:00Z)`.
    pub fn describe(&self) -> String {
        let mut s = format!("base {} {}", self.kind, self.file);
        if let Some(c) = &self.created {
            s.push_str(&format!(" ({c})"));
        }
        s
    }
}

/// The configs and layers of a bundle's artifacts (those it holds or leaves out), each
/// with the repository the artifact is in. An artifact whose manifest cannot be read is
/// skipped: `verify` reports it.
pub(crate) fn artifact_blobs(bundle: &Bundle) -> Vec<(Digest, String)> {
    let toc = bundle.toc();
    let mut out = Vec::new();
    for a in &toc.artifacts {
        let Ok(raw) = read_manifest(bundle, &a.digest, &a.media_type) else {
            continue;
        };
        let mut manifests = vec![raw];
        if let Ok(Parsed::Index(index)) = manifests[0].parse() {
            for c in &index.manifests {
                if let Ok(child) = read_manifest(bundle, &c.digest, &c.media_type) {
                    manifests.push(child);
                }
            }
        }
        for m in &manifests {
            if let Ok(Parsed::Manifest(m)) = m.parse() {
                for d in std::iter::once(m.config).chain(m.layers) {
                    if bundle.has_blob(&d.digest) || toc.is_omitted(&d.digest) {
                        out.push((d.digest, a.repository.clone()));
                    }
                }
            }
        }
    }
    out
}

/// `verify BUNDLE --base FILE`: one finding per blob the differential bundle leaves out
/// that `base` does not have, naming the images it breaks. A bundle that is not
/// differential has nothing to check.
pub(crate) fn check_bundle_against(bundle: &Bundle, base: &BaseSet) -> Vec<Finding> {
    let Some(toc_base) = &bundle.toc().base else {
        return Vec::new();
    };
    let lacking: Vec<&TocOmitted> = toc_base
        .omitted
        .iter()
        .filter(|o| !base.has(&o.digest))
        .collect();
    if lacking.is_empty() {
        return Vec::new();
    }
    // Which images need each lacking blob (from the manifests; no layer is read).
    let mut users: HashMap<&Digest, Vec<String>> = HashMap::new();
    for image in &bundle.toc().images {
        if let Ok(graph) = read_graph(bundle, image) {
            for b in &graph.blobs {
                if let Some(o) = lacking.iter().find(|o| o.digest == b.digest) {
                    users.entry(&o.digest).or_default().push(image.name.clone());
                }
            }
        }
    }
    let what = match base.kind {
        KIND_INVENTORY => format!(
            "inventory {}{}",
            base.file,
            base.registry
                .as_deref()
                .map(|r| format!(" of {r}"))
                .unwrap_or_default()
        ),
        _ => format!("bundle {}", base.file),
    };
    lacking
        .into_iter()
        .map(|o| {
            let message = format!(
                "blob {} ({}, {}) is left out of this differential bundle but the base {what} does not have it; \
                 the bundle was made against {} {}: push that one first, or save a full bundle",
                o.digest,
                o.media_type,
                crate::progress::human_bytes(o.size),
                toc_base.kind,
                toc_base.file
            );
            Finding::new(FindingKind::MissingFromBase, message)
                .with_digest(o.digest.clone())
                .with_images(users.remove(&o.digest).unwrap_or_default())
        })
        .collect()
}
