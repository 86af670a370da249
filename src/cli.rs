//! Command-line definitions (clap derive). Only the shape of the command line lives
//! here; [`crate::settings`] turns parsed arguments into validated settings before
//! any work starts, and [`crate::app`] runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bundle::Compression;

const ABOUT: &str =
    "Carry container images across an air gap, with every byte verified and every digest kept.";

const LONG_ABOUT: &str = "\
Carry container images across an air gap, with every byte verified and every digest kept.

On the connected side, `airlock save` pulls a set of images into one bundle file. The bundle
is at once an OCI image layout and a `docker save` archive, so `docker load -i bundle.tar`
works too. Carry it across, check it with `airlock verify`, look inside with `airlock ls`.";

const AFTER_HELP: &str = "\
Examples:
  airlock save nginx:1.25 ghcr.io/org/api@sha256:<digest> -o release.tar.zst
  airlock save -f images.txt --platform linux/amd64 -o release.tar.zst
  airlock verify release.tar.zst
  airlock ls release.tar.zst
  airlock serve release.tar.zst        (a read-only registry on 127.0.0.1:5000, from the file)

Chain of custody (signed bundles):
  airlock key generate --out release-signing
  airlock save -f images.txt -o release.tar.zst --sign-key release-signing.key
  airlock verify release.tar.zst --trust release-signing.pub

Output: data on stdout, talk on stderr. Results (the `ls` listing, `verify`'s verdict,
`push --dry-run`'s plan, `key generate`'s key id, every --json document) go to stdout, so
`airlock push B T --dry-run > plan.txt` captures the plan; progress, notes, summaries of
what was done, and errors go to stderr.

Exit codes: 0 success, 1 the job failed (registry error, bad bundle), 2 usage error,
130 interrupted (Ctrl-C or SIGTERM; `save` and `push` keep what they did: run the same
command again).";

#[derive(Debug, Parser)]
#[command(name = "airlock", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
#[command(propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print nothing but errors and the results asked for (`ls`, `--json`, a dry run's plan).
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Say more about what happens (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    pub verbose: u8,
    /// Do not show progress bars or progress lines.
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_progress: bool,
}

/// The output format of a command's result; flattened into every command, so `--json`
/// is declared once and [`Command::format`] finds it for any command.
#[derive(Debug, Clone, Copy, Args)]
pub struct FormatArgs {
    /// Print the result as JSON on stdout instead of as text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull images into one verified bundle file (connected side).
    #[command(after_help = SAVE_HELP)]
    Save(SaveArgs),
    /// Check a bundle offline: rehash every blob and check the whole image graph.
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Push a bundle's images into a registry, every manifest and index digest kept (air-gapped side).
    #[command(after_help = PUSH_HELP)]
    Push(PushArgs),
    /// Load a bundle's images into the local Docker engine, or write a `docker load` file.
    #[command(after_help = LOAD_HELP)]
    Load(LoadArgs),
    /// List the images in a bundle (names, digests, platforms, sizes) without unpacking it.
    #[command(
        after_help = "Example:\n  airlock ls release.tar.zst\n  airlock ls release.tar.zst --json | jq '.images[].name'"
    )]
    Ls(LsArgs),
    /// Write the ordinary bundle of a compact one (`save --compact`), for tools other than airlock.
    #[command(
        after_help = "Every compact layer is rebuilt from its raw tar and recipe and checked against its\ndigest; a signature is not carried over (it covers the compact table of contents).\n\nExample:\n  airlock convert release.tar.zst -o plain.tar.zst"
    )]
    Convert(ConvertArgs),
    /// Record what a registry holds (tags, manifests, blobs) for `save --base` (air-gapped side).
    #[command(after_help = INVENTORY_HELP)]
    Inventory(InventoryArgs),
    /// Make signing keys for signed bundles (`save --sign-key`, `verify --trust`).
    Key(KeyArgs),
    /// Serve bundles as a read-only registry, straight from the bundle files (air-gapped side).
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Print a shell completion script on stdout (bash, zsh, fish, powershell, elvish).
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print the man page, airlock(1), in roff on stdout.
    #[command(
        after_help = "Example:\n  airlock man > /usr/local/share/man/man1/airlock.1\n  airlock man | man -l -"
    )]
    Man,
}

