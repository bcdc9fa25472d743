//! Where a plugin's streams go in `lifeline plugin test`: each stream into
//! a file `STREAMS_DIR/<stream-id>-<name>.bin` (with `--streams-dir`), and
//! a `[stream]` line when it opens and when it closes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use lifeline_protocol::StreamData;
use lifeline_runtime::stream::{Mode, StreamInfo, StreamSink, StreamStats};

use super::port::Console;

/// Writes streams into files (or only counts them, without a folder).
pub struct FileSink {
    dir: Option<PathBuf>,
    console: Arc<Console>,
    files: Mutex<BTreeMap<u32, File>>,
}

/// A stream name as a file-name part: letters, digits, '.', '-' and '_'
/// stay, anything else becomes '_'.
pub fn file_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl FileSink {
    /// A sink saving into `dir` (created if missing), or only counting.
    pub fn new(dir: Option<&Path>, console: Arc<Console>) -> Result<FileSink> {
        if let Some(d) = dir {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(FileSink {
            dir: dir.map(Path::to_owned),
            console,
            files: Mutex::new(BTreeMap::new()),
        })
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, File>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the file of a new stream; returns where it goes, for the line.
    fn open_file(&self, info: &StreamInfo) -> String {
        let Some(dir) = &self.dir else {
            return "not saved; --streams-dir DIR saves streams".into();
        };
        let path = dir.join(format!("{}-{}.bin", info.id, file_part(&info.name)));
        match File::create(&path) {
            Ok(f) => {
                self.files().insert(info.id, f);
                format!("saved to {}", path.display())
            }
            Err(e) => format!("cannot create {}: {e}; not saved", path.display()),
        }
    }
}

impl StreamSink for FileSink {
    fn data(&self, payload: Vec<u8>) -> bool {
        let Ok(StreamData::Frame { stream, body }) = StreamData::decode(payload) else {
            return true;
        };
        let mut files = self.files();
        let Some(file) = files.get_mut(&stream) else {
            return true;
        };
        if let Err(e) = file.write_all(&body) {
            files.remove(&stream);
            drop(files);
            self.console
                .tagged("stream", &format!("{stream}: cannot write its file: {e}"));
            return false;
        }
        true
    }
    fn try_data(&self, payload: Vec<u8>) -> bool {
        self.data(payload)
    }
    fn opened(&self, info: &StreamInfo) {
        let mode = match info.mode {
            Mode::Queued => "queued",
            Mode::LatestWins => "latest-wins",
        };
        let whereto = self.open_file(info);
        self.console.tagged(
            "stream",
            &format!(
                "opened {} {:?} ({}, {mode}), {whereto}",
                info.id, info.name, info.content_type
            ),
        );
    }
    fn closed(&self, info: &StreamInfo, stats: &StreamStats, reason: &str) {
        self.files().remove(&info.id);
        let dropped = match stats.dropped {
            0 => String::new(),
            n => format!(", {n} dropped"),
        };
        self.console.tagged(
            "stream",
            &format!(
                "closed {} {:?}: {} frames, {} bytes{dropped} ({reason})",
                info.id, info.name, stats.frames, stats.bytes
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_runtime::StreamHub;

    #[test]
    fn frames_land_in_the_streams_file() {
        let d = tempfile::tempdir().unwrap();
        let console = Arc::new(Console::default());
        let sink = FileSink::new(Some(d.path()), Arc::clone(&console)).unwrap();
        let hub = StreamHub::unlimited(Box::new(sink));
        let id = hub
            .open("p", "screen/1", "image/png", Mode::Queued)
            .unwrap();
        for f in [b"ab".to_vec(), b"cde".to_vec()] {
            hub.send("p", id, f, &|| false).unwrap();
        }
        hub.close("p", id, "done").unwrap();
        let file = d.path().join(format!("{id}-screen_1.bin"));
        assert_eq!(std::fs::read(file).unwrap(), b"abcde");
        let lines = console.take().join("\n");
        assert!(
            lines.contains("[stream] opened 1 \"screen/1\" (image/png, queued)")
                && lines.contains("[stream] closed 1 \"screen/1\": 2 frames, 5 bytes (done)"),
            "{lines}"
        );
    }
}
