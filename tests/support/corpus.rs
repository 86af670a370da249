//! The small seeded images the registry, push, load and fault tests build, in one place.
//!
//! Each test file describes its family of images once, as a [`Corpus`]: a base layer
//! every image shares (usually [`base_layer`]) and a top layer made from a seed
//! ([`app_layer`], [`opt_app_layer`], [`data_layer`]). Image `seed` is the base, then
//! the top layer for `seed`, and (unless [`Corpus::unlabelled`]) a `test.seed` label,
//! so its content and every digest depend on the seed. The files keep their own base
//! IDs, sizes and seeds, so each test builds the same bytes it always did.

use super::images::{
    FileSpec, Flavor, Image, ImageSpec, Index, Layer, exe, file, index, layer, random_file,
};

/// A base layer: `etc/os-release` saying `ID=<id>`, then `extra`.
pub fn base_layer(id: &str, extra: &[FileSpec]) -> Layer {
    let mut files = vec![file("etc/os-release", format!("ID={id}\n"))];
    files.extend_from_slice(extra);
    layer(&files)
}

/// `etc/passwd` with only root in it.
pub fn passwd() -> FileSpec {
    file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
}

/// `bin/app` (echoing `app <seed>`) and `usr/share/app/data.bin`, `len` bytes from `seed`.
pub fn app_layer(seed: u64, len: usize) -> Layer {
    layer(&[
        exe("bin/app", format!("#!/bin/sh\necho app {seed}\n")),
        random_file("usr/share/app/data.bin", seed, len),
    ])
}

/// `bin/app` (echoing `<seed>`) and `opt/data.bin`, `len` bytes from `seed`.
pub fn opt_app_layer(seed: u64, len: usize) -> Layer {
    layer(&[
        exe("bin/app", format!("#!/bin/sh\necho {seed}\n")),
        random_file("opt/data.bin", seed, len),
    ])
}

/// Only `data.bin`: `len` incompressible bytes from `seed`.
pub fn data_layer(seed: u64, len: usize) -> Layer {
    layer(&[random_file("data.bin", seed, len)])
}

/// A family of test images on one shared base layer.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The layer every image of the family starts with.
    pub base: Layer,
    top: fn(u64) -> Layer,
    label: bool,
}

impl Corpus {
    /// Images of `base`, then `top(seed)`, labelled `test.seed=<seed>`.
    pub fn new(base: Layer, top: fn(u64) -> Layer) -> Corpus {
        Corpus {
            base,
            top,
            label: true,
        }
    }

    /// The same images without the `test.seed` label.
    pub fn unlabelled(mut self) -> Corpus {
        self.label = false;
        self
    }

    /// Image `seed` for `platform` (`linux/amd64`), in OCI media types.
    pub fn image(&self, platform: &str, seed: u64) -> Image {
        self.spec(platform, seed).build()
    }

    /// An index of two images, `seed` for linux/amd64 and `seed + 1` for linux/arm64;
    /// with [`Flavor::Docker`], a Docker manifest list of Docker schema 2 images.
    pub fn two_platform_index(&self, flavor: Flavor, seed: u64) -> Index {
        let child = |platform: &str, seed: u64| self.spec(platform, seed).flavor(flavor).build();
        index(
            flavor,
            vec![child("linux/amd64", seed), child("linux/arm64", seed + 1)],
        )
    }

    fn spec(&self, platform: &str, seed: u64) -> ImageSpec {
        let spec = ImageSpec::new(platform)
            .layer(&self.base)
            .layer(&(self.top)(seed));
        if self.label {
            spec.label("test.seed", &seed.to_string())
        } else {
            spec
        }
    }
}
