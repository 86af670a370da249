//! The image graph: which blobs each image reaches, and what is missing or wrong on the
//! way.
//!
//! The graph is walked from two sets of roots, the TOC's images and `index.json`'s
//! entries, down through indexes to manifests, configs and layers, after the scan, from
//! what it kept in memory, so the verdict does not depend on entry order. Each document
//! that feeds the walk has its own `check_*` step, run in this order and each returning
//! its findings: [`Graph::check_toc`] (`airlock.json`: its images are roots, its blobs
//! are there with their sizes, and nothing else is), [`Graph::check_index`]
//! (`index.json`: its entries are roots, and it names every TOC image) and
//! [`Graph::check_docker`] (`manifest.json`: every config and layer it names is there,
//! and each config has as many diff_ids as the entry has layers). What the walk itself
//! finds (a descriptor whose size is wrong, a manifest or index that does not parse,
//! indexes nested too deep) is collected as it goes and, with the blobs that are needed
//! but absent (each reported once, naming everything that needs it) and the media types
//! the TOC disagrees with, handed back by [`Graph::finish`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Finding, FindingKind, Seen};
use crate::bundle::blob_name_digest;
use crate::bundle::toc::{TOC_NAME, Toc};
use crate::digest::Digest;
use crate::oci::{
    self, Descriptor, DockerLoadEntry, ImageConfig, ImageIndex, ImageManifest, media,
};

/// How deep indexes may nest under an image before the walk stops.
const MAX_NESTING: usize = 16;

/// What the walk leaves once every document has fed it.
pub(super) struct Walked {
    /// For every blob reached, the image names that reach it.
    pub(super) reach: HashMap<Digest, BTreeSet<String>>,
    /// What the walk found wrong, then the media types the TOC disagrees with.
    pub(super) problems: Vec<Finding>,
    /// One finding per blob needed but absent.
    pub(super) missing: Vec<Finding>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A manifest or an index, from index.json or the TOC.
    Root,
    /// A child of an index.
    Child,
    Config,
    Layer,
}

/// Walks image graphs, recording which images reach which blobs and the problems on
/// the way (each reported once).
pub(super) struct Graph<'s> {
    seen: &'s Seen,
    reach: HashMap<Digest, BTreeSet<String>>,
    problems: Vec<Finding>,
    /// Blobs needed but absent: media type (if known) and who needs them.
    missing: BTreeMap<Digest, (String, Vec<String>)>,
    /// (parent, child) descriptors already checked.
    checked: HashSet<(String, Digest)>,
    /// Parsed children of manifests and indexes (None: unreadable).
    children: HashMap<Digest, Option<Vec<(Descriptor, Role)>>>,
    /// The media types each blob is described with, and the first place that does.
    /// One layer may be named with a Docker type by one manifest and an OCI type by
    /// another (same bytes), so the TOC's type must be *one of* these, checked after
    /// the whole graph is walked.
    described: BTreeMap<Digest, (BTreeSet<String>, String)>,
}