impl Command {
    /// The output format asked for, whichever command it is.
    pub fn format(&self) -> FormatArgs {
        match self {
            Command::Save(a) => a.format,
            Command::Verify(a) => a.format,
            Command::Push(a) => a.format,
            Command::Load(a) => a.format,
            Command::Ls(a) => a.format,
            Command::Convert(a) => a.format,
            Command::Inventory(a) => a.format,
            Command::Serve(a) => a.format,
            Command::Key(a) => match &a.command {
                KeyCommand::Generate(g) => g.format,
            },
            Command::Completions(_) | Command::Man => FormatArgs { json: false },
        }
    }
}

const SAVE_HELP: &str = "\
IMAGE forms:
  nginx:1.25, ghcr.io/org/app@sha256:<hex>  an image in a registry (Docker-style name)
  localhost:5000/app:1                      loopback registries are spoken to over plain HTTP
  oci:DIR[:REF]                             an OCI image layout directory (REF: its ref.name)
  docker-archive:FILE[:IMAGE]               a `docker save` tar (Docker 20.10 or 25+ format)
  docker-daemon:IMAGE                       an image in the local Docker engine (DOCKER_HOST)

The images file holds one IMAGE per line; blank lines and `#` comments are ignored. The output
name decides the format: BUNDLE.tar is a plain tar, BUNDLE.tar.zst is zstd-compressed (seekable:
every blob can be reached without decompressing the whole file). Credentials come from Docker's
config.json (`docker login`), including credential helpers.

Examples:
  airlock save nginx:1.25 redis:7 -o base.tar.zst
  airlock save -f images.txt --platform linux/amd64,linux/arm64 -o release.tar.zst
  airlock save oci:./build/layout:1.0 docker-archive:app.tar -o local.tar
  airlock save -f images.txt --base last-week.tar.zst -o update.tar.zst     (differential)
  airlock save -f images.txt -o release.tar.zst --sign-key release.key      (signed)

