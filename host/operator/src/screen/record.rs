//! Recordings of a screen stream (`lifeline operator screen --record`):
//! every frame exactly as received, with its time, so a recording can be
//! replayed through a [`super::Framebuffer`] later.
//!
//! ```text
//! header:  "LLSCREC1" | u64 started (µs since the Unix epoch)
//!          | u16 content type length | content type (UTF-8)
//! record:  u64 µs since the start | u32 length | the frame's bytes
//! ```
//!
//! Integers are little-endian, like the screen format's. Records follow
//! each other to the end of the file; a recording cut short (the recorder
//! was killed, the disk filled) keeps every whole record before the cut,
//! and the reader says where the cut is.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The first bytes of a recording.
pub const MAGIC: &[u8; 8] = b"LLSCREC1";
/// Bytes before a record's frame: its time (u64) and length (u32).
pub const RECORD_HEADER_BYTES: usize = 12;
/// Longest frame a record may hold: a stream frame's largest body.
pub const MAX_RECORD_BYTES: usize = lifeline_protocol::stream::MAX_STREAM_FRAME_BYTES;
/// Longest content type a header may name.
pub const MAX_CONTENT_TYPE_BYTES: usize = 256;

/// Why a recording cannot be read (further). Record numbers count from 1;
/// offsets are bytes from the start of the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a Lifeline screen recording (it does not start with {:?})", std::str::from_utf8(MAGIC).unwrap_or("LLSCREC1"))]
    NotARecording,
    #[error("the recording's header is cut short")]
    ShortHeader,
    #[error("the recording's header names a content type that is not UTF-8 text")]
    BadContentType,
    #[error(
        "record {record} at byte {offset} is cut short: the file ends {have} bytes into its {need} (the {} records before it are whole)",
        record - 1
    )]
    Truncated {
        record: u64,
        offset: u64,
        have: u64,
        need: u64,
    },
    #[error(
        "record {record} at byte {offset} says it holds {len} bytes, more than a stream frame may ({MAX_RECORD_BYTES}): the file is damaged"
    )]
    TooLong { record: u64, offset: u64, len: u64 },
    #[error("reading record {record} at byte {offset}: {source}")]
    Io {
        record: u64,
        offset: u64,
        source: io::Error,
    },
    #[error("reading the recording's header: {0}")]
    HeaderIo(io::Error),
}

/// One recorded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// From 1.
    pub index: u64,
    /// Where the record starts in the file.
    pub offset: u64,
    /// When the frame arrived, from the start of the recording.
    pub at: Duration,
    /// The frame's bytes as received.
    pub frame: Vec<u8>,
}

/// Writes a recording.
pub struct RecordWriter<W: Write> {
    out: BufWriter<W>,
    started: Instant,
    frames: u64,
    bytes: u64,
}

impl RecordWriter<std::fs::File> {
    /// Creates (or replaces) the recording at `path`.
    pub fn create(path: &Path, content_type: &str) -> io::Result<Self> {
        RecordWriter::new(std::fs::File::create(path)?, content_type)
    }
}

