//! The signing layer against `openssl` (Debian package `openssl`, installed by
//! `scripts/test.sh`): keys openssl makes load in airlock with the same key id, keys
//! airlock makes load in openssl, and signatures cross both ways with exactly the
//! commands a reviewer without airlock would type.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlock::digest::Digest;
use airlock::signing::{
    Algorithm, KeyError, NoPassphrase, Passphrase, PrivateKey, PublicKey, Signature,
    generate_key_pair,
};

/// A message with a bit of everything: text, a NUL, high bytes, no final newline.
const MSG: &[u8] = b"airlock bundle statement\nformat 1\n\x00\xff\xfe toc sha256:0123";

/// `openssl genpkey` arguments for each algorithm.
fn genpkey_args(alg: Algorithm) -> &'static [&'static str] {
    match alg {
        Algorithm::Ed25519 => &["-algorithm", "ed25519"],
        Algorithm::EcdsaP256Sha256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    }
}

/// Runs `openssl ARGS` in `dir`; its output, whether it succeeded or not.
fn openssl_output(dir: &Path, args: &[&str]) -> Output {
    let found = Command::new("sh")
        .args(["-c", "command -v openssl"])
        .output()
        .expect("sh runs");
    assert!(
        found.status.success(),
        "openssl is not installed: install the Debian package `openssl` \
         (scripts/test.sh does, as root)"
    );
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs")
}

/// Runs `openssl ARGS` in `dir`, which must succeed; its stdout.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = openssl_output(dir, args);
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `openssl genpkey` of `alg` into `dir/name` (plus `extra` arguments); the path.
fn genpkey(dir: &Path, alg: Algorithm, name: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey_args(alg));
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-out", name]);
    openssl(dir, &args);
    dir.join(name)
}

/// The key id of the public key in `pub_pem`, computed by openssl and sha256 alone.
fn openssl_key_id(dir: &Path, pub_pem: &Path) -> Digest {
    let der = openssl(
        dir,
        &[
            "pkey",
            "-pubin",
            "-in",
            pub_pem.to_str().unwrap(),
            "-outform",
            "DER",
        ],
    );
    Digest::of(&der)
}

/// The raw private key bytes (Ed25519 seed or P-256 scalar) as `openssl pkey -text`
/// prints them.
fn openssl_private_bytes(dir: &Path, key: &Path) -> Vec<u8> {
    let text = openssl(
        dir,
        &["pkey", "-in", key.to_str().unwrap(), "-text", "-noout"],
    );
    let text = String::from_utf8(text).unwrap();
    let priv_hex: String = text
        .split("priv:")
        .nth(1)
        .unwrap()
        .split("pub:")
        .next()
        .unwrap()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let bytes = hex::decode(priv_hex).unwrap();
    // openssl prints a leading 00 when the scalar's top bit is set.
    bytes[bytes.len() - 32..].to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn openssl_keys_load_plain_encrypted_and_sec1_with_the_key_id_openssl_computes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = Passphrase::new("s3cret pass", "the test");
    for alg in Algorithm::ALL {
        let plain = genpkey(d, alg, &format!("{alg}.pem"), &[]);
        let enc = genpkey(
            d,
            alg,
            &format!("{alg}-enc.pem"),
            &["-aes-256-cbc", "-pass", "pass:s3cret pass"],
        );
        assert!(
            std::fs::read_to_string(&enc)
                .unwrap()
                .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        );
        // The same key re-encrypted with scrypt instead of PBKDF2.
        let scrypt = d.join(format!("{alg}-scrypt.pem"));
        openssl(
            d,
            &[
                "pkcs8",
                "-topk8",
                "-scrypt",
                "-in",
                plain.to_str().unwrap(),
                "-passout",
                "pass:s3cret pass",
                "-out",
                scrypt.to_str().unwrap(),
            ],
        );

        for (key_file, passin) in [
            (&plain, None),
            (&enc, Some("pass:s3cret pass")),
            (&scrypt, Some("pass:s3cret pass")),
        ] {
            let public = d.join(format!(
                "{}.pub",
                key_file.file_name().unwrap().to_str().unwrap()
            ));
            let mut args = vec!["pkey", "-in", key_file.to_str().unwrap(), "-pubout"];
            if let Some(p) = passin {
                args.extend_from_slice(&["-passin", p]);
            }
            args.extend_from_slice(&["-out", public.to_str().unwrap()]);
            openssl(d, &args);

            let key = PrivateKey::load(key_file, &secret).unwrap();
            let pubkey = PublicKey::load(&public).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(pubkey.algorithm(), alg);
            assert_eq!(pubkey.key_id(), key.key_id(), "{}", key_file.display());
            assert_eq!(pubkey.key_id(), &openssl_key_id(d, &public));
            // Our PEM of the public key is openssl's, byte for byte.
            assert_eq!(pubkey.to_pem(), std::fs::read_to_string(&public).unwrap());
            pubkey.verify(MSG, &key.sign(MSG)).unwrap();
        }
    }

    // A P-256 public key written with a compressed point is the same key, same id.
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "ecdsa-p256-sha256.pem",
            "-pubout",
            "-out",
            "p256.pub",
        ],
    );
    openssl(
        d,
        &[
            "ec",
            "-pubin",
            "-in",
            "p256.pub",
            "-conv_form",
            "compressed",
            "-pubout",
            "-out",
            "p256c.pub",
        ],
    );
    let full = PublicKey::load(&d.join("p256.pub")).unwrap();
    let compressed = PublicKey::load(&d.join("p256c.pub")).unwrap();
    assert_ne!(
        std::fs::read(d.join("p256.pub")).unwrap(),
        std::fs::read(d.join("p256c.pub")).unwrap()
    );
    assert_eq!(compressed.key_id(), full.key_id());

    // `openssl ecparam -genkey` writes SEC1 ("EC PRIVATE KEY") after "EC PARAMETERS".
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "sec1.pem",
        ],
    );
    let text = std::fs::read_to_string(d.join("sec1.pem")).unwrap();
    assert!(text.contains("BEGIN EC PARAMETERS") && text.contains("BEGIN EC PRIVATE KEY"));
    openssl(
        d,
        &["pkey", "-in", "sec1.pem", "-pubout", "-out", "sec1.pub"],
    );
    let key = PrivateKey::load(&d.join("sec1.pem"), &NoPassphrase).unwrap();
    assert_eq!(key.algorithm(), Algorithm::EcdsaP256Sha256);
    assert_eq!(key.key_id(), &openssl_key_id(d, &d.join("sec1.pub")));
}

