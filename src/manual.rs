//! `airlock completions SHELL` and `airlock man`: shell completion scripts
//! (`clap_complete`) and a roff man page (`clap_mangen`), both generated from the
//! command-line definitions in [`crate::cli`], so they never drift from `--help`.
//! Both are data: they go to stdout, to be redirected into place.

use std::io::{self, Write};

use clap::CommandFactory;

use crate::cli::{Cli, Shell};

/// Writes the completion script for `shell` to `w`.
pub fn completions(shell: Shell, w: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    let mut buf = Vec::new();
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut buf)
        }
        Shell::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, &mut buf),
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, &mut buf)
        }
        Shell::Powershell => {
            clap_complete::generate(clap_complete::Shell::PowerShell, &mut cmd, name, &mut buf)
        }
        Shell::Elvish => {
            clap_complete::generate(clap_complete::Shell::Elvish, &mut cmd, name, &mut buf)
        }
    }
    w.write_all(&buf)?;
    w.flush()
}

/// Writes the man page, `airlock(1)`, in roff to `w`.
pub fn man_page(w: &mut dyn Write) -> io::Result<()> {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .title("AIRLOCK")
        .render(&mut buf)?;
    w.write_all(&buf)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_commands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Powershell,
            Shell::Elvish,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("save") && text.contains("verify"),
                "{shell:?}"
            );
        }
    }

    #[test]
    fn man_page_is_roff_for_airlock() {
        let mut out = Vec::new();
        man_page(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH AIRLOCK 1"),
            "{text}"
        );
    }
}