impl<'s> Graph<'s> {
    pub(super) fn new(seen: &'s Seen) -> Graph<'s> {
        Graph {
            seen,
            reach: HashMap::new(),
            problems: Vec::new(),
            missing: BTreeMap::new(),
            checked: HashSet::new(),
            children: HashMap::new(),
            described: BTreeMap::new(),
        }
    }

    /// `airlock.json`: it is there; each of its images is a root, and there; each of its
    /// blobs is there with its size; and every blob there is one of its blobs.
    pub(super) fn check_toc(&mut self, toc: Option<&Toc>) -> Vec<Finding> {
        let mut out = Vec::new();
        if !self.seen.meta.contains_key(TOC_NAME) {
            out.push(
                Finding::new(
                    FindingKind::MissingEntry,
                    "entry `airlock.json` (the table of contents) is missing",
                )
                .with_entry(TOC_NAME),
            );
        }
        let Some(toc) = toc else {
            return out;
        };
        for img in &toc.images {
            self.walk_root(&img.name, &img.digest, &img.media_type, "airlock.json");
            if !self.seen.blobs.contains_key(&img.digest) {
                out.push(
                    Finding::new(
                        FindingKind::MissingImage,
                        format!(
                            "image {} points to {}, which is not in the bundle",
                            img.name, img.digest
                        ),
                    )
                    .with_digest(img.digest.clone()),
                );
            }
        }
        // A compact layer is seen once its rebuild checked out (`compact`).
        let listed: HashSet<&Digest> = (toc.blobs.iter().map(|b| &b.digest))
            .chain(toc.compact.iter().map(|c| &c.digest))
            .collect();
        for b in &toc.blobs {
            match self.seen.blobs.get(&b.digest) {
                None => self.need(&b.digest, &b.media_type, "airlock.json"),
                Some(s) if s.size != b.size => out.push(Finding::blob(
                    FindingKind::SizeMismatch,
                    b.digest.clone(),
                    format!(
                        "blob {} is {} bytes but airlock.json says {}",
                        b.digest, s.size, b.size
                    ),
                )),
                Some(_) => {}
            }
        }
        let mut extra: Vec<&Digest> = self
            .seen
            .blobs
            .keys()
            .filter(|d| !listed.contains(d))
            .collect();
        extra.sort();
        for d in extra {
            out.push(Finding::blob(
                FindingKind::TocMismatch,
                d.clone(),
                format!("blob {d} is in the bundle but not listed in airlock.json"),
            ));
        }
        out
    }

    /// `index.json`: it is there and is an OCI index; each of its entries is a root
    /// (named by its annotations); and it has an entry for every TOC image.
    pub(super) fn check_index(&mut self, toc: Option<&Toc>) -> Vec<Finding> {
        let mut out = Vec::new();
        let index = match self.seen.meta.get("index.json") {
            None => {
                out.push(
                    Finding::new(
                        FindingKind::MissingEntry,
                        "entry `index.json` is missing, so OCI tools and containerd will not find the images",
                    )
                    .with_entry("index.json"),
                );
                return out;
            }
            Some(b) => match serde_json::from_slice::<ImageIndex>(b) {
                Ok(i) => i,
                Err(e) => {
                    out.push(
                        Finding::new(
                            FindingKind::InvalidJson,
                            format!("entry `index.json` is not a valid OCI index ({e})"),
                        )
                        .with_entry("index.json"),
                    );
                    return out;
                }
            },
        };
        for d in &index.manifests {
            let name = d
                .annotations
                .as_ref()
                .and_then(|a| {
                    a.get("io.containerd.image.name")
                        .or_else(|| a.get("org.opencontainers.image.ref.name"))
                })
                .cloned()
                .unwrap_or_else(|| d.digest.to_string());
            self.edge(&name, "index.json", d, Role::Root);
        }
        if let Some(toc) = toc {
            let in_index: HashSet<&Digest> = index.manifests.iter().map(|d| &d.digest).collect();
            for img in &toc.images {
                if !in_index.contains(&img.digest) {
                    out.push(
                        Finding::new(
                            FindingKind::TocMismatch,
                            format!(
                                "image {} ({}) has no entry in index.json",
                                img.name, img.digest
                            ),
                        )
                        .with_digest(img.digest.clone())
                        .with_entry("index.json"),
                    );
                }
            }
        }
        out
    }

    /// `manifest.json`: it is there when a TOC image has a Docker side, is a docker-save
    /// manifest, and each of its entries names blobs that are there
    /// ([`Graph::check_docker_blobs`]) and a config that fits its layers
    /// ([`Graph::check_docker_config`]).
    pub(super) fn check_docker(&mut self, toc: Option<&Toc>) -> Vec<Finding> {
        let needs_docker = toc.is_some_and(|t| t.images.iter().any(|i| i.docker.is_some()));
        let list = match self.seen.meta.get("manifest.json") {
            None if needs_docker => {
                return vec![
                    Finding::new(
                        FindingKind::MissingEntry,
                        "entry `manifest.json` is missing, so `docker load` will not work",
                    )
                    .with_entry("manifest.json"),
                ];
            }
            None => return Vec::new(),
            Some(b) => match serde_json::from_slice::<Vec<DockerLoadEntry>>(b) {
                Err(e) => {
                    return vec![
                        Finding::new(
                            FindingKind::InvalidJson,
                            format!("entry `manifest.json` is not a docker-save manifest ({e})"),
                        )
                        .with_entry("manifest.json"),
                    ];
                }
                Ok(list) => list,
            },
        };
        let mut out = Vec::new();
        for (i, de) in list.iter().enumerate() {
            let tags = de.repo_tags.clone().unwrap_or_default().join(", ");
            let what = format!("manifest.json entry {i} ({tags})");
            out.extend(self.check_docker_blobs(&what, de));
            out.extend(self.check_docker_config(&what, de));
        }
        out
    }

    /// The config and layers `manifest.json` entry `de` (`what`) names are there; a
    /// blob path that is not is needed, any other path is reported.
    fn check_docker_blobs(&mut self, what: &str, de: &DockerLoadEntry) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in std::iter::once(&de.config).chain(&de.layers) {
            if self.seen.files.contains(p.as_str()) {
                continue;
            }
            if let Some(d) = blob_name_digest(p) {
                self.need(&d, "", "manifest.json");
            } else {
                out.push(
                    Finding::new(
                        FindingKind::DockerManifest,
                        format!("{what} names `{p}`, which is not in the bundle"),
                    )
                    .with_entry("manifest.json"),
                );
            }
        }
        out
    }

