//! `airlock inventory`: walk a registry's repositories under a prefix into an
//! [`Inventory`].
//!
//! The catalog (`GET /v2/_catalog`, paginated) names the repositories; each one under
//! the prefix is read on a pool of `--jobs` threads: its tags (`tags/list`), the
//! manifest or index each tag points at, every child of those indexes (by digest),
//! and the configs and layers the image manifests reference; on a registry with the
//! OCI 1.1 referrers API, also every referrer of each manifest (signatures, SBOMs
//! pushed without a tag), so their blobs count as the target's too (a registry
//! without it is asked once: the client remembers; cosign's tags and referrers tag
//! indexes are tags, walked like any other). Manifests are small and
//! content-addressed, so what one repository taught about a digest (its children and
//! blobs) is remembered and not fetched again for the next repository; memory holds
//! digests only. A repository that cannot be read fails the inventory, naming every
//! such repository: an inventory that silently lacks one would make `save --base`
//! keep blobs needlessly at best.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow, bail};
use rayon::prelude::*;
use serde::Serialize;

use super::{INVENTORY_FORMAT, INVENTORY_VERSION, Inventory, InventoryRepository};
use crate::digest::Digest;
use crate::oci::{Parsed, RawManifest};
use crate::progress::Progress;
use crate::registry::{Client, RegistryError};
use crate::settings::InventorySettings;
use crate::sync::lock;

/// How deep indexes may nest.
const MAX_DEPTH: usize = 4;

/// What `airlock inventory` wrote, for the closing report.
#[derive(Debug, Clone, Serialize)]
pub struct InventorySummary {
    pub output: PathBuf,
    /// `host[:port][/prefix]`.
    pub target: String,
    pub repositories: usize,
    pub tags: usize,
    /// Unique manifests and indexes.
    pub manifests: usize,
    /// Unique configs and layers.
    pub blobs: usize,
    /// Tags or child manifests listed but gone when read (deleted meanwhile).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl InventorySummary {
    pub fn print_human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        for s in &self.skipped {
            writeln!(w, "note: {s}")?;
        }
        writeln!(
            w,
            "Inventory of {}: {} repositories, {} tags, {} manifests, {} blobs, written to {}",
            self.target,
            self.repositories,
            self.tags,
            self.manifests,
            self.blobs,
            self.output.display()
        )
    }
}

/// What a manifest digest leads to (the same in every repository holding it).
#[derive(Debug, Default)]
struct Node {
    /// Child manifests and indexes (for an index).
    children: Vec<Digest>,
    /// Config and layers (for an image manifest).
    blobs: Vec<Digest>,
}

type Cache = Mutex<HashMap<Digest, Arc<Node>>>;

