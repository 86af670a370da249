//! Progress reporting for long work, behind one trait.
//!
//! Pipelines only talk to [`Progress`]; which implementation they get is decided once
//! by the binary from the output mode: [`Bars`] (indicatif, a line per blob in flight
//! plus an overall bar with rate and ETA, every line fitted to the terminal's width by
//! truncating its label) on a terminal, [`Lines`] (one line per finished item and one
//! every few seconds for an item in flight, for logs and CI) when stderr is not a
//! terminal, and [`Silent`] with `--quiet`, `--json` or `--no-progress`. Every method
//! has a do-nothing default, so a reporter only implements what it shows. All output
//! goes to stderr; stdout is for results.
//!
//! Both show the same labels: a phase counts what it names (`fetching: 5 layers`, not
//! the bundle's blobs), a blob is named by [`blob_label`] (digest prefix, the image it
//! belongs to, and which layer of it), and work that has nothing to count, such as
//! finishing a bundle after its last byte arrived, is a [`Progress::step`] shown by name.

use std::io::{self, IsTerminal, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sync::lock;
use crate::words::count;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Receives progress events. Implementations must be cheap: `advance` is called for
/// every buffer read.
pub trait Progress: Send + Sync {
    /// A new phase of work starts (`"fetching"`, `"verifying"`), with the bytes and items it will cover.
    fn phase(&self, name: &str, total_bytes: u64, total_items: u64) {
        self.phase_of(name, "item", total_bytes, total_items);
    }
    /// [`phase`](Self::phase) whose items are counted as `noun`s (`"layer"`, `"blob"`),
    /// so its totals say what they count.
    fn phase_of(&self, _name: &str, _noun: &str, _total_bytes: u64, _total_items: u64) {}
    /// A phase with nothing to count starts (`"finishing"`), saying what it is `doing`;
    /// it is shown by name until [`finish_phase`](Self::finish_phase).
    fn step(&self, _name: &str, _doing: &str) {}
    /// One item (a blob) within the current phase starts.
    fn item(&self, _label: &str, _size: u64) -> Box<dyn Item> {
        Box::new(NoItem)
    }
    /// A line of information for the operator (not an error; those are returned).
    fn message(&self, _msg: &str) {}
    /// The current phase is over.
    fn finish_phase(&self) {}
    /// The current phase failed: it is taken off the screen without saying it is done
    /// (the error says what happened).
    fn abandon_phase(&self) {}
}

/// Progress of one item.
pub trait Item: Send {
    fn advance(&self, _bytes: u64) {}
    /// The item is complete (or abandoned; drop without calling `done` to abandon).
    fn done(self: Box<Self>) {}
}

struct NoItem;
impl Item for NoItem {}

/// Reports nothing (quiet, JSON and no-progress modes, and tests).
pub struct Silent;
impl Progress for Silent {}

/// How the binary wants progress shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Silent,
    Lines,
    Bars,
}

impl Mode {
    /// Bars on a terminal, lines otherwise, nothing when asked for quiet.
    pub(crate) fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Silent
        } else if io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }

    pub(crate) fn reporter(self) -> Box<dyn Progress> {
        match self {
            Mode::Silent => Box::new(Silent),
            Mode::Lines => Box::new(Lines::new()),
            Mode::Bars => Box::new(Bars::new()),
        }
    }
}

/// How often a log line tells how far an item in flight is.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A line per event on stderr, for logs: one per finished item, and one every
/// [`HEARTBEAT`] for an item still in flight (bytes so far and rate), so a long single
/// blob does not look like a hang. Items without a size (repositories) show no bytes.
pub(crate) struct Lines {
    state: Arc<Mutex<LineState>>,
    interval: Duration,
    /// Where lines go: stderr, or a buffer (tests).
    sink: Option<Arc<Mutex<Vec<u8>>>>,
}

struct LineState {
    phase: String,
    /// What the phase's items are (`"layer"`); empty for a step, which counts nothing.
    noun: String,
    started: Instant,
    items: u64,
    bytes: u64,
}

impl Lines {
    pub fn new() -> Lines {
        Lines {
            state: Arc::new(Mutex::new(LineState {
                phase: String::new(),
                noun: String::new(),
                started: Instant::now(),
                items: 0,
                bytes: 0,
            })),
            interval: HEARTBEAT,
            sink: None,
        }
    }

    fn write(sink: &Option<Arc<Mutex<Vec<u8>>>>, line: &str) {
        match sink {
            Some(buf) => {
                let _ = writeln!(lock(buf), "{line}");
            }
            None => {
                let _ = writeln!(io::stderr(), "{line}");
            }
        }
    }
}

impl Default for Lines {
    fn default() -> Self {
        Lines::new()
    }
}

