//! Signing keys, signatures and key ids — the crypto layer of signed bundles (issue 12).
//!
//! This module owns exactly three things: keys (a [`PrivateKey`] loaded from or written
//! to PEM files, a [`PublicKey`] loaded from SPKI PEM or derived from a private key),
//! [`Signature`]s over byte strings, and the key id that names a public key. It knows
//! nothing about bundles: what is signed (the canonical statement of a bundle) and
//! where the signature lives are the bundle code's business, so this layer can be
//! reviewed, and reused for the image signature checks, on its own.
//!
//! It is shaped so that a reviewer on the inside needs nothing but `openssl` to check
//! what airlock did:
//!
//! - Keys are the files `openssl genpkey` writes and reads: PKCS#8 PEM for private keys
//!   (plain, or encrypted with a passphrase — PBES2 with PBKDF2 or scrypt and AES),
//!   SPKI ("BEGIN PUBLIC KEY") PEM for public keys; SEC1 "BEGIN EC PRIVATE KEY" files
//!   from `openssl ecparam` are read too.
//! - Only two algorithms, both what openssl signs and verifies without options:
//!   [`Algorithm::Ed25519`] (the raw 64-byte signature; `openssl pkeyutl -verify
//!   -pubin -inkey pub.pem -rawin -in msg -sigfile sig`) and
//!   [`Algorithm::EcdsaP256Sha256`] (the DER signature over SHA-256 of the message;
//!   `openssl dgst -sha256 -verify pub.pem -signature sig msg`).
//! - A key id is `sha256:` + the hex SHA-256 of the public key's SPKI DER (as airlock
//!   re-encodes it, which for P-256 is the uncompressed point openssl writes), so
//!   `openssl pkey -pubin -in pub.pem -outform DER | sha256sum` names the same key.
//!
//! All the cryptography comes from RustCrypto crates (`ed25519-dalek`, `p256`/`ecdsa`,
//! `pkcs8`/`pkcs5`, `spki`); this module only parses PEM envelopes, dispatches on the
//! algorithm identifier and turns failures into errors that name the file and say what
//! to do. Private key material never reaches a `Debug` output, an error message or a
//! signature, and a passphrase never comes from the command line: see [`passphrase`].

mod files;
mod keys;
pub mod passphrase;
mod pem;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;

pub use files::{GeneratedKeyPair, generate_key_pair, key_pair_paths, write_key_pair};
pub(crate) use keys::read_public_pem;
pub use keys::{PrivateKey, PublicKey};
pub use passphrase::{EnvOrTerminal, NoPassphrase, PASSPHRASE_ENV, Passphrase, PassphraseSource};

/// A signature algorithm airlock signs and verifies with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032); the signature is the raw 64 bytes.
    #[default]
    Ed25519,
    /// ECDSA on NIST P-256 over SHA-256 of the message; the signature is DER
    /// (`Ecdsa-Sig-Value`), as `openssl dgst -sha256 -sign` writes it.
    EcdsaP256Sha256,
}

impl Algorithm {
    /// Every supported algorithm, the default first.
    pub const ALL: [Algorithm; 2] = [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256];

    /// The stable name used in files and on the command line: `ed25519`,
    /// `ecdsa-p256-sha256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Algorithm::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signature algorithm `{0}` (supported: ed25519, ecdsa-p256-sha256)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAlgorithm(s.to_string()))
    }
}

/// A signature: its algorithm and its bytes, exactly as openssl writes and reads them
/// (see [`Algorithm`]). Holds nothing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    algorithm: Algorithm,
    bytes: Vec<u8>,
}

impl Signature {
    /// A signature read back from somewhere (a bundle, a `.sig` file). Nothing is
    /// checked until [`PublicKey::verify`].
    pub fn new(algorithm: Algorithm, bytes: Vec<u8>) -> Signature {
        Signature { algorithm, bytes }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The signature bytes: 64 raw bytes for Ed25519, DER for ECDSA P-256.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature({} {})",
            self.algorithm,
            hex::encode(&self.bytes)
        )
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature is {signature} but key {key_id} is {key}")]
    AlgorithmMismatch {
        key_id: Digest,
        key: Algorithm,
        signature: Algorithm,
    },
    #[error("malformed {algorithm} signature: {detail}")]
    Malformed {
        algorithm: Algorithm,
        detail: &'static str,
    },
    #[error("the signature does not verify with key {key_id}")]
    Invalid { key_id: Digest },
}

/// Why a key could not be loaded, generated or written. Every variant names the file
/// and, where there is one, what to do about it. None carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is not a PEM key file ({detail}); expected {expected}, as written by \
         `airlock key generate` or `openssl genpkey`",
        path.display()
    )]
    NotPem {
        path: PathBuf,
        detail: String,
        expected: &'static str,
    },
    #[error("{} is {found}; {hint}", path.display())]
    WrongKind {
        path: PathBuf,
        found: &'static str,
        hint: &'static str,
    },
    #[error(
        "{} holds {what} key, which airlock does not support; airlock signs with Ed25519 \
         or ECDSA P-256 (make a key with `airlock key generate` or \
         `openssl genpkey -algorithm ed25519`)",
        path.display()
    )]
    Unsupported { path: PathBuf, what: String },
    #[error(
        "{} is encrypted and no passphrase is available: set {} or run in a terminal",
        path.display(),
        PASSPHRASE_ENV
    )]
    NoPassphrase { path: PathBuf },
    #[error(
        "{}: wrong passphrase (from {origin}); the key could not be decrypted",
        path.display()
    )]
    WrongPassphrase { path: PathBuf, origin: String },
    #[error("cannot read the passphrase for {}: {source}", path.display())]
    Passphrase {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is encrypted with {what}, which airlock cannot decrypt; re-encrypt it with \
         `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`",
        path.display()
    )]
    UnsupportedEncryption { path: PathBuf, what: String },
    #[error("{} holds a malformed {what}: {detail}", path.display())]
    Malformed {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error(
        "refusing to overwrite {}: the file exists (choose another name or move it away)",
        path.display()
    )]
    Exists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the operating system's random number generator failed: {0}")]
    Rng(#[source] getrandom::Error),
}