    /// The config `manifest.json` entry `de` (`what`) names, when it is there, is an
    /// image config with a diff_id per layer of the entry.
    fn check_docker_config(&self, what: &str, de: &DockerLoadEntry) -> Vec<Finding> {
        let config = blob_name_digest(&de.config)
            .and_then(|d| self.seen.json.get(&d))
            .and_then(|b| serde_json::from_slice::<ImageConfig>(b).ok());
        match config {
            Some(c) => {
                let diff_ids = c.rootfs.map_or(0, |r| r.diff_ids.len());
                if diff_ids == de.layers.len() {
                    return Vec::new();
                }
                vec![
                    Finding::new(
                        FindingKind::DockerManifest,
                        format!(
                            "{what} lists {} layers but its config has {diff_ids} diff_ids; docker load would fail",
                            de.layers.len()
                        ),
                    )
                    .with_digest(blob_name_digest(&de.config))
                    .with_entry("manifest.json"),
                ]
            }
            None if self.seen.files.contains(de.config.as_str()) => vec![
                Finding::new(
                    FindingKind::DockerManifest,
                    format!(
                        "{what}: config `{}` is not a readable image config",
                        de.config
                    ),
                )
                .with_digest(blob_name_digest(&de.config))
                .with_entry("manifest.json"),
            ],
            None => Vec::new(),
        }
    }

    /// Ends the walk: what it found wrong, each blob the TOC gives a media type that no
    /// descriptor in the graph gives it (`toc_types`), and each blob needed but absent,
    /// except a TOC image's root (reported once, as [`FindingKind::MissingImage`]) and,
    /// in a differential bundle, what it leaves out for its base to hold.
    pub(super) fn finish(self, toc: Option<&Toc>, toc_types: &HashMap<Digest, String>) -> Walked {
        let Graph {
            seen,
            reach,
            mut problems,
            mut missing,
            described,
            ..
        } = self;
        // A missing image root is reported once, as MissingImage.
        let roots_missing: HashSet<&Digest> = toc
            .into_iter()
            .flat_map(|t| &t.images)
            .map(|i| &i.digest)
            .filter(|d| !seen.blobs.contains_key(d))
            .collect();
        missing.retain(|d, _| !roots_missing.contains(d));
        // A differential bundle leaves out configs and layers its base has (the TOC's
        // `base.omitted`); only `manifest.json` must never name one.
        if let Some(base) = toc.and_then(|t| t.base.as_ref()) {
            let omitted: HashSet<&Digest> = base.omitted.iter().map(|o| &o.digest).collect();
            missing.retain(|d, (_, by)| {
                !omitted.contains(d) || by.iter().any(|p| p == "manifest.json")
            });
        }
        for (digest, (types, first)) in described {
            let Some(toc_type) = toc_types.get(&digest) else {
                continue;
            };
            if !types.contains(toc_type) {
                let named: Vec<&str> = types.iter().map(String::as_str).collect();
                let message = format!(
                    "blob {digest} has media type `{toc_type}` in airlock.json but `{}` in {first}",
                    named.join("` or `")
                );
                problems.push(Finding::blob(FindingKind::TocMismatch, digest, message));
            }
        }
        let missing = missing
            .into_iter()
            .map(|(digest, (media_type, needed_by))| {
                let what = if media_type.is_empty() {
                    String::new()
                } else {
                    format!(" ({media_type})")
                };
                let message = format!(
                    "blob {digest}{what} is not in the bundle; needed by {}",
                    needed_by.join(", ")
                );
                Finding::blob(FindingKind::MissingBlob, digest, message)
            })
            .collect();
        Walked {
            reach,
            problems,
            missing,
        }
    }
}

