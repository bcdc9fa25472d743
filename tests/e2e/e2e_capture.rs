//! A packet capture of a session at the broker's port on loopback (issue
//! 16: "a packet capture shows no chat text in the clear at the broker's
//! process boundary"), read with tshark.
//!
//! TLS alone already hides the chat on the wire, so a plain capture would
//! prove nothing. The operator console and the agent here write their TLS
//! session keys (SSLKEYLOGFILE), and tshark decrypts every TLS record of
//! their connections: what it then reads is exactly what the broker reads
//! after TLS, decoded frame by frame as the broker decodes it. The
//! session's metadata is there in the clear (the ticket, the channel's
//! handshake, the sealed messages: the capture is decrypted, or the test
//! fails), and no chat line in anything the broker relays. The one place
//! the chat reaches the broker is the report's records from the
//! customer's agent (docs/security.md, "How reports get their content"),
//! counted here too.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use lifeline_protocol::{Frame, MAX_FRAME_BYTES, Message, SessionMessage, read_frame};

use crate::processes::*;
use crate::support::WAIT;

const TO_CUSTOMER: &str = "Wren: the unlock code is 7319-alpha";
const TO_OPERATOR: &str = "Finch: thanks, typing 7319-alpha now";
const TICKET: &str = "T-CAPTURE-16";

/// A packet capture on loopback (dumpcap, tshark's capture engine) of
/// the broker's port and of a probe port of the test's own. dumpcap says
/// "Capturing on" before it captures, and on SIGINT it drops what it has
/// not written: the probe makes both ends certain (a marker sent to the
/// probe port is in the file once everything before it is).
struct Capture {
    dumpcap: Child,
    pcap: PathBuf,
    probe: TcpListener,
    markers: usize,
}

impl Capture {
    fn start(port: u16, pcap: &Path) -> Capture {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let probe_port = probe.local_addr().unwrap().port();
        let filter = format!("tcp port {port} or tcp port {probe_port}");
        let dumpcap = Command::new("dumpcap")
            .args(["-q", "-i", "lo", "-f", &filter, "-w"])
            .arg(pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dumpcap runs (scripts/setup installs tshark)");
        let mut capture = Capture {
            dumpcap,
            pcap: pcap.to_path_buf(),
            probe,
            markers: 0,
        };
        capture.mark();
        capture
    }

    /// Sends a marker to the probe port until the file holds it.
    fn mark(&mut self) {
        let port = self.probe.local_addr().unwrap().port();
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (_server, _) = self.probe.accept().unwrap();
            c.write_all(b"lifeline capture marker").unwrap();
            drop(c);
            std::thread::sleep(std::time::Duration::from_millis(100));
            let seen = self.markers_in_file(port);
            if seen > self.markers {
                self.markers = seen;
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dumpcap never wrote the probe's packets"
            );
        }
    }

    /// Marker packets in the file so far (read while dumpcap writes it:
    /// tshark may say it is cut short).
    fn markers_in_file(&self, port: u16) -> usize {
        if !self.pcap.exists() {
            return 0;
        }
        let filter = format!("tcp.dstport == {port} && tcp.len > 0");
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&self.pcap)
            .args(["-Y", &filter])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    /// Stops once everything so far is in the file.
    fn stop(mut self) {
        self.mark();
        let pid = nix::unistd::Pid::from_raw(self.dumpcap.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("dumpcap is running");
        let deadline = std::time::Instant::now() + WAIT;
        while self.dumpcap.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "dumpcap did not stop");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.dumpcap.kill();
        let _ = self.dumpcap.wait();
    }
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tshark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every TLS record tshark could decrypt with the key log, as one byte
/// string per TCP stream and direction (client to broker, broker to
/// client); streams it could not decrypt are left out.
fn decrypted_streams(pcap: &str, keylog: &str) -> Vec<Vec<u8>> {
    let keys = format!("tls.keylog_file:{keylog}");
    let ids = tshark(&["-r", pcap, "-T", "fields", "-e", "tcp.stream"]);
    let mut ids: Vec<u32> = ids.lines().filter_map(|l| l.trim().parse().ok()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        let follow = format!("follow,tls,raw,{id}");
        let text = tshark(&["-r", pcap, "-o", &keys, "-q", "-z", &follow]);
        // Records of hex: the client's flush left, the broker's indented.
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for line in text.lines() {
            let hex = line.trim();
            if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                continue;
            }
            let bytes =
                (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap());
            if line.starts_with('\t') {
                down.extend(bytes);
            } else {
                up.extend(bytes);
            }
        }
        out.extend([up, down].into_iter().filter(|b| !b.is_empty()));
    }
    out
}

