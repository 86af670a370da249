//! Unit tests of the signing layer that need no external tool; the openssl interop
//! tests are in `tests/signing_keys.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use getrandom::SysRng;
use pkcs8::der::pem;
use pkcs8::{LineEnding, PrivateKeyInfoRef};

use super::*;

const MSG: &[u8] = b"airlock bundle statement v1\n";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[bit / 8] ^= 1 << (bit % 8);
    b
}

/// The process umask, which narrows the modes files are created with.
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

/// `key` as encrypted PKCS#8 PEM under `password` (PBES2, pkcs8's recommended scheme).
fn encrypted_pem(key: &PrivateKey, password: &str) -> String {
    let plain = key.to_pkcs8_pem();
    let (_, der) = pem::decode_vec(plain.as_bytes()).unwrap();
    let doc = PrivateKeyInfoRef::try_from(&der[..])
        .unwrap()
        .encrypt_with_rng(&mut SysRng, password)
        .unwrap();
    doc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .unwrap()
        .to_string()
}

#[test]
fn sign_verify_round_trip_and_tampering_for_both_algorithms() {
    for alg in Algorithm::ALL {
        let key = PrivateKey::generate(alg).unwrap();
        assert_eq!(key.algorithm(), alg);
        let sig = key.sign(MSG);
        assert_eq!(sig.algorithm(), alg);
        let public = key.public_key();
        public.verify(MSG, &sig).unwrap();

        for bit in [0, 7, MSG.len() * 8 - 1] {
            let err = public.verify(&flip(MSG, bit), &sig).unwrap_err();
            assert_eq!(
                err,
                SignatureError::Invalid {
                    key_id: key.key_id().clone()
                },
                "{alg}: message bit {bit}"
            );
        }
        for bit in 0..sig.as_bytes().len() * 8 {
            let bad = Signature::new(alg, flip(sig.as_bytes(), bit));
            assert!(
                public.verify(MSG, &bad).is_err(),
                "{alg}: signature bit {bit}"
            );
        }
        let other = PrivateKey::generate(alg).unwrap();
        assert_ne!(other.key_id(), key.key_id());
        assert!(matches!(
            other.public_key().verify(MSG, &sig),
            Err(SignatureError::Invalid { .. })
        ));
        assert!(matches!(
            public.verify(MSG, &Signature::new(alg, vec![])),
            Err(SignatureError::Malformed { .. })
        ));
    }
}

#[test]
fn signature_shapes_are_what_openssl_uses() {
    let ed = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let sig = ed.sign(MSG);
    assert_eq!(sig.as_bytes().len(), 64);
    assert_eq!(ed.sign(MSG), sig, "Ed25519 is deterministic");
    let ec = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let sig = ec.sign(MSG);
    // DER: SEQUENCE { INTEGER r, INTEGER s }, at most 72 bytes.
    assert_eq!(sig.as_bytes()[0], 0x30);
    assert!(sig.as_bytes().len() <= 72);
}

#[test]
fn a_signature_of_another_algorithm_is_refused_by_name() {
    let ed = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let ec = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let err = ec.public_key().verify(MSG, &ed.sign(MSG)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the signature is ed25519 but key {} is ecdsa-p256-sha256",
            ec.key_id()
        )
    );
}

#[test]
fn pem_round_trips_keep_the_key_id() {
    for alg in Algorithm::ALL {
        let key = PrivateKey::generate(alg).unwrap();
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = PrivateKey::from_pem(&pem, Path::new("k.key"), &NoPassphrase).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        assert_eq!(again.sign(b"x").algorithm(), alg);

        let pub_pem = key.public_key().to_pem();
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let public = PublicKey::from_pem(&pub_pem, Path::new("k.pub")).unwrap();
        assert_eq!(&public, key.public_key());
        assert_eq!(public.key_id(), key.key_id());
        assert_eq!(public.key_id(), &Digest::of(public.spki_der()));
        assert!(public.key_id().as_str().starts_with("sha256:"));
        assert_eq!(public.short_id().len(), 12);
        assert!(public.key_id().hex().starts_with(public.short_id()));
        public.verify(MSG, &key.sign(MSG)).unwrap();
    }
}

#[test]
fn ed25519_keys_are_written_as_pkcs8_v1_like_openssl_does() {
    // OpenSSL 3.0 cannot read the v2 form (with the public key) ed25519-dalek writes.
    let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let text = key.to_pkcs8_pem();
    let (label, der) = pem::decode_vec(text.as_bytes()).unwrap();
    assert_eq!(label, "PRIVATE KEY");
    let info = PrivateKeyInfoRef::try_from(&der[..]).unwrap();
    assert_eq!(info.version(), pkcs8::Version::V1);
    assert!(info.public_key.is_none());
    assert_eq!(der.len(), 48, "the fixed size of openssl's Ed25519 PKCS#8");
}

#[test]
fn nothing_printable_carries_private_key_material() {
    for alg in Algorithm::ALL {
        let key = PrivateKey::generate(alg).unwrap();
        let secret = key.secret_bytes();
        let debug = format!("{key:?}");
        assert_eq!(
            debug,
            format!(
                "PrivateKey {{ algorithm: {alg:?}, key_id: {}, .. }}",
                key.key_id()
            )
        );
        assert!(!debug.contains(&hex::encode(&secret)));
        let sig = key.sign(MSG);
        assert!(!contains(sig.as_bytes(), &secret));
        assert!(!contains(key.public_key().spki_der(), &secret));
        let pub_pem = key.public_key().to_pem();
        let (_, der) = pem::decode_vec(pub_pem.as_bytes()).unwrap();
        assert!(!contains(&der, &secret));
        assert!(!format!("{:?}", key.public_key()).contains(&hex::encode(&secret)));
    }
}

