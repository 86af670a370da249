//! Inventories: what a registry holds, recorded on the air-gapped side and carried back
//! out so the next `save --base inventory.json` leaves out what the target already has.
//!
//! The file is JSON (documented in `docs/inventory.md`): a `format`/`version` header,
//! the registry and prefix it describes, when it was taken, and per repository its tags
//! (tag → digest), every manifest and index digest reachable from those tags, and every
//! config and layer digest those manifests reference. Digests are all it needs: the
//! sizes and media types of left-out blobs come from the new bundle's own manifests.
//!
//! - [`take`] walks a registry into an [`Inventory`] (`airlock inventory`);
//! - [`base`] reads a `--base` file, bundle or inventory, into the set of blobs the
//!   other side has ([`base::BaseSet`]), for `save --base` and `verify --base`.

pub mod base;
pub mod take;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub use take::take;

/// The value of `format` in every inventory file.
pub(crate) const INVENTORY_FORMAT: &str = "airlock-inventory";
/// The inventory `version` this build writes and reads.
pub(crate) const INVENTORY_VERSION: u32 = 1;
/// The largest inventory file read.
pub(crate) const MAX_INVENTORY_SIZE: u64 = 1024 * 1024 * 1024;

/// What a registry (under a prefix) held when the inventory was taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Inventory {
    /// Always [`INVENTORY_FORMAT`].
    pub format: String,
    /// [`INVENTORY_VERSION`] of the writer.
    pub version: u32,
    /// `airlock <version>`.
    pub tool: String,
    /// `host[:port]` of the registry.
    pub registry: String,
    /// The repository prefix described (empty: the whole catalog).
    #[serde(default)]
    pub prefix: String,
    /// RFC 3339 UTC time the inventory was taken.
    pub created: String,
    /// Every repository under the prefix, by name.
    pub repositories: BTreeMap<String, InventoryRepository>,
}

/// One repository of an inventory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct InventoryRepository {
    /// Tag → the digest of the manifest or index it points at.
    #[serde(default)]
    pub tags: BTreeMap<String, Digest>,
    /// Every manifest and index reachable from the tags (sorted, each once).
    #[serde(default)]
    pub manifests: Vec<Digest>,
    /// Every config and layer those manifests reference (sorted, each once).
    #[serde(default)]
    pub blobs: Vec<Digest>,
}

/// Only the header, to tell an inventory from other JSON (a split bundle's parts index).
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    format: Option<String>,
}

impl Inventory {
    /// `host[:port][/prefix]`.
    pub fn target(&self) -> String {
        if self.prefix.is_empty() {
            self.registry.clone()
        } else {
            format!("{}/{}", self.registry, self.prefix)
        }
    }

    /// Every blob of every repository, with the repositories holding it.
    pub(crate) fn blob_repositories(&self) -> BTreeMap<&Digest, Vec<&str>> {
        let mut map: BTreeMap<&Digest, Vec<&str>> = BTreeMap::new();
        for (repo, r) in &self.repositories {
            for b in &r.blobs {
                map.entry(b).or_default().push(repo);
            }
        }
        map
    }

