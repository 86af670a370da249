//! Where an output's working files go: beside it, in the same directory (so the final
//! rename never crosses file systems), named after it. One place for the two small
//! questions every writer of an output asks.

use std::path::{Path, PathBuf};

/// The directory `path` is in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The file name of `path` as text, or `fallback` when it has none.
pub fn name_of(path: &Path, fallback: &str) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| fallback.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_and_names() {
        assert_eq!(dir_of(Path::new("b.tar")), PathBuf::from("."));
        assert_eq!(dir_of(Path::new("/m/usb/b.tar")), PathBuf::from("/m/usb"));
        assert_eq!(name_of(Path::new("/m/usb/b.tar"), "x"), "b.tar");
        assert_eq!(name_of(Path::new("/"), "bundle"), "bundle");
    }
}
