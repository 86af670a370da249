//! [`PrivateKey`] and [`PublicKey`]: loading them from PEM, signing, verifying, key ids.
//!
//! Loading is a dispatch on the PEM label and then on the algorithm identifier inside
//! the DER (Ed25519, or id-ecPublicKey with the P-256 curve); everything else is
//! refused by name ("RSA", "EC curve P-384", ...) so the user knows what to change. The
//! decoding and the cryptography themselves are the RustCrypto crates'.

use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signer as _, Verifier as _};
use getrandom::SysRng;
use p256::elliptic_curve::Generate as _;
use pkcs8::der::zeroize::{Zeroize as _, Zeroizing};
use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use pkcs8::{
    DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding,
    ObjectIdentifier, PrivateKeyInfoRef, pkcs5,
};

use super::passphrase::PassphraseSource;
use super::pem::{self, Block};
use super::{Algorithm, KeyError, Signature, SignatureError};
use crate::digest::Digest;

const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// What the private-key loader expects, for "not a PEM key" errors.
const EXPECT_PRIVATE: &str =
    "a PKCS#8 private key (-----BEGIN PRIVATE KEY----- or -----BEGIN ENCRYPTED PRIVATE KEY-----)";
/// What the public-key loader expects.
const EXPECT_PUBLIC: &str = "an SPKI public key (-----BEGIN PUBLIC KEY-----)";

/// A private key for signing: Ed25519 or ECDSA P-256. Its `Debug` shows only the
/// algorithm and key id; the key material is zeroized when it is dropped.
pub struct PrivateKey {
    key: Secret,
    public: PublicKey,
}

enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// A public key for verifying, named by its key id.
#[derive(Clone)]
pub struct PublicKey {
    key: Verifying,
    /// The SPKI DER as airlock encodes it; the key id is its digest.
    spki_der: Vec<u8>,
    id: Digest,
}

#[derive(Clone)]
enum Verifying {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl PrivateKey {
    /// A new key of `algorithm` from the operating system's RNG.
    pub fn generate(algorithm: Algorithm) -> Result<PrivateKey, KeyError> {
        let key = match algorithm {
            Algorithm::Ed25519 => Secret::Ed25519(
                ed25519_dalek::SigningKey::try_generate_from_rng(&mut SysRng)
                    .map_err(KeyError::Rng)?,
            ),
            Algorithm::EcdsaP256Sha256 => Secret::P256(
                p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng)
                    .map_err(KeyError::Rng)?,
            ),
        };
        Ok(PrivateKey::from_secret(key))
    }