Resume: an interrupted save (Ctrl-C, kill, lost network, full disk) keeps what it wrote in a
hidden .BUNDLE.partial beside the output; run the same command again and it reuses every layer
in it (verified) instead of fetching it again. --fresh discards it and starts over.";

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images to save (see IMAGE forms below).
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Read more images from FILE, one per line.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub images_file: Vec<PathBuf>,
    /// The bundle to write: NAME.tar or NAME.tar.zst.
    #[arg(short, long, value_name = "BUNDLE")]
    pub output: PathBuf,
    /// Keep only these platforms of multi-platform images (os/arch[/variant], comma-separated).
    /// Tags of filtered images then no longer carry the source's index digest; `ls` says so.
    #[arg(
        long,
        value_name = "PLATFORMS",
        value_delimiter = ',',
        conflicts_with = "all_platforms"
    )]
    pub platform: Vec<String>,
    /// Keep every platform of multi-platform images (the default; the index digest is kept).
    #[arg(long)]
    pub all_platforms: bool,
    /// The platform whose manifest `docker load` of the bundle gets.
    #[arg(long, value_name = "PLATFORM", default_value = "linux/amd64")]
    pub docker_platform: String,
    /// How many blobs to fetch at once.
    #[arg(short, long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
    /// Pin the bundle's creation time (RFC 3339, e.g. 2024-05-01T00:00:00Z): the TOC's
    /// `created` and every entry's mtime. Two saves of the same images with the same time
    /// are byte-identical. Without it, SOURCE_DATE_EPOCH (seconds) is used when set, else now.
    #[arg(long, value_name = "TIME")]
    pub created: Option<String>,
    /// Scratch space for what is not written straight into the bundle: layers fetched ahead
    /// of the one being written that do not fit the memory window, and layers of local images
    /// that airlock compresses. Never the output's directory, so each byte reaches the output's
    /// disk once. Default: the system temp dir ($TMPDIR, else /tmp).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// zstd level for .tar.zst bundles (1-19). Default 3: layers are already compressed, so
    /// low is fast and nearly as small. With --compact the default is higher (see
    /// docs/bundle-format.md, compact frames), and 19 is the smallest bundle.
    #[arg(long, value_name = "LEVEL")]
    pub zstd_level: Option<i32>,
    /// Write the bundle as parts of at most SIZE bytes (`700M`, `4G`, `4GiB`, or `fat32` for
    /// 4 GiB − 1, the largest FAT32 file), plus a parts index; parts are written directly,
    /// never the whole bundle first. `cat BUNDLE.0*` joins them into the ordinary bundle.
    #[arg(long, value_name = "SIZE", value_parser = crate::bundle::parse_split)]
    pub split: Option<u64>,
    /// Make a differential bundle: leave out every config and layer that FILE already has.
    /// FILE is an earlier bundle (already pushed to the target) or an `airlock inventory`
    /// of the target registry. Manifests and indexes are always kept.
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,
    /// Start over: delete what an interrupted save to the same output kept
    /// (`.BUNDLE.partial`) instead of resuming from it.
    #[arg(long)]
    pub fresh: bool,
    /// Sign the bundle with the private key in FILE (PKCS#8 PEM, Ed25519 or ECDSA P-256,
    /// as `airlock key generate` or `openssl genpkey` write it). Repeat for several
    /// signatures (two-person rule). The signature covers the table of contents, so
    /// every byte; `verify --trust KEY.pub` checks it on the other side. An encrypted
    /// key's passphrase is read from AIRLOCK_KEY_PASSPHRASE or asked on the terminal.
    /// Example: --sign-key release-signing.key
    #[arg(long = "sign-key", value_name = "FILE")]
    pub sign_keys: Vec<PathBuf>,
    /// Do not look for signatures, attestations and SBOMs. By default every manifest saved
    /// is looked up (OCI 1.1 referrers API, else the `sha256-<hex>` referrers tag, and
    /// cosign's `sha256-<hex>.sig`/`.att`/`.sbom` tags) and what refers to it is carried,
    /// recursively (a signature on an SBOM). BuildKit attestations inside an index kept
    /// whole stay in it either way.
    #[arg(long, conflicts_with = "referrers_type")]
    pub no_referrers: bool,
    /// Carry only artifacts of these types (comma-separated): an artifact type
    /// (`application/spdx+json`, `application/vnd.dev.sigstore.bundle.v0.3+json`) or one of
    /// the words `signature`, `attestation`, `sbom`.
    /// Example: --referrers-type signature,sbom
    #[arg(long, value_name = "TYPES", value_delimiter = ',')]
    pub referrers_type: Vec<String>,
    /// Judge every image by the JSON policy in FILE before the trip (see
    /// docs/policy.md): an image the policy rejects, one not pinned by digest where the
    /// policy requires it, or one without a valid signature by an accepted key where
    /// one is required is named with the reason, and no bundle is written.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Make a compact bundle: store each gzip layer that airlock can recompress bit for bit
    /// (Go's compress/gzip as Docker pushes it, classic and Go 1.27; skopeo's/podman's
    /// pgzip; zlib, as Python writes it; pigz; GNU gzip) as its raw tar plus a small recipe, which zstd compresses far better than gzip. The
    /// inside rebuilds the exact gzip bytes and checks their digest (`verify`, `push`);
    /// other layers are stored as they are. Older airlock releases cannot read such a
    /// bundle; `zstd -dc BUNDLE | docker load` still works. Each layer is read twice from
    /// its source (once to find its encoder, once to write it). The bundle's zstd frames are
    /// coarser (several layers each) and similar layers are written side by side, whatever
    /// the image order, so they compress together; the default --zstd-level is 9.
    /// Example: --compact
    #[arg(long)]
    pub compact: bool,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `--trust PUB`, shared by `verify`, `push` and `load`.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// Require a valid signature by the public key in PUB (SPKI PEM, the `.pub` of
    /// `airlock key generate` or `openssl pkey -pubout`); repeat to accept any of
    /// several keys. Without it, an unsigned bundle is accepted and a signed one has
    /// its signature checked and its signer shown. Example: --trust release-signing.pub
    #[arg(long = "trust", value_name = "PUB")]
    pub trust: Vec<PathBuf>,
}

