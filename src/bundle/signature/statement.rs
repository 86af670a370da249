//! The two statements a signature covers, as exact text: the **bundle statement**
//! (stored in `airlock.sig.json`) and the **parts statement** (stored in a split bundle's
//! parts index).
//!
//! A statement is UTF-8, a header line, then one `key: value` line per field in a fixed
//! order, each line ending in `\n`. It is signed as exact bytes, so a verifier needs no
//! JSON canonicalisation: it checks the signature over the bytes it was given, then
//! parses them. Parsing is strict: the text must be *canonical*, i.e. rendering the
//! parsed fields gives back the very same bytes (no extra spaces, no leading zeros, no
//! unknown or reordered keys, a final newline), and free-text values (`tool`,
//! `created`, names) are never empty and hold no white space at either end and no
//! control character. So one set of facts has exactly one statement, and a statement
//! that parses says exactly what it shows.

use std::fmt::Write as _;

use crate::bundle::parts::PartsIndex;
use crate::bundle::toc::Toc;
use crate::digest::Digest;

/// The first line of a bundle statement.
pub const BUNDLE_HEADER: &str = "airlock bundle statement v1";
/// The first line of a parts statement.
pub const PARTS_HEADER: &str = "airlock parts statement v1";

/// What a bundle's signature says about it. Every field but `toc_sha256` repeats the
/// TOC, so a reader of the statement alone learns what and when; `toc_sha256` (the
/// sha256 of the exact `airlock.json` bytes) ties it to every blob the TOC lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleStatement {
    pub format_version: u32,
    /// `airlock <version>`.
    pub tool: String,
    /// RFC 3339 UTC, the TOC's `created`.
    pub created: String,
    /// Hex sha256 of the bundle's `airlock.json` bytes.
    pub toc_sha256: String,
    /// Only in a differential bundle: hex sha256 of the base's `airlock.json` bytes, or
    /// of the inventory file it was made against.
    pub base_toc_sha256: Option<String>,
}

/// One `part:` line of a parts statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLine {
    pub name: String,
    pub size: u64,
    /// Hex sha256 of the whole part.
    pub sha256: String,
}

/// What a split bundle's parts-index signature says: the set's identity and every
/// part's name, size and sha256, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsStatement {
    pub bundle: String,
    pub id: String,
    pub toc_sha256: String,
    pub part_size: u64,
    pub total_size: u64,
    pub parts: Vec<PartLine>,
}

impl BundleStatement {
    /// The statement for a bundle whose TOC is `toc`, stored as `toc_bytes`; `base` is
    /// the identity of the base of a differential bundle.
    pub fn of_toc(toc: &Toc, toc_bytes: &[u8], base: Option<&Digest>) -> BundleStatement {
        BundleStatement {
            format_version: toc.format_version,
            tool: toc.tool.clone(),
            created: toc.created.clone(),
            toc_sha256: Digest::of(toc_bytes).hex().to_string(),
            base_toc_sha256: base.map(|d| d.hex().to_string()),
        }
    }

    /// The exact text that is signed.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{BUNDLE_HEADER}\nformat_version: {}\ntool: {}\ncreated: {}\ntoc_sha256: {}\n",
            self.format_version, self.tool, self.created, self.toc_sha256
        );
        if let Some(b) = &self.base_toc_sha256 {
            let _ = writeln!(s, "base_toc_sha256: {b}");
        }
        s
    }

    /// Parses a canonical bundle statement; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<BundleStatement, String> {
        let mut lines = Lines::new(text, BUNDLE_HEADER)?;
        let format_version = number(lines.field("format_version")?, "format_version")?;
        let tool = plain(lines.field("tool")?, "tool")?;
        let created = plain(lines.field("created")?, "created")?;
        let toc_sha256 = hex64(lines.field("toc_sha256")?, "toc_sha256")?;
        let base_toc_sha256 = match lines.optional("base_toc_sha256") {
            Some(v) => Some(hex64(v, "base_toc_sha256")?),
            None => None,
        };
        lines.end()?;
        let s = BundleStatement {
            format_version: u32::try_from(format_version)
                .map_err(|_| "`format_version` is out of range".to_string())?,
            tool,
            created,
            toc_sha256,
            base_toc_sha256,
        };
        canonical(text, &s.render())?;
        Ok(s)
    }
}

