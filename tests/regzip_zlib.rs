//! The stock zlib rebuild encoder and the gzip layout reader against independent
//! writers: Python's `gzip` module (which links the system zlib), GNU gzip and pigz.
//!
//! For every input × level 1–9, Python writes a gzip member; airlock reads its
//! header as recorded, deflates the raw bytes with its own zlib and appends the
//! trailer: the result must be the same bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airlock::regzip::header::{FNAME, Layout, layout};
use airlock::regzip::identify::{Encoder, identify, zlib_encoders};
use airlock::regzip::zlib::{self, ZlibParams};

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("start the program");
    assert!(out.status.success(), "{cmd:?} failed: {}", out.status);
    out.stdout
}

fn python(script: &str, args: &[&Path]) -> Vec<u8> {
    run(Command::new("python3").arg("-c").arg(script).args(args))
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    crc.sum()
}

/// A deterministic pseudo-random generator (xorshift), so failures reproduce.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A tar of real files (Python's own library: text and compiled code), about `max` bytes.
fn tar_of_real_files(max: u64) -> Vec<u8> {
    let root = Path::new("/usr/lib/python3.11");
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let mut b = tar::Builder::new(Vec::new());
    let mut total = 0;
    for f in files {
        let len = std::fs::metadata(&f).unwrap().len();
        if total + len > max {
            continue;
        }
        total += len;
        b.append_path_with_name(&f, f.strip_prefix(root).unwrap())
            .unwrap();
    }
    assert!(
        total > max / 2,
        "only {total} bytes of files under {root:?}"
    );
    b.into_inner().unwrap()
}

fn text() -> Vec<u8> {
    let mut v = Vec::new();
    for f in std::fs::read_dir("/usr/share/common-licenses").unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            v.extend(std::fs::read(f).unwrap());
        }
    }
    assert!(v.len() > 100_000, "{} bytes of licence text", v.len());
    v
}

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let tar = tar_of_real_files(4 << 20);
    let text = text();
    let mixed = [
        &text[..],
        &noise(300_000, 7),
        &vec![0u8; 200_000],
        &tar[..1 << 20],
    ]
    .concat();
    vec![
        ("empty", Vec::new()),
        ("one byte", b"x".to_vec()),
        ("zeros", vec![0u8; 1 << 20]),
        ("random 1 MiB", noise(1 << 20, 42)),
        ("text", text),
        ("tar of real files", tar),
        ("mixed", mixed),
    ]
}

/// Rebuilds a one-member gzip blob from its layout: the header as recorded, zlib's
/// deflate of `raw` with `params`, the trailer.
fn rebuild(layout: &Layout, raw: &[u8], params: ZlibParams) -> Vec<u8> {
    assert_eq!(layout.members.len(), 1);
    let member = &layout.members[0];
    let mut out = member.header_bytes.clone();
    zlib::deflate(params, raw, &mut out).unwrap();
    out.extend_from_slice(&crc32(raw).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out
}

const PY_ALL_LEVELS: &str = r#"
import gzip, sys
data = open(sys.argv[1], 'rb').read()
for level in range(1, 10):
    open(f'{sys.argv[2]}/{level}.gz', 'wb').write(gzip.compress(data, compresslevel=level, mtime=1234567890))
"#;

#[test]
fn python_gzip_at_every_level_is_rebuilt_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    eprintln!(
        "zlib built in: {}; Python's zlib: {}",
        zlib::version(),
        String::from_utf8(python(
            "import zlib; print(zlib.ZLIB_RUNTIME_VERSION, end='')",
            &[]
        ))
        .unwrap()
    );
    for (name, data) in inputs() {
        let input = dir.path().join("input");
        std::fs::write(&input, &data).unwrap();
        python(PY_ALL_LEVELS, &[&input, dir.path()]);
        for level in 1..=9u8 {
            let original = std::fs::read(dir.path().join(format!("{level}.gz"))).unwrap();
            let l = layout(&original[..]).unwrap();
            let h = &l.members[0].header;
            assert_eq!((h.mtime, h.os), (1234567890, 255), "{name} level {level}");
            let xfl = match level {
                1 => 4,
                9 => 2,
                _ => 0,
            };
            assert_eq!(h.xfl, xfl, "{name} level {level}: XFL");
            assert_eq!((l.trailing_len, l.raw_len()), (0, data.len() as u64));
            let rebuilt = rebuild(&l, &data, ZlibParams::level(level));
            assert!(
                rebuilt == original,
                "{name} at level {level}: {} rebuilt bytes vs Python's {} (first difference at {:?})",
                rebuilt.len(),
                original.len(),
                rebuilt.iter().zip(&original).position(|(a, b)| a != b)
            );
        }
        eprintln!("{name}: {} bytes, levels 1-9 identical", data.len());
    }
}