    /// Reads the private key in `path`: PKCS#8 PEM, encrypted PKCS#8 PEM (asking
    /// `passphrase` only then) or SEC1 "EC PRIVATE KEY" PEM.
    pub fn load(path: &Path, passphrase: &dyn PassphraseSource) -> Result<PrivateKey, KeyError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::NotPem {
            path: path.to_path_buf(),
            detail: "it is not text; a DER key converts with \
                     `openssl pkey -inform DER -in KEY -out KEY.pem`"
                .into(),
            expected: EXPECT_PRIVATE,
        })?;
        PrivateKey::from_pem(text, path, passphrase)
    }

    /// [`PrivateKey::load`] from text already read; `path` names it in errors.
    pub fn from_pem(
        text: &str,
        path: &Path,
        passphrase: &dyn PassphraseSource,
    ) -> Result<PrivateKey, KeyError> {
        let Some(block) = pem::first_block(text) else {
            return Err(KeyError::NotPem {
                path: path.to_path_buf(),
                detail: "no -----BEGIN line".into(),
                expected: EXPECT_PRIVATE,
            });
        };
        match block.label {
            "PRIVATE KEY" => {
                let der = pem::decode(block, path, EXPECT_PRIVATE)?;
                PrivateKey::from_pkcs8_der(&der, path)
            }
            "ENCRYPTED PRIVATE KEY" => PrivateKey::from_encrypted(block, path, passphrase),
            "EC PRIVATE KEY" => PrivateKey::from_sec1(block, path),
            "RSA PRIVATE KEY" => Err(unsupported(path, "an RSA")),
            "DSA PRIVATE KEY" => Err(unsupported(path, "a DSA")),
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(KeyError::WrongKind {
                path: path.to_path_buf(),
                found: "a public key",
                hint: "signing needs the private key (the .key file, not the .pub)",
            }),
            other => Err(not_pem_label(path, other, EXPECT_PRIVATE)),
        }
    }

    fn from_encrypted(
        block: Block<'_>,
        path: &Path,
        source: &dyn PassphraseSource,
    ) -> Result<PrivateKey, KeyError> {
        let der = pem::decode(block, path, EXPECT_PRIVATE)?;
        let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(&der[..])
            .map_err(|e| malformed(path, "encrypted PKCS#8 private key", e))?;
        let passphrase = source
            .passphrase(path)
            .map_err(|source| KeyError::Passphrase {
                path: path.to_path_buf(),
                source,
            })?
            .ok_or_else(|| KeyError::NoPassphrase {
                path: path.to_path_buf(),
            })?;
        let wrong = || KeyError::WrongPassphrase {
            path: path.to_path_buf(),
            origin: passphrase.origin().to_string(),
        };
        let doc = info.decrypt(passphrase.as_bytes()).map_err(|e| match e {
            pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { oid }) => {
                KeyError::UnsupportedEncryption {
                    path: path.to_path_buf(),
                    what: format!("algorithm {oid}"),
                }
            }
            pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::NoPbes1CryptSupport) => {
                KeyError::UnsupportedEncryption {
                    path: path.to_path_buf(),
                    what: "PBES1 (a legacy scheme)".into(),
                }
            }
            pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::AlgorithmParametersInvalid {
                ..
            }) => malformed(path, "encrypted PKCS#8 private key", e),
            // A padding failure, or bytes that decrypted to something that is not DER:
            // what a wrong passphrase gives (AES-CBC has no other integrity check).
            _ => wrong(),
        })?;
        match PrivateKeyInfoRef::try_from(doc.as_bytes()) {
            Ok(_) => PrivateKey::from_pkcs8_der(doc.as_bytes(), path),
            Err(_) => Err(wrong()),
        }
    }

    fn from_sec1(block: Block<'_>, path: &Path) -> Result<PrivateKey, KeyError> {
        if pem::has_legacy_headers(block) {
            return Err(KeyError::UnsupportedEncryption {
                path: path.to_path_buf(),
                what: "legacy PEM encryption (a Proc-Type header)".into(),
            });
        }
        let der = pem::decode(block, path, EXPECT_PRIVATE)?;
        let secret = p256::SecretKey::from_sec1_der(&der).map_err(|e| KeyError::Malformed {
            path: path.to_path_buf(),
            what: "SEC1 EC private key (only the P-256 curve is supported)",
            detail: e.to_string(),
        })?;
        Ok(PrivateKey::from_secret(Secret::P256(secret.into())))
    }

    fn from_pkcs8_der(der: &[u8], path: &Path) -> Result<PrivateKey, KeyError> {
        let info = PrivateKeyInfoRef::try_from(der)
            .map_err(|e| malformed(path, "PKCS#8 private key", e))?;
        let key = match classify(&info.algorithm).map_err(|what| unsupported(path, &what))? {
            Algorithm::Ed25519 => Secret::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| malformed(path, "Ed25519 private key", e))?,
            ),
            Algorithm::EcdsaP256Sha256 => Secret::P256(
                p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| malformed(path, "P-256 private key", e))?,
            ),
        };
        Ok(PrivateKey::from_secret(key))
    }

    fn from_secret(key: Secret) -> PrivateKey {
        let public = PublicKey::from_verifying(match &key {
            Secret::Ed25519(k) => Verifying::Ed25519(k.verifying_key()),
            Secret::P256(k) => Verifying::P256(*k.verifying_key()),
        });
        PrivateKey { key, public }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key id of the public half (see [`PublicKey::key_id`]).
    pub fn key_id(&self) -> &Digest {
        self.public.key_id()
    }

    /// Signs `msg`: Ed25519 (deterministic, raw 64 bytes) or ECDSA P-256 over SHA-256
    /// of `msg` (RFC 6979 deterministic nonce, DER).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        match &self.key {
            Secret::Ed25519(k) => {
                Signature::new(Algorithm::Ed25519, k.sign(msg).to_bytes().to_vec())
            }
            Secret::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                Signature::new(Algorithm::EcdsaP256Sha256, sig.to_der().as_bytes().to_vec())
            }
        }
    }

    /// The raw private scalar / seed, for tests that look for it where it must not be.
    #[cfg(test)]
    pub(crate) fn secret_bytes(&self) -> Vec<u8> {
        match &self.key {
            Secret::Ed25519(k) => k.to_bytes().to_vec(),
            Secret::P256(k) => k.to_bytes().to_vec(),
        }
    }

    /// The key as unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), in zeroize-on-drop
    /// memory.
    ///
    /// Ed25519 keys are written as PKCS#8 v1 (the seed only), as `openssl genpkey`
    /// writes them: ed25519-dalek's own encoding is v2 (seed and public key), which
    /// OpenSSL 3.0 cannot read.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        match &self.key {
            Secret::Ed25519(k) => {
                let mut v1 = ed25519_dalek::pkcs8::KeypairBytes {
                    secret_key: k.to_bytes(),
                    public_key: None,
                };
                let pem = v1.to_pkcs8_pem(LineEnding::LF);
                // KeypairBytes zeroizes itself only with a feature ed25519 3.0 lacks.
                v1.secret_key.zeroize();
                pem
            }
            Secret::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .expect("an Ed25519 or P-256 key always encodes as PKCS#8")
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", self.key_id())
            .finish_non_exhaustive()
    }
}