/// `--key PEM` and `--policy FILE`, the image signature checks of `verify` and `push`.
#[derive(Debug, Clone, Args)]
pub struct ImageTrustArgs {
    /// Require every image to carry a valid cosign signature by the public key in PEM
    /// (PKIX "BEGIN PUBLIC KEY", as `cosign generate-key-pair` writes cosign.pub: ECDSA
    /// P-256, Ed25519 or RSA), for its own digest and its own name; repeat to accept any
    /// of several keys. Checked offline, from the signatures the bundle carries.
    /// Example: --key cosign.pub
    #[arg(long = "key", value_name = "PEM", conflicts_with = "policy")]
    pub keys: Vec<PathBuf>,
    /// Judge every image by the JSON policy in FILE: per registry/repository prefix,
    /// the accepted keys, whether a signature is required, whether images must be
    /// pinned by digest, or rejected (see docs/policy.md). Example: --policy policy.json
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP to this registry (host[:port]); repeat for several. Loopback is always plain HTTP.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Also trust the CA certificates in this PEM file (in addition to the system store).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Read credentials from DIR/config.json instead of $DOCKER_CONFIG or ~/.docker.
    #[arg(
        long,
        value_name = "DIR",
        env = "DOCKER_CONFIG",
        hide_env_values = true
    )]
    pub docker_config: Option<PathBuf>,
}

const PUSH_HELP: &str = "\
TARGET is host[:port][/prefix]. The source registry host is dropped and the path kept under the
prefix: docker.io/library/nginx:1.25 pushed to registry.lan:5000/mirror lands at
registry.lan:5000/mirror/library/nginx:1.25
(with --keep-registry: …/mirror/docker.io/library/nginx:1.25).

Blobs go first, then child manifests by digest, then indexes, then tags, so no tag ever points
at something incomplete. Manifests are pushed byte-exact and the registry's digest is checked
against the bundle's. Blobs the target already has are skipped; every blob is rehashed as it
streams out of the bundle, and a damaged one is never uploaded.

Examples:
  airlock push release.tar.zst registry.lan:5000/mirror
  airlock push release.tar.zst registry.lan:5000 --image nginx:1.25 --dry-run
  airlock push release.tar.zst registry.lan:5000/mirror --trust release-signing.pub
  airlock push release.tar.zst registry.lan:5000/mirror --policy policy.json

With --trust, the bundle's signature is checked first (a few kilobytes, no layer read): a bundle
not signed by a trusted key is refused before anything is written. With --key or --policy, every
image pushed is checked against its cosign signatures in the bundle (and the policy) before
anything is written: each image refused is named with the reason, and the target is untouched.

Signatures, attestations and SBOMs the bundle carries for the images pushed go with them (before
the image tags), by digest: cosign's tags (sha256-<hex>.sig) are set, and a referrer is indexed
by the target itself when it has the OCI referrers API, else merged into the referrers tag index
(sha256-<hex>) the target already has, never replacing its entries. --no-referrers skips them.";

const LOAD_HELP: &str = "\
Builds the `docker load` stream from the bundle's own blobs for one platform (default: the
engine's) and sends it to the Docker engine (DOCKER_HOST, else /var/run/docker.sock), or writes
it to -o FILE. zstd layers, which Docker 20.10 cannot read, are decompressed on the way.
Docker's classic image store drops registry digests, so the source digest of each tag is printed
for later re-tagging or pushing.