    /// True when `path` holds JSON whose `format` is [`INVENTORY_FORMAT`] (without
    /// judging the rest); false for anything else, a bundle included.
    pub(crate) fn is_inventory(path: &Path) -> bool {
        let Ok(mut f) = File::open(path) else {
            return false;
        };
        let mut head = [0u8; 512];
        let n = f.read(&mut head).unwrap_or(0);
        if head[..n].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return false;
        }
        let Ok(f) = File::open(path) else {
            return false;
        };
        let reader = BufReader::new(f).take(MAX_INVENTORY_SIZE);
        serde_json::from_reader::<_, Probe>(reader)
            .ok()
            .and_then(|p| p.format)
            .is_some_and(|f| f == INVENTORY_FORMAT)
    }

    /// Reads and checks an inventory file; errors name the file and what to do.
    pub fn load(path: &Path) -> anyhow::Result<Inventory> {
        let f = File::open(path)
            .with_context(|| format!("cannot open inventory `{}`", path.display()))?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        if size > MAX_INVENTORY_SIZE {
            bail!(
                "inventory `{}` is {size} bytes, more than the {MAX_INVENTORY_SIZE} read",
                path.display()
            );
        }
        let inv: Inventory = serde_json::from_reader(BufReader::new(f)).with_context(|| {
            format!(
                "`{}` is not a valid airlock inventory; take a fresh one with `airlock inventory REGISTRY -o FILE`",
                path.display()
            )
        })?;
        if inv.format != INVENTORY_FORMAT {
            bail!(
                "`{}` is not an airlock inventory (its format is `{}`)",
                path.display(),
                inv.format
            );
        }
        if inv.version > INVENTORY_VERSION {
            bail!(
                "inventory `{}` was made by a newer airlock (inventory version {}, this airlock reads up to {INVENTORY_VERSION}); use a newer airlock",
                path.display(),
                inv.version
            );
        }
        Ok(inv)
    }

    /// Writes the inventory to `path` atomically: a temporary file in the same
    /// directory, synced, then renamed over the final name.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let dir = crate::paths::dir_of(path);
        let name = crate::paths::name_of(path, "");
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .tempfile_in(&dir)
            .with_context(|| {
                format!(
                    "cannot create a temporary file in `{}` (is it writable?)",
                    dir.display()
                )
            })?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            serde_json::to_writer_pretty(&mut w, self)?;
            w.write_all(b"\n")?;
            w.flush()?;
        }
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("cannot write `{}` (is the disk full?)", path.display()))?;
        tmp.persist(path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot rename the inventory into `{}`", path.display()))?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Counts for the closing report: (tags, unique manifests, unique blobs).
    pub fn counts(&self) -> (usize, usize, usize) {
        let tags = self.repositories.values().map(|r| r.tags.len()).sum();
        let manifests: BTreeSet<&Digest> = self
            .repositories
            .values()
            .flat_map(|r| &r.manifests)
            .collect();
        let blobs: BTreeSet<&Digest> = self.repositories.values().flat_map(|r| &r.blobs).collect();
        (tags, manifests.len(), blobs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Inventory {
        let d = Digest::of(b"layer");
        let mut repositories = BTreeMap::new();
        for repo in ["mirror/a", "mirror/b"] {
            repositories.insert(
                repo.to_string(),
                InventoryRepository {
                    tags: [("1".to_string(), Digest::of(b"m"))].into(),
                    manifests: vec![Digest::of(b"m")],
                    blobs: vec![d.clone()],
                },
            );
        }
        Inventory {
            format: INVENTORY_FORMAT.into(),
            version: INVENTORY_VERSION,
            tool: "airlock test".into(),
            registry: "reg.lan:5000".into(),
            prefix: "mirror".into(),
            created: "2024-05-01T12:00:00Z".into(),
            repositories,
        }
    }

    #[test]
    fn round_trips_and_is_told_from_other_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.json");
        let inv = sample();
        inv.write(&path).unwrap();
        assert!(Inventory::is_inventory(&path));
        let back = Inventory::load(&path).unwrap();
        assert_eq!(back.target(), "reg.lan:5000/mirror");
        assert_eq!(back.counts(), (2, 1, 1));
        let where_ = back.blob_repositories();
        assert_eq!(where_[&Digest::of(b"layer")], ["mirror/a", "mirror/b"]);
        // Nothing but the file itself is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let other = dir.path().join("bundle.tar.zst.parts.json");
        std::fs::write(&other, br#"{"parts_format": 1, "parts": []}"#).unwrap();
        assert!(!Inventory::is_inventory(&other));
        let newer = dir.path().join("newer.json");
        std::fs::write(
            &newer,
            serde_json::to_vec(&Inventory {
                version: INVENTORY_VERSION + 1,
                ..sample()
            })
            .unwrap(),
        )
        .unwrap();
        let err = format!("{:#}", Inventory::load(&newer).unwrap_err());
        assert!(err.contains("newer airlock"), "{err}");
    }

    #[test]
    fn a_toc_without_base_still_parses_and_one_with_base_round_trips() {
        use crate::bundle::toc::{Toc, TocBase, TocOmitted};
        let old = r#"{"format_version":1,"tool":"airlock 0.1.0","created":"x",
            "docker_platform":"linux/amd64","images":[],"blobs":[]}"#;
        let toc: Toc = serde_json::from_str(old).unwrap();
        assert!(toc.base.is_none());
        assert!(!serde_json::to_string(&toc).unwrap().contains("base"));
        let d = Digest::of(b"layer");
        let with = Toc {
            base: Some(TocBase {
                kind: "bundle".into(),
                file: "full.tar.zst".into(),
                created: Some("y".into()),
                tool: None,
                registry: None,
                omitted: vec![TocOmitted {
                    digest: d.clone(),
                    size: 5,
                    media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                    repositories: vec!["docker.io/library/nginx:1".into()],
                }],
            }),
            ..toc
        };
        let back: Toc = serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
        assert!(back.is_omitted(&d));
        assert_eq!(back.base.unwrap().omitted_bytes(), 5);
    }
}
