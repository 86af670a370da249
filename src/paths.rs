//! Where an output's working files go: beside it, in the same directory (so the final
//! rename never crosses file systems), named after it. One place for the two small
//! questions every writer of an output asks.

use std::path::{Path, PathBuf};

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The file name of `path` as text, or `fallback` when it has none.
pub(crate) fn name_of(path: &Path, fallback: &str) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| fallback.to_string())
}

/// Whether `a` and `b` are the same existing file, whatever names (links, `..`,
/// symlinks) they are reached by.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// `path` with its directory made absolute and free of symlinks, and the file itself
/// resolved too when it exists; `None` when its directory does not exist.
pub(crate) fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(path) {
        return Some(p);
    }
    let name = path.file_name()?;
    Some(std::fs::canonicalize(dir_of(path)).ok()?.join(name))
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

    #[test]
    fn same_file_sees_through_other_names() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.tar");
        std::fs::write(&a, b"x").unwrap();
        std::fs::hard_link(&a, dir.path().join("hard.tar")).unwrap();
        std::os::unix::fs::symlink(&a, dir.path().join("soft.tar")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(same_file(&a, &dir.path().join("hard.tar")));
        assert!(same_file(&a, &dir.path().join("soft.tar")));
        assert!(same_file(&a, &dir.path().join("sub/../a.tar")));
        assert!(!same_file(&a, &dir.path().join("missing.tar")));
        std::fs::write(dir.path().join("b.tar"), b"x").unwrap();
        assert!(!same_file(&a, &dir.path().join("b.tar")));
        assert_eq!(resolved(&dir.path().join("sub/../soft.tar")), resolved(&a));
        assert_eq!(
            resolved(&dir.path().join("sub/../new.tar")),
            Some(std::fs::canonicalize(dir.path()).unwrap().join("new.tar"))
        );
    }
}
