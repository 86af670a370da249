//! The parsers of what a bundle or a registry hands airlock: manifests and indexes
//! (`RawManifest::parse`, `sniff_media_type`), the TOC (and its checksum), image
//! configs, `manifest.json`, references, digests and platforms.
#![no_main]

use airlock::bundle::toc::{Toc, checksum_problem};
use airlock::digest::Digest;
use airlock::oci::{
    DockerLoadEntry, ImageConfig, ImageIndex, ImageManifest, Platform, RawManifest,
    sniff_media_type,
};
use airlock::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = RawManifest::new(data.to_vec(), Some("application/vnd.oci.image.manifest.v1+json"));
    let _ = raw.parse();
    let _ = sniff_media_type(data);
    let _ = serde_json::from_slice::<Toc>(data);
    let _ = checksum_problem(data);
    let _ = serde_json::from_slice::<ImageIndex>(data);
    let _ = serde_json::from_slice::<ImageManifest>(data);
    let _ = serde_json::from_slice::<ImageConfig>(data);
    let _ = serde_json::from_slice::<Vec<DockerLoadEntry>>(data);
    let text = String::from_utf8_lossy(data);
    for s in std::iter::once(text.as_ref()).chain(text.lines()) {
        if let Ok(r) = Reference::parse(s) {
            let _ = (r.familiar(), r.familiar_name(), r.to_string(), r.manifest_reference());
        }
        if let Ok(d) = Digest::parse(s) {
            let _ = (d.blob_path(), d.short(), d.hex());
        }
        if let Ok(p) = Platform::parse(s) {
            let _ = p.satisfies(&Platform::linux_amd64());
        }
    }
});