pub fn take(
    settings: &InventorySettings,
    progress: &dyn Progress,
) -> anyhow::Result<InventorySummary> {
    let client = Client::new(settings.client.clone())?;
    let registry = settings.target.registry.as_str();
    let prefix = settings.target.prefix.as_str();
    let all = client
        .catalog(registry)
        .map_err(|e| catalog_error(registry, e))?;
    let mut repos: Vec<String> = all
        .into_iter()
        .filter(|r| prefix.is_empty() || r == prefix || r.starts_with(&format!("{prefix}/")))
        .collect();
    repos.sort();
    repos.dedup();

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.jobs)
        .build()?;
    let cache: Cache = Mutex::new(HashMap::new());
    let skipped = Mutex::new(Vec::new());
    progress.phase("inventory", 0, repos.len() as u64);
    let results: Vec<anyhow::Result<InventoryRepository>> = pool.install(|| {
        repos
            .par_iter()
            .map(|repo| {
                let item = progress.item(repo, 0);
                let r = read_repository(&client, registry, repo, &cache, &skipped)
                    .with_context(|| format!("cannot read repository {registry}/{repo}"));
                if r.is_ok() {
                    item.done();
                }
                r
            })
            .collect()
    });
    progress.finish_phase();

    let mut repositories = BTreeMap::new();
    let mut errors = Vec::new();
    for (repo, r) in repos.into_iter().zip(results) {
        match r {
            Ok(r) => {
                repositories.insert(repo, r);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        let mut msg = format!(
            "{} of the repositories could not be read, so no inventory was written to `{}`; \
             fix the cause (credentials, network) and run it again:",
            errors.len(),
            settings.output.display()
        );
        for e in &errors {
            let _ = write!(msg, "\n  - {e:#}");
        }
        bail!(msg);
    }

    let inventory = Inventory {
        format: INVENTORY_FORMAT.to_string(),
        version: INVENTORY_VERSION,
        tool: format!("airlock {}", env!("CARGO_PKG_VERSION")),
        registry: registry.to_string(),
        prefix: prefix.to_string(),
        created: jiff::Timestamp::now().to_string(),
        repositories,
    };
    inventory.write(&settings.output)?;
    let (tags, manifests, blobs) = inventory.counts();
    Ok(InventorySummary {
        output: settings.output.clone(),
        target: inventory.target(),
        repositories: inventory.repositories.len(),
        tags,
        manifests,
        blobs,
        skipped: skipped.into_inner().unwrap_or_default(),
    })
}

/// Says what to do when the registry offers no catalog.
fn catalog_error(registry: &str, e: RegistryError) -> anyhow::Error {
    let hint = match e.status() {
        Some(404) => format!(
            "{registry} offers no catalog (GET /v2/_catalog); airlock inventory needs it \
             (enable the catalog API, or use an earlier bundle with `save --base BUNDLE` instead)"
        ),
        Some(401 | 403) => format!(
            "{registry} refused to list its repositories (GET /v2/_catalog) for these credentials; \
             log in with an account that may read the catalog (`docker login {registry}`)"
        ),
        _ => format!("cannot list the repositories of {registry} (GET /v2/_catalog)"),
    };
    anyhow!(e).context(hint)
}

/// Tags → digests, every reachable manifest and every referenced blob of one repository.
fn read_repository(
    client: &Client,
    registry: &str,
    repo: &str,
    cache: &Cache,
    skipped: &Mutex<Vec<String>>,
) -> anyhow::Result<InventoryRepository> {
    let mut out = InventoryRepository::default();
    let tags = match client.list_tags(registry, repo) {
        Ok(t) => t,
        // Listed in the catalog but without tags (or deleted meanwhile).
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut manifests: BTreeSet<Digest> = BTreeSet::new();
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut referrers_failed = false;
    for tag in tags {
        let raw = match client.get_manifest(registry, repo, &tag) {
            Ok(raw) => raw,
            Err(e) if e.is_not_found() => {
                lock(skipped).push(format!(
                    "{registry}/{repo}:{tag} was listed but is gone; left out"
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        out.tags.insert(tag.clone(), raw.digest.clone());
        // Walk from the tag's manifest, fetching only digests not learnt before.
        let mut stack: Vec<(Digest, Option<RawManifest>, usize)> =
            vec![(raw.digest.clone(), Some(raw), 0)];
        while let Some((digest, raw, depth)) = stack.pop() {
            if !manifests.insert(digest.clone()) {
                continue;
            }
            let node = match node(client, registry, repo, &digest, raw, cache) {
                Ok(n) => n,
                Err(e) if registry_not_found(&e) => {
                    manifests.remove(&digest);
                    lock(skipped).push(format!(
                        "{registry}/{repo}@{digest} is listed in an index but not in the repository; left out"
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            blobs.extend(node.blobs.iter().cloned());
            if !node.children.is_empty() && depth >= MAX_DEPTH {
                bail!("index {digest} in {registry}/{repo} nests deeper than {MAX_DEPTH} levels");
            }
            for c in &node.children {
                stack.push((c.clone(), None, depth + 1));
            }
            // Referrers (each walked once: `manifests` is the visited set).
            match client.referrers(registry, repo, &digest, None) {
                Ok(Some(r)) => {
                    for d in r.manifests {
                        stack.push((d.digest, None, depth));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    if !referrers_failed {
                        referrers_failed = true;
                        lock(skipped).push(format!(
                            "{registry}/{repo}: the referrers of {digest} could not be listed \
                             ({e}); artifacts found only that way are left out"
                        ));
                    }
                }
            }
        }
    }
    out.manifests = manifests.into_iter().collect();
    out.blobs = blobs.into_iter().collect();
    Ok(out)
}

fn registry_not_found(e: &anyhow::Error) -> bool {
    e.chain()
        .find_map(|c| c.downcast_ref::<RegistryError>())
        .is_some_and(RegistryError::is_not_found)
}

/// What `digest` leads to, from the cache or by fetching it (`raw` when already fetched).
fn node(
    client: &Client,
    registry: &str,
    repo: &str,
    digest: &Digest,
    raw: Option<RawManifest>,
    cache: &Cache,
) -> anyhow::Result<Arc<Node>> {
    if let Some(n) = lock(cache).get(digest) {
        return Ok(Arc::clone(n));
    }
    let raw = match raw {
        Some(r) => r,
        None => client.get_manifest(registry, repo, digest.as_str())?,
    };
    let mut node = Node::default();
    match raw.parse() {
        Ok(Parsed::Index(index)) => {
            node.children = index.manifests.into_iter().map(|d| d.digest).collect();
        }
        Ok(Parsed::Manifest(m)) => {
            node.blobs = std::iter::once(m.config)
                .chain(m.layers)
                .filter(|d| d.urls.as_ref().is_none_or(|u| u.is_empty()))
                .map(|d| d.digest)
                .collect();
        }
        // An artifact of a type airlock does not read: recorded as a manifest only.
        Err(_) => {}
    }
    let node = Arc::new(node);
    lock(cache).insert(digest.clone(), Arc::clone(&node));
    Ok(node)
}