#[test]
fn python_gzipfile_with_a_name_is_rebuilt_byte_for_byte() {
    // GzipFile writes FNAME and feeds zlib in its own chunks (compressobj with
    // -MAX_WBITS, DEF_MEM_LEVEL, strategy 0).
    let dir = tempfile::tempdir().unwrap();
    let data = tar_of_real_files(2 << 20);
    let input = dir.path().join("layer.tar");
    std::fs::write(&input, &data).unwrap();
    let original = python(
        r#"
import gzip, io, sys
buf = io.BytesIO()
with gzip.GzipFile(filename='layer.tar', mode='wb', compresslevel=6, fileobj=buf, mtime=1700000000) as f:
    data = open(sys.argv[1], 'rb').read()
    for i in range(0, len(data), 10000):
        f.write(data[i:i + 10000])
sys.stdout.buffer.write(buf.getvalue())
"#,
        &[&input],
    );
    let l = layout(&original[..]).unwrap();
    let h = &l.members[0].header;
    assert_eq!(h.flags, FNAME);
    assert_eq!(h.name.as_deref(), Some(&b"layer.tar"[..]));
    assert_eq!(h.mtime, 1700000000);
    assert_eq!(h.len, 10 + "layer.tar\0".len());
    assert!(rebuild(&l, &data, ZlibParams::level(6)) == original);
}

#[test]
fn gnu_gzip_pigz_and_concatenated_members_are_laid_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = tar_of_real_files(3 << 20);
    let input = dir.path().join("layer.tar");
    std::fs::write(&input, &data).unwrap();

    // GNU gzip -n: no name, mtime 0, OS 3 (Unix), XFL 2 at -9.
    let gz = run(Command::new("gzip").args(["-n", "-9", "-c"]).arg(&input));
    let l = layout(&gz[..]).unwrap();
    let h = &l.members[0].header;
    assert_eq!((h.flags, h.mtime, h.xfl, h.os, h.len), (0, 0, 2, 3, 10));
    assert_eq!(l.raw_len(), data.len() as u64);
    assert_eq!(l.members[0].len(), gz.len() as u64);
    // GNU gzip has its own deflate (zlib's ancestor): say whether zlib matches it.
    let same = rebuild(&l, &data, ZlibParams::level(9)) == gz;
    eprintln!("GNU gzip -9 equals zlib level 9: {same}");

    // pigz keeps the file's name and mtime.
    let mtime = std::fs::metadata(&input)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let pz = run(Command::new("pigz").args(["-c", "-p", "2"]).arg(&input));
    let l = layout(&pz[..]).unwrap();
    let h = &l.members[0].header;
    assert_eq!(h.name.as_deref(), Some(&b"layer.tar"[..]));
    assert_eq!((h.flags, h.mtime, h.os), (FNAME, mtime, 3));
    assert_eq!((l.members.len(), l.raw_len()), (1, data.len() as u64));

    // cat a.gz b.gz c.gz, then zero padding as some tools write.
    let py = python(
        "import gzip, sys; sys.stdout.buffer.write(gzip.compress(b'python member', mtime=0))",
        &[],
    );
    let mut blob = [&gz[..], &py[..], &pz[..]].concat();
    let gunzip = |blob: &[u8]| {
        let mut child = Command::new("gzip")
            .args(["-dc"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let owned = blob.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&owned));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        out
    };
    let l = layout(&blob[..]).unwrap();
    let offsets: Vec<u64> = l.members.iter().map(|m| m.offset).collect();
    assert_eq!(
        offsets,
        vec![0, gz.len() as u64, (gz.len() + py.len()) as u64]
    );
    let expected_raw = [&data[..], b"python member", &data[..]].concat();
    assert_eq!(l.raw_len(), expected_raw.len() as u64);
    assert_eq!(gunzip(&blob).stdout, expected_raw, "gzip -d agrees");

    blob.extend_from_slice(&[0u8; 4096]);
    let l = layout(&blob[..]).unwrap();
    assert_eq!(
        (l.members.len(), l.trailing_len, l.trailing_zeros),
        (3, 4096, true)
    );
    let out = gunzip(&blob);
    assert!(out.status.success());
    assert_eq!(
        out.stdout, expected_raw,
        "gzip -d ignores the zero padding too"
    );
    assert_eq!(l.total_len, blob.len() as u64);
}