/// `3 layers, 1.5 MiB`, or `3 layers` when no bytes are counted.
fn items_and_bytes(items: u64, noun: &str, bytes: u64) -> String {
    if bytes == 0 {
        count(items, noun)
    } else {
        format!("{}, {}", count(items, noun), human_bytes(bytes))
    }
}

impl Progress for Lines {
    fn phase_of(&self, name: &str, noun: &str, total_bytes: u64, total_items: u64) {
        let mut s = lock(&self.state);
        *s = LineState {
            phase: name.to_string(),
            noun: noun.to_string(),
            started: Instant::now(),
            items: 0,
            bytes: 0,
        };
        Lines::write(
            &self.sink,
            &format!(
                "{name}: {}",
                items_and_bytes(total_items, noun, total_bytes)
            ),
        );
    }
    fn step(&self, name: &str, doing: &str) {
        let mut s = lock(&self.state);
        *s = LineState {
            phase: name.to_string(),
            noun: String::new(),
            started: Instant::now(),
            items: 0,
            bytes: 0,
        };
        Lines::write(&self.sink, &format!("{name}: {doing}"));
    }
    fn item(&self, label: &str, size: u64) -> Box<dyn Item> {
        let now = Instant::now();
        Box::new(LineItem {
            label: label.to_string(),
            size,
            state: Arc::clone(&self.state),
            sink: self.sink.clone(),
            interval: self.interval,
            started: now,
            flight: Mutex::new((0, now)),
        })
    }
    fn message(&self, msg: &str) {
        Lines::write(&self.sink, msg);
    }
    fn finish_phase(&self) {
        let s = lock(&self.state);
        let secs = s.started.elapsed().as_secs_f64();
        let line = if s.noun.is_empty() {
            format!("{}: done in {secs:.1}s", s.phase)
        } else if s.bytes == 0 {
            format!(
                "{}: done, {} in {secs:.1}s",
                s.phase,
                items_and_bytes(s.items, &s.noun, 0)
            )
        } else {
            format!(
                "{}: done, {} in {secs:.1}s ({}/s)",
                s.phase,
                items_and_bytes(s.items, &s.noun, s.bytes),
                human_bytes((s.bytes as f64 / secs.max(0.001)) as u64)
            )
        };
        Lines::write(&self.sink, &line);
    }
}

struct LineItem {
    label: String,
    size: u64,
    state: Arc<Mutex<LineState>>,
    sink: Option<Arc<Mutex<Vec<u8>>>>,
    interval: Duration,
    started: Instant,
    /// Bytes so far and when the last line about this item was written.
    flight: Mutex<(u64, Instant)>,
}

impl Item for LineItem {
    fn advance(&self, bytes: u64) {
        let mut f = lock(&self.flight);
        f.0 += bytes;
        if f.1.elapsed() < self.interval {
            return;
        }
        f.1 = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let phase = lock(&self.state).phase.clone();
        let line = format!(
            "{phase} {}: {} of {} ({}/s)",
            self.label,
            human_bytes(f.0),
            human_bytes(self.size),
            human_bytes((f.0 as f64 / secs) as u64)
        );
        drop(f);
        Lines::write(&self.sink, &line);
    }
    fn done(self: Box<Self>) {
        let line = {
            let mut s = lock(&self.state);
            s.items += 1;
            s.bytes += self.size;
            if self.size == 0 {
                format!("{} {}", s.phase, self.label)
            } else {
                format!("{} {} ({})", s.phase, self.label, human_bytes(self.size))
            }
        };
        Lines::write(&self.sink, &line);
    }
}

/// indicatif bars: an overall bar and one bar per item in flight.
///
/// Every line fits the terminal: the part of a line that can grow (a blob's label, a
/// step's description) is indicatif's `wide_msg`, truncated to what the terminal's
/// width leaves it, and the overall bar is a `wide_bar` after a label of at most
/// [`PHASE_LABEL`] columns, so at 60 columns nothing wraps.
pub(crate) struct Bars {
    multi: MultiProgress,
    overall: Mutex<Option<ProgressBar>>,
}

/// How many columns the overall bar's label (`fetching 5 layers`) may take.
const PHASE_LABEL: usize = 18;

/// The overall bar: label, a bar taking what is left, share done of the total, rate and
/// ETA. Apart from the bar its parts take at most 18 + 4 + 19 + 14 + 3 = 58 columns
/// (indicatif's sizes are at most 11 columns: `1023.99 GiB`).
pub(crate) const OVERALL_TEMPLATE: &str =
    "{msg:.bold} [{wide_bar}] {percent:>3}% of {total_bytes} {binary_bytes_per_sec} {eta}";
