//! Content digests and the readers that compute and check them while bytes stream.
//!
//! Everything airlock trusts is addressed by digest, so this module is deliberately
//! small and strict: a [`Digest`] is always `sha256:` followed by 64 lowercase hex
//! digits (the only algorithm registries and Docker use in practice), and the only way
//! to trust a stream is to read it through a [`VerifyingReader`], which fails the read
//! that reaches the end of the stream when the size or the hash is wrong. Callers
//! therefore cannot forget to compare: an unverified stream never reports a clean EOF.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A `sha256:<64 hex>` content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a string is not a digest airlock accepts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest `{0}` has no algorithm (expected `sha256:<64 hex digits>`)")]
    NoAlgorithm(String),
    #[error("digest `{0}` uses an unsupported algorithm (only sha256 is supported)")]
    Algorithm(String),
    #[error("digest `{0}` is not 64 lowercase hex digits after `sha256:`")]
    Hex(String),
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::NoAlgorithm(s.to_string()));
        };
        if alg != "sha256" {
            return Err(DigestError::Algorithm(s.to_string()));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::Hex(s.to_string()));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(h.finalize())))
    }

    /// The hex part, which is also the file name under `blobs/sha256/`.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// `sha256-<hex>`: the tag the OCI referrers tag schema lists this manifest's
    /// referrers under, and the stem of cosign's `.sig`/`.att`/`.sbom` tags.
    pub fn referrers_tag(&self) -> String {
        format!("sha256-{}", self.hex())
    }

    /// `blobs/sha256/<hex>`, the path of this blob in an OCI layout and in a bundle.
    pub fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }

    /// The first 12 hex digits, for compact display.
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Streaming sha256 plus a byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.sha), self.len)
    }
}

/// What a [`VerifyingReader`] found wrong; carried inside the `io::Error` it returns
/// (kind `InvalidData`) so it passes through any `Read` plumbing, and recoverable with
/// [`Mismatch::from_io`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Mismatch {
    #[error("expected {expected} but the content hashes to {actual}")]
    Digest { expected: Digest, actual: Digest },
    #[error("expected {expected} bytes but got {actual}")]
    Size { expected: u64, actual: u64 },
    #[error("expected {expected} bytes but got more")]
    TooLong { expected: u64 },
}

impl Mismatch {
    /// The mismatch carried by an error a [`VerifyingReader`] returned, if that is what it is.
    pub(crate) fn from_io(e: &io::Error) -> Option<&Mismatch> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Mismatch>())
    }
}

/// A reader that checks the size and digest of the stream it wraps. It never reads
/// more than `expected_size + 1` bytes from the inner reader. The digest is checked as
/// soon as the last expected byte arrives, and on a mismatch that read fails *instead
/// of* handing out those bytes: a consumer that stops after exactly `expected_size`
/// bytes (an HTTP body of known length) never receives a complete damaged blob. A
/// stream that is too short or too long fails on the read that finds out.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    expected_size: u64,
    hasher: Hasher,
    /// The digest matched once all expected bytes were read.
    verified: bool,
    /// End of stream seen and everything checked.
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: u64) -> Self {
        VerifyingReader {
            inner,
            expected,
            expected_size,
            hasher: Hasher::new(),
            verified: false,
            done: false,
        }
    }

    fn check_end(&mut self) -> io::Result<()> {
        let got = self.hasher.len();
        if got != self.expected_size {
            return Err(mismatch(Mismatch::Size {
                expected: self.expected_size,
                actual: got,
            }));
        }
        self.check_digest()?;
        self.done = true;
        Ok(())
    }

    /// Compares the digest once every expected byte has been hashed (once).
    fn check_digest(&mut self) -> io::Result<()> {
        if self.verified {
            return Ok(());
        }
        let (actual, len) = std::mem::take(&mut self.hasher).finish();
        // Keep the count: later reads still compare it with the expected size.
        self.hasher.len = len;
        if actual != self.expected {
            return Err(mismatch(Mismatch::Digest {
                expected: self.expected.clone(),
                actual,
            }));
        }
        self.verified = true;
        Ok(())
    }
}

