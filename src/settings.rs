//! Validated settings, built from the parsed command line before any work starts.
//!
//! Everything a user can get wrong on the command line (a bad reference, a bad
//! platform, an output name that is not `.tar`, `.tar.zst` or `.tzst`, an unreadable
//! images file) is found here and reported as a [`UsageError`] (exit status 2), so the
//! pipelines only ever see settings that make sense. Signing keys (`--sign-key`) and
//! trusted public keys (`--trust`) are loaded here too, so a missing or malformed key
//! or a wrong passphrase is a usage error naming the file, before any work starts; so
//! are the image signature keys and policy (`--key`, `--policy`: [`image_trust`]).

mod convert;
mod image_trust;
mod prefix;
mod referrers;
mod serve;

pub(crate) use convert::ConvertSettings;
pub use prefix::RegistryPrefix;
pub use referrers::Wanted;
pub use serve::ServeSettings;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bundle::parts::{bundle_named, is_output_file};
use crate::bundle::writer::Compression;
use crate::cli::{
    InventoryArgs, KeyAlgorithm, KeyGenerateArgs, LoadArgs, LsArgs, PushArgs, RegistryArgs,
    SaveArgs, TrustArgs, VerifyArgs,
};
use crate::oci::Platform;
use crate::reference::Reference;
use crate::registry::ClientOptions;
use crate::signing::{Algorithm, EnvOrTerminal, PrivateKey, PublicKey};
use crate::source::SourceSpec;
use crate::trust::Policy;

/// A mistake on the command line; the binary exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// One image the user asked for: the text as typed and what it names.
#[derive(Debug, Clone)]
pub struct Input {
    pub text: String,
    pub spec: SourceSpec,
}

#[derive(Debug, Clone)]
pub struct SaveSettings {
    pub inputs: Vec<Input>,
    pub output: PathBuf,
    pub compression: Compression,
    /// `None`: keep every platform.
    pub platforms: Option<Vec<Platform>>,
    pub docker_platform: Platform,
    pub jobs: usize,
    /// `--created TIME`, else `SOURCE_DATE_EPOCH`: the creation time to pin (TOC and
    /// entry mtimes); `None`: the time of the save.
    pub created: Option<jiff::Timestamp>,
    /// `--scratch DIR`, else the system temp dir: where what is not written straight into
    /// the bundle goes (never beside the output).
    pub scratch: PathBuf,
    pub client: ClientOptions,
    /// `--base FILE`: an earlier bundle or an inventory; its blobs are left out.
    pub base: Option<PathBuf>,
    /// `--split SIZE`: write parts of at most this many bytes.
    pub split: Option<u64>,
    /// `--fresh`: discard the partial bundle of an interrupted save instead of resuming.
    pub fresh: bool,
    /// `--sign-key FILE...`: sign the bundle (and a split bundle's parts index) with
    /// each of these keys; empty for an unsigned bundle.
    pub sign_keys: Arc<Vec<PrivateKey>>,
    /// `None` with `--no-referrers`; else which signatures, attestations and SBOMs to carry.
    pub referrers: Option<Wanted>,
    /// `--policy FILE`: refuse, before the bundle is written, images it does not accept.
    pub policy: Option<Policy>,
    /// `--compact`: gzip layers stored as raw tar + recipe where they can be rebuilt.
    pub compact: bool,
}

