//! Pacing by the stream's back-pressure: whether a tick captures at all,
//! how many bytes a frame may encode, when bandwidth counts as short (and
//! photo-like tiles may go JPEG), how lossy JPEG gets, and when the next
//! tick comes.
//!
//! The operator side grants credit as it reads. A tick with less credit
//! than a typical frame skips capturing: the host keeps collecting damage,
//! so nothing is lost, and the next frame sends the newest pixels instead
//! of queueing stale ones. A frame encodes at most its credit; tiles left
//! over go first in the next frame.

use crate::encode::{JPEG_QUALITY_MAX, JPEG_QUALITY_MIN};

/// Frames per second unless the operator asks otherwise: a tick that finds
/// no damage captures nothing, so this is how promptly a change goes out
/// (at most a frame interval late) more than how much is sent. At 30 the
/// operator received fewer updates than x11vnc's client on the scripted
/// desktop (515 against 523; a window dragged at 50 Hz went out at 30
/// updates a second), and a click's p50 was 16 ms against 11 at 60. The
/// agent's CPU per update was lower at 60 (smaller updates).
pub const DEFAULT_FPS: u32 = 60;
/// Most frames per second the operator may ask for.
pub const MAX_FPS: u32 = 60;
/// Shortest wait between two ticks, so that input events get their turn
/// when a frame takes longer than the frame interval.
pub const MIN_DELAY_MS: u32 = 2;
/// A tick captures only with at least this much credit…
pub const MIN_SEND_CREDIT: u64 = 64 << 10;
/// …or the recent frames' average size, up to this much.
pub const MAX_SEND_CREDIT: u64 = 512 << 10;
/// Bandwidth is short while the credit is below this many average frames
/// (or the previous tick was skipped or left tiles over).
pub const SHORT_FRAMES: u64 = 2;
/// The average frame size moves by 1/`AVERAGE_WEIGHT` of the difference
/// at each frame that sent something.
const AVERAGE_WEIGHT: u64 = 4;
/// A tick that took more than this share (per cent) of the frame interval
/// leaves no CPU time for harder compression: while it does, frames keep
/// the fast zlib level even when bandwidth is short ([`Frame::cpu_bound`]).
pub const CPU_BOUND_PERCENT: u64 = 50;
/// JPEG quality when sharing starts.
pub const JPEG_QUALITY_START: u8 = 70;
/// JPEG quality lost at each short frame…
const JPEG_STEP_DOWN: u8 = 5;
/// …and won back at each frame that is not short.
const JPEG_STEP_UP: u8 = 1;

/// What one frame may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Bytes of tiles it may encode (tiles beyond wait for the next frame).
    pub budget: u64,
    /// Bandwidth is short: photo-like tiles may go JPEG, nothing is refined.
    pub short: bool,
    /// The last tick took more than [`CPU_BOUND_PERCENT`] of the frame
    /// interval: the CPU, not only bandwidth, limits the frame rate.
    pub cpu_bound: bool,
    pub jpeg_quality: u8,
}

/// The pace of one sharing.
#[derive(Debug, Clone)]
pub struct Pacer {
    fps: u32,
    /// Average bytes of the recent frames that sent something.
    avg_frame_bytes: u64,
    /// The previous tick was skipped or left tiles over.
    behind: bool,
    /// The last tick took more than [`CPU_BOUND_PERCENT`] of the interval.
    cpu_bound: bool,
    jpeg_quality: u8,
    /// Ticks skipped for want of credit, in all.
    skipped: u64,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            fps: DEFAULT_FPS,
            avg_frame_bytes: 0,
            behind: false,
            cpu_bound: false,
            jpeg_quality: JPEG_QUALITY_START,
            skipped: 0,
        }
    }
}

impl Pacer {
    pub fn fps(&self) -> u32 {
        self.fps
    }

    /// Ticks skipped for want of credit so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The operator's `max_fps`: 0 keeps the current rate; at most [`MAX_FPS`].
    pub fn set_max_fps(&mut self, max_fps: u8) {
        if max_fps != 0 {
            self.fps = u32::from(max_fps).min(MAX_FPS);
        }
    }

    fn interval_us(&self) -> u64 {
        1_000_000 / u64::from(self.fps)
    }

    /// Milliseconds to the next tick when this one took `spent_us`.
    pub fn delay_ms(&self, spent_us: u64) -> u32 {
        let left_ms = self.interval_us().saturating_sub(spent_us) / 1000;
        (left_ms as u32).max(MIN_DELAY_MS)
    }

    /// A tick took `spent_us`: whether the next frame is CPU-bound.
    pub fn took(&mut self, spent_us: u64) {
        self.cpu_bound = spent_us.saturating_mul(100) > self.interval_us() * CPU_BOUND_PERCENT;
    }

    /// Credit a tick needs to capture: enough for a typical frame.
    pub fn threshold(&self) -> u64 {
        self.avg_frame_bytes.clamp(MIN_SEND_CREDIT, MAX_SEND_CREDIT)
    }

