//! Which raw layers of a compact save resemble each other, and the layer order that puts
//! them side by side.
//!
//! zstd finds a repeat only inside one frame and within its window, so two layers that
//! share most of their bytes (`python` and `python-slim`, two versions of one app, a
//! rebuilt base) compress against each other only when they are written next to each
//! other, in one frame. In image order they are often far apart. So while the encoder
//! search reads each layer's raw bytes anyway ([`find_recipe_seeing`]), a [`SketchBuilder`]
//! cuts them into content-defined chunks (FastCDC: a chunk boundary depends on the bytes
//! around it, not on their offset, so shared content yields the same chunks wherever it
//! sits) and keeps a fixed sample of the chunks' sha256 prefixes with their lengths: the
//! [`Sketch`]. Two sketches share samples exactly where the layers share content.
//!
//! [`group`] then walks the layers in their usual order and pulls each layer's closest
//! later relatives up behind it, while the group fits one coarse frame
//! ([`COARSE_GROUP_INPUT`]): the result is a permutation of the layers plus the groups
//! the writer keeps in one frame. It depends only on the layers' bytes and their usual
//! order, so the bundle stays a function of its inputs (byte-identical saves, resume).
//!
//! Bounds: a sketch keeps about one sample per 128 KiB of raw bytes (12 bytes each, so
//! 100 KiB for a 1 GiB layer); grouping compares sketches pairwise, so only the
//! [`MAX_CANDIDATES`] largest layers of at least [`MIN_LAYER`] bytes take part (small
//! layers gain little and stay where they are).
//!
//! [`find_recipe_seeing`]: crate::regzip::recipe::find_recipe_seeing
//! [`COARSE_GROUP_INPUT`]: crate::bundle::writer::COARSE_GROUP_INPUT

use fastcdc::v2020::FastCDC;
use sha2::{Digest as _, Sha256};

use crate::bundle::writer::COARSE_GROUP_INPUT;

/// Content-defined chunk sizes: smallest, average, largest.
const CHUNK_MIN: usize = 4 * 1024;
const CHUNK_AVG: usize = 16 * 1024;
const CHUNK_MAX: usize = 64 * 1024;

/// One chunk in `SAMPLE` is kept (chosen by its boundary hash, so the same chunks are
/// chosen in every layer).
const SAMPLE: u64 = 8;

/// Bytes gathered before chunking (the last, unfinished chunk is carried over).
const BATCH: usize = 1024 * 1024;

/// Layers smaller than this keep their place.
pub(crate) const MIN_LAYER: u64 = 1024 * 1024;

/// At most this many layers (the largest) are compared with each other.
pub(crate) const MAX_CANDIDATES: usize = 512;

/// Two layers are grouped when the smaller one shares at least this share of its
/// sampled bytes with the group.
const SIMILAR: f64 = 0.25;

/// Raw bytes a group may hold: one coarse frame, less room for the tar headers.
const GROUP_ROOM: u64 = COARSE_GROUP_INPUT as u64 - 1024 * 1024;

/// A sample of a layer's content-defined chunks: (sha256 prefix, length), sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sketch {
    samples: Vec<(u64, u32)>,
    /// Sum of the sampled lengths.
    sampled: u64,
}

impl Sketch {
    /// Sampled bytes `self` and `other` have in common, over the smaller sampled total
    /// (0 when either has none): near 1 when one is contained in the other.
    pub(crate) fn similarity(&self, other: &Sketch) -> f64 {
        let smaller = self.sampled.min(other.sampled);
        if smaller == 0 {
            return 0.0;
        }
        let (mut a, mut b) = (
            self.samples.iter().peekable(),
            other.samples.iter().peekable(),
        );
        let mut shared = 0u64;
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            match x.0.cmp(&y.0) {
                std::cmp::Ordering::Less => {
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    shared += u64::from(x.1.min(y.1));
                    a.next();
                    b.next();
                }
            }
        }
        shared as f64 / smaller as f64
    }
}

/// Builds a [`Sketch`] from raw bytes shown in order, in pieces of any size.
#[derive(Default)]
pub(crate) struct SketchBuilder {
    pending: Vec<u8>,
    samples: Vec<(u64, u32)>,
}

impl SketchBuilder {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= BATCH {
            self.chunk(false);
        }
    }

    pub(crate) fn finish(mut self) -> Sketch {
        self.chunk(true);
        let mut samples = self.samples;
        samples.sort_unstable();
        samples.dedup_by_key(|s| s.0);
        let sampled = samples.iter().map(|s| u64::from(s.1)).sum();
        Sketch { samples, sampled }
    }

    /// Chunks what is pending; unless `last`, the final chunk (which more bytes might
    /// still extend) stays pending.
    fn chunk(&mut self, last: bool) {
        let mut done = 0;
        for c in FastCDC::new(&self.pending, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX) {
            if !last && c.offset + c.length == self.pending.len() {
                break;
            }
            if c.hash % SAMPLE == 0 {
                let bytes = &self.pending[c.offset..c.offset + c.length];
                let sum = Sha256::digest(bytes);
                let prefix = u64::from_be_bytes(sum[..8].try_into().expect("8 bytes"));
                self.samples.push((prefix, c.length as u32));
            }
            done = c.offset + c.length;
        }
        self.pending.drain(..done);
    }
}

/// A layer as [`group`] sees it: its raw size and, when known, its sketch.
pub(crate) struct Candidate<'a> {
    pub(crate) size: u64,
    pub(crate) sketch: Option<&'a Sketch>,
}

