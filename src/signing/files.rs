//! Writing a key pair to disk for `airlock key generate --out NAME`.
//!
//! `NAME.key` is the private key (unencrypted PKCS#8 PEM) and is created with mode 0600
//! from its first byte: it is opened with that mode, never chmod-ed afterwards, so
//! there is no moment in which another user could open it. `NAME.pub` is the SPKI PEM
//! public key, mode 0644. Both modes are further narrowed by the umask, as for any
//! file. Each is written under a temporary name in the same directory, flushed to
//! disk, and then linked to its final name without replacing anything (tempfile's
//! `persist_noclobber`), so nothing half-written ever carries a final name and an
//! existing key is never overwritten — not even one created between our check and our
//! rename.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Algorithm, KeyError, PrivateKey, PublicKey};
use crate::paths::dir_of;

/// What [`generate_key_pair`] made.
#[derive(Debug)]
pub struct GeneratedKeyPair {
    /// `NAME.key`, the private key (mode 0600).
    pub key_file: PathBuf,
    /// `NAME.pub`, the public key (mode 0644).
    pub pub_file: PathBuf,
    pub public_key: PublicKey,
}

/// `NAME.key` and `NAME.pub` for `--out NAME` (the suffixes are appended, so
/// `release.v2` gives `release.v2.key`).
pub fn key_pair_paths(out: &Path) -> (PathBuf, PathBuf) {
    let with = |suffix: &str| {
        let mut name = OsString::from(out.as_os_str());
        name.push(suffix);
        PathBuf::from(name)
    };
    (with(".key"), with(".pub"))
}

/// Generates a key of `algorithm` (Ed25519 unless the user asked otherwise) and writes
/// it to `NAME.key` and `NAME.pub` (see [`write_key_pair`]).
pub fn generate_key_pair(out: &Path, algorithm: Algorithm) -> Result<GeneratedKeyPair, KeyError> {
    let (key_file, pub_file) = key_pair_paths(out);
    // Refuse before spending entropy or creating anything.
    refuse_existing(&[&key_file, &pub_file])?;
    let key = PrivateKey::generate(algorithm)?;
    write_key_pair(out, &key)?;
    Ok(GeneratedKeyPair {
        key_file,
        pub_file,
        public_key: key.public_key().clone(),
    })
}

/// Writes `key` to `NAME.key` (0600) and its public key to `NAME.pub` (0644), refusing
/// if either exists. When the public key cannot be written, the private key file just
/// created is removed again, so a failure leaves nothing behind.
pub fn write_key_pair(out: &Path, key: &PrivateKey) -> Result<(), KeyError> {
    let (key_file, pub_file) = key_pair_paths(out);
    refuse_existing(&[&key_file, &pub_file])?;
    write_new(&key_file, key.to_pkcs8_pem().as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pub_file, key.public_key().to_pem().as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&key_file);
        return Err(e);
    }
    Ok(())
}

fn refuse_existing(paths: &[&Path]) -> Result<(), KeyError> {
    for path in paths {
        // symlink_metadata: a dangling symlink is in the way too.
        if path.symlink_metadata().is_ok() {
            return Err(KeyError::Exists {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Creates `path` with `contents`, born with `mode`, via a temporary file in the same
/// directory; fails with [`KeyError::Exists`] rather than replace anything.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let write_err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = dir_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".airlock-key-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(&dir)
        .map_err(write_err)?;
    tmp.write_all(contents).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            write_err(e.error)
        }
    })?;
    // Make the new name durable too; a failure here loses nothing already written.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
