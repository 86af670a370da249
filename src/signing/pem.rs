//! Finding the PEM block in a key file: the envelope, not the crypto.
//!
//! A key file may hold more than one block (`openssl ecparam -genkey` writes an
//! "EC PARAMETERS" block before the key) and text around them (comments, a trailing
//! newline or not). This finds the first block that is not curve parameters, returns
//! its label, and decodes it with `pem-rfc7468` (through `pkcs8::der::pem`), keeping
//! the decoded bytes in zeroize-on-drop memory.

use std::path::Path;

use pkcs8::der::pem;
use pkcs8::der::zeroize::Zeroizing;

use super::KeyError;

/// One `-----BEGIN LABEL----- ... -----END LABEL-----` block of a file.
#[derive(Clone, Copy)]
pub(super) struct Block<'a> {
    pub label: &'a str,
    pub text: &'a str,
}

/// The first PEM block of `text` that is not "EC PARAMETERS", or `None`.
pub(super) fn first_block(text: &str) -> Option<Block<'_>> {
    const BEGIN: &str = "-----BEGIN ";
    let mut pos = 0;
    while let Some(i) = text[pos..].find(BEGIN) {
        let start = pos + i;
        let after = start + BEGIN.len();
        let line_end = text[after..].find('\n').map_or(text.len(), |n| after + n);
        let Some(j) = text[after..line_end].find("-----") else {
            pos = after;
            continue;
        };
        let label = &text[after..after + j];
        let end_marker = format!("-----END {label}-----");
        let end = match text[after..].find(&end_marker) {
            Some(k) => after + k + end_marker.len(),
            None => text.len(),
        };
        if label != "EC PARAMETERS" {
            return Some(Block {
                label,
                text: &text[start..end],
            });
        }
        pos = end;
    }
    None
}

/// Whether the block carries RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`, the legacy
/// OpenSSL encryption of "EC PRIVATE KEY" and "RSA PRIVATE KEY" files).
pub(super) fn has_legacy_headers(block: Block<'_>) -> bool {
    block.text.contains("Proc-Type:") || block.text.contains("DEK-Info:")
}

/// The DER bytes of `block`.
pub(super) fn decode(
    block: Block<'_>,
    path: &Path,
    expected: &'static str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match pem::decode_vec(block.text.as_bytes()) {
        Ok((_, der)) => Ok(Zeroizing::new(der)),
        Err(e) => Err(KeyError::NotPem {
            path: path.to_path_buf(),
            detail: format!("the {} block does not decode: {e}", block.label),
            expected,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_after_curve_parameters_and_around_text() {
        let text = "comment\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\ntrailer";
        let b = first_block(text).unwrap();
        assert_eq!(b.label, "EC PRIVATE KEY");
        assert!(b.text.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        assert!(b.text.ends_with("-----END EC PRIVATE KEY-----"));
        assert!(first_block("no pem here").is_none());
        assert!(
            first_block("-----BEGIN EC PARAMETERS-----\n-----END EC PARAMETERS-----\n").is_none()
        );
        // A truncated block is still found (and then fails to decode, by its label).
        assert_eq!(
            first_block("-----BEGIN PRIVATE KEY-----\nAAAA")
                .unwrap()
                .label,
            "PRIVATE KEY"
        );
    }
}
