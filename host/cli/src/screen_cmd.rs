//! `lifeline operator screen` (share the customer's screen: a PNG snapshot
//! or a recording of the screen stream) and `lifeline operator
//! screen-export` (a recording replayed into PNG files).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lifeline_core::config::OperatorConfig;
use lifeline_operator::Client;
use lifeline_operator::screen::record::{RecordError, RecordReader, RecordWriter};
use lifeline_operator::screen::{
    CONTENT_TYPE, Framebuffer, Level, Message, Quality, ScreenSession, ShareOptions,
};

use crate::cli::{ScreenArgs, ScreenQuality};

/// `lifeline operator screen`: attach, share, snapshot or record, stop
/// sharing (whatever happened), detach.
pub async fn screen(args: ScreenArgs) -> Result<ExitCode> {
    let cfg = OperatorConfig::load(&args.cfg.config)?;
    let c = crate::commands::logged_in(&cfg).await?;
    crate::console::attach(&c, &args.session).await?;
    let res = share(&c, &args).await;
    let _ = c.detach(&args.session).await;
    res
}

async fn share(c: &Client, a: &ScreenArgs) -> Result<ExitCode> {
    let opts = ShareOptions {
        monitor: a.monitor,
        quality: match a.quality {
            ScreenQuality::Auto => Quality::Auto,
            ScreenQuality::Lossless => Quality::Lossless,
        },
        wait: Duration::from_secs(a.timeout),
        ..ShareOptions::default()
    };
    esay!("Asking the customer to share the screen…");
    let mut s = ScreenSession::share_with(c, &a.session, &opts, |stream, text| match stream {
        "output" => say!("{text}"),
        other => esay!("[{other}] {text}"),
    })
    .await
    .context("the screen share did not start")?;
    if !s.answer().is_empty() {
        esay!("{}", s.answer());
    }
    let outcome = match (&a.snapshot, &a.record) {
        (Some(png), _) => snapshot(&mut s, png, a.cursor).await,
        (None, Some(file)) => record(&mut s, file, a.seconds).await,
        (None, None) => Err(anyhow::anyhow!("give --snapshot FILE.png or --record FILE")),
    };
    let stopped = s.stop().await;
    let code = outcome?;
    stopped.context("stopping the screen share")?;
    Ok(code)
}

/// Prints a status line of the screen plugin.
fn status(msg: &Message) {
    if let Message::Status { level, text } = msg {
        match level {
            Level::Info => esay!("[screen] {text}"),
            Level::Warning => esay!("[screen] warning: {text}"),
            Level::Error => esay!("[screen] error: {text}"),
        }
    }
}

