//! [`CosignKey`]: a public key an image signature may be checked with, as cosign writes
//! it (`cosign.pub`: PEM, PKIX `SubjectPublicKeyInfo`), and the check itself.
//!
//! ECDSA P-256 and Ed25519 keys are airlock's own [`crate::signing::PublicKey`] (the
//! same PEM parsing, the same errors naming the file); RSA, which airlock never signs
//! with, is added here with the RustCrypto `rsa` crate. What each signature is over is
//! what sigstore's `LoadVerifier` does for a cosign key:
//!
//! - ECDSA P-256: ASN.1 DER signature over SHA-256 of the payload bytes;
//! - Ed25519: the raw 64-byte signature over the payload bytes themselves (pure
//!   Ed25519, no pre-hash), checked strictly (no small-order or malleable signatures);
//! - RSA: RSASSA-PKCS1-v1_5 with SHA-256 (cosign's choice for RSA keys; PSS is not
//!   accepted), keys of 2048 to 4096 bits.

use std::fmt;
use std::path::{Path, PathBuf};

use pkcs8::EncodePublicKey as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;

use crate::digest::Digest;
use crate::signing::read_public_pem;
use crate::signing::{KeyError, PublicKey, Signature};

/// A public key accepted for image signatures.
#[derive(Clone)]
pub struct CosignKey {
    path: PathBuf,
    key: Kind,
    id: Digest,
}

#[derive(Clone)]
enum Kind {
    /// ECDSA P-256 or Ed25519, through airlock's signing layer.
    Signing(Box<PublicKey>),
    Rsa(Box<rsa::pkcs1v15::VerifyingKey<sha2::Sha256>>),
}

/// The smallest RSA modulus accepted, in bits (what cosign and NIST accept).
const MIN_RSA_BITS: u32 = 2048;

impl CosignKey {
    /// Reads the PEM public key in `path`.
    pub fn load(path: &Path) -> Result<CosignKey, KeyError> {
        let text = read_public_pem(
            path,
            "a PKIX public key (-----BEGIN PUBLIC KEY-----), as `cosign generate-key-pair` writes it",
        )?;
        CosignKey::from_pem(&text, path)
    }

    /// [`CosignKey::load`] from text already read; `path` names it in errors.
    pub fn from_pem(text: &str, path: &Path) -> Result<CosignKey, KeyError> {
        match PublicKey::from_pem(text, path) {
            Ok(k) => Ok(CosignKey {
                path: path.to_path_buf(),
                id: k.key_id().clone(),
                key: Kind::Signing(Box::new(k)),
            }),
            Err(KeyError::Unsupported { what, .. }) if what == "an RSA" => {
                CosignKey::rsa_from_pem(text, path)
            }
            Err(e) => Err(e),
        }
    }

    fn rsa_from_pem(text: &str, path: &Path) -> Result<CosignKey, KeyError> {
        let malformed = |e: &dyn fmt::Display| KeyError::Malformed {
            path: path.to_path_buf(),
            what: "RSA public key",
            detail: e.to_string(),
        };
        let key = if text.contains("-----BEGIN RSA PUBLIC KEY-----") {
            rsa::PublicKey::from_pkcs1_pem(text.trim()).map_err(|e| malformed(&e))?
        } else {
            rsa::PublicKey::from_public_key_pem(text.trim()).map_err(|e| malformed(&e))?
        };
        let bits = key.n().bit_width();
        if bits < MIN_RSA_BITS {
            return Err(KeyError::Unsupported {
                path: path.to_path_buf(),
                what: format!(
                    "a {bits}-bit RSA (image signature keys need at least {MIN_RSA_BITS} bits)"
                ),
            });
        }
        let der = key.to_public_key_der().map_err(|e| malformed(&e))?;
        Ok(CosignKey {
            path: path.to_path_buf(),
            id: Digest::of(der.as_bytes()),
            key: Kind::Rsa(Box::new(rsa::pkcs1v15::VerifyingKey::new(key))),
        })
    }

    /// The file the key was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `sha256:` + hex SHA-256 of the key's PKIX DER (as for airlock's own keys:
    /// `openssl pkey -pubin -in KEY -outform DER | sha256sum`).
    pub fn key_id(&self) -> &Digest {
        &self.id
    }

    /// `ecdsa-p256-sha256`, `ed25519` or `rsa-pkcs1v15-sha256`.
    pub fn algorithm(&self) -> &'static str {
        match &self.key {
            Kind::Signing(k) => k.algorithm().name(),
            Kind::Rsa(_) => "rsa-pkcs1v15-sha256",
        }
    }

    /// Whether `signature` is this key's signature of `payload` (see the module docs
    /// for what is signed how). A signature of the wrong shape for this key is simply
    /// not this key's.
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            Kind::Signing(k) => {
                let sig = Signature::new(k.algorithm(), signature.to_vec());
                k.verify(payload, &sig).is_ok()
            }
            Kind::Rsa(k) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|sig| k.verify(payload, &sig).is_ok()),
        }
    }
}

impl fmt::Debug for CosignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignKey")
            .field("path", &self.path)
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.id)
            .finish()
    }
}