/// The text of the PEM public key file `path`; a file that is not text is a
/// [`KeyError::NotPem`] saying how to convert a DER key, with `expected` saying what
/// the caller reads (airlock's keys, cosign's).
pub(crate) fn read_public_pem(path: &Path, expected: &'static str) -> Result<String, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| KeyError::NotPem {
        path: path.to_path_buf(),
        detail: "it is not text; a DER key converts with \
                 `openssl pkey -pubin -inform DER -in KEY -out KEY.pem`"
            .into(),
        expected,
    })
}

impl PublicKey {
    /// Reads the SPKI PEM public key ("BEGIN PUBLIC KEY") in `path`.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        PublicKey::from_pem(&read_public_pem(path, EXPECT_PUBLIC)?, path)
    }

    /// [`PublicKey::load`] from text already read; `path` names it in errors.
    pub fn from_pem(text: &str, path: &Path) -> Result<PublicKey, KeyError> {
        let Some(block) = pem::first_block(text) else {
            return Err(KeyError::NotPem {
                path: path.to_path_buf(),
                detail: "no -----BEGIN line".into(),
                expected: EXPECT_PUBLIC,
            });
        };
        match block.label {
            "PUBLIC KEY" => {
                let der = pem::decode(block, path, EXPECT_PUBLIC)?;
                PublicKey::from_spki_der(&der, path)
            }
            "RSA PUBLIC KEY" => Err(unsupported(path, "an RSA")),
            label if label.ends_with("PRIVATE KEY") => Err(KeyError::WrongKind {
                path: path.to_path_buf(),
                found: "a private key",
                hint: "give the public key (the .pub file; `openssl pkey -in KEY -pubout` \
                       writes it) and keep the private key on the signing side",
            }),
            "CERTIFICATE" => Err(KeyError::WrongKind {
                path: path.to_path_buf(),
                found: "a certificate",
                hint: "give its public key (`openssl x509 -in CERT -pubkey -noout` writes it)",
            }),
            other => Err(not_pem_label(path, other, EXPECT_PUBLIC)),
        }
    }

    /// A public key from SPKI DER (`SubjectPublicKeyInfo`); `path` names it in errors.
    pub fn from_spki_der(der: &[u8], path: &Path) -> Result<PublicKey, KeyError> {
        let spki = SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| malformed(path, "SPKI public key", e))?;
        let key = match classify(&spki.algorithm).map_err(|what| unsupported(path, &what))? {
            Algorithm::Ed25519 => Verifying::Ed25519(
                ed25519_dalek::VerifyingKey::try_from(spki)
                    .map_err(|e| malformed(path, "Ed25519 public key", e))?,
            ),
            Algorithm::EcdsaP256Sha256 => Verifying::P256(
                p256::ecdsa::VerifyingKey::try_from(spki)
                    .map_err(|e| malformed(path, "P-256 public key", e))?,
            ),
        };
        Ok(PublicKey::from_verifying(key))
    }

    fn from_verifying(key: Verifying) -> PublicKey {
        let doc = match &key {
            Verifying::Ed25519(k) => k.to_public_key_der(),
            Verifying::P256(k) => k.to_public_key_der(),
        }
        .expect("an Ed25519 or P-256 public key always encodes as SPKI");
        let spki_der = doc.as_bytes().to_vec();
        let id = Digest::of(&spki_der);
        PublicKey { key, spki_der, id }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.key {
            Verifying::Ed25519(_) => Algorithm::Ed25519,
            Verifying::P256(_) => Algorithm::EcdsaP256Sha256,
        }
    }

    /// The key id: `sha256:` + hex SHA-256 of [`PublicKey::spki_der`]. The same key
    /// always has the same id, whichever file or private key it came from.
    pub fn key_id(&self) -> &Digest {
        &self.id
    }

    /// The first 12 hex digits of the key id, for people.
    pub fn short_id(&self) -> &str {
        self.id.short()
    }

    /// The SPKI DER the key id is the digest of (P-256 points uncompressed, as
    /// openssl writes them).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The key as SPKI PEM ("BEGIN PUBLIC KEY"), what `openssl pkey -pubout` writes.
    pub fn to_pem(&self) -> String {
        pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.spki_der)
            .expect("a public key always encodes as PEM")
    }

    /// Checks that `sig` is this key's signature of `msg`. Ed25519 is verified
    /// strictly (no malleable or small-order signatures); ECDSA accepts high and low S,
    /// as openssl does.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), SignatureError> {
        if sig.algorithm() != self.algorithm() {
            return Err(SignatureError::AlgorithmMismatch {
                key_id: self.id.clone(),
                key: self.algorithm(),
                signature: sig.algorithm(),
            });
        }
        let invalid = |_| SignatureError::Invalid {
            key_id: self.id.clone(),
        };
        match &self.key {
            Verifying::Ed25519(k) => {
                let s = ed25519_dalek::Signature::from_slice(sig.as_bytes()).map_err(|_| {
                    SignatureError::Malformed {
                        algorithm: Algorithm::Ed25519,
                        detail: "not 64 bytes",
                    }
                })?;
                k.verify_strict(msg, &s).map_err(invalid)
            }
            Verifying::P256(k) => {
                let s = p256::ecdsa::Signature::from_der(sig.as_bytes()).map_err(|_| {
                    SignatureError::Malformed {
                        algorithm: Algorithm::EcdsaP256Sha256,
                        detail: "not a DER ECDSA signature of two P-256 scalars",
                    }
                })?;
                k.verify(msg, &s).map_err(invalid)
            }
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.id)
            .finish()
    }
}