Which to use: plain `load` is the fastest way into Docker (one stream, layers as stored). Use
--with-digests when something on the host pins images by digest (`image@sha256:…` in compose
files or deployments) or reads `RepoDigests`: airlock serves the bundle on a free 127.0.0.1 port
for the length of the load and the engine pulls each image by its digest, then tags it. Docker
then records `127.0.0.1:PORT/<repo>@<source digest>` (the digest is the source's; the host is
where the engine pulled from). Needs an engine on this host that can reach its loopback (not
rootless Docker), and layers Docker can pull (no zstd on Docker 20.10).

Examples:
  airlock load release.tar.zst
  airlock load release.tar.zst --platform linux/arm64 -o for-docker.tar
  airlock load release.tar.zst --with-digests
  airlock load release.tar.zst --trust release-signing.pub

With --trust, the bundle's signature is checked first: a bundle not signed by a trusted key is
refused before anything is loaded or written.";

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The bundle to push.
    pub bundle: PathBuf,
    /// Where to push: host[:port][/prefix].
    pub target: String,
    /// Push only this image (a name as `ls` shows it, or its short Docker form); repeat for several.
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,
    /// Keep the source registry host in the target path (…/prefix/docker.io/library/nginx).
    #[arg(long)]
    pub keep_registry: bool,
    /// Print what would be uploaded and what the target already has, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How many blobs to upload at once.
    #[arg(short, long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Upload blobs larger than SIZE in chunks of SIZE (`16M`, `100M`), for a registry or
    /// proxy that limits request size. Each upload then holds one chunk in memory.
    /// Default: every blob in one streamed request, in constant memory.
    #[arg(long, value_name = "SIZE", value_parser = crate::bundle::parts::parse_chunk_size)]
    pub chunk_size: Option<u64>,
    /// Upload every blob by PATCH, however small (in chunks of --chunk-size when given),
    /// then an empty PUT: for registries that refuse a blob sent as one PUT. Chosen
    /// automatically when a registry refuses one with BLOB_UPLOAD_INVALID.
    #[arg(long)]
    pub patch_uploads: bool,
    /// Push the images only, without the signatures, attestations and SBOMs the bundle
    /// carries for them (their tags and referrers indexes are not written either).
    #[arg(long)]
    pub no_referrers: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub images_trust: ImageTrustArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The bundle to load.
    pub bundle: PathBuf,
    /// The platform to load (os/arch[/variant]); default: the engine's, or linux/amd64 with -o.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Write a `docker load` tar to FILE instead of sending it to the engine.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Load only this image (a name as `ls` shows it, or its short Docker form); repeat for several.
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,
    /// Have the engine pull each image from the bundle served on loopback, so Docker
    /// records its digest in RepoDigests (slower than the default stream; see below).
    #[arg(long, conflicts_with = "output")]
    pub with_digests: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

const VERIFY_HELP: &str = "\
Exit status 0 only when every blob and reference is sound (and, with --trust, the bundle is
signed by a trusted key and its signed statement matches it).

A signed bundle's signature is always checked and its signers shown; --trust makes a valid
signature by one of the given keys a requirement. With --part, only one part of a split bundle
is checked, against the signed parts index beside it: for parts arriving one by one.

Examples:
  airlock verify release.tar.zst --json
  airlock verify release.tar.zst --trust release-signing.pub
  airlock verify release.tar.zst.003 --part --trust release-signing.pub
  airlock verify update.tar.zst --base release.tar.zst --trust release-signing.pub
  airlock verify release.tar.zst --key cosign.pub
  airlock verify release.tar.zst --policy policy.json