impl<W: Write> RecordWriter<W> {
    /// Writes the header to `out`; the recording's clock starts now.
    pub fn new(out: W, content_type: &str) -> io::Result<Self> {
        if content_type.len() > MAX_CONTENT_TYPE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a content type of more than {MAX_CONTENT_TYPE_BYTES} bytes"),
            ));
        }
        let started_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut out = BufWriter::new(out);
        out.write_all(MAGIC)?;
        out.write_all(&started_us.to_le_bytes())?;
        out.write_all(&(content_type.len() as u16).to_le_bytes())?;
        out.write_all(content_type.as_bytes())?;
        out.flush()?;
        Ok(RecordWriter {
            out,
            started: Instant::now(),
            frames: 0,
            bytes: 0,
        })
    }

    /// Appends `frame`, stamped with the time since the recording began,
    /// and flushes it (a killed recorder loses at most the frame it was
    /// writing).
    pub fn write(&mut self, frame: &[u8]) -> io::Result<()> {
        self.write_at(self.started.elapsed(), frame)
    }

    /// Appends `frame` with the time `at`.
    pub fn write_at(&mut self, at: Duration, frame: &[u8]) -> io::Result<()> {
        if frame.len() > MAX_RECORD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a frame of {} bytes is larger than a record may be ({MAX_RECORD_BYTES})",
                    frame.len()
                ),
            ));
        }
        let us = u64::try_from(at.as_micros()).unwrap_or(u64::MAX);
        self.out.write_all(&us.to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(frame)?;
        self.out.flush()?;
        self.frames += 1;
        self.bytes += frame.len() as u64;
        Ok(())
    }

    /// Frames written.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes of frames written (headers not counted).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes and hands back the writer.
    pub fn finish(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Reads a recording record by record (an iterator of
/// `Result<Record, RecordError>`). After an error the iteration ends;
/// every record before it was whole.
pub struct RecordReader<R: Read> {
    input: R,
    content_type: String,
    started_us: u64,
    offset: u64,
    next_index: u64,
    done: bool,
}

impl RecordReader<io::BufReader<std::fs::File>> {
    /// Opens the recording at `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = std::fs::File::open(path).map_err(RecordError::HeaderIo)?;
        RecordReader::new(io::BufReader::new(file))
    }
}

/// Reads until `buf` is full or the input ends: the bytes read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut have = 0;
    while have < buf.len() {
        match input.read(&mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(have)
}

impl<R: Read> RecordReader<R> {
    /// Reads the header from `input`.
    pub fn new(mut input: R) -> Result<Self, RecordError> {
        let mut head = [0u8; 18];
        let n = fill(&mut input, &mut head).map_err(RecordError::HeaderIo)?;
        if n < MAGIC.len() || &head[..8] != MAGIC {
            return Err(RecordError::NotARecording);
        }
        if n < head.len() {
            return Err(RecordError::ShortHeader);
        }
        let started_us = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        let len = usize::from(u16::from_le_bytes([head[16], head[17]]));
        if len > MAX_CONTENT_TYPE_BYTES {
            return Err(RecordError::BadContentType);
        }
        let mut ct = vec![0; len];
        if fill(&mut input, &mut ct).map_err(RecordError::HeaderIo)? < len {
            return Err(RecordError::ShortHeader);
        }
        let content_type = String::from_utf8(ct).map_err(|_| RecordError::BadContentType)?;
        Ok(RecordReader {
            input,
            content_type,
            started_us,
            offset: (head.len() + len) as u64,
            next_index: 1,
            done: false,
        })
    }

    /// The content type of the recorded stream.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// When the recording began.
    pub fn started(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.started_us)
    }

    fn read_record(&mut self) -> Result<Option<Record>, RecordError> {
        let (record, offset) = (self.next_index, self.offset);
        let io_err = |source| RecordError::Io {
            record,
            offset,
            source,
        };
        let mut head = [0u8; RECORD_HEADER_BYTES];
        let n = fill(&mut self.input, &mut head).map_err(io_err)?;
        if n == 0 {
            return Ok(None);
        }
        if n < head.len() {
            return Err(RecordError::Truncated {
                record,
                offset,
                have: n as u64,
                need: RECORD_HEADER_BYTES as u64,
            });
        }
        let us = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes"));
        if len as usize > MAX_RECORD_BYTES {
            return Err(RecordError::TooLong {
                record,
                offset,
                len: u64::from(len),
            });
        }
        let mut frame = vec![0; len as usize];
        let got = fill(&mut self.input, &mut frame).map_err(io_err)?;
        if got < frame.len() {
            return Err(RecordError::Truncated {
                record,
                offset,
                have: (RECORD_HEADER_BYTES + got) as u64,
                need: (RECORD_HEADER_BYTES + frame.len()) as u64,
            });
        }
        self.next_index += 1;
        self.offset += (RECORD_HEADER_BYTES + frame.len()) as u64;
        Ok(Some(Record {
            index: record,
            offset,
            at: Duration::from_micros(us),
            frame,
        }))
    }
}

impl<R: Read> Iterator for RecordReader<R> {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.read_record().transpose();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(frames: &[&[u8]]) -> Vec<u8> {
        let mut w = RecordWriter::new(Vec::new(), "application/vnd.lifeline.screen.v1").unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write_at(Duration::from_millis(i as u64 * 40), f).unwrap();
        }
        assert_eq!(w.frames(), frames.len() as u64);
        w.finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let frames: [&[u8]; 3] = [b"first", b"", &[7u8; 3000]];
        let bytes = recording(&frames);
        let r = RecordReader::new(&bytes[..]).unwrap();
        assert_eq!(r.content_type(), "application/vnd.lifeline.screen.v1");
        let since = SystemTime::now().duration_since(r.started()).unwrap();
        assert!(since < Duration::from_secs(60));
        let records: Vec<Record> = r.map(Result::unwrap).collect();
        assert_eq!(records.len(), 3);
        let header = 8 + 8 + 2 + "application/vnd.lifeline.screen.v1".len() as u64;
        assert_eq!(records[0].offset, header);
        assert_eq!(records[1].offset, header + 12 + 5);
        assert_eq!(records[2].offset, header + 12 + 5 + 12);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.index, i as u64 + 1);
            assert_eq!(r.frame, frames[i]);
            assert_eq!(r.at, Duration::from_millis(i as u64 * 40));
        }
    }

    #[test]
    fn a_cut_tail_is_named_and_the_records_before_it_stay() {
        let bytes = recording(&[b"one", b"two", b"three!"]);
        let third = bytes.len() as u64 - 12 - 6;
        for cut in [1usize, 5, 12, 13, 17] {
            let short = &bytes[..bytes.len() - cut];
            let results: Vec<_> = RecordReader::new(short).unwrap().collect();
            assert_eq!(results.len(), 3, "two records, then the error (cut {cut})");
            assert_eq!(results[0].as_ref().unwrap().frame, b"one");
            assert_eq!(results[1].as_ref().unwrap().frame, b"two");
            let e = results[2].as_ref().unwrap_err();
            match e {
                RecordError::Truncated {
                    record,
                    offset,
                    have,
                    need,
                } => {
                    assert_eq!((*record, *offset), (3, third), "cut {cut}");
                    assert_eq!(*have, 18 - cut as u64);
                    assert_eq!(*need, if 18 - cut < 12 { 12 } else { 18 });
                }
                other => panic!("cut {cut}: {other}"),
            }
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("record 3 at byte {third} is cut short")),
                "{text}"
            );
            assert!(text.contains("the 2 records before it are whole"), "{text}");
        }
        // Cut exactly between records: two whole records, no error.
        let two = &bytes[..third as usize];
        assert_eq!(RecordReader::new(two).unwrap().count(), 2);
    }

    #[test]
    fn damaged_files_are_refused() {
        assert!(matches!(
            RecordReader::new(&b"PNG\x89 not a recording"[..]),
            Err(RecordError::NotARecording)
        ));
        assert!(matches!(
            RecordReader::new(&b"LLSCREC1\0\0"[..]),
            Err(RecordError::ShortHeader)
        ));
        let mut bytes = recording(&[b"ok"]);
        let at = bytes.len() as u64;
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let results: Vec<_> = RecordReader::new(&bytes[..]).unwrap().collect();
        assert_eq!(results.len(), 2);
        let e = results[1].as_ref().unwrap_err();
        assert!(matches!(e, RecordError::TooLong { record: 2, offset, .. } if *offset == at));
    }

    #[test]
    fn files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.rec");
        let mut w = RecordWriter::create(&path, "x/y").unwrap();
        w.write(b"abc").unwrap();
        w.finish().unwrap();
        let records: Vec<_> = RecordReader::open(&path).unwrap().collect();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].as_ref().unwrap().frame, b"abc");
    }
}