async fn snapshot(s: &mut ScreenSession<&Client>, path: &Path, cursor: bool) -> Result<ExitCode> {
    s.first_picture_with(status).await?;
    let fb = s.framebuffer();
    fb.save_png(path, cursor)?;
    println!(
        "Snapshot of the customer's screen ({}×{}) written to {}",
        fb.width(),
        fb.height(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn record(
    s: &mut ScreenSession<&Client>,
    path: &Path,
    seconds: Option<u64>,
) -> Result<ExitCode> {
    let mut w = RecordWriter::create(path, CONTENT_TYPE)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let limit = seconds.map(Duration::from_secs);
    esay!(
        "Recording the screen stream to {} (Ctrl-C stops{})…",
        path.display(),
        limit.map_or(String::new(), |l| format!(", or after {l:?}"))
    );
    let stop_after = async {
        match limit {
            Some(l) => tokio::time::sleep(l).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop_after);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let why = loop {
        tokio::select! {
            _ = &mut ctrl_c => break "Ctrl-C".to_string(),
            () = &mut stop_after => break format!("{} seconds", seconds.unwrap_or_default()),
            frame = s.next_frame() => match frame? {
                Some(f) => w
                    .write(&f)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => {
                    let reason = s.closed().map(|e| e.reason.clone()).unwrap_or_default();
                    break format!("the stream closed: {reason}");
                }
            },
        }
    };
    let (frames, bytes) = (w.frames(), w.bytes());
    w.finish()
        .with_context(|| format!("writing {}", path.display()))?;
    say!(
        "Recorded {frames} frames, {bytes} bytes of the screen stream to {} (until {why}).",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `lifeline operator screen-export FILE --out DIR [--every N]`: replays
/// the recording through a picture and writes `frame-NNNNNN.png` after
/// the first update and every `every`th one from there. A recording cut
/// short exports what it has and warns; frames that cannot be applied are
/// reported and make the exit code 1.
pub fn export(file: &Path, out: &Path, every: u64, cursor: bool) -> Result<ExitCode> {
    let reader = RecordReader::open(file).with_context(|| format!("reading {}", file.display()))?;
    if reader.content_type() != CONTENT_TYPE {
        bail!(
            "{} records a stream of {:?}, not the screen ({CONTENT_TYPE})",
            file.display(),
            reader.content_type()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut fb = Framebuffer::new();
    let (mut updates, mut written, mut bad) = (0u64, 0u64, 0u64);
    let mut damaged = false;
    for rec in reader {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                esay!("warning: {}: {e}", file.display());
                damaged = !matches!(e, RecordError::Truncated { .. });
                break;
            }
        };
        let msg = match lifeline_operator::screen::format::decode_message(&rec.frame) {
            Ok(m) => m,
            Err(e) => {
                esay!("warning: record {} at byte {}: {e}", rec.index, rec.offset);
                bad += 1;
                continue;
            }
        };
        if let Err(e) = fb.apply(&msg) {
            esay!("warning: record {} at byte {}: {e}", rec.index, rec.offset);
            bad += 1;
        }
        if matches!(msg, Message::Update { .. }) {
            updates += 1;
            if (updates - 1) % every == 0 && fb.has_layout() {
                written += 1;
                let png = out.join(format!("frame-{written:06}.png"));
                fb.save_png(&png, cursor)?;
            }
        }
    }
    println!(
        "Wrote {written} pictures ({updates} updates) to {}.",
        out.display()
    );
    if bad > 0 {
        esay!("{bad} frames of the recording could not be applied (see the warnings above).");
    }
    Ok(if bad > 0 || damaged {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use lifeline_operator::screen::format::{Monitor, Tile, TileData, encode_message};

    use super::*;

    fn frame(msg: &Message) -> Vec<u8> {
        let mut b = Vec::new();
        encode_message(msg, &mut b);
        b
    }

    fn solid(seq: u32, rgb: [u8; 3]) -> Message {
        Message::Update {
            seq,
            captured_us: 0,
            tiles: vec![Tile {
                x: 0,
                y: 0,
                width: 4,
                height: 2,
                data: TileData::Solid(rgb),
            }],
        }
    }

    #[test]
    fn export_writes_every_nth_picture_and_keeps_what_a_cut_recording_has() {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("s.rec");
        let mut w = RecordWriter::create(&rec, CONTENT_TYPE).unwrap();
        let layout = Message::Layout {
            width: 4,
            height: 2,
            monitors: vec![Monitor {
                name: "M".into(),
                x: 0,
                y: 0,
                width: 4,
                height: 2,
                primary: true,
            }],
        };
        w.write(&frame(&layout)).unwrap();
        for i in 0..5u8 {
            w.write(&frame(&solid(u32::from(i), [i * 50, 0, 0])))
                .unwrap();
        }
        w.write(&frame(&Message::Sync { token: 1 })).unwrap();
        w.finish().unwrap();

        let all = dir.path().join("all");
        assert_eq!(export(&rec, &all, 1, false).unwrap(), ExitCode::SUCCESS);
        for n in 1..=5 {
            assert!(all.join(format!("frame-{n:06}.png")).is_file(), "{n}");
        }
        assert!(!all.join("frame-000006.png").exists());

        let some = dir.path().join("some");
        assert_eq!(export(&rec, &some, 2, false).unwrap(), ExitCode::SUCCESS);
        let names: Vec<_> = std::fs::read_dir(&some).unwrap().collect();
        assert_eq!(names.len(), 3, "updates 1, 3 and 5");

        // Cut into the last record: everything before it is exported.
        let bytes = std::fs::read(&rec).unwrap();
        std::fs::write(&rec, &bytes[..bytes.len() - 3]).unwrap();
        let cut = dir.path().join("cut");
        assert_eq!(export(&rec, &cut, 1, false).unwrap(), ExitCode::SUCCESS);
        assert_eq!(std::fs::read_dir(&cut).unwrap().count(), 5);

        let other = dir.path().join("other.rec");
        RecordWriter::create(&other, "text/plain")
            .unwrap()
            .finish()
            .unwrap();
        let e = export(&other, &cut, 1, false).unwrap_err();
        assert!(e.to_string().contains("not the screen"), "{e}");
    }
}