--key and --policy check the images' cosign signatures the bundle carries, offline: every image
(for a multi-platform image, its index) must be signed by an accepted key for its own digest and
name; each image that is not is a finding naming the signature manifest and the reason.";

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle to check (with --part: one part, `BUNDLE.003`).
    pub bundle: PathBuf,
    /// For a differential bundle: also check that FILE (the base bundle, or an
    /// `airlock inventory` of the target) has every blob the bundle leaves out, and,
    /// for a signed one, that FILE is the very base it was signed against.
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,
    /// Check only the one part given, against the parts index beside it: the index is
    /// signed (by a --trust key), lists the part, and the part's sha256 is the listed
    /// one. The other parts need not be there. Example: verify b.tar.zst.003 --part --trust k.pub
    #[arg(long, conflicts_with_all = ["base", "keys", "policy"])]
    pub part: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub images_trust: ImageTrustArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a key pair: NAME.key (private, mode 0600) and NAME.pub (public).
    #[command(after_help = KEY_GENERATE_HELP)]
    Generate(KeyGenerateArgs),
}

const KEY_GENERATE_HELP: &str = "\
Prints the key id (sha256 of the public key; `openssl pkey -pubin -in NAME.pub -outform DER |
sha256sum` gives the same) on stdout. NAME.key is written unencrypted; to encrypt it:
  openssl pkcs8 -topk8 -v2 aes-256-cbc -in NAME.key -out NAME.enc.key
and give airlock the passphrase in AIRLOCK_KEY_PASSPHRASE (or type it at the prompt). Keys made
by `openssl genpkey -algorithm ed25519` work as well.

Examples:
  airlock key generate --out release-signing
  airlock key generate --out release-signing --algorithm ecdsa-p256";

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Write NAME.key and NAME.pub (refuses to overwrite either). Example: --out release-signing
    #[arg(long, value_name = "NAME")]
    pub out: PathBuf,
    /// The signature algorithm.
    #[arg(long, value_enum, default_value_t = KeyAlgorithm::Ed25519)]
    pub algorithm: KeyAlgorithm,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// `--algorithm` of `key generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyAlgorithm {
    /// Ed25519 (the default): small keys and signatures, deterministic.
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256, for sites that require a NIST curve.
    #[value(name = "ecdsa-p256", alias = "ecdsa-p256-sha256")]
    EcdsaP256,
}

const INVENTORY_HELP: &str = "\
REGISTRY is host[:port][/prefix]: every repository under the prefix that the registry's catalog
(GET /v2/_catalog) lists is recorded with its tags, every manifest and index they reach, and
every config and layer those reference. Carry the file to the connected side and give it to
`airlock save --base` so the next bundle leaves out what the registry already holds. The file is
written under a temporary name and renamed into place when complete.

Examples:
  airlock inventory registry.lan:5000/mirror -o inventory.json
  airlock save -f images.txt --base inventory.json -o update.tar.zst";

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// The registry to describe: host[:port][/prefix].
    #[arg(value_name = "REGISTRY")]
    pub target: String,
    /// The inventory file to write (JSON).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// How many repositories to read at once.
    #[arg(short, long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

const SERVE_HELP: &str = "\
Serves the distribution API's read side (GET and HEAD of manifests, blobs, tags and the
catalog) from the bundle files themselves: a .tar.zst is read through its seek table, split
parts as one file, and nothing is extracted. Images are named as `push` names them: the source
registry host is dropped (docker.io/library/nginx:1.25 is served as library/nginx:1.25), or kept
as the first path component with --keep-registry, under --prefix if given. Several bundles are
served as one registry; a tag or blob in a later bundle wins, so a differential bundle given after
its base gets its left-out blobs from the base. Writes are refused (405).

Every blob served in full is hashed as it streams; a damaged one has its download cut off and is
named on stderr. One access log line per request goes to stderr (JSON with --json; none with -q).
Ctrl-C or SIGTERM stops it. Docker pulls from a loopback address without any insecure-registries
entry.

