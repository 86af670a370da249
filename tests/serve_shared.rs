//! `airlock serve` answering many downloads of the same blob at once, which share one
//! read and one hash of it: every client must still get exactly the blob's bytes, a
//! slow client must not hold back a fast one (it falls behind and reads on by itself,
//! still getting every byte), a damaged blob must reach no client whole, and ranges stay
//! served as stored. Plain HTTP over raw sockets, so a test controls when a client reads.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::LazyLock;
use std::sync::mpsc;
use std::time::Duration;

use support::cli::{airlock, copy_with_flip_in_raw_block};
use support::corpus::{Corpus, base_layer, data_layer};
use support::images::{Blob, Image, OciLayout, sha256};
use support::serve::{Served, get};

/// An image whose top layer is 12 MiB of incompressible bytes: about 96 chunks, far more
/// than the server keeps for a slow client plus what the loopback sockets buffer.
static IMAGE: LazyLock<Image> = LazyLock::new(|| {
    Corpus::new(base_layer("airlock-serve-shared", &[]), |seed| {
        data_layer(seed, 12 << 20)
    })
    .image("linux/amd64", 31)
});

fn big_layer() -> &'static Blob {
    &IMAGE.layers[1].gz
}

/// Saves the image as `dir/b.tar.zst`.
fn save(dir: &Path) -> std::path::PathBuf {
    let layout = dir.join("layout");
    let mut l = OciLayout::new();
    l.add(IMAGE.clone(), "1", Some("example.com/shared/img:1"));
    l.write(&layout);
    let out = dir.join("b.tar.zst");
    airlock(&[
        "save".to_string(),
        format!("oci:{}", layout.display()),
        "-o".into(),
        out.display().to_string(),
    ])
    .ok();
    out
}

/// Sends a GET for blob `digest` (closing the connection after it); nothing is read yet.
fn send_get(addr: &str, digest: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /v2/shared/img/blobs/{digest} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s
}

/// Reads an answer to its end: the status and the body, `Err` (with what arrived) when
/// the body is shorter than its `Content-Length` or the connection was cut.
fn read_answer(mut s: TcpStream) -> (u16, Result<Vec<u8>, usize>) {
    let mut raw = Vec::new();
    let cut = s.read_to_end(&mut raw).is_err();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("Content-Length");
    let body = raw[end + 4..].to_vec();
    if cut || body.len() != len {
        return (status, Err(body.len()));
    }
    (status, Ok(body))
}

#[test]
fn downloads_of_one_blob_at_once_all_get_its_bytes_and_ranges_stay_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let zst = save(dir.path());
    let served = Served::start(&[&zst], &["-q"]);
    let blob = big_layer();
    for _ in 0..2 {
        // Sent back to back, so they arrive while the first read is at its start.
        let streams: Vec<TcpStream> = (0..12)
            .map(|_| send_get(&served.addr, &blob.digest))
            .collect();
        std::thread::scope(|sc| {
            let full: Vec<_> = streams
                .into_iter()
                .map(|s| sc.spawn(move || read_answer(s)))
                .collect();
            // A range read at the same time is served as stored.
            let (status, part) = get(
                &served.addr,
                &format!("/v2/shared/img/blobs/{}", blob.digest),
                &[("Range", "bytes=5000000-5999999")],
            );
            assert_eq!(status, 206);
            assert!(
                part == blob.bytes[5_000_000..6_000_000],
                "the range differs"
            );
            for h in full {
                let (status, body) = h.join().unwrap();
                assert_eq!(status, 200);
                let body =
                    body.unwrap_or_else(|n| panic!("a download was cut off after {n} bytes"));
                assert_eq!(body.len(), blob.bytes.len());
                assert_eq!(sha256(&body), blob.digest);
            }
        });
    }
    // The small blobs too, many at once.
    std::thread::scope(|sc| {
        for b in IMAGE.blobs().into_iter().cycle().take(24) {
            let addr = &served.addr;
            sc.spawn(move || {
                let (status, body) = read_answer(send_get(addr, &b.digest));
                assert_eq!(status, 200);
                assert!(
                    body.as_ref().is_ok_and(|x| *x == b.bytes),
                    "blob {} differs",
                    b.digest
                );
            });
        }
    });
}

#[test]
fn a_client_that_stops_reading_holds_back_no_other_and_still_gets_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let zst = save(dir.path());
    let served = Served::start(&[&zst], &["-q"]);
    let blob = big_layer();
    // Both requests arrive before the first chunk is read: they share the read.
    let slow = send_get(&served.addr, &blob.digest);
    let fast = send_get(&served.addr, &blob.digest);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::scope(|sc| {
        let slow = sc.spawn(move || {
            // Reads nothing until the fast client has its whole blob (or gave up).
            let _ = done_rx.recv_timeout(Duration::from_secs(120));
            read_answer(slow)
        });
        // The fast client gets the whole blob while the slow one reads nothing (its read
        // timeout turns a stall into a failure instead of a hang).
        let (status, body) = read_answer(fast);
        done_tx.send(()).unwrap();
        assert_eq!(status, 200);
        let body = body.unwrap_or_else(|n| panic!("the fast download stalled after {n} bytes"));
        assert_eq!(sha256(&body), blob.digest);
        // Then the slow one gets every byte too.
        let (status, body) = slow.join().unwrap();
        assert_eq!(status, 200);
        let body = body.unwrap_or_else(|n| panic!("the slow download was cut off after {n} bytes"));
        assert_eq!(body.len(), blob.bytes.len());
        assert_eq!(sha256(&body), blob.digest);
    });
}

#[test]
fn a_damaged_blob_downloaded_by_many_at_once_reaches_none_of_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let zst = save(dir.path());
    let blob = big_layer();
    let damaged = dir.path().join("damaged.tar.zst");
    // Near the layer's end.
    copy_with_flip_in_raw_block(&zst, &damaged, &blob.bytes[11_000_000..11_000_064]);
    let served = Served::start(&[&damaged], &[]);
    // A slow client among them too: it falls behind, reads on by itself and must be
    // cut off as well.
    let slow = send_get(&served.addr, &blob.digest);
    let streams: Vec<TcpStream> = (0..6)
        .map(|_| send_get(&served.addr, &blob.digest))
        .collect();
    std::thread::scope(|sc| {
        let all: Vec<_> = streams
            .into_iter()
            .map(|s| sc.spawn(move || read_answer(s)))
            .collect();
        for h in all {
            let (status, body) = h.join().unwrap();
            assert_eq!(status, 200);
            assert!(body.is_err(), "a damaged blob must not arrive whole");
        }
    });
    let (status, body) = read_answer(slow);
    assert_eq!(status, 200);
    assert!(
        body.is_err(),
        "a damaged blob must not arrive whole to a slow client"
    );
    // Its bytes before the damage are served as stored in a range.
    let (status, part) = get(
        &served.addr,
        &format!("/v2/shared/img/blobs/{}", blob.digest),
        &[("Range", "bytes=0-999999")],
    );
    assert_eq!(status, 206);
    assert!(part == blob.bytes[..1_000_000], "the range differs");
    let log = served.log();
    assert!(
        log.contains(&format!("blob {} in bundle", blob.digest)) && log.contains("damaged"),
        "the log names the damaged blob:\n{log}"
    );
}