fn zlib_list(encoders: &[ZlibParams]) -> Vec<&dyn Encoder> {
    encoders.iter().map(|e| e as &dyn Encoder).collect()
}

/// Rebuilds a whole blob from an identification: per member the recorded header,
/// the chosen encoder's deflate of the member's raw bytes, the trailer; then the
/// trailing bytes.
fn rebuild_identified(
    found: &airlock::regzip::identify::Identified,
    encoders: &[ZlibParams],
    raws: &[&[u8]],
    trailing: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    for ((member, matched), raw) in found.layout.members.iter().zip(&found.members).zip(raws) {
        out.extend_from_slice(&member.header_bytes);
        let params = encoders[matched.chosen().expect("identified")];
        zlib::deflate(params, *raw, &mut out).unwrap();
        out.extend_from_slice(&member.crc32.to_le_bytes());
        out.extend_from_slice(&member.isize.to_le_bytes());
    }
    out.extend_from_slice(trailing);
    out
}

#[test]
fn python_gzip_members_are_identified_as_their_zlib_level() {
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of_real_files(3 << 20);
    let mut random = vec![0u8; 1 << 20];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .unwrap();
    let (tar_path, random_path) = (dir.path().join("tar"), dir.path().join("random"));
    std::fs::write(&tar_path, &tar).unwrap();
    std::fs::write(&random_path, &random).unwrap();
    // cat of: the tar at level 9, random bytes at level 6, the tar at level 1, then padding
    let mut blob = python(
        r#"
import gzip, sys
tar, rnd = (open(p, 'rb').read() for p in sys.argv[1:3])
for data, level in ((tar, 9), (rnd, 6), (tar, 1)):
    sys.stdout.buffer.write(gzip.compress(data, compresslevel=level, mtime=1234567890))
"#,
        &[&tar_path, &random_path],
    );
    blob.extend_from_slice(&[0u8; 512]);
    let encoders = zlib_encoders();
    let found = identify(&blob[..], &zlib_list(&encoders)).unwrap();
    let levels = |i: usize| -> Vec<u8> {
        found.members[i]
            .matching
            .iter()
            .map(|&k| encoders[k].level)
            .collect()
    };
    eprintln!(
        "matching levels: tar@9 {:?}, random@6 {:?}, tar@1 {:?}",
        levels(0),
        levels(1),
        levels(2)
    );
    assert_eq!(levels(0), vec![9], "real files at level 9");
    assert_eq!(levels(2), vec![1], "real files at level 1");
    // random bytes: stored blocks, which several levels may write identically; the
    // one chosen is the lowest matching level, and it must include the real one
    assert!(levels(1).contains(&6), "{:?}", levels(1));
    assert_eq!(
        found.members[1].chosen().map(|k| encoders[k].level),
        Some(levels(1)[0])
    );
    assert!(found.rebuildable());
    assert_eq!(
        (found.layout.trailing_len, found.layout.trailing_zeros),
        (512, true)
    );
    let rebuilt = rebuild_identified(&found, &encoders, &[&tar, &random, &tar], &[0u8; 512]);
    assert!(
        rebuilt == blob,
        "the rebuild from the identified recipe is the blob"
    );
}

#[test]
fn gnu_gzip_is_not_mistaken_for_zlib() {
    // GNU gzip has its own deflate; as measured here its -6 and -9 output is not
    // stock zlib's, so no zlib level may claim it.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("layer.tar");
    std::fs::write(&input, tar_of_real_files(2 << 20)).unwrap();
    let encoders = zlib_encoders();
    for level in ["-6", "-9"] {
        let gz = run(Command::new("gzip").args(["-n", level, "-c"]).arg(&input));
        let found = identify(&gz[..], &zlib_list(&encoders)).unwrap();
        assert_eq!(found.members.len(), 1);
        assert!(
            found.members[0].matching.is_empty(),
            "gzip {level}: {:?}",
            found.members
        );
        assert!(!found.rebuildable());
    }
}
