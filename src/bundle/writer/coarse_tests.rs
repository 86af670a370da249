//! Coarse frames (compact bundles): how the writer cuts them around entries and groups
//! of similar layers, checked on the file's seek table and its decoded tar.

use std::fs::File;
use std::io::Read;

use super::*;

/// A compact-style writer: coarse frames, level 1, two threads.
fn coarse_writer(path: &Path) -> BundleWriter {
    let opts = WriteOptions {
        compression: Compression::Zstd { level: 1 },
        threads: 2,
        mtime: Some(0),
        frames: Frames::Coarse,
    };
    BundleWriter::create(path, opts).unwrap()
}

/// Compressible, not trivially: a few distinct lines.
fn blob(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| b"abcdefghij\n"[(i / 7 + seed as usize) % 11] ^ (i % 13 == 0) as u8)
        .collect()
}

/// The frames' decompressed sizes, after checking the file decodes to a tar holding
/// every one of `blobs`.
fn frames_holding(path: &Path, blobs: &[Vec<u8>]) -> Vec<u64> {
    use crate::bundle::seekable::read_seek_table;
    let mut f = File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let table = read_seek_table(&mut f, len).unwrap().unwrap();
    let sizes: Vec<u64> = table.frames.iter().map(|f| f.d_size).collect();
    let tar = zstd::decode_all(File::open(path).unwrap()).unwrap();
    assert_eq!(tar.len() as u64, sizes.iter().sum::<u64>());
    let mut archive = tar::Archive::new(&tar[..]);
    let mut found = 0;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if blobs.contains(&data) {
            found += 1;
        }
    }
    assert_eq!(found, blobs.len());
    sizes
}

/// Writes `sizes` blobs (distinct content), calling `before(writer, i)` before each.
fn write_blobs(
    path: &Path,
    sizes: &[usize],
    before: impl Fn(&mut BundleWriter, usize),
) -> Vec<Vec<u8>> {
    let mut w = coarse_writer(path);
    w.add_file("oci-layout", b"{}").unwrap();
    let blobs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| blob(n, i as u8))
        .collect();
    for (i, b) in blobs.iter().enumerate() {
        before(&mut w, i);
        w.add_blob(&Digest::of(b), b.len() as u64, &mut &b[..])
            .unwrap();
    }
    w.finish().unwrap();
    blobs
}

/// Coarse frames span entries: a frame ends at the first entry boundary past
/// [`COARSE_FRAME_MIN`] bytes or at [`COARSE_FRAME_INPUT`], the seek table stays valid,
/// and the file still decodes to the same tar.
#[test]
fn coarse_frames_span_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar.zst");
    let blobs = write_blobs(
        &path,
        &[5 << 20, 30 << 20, 1000, 70 << 20, 3 << 20],
        |_, _| {},
    );
    let sizes = frames_holding(&path, &blobs);
    // Frame 1: the head, 5 MiB, 30 MiB (past the minimum: cut after it); then the
    // small blob and 70 MiB cut at the maximum, the rest, 3 MiB.
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert!(
        sizes[0] > 35 << 20 && sizes[0] < COARSE_FRAME_INPUT as u64,
        "{sizes:?}"
    );
    assert_eq!(sizes[1], COARSE_FRAME_INPUT as u64);
}

/// A group of similar layers stays in one frame past the usual maximum; the frame
/// before it ends first (past the minimum), and after the group the usual rules apply.
#[test]
fn a_group_shares_one_frame_up_to_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar.zst");
    let sizes = [40 << 20, 50 << 20, 50 << 20, 3 << 20];
    let group = (100u64) << 20;
    let blobs = write_blobs(&path, &sizes, |w, i| match i {
        1 => w.begin_group(group),
        2 => w.continue_group(),
        _ => {}
    });
    let frames = frames_holding(&path, &blobs);
    assert_eq!(frames.len(), 3, "{frames:?}");
    // The head and 40 MiB; both group members and their two headers; the last blob.
    assert!(frames[0] > 40 << 20 && frames[0] < (41 << 20), "{frames:?}");
    assert_eq!(frames[1], group + 2 * 512, "{frames:?}");
    assert!(frames[1] > COARSE_FRAME_INPUT as u64);
    assert!(frames[2] > 3 << 20 && frames[2] < 4 << 20, "{frames:?}");

    // A frame too full to take the group ends before it even under the minimum, and a
    // group bigger than the window is cut at the window.
    let path = dir.path().join("c.tar.zst");
    let sizes = [10 << 20, 100 << 20, 40 << 20];
    let blobs = write_blobs(&path, &sizes, |w, i| match i {
        1 => w.begin_group(140 << 20),
        2 => w.continue_group(),
        _ => {}
    });
    let frames = frames_holding(&path, &blobs);
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert!(frames[0] < 11 << 20, "{frames:?}");
    assert_eq!(frames[1], COARSE_GROUP_INPUT as u64, "{frames:?}");
}

/// A kept coarse writer does not wait for the frame being compressed (minutes at a
/// high level on big frames): dropping it returns at once and leaves the file with
/// only the frames already complete.
#[test]
fn keeping_a_coarse_writer_does_not_wait_for_frames_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.tar.zst");
    let opts = WriteOptions {
        compression: Compression::Zstd { level: 19 },
        threads: 1,
        mtime: Some(0),
        frames: Frames::Coarse,
    };
    let mut w = BundleWriter::create(&path, opts).unwrap();
    // Past the minimum, then one more entry: the first frame goes to the pool.
    let big: Vec<u8> = (0..COARSE_FRAME_MIN as u64 + 4096)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect();
    w.add_blob(&Digest::of(&big), big.len() as u64, &mut &big[..])
        .unwrap();
    w.add_file("after", b"x").unwrap();
    w.keep_on_drop(true);
    let started = std::time::Instant::now();
    drop(w);
    let took = started.elapsed();
    let partial = OutputFiles::new(&path).partial();
    assert!(took < std::time::Duration::from_millis(500), "{took:?}");
    assert!(partial.exists());
    // Nothing complete yet: the frame in flight was not waited for, and nothing
    // half-written is there either.
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), 0);
}