impl Graph<'_> {
    fn walk_root(&mut self, image: &str, digest: &Digest, media_type: &str, parent: &str) {
        let size = self.seen.blobs.get(digest).map_or(0, |b| b.size);
        let d = Descriptor::new(media_type, digest.clone(), size);
        self.edge(image, parent, &d, Role::Root);
    }

    fn edge(&mut self, image: &str, parent: &str, d: &Descriptor, role: Role) {
        self.edge_at(image, parent, d, role, 0);
    }

    /// Indexes nest a level or two in practice; a crafted chain of thousands would
    /// otherwise recurse until the stack overflows.
    fn edge_at(&mut self, image: &str, parent: &str, d: &Descriptor, role: Role, depth: usize) {
        if depth > MAX_NESTING {
            self.problems.push(Finding::blob(
                FindingKind::InvalidJson,
                d.digest.clone(),
                format!(
                    "{parent} nests indexes deeper than {MAX_NESTING} levels; {} and what it \
                     names were not checked",
                    d.digest
                ),
            ));
            return;
        }
        let newly = self
            .reach
            .entry(d.digest.clone())
            .or_default()
            .insert(image.to_string());
        if self.checked.insert((parent.to_string(), d.digest.clone())) {
            self.check_descriptor(parent, d);
        }
        if !newly || matches!(role, Role::Config | Role::Layer) {
            return;
        }
        let children = self.children_of(d).unwrap_or_default();
        let kind = if children.iter().any(|(_, r)| *r == Role::Config) {
            "manifest"
        } else {
            "index"
        };
        let label = format!("{kind} {}", d.digest);
        for (child, role) in children {
            self.edge_at(image, &label, &child, role, depth + 1);
        }
    }

    fn check_descriptor(&mut self, parent: &str, d: &Descriptor) {
        let foreign = d.urls.is_some()
            || d.media_type.contains("foreign")
            || d.media_type.contains("nondistributable");
        match self.seen.blobs.get(&d.digest) {
            None if foreign => {}
            None => self.need(&d.digest, &d.media_type, parent),
            Some(b) if b.size == d.size && parent != "airlock.json" => {
                let entry = self
                    .described
                    .entry(d.digest.clone())
                    .or_insert_with(|| (BTreeSet::new(), parent.to_string()));
                entry.0.insert(d.media_type.clone());
            }
            Some(b) if b.size != d.size && parent != "airlock.json" => {
                self.problems.push(Finding::blob(
                    FindingKind::SizeMismatch,
                    d.digest.clone(),
                    format!(
                        "blob {} is {} bytes but {parent} describes it as {}",
                        d.digest, b.size, d.size
                    ),
                ))
            }
            Some(_) => {}
        }
    }

    /// Records that `parent` needs blob `digest`, which is not in the bundle.
    fn need(&mut self, digest: &Digest, media_type: &str, parent: &str) {
        let (mt, by) = self.missing.entry(digest.clone()).or_default();
        if mt.is_empty() {
            *mt = media_type.to_string();
        }
        if !by.iter().any(|p| p == parent) {
            by.push(parent.to_string());
        }
    }

    /// The descriptors a manifest or index points to.
    fn children_of(&mut self, d: &Descriptor) -> Option<Vec<(Descriptor, Role)>> {
        if let Some(c) = self.children.get(&d.digest) {
            return c.clone();
        }
        let parsed = self.parse(d);
        self.children.insert(d.digest.clone(), parsed.clone());
        parsed
    }

    fn parse(&mut self, d: &Descriptor) -> Option<Vec<(Descriptor, Role)>> {
        self.seen.blobs.get(&d.digest)?;
        let problem = |this: &mut Self, why: String| {
            this.problems.push(Finding::blob(
                FindingKind::InvalidJson,
                d.digest.clone(),
                format!("blob {} {why}", d.digest),
            ));
            None
        };
        let Some(bytes) = self.seen.json.get(&d.digest) else {
            return problem(
                self,
                "should be a manifest or index but is not a JSON document".to_string(),
            );
        };
        let mt = oci::sniff_media_type(bytes).unwrap_or_else(|| d.media_type.clone());
        if media::is_index(&mt) {
            match serde_json::from_slice::<ImageIndex>(bytes) {
                Ok(i) => Some(i.manifests.into_iter().map(|m| (m, Role::Child)).collect()),
                Err(e) => problem(self, format!("is not a valid image index ({e})")),
            }
        } else if media::is_manifest(&mt) {
            match serde_json::from_slice::<ImageManifest>(bytes) {
                Ok(m) => Some(
                    std::iter::once((m.config, Role::Config))
                        .chain(m.layers.into_iter().map(|l| (l, Role::Layer)))
                        .collect(),
                ),
                Err(e) => problem(self, format!("is not a valid image manifest ({e})")),
            }
        } else {
            // An artifact or unknown type: nothing airlock can walk, not an error.
            Some(Vec::new())
        }
    }
}
