//! `airlock load`: a bundle's images into the local Docker engine, or into a file for
//! plain `docker load`.
//!
//! 1. [`plan`]: choose the names (all, or `--image`), and for each the image manifest
//!    for the platform (`--platform`, else the engine's, else linux/amd64 with `-o`);
//!    names with nothing loadable are skipped with a reason.
//! 2. [`stream`]: build the `docker load` tar on the fly from the bundle's own blobs,
//!    each verified as it is read; zstd layers are decompressed on the way (Docker
//!    20.10 cannot read them). The bundle is never unpacked.
//! 3. Send it: to the engine's `POST /images/load` through a bounded in-process
//!    [`pipe`] (a producer thread writes, the request reads; memory stays flat), or to
//!    a temporary file beside `-o FILE`, renamed into place when complete. A damaged
//!    blob aborts the stream, so Docker loads nothing and no partial file is left.
//! 4. Confirm with `inspect` that every tag is in the engine with the config digest as
//!    its image ID, and report each tag with the digest it had in the source registry,
//!    which Docker's classic image store does not keep.
//!
//! `--with-digests` replaces steps 2 and 3: the engine pulls each image from the bundle
//! served on loopback ([`digests`]), which records `RepoDigests`; slower (one request
//! per blob, and the engine compresses nothing less), so not the default.

mod digests;
mod pipe;
mod plan;
mod stream;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use crate::bundle::Bundle;
use crate::digest::Digest;
use crate::engine::Engine;
use crate::oci::Platform;
use crate::progress::Progress;
use crate::settings::LoadSettings;

use crate::words::count;
use plan::PlannedImage;
pub use plan::Skipped;

/// What a load did; serialized as the `--json` output.
#[derive(Debug, serde::Serialize)]
pub struct LoadSummary {
    /// The platform that was loaded (`linux/amd64`).
    pub platform: String,
    /// The `docker load` file written with `-o`; `null` when loaded into the engine.
    pub output: Option<PathBuf>,
    /// The engine loaded into (`unix:///var/run/docker.sock`); `null` with `-o`.
    pub engine: Option<String>,
    /// One entry per loaded name (tag).
    pub images: Vec<LoadedImage>,
    /// Names not loaded, with the reason.
    pub skipped: Vec<Skipped>,
    /// Configs and layers sent, each once.
    pub blobs: u64,
    /// zstd layers decompressed for Docker.
    pub decompressed_layers: u64,
}

/// One loaded name.
#[derive(Debug, serde::Serialize)]
pub struct LoadedImage {
    /// The full name in the bundle (`docker.io/library/nginx:1.25`).
    pub name: String,
    /// The tag Docker shows (`nginx:1.25`); `null` for a name saved by digest only,
    /// which Docker holds untagged (find it by `image_id`).
    pub tag: Option<String>,
    /// Docker's image ID: the config digest.
    pub image_id: Digest,
    /// The digest of the manifest or index the name has in the bundle: the digest
    /// to pin (`name@digest`) after re-tagging and pushing.
    pub source_digest: Digest,
    /// The digest the source registry served, when it differs from `source_digest`
    /// (platforms were filtered at save time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_source_digest: Option<Digest>,
    /// The image manifest that was loaded (an index's child for a multi-arch image).
    pub manifest: Digest,
    pub platform: String,
    /// With `--with-digests`: the digest reference the engine recorded in `RepoDigests`
    /// (`127.0.0.1:PORT/library/nginx@sha256:…`; the digest is `source_digest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_digest: Option<String>,
}