/// A blob in flight: its label, truncated to what the terminal leaves (27 columns of
/// 60), a short bar, and the share done of its size.
pub(crate) const ITEM_TEMPLATE: &str = "  {wide_msg} [{bar:8}] {percent:>3}% of {total_bytes:<11}";
/// A step (nothing to count): a spinner, its name, what it does (truncated) and how long it has taken.
pub(crate) const STEP_TEMPLATE: &str = "{spinner} {prefix:.bold} {wide_msg} {elapsed}";

/// `label` cut to `max` characters, ending in `…` when cut.
pub(crate) fn fit(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_string();
    }
    let mut out: String = label.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The overall bar's label: the phase and what it counts, `fetching 5 layers`.
pub(crate) fn phase_label(name: &str, noun: &str, total_items: u64) -> String {
    fit(&format!("{name} {}", count(total_items, noun)), PHASE_LABEL)
}

impl Bars {
    pub fn new() -> Bars {
        Bars::with_target(ProgressDrawTarget::stderr_with_hz(8))
    }

    /// Bars drawn on `target` (a fake terminal in tests).
    fn with_target(target: ProgressDrawTarget) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(target),
            overall: Mutex::new(None),
        }
    }

    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> ")
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

impl Progress for Bars {
    fn phase_of(&self, name: &str, noun: &str, total_bytes: u64, total_items: u64) {
        let bar = self.multi.add(ProgressBar::new(total_bytes));
        bar.set_style(Bars::style(OVERALL_TEMPLATE));
        bar.set_message(phase_label(name, noun, total_items));
        bar.enable_steady_tick(Duration::from_millis(250));
        if let Some(old) = lock(&self.overall).replace(bar) {
            old.finish();
        }
    }
    fn step(&self, name: &str, doing: &str) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(Bars::style(STEP_TEMPLATE));
        bar.set_prefix(name.to_string());
        bar.set_message(doing.to_string());
        bar.enable_steady_tick(Duration::from_millis(125));
        if let Some(old) = lock(&self.overall).replace(bar) {
            old.finish();
        }
    }
    fn item(&self, label: &str, size: u64) -> Box<dyn Item> {
        let bar = self.multi.add(ProgressBar::new(size));
        bar.set_style(Bars::style(ITEM_TEMPLATE));
        bar.set_message(label.to_string());
        let overall = lock(&self.overall).clone();
        Box::new(BarItem {
            bar,
            overall,
            multi: self.multi.clone(),
        })
    }
    fn message(&self, msg: &str) {
        let _ = self.multi.println(msg);
    }
    fn abandon_phase(&self) {
        if let Some(bar) = lock(&self.overall).take() {
            bar.finish_and_clear();
        }
    }
    fn finish_phase(&self) {
        if let Some(bar) = lock(&self.overall).take() {
            if bar.length().is_none() {
                // A step: say it is over rather than leave a spinner.
                bar.finish_with_message("done");
            } else {
                bar.finish();
            }
        }
    }
}

struct BarItem {
    bar: ProgressBar,
    overall: Option<ProgressBar>,
    multi: MultiProgress,
}

impl Item for BarItem {
    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
        if let Some(o) = &self.overall {
            o.inc(bytes);
        }
    }
    fn done(self: Box<Self>) {
        self.bar.finish_and_clear();
        self.multi.remove(&self.bar);
    }
}

impl Drop for BarItem {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
            self.multi.remove(&self.bar);
        }
    }
}

/// A reader that reports every read to an [`Item`].
pub(crate) struct ProgressReader<'a, R> {
    inner: R,
    item: &'a dyn Item,
}

impl<'a, R: Read> ProgressReader<'a, R> {
    pub fn new(inner: R, item: &'a dyn Item) -> Self {
        ProgressReader { inner, item }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.item.advance(n as u64);
        Ok(n)
    }
}

/// A blob's label: its digest prefix, the first image that uses it (`+N` more when
/// others share it) and which of that image's layers it is,
/// `3fa2c1d0e9b8 app:1.0 +2 layer 3/5`. The digest comes first so that a label cut to
/// the terminal's width keeps it.
pub(crate) fn blob_label(
    digest_short: &str,
    image: &str,
    others: usize,
    layer: usize,
    of: usize,
) -> String {
    let shared = if others > 0 {
        format!(" +{others}")
    } else {
        String::new()
    };
    format!("{digest_short} {image}{shared} layer {layer}/{of}")
}

