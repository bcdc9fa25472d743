//! A streaming test plugin: sends a known byte pattern on a queued stream,
//! floods a latest-wins stream, and echoes what the operator side sends.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../sdk/wit",
});

use lifeline::plugin::host;
use lifeline::plugin::types::{HostError, StreamMode, StreamSent};

/// `stream-recv` calls a command makes at most while it waits.
const RECV_TRIES: u32 = 100;
/// Longest wait of one `stream-recv`.
const RECV_WAIT_MS: u32 = 200;

struct Stream;

fn describe(e: HostError) -> String {
    match e {
        HostError::NotDeclared(m) => format!("not-declared: {m}"),
        HostError::Denied(m) => format!("denied: {m}"),
        HostError::Limit(m) => format!("limit: {m}"),
        HostError::Failed(m) => format!("failed: {m}"),
    }
}

/// The `i`-th argument as text (bytes read as UTF-8, lossily).
fn text_arg(args: &[Arg], i: usize) -> Option<String> {
    args.get(i).map(|a| match a {
        Arg::Text(t) => t.clone(),
        Arg::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
    })
}

/// The `i`-th argument as a decimal number.
fn number_arg(args: &[Arg], i: usize, name: &str) -> Result<u64, String> {
    let t = text_arg(args, i).ok_or_else(|| format!("give {name} (a decimal number)"))?;
    t.trim().parse().map_err(|_| format!("{name} {t:?} is not a decimal number"))
}

/// The pattern's byte at absolute offset `i`.
fn pattern(i: u64) -> u8 {
    ((i % 251) as u8) ^ ((i >> 16) as u8)
}

/// `stream SIZE FRAME`: SIZE bytes of the pattern in frames of FRAME bytes.
fn stream(size: u64, frame: u64) -> Result<String, String> {
    if frame == 0 {
        return Err("FRAME must be at least 1 byte".into());
    }
    let id = host::stream_open("data", "application/octet-stream", StreamMode::Queued).map_err(describe)?;
    let mut buf: Vec<u8> = Vec::with_capacity(frame.min(size) as usize);
    let mut offset = 0u64;
    let mut frames = 0u64;
    while offset < size {
        let end = size.min(offset.saturating_add(frame));
        buf.clear();
        buf.extend((offset..end).map(pattern));
        host::stream_send(id, &buf).map_err(describe)?;
        frames += 1;
        offset = end;
    }
    host::stream_close(id).map_err(describe)?;
    Ok(format!("sent {size} bytes in {frames} frames"))
}

/// `blast SIZE FRAME`: SIZE bytes in frames of FRAME bytes, the same frame
/// again and again (what the stream path costs, not making the data).
fn blast(size: u64, frame: u64) -> Result<String, String> {
    if frame == 0 {
        return Err("FRAME must be at least 1 byte".into());
    }
    let id = host::stream_open("data", "application/octet-stream", StreamMode::Queued).map_err(describe)?;
    let buf: Vec<u8> = (0..frame.min(size)).map(pattern).collect();
    let (mut offset, mut frames) = (0u64, 0u64);
    while offset < size {
        let n = (size - offset).min(frame) as usize;
        host::stream_send(id, &buf[..n]).map_err(describe)?;
        frames += 1;
        offset += n as u64;
    }
    host::stream_close(id).map_err(describe)?;
    Ok(format!("sent {size} bytes in {frames} frames"))
}

/// `latest COUNT`: COUNT frames at once on a latest-wins stream, then wait
/// for the operator's "done".
fn latest(count: u64) -> Result<String, String> {
    let id = host::stream_open("status", "text/plain", StreamMode::LatestWins).map_err(describe)?;
    let mut last = StreamSent { credit: 0, dropped: 0 };
    for i in 1..=count {
        last = host::stream_send(id, format!("frame {i}").as_bytes()).map_err(describe)?;
    }
    host::send_output(&format!("sent {count} frames")).map_err(describe)?;
    for _ in 0..RECV_TRIES {
        if let Some(f) = host::stream_recv(id, RECV_WAIT_MS).map_err(describe)? {
            if f == b"done" {
                return Ok(format!("dropped {}", last.dropped));
            }
        }
    }
    Err("no done from the operator".into())
}

/// `echo`: sends back each frame until "bye" (not echoed) or the tries run out.
fn echo() -> Result<String, String> {
    let id = host::stream_open("echo", "application/octet-stream", StreamMode::Queued).map_err(describe)?;
    let mut echoed = 0u64;
    for _ in 0..RECV_TRIES {
        match host::stream_recv(id, RECV_WAIT_MS).map_err(describe)? {
            Some(f) if f == b"bye" => break,
            Some(f) => {
                host::stream_send(id, &f).map_err(describe)?;
                echoed += 1;
            }
            None => {}
        }
    }
    Ok(format!("echoed {echoed} frames"))
}

impl Guest for Stream {
    fn run(command: String, args: Vec<Arg>) -> Result<String, String> {
        match command.as_str() {
            "stream" => stream(number_arg(&args, 0, "SIZE")?, number_arg(&args, 1, "FRAME")?),
            "blast" => blast(number_arg(&args, 0, "SIZE")?, number_arg(&args, 1, "FRAME")?),
            "latest" => latest(number_arg(&args, 0, "COUNT")?),
            "echo" => echo(),
            other => Err(format!("unknown command {other:?}")),
        }
    }
}

export!(Stream);