impl LoadSummary {
    pub fn print_human(&self, w: &mut dyn Write) -> io::Result<()> {
        for i in &self.images {
            let what = i.tag.as_deref().unwrap_or(&i.name);
            write!(
                w,
                "{} {what} image {} (source digest {}",
                if self.output.is_some() {
                    "wrote"
                } else {
                    "loaded"
                },
                i.image_id,
                i.source_digest
            )?;
            if let Some(o) = &i.original_source_digest {
                write!(w, "; the source registry served {o}")?;
            }
            if let Some(r) = &i.repo_digest {
                write!(w, "; RepoDigests: {r}")?;
            }
            writeln!(w, ")")?;
        }
        for s in &self.skipped {
            writeln!(w, "skipped {}: {}", s.name, s.reason)?;
        }
        let target = match (&self.output, &self.engine) {
            (Some(o), _) => format!(
                "into {} (load it with `docker load -i {}`)",
                o.display(),
                o.display()
            ),
            (None, Some(e)) => format!("into the Docker engine at {e}"),
            (None, None) => "nowhere".to_string(),
        };
        // With -o, nothing was loaded: a file was written for `docker load`.
        writeln!(
            w,
            "{} {} for {} {target}: {}{}",
            if self.output.is_some() {
                "Wrote"
            } else {
                "Loaded"
            },
            count(self.images.len() as u64, "name"),
            self.platform,
            count(self.blobs, "blob"),
            if self.decompressed_layers > 0 {
                format!(
                    ", {} decompressed",
                    count(self.decompressed_layers, "zstd layer")
                )
            } else {
                String::new()
            }
        )?;
        if !self.images.is_empty() && self.images.iter().all(|i| i.repo_digest.is_none()) {
            writeln!(
                w,
                "note: Docker's image store does not keep registry digests; to re-tag and push an image elsewhere, or to pin it, use the source digests above (`airlock push` keeps them exactly)."
            )?;
        }
        Ok(())
    }
}

pub fn load(settings: &LoadSettings, progress: &dyn Progress) -> anyhow::Result<LoadSummary> {
    let bundle = Bundle::open(&settings.bundle)?;
    // --trust: the signature over the head is checked before anything else is read or
    // written (a few kilobytes; the blobs are verified as they stream, as always).
    if !settings.trust.is_empty() {
        crate::bundle::signature::require_trusted(&bundle, &settings.trust)?;
    }
    let selected = plan::select(&bundle, &settings.images)?;

    let engine = match &settings.output {
        Some(_) => None,
        None => {
            let engine = Engine::from_env()?;
            engine.ping()?;
            Some(engine)
        }
    };
    let platform = match (&settings.platform, &engine) {
        (Some(p), _) => p.clone(),
        (None, Some(e)) => {
            let v = e.version()?;
            Platform::parse(&format!("{}/{}", v.os, v.arch)).with_context(|| {
                format!(
                    "the Docker engine at {} reports platform {}/{}; pass --platform",
                    e.endpoint(),
                    v.os,
                    v.arch
                )
            })?
        }
        (None, None) => Platform::linux_amd64(),
    };

    let mut images = Vec::new();
    let mut skipped = Vec::new();
    for toc in selected {
        match plan::plan_image(&bundle, toc, &platform)? {
            Ok(p) if settings.with_digests && p.layers.iter().any(|l| l.decompress) => skipped
                .push(Skipped {
                    name: toc.name.clone(),
                    reason: "its layers are zstd, which the engine cannot pull (Docker 20.10); \
                             load it without --with-digests, which decompresses them"
                        .to_string(),
                }),
            Ok(p) => images.push(p),
            Err(reason) => skipped.push(Skipped {
                name: toc.name.clone(),
                reason,
            }),
        }
    }
    if images.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.name, s.reason))
            .collect();
        bail!(
            "nothing in bundle `{}` can be loaded for {platform}{}{}",
            bundle.path().display(),
            if why.is_empty() { "" } else { ": " },
            why.join("; ")
        );
    }

    let mut repo_digests = vec![None; images.len()];
    let stats = match (&settings.output, &engine) {
        (Some(out), _) => write_file(&bundle, &images, out, progress)?,
        (None, Some(engine)) if settings.with_digests => {
            let pulled = digests::pull_all(bundle.path(), &images, engine, progress)?;
            confirm(engine, &images)?;
            repo_digests = pulled.into_iter().map(Some).collect();
            stream::TarStats {
                blobs: plan::users(&images).len() as u64,
                decompressed: 0,
            }
        }
        (None, Some(engine)) => {
            let stats = send_to_engine(&bundle, &images, engine, progress)?;
            confirm(engine, &images)?;
            stats
        }
        (None, None) => unreachable!("an engine is opened whenever there is no -o"),
    };

    Ok(LoadSummary {
        platform: platform.to_string(),
        output: settings.output.clone(),
        engine: engine.as_ref().map(|e| e.endpoint().to_string()),
        images: images
            .into_iter()
            .zip(repo_digests)
            .map(|(p, repo_digest)| LoadedImage {
                name: p.name,
                tag: p.tag,
                image_id: p.config.digest,
                source_digest: p.source_digest,
                original_source_digest: p.original_digest,
                manifest: p.manifest,
                platform: p.platform,
                repo_digest,
            })
            .collect(),
        skipped,
        blobs: stats.blobs,
        decompressed_layers: stats.decompressed,
    })
}