/// `1.5 MiB`-style sizes for people.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_tell_progress_of_a_long_item_and_no_zero_bytes() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let lines = Lines {
            interval: Duration::ZERO,
            sink: Some(buf.clone()),
            ..Lines::new()
        };
        lines.phase("pushing", 3 << 20, 1);
        let item = lines.item("abc → app", 3 << 20);
        item.advance(1 << 20);
        item.advance(1 << 20);
        item.done();
        lines.finish_phase();
        lines.phase("inventory", 0, 2);
        lines.item("team/app", 0).done();
        lines.finish_phase();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("pushing abc → app: 1.0 MiB of 3.0 MiB (")
                && text.contains("pushing abc → app: 2.0 MiB of 3.0 MiB (")
                && text.contains("/s)"),
            "{text}"
        );
        assert!(!text.contains("0 B"), "{text}");
        assert!(
            text.contains("inventory: 2 items\n") && text.contains("inventory team/app\n"),
            "{text}"
        );
    }

    #[test]
    fn blob_labels_name_the_image_and_layer_and_keep_the_digest() {
        assert_eq!(
            blob_label("3fa2c1d0e9b8", "app:1.0", 0, 3, 5),
            "3fa2c1d0e9b8 app:1.0 layer 3/5"
        );
        assert_eq!(
            blob_label("3fa2c1d0e9b8", "team/base:2", 2, 1, 4),
            "3fa2c1d0e9b8 team/base:2 +2 layer 1/4"
        );
        assert_eq!(fit("fetching 5 layers", 18), "fetching 5 layers");
        assert_eq!(fit("compressing 12345 items", 18), "compressing 12345…");
        assert_eq!(phase_label("fetching", "layer", 5), "fetching 5 layers");
    }

    #[test]
    fn log_lines_count_what_the_phase_names_and_name_the_finishing_step() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let lines = Lines {
            sink: Some(buf.clone()),
            ..Lines::new()
        };
        lines.phase_of("fetching", "layer", 132_735, 5);
        let label = blob_label("3fa2c1d0e9b8", "app:1.0", 1, 2, 3);
        lines.item(&label, 2048).done();
        lines.finish_phase();
        lines.step("finishing", "flushing the compressor, syncing to disk");
        lines.finish_phase();
        lines.step("finishing", "renaming into place");
        lines.abandon_phase();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("fetching: 5 layers, 129.6 KiB\n")
                && text.contains("fetching 3fa2c1d0e9b8 app:1.0 +1 layer 2/3 (2.0 KiB)\n")
                && text.contains("fetching: done, 1 layer, 2.0 KiB in "),
            "{text}"
        );
        assert!(
            text.contains("finishing: flushing the compressor, syncing to disk\n")
                && text.contains("finishing: done in "),
            "{text}"
        );
        assert_eq!(text.matches("finishing: done").count(), 1, "{text}");
        assert!(!text.contains("item"), "{text}");
    }

    /// A terminal `width` columns wide that keeps every line drawn on it.
    #[derive(Debug, Clone)]
    struct FakeTerm {
        width: u16,
        drawn: Arc<Mutex<Vec<String>>>,
    }

    impl indicatif::TermLike for FakeTerm {
        fn width(&self) -> u16 {
            self.width
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            lock(&self.drawn).extend(s.split('\n').map(plain));
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    /// `s` without terminal escape sequences.
    fn plain(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn bars_fit_a_60_column_terminal_and_say_what_they_count_and_do() {
        let term = FakeTerm {
            width: 60,
            drawn: Arc::new(Mutex::new(Vec::new())),
        };
        let bars = Bars::with_target(ProgressDrawTarget::term_like_with_hz(
            Box::new(term.clone()),
            100,
        ));
        let gib = 1 << 30;
        bars.phase_of("fetching", "layer", 1000 * gib, 5);
        let label = blob_label(
            "3fa2c1d0e9b8",
            "registry.example.com/platform/team/application:1.0",
            2,
            3,
            5,
        );
        let item = bars.item(&label, 900 * gib);
        for _ in 0..5 {
            item.advance(100 * gib);
            std::thread::sleep(Duration::from_millis(20));
        }
        item.done();
        bars.finish_phase();
        bars.step(
            "finishing",
            "flushing the compressor, syncing to disk, renaming into place",
        );
        std::thread::sleep(Duration::from_millis(200));
        bars.finish_phase();
        let drawn = lock(&term.drawn).clone();
        let all = drawn.join("\n");
        for line in &drawn {
            assert!(line.chars().count() <= 60, "wider than 60: {line:?}\n{all}");
        }
        assert!(all.contains("fetching 5 layers ["), "{all}");
        assert!(all.contains("% of 1000.00 GiB "), "{all}");
        assert!(all.contains("  3fa2c1d0e9b8 registry.examp ["), "{all}");
        assert!(all.contains("% of 900.00 GiB"), "{all}");
        assert!(all.contains("finishing flushing the compressor"), "{all}");
        assert!(all.contains("finishing done"), "{all}");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