    fn short(&self, credit: u64) -> bool {
        self.behind || credit < SHORT_FRAMES.saturating_mul(self.avg_frame_bytes)
    }

    /// A timer tick with `credit`: the frame to capture, or `None` to skip
    /// this tick.
    pub fn begin(&mut self, credit: u64) -> Option<Frame> {
        if credit < self.threshold() {
            self.behind = true;
            self.skipped += 1;
            return None;
        }
        let short = self.short(credit);
        self.jpeg_quality = if short {
            self.jpeg_quality
                .saturating_sub(JPEG_STEP_DOWN)
                .max(JPEG_QUALITY_MIN)
        } else {
            self.jpeg_quality
                .saturating_add(JPEG_STEP_UP)
                .min(JPEG_QUALITY_MAX)
        };
        Some(Frame {
            budget: credit,
            short,
            cpu_bound: self.cpu_bound,
            jpeg_quality: self.jpeg_quality,
        })
    }

    /// A frame the operator asked for (a sync): everything, whatever the
    /// credit (sending then waits for the operator side).
    pub fn begin_forced(&self, credit: u64) -> Frame {
        Frame {
            budget: u64::MAX,
            short: self.short(credit),
            cpu_bound: self.cpu_bound,
            jpeg_quality: self.jpeg_quality,
        }
    }

    /// The frame sent `bytes` and left tiles over when `deferred`.
    pub fn end(&mut self, bytes: u64, deferred: bool) {
        if bytes > 0 {
            let w = AVERAGE_WEIGHT;
            self.avg_frame_bytes = (self.avg_frame_bytes * (w - 1) + bytes) / w;
        }
        self.behind = deferred;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rate_and_delay() {
        let mut p = Pacer::default();
        assert_eq!(p.delay_ms(0), 16);
        assert_eq!(p.delay_ms(6_000), 10);
        assert_eq!(p.delay_ms(50_000), MIN_DELAY_MS);
        p.set_max_fps(0);
        assert_eq!(p.fps(), DEFAULT_FPS);
        p.set_max_fps(200);
        assert_eq!(p.fps(), MAX_FPS);
        p.set_max_fps(30);
        assert_eq!(p.delay_ms(13_000), 20);
        p.set_max_fps(10);
        assert_eq!(p.delay_ms(0), 100);
    }

    #[test]
    fn a_tick_over_half_the_interval_makes_the_next_frame_cpu_bound() {
        let mut p = Pacer::default();
        p.set_max_fps(30);
        assert!(!p.begin(1 << 20).expect("credit").cpu_bound);
        p.took(20_000);
        assert!(p.begin(1 << 20).expect("credit").cpu_bound);
        assert!(p.begin_forced(0).cpu_bound);
        p.took(10_000);
        assert!(!p.begin(1 << 20).expect("credit").cpu_bound);
        p.set_max_fps(60);
        p.took(10_000);
        assert!(p.begin(1 << 20).expect("credit").cpu_bound, "10 ms of 16.7");
    }

    #[test]
    fn low_credit_skips_and_marks_bandwidth_short() {
        let mut p = Pacer::default();
        assert_eq!(p.begin(MIN_SEND_CREDIT - 1), None);
        assert_eq!(p.skipped(), 1);
        let f = p.begin(1 << 20).expect("enough credit");
        assert!(f.short, "the previous tick was skipped");
        assert_eq!(f.budget, 1 << 20);
        p.end(100_000, false);
        let f = p.begin(1 << 20).expect("enough credit");
        assert!(!f.short);
    }

    #[test]
    fn the_threshold_follows_the_frames_size() {
        let mut p = Pacer::default();
        for _ in 0..20 {
            p.end(300_000, false);
        }
        assert!(
            p.threshold() > 250_000 && p.threshold() <= 300_000,
            "{}",
            p.threshold()
        );
        assert_eq!(p.begin(200_000), None);
        let f = p.begin(400_000).expect("enough credit");
        assert!(f.short, "less than two frames of credit");
        for _ in 0..40 {
            p.end(10_000_000, false);
        }
        assert_eq!(p.threshold(), MAX_SEND_CREDIT);
        p.end(0, false);
        assert_eq!(
            p.threshold(),
            MAX_SEND_CREDIT,
            "empty frames leave the average"
        );
    }

    #[test]
    fn jpeg_quality_drops_while_short_and_recovers() {
        let mut p = Pacer::default();
        for _ in 0..20 {
            p.end(1, true);
            p.begin(1 << 20).expect("credit");
        }
        let low = p.begin_forced(0).jpeg_quality;
        assert_eq!(low, JPEG_QUALITY_MIN);
        for _ in 0..100 {
            p.end(1, false);
            p.begin(8 << 20).expect("credit");
        }
        assert_eq!(p.begin_forced(8 << 20).jpeg_quality, JPEG_QUALITY_MAX);
        assert_eq!(p.begin_forced(0).budget, u64::MAX);
    }
}