/// `-o FILE`: the tar goes to a temporary file beside FILE, renamed when complete.
fn write_file(
    bundle: &Bundle,
    images: &[PlannedImage],
    out: &Path,
    progress: &dyn Progress,
) -> anyhow::Result<stream::TarStats> {
    let dir = crate::paths::dir_of(out);
    let name = crate::paths::name_of(out, "docker.tar");
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in `{}`", dir.display()))?;
    let (file, temp) = temp.into_parts();
    let writer = BufWriter::with_capacity(1024 * 1024, file);
    let (writer, stats) = stream::write_docker_tar(bundle, images, writer, &dir, progress)
        .with_context(|| format!("`{}` was not written", out.display()))?;
    let file = writer
        .into_inner()
        .map_err(|e| anyhow!("writing `{}`: {}", out.display(), e.error()))?;
    file.sync_all()
        .map_err(|e| anyhow!("writing `{}`: {e}", out.display()))?;
    temp.persist(out).map_err(|e| {
        anyhow!(
            "renaming the finished file to `{}`: {}",
            out.display(),
            e.error
        )
    })?;
    Ok(stats)
}

/// Streams the tar into `POST /images/load`: a producer thread writes it into a
/// bounded pipe that the request body reads.
fn send_to_engine(
    bundle: &Bundle,
    images: &[PlannedImage],
    engine: &Engine,
    progress: &dyn Progress,
) -> anyhow::Result<stream::TarStats> {
    let scratch = std::env::temp_dir();
    let (mut writer, reader) = pipe::pipe();
    let (sent, produced) = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            match stream::write_docker_tar(bundle, images, &mut writer, &scratch, progress) {
                Ok((_, stats)) => {
                    writer.finish().map_err(|e| {
                        if e.get_ref().is_some_and(|i| i.is::<pipe::ReaderGone>()) {
                            anyhow::Error::new(pipe::ReaderGone)
                        } else {
                            anyhow!("{e}")
                        }
                    })?;
                    Ok(stats)
                }
                Err(e) => {
                    // The request body fails instead of ending: the engine sees an
                    // aborted upload, never a short tar it might accept.
                    writer.fail(format!("{e:#}"));
                    Err(e)
                }
            }
        });
        let sent = engine.load(reader);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the thread writing the image stream panicked")));
        (sent, produced)
    });
    match (sent, produced) {
        (Ok(_), Ok(stats)) => Ok(stats),
        // The engine's answer explains a stream it stopped reading.
        (Err(e), Err(p)) if p.is::<pipe::ReaderGone>() => Err(anyhow!("{e}")),
        (_, Err(p)) => Err(p.context(format!(
            "nothing was loaded into the Docker engine at {}",
            engine.endpoint()
        ))),
        // Not an io::Error in the chain: a broken pipe must not look like success.
        (Err(e), Ok(_)) => Err(anyhow!("{e}")),
    }
}

/// Checks that every tag is in the engine with the config digest as its image ID.
fn confirm(engine: &Engine, images: &[PlannedImage]) -> anyhow::Result<()> {
    for i in images {
        let key = i.tag.clone().unwrap_or_else(|| i.config.digest.to_string());
        let v = engine.inspect(&key).map_err(|e| {
            anyhow!(
                "the Docker engine at {} accepted the images but does not show {key}: {e}",
                engine.endpoint()
            )
        })?;
        let id = v.get("Id").and_then(|x| x.as_str()).unwrap_or("");
        if id != i.config.digest.as_str() {
            bail!(
                "after loading, {key} in the Docker engine at {} is image {id}, not {} as in the bundle (did another load change the tag at the same time?)",
                engine.endpoint(),
                i.config.digest
            );
        }
    }
    Ok(())
}