fn mismatch(m: Mismatch) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m)
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        // Allow one byte past the expected size so an over-long stream is noticed.
        let remaining = (self.expected_size - self.hasher.len().min(self.expected_size)) + 1;
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.check_end()?;
            return Ok(0);
        }
        if self.verified {
            // Every expected byte was already read and matched: anything more is too much.
            return Err(mismatch(Mismatch::TooLong {
                expected: self.expected_size,
            }));
        }
        self.hasher.update(&buf[..n]);
        if self.hasher.len() > self.expected_size {
            return Err(mismatch(Mismatch::TooLong {
                expected: self.expected_size,
            }));
        }
        if self.hasher.len() == self.expected_size {
            // Withhold the last bytes of a damaged blob rather than hand them out.
            self.check_digest()?;
        }
        Ok(n)
    }
}

/// Reads `reader` to the end through a [`VerifyingReader`] into memory. For small
/// objects only (manifests, configs); `limit` guards against a source that lies.
pub(crate) fn read_verified(
    reader: impl Read,
    expected: &Digest,
    size: u64,
    limit: u64,
) -> io::Result<Vec<u8>> {
    if size > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{expected} claims {size} bytes, more than the {limit} allowed for this kind of object"
            ),
        ));
    }
    let mut out = Vec::with_capacity(size as usize);
    VerifyingReader::new(reader, expected.clone(), size).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_tag_is_the_digest_with_a_dash() {
        assert_eq!(
            Digest::of(b"").referrers_tag(),
            "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_rejects() {
        assert_eq!(Digest::parse(EMPTY).unwrap().hex().len(), 64);
        assert!(matches!(
            Digest::parse("e3b0"),
            Err(DigestError::NoAlgorithm(_))
        ));
        assert!(matches!(
            Digest::parse("sha512:abc"),
            Err(DigestError::Algorithm(_))
        ));
        assert!(matches!(
            Digest::parse(&EMPTY.to_uppercase().replace("SHA256", "sha256")),
            Err(DigestError::Hex(_))
        ));
        assert!(matches!(
            Digest::parse("sha256:abc"),
            Err(DigestError::Hex(_))
        ));
    }

    #[test]
    fn digest_of_empty() {
        assert_eq!(Digest::of(b"").as_str(), EMPTY);
        assert_eq!(
            Digest::of(b"").blob_path(),
            format!("blobs/sha256/{}", &EMPTY[7..])
        );
    }

    #[test]
    fn verifying_reader_accepts_good_stream() {
        let data = b"hello world";
        let mut r = VerifyingReader::new(&data[..], Digest::of(data), data.len() as u64);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn verifying_reader_rejects_wrong_bytes_short_and_long() {
        let data = b"hello world";
        let d = Digest::of(data);
        let err = VerifyingReader::new(&b"hello_world"[..], d.clone(), 11)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(
            Mismatch::from_io(&err),
            Some(Mismatch::Digest { .. })
        ));
        let err = VerifyingReader::new(&b"hello"[..], d.clone(), 11)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(
            Mismatch::from_io(&err),
            Some(&Mismatch::Size {
                expected: 11,
                actual: 5
            })
        );
        let err = VerifyingReader::new(&b"hello world!"[..], d, 11)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(
            Mismatch::from_io(&err),
            Some(&Mismatch::TooLong { expected: 11 })
        );
    }

    #[test]
    fn damage_is_reported_before_the_last_bytes_are_handed_out() {
        // A consumer that reads exactly `size` bytes (an HTTP body of known length)
        // must see the error within those reads, never a complete damaged blob.
        let good = b"hello, world".to_vec();
        let digest = Digest::of(&good);
        let mut bad = good.clone();
        bad[3] ^= 1;
        let mut r = VerifyingReader::new(&bad[..], digest.clone(), bad.len() as u64);
        let (mut got, mut buf) = (0, [0u8; 5]);
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("a damaged blob read to the end"),
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert!(got < bad.len());
        assert!(matches!(
            Mismatch::from_io(&err),
            Some(Mismatch::Digest { .. })
        ));
        // A good blob read exactly to its size, then to the end, is fine.
        let mut r = VerifyingReader::new(&good[..], digest, good.len() as u64);
        let mut out = vec![0u8; good.len()];
        r.read_exact(&mut out).unwrap();
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        assert_eq!(out, good);
    }

    #[test]
    fn read_verified_enforces_limit() {
        let d = Digest::of(b"abc");
        assert!(read_verified(&b"abc"[..], &d, 3, 2).is_err());
        assert_eq!(read_verified(&b"abc"[..], &d, 3, 10).unwrap(), b"abc");
    }
}