#[test]
fn encrypted_keys_load_with_the_passphrase_and_fail_clearly_without() {
    let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let pem = encrypted_pem(&key, "correct horse");
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let path = Path::new("dir/release.key");

    let ok = PrivateKey::from_pem(&pem, path, &Passphrase::new("correct horse", "test")).unwrap();
    assert_eq!(ok.key_id(), key.key_id());

    let err = PrivateKey::from_pem(&pem, path, &Passphrase::new("wrong", "the test")).unwrap_err();
    assert!(matches!(err, KeyError::WrongPassphrase { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "dir/release.key: wrong passphrase (from the test); the key could not be decrypted"
    );

    let err = PrivateKey::from_pem(&pem, path, &NoPassphrase).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dir/release.key is encrypted and no passphrase is available: \
         set AIRLOCK_KEY_PASSPHRASE or run in a terminal"
    );

    // The source is asked only for encrypted keys.
    struct Panics;
    impl PassphraseSource for Panics {
        fn passphrase(&self, _: &Path) -> std::io::Result<Option<Passphrase>> {
            panic!("asked for a passphrase of a plain key")
        }
    }
    PrivateKey::from_pem(&key.to_pkcs8_pem(), path, &Panics).unwrap();
}

#[test]
fn wrong_files_get_errors_that_name_them_and_say_what_to_do() {
    let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let k = Path::new("a.key");
    let p = Path::new("a.pub");

    let err = PrivateKey::from_pem("hello\n", k, &NoPassphrase).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("a.key is not a PEM key file (no -----BEGIN line)")
    );

    let err = PrivateKey::from_pem(&key.public_key().to_pem(), k, &NoPassphrase).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a.key is a public key; signing needs the private key (the .key file, not the .pub)"
    );

    let err = PublicKey::from_pem(&key.to_pkcs8_pem(), p).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("a.pub is a private key; give the public key")
    );
    // The error must not echo the private key it refused.
    assert!(!err.to_string().contains("PRIVATE KEY-----"));

    let err = PrivateKey::from_pem(
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        k,
        &NoPassphrase,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("a.key holds an RSA key, which airlock does not support; airlock signs with Ed25519 or ECDSA P-256"),
        "{err}"
    );

    let err = PrivateKey::from_pem(
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
        k,
        &NoPassphrase,
    )
    .unwrap_err();
    assert!(matches!(err, KeyError::NotPem { .. }), "{err:?}");

    let err = PrivateKey::load(Path::new("/nonexistent/x.key"), &NoPassphrase).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read key file /nonexistent/x.key: ")
    );
}

#[test]
fn algorithm_names_parse_and_print() {
    for alg in Algorithm::ALL {
        assert_eq!(alg.name().parse::<Algorithm>().unwrap(), alg);
        assert_eq!(alg.to_string(), alg.name());
    }
    assert_eq!(Algorithm::default(), Algorithm::Ed25519);
    assert_eq!(
        "rsa".parse::<Algorithm>().unwrap_err().to_string(),
        "unknown signature algorithm `rsa` (supported: ed25519, ecdsa-p256-sha256)"
    );
}

#[test]
fn generated_key_files_have_the_right_modes_and_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("release-signing");
    let made = generate_key_pair(&out, Algorithm::default()).unwrap();
    assert_eq!(made.key_file, dir.path().join("release-signing.key"));
    assert_eq!(made.pub_file, dir.path().join("release-signing.pub"));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&made.key_file), 0o600 & !umask());
    assert_eq!(mode(&made.pub_file), 0o644 & !umask());

    let key = PrivateKey::load(&made.key_file, &NoPassphrase).unwrap();
    let public = PublicKey::load(&made.pub_file).unwrap();
    assert_eq!(key.algorithm(), Algorithm::Ed25519);
    assert_eq!(key.key_id(), made.public_key.key_id());
    assert_eq!(public.key_id(), key.key_id());
    let pub_text = std::fs::read(&made.pub_file).unwrap();
    assert!(!contains(&pub_text, b"PRIVATE"));

    // Neither file is replaced, whichever exists; the error names it.
    let key_before = std::fs::read(&made.key_file).unwrap();
    let err = generate_key_pair(&out, Algorithm::EcdsaP256Sha256).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "refusing to overwrite {}: the file exists (choose another name or move it away)",
            made.key_file.display()
        )
    );
    assert_eq!(std::fs::read(&made.key_file).unwrap(), key_before);

    let out2 = dir.path().join("second");
    std::fs::write(dir.path().join("second.pub"), "mine").unwrap();
    let err = generate_key_pair(&out2, Algorithm::Ed25519).unwrap_err();
    assert!(matches!(&err, KeyError::Exists { path } if path.ends_with("second.pub")));
    assert!(!dir.path().join("second.key").exists());
    assert_eq!(
        std::fs::read(dir.path().join("second.pub")).unwrap(),
        b"mine"
    );

    // write_key_pair checks too, and no temporary file is left behind.
    let err = write_key_pair(&out, &key).unwrap_err();
    assert!(matches!(err, KeyError::Exists { .. }));
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["release-signing.key", "release-signing.pub", "second.pub"]
    );
}

#[test]
fn key_pair_paths_append_the_suffixes() {
    let (k, p) = key_pair_paths(Path::new("keys/release.v2"));
    assert_eq!(k, Path::new("keys/release.v2.key"));
    assert_eq!(p, Path::new("keys/release.v2.pub"));
}
