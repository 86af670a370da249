//! `load --with-digests`: the engine pulls each image from the bundle, served on a
//! loopback port for the length of the load, so Docker records a `RepoDigests` entry
//! (which `docker load` never does, moby #22011).
//!
//! The bundle is served by [`crate::serve`] exactly as `airlock serve` would serve it
//! (names mapped as `push` maps them, blobs hashed while they stream), on
//! `127.0.0.1:<free port>`: Docker treats loopback registries as insecure-allowed, so
//! no daemon configuration is needed. Each name is pulled **by the digest it has in
//! the bundle**, for the planned platform, then tagged with the name `docker load`
//! would give it. The recorded digest entry names the loopback address
//! (`127.0.0.1:PORT/library/nginx@sha256:…`): the digest is the source's, the host is
//! where Docker pulled it from — the engine keeps no other kind of digest reference.
//!
//! The engine must share this host's loopback: a `unix://` socket or `tcp://` on
//! loopback. A rootless engine runs in its own network namespace and cannot reach it;
//! its pull fails and the error says to use plain `load`.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};

use super::plan::PlannedImage;
use crate::bundle::Bundle;
use crate::engine::Engine;
use crate::hint::Hint;
use crate::progress::Progress;
use crate::reference::Reference;
use crate::serve::{LogMode, catalog::Catalog};
use crate::settings::RegistryPrefix;

/// Connections served at once: the engine pulls a few layers in parallel.
const WORKERS: usize = 8;

/// Pulls every planned image from a loopback server of `bundle` into `engine`, then
/// tags it. Returns, per image in order, the digest reference the engine recorded.
pub(crate) fn pull_all(
    bundle: &Path,
    images: &[PlannedImage],
    engine: &Engine,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<String>> {
    if !engine.is_local() {
        bail!(
            "--with-digests needs the Docker engine on this host (it pulls from a registry airlock \
             serves on 127.0.0.1), but the engine is {}; use `airlock load` without --with-digests",
            engine.endpoint()
        );
    }
    let opened = Bundle::open(bundle)?;
    let target = RegistryPrefix::parse("localhost")?;
    let cat = Catalog::build(vec![opened], &target, false)?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .context("cannot open a loopback port to serve the bundle to the engine")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop = AtomicBool::new(false);
    let quiet = LogMode {
        quiet: true,
        json: false,
    };
    std::thread::scope(|s| {
        s.spawn(|| crate::serve::run(&listener, Arc::new(cat), None, quiet, &stop, WORKERS));
        let pulled = pull_each(&target, &addr.to_string(), images, engine, progress);
        stop.store(true, Ordering::Relaxed);
        pulled
    })
}

fn pull_each(
    target: &RegistryPrefix,
    addr: &str,
    images: &[PlannedImage],
    engine: &Engine,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<String>> {
    progress.phase_of("pulling", "image", 0, images.len() as u64);
    let mut recorded = Vec::new();
    for image in images {
        let item = progress.item(&image.name, 0);
        let name = Reference::parse(&image.name)?;
        let repo = format!("{addr}/{}", target.repository_for(&name, false)?);
        let digest = image.source_digest.as_str();
        if let Err(e) = engine.pull(&repo, digest, Some(&image.platform)) {
            // Docker says `dial tcp 127.0.0.1:PORT: connect: …` when it cannot reach us.
            let unreachable = e.to_string().contains("dial tcp");
            let e = anyhow::Error::new(e)
                .context(format!("cannot load {} with its digest", image.name));
            return Err(if unreachable {
                e.context(Hint(
                    "an engine in another network namespace (rootless Docker) cannot reach \
                     127.0.0.1 on this host; load without --with-digests"
                        .to_string(),
                ))
            } else {
                e
            });
        }
        let pulled = format!("{repo}@{digest}");
        if let Some(tag) = &image.tag {
            let (tag_repo, tag_name) = split_tag(tag);
            engine
                .tag(&pulled, tag_repo, tag_name)
                .with_context(|| format!("pulled {pulled}, but cannot tag it {tag}"))?;
        }
        item.done();
        recorded.push(pulled);
    }
    progress.finish_phase();
    Ok(recorded)
}

/// `host:5000/app:1` → (`host:5000/app`, `1`): the tag is after the last `:` that
/// follows the last `/`.
fn split_tag(tag: &str) -> (&str, &str) {
    let slash = tag.rfind('/').map_or(0, |i| i + 1);
    match tag[slash..].rfind(':') {
        Some(i) => (&tag[..slash + i], &tag[slash + i + 1..]),
        None => (tag, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("nginx:1.25"), ("nginx", "1.25"));
        assert_eq!(
            split_tag("127.0.0.1:5000/load/app:1"),
            ("127.0.0.1:5000/load/app", "1")
        );
        assert_eq!(split_tag("host:5000/app"), ("host:5000/app", "latest"));
    }
}