impl SaveSettings {
    pub fn from_args(args: &SaveArgs) -> Result<SaveSettings, UsageError> {
        let mut inputs = Vec::new();
        for text in &args.images {
            let spec = SourceSpec::parse(text).map_err(|e| usage(e.to_string()))?;
            inputs.push(Input {
                text: text.clone(),
                spec,
            });
        }
        for file in &args.images_file {
            inputs.extend(read_images_file(file)?);
        }
        if inputs.is_empty() {
            return Err(usage(
                "no images to save: name them as arguments or in a file with -f FILE",
            ));
        }
        let name = args
            .output
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if !(name.ends_with(".tar") || name.ends_with(".tar.zst") || name.ends_with(".tzst")) {
            return Err(usage(format!(
                "output `{}` must end in .tar (plain) or .tar.zst or .tzst (zstd-compressed)",
                args.output.display()
            )));
        }
        let compression = match Compression::from_path(&args.output) {
            Compression::Zstd { .. } => {
                let level = args.zstd_level.unwrap_or(if args.compact {
                    Compression::COMPACT_ZSTD_LEVEL
                } else {
                    Compression::DEFAULT_ZSTD_LEVEL
                });
                if !(1..=19).contains(&level) {
                    return Err(usage(format!("--zstd-level {level} is outside 1..=19")));
                }
                Compression::Zstd { level }
            }
            other => other,
        };
        if args.output.is_dir() {
            return Err(usage(format!(
                "output `{}` is a directory; name a file such as bundle.tar.zst",
                args.output.display()
            )));
        }
        directory_exists(&args.output)?;
        for input in &inputs {
            input_not_output(input, &args.output)?;
        }
        let platforms = if args.platform.is_empty() {
            None
        } else {
            let parsed = args
                .platform
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| Platform::parse(p).map_err(|e| usage(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            Some(parsed)
        };
        let docker_platform = Platform::parse(&args.docker_platform)
            .map_err(|e| usage(format!("--docker-platform: {e}")))?;
        Ok(SaveSettings {
            inputs,
            output: args.output.clone(),
            compression,
            platforms,
            docker_platform,
            jobs: jobs(args.jobs)?,
            created: created(
                args.created.as_deref(),
                std::env::var("SOURCE_DATE_EPOCH").ok().as_deref(),
            )?,
            scratch: scratch(args.scratch.as_deref())?,
            client: client_options(&args.registry)?,
            base: args
                .base
                .as_deref()
                .map(|b| existing_base(b, &args.output))
                .transpose()?,
            split: args.split,
            fresh: args.fresh,
            sign_keys: Arc::new(sign_keys(&args.sign_keys)?),
            referrers: Wanted::from_flags(args.no_referrers, &args.referrers_type)
                .map_err(usage)?,
            policy: image_trust::policy_file(args.policy.as_deref())?,
            compact: args.compact,
        })
    }
}

/// Loads every `--sign-key` (asking for a passphrase only for an encrypted one); the
/// same key given twice is refused, since it would sign twice for one person.
fn sign_keys(paths: &[PathBuf]) -> Result<Vec<PrivateKey>, UsageError> {
    let mut keys: Vec<PrivateKey> = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        let key = PrivateKey::load(path, &EnvOrTerminal)
            .map_err(|e| usage(format!("--sign-key: {e}")))?;
        if let Some(j) = keys.iter().position(|k| k.key_id() == key.key_id()) {
            return Err(usage(format!(
                "--sign-key `{}` and `{}` are the same key ({}); each signature must come from \
                 its own key",
                paths[j].display(),
                paths[i].display(),
                key.key_id()
            )));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Loads every `--trust` public key.
pub(crate) fn trusted_keys(args: &TrustArgs) -> Result<Vec<PublicKey>, UsageError> {
    args.trust
        .iter()
        .map(|p| PublicKey::load(p).map_err(|e| usage(format!("--trust: {e}"))))
        .collect()
}

/// `--base FILE` must name an existing file that the save will not replace: a
/// differential bundle written over its own base would need the base it destroyed.
/// An output's directory must exist: airlock does not create directories, and a
/// missing one would otherwise surface as a failure on a hidden lock or temp file.
fn directory_exists(output: &Path) -> Result<(), UsageError> {
    match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(usage(format!(
            "the directory `{}` does not exist (for `{}`); create it first or write elsewhere",
            dir.display(),
            output.display()
        ))),
        _ => Ok(()),
    }
}

fn existing_base(path: &Path, output: &Path) -> Result<PathBuf, UsageError> {
    if !path.is_file() {
        return Err(usage(format!(
            "--base `{}` does not exist or is not a file; name the earlier bundle or an `airlock inventory` file",
            path.display()
        )));
    }
    if is_output_file(path, output) {
        return Err(usage(format!(
            "--base `{}` is the output `{}` (or one of its parts): the new bundle would replace \
             the base it leaves blobs out for; write the new bundle under another name",
            path.display(),
            output.display()
        )));
    }
    Ok(path.to_path_buf())
}

/// An input read from a file (`docker-archive:FILE`) must not be the file the save
/// replaces.
fn input_not_output(input: &Input, output: &Path) -> Result<(), UsageError> {
    if let SourceSpec::Archive { file, .. } = &input.spec
        && is_output_file(file, output)
    {
        return Err(usage(format!(
            "`{}` reads the file the output `{}` would replace; write the bundle under another name",
            input.text,
            output.display()
        )));
    }
    Ok(())
}

/// What `airlock inventory` describes and where it writes.
#[derive(Debug, Clone)]
pub struct InventorySettings {
    /// The registry and the prefix whose repositories are recorded.
    pub target: RegistryPrefix,
    pub output: PathBuf,
    pub jobs: usize,
    pub client: ClientOptions,
}

impl InventorySettings {
    pub fn from_args(args: &InventoryArgs) -> Result<InventorySettings, UsageError> {
        if args.output.is_dir() {
            return Err(usage(format!(
                "-o `{}` is a directory; name a file such as inventory.json",
                args.output.display()
            )));
        }
        directory_exists(&args.output)?;
        Ok(InventorySettings {
            target: RegistryPrefix::parse(&args.target)?,
            output: args.output.clone(),
            jobs: jobs(args.jobs)?,
            client: client_options(&args.registry)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct PushSettings {
    pub bundle: PathBuf,
    pub target: RegistryPrefix,
    /// Only these names (empty: every image in the bundle).
    pub images: Vec<Reference>,
    pub keep_registry: bool,
    pub dry_run: bool,
    pub jobs: usize,
    pub client: ClientOptions,
    /// `--trust PUB...`: refuse a bundle not signed by one of these keys.
    pub trust: Vec<PublicKey>,
    /// `--no-referrers`: push no artifact (signature, attestation, SBOM) of the bundle.
    pub no_referrers: bool,
    /// `--key PEM...` or `--policy FILE`: refuse, before anything is written, images
    /// without an accepted signature or that the policy rejects.
    pub image_policy: Option<Policy>,
}

impl PushSettings {
    pub fn from_args(args: &PushArgs) -> Result<PushSettings, UsageError> {
        Ok(PushSettings {
            bundle: existing_bundle(&args.bundle)?,
            target: RegistryPrefix::parse(&args.target)?,
            images: parse_refs(&args.images)?,
            keep_registry: args.keep_registry,
            dry_run: args.dry_run,
            jobs: jobs(args.jobs)?,
            client: ClientOptions {
                chunk_size: args.chunk_size.unwrap_or(u64::MAX),
                patch_uploads: args.patch_uploads,
                ..client_options(&args.registry)?
            },
            trust: trusted_keys(&args.trust)?,
            no_referrers: args.no_referrers,
            image_policy: image_trust::from_args(&args.images_trust)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct LoadSettings {
    pub bundle: PathBuf,
    /// `None`: the engine's platform (or linux/amd64 when writing a file).
    pub platform: Option<Platform>,
    /// Write a `docker load` tar here instead of talking to the engine.
    pub output: Option<PathBuf>,
    pub images: Vec<Reference>,
    /// `--trust PUB...`: refuse a bundle not signed by one of these keys.
    pub trust: Vec<PublicKey>,
    /// `--with-digests`: the engine pulls from a loopback server of the bundle.
    pub with_digests: bool,
}

impl LoadSettings {
    pub fn from_args(args: &LoadArgs) -> Result<LoadSettings, UsageError> {
        let platform = args
            .platform
            .as_deref()
            .map(Platform::parse)
            .transpose()
            .map_err(|e| usage(e.to_string()))?;
        if let Some(o) = &args.output
            && o.is_dir()
        {
            return Err(usage(format!(
                "-o `{}` is a directory; name a file such as images.tar",
                o.display()
            )));
        }
        if let Some(o) = &args.output {
            directory_exists(o)?;
        }
        if let Some(o) = &args.output
            && is_output_file(o, &bundle_named(&args.bundle))
        {
            return Err(usage(format!(
                "-o `{}` is the bundle `{}` (or one of its parts) that load reads; name another file such as images.tar",
                o.display(),
                args.bundle.display()
            )));
        }
        Ok(LoadSettings {
            bundle: existing_bundle(&args.bundle)?,
            platform,
            output: args.output.clone(),
            images: parse_refs(&args.images)?,
            trust: trusted_keys(&args.trust)?,
            with_digests: args.with_digests,
        })
    }
}

/// What `airlock verify` checks.
#[derive(Debug, Clone)]
pub(crate) struct VerifySettings {
    /// Not checked here: a bundle that cannot be opened is a finding of the report.
    pub bundle: PathBuf,
    /// `--base FILE`: the base bundle or inventory that must have every blob a
    /// differential bundle leaves out.
    pub base: Option<PathBuf>,
    /// `--part`: check only this one part against the signed parts index beside it.
    pub part: bool,
    /// `--trust PUB...`: require a valid signature by one of these keys.
    pub trust: Vec<PublicKey>,
    /// `--key PEM...` or `--policy FILE`: judge every image by this policy.
    pub image_policy: Option<Policy>,
}

impl VerifySettings {
    pub fn from_args(args: &VerifyArgs) -> Result<VerifySettings, UsageError> {
        if let Some(base) = &args.base
            && !base.is_file()
        {
            return Err(usage(format!(
                "--base `{}` does not exist or is not a file; name the base bundle or inventory",
                base.display()
            )));
        }
        Ok(VerifySettings {
            bundle: args.bundle.clone(),
            base: args.base.clone(),
            part: args.part,
            trust: trusted_keys(&args.trust)?,
            image_policy: image_trust::from_args(&args.images_trust)?,
        })
    }
}

/// What `airlock ls` lists.
#[derive(Debug, Clone)]
pub(crate) struct LsSettings {
    /// Not checked here: opening it reports a missing or damaged bundle.
    pub bundle: PathBuf,
    /// `--target`: print pull references on this registry (and `--keep-registry`).
    pub target: Option<(RegistryPrefix, bool)>,
}

impl LsSettings {
    pub fn from_args(args: &LsArgs) -> Result<LsSettings, UsageError> {
        let target = match &args.target {
            Some(t) => Some((
                RegistryPrefix::parse(t).map_err(|e| usage(format!("--target: {}", e.0)))?,
                args.keep_registry,
            )),
            None => None,
        };
        Ok(LsSettings {
            bundle: args.bundle.clone(),
            target,
        })
    }
}

/// What `airlock key generate` makes.
#[derive(Debug, Clone)]
pub(crate) struct KeyGenerateSettings {
    /// `NAME`: the files are `NAME.key` and `NAME.pub`.
    pub out: PathBuf,
    pub algorithm: Algorithm,
}

impl KeyGenerateSettings {
    pub fn from_args(args: &KeyGenerateArgs) -> Result<KeyGenerateSettings, UsageError> {
        if args.out.as_os_str().is_empty() || args.out.is_dir() {
            return Err(usage(format!(
                "--out `{}` must name the key files to write (NAME gives NAME.key and NAME.pub), \
                 not a directory",
                args.out.display()
            )));
        }
        Ok(KeyGenerateSettings {
            out: args.out.clone(),
            algorithm: match args.algorithm {
                KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
                KeyAlgorithm::EcdsaP256 => Algorithm::EcdsaP256Sha256,
            },
        })
    }
}

fn existing_bundle(path: &Path) -> Result<PathBuf, UsageError> {
    if !path.exists() {
        return Err(usage(format!("bundle `{}` does not exist", path.display())));
    }
    Ok(path.to_path_buf())
}

fn parse_refs(refs: &[String]) -> Result<Vec<Reference>, UsageError> {
    refs.iter()
        .map(|r| Reference::parse(r).map_err(|e| usage(format!("--image: {e}"))))
        .collect()
}

/// The pinned creation time: `--created` (RFC 3339) wins over `SOURCE_DATE_EPOCH`
/// (seconds since the epoch, as reproducible-builds tools set it); an empty variable is
/// unset. Times before the epoch cannot be a tar mtime and are refused.
fn created(flag: Option<&str>, epoch: Option<&str>) -> Result<Option<jiff::Timestamp>, UsageError> {
    let ts = match (flag, epoch.map(str::trim).filter(|e| !e.is_empty())) {
        (Some(t), _) => t.parse::<jiff::Timestamp>().map_err(|e| {
            usage(format!(
                "--created `{t}` is not an RFC 3339 time such as 2024-05-01T00:00:00Z: {e}"
            ))
        })?,
        (None, Some(e)) => e
            .parse::<i64>()
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .ok_or_else(|| {
                usage(format!(
                    "SOURCE_DATE_EPOCH `{e}` is not a number of seconds since 1970-01-01"
                ))
            })?,
        (None, None) => return Ok(None),
    };
    if ts.as_second() < 0 {
        return Err(usage(format!("the creation time {ts} is before 1970")));
    }
    // Whole seconds: the TOC and the tar mtimes must say the same time.
    Ok(Some(
        jiff::Timestamp::from_second(ts.as_second()).expect("in range"),
    ))
}

/// `--scratch DIR` (which must be a directory), else the system temp dir.
fn scratch(dir: Option<&Path>) -> Result<PathBuf, UsageError> {
    match dir {
        None => Ok(std::env::temp_dir()),
        Some(d) if d.is_dir() => Ok(d.to_path_buf()),
        Some(d) => Err(usage(format!(
            "--scratch `{}` is not a directory",
            d.display()
        ))),
    }
}

fn jobs(n: usize) -> Result<usize, UsageError> {
    if n == 0 || n > 256 {
        return Err(usage(format!("--jobs {n} must be between 1 and 256")));
    }
    Ok(n)
}

pub(crate) fn client_options(args: &RegistryArgs) -> Result<ClientOptions, UsageError> {
    if let Some(ca) = &args.ca_file
        && !ca.is_file()
    {
        return Err(usage(format!(
            "--ca-file `{}` does not exist or is not a file",
            ca.display()
        )));
    }
    Ok(ClientOptions {
        insecure_hosts: args.insecure_registry.clone(),
        ca_file: args.ca_file.clone(),
        docker_config_dir: args.docker_config.clone(),
        ..ClientOptions::default()
    })
}

/// Reads an images file: one image per line; blank lines and `#` comments (whole-line
/// or after white space) are ignored. Errors name the file and line.
pub(crate) fn read_images_file(path: &Path) -> Result<Vec<Input>, UsageError> {
    let text = fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read images file `{}`: {e}", path.display())))?;
    let mut inputs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = match line.find(" #").or_else(|| line.find("\t#")) {
            Some(i) => &line[..i],
            None => line,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let spec = SourceSpec::parse(line)
            .map_err(|e| usage(format!("{}:{}: {e}", path.display(), n + 1)))?;
        inputs.push(Input {
            text: line.to_string(),
            spec,
        });
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn save(args: &[&str]) -> Result<SaveSettings, UsageError> {
        let mut v = vec!["airlock", "save"];
        v.extend_from_slice(args);
        let cli = crate::cli::Cli::try_parse_from(v).unwrap();
        let crate::cli::Command::Save(s) = cli.command else {
            panic!()
        };
        SaveSettings::from_args(&s)
    }

    #[test]
    fn created_flag_wins_over_source_date_epoch() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(created(None, None).unwrap(), None);
        assert_eq!(created(None, Some("")).unwrap(), None);
        assert_eq!(
            created(None, Some("1700000000")).unwrap(),
            Some(t("2023-11-14T22:13:20Z"))
        );
        assert_eq!(
            created(Some("2024-05-01T02:00:00+02:00"), Some("1700000000")).unwrap(),
            Some(t("2024-05-01T00:00:00Z"))
        );
        // Fractions are dropped: the TOC and the tar mtimes agree.
        assert_eq!(
            created(Some("2024-05-01T00:00:00.75Z"), None).unwrap(),
            Some(t("2024-05-01T00:00:00Z"))
        );
        assert!(
            created(Some("yesterday"), None)
                .unwrap_err()
                .0
                .contains("RFC 3339")
        );
        assert!(
            created(None, Some("soon"))
                .unwrap_err()
                .0
                .contains("SOURCE_DATE_EPOCH")
        );
        assert!(
            created(None, Some("-5"))
                .unwrap_err()
                .0
                .contains("before 1970")
        );
    }

    #[test]
    fn validates_output_and_platforms() {
        assert!(save(&["nginx", "-o", "x.tar"]).is_ok());
        assert!(matches!(
            save(&["nginx", "-o", "x.tar.zst"]).unwrap().compression,
            Compression::Zstd {
                level: Compression::DEFAULT_ZSTD_LEVEL
            }
        ));
        // --compact raises the default level; an explicit one still wins.
        assert_eq!(
            save(&["nginx", "-o", "x.tar.zst", "--compact"])
                .unwrap()
                .compression,
            Compression::Zstd {
                level: Compression::COMPACT_ZSTD_LEVEL
            }
        );
        assert_eq!(
            save(&["nginx", "-o", "x.tar.zst", "--compact", "--zstd-level", "3"])
                .unwrap()
                .compression,
            Compression::Zstd { level: 3 }
        );
        assert!(save(&["nginx", "-o", "x.tar.zst", "--zstd-level", "20"]).is_err());
        let ext = save(&["nginx", "-o", "x.zip"]).unwrap_err().0;
        for accepted in [".tar (plain)", ".tar.zst", ".tzst"] {
            assert!(ext.contains(accepted), "{ext}");
        }
        assert!(save(&["nginx", "-o", "x.tzst"]).is_ok());
        assert!(save(&["-o", "x.tar"]).unwrap_err().0.contains("no images"));
        assert!(
            save(&["nginx", "-o", "x.tar", "--platform", "linux"])
                .unwrap_err()
                .0
                .contains("os/arch")
        );
        assert!(
            save(&["Bad:ref", "-o", "x.tar"])
                .unwrap_err()
                .0
                .contains("`Bad:ref`")
        );
        for jobs in ["0", "257"] {
            let err = save(&["nginx", "-o", "x.tar", "--jobs", jobs])
                .unwrap_err()
                .0;
            assert_eq!(err, format!("--jobs {jobs} must be between 1 and 256"));
        }
        let s = save(&[
            "nginx",
            "-o",
            "x.tar",
            "--platform",
            "linux/amd64,linux/arm64/v8",
        ])
        .unwrap();
        assert_eq!(s.platforms.unwrap().len(), 2);
        let base = save(&[
            "nginx",
            "-o",
            "x.tar",
            "--base",
            "/nonexistent/last.tar.zst",
        ]);
        assert!(base.unwrap_err().0.contains("--base"));
        let here = std::env::current_exe().unwrap();
        let s = save(&["nginx", "-o", "x.tar", "--base", here.to_str().unwrap()]).unwrap();
        assert_eq!(s.base.as_deref(), Some(here.as_path()));
    }

    #[test]
    fn verify_base_must_be_a_file() {
        let parse = |args: &[&str]| {
            let mut v = vec!["airlock", "verify"];
            v.extend_from_slice(args);
            let cli = crate::cli::Cli::try_parse_from(v).unwrap();
            let crate::cli::Command::Verify(a) = cli.command else {
                panic!()
            };
            VerifySettings::from_args(&a)
        };
        let err = parse(&["b.tar", "--base", "/nonexistent/base.tar"]).unwrap_err();
        assert!(err.0.contains("--base `/nonexistent/base.tar`"), "{err}");
        // The bundle itself is not checked here: a missing bundle is a finding.
        let here = std::env::current_exe().unwrap();
        let s = parse(&["/nonexistent/b.tar", "--base", here.to_str().unwrap()]).unwrap();
        assert_eq!(s.base.as_deref(), Some(here.as_path()));
    }

    #[test]
    fn registry_prefixes_parse_and_validate() {
        let t = RegistryPrefix::parse("docker://registry.lan:5000/mirror/").unwrap();
        assert_eq!(
            t,
            RegistryPrefix {
                registry: "registry.lan:5000".into(),
                prefix: "mirror".into()
            }
        );
        assert_eq!(t.to_string(), "registry.lan:5000/mirror");
        let bare = RegistryPrefix::parse("127.0.0.1:5000").unwrap();
        assert_eq!(bare.prefix, "");
        assert_eq!(bare.to_string(), "127.0.0.1:5000");
        let nginx = Reference::parse("nginx:1.25").unwrap();
        assert_eq!(
            t.repository(&nginx, "library/nginx").unwrap(),
            "mirror/library/nginx"
        );
        assert!(RegistryPrefix::parse("/x").is_err());
        let bad = RegistryPrefix::parse("host:5000/Bad").unwrap_err().0;
        assert!(bad.contains("`host:5000/Bad/library/x`"), "{bad}");
    }

    #[test]
    fn images_file_skips_comments_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("images.txt");
        fs::write(&f, "# release 4.2\n\nnginx:1.25   # web\n  redis:7\n").unwrap();
        let inputs = read_images_file(&f).unwrap();
        assert_eq!(
            inputs.iter().map(|i| i.text.as_str()).collect::<Vec<_>>(),
            ["nginx:1.25", "redis:7"]
        );
        fs::write(&f, "nginx\nNOT VALID\n").unwrap();
        let err = read_images_file(&f).unwrap_err().0;
        assert!(err.contains("images.txt:2"), "{err}");
    }
}