/// The frames of one direction of a connection, decoded as the broker
/// decodes them.
fn frames(mut bytes: &[u8]) -> Vec<Frame> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let frame = rt
            .block_on(read_frame(&mut bytes, MAX_FRAME_BYTES))
            .unwrap_or_else(|e| panic!("a decrypted stream is whole frames: {e}"));
        out.push(frame);
    }
    out
}

/// The session message a frame carries (numbered by the agent or not).
fn session_msg(frame: &Frame) -> Option<&SessionMessage> {
    match frame {
        Frame::Control(Message::Session { msg, .. } | Message::Sequenced { msg, .. }) => Some(msg),
        _ => None,
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_capture_decrypted_with_the_clients_tls_keys_holds_no_chat_text() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr, fp) = start_broker(dir.path());
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let (op, agent_cfg) = client_configs(dir.path(), &addr, &fp);
    login(&op);
    let pcap = dir.path().join("session.pcapng");
    let keylog = dir.path().join("tls-keys.log");
    let capture = Capture::start(port, &pcap);

    let (sid, inv) = invite(&op, TICKET);
    let mut agent = Proc::from_command({
        let mut c = lifeline();
        c.args(["agent", "join", "--config", &agent_cfg])
            .arg(inv["link"].as_str().unwrap())
            .env("SSLKEYLOGFILE", &keylog)
            .stderr(Stdio::inherit());
        c
    });
    ok(
        &["operator", "wait", "--config", &op, &sid, "--timeout", "20"],
        None,
    );
    let mut console = Proc::from_command({
        let mut c = lifeline();
        c.args(["operator", "connect", "--config", &op, &sid])
            .env("SSLKEYLOGFILE", &keylog)
            .stderr(Stdio::inherit());
        c
    });
    console.wait_line("Connected to session");
    agent.wait_line("is connected");
    chat_both_ways(&mut console, &mut agent, TO_CUSTOMER, TO_OPERATOR);
    end_from_console(console, agent);
    eprintln!(
        "DEBUG before stop {:?}",
        std::fs::metadata(&pcap).map(|m| m.len())
    );
    capture.stop();
    eprintln!(
        "DEBUG after stop {}",
        tshark(&["-r", pcap.to_str().unwrap()]).lines().count()
    );

    let keys = std::fs::read_to_string(&keylog).unwrap();
    assert!(
        keys.contains("CLIENT_TRAFFIC_SECRET_0"),
        "the clients wrote their TLS keys"
    );
    let streams = decrypted_streams(pcap.to_str().unwrap(), keylog.to_str().unwrap());
    eprintln!(
        "DEBUG streams {:?} pcap {:?}",
        streams.iter().map(Vec::len).collect::<Vec<_>>(),
        std::fs::metadata(&pcap).map(|m| m.len())
    );
    let frames: Vec<Frame> = streams.iter().flat_map(|s| frames(s)).collect();
    let kinds: Vec<&str> = frames
        .iter()
        .filter_map(session_msg)
        .map(SessionMessage::kind_name)
        .collect();
    // Decrypted and decoded: the broker's metadata is readable (the
    // channel's handshake, sealed messages)...
    for kind in ["e2e_hello", "e2e_reply", "sealed"] {
        assert!(
            kinds.contains(&kind),
            "the decrypted capture holds {kind} messages: {kinds:?}"
        );
    }
    assert!(
        frames.iter().any(|f| contains(&f.encode(), TICKET)),
        "the decrypted capture shows the ticket"
    );
    // ...and no chat line in anything the broker relays, either way.
    for frame in &frames {
        if let Some(SessionMessage::Record { .. }) = session_msg(frame) {
            continue;
        }
        let bytes = frame.encode();
        for secret in [TO_CUSTOMER, TO_OPERATOR, "7319-alpha"] {
            assert!(
                !contains(&bytes, secret),
                "{secret:?} crossed the broker's boundary in the clear: {frame:?}"
            );
        }
    }
    // The report's records are the one place the chat reaches the broker
    // (docs/security.md, "How reports get their content"): from the
    // customer's agent, once per line, never relayed.
    let records: Vec<&str> = frames
        .iter()
        .filter_map(|f| match session_msg(f) {
            Some(SessionMessage::Record { text, .. }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    for line in [TO_CUSTOMER, TO_OPERATOR] {
        assert_eq!(
            records.iter().filter(|t| t.contains(line)).count(),
            1,
            "one report record of {line:?}: {records:?}"
        );
    }
}