Examples:
  airlock serve release.tar.zst
  docker pull 127.0.0.1:5000/library/nginx:1.25
  airlock serve release.tar.zst update-1.tar.zst --listen 0.0.0.0:5000 --prefix mirror
  airlock serve release.tar.zst --listen 0.0.0.0:5000 --print-config containerd
  airlock serve release.tar.zst --listen 0.0.0.0:5443 --tls-cert server.pem --tls-key server.key";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The bundles to serve (a later one's tags and blobs win).
    #[arg(value_name = "BUNDLE", required = true)]
    pub bundles: Vec<PathBuf>,
    /// The address to listen on (IP:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    pub listen: String,
    /// Serve every image under this repository path prefix (`mirror` → mirror/library/nginx).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Keep the source registry host in the served path (…/docker.io/library/nginx).
    #[arg(long)]
    pub keep_registry: bool,
    /// Run a full `verify` of every bundle first (rehash every blob) and refuse to serve
    /// one that fails. Without it, each bundle's structure is checked at start and each
    /// blob is rehashed as it is served.
    #[arg(long)]
    pub verify: bool,
    /// Serve HTTPS with the certificate chain in FILE (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Print the client configuration for the listen address (containerd hosts.toml,
    /// Docker daemon.json note, podman registries.conf) on stdout and exit.
    #[arg(long, value_name = "CLIENT", value_enum)]
    pub print_config: Option<ClientKind>,
    /// Write the access log as one JSON object per line.
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The compact bundle to convert.
    pub bundle: PathBuf,
    /// The ordinary bundle to write (`*.tar` or `*.tar.zst`); it must not exist.
    #[arg(short = 'o', long = "output", value_name = "BUNDLE")]
    pub output: PathBuf,
    /// zstd level for a .tar.zst output (1-19).
    #[arg(long, value_name = "LEVEL", default_value_t = Compression::DEFAULT_ZSTD_LEVEL)]
    pub zstd_level: i32,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// The bundle to list (its signers are shown; their signatures are checked, not trusted).
    pub bundle: PathBuf,
    /// Also print each image's pull reference on REGISTRY[/PREFIX], named as `airlock push`
    /// and `airlock serve` name them (source host dropped): e.g. --target 127.0.0.1:5000
    /// for a default `airlock serve`, or the TARGET of a push.
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub target: Option<String>,
    /// With --target: keep the source registry host in the path, as `push --keep-registry` does.
    #[arg(long, requires = "target")]
    pub keep_registry: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// The client whose configuration `--print-config` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientKind {
    /// containerd's `hosts.toml` (`/etc/containerd/certs.d/<host>/hosts.toml`).
    Containerd,
    /// Docker's `daemon.json` entries.
    Docker,
    /// podman's (and CRI-O's, skopeo's) `registries.conf` entry.
    Podman,
}

const COMPLETIONS_HELP: &str = "\
Examples:
  airlock completions bash > /etc/bash_completion.d/airlock
  airlock completions zsh > \"${fpath[1]}/_airlock\"
  airlock completions fish > ~/.config/fish/completions/airlock.fish
  source <(airlock completions bash)                 (this shell only)";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `airlock completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_takes_json() {
        for args in [
            &["save", "x", "-o", "b.tar"][..],
            &["verify", "b.tar"],
            &["push", "b.tar", "registry.lan"],
            &["load", "b.tar"],
            &["ls", "b.tar"],
            &["inventory", "registry.lan", "-o", "i.json"],
            &["key", "generate", "--out", "k"],
            &["serve", "b.tar"],
        ] {
            let parse = |json: bool| {
                let extra = if json { &["--json"][..] } else { &[] };
                let argv = ["airlock"].iter().chain(args).chain(extra);
                Cli::try_parse_from(argv).unwrap().command.format().json
            };
            assert!(!parse(false), "{args:?}");
            assert!(parse(true), "{args:?} --json");
        }
    }

    #[test]
    fn parses_save() {
        let cli = Cli::try_parse_from([
            "airlock",
            "save",
            "nginx",
            "-f",
            "a.txt",
            "-o",
            "b.tar.zst",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .unwrap();
        let Command::Save(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.images, ["nginx"]);
        assert_eq!(s.platform, ["linux/amd64", "linux/arm64"]);
        assert!(
            Cli::try_parse_from([
                "airlock",
                "save",
                "x",
                "-o",
                "b.tar",
                "--platform",
                "linux/amd64",
                "--all-platforms"
            ])
            .is_err()
        );
    }
}
