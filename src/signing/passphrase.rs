//! Where the passphrase of an encrypted private key comes from.
//!
//! Never from a command-line argument (it would sit in `ps`, shell history and CI
//! logs): [`EnvOrTerminal`], the source the commands use, takes `AIRLOCK_KEY_PASSPHRASE`
//! when it is set and otherwise, when stdin is a terminal, prompts on the terminal
//! without echo (via `rpassword`). Anything else gets no passphrase, and loading the
//! key then fails with "set AIRLOCK_KEY_PASSPHRASE or run in a terminal".
//!
//! The source is a trait so loading can be tested without a terminal or the process
//! environment: tests hand a fixed [`Passphrase`] or [`NoPassphrase`]. It is asked only
//! when a key turns out to be encrypted, once per key file.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use pkcs8::der::zeroize::Zeroizing;

/// The environment variable holding the passphrase of encrypted private keys.
pub const PASSPHRASE_ENV: &str = "AIRLOCK_KEY_PASSPHRASE";

/// A passphrase (zeroized on drop) and where it came from, for error messages.
#[derive(Clone)]
pub struct Passphrase {
    bytes: Zeroizing<Vec<u8>>,
    origin: String,
}

impl Passphrase {
    /// `origin` says where it came from ("AIRLOCK_KEY_PASSPHRASE", "the terminal"), as
    /// the wrong-passphrase error repeats it.
    pub fn new(bytes: impl Into<Vec<u8>>, origin: impl Into<String>) -> Passphrase {
        Passphrase {
            bytes: Zeroizing::new(bytes.into()),
            origin: origin.into(),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passphrase")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Supplies the passphrase of an encrypted key file, when one is available.
pub trait PassphraseSource {
    /// The passphrase for the encrypted key in `key_file`; `Ok(None)` when there is no
    /// way to get one (which the caller reports as such), `Err` when asking failed.
    fn passphrase(&self, key_file: &Path) -> io::Result<Option<Passphrase>>;
}

/// `AIRLOCK_KEY_PASSPHRASE`, else a no-echo prompt when stdin is a terminal, else none.
#[derive(Debug, Default, Clone, Copy)]
pub struct EnvOrTerminal;

impl PassphraseSource for EnvOrTerminal {
    fn passphrase(&self, key_file: &Path) -> io::Result<Option<Passphrase>> {
        resolve(
            std::env::var_os(PASSPHRASE_ENV),
            io::stdin().is_terminal(),
            key_file,
            rpassword::prompt_password,
        )
    }
}

/// The decision of [`EnvOrTerminal`], with its inputs passed in so it can be tested:
/// the variable's value, whether stdin is a terminal, and the prompt to call.
fn resolve(
    env: Option<OsString>,
    terminal: bool,
    key_file: &Path,
    prompt: impl FnOnce(String) -> io::Result<String>,
) -> io::Result<Option<Passphrase>> {
    if let Some(value) = env {
        return Ok(Some(Passphrase::new(value.into_vec(), PASSPHRASE_ENV)));
    }
    if !terminal {
        return Ok(None);
    }
    let typed = Zeroizing::new(prompt(format!("Passphrase for {}: ", key_file.display()))?);
    Ok(Some(Passphrase::new(typed.as_bytes(), "the terminal")))
}

/// No passphrase is ever available: encrypted keys fail to load.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPassphrase;

impl PassphraseSource for NoPassphrase {
    fn passphrase(&self, _: &Path) -> io::Result<Option<Passphrase>> {
        Ok(None)
    }
}

/// A passphrase already in hand is its own source.
impl PassphraseSource for Passphrase {
    fn passphrase(&self, _: &Path) -> io::Result<Option<Passphrase>> {
        Ok(Some(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_prompt(_: String) -> io::Result<String> {
        panic!("must not prompt")
    }

    #[test]
    fn the_variable_wins_even_on_a_terminal_and_even_empty() {
        let p = resolve(Some("s3cret".into()), true, Path::new("k"), no_prompt)
            .unwrap()
            .unwrap();
        assert_eq!(p.as_bytes(), b"s3cret");
        assert_eq!(p.origin(), PASSPHRASE_ENV);
        let p = resolve(Some("".into()), false, Path::new("k"), no_prompt)
            .unwrap()
            .unwrap();
        assert_eq!(p.as_bytes(), b"");
    }

    #[test]
    fn without_the_variable_a_terminal_is_prompted_naming_the_file() {
        let p = resolve(None, true, Path::new("dir/release.key"), |prompt| {
            assert_eq!(prompt, "Passphrase for dir/release.key: ");
            Ok("typed".to_string())
        })
        .unwrap()
        .unwrap();
        assert_eq!(p.as_bytes(), b"typed");
        assert_eq!(p.origin(), "the terminal");
        let err = resolve(None, true, Path::new("k"), |_| {
            Err(io::Error::other("no tty"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "no tty");
    }

    #[test]
    fn without_the_variable_or_a_terminal_there_is_none() {
        assert!(
            resolve(None, false, Path::new("k"), no_prompt)
                .unwrap()
                .is_none()
        );
        assert!(NoPassphrase.passphrase(Path::new("k")).unwrap().is_none());
    }

    #[test]
    fn debug_does_not_show_the_passphrase() {
        let p = Passphrase::new("hunter2", "test");
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