/// The layers' new order (indexes into `layers`) and, for each index, whether it goes
/// into the frame of the layer before it ([`Place::Joins`]) or starts a group of
/// similar layers ([`Place::Leads`]) holding that many raw bytes in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Alone,
    Leads(u64),
    Joins,
}

/// Orders `layers` so that similar ones follow each other (see the module doc).
pub(crate) fn group(layers: &[Candidate<'_>]) -> Vec<(usize, Place)> {
    let mut eligible: Vec<usize> = (0..layers.len())
        .filter(|&i| layers[i].size >= MIN_LAYER && layers[i].sketch.is_some())
        .collect();
    eligible.sort_by_key(|&i| std::cmp::Reverse(layers[i].size));
    eligible.truncate(MAX_CANDIDATES);
    let mut candidate = vec![false; layers.len()];
    for &i in &eligible {
        candidate[i] = true;
    }
    let sketch = |i: usize| layers[i].sketch.expect("candidates have sketches");
    let mut placed = vec![false; layers.len()];
    let mut out = Vec::with_capacity(layers.len());
    for first in 0..layers.len() {
        if placed[first] {
            continue;
        }
        placed[first] = true;
        let start = out.len();
        out.push((first, Place::Alone));
        if !candidate[first] {
            continue;
        }
        // Each later candidate's similarity to the group: the best over its members,
        // brought up to date with each member as it joins (never computed twice).
        let mut closeness = vec![0.0f64; layers.len()];
        let (mut joined, mut newest, mut bytes) = (0, first, layers[first].size);
        loop {
            let mut best: Option<(usize, f64)> = None;
            for next in first + 1..layers.len() {
                if placed[next] || !candidate[next] {
                    continue;
                }
                closeness[next] = closeness[next].max(sketch(newest).similarity(sketch(next)));
                let s = closeness[next];
                let fits = bytes + layers[next].size <= GROUP_ROOM;
                if fits && s >= SIMILAR && best.is_none_or(|(_, b)| s > b) {
                    best = Some((next, s));
                }
            }
            let Some((next, _)) = best else { break };
            placed[next] = true;
            (joined, newest) = (joined + 1, next);
            bytes += layers[next].size;
            out.push((next, Place::Joins));
        }
        if joined > 0 {
            out[start].1 = Place::Leads(bytes);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::noise;

    fn sketch_of(bytes: &[u8], piece: usize) -> Sketch {
        let mut b = SketchBuilder::default();
        for p in bytes.chunks(piece) {
            b.update(p);
        }
        b.finish()
    }

    #[test]
    fn a_sketch_does_not_depend_on_how_the_bytes_arrive() {
        let data = noise(1, 3 * BATCH + 12345);
        let whole = sketch_of(&data, data.len());
        assert!(!whole.samples.is_empty());
        for piece in [1000, 65536, BATCH - 1, BATCH + 7] {
            assert_eq!(sketch_of(&data, piece), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn shared_content_is_found_wherever_it_sits() {
        let common = noise(2, 4 << 20);
        let mut a = noise(3, 1 << 20);
        a.extend_from_slice(&common);
        // The same content behind a different, odd-sized prefix, plus more of its own.
        let mut b = noise(4, 777_777);
        b.extend_from_slice(&common);
        b.extend_from_slice(&noise(5, 4 << 20));
        let (sa, sb) = (sketch_of(&a, 100_000), sketch_of(&b, 300_000));
        let s = sa.similarity(&sb);
        // a is 4/5 common content; b has it too.
        assert!(s > 0.6 && s <= 1.0, "similarity {s}");
        let unrelated = sketch_of(&noise(6, 5 << 20), 1 << 20);
        assert_eq!(sa.similarity(&unrelated), 0.0);
        assert_eq!(sa.similarity(&Sketch::default()), 0.0);
    }

    #[test]
    fn similar_layers_are_pulled_up_behind_the_first_and_the_rest_keep_their_order() {
        let base = noise(7, 3 << 20);
        let mut slim = base[..2 << 20].to_vec();
        slim.extend_from_slice(&noise(8, 100_000));
        let other = noise(9, 3 << 20);
        let tiny = noise(10, 1000);
        let sketches = [
            sketch_of(&base, 1 << 16),
            sketch_of(&other, 1 << 16),
            sketch_of(&tiny, 1 << 16),
            sketch_of(&slim, 1 << 16),
        ];
        let layers: Vec<Candidate> = [&base, &other, &tiny, &slim]
            .iter()
            .zip(&sketches)
            .map(|(b, s)| Candidate {
                size: b.len() as u64,
                sketch: Some(s),
            })
            .collect();
        let order = group(&layers);
        let group_bytes = (base.len() + slim.len()) as u64;
        assert_eq!(
            order,
            vec![
                (0, Place::Leads(group_bytes)),
                (3, Place::Joins),
                (1, Place::Alone),
                (2, Place::Alone),
            ]
        );
        // No sketch (a layer kept as gzip): it keeps its place and joins nothing.
        let mut no_sketch = layers;
        no_sketch[3].sketch = None;
        let order: Vec<usize> = group(&no_sketch).iter().map(|p| p.0).collect();
        assert_eq!(order, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_group_never_outgrows_one_coarse_frame() {
        let s = sketch_of(&noise(11, 2 << 20), 1 << 20);
        let half = GROUP_ROOM / 2;
        let layers: Vec<Candidate> = (0..3)
            .map(|_| Candidate {
                size: half - 10,
                sketch: Some(&s),
            })
            .collect();
        let order = group(&layers);
        assert_eq!(
            order,
            vec![
                (0, Place::Leads(2 * (half - 10))),
                (1, Place::Joins),
                (2, Place::Alone),
            ]
        );
    }
}
