//! Images from the local Docker engine (`docker-daemon:IMAGE`).
//!
//! The engine has no API to read a manifest or a blob, only `docker save`
//! (`GET /images/get`). So the image is saved into a temporary file under the
//! caller's staging dir (streamed, never in memory) and read as a `docker-archive:`
//! ([`super::archive`]), which converts uncompressed layers: a graphdriver engine
//! (Docker 20.10 here) writes a legacy archive whose layers are plain tars. The temporary
//! tar is removed once the image's store is dropped. The image keeps the name it was
//! asked for; its ID (the config digest) is the engine's.

use std::io::{self, BufWriter, Write};

use anyhow::{Context, bail};

use super::{OpenContext, SourceImage, archive};
use crate::engine::Engine;
use crate::reference::Reference;

pub fn open(
    input: &str,
    reference: &Reference,
    ctx: &OpenContext<'_>,
) -> anyhow::Result<Vec<SourceImage>> {
    let engine = Engine::from_env()?;
    engine.ping()?;
    let name = reference.familiar();
    if let Err(e) = engine.inspect(&name) {
        if e.is_not_found() {
            bail!(
                "{input}: the Docker engine at {} has no image {name} (see `docker images`; pull or load it first)",
                engine.endpoint()
            );
        }
        return Err(e.into());
    }

    let mut tmp = tempfile::Builder::new()
        .prefix("docker-save-")
        .suffix(".tar")
        .tempfile_in(ctx.staging)
        .with_context(|| format!("creating a file in {}", ctx.staging.display()))?;
    let item = ctx.progress.item(&format!("docker save {name}"), 0);
    {
        let mut body = engine.save(std::slice::from_ref(&name))?;
        let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let mut reader = crate::progress::ProgressReader::new(&mut body, &*item);
        io::copy(&mut reader, &mut out).with_context(|| {
            format!(
                "{input}: saving {name} from the Docker engine at {} into {}",
                engine.endpoint(),
                ctx.staging.display()
            )
        })?;
        out.flush()
            .with_context(|| format!("writing into {}", ctx.staging.display()))?;
    }
    item.done();
    let (file, path) = tmp.into_parts();
    drop(file);
    let tar_path = path.to_path_buf();
    let files = archive::TarFiles::index(&tar_path, Some(path))
        .with_context(|| format!("{input}: reading what the Docker engine saved"))?;

    // The engine saves exactly the image asked for; by a digest-only name it writes no
    // RepoTags, so name the result after the request rather than selecting by name.
    let mut images = archive::open_files(
        input,
        std::sync::Arc::new(files),
        "docker-daemon",
        None,
        ctx,
    )?;
    if images.len() != 1 {
        bail!(
            "{input}: the Docker engine saved {} images for {name}, expected one",
            images.len()
        );
    }
    let mut image = images.remove(0);
    image.names = vec![reference.clone()];
    Ok(vec![image])
}