impl PartsStatement {
    /// The statement for the parts index `index` (its own `statement` and `signatures`
    /// are not part of it). `None` when the index has no `toc_sha256` to tie it to.
    pub fn of_index(index: &PartsIndex) -> Option<PartsStatement> {
        Some(PartsStatement {
            bundle: index.bundle.clone(),
            id: index.id.clone(),
            toc_sha256: index.toc_sha256.clone()?,
            part_size: index.part_size,
            total_size: index.total_size,
            parts: index
                .parts
                .iter()
                .map(|p| PartLine {
                    name: p.name.clone(),
                    size: p.size,
                    sha256: p.sha256.clone(),
                })
                .collect(),
        })
    }

    /// The exact text that is signed.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{PARTS_HEADER}\nbundle: {}\nid: {}\ntoc_sha256: {}\npart_size: {}\ntotal_size: {}\n",
            self.bundle, self.id, self.toc_sha256, self.part_size, self.total_size
        );
        for p in &self.parts {
            let _ = writeln!(s, "part: {} {} {}", p.name, p.size, p.sha256);
        }
        s
    }

    /// Parses a canonical parts statement; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<PartsStatement, String> {
        let mut lines = Lines::new(text, PARTS_HEADER)?;
        let bundle = plain(lines.field("bundle")?, "bundle")?;
        let id = plain(lines.field("id")?, "id")?;
        let toc_sha256 = hex64(lines.field("toc_sha256")?, "toc_sha256")?;
        let part_size = number(lines.field("part_size")?, "part_size")?;
        let total_size = number(lines.field("total_size")?, "total_size")?;
        let mut parts = Vec::new();
        while let Some(v) = lines.optional("part") {
            // The name may hold spaces; size and hash never do.
            let mut it = v.rsplitn(3, ' ');
            let (Some(sha), Some(size), Some(name)) = (it.next(), it.next(), it.next()) else {
                return Err(format!("`part: {v}` is not `part: NAME SIZE SHA256`"));
            };
            parts.push(PartLine {
                name: plain(name, "part name")?,
                size: number(size, "part size")?,
                sha256: hex64(sha, "part sha256")?,
            });
        }
        lines.end()?;
        if parts.is_empty() {
            return Err("it lists no `part:`".to_string());
        }
        let s = PartsStatement {
            bundle,
            id,
            toc_sha256,
            part_size,
            total_size,
            parts,
        };
        canonical(text, &s.render())?;
        Ok(s)
    }

    /// How `index` (what the parts index file says) differs from this signed
    /// statement, one phrase per difference; empty when they agree.
    pub fn differences(&self, index: &PartsStatement) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, signed: String, found: String| {
            if signed != found {
                out.push(format!(
                    "`{name}` is {found} but the signed statement says {signed}"
                ));
            }
        };
        field("bundle", self.bundle.clone(), index.bundle.clone());
        field("id", self.id.clone(), index.id.clone());
        field(
            "toc_sha256",
            self.toc_sha256.clone(),
            index.toc_sha256.clone(),
        );
        field(
            "part_size",
            self.part_size.to_string(),
            index.part_size.to_string(),
        );
        field(
            "total_size",
            self.total_size.to_string(),
            index.total_size.to_string(),
        );
        if self.parts.len() != index.parts.len() {
            out.push(format!(
                "it lists {} parts but the signed statement lists {}",
                index.parts.len(),
                self.parts.len()
            ));
        }
        for (i, (s, f)) in self.parts.iter().zip(&index.parts).enumerate() {
            if s != f {
                out.push(format!(
                    "part {} is listed as {} ({} bytes, sha256 {}) but the signed statement says {} ({} bytes, sha256 {})",
                    i + 1,
                    f.name,
                    f.size,
                    f.sha256,
                    s.name,
                    s.size,
                    s.sha256
                ));
            }
        }
        out
    }
}