#[test]
fn airlock_signatures_verify_with_the_openssl_commands_of_the_docs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("msg"), MSG).unwrap();
    let mut tampered = MSG.to_vec();
    tampered[3] ^= 0x10;
    std::fs::write(d.join("tampered"), &tampered).unwrap();
    for alg in Algorithm::ALL {
        let made = generate_key_pair(&d.join(alg.name()), alg).unwrap();
        let key = PrivateKey::load(&made.key_file, &NoPassphrase).unwrap();
        let sig = key.sign(MSG);
        let sig_file = format!("{alg}.sig");
        std::fs::write(d.join(&sig_file), sig.as_bytes()).unwrap();
        let public = made.pub_file.to_str().unwrap();

        let verify = |msg: &str| match alg {
            Algorithm::Ed25519 => openssl_output(
                d,
                &[
                    "pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin", "-in", msg,
                    "-sigfile", &sig_file,
                ],
            ),
            Algorithm::EcdsaP256Sha256 => openssl_output(
                d,
                &[
                    "dgst",
                    "-sha256",
                    "-verify",
                    public,
                    "-signature",
                    &sig_file,
                    msg,
                ],
            ),
        };
        let ok = verify("msg");
        assert!(
            ok.status.success(),
            "{alg}: openssl rejects airlock's signature: {}{}",
            String::from_utf8_lossy(&ok.stdout),
            String::from_utf8_lossy(&ok.stderr)
        );
        let out = String::from_utf8_lossy(&ok.stdout);
        assert!(out.contains("Verified"), "{alg}: {out}");
        assert!(
            !verify("tampered").status.success(),
            "{alg}: openssl accepts a tampered message"
        );

        // openssl reads airlock's private key file and derives the same public key.
        let derived = openssl(
            d,
            &["pkey", "-in", made.key_file.to_str().unwrap(), "-pubout"],
        );
        assert_eq!(derived, std::fs::read(&made.pub_file).unwrap());
        assert_eq!(made.public_key.key_id(), &openssl_key_id(d, &made.pub_file));
    }
}

#[test]
fn openssl_signatures_verify_in_airlock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for alg in Algorithm::ALL {
        let key = genpkey(d, alg, &format!("{alg}.pem"), &[]);
        let key = key.to_str().unwrap();
        openssl(d, &["pkey", "-in", key, "-pubout", "-out", "pub.pem"]);
        let public = PublicKey::load(&d.join("pub.pem")).unwrap();
        // ECDSA signatures from openssl are randomised, with high and low S alike:
        // sign several messages so both occur.
        for i in 0..12 {
            let mut msg = MSG.to_vec();
            msg.push(b'0' + i);
            std::fs::write(d.join("msg"), &msg).unwrap();
            let sig = match alg {
                Algorithm::Ed25519 => openssl(
                    d,
                    &["pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", "msg"],
                ),
                Algorithm::EcdsaP256Sha256 => openssl(d, &["dgst", "-sha256", "-sign", key, "msg"]),
            };
            let sig = Signature::new(alg, sig);
            public
                .verify(&msg, &sig)
                .unwrap_or_else(|e| panic!("{alg}: openssl's signature {i} rejected: {e}"));
            msg[0] ^= 1;
            assert!(public.verify(&msg, &sig).is_err());
        }
    }
}