/// The supported algorithm `alg` identifies, or the name of the unsupported one.
fn classify(alg: &AlgorithmIdentifierRef<'_>) -> Result<Algorithm, String> {
    if alg.oid == ED25519 {
        return Ok(Algorithm::Ed25519);
    }
    if alg.oid == EC_PUBLIC_KEY {
        let curve = alg
            .parameters_oid()
            .map_err(|_| "an EC (explicit curve parameters)".to_string())?;
        if curve == P256_CURVE {
            return Ok(Algorithm::EcdsaP256Sha256);
        }
        return Err(match curve.to_string().as_str() {
            "1.3.132.0.34" => "a P-384 EC".to_string(),
            "1.3.132.0.35" => "a P-521 EC".to_string(),
            "1.3.132.0.10" => "a secp256k1 EC".to_string(),
            other => format!("an EC (curve {other})"),
        });
    }
    Err(match alg.oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "an RSA".to_string(),
        "1.2.840.113549.1.1.10" => "an RSA-PSS".to_string(),
        "1.2.840.10040.4.1" => "a DSA".to_string(),
        "1.3.101.113" => "an Ed448".to_string(),
        "1.3.101.110" => "an X25519".to_string(),
        "1.3.101.111" => "an X448".to_string(),
        other => format!("an unrecognised (algorithm {other})"),
    })
}

fn unsupported(path: &Path, what: &str) -> KeyError {
    KeyError::Unsupported {
        path: path.to_path_buf(),
        what: what.to_string(),
    }
}

fn malformed(path: &Path, what: &'static str, e: impl fmt::Display) -> KeyError {
    KeyError::Malformed {
        path: path.to_path_buf(),
        what,
        detail: e.to_string(),
    }
}

fn not_pem_label(path: &Path, label: &str, expected: &'static str) -> KeyError {
    KeyError::NotPem {
        path: path.to_path_buf(),
        detail: format!("it holds a \"{label}\" block"),
        expected,
    }
}