/// The lines of a statement after its header, taken one field at a time.
struct Lines<'a> {
    lines: std::iter::Peekable<std::str::Split<'a, char>>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str, header: &str) -> Result<Lines<'a>, String> {
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| "it does not end in a newline".to_string())?;
        let mut lines = body.split('\n').peekable();
        match lines.next() {
            Some(h) if h == header => Ok(Lines { lines }),
            Some(h) => Err(format!("its first line is `{h}`, not `{header}`")),
            None => Err("it is empty".to_string()),
        }
    }

    /// The value of the next line, which must be `key: value`.
    fn field(&mut self, key: &str) -> Result<&'a str, String> {
        let line = self
            .lines
            .next()
            .ok_or_else(|| format!("it ends before `{key}:`"))?;
        line.strip_prefix(key)
            .and_then(|r| r.strip_prefix(": "))
            .ok_or_else(|| format!("`{line}` is where `{key}: …` must be"))
    }

    /// The value of the next line if it is `key: value`.
    fn optional(&mut self, key: &str) -> Option<&'a str> {
        let v = self
            .lines
            .peek()?
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix(": "))?;
        self.lines.next();
        Some(v)
    }

    fn end(&mut self) -> Result<(), String> {
        match self.lines.next() {
            None => Ok(()),
            Some(l) => Err(format!("`{l}` is not a line this statement may hold")),
        }
    }
}

/// A free-text value: not empty, no leading or trailing white space, no control
/// characters.
fn plain(v: &str, what: &str) -> Result<String, String> {
    if v.is_empty() || v.trim() != v || v.chars().any(char::is_control) {
        return Err(format!(
            "`{what}` is `{v}`: empty, with white space around it or a control character"
        ));
    }
    Ok(v.to_string())
}

fn number(v: &str, what: &str) -> Result<u64, String> {
    v.parse()
        .map_err(|_| format!("`{what}` is `{v}`, not a number"))
}

fn hex64(v: &str, what: &str) -> Result<String, String> {
    if v.len() == 64 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(v.to_string())
    } else {
        Err(format!("`{what}` is `{v}`, not 64 lowercase hex digits"))
    }
}

fn canonical(text: &str, rendered: &str) -> Result<(), String> {
    if text == rendered {
        Ok(())
    } else {
        Err(
            "it is not in canonical form (a value has extra spaces, leading zeros or a line break)"
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> BundleStatement {
        BundleStatement {
            format_version: 1,
            tool: "airlock 0.1.0".into(),
            created: "2026-11-30T10:00:00Z".into(),
            toc_sha256: "a".repeat(64),
            base_toc_sha256: None,
        }
    }

    #[test]
    fn bundle_statement_round_trips_exactly() {
        let mut s = bundle();
        let text = s.render();
        assert_eq!(
            text,
            format!(
                "airlock bundle statement v1\nformat_version: 1\ntool: airlock 0.1.0\n\
                 created: 2026-11-30T10:00:00Z\ntoc_sha256: {}\n",
                "a".repeat(64)
            )
        );
        assert_eq!(BundleStatement::parse(&text).unwrap(), s);
        s.base_toc_sha256 = Some("b".repeat(64));
        let text = s.render();
        assert!(text.ends_with(&format!("base_toc_sha256: {}\n", "b".repeat(64))));
        assert_eq!(BundleStatement::parse(&text).unwrap(), s);
    }

    #[test]
    fn bundle_statement_must_be_canonical() {
        let good = bundle().render();
        for bad in [
            good.trim_end().to_string(),
            good.replace("format_version: 1", "format_version: 01"),
            good.replace("tool: ", "tool:  "),
            good.replace("airlock bundle statement v1", "airlock bundle statement v2"),
            format!("{good}extra: 1\n"),
            good.replace(&"a".repeat(64), &"A".repeat(64)),
            good.replace("tool: airlock 0.1.0\ncreated", "created"),
        ] {
            assert!(BundleStatement::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parts_statement_round_trips_and_names_differences() {
        let s = PartsStatement {
            bundle: "b c.tar.zst".into(),
            id: "0123".into(),
            toc_sha256: "c".repeat(64),
            part_size: 10,
            total_size: 15,
            parts: vec![
                PartLine {
                    name: "b c.tar.zst.000".into(),
                    size: 10,
                    sha256: "d".repeat(64),
                },
                PartLine {
                    name: "b c.tar.zst.001".into(),
                    size: 5,
                    sha256: "e".repeat(64),
                },
            ],
        };
        let text = s.render();
        assert!(text.contains("\npart: b c.tar.zst.001 5 "));
        assert_eq!(PartsStatement::parse(&text).unwrap(), s);
        let mut other = s.clone();
        other.parts[1].sha256 = "f".repeat(64);
        other.id = "9".into();
        let diff = s.differences(&other);
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert!(diff[1].starts_with("part 2 is listed as"), "{diff:?}");
        assert!(s.differences(&s).is_empty());
        assert!(PartsStatement::parse(&text.replace("part: ", "part:")).is_err());
    }
}