#[test]
fn generated_files_keep_the_private_key_private() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for alg in Algorithm::ALL {
        let out = d.join(format!("gen-{alg}"));
        let made = generate_key_pair(&out, alg).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&made.key_file), 0o600);
        assert_eq!(mode(&made.pub_file) & 0o600, 0o600);
        assert_eq!(mode(&made.pub_file) & 0o022, 0);

        // The private bytes as openssl sees them appear in neither the public key
        // (PEM or DER) nor a signature.
        let secret = openssl_private_bytes(d, &made.key_file);
        let pub_pem = std::fs::read(&made.pub_file).unwrap();
        let pub_der = openssl(
            d,
            &[
                "pkey",
                "-pubin",
                "-in",
                made.pub_file.to_str().unwrap(),
                "-outform",
                "DER",
            ],
        );
        assert!(!contains(&pub_pem, &secret) && !contains(&pub_der, &secret));
        assert!(!contains(&pub_pem, hex::encode(&secret).as_bytes()));
        let key = PrivateKey::load(&made.key_file, &NoPassphrase).unwrap();
        let sig = key.sign(MSG);
        assert!(!contains(sig.as_bytes(), &secret));
        assert!(!format!("{key:?} {sig:?}").contains(&hex::encode(&secret)));

        // A second generate into the same name refuses and leaves both files alone.
        let before = std::fs::read(&made.key_file).unwrap();
        let err = generate_key_pair(&out, alg).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err:?}");
        assert_eq!(std::fs::read(&made.key_file).unwrap(), before);
        assert_eq!(std::fs::read(&made.pub_file).unwrap(), pub_pem);
    }
}

#[test]
fn wrong_passphrase_missing_passphrase_and_unsupported_keys_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let enc = genpkey(
        d,
        Algorithm::EcdsaP256Sha256,
        "enc.pem",
        &["-aes-256-cbc", "-pass", "pass:right"],
    );
    let err =
        PrivateKey::load(&enc, &Passphrase::new("wrong", "AIRLOCK_KEY_PASSPHRASE")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: wrong passphrase (from AIRLOCK_KEY_PASSPHRASE); the key could not be decrypted",
            enc.display()
        )
    );
    let err = PrivateKey::load(&enc, &NoPassphrase).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} is encrypted and no passphrase is available: \
             set AIRLOCK_KEY_PASSPHRASE or run in a terminal",
            enc.display()
        )
    );

    let supported = "which airlock does not support; airlock signs with Ed25519 or ECDSA P-256";
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
    );
    openssl(d, &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub"]);
    let err = PrivateKey::load(&d.join("rsa.pem"), &NoPassphrase).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{} holds an RSA key, {supported}",
            d.join("rsa.pem").display()
        )),
        "{err}"
    );
    let err = PublicKey::load(&d.join("rsa.pub")).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{} holds an RSA key, {supported}",
            d.join("rsa.pub").display()
        )),
        "{err}"
    );
    // Encrypted RSA: decrypted first, then refused by algorithm, not by passphrase.
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "rsa.pem",
            "-aes-256-cbc",
            "-passout",
            "pass:right",
            "-out",
            "rsa-enc.pem",
        ],
    );
    let err = PrivateKey::load(&d.join("rsa-enc.pem"), &Passphrase::new("right", "t")).unwrap_err();
    assert!(err.to_string().contains("holds an RSA key"), "{err}");

    for (name, args, what) in [
        ("ed448.pem", &["-algorithm", "ed448"][..], "an Ed448 key"),
        (
            "p384.pem",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
            "a P-384 EC key",
        ),
    ] {
        let mut a = vec!["genpkey"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-out", name]);
        openssl(d, &a);
        let err = PrivateKey::load(&d.join(name), &NoPassphrase).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("holds {what}, {supported}")),
            "{err}"
        );
    }

    // The legacy OpenSSL encryption of a SEC1 file is refused with the conversion.
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.pem",
        ],
    );
    openssl(
        d,
        &[
            "ec",
            "-in",
            "sec1.pem",
            "-aes256",
            "-passout",
            "pass:right",
            "-out",
            "sec1-enc.pem",
        ],
    );
    let err =
        PrivateKey::load(&d.join("sec1-enc.pem"), &Passphrase::new("right", "t")).unwrap_err();
    assert!(
        matches!(err, KeyError::UnsupportedEncryption { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
        "{err}"
    );

    // Not a key at all; a DER file.
    std::fs::write(d.join("notes.txt"), "just some notes\n").unwrap();
    let err = PrivateKey::load(&d.join("notes.txt"), &NoPassphrase).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{} is not a PEM key file",
            d.join("notes.txt").display()
        )),
        "{err}"
    );
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "enc.pem",
            "-passin",
            "pass:right",
            "-outform",
            "DER",
            "-out",
            "k.der",
        ],
    );
    let err = PrivateKey::load(&d.join("k.der"), &NoPassphrase).unwrap_err();
    assert!(
        err.to_string().contains("openssl pkey -inform DER"),
        "{err}"
    );
}
