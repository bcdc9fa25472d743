//! Writes the seed corpora under fuzz/corpus/<target>/ with the real
//! encoders (frames, messages, screen stream, bundles, licenses, rejoin
//! tickets) and the repository's own files (config/*.toml, plugin.toml
//! files). The HTTP seeds are hand-written request text, kept as they are.
//! Run from anywhere: `cargo run --manifest-path fuzz/seedgen/Cargo.toml`.

use std::io::Write;
use std::path::{Path, PathBuf};

use lifeline_protocol::stream::StreamData;
use lifeline_protocol::{Frame, Message, SessionMessage};
use lifeline_screen_format as screen;
use serde_json::json;

/// The fuzz crate's shared modules (the runtime's and agent's decoders).
#[path = "../../src/lib.rs"]
#[allow(dead_code)]
mod shims;
use shims::{bundle, reboot};
// The paths those modules use among themselves.
pub use shims::{capability, config, manifest};

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = fuzz.join("..");
    let corpus = fuzz.join("corpus");
    messages_and_frames(&corpus);
    configs(&repo, &corpus);
    manifests_and_bundles(&repo, &corpus);
    licenses(&corpus);
    tickets(&corpus);
    screen_stream(&corpus);
    e2e(&corpus);
    println!("seeds written under {}", corpus.display());
}

fn write(corpus: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus.join(target);
    std::fs::create_dir_all(&dir).expect("the corpus folder");
    std::fs::write(dir.join(name), bytes).expect("a seed file");
}

/// Sample control messages, as JSON values checked to decode.
fn sample_messages() -> Vec<(&'static str, Message)> {
    let samples = [
        (
            "hello-agent",
            json!({"type":"hello","protocol":"lifeline","version":1,"role":"agent","software":"lifeline 0.1.0"}),
        ),
        (
            "hello-operator",
            json!({"type":"hello","protocol":"lifeline","version":1,"role":"operator","software":"lifeline 0.1.0"}),
        ),
        (
            "welcome",
            json!({"type":"welcome","version":1,"broker":"Example Support"}),
        ),
        ("ping", json!({"type":"ping","nonce":7})),
        (
            "error",
            json!({"type":"error","code":"bad_handshake","message":"bad handshake"}),
        ),
        (
            "login",
            json!({"type":"request","id":1,"body":{"op":"login","username":"alice","password":"secret"}}),
        ),
        (
            "list-sessions",
            json!({"type":"request","id":2,"body":{"op":"list_sessions","all":true}}),
        ),
        (
            "join",
            json!({"type":"join","credential":{"by":"connection_id","value":"123456"},"host":"pc-1"}),
        ),
        (
            "join-link",
            json!({"type":"join","credential":{"by":"link_token","value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"host":"pc-1"}),
        ),
        (
            "rejoin",
            json!({"type":"rejoin","ticket":"t0k3n","host":"pc-1"}),
        ),
        (
            "chat",
            json!({"type":"session","session_id":"abcdefabcdef","msg":{"kind":"chat","from":"operator","text":"hello \u{1b}[2J"}}),
        ),
        (
            "run-plugin",
            json!({"type":"session","session_id":"abcdefabcdef","msg":{"kind":"run_plugin","call_id":3,"plugin":"sysinfo","command":"summary","args":["a"]}}),
        ),
        (
            "consent-request",
            json!({"type":"session","session_id":"abcdefabcdef","msg":{"kind":"consent_request","request_id":4,"operator":"Alice","plugin":"scripts","action":"run","detail":"x"}}),
        ),
    ];
    samples
        .into_iter()
        .map(|(name, v)| {
            let m: Message = serde_json::from_value(v)
                .unwrap_or_else(|e| panic!("sample message {name} decodes: {e}"));
            (name, m)
        })
        .collect()
}

fn messages_and_frames(corpus: &Path) {
    let messages = sample_messages();
    let mut stream = Vec::new();
    for (name, m) in &messages {
        let json = serde_json::to_vec(m).expect("a message encodes");
        write(corpus, "message", &format!("{name}.json"), &json);
        if let Message::Session { msg, .. } = m {
            let inner = serde_json::to_vec::<SessionMessage>(msg).expect("encodes");
            write(corpus, "message", &format!("{name}-inner.json"), &inner);
        }
        let frame = Frame::Control(m.clone()).encode();
        write(corpus, "frame", &format!("{name}.bin"), &frame);
        stream.extend_from_slice(&frame);
    }
    let data = [
        StreamData::Frame {
            stream: 1,
            body: b"screen bytes".to_vec(),
        },
        StreamData::Credit {
            stream: 1,
            bytes: 1 << 20,
        },
        StreamData::Input {
            stream: 2,
            body: vec![0x13],
        },
    ];
    for (i, d) in data.iter().enumerate() {
        let f = Frame::Data(d.encode()).encode();
        write(corpus, "frame", &format!("data-{i}.bin"), &f);
        stream.extend_from_slice(&f);
        let f = Frame::SessionData {
            session: "abcdefabcdef".into(),
            payload: d.encode(),
        }
        .encode();
        write(corpus, "frame", &format!("session-data-{i}.bin"), &f);
        stream.extend_from_slice(&f);
    }
    write(corpus, "frame", "stream.bin", &stream);
    // The handshake: a good Hello, another version, another protocol,
    // something else first.
    let hello = |protocol: &str, version: u16| {
        Frame::Control(Message::Hello {
            protocol: protocol.into(),
            version,
            role: lifeline_protocol::ClientRole::Agent,
            software: "lifeline 0.1.0".into(),
        })
        .encode()
    };
    write(corpus, "handshake", "hello.bin", &hello("lifeline", 1));
    write(corpus, "handshake", "hello-v2.bin", &hello("lifeline", 2));
    write(corpus, "handshake", "hello-other.bin", &hello("other", 1));
    write(
        corpus,
        "handshake",
        "ping-first.bin",
        &Frame::Control(Message::Ping { nonce: 1 }).encode(),
    );
    write(
        corpus,
        "handshake",
        "data-first.bin",
        &Frame::Data(vec![1, 2, 3]).encode(),
    );
}

/// Config files: the selector byte of the `config` target, then the text.
fn configs(repo: &Path, corpus: &Path) {
    let files = [
        (0u8, "broker.toml"),
        (1, "operator.toml"),
        (2, "agent.toml"),
        (3, "policy.toml"),
    ];
    for (which, name) in files {
        let text = std::fs::read(repo.join("config").join(name)).expect("a config file");
        let mut seed = vec![which];
        seed.extend_from_slice(&text);
        write(corpus, "config", name, &seed);
    }
}

fn plugin_tomls(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for parent in ["plugins", "examples", "tests/plugins"] {
        let Ok(dir) = std::fs::read_dir(repo.join(parent)) else {
            continue;
        };
        for e in dir.flatten() {
            let m = e.path().join("plugin.toml");
            if m.is_file() {
                out.push(m);
            }
        }
    }
    out.sort();
    out
}

fn manifests_and_bundles(repo: &Path, corpus: &Path) {
    for m in plugin_tomls(repo) {
        let plugin = m
            .parent()
            .and_then(|p| p.file_name())
            .expect("a plugin folder")
            .to_string_lossy()
            .to_string();
        let text = std::fs::read(&m).expect("a plugin.toml");
        write(corpus, "manifest", &format!("{plugin}.toml"), &text);
    }
    // Bundles of the small Lua plugin: signed by the harness's key,
    // unsigned, and signed by another key.
    let dir = repo.join("plugins/hello-lua");
    let files = bundle::read_dir_files(&dir).expect("the hello-lua plugin's files");
    let tmp = tempfile::tempdir().expect("a temp folder");
    let out = tmp.path().join("b.llplugin");
    let mut signed = files.clone();
    bundle::sign(&mut signed, &shims::fuzz_key());
    let mut other = files.clone();
    bundle::sign(&mut other, &ed25519_dalek::SigningKey::from_bytes(&[9; 32]));
    for (name, f) in [
        ("hello-lua-signed", &signed),
        ("hello-lua-unsigned", &files),
        ("hello-lua-other-key", &other),
    ] {
        bundle::write_bundle(&out, f).expect("a bundle is written");
        let bytes = std::fs::read(&out).expect("the bundle");
        write(corpus, "bundle", &format!("{name}.llplugin"), &bytes);
    }
}

fn licenses(corpus: &Path) {
    let text = r#"[license]
serial = "LL-2026-0001"
customer = "Rossi Stampa S.r.l."
product = "PrintSuite"
features = ["print", "archive"]
users = 10
issued = "2026-01-15T09:00:00Z"
expires = "2027-12-31"
maintenance_end = "2026-12-31"
"#;
    let origin = Path::new("license.toml");
    write(corpus, "license", "unsigned.toml", text.as_bytes());
    let mut l = lifeline_license::License::parse(origin, text).expect("the sample license");
    l.sign(&shims::fuzz_key());
    write(corpus, "license", "signed.toml", l.to_toml().as_bytes());
    l.sign(&ed25519_dalek::SigningKey::from_bytes(&[9; 32]));
    write(corpus, "license", "other-key.toml", l.to_toml().as_bytes());
}

fn tickets(corpus: &Path) {
    let tmp = tempfile::tempdir().expect("a temp folder");
    let t = reboot::SavedTicket {
        ticket: lifeline_protocol::Secret::new("k3Wq1bq2fG0sYQ8b8mZ8hV3nC2xT7rR1pL4uE6wA9sD"),
        session_id: "abcdefabcdef".into(),
        operator: "Alice".into(),
        expires_at: 1_796_000_000_000,
        saved_at: "2026-12-07T00:00:00Z".into(),
        customer_uid: Some(1000),
    };
    reboot::save(tmp.path(), &t).expect("a ticket is saved");
    let bytes = std::fs::read(reboot::ticket_path(tmp.path())).expect("the ticket");
    write(corpus, "rejoin_ticket", "ticket.json", &bytes);
}

fn png_rgb(w: u32, h: u32, alpha: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, w, h);
    e.set_color(if alpha {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    });
    e.set_depth(png::BitDepth::Eight);
    let px = if alpha { 4 } else { 3 };
    let data: Vec<u8> = (0..w * h * px).map(|i| (i * 7) as u8).collect();
    let mut wr = e.write_header().expect("a PNG header");
    wr.write_image_data(&data).expect("PNG data");
    wr.finish().expect("a PNG");
    out
}

fn jpeg_rgb(w: u16, h: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let data: Vec<u8> = (0..u32::from(w) * u32::from(h) * 3)
        .map(|i| (i * 5) as u8)
        .collect();
    jpeg_encoder::Encoder::new(&mut out, 80)
        .encode(&data, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("a JPEG");
    out
}

/// The tag-3 zlib stream's bytes for one 8×8 tile of a 2-colour palette:
/// what the screen plugin's encoder writes is specified in
/// sdk/screen-format (`TileData::Zlib`); these bytes are a plausible start.
fn zlib_tile(raw: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(raw).expect("deflate");
    z.flush().expect("sync flush");
    z.get_ref().clone()
}

fn screen_stream(corpus: &Path) {
    let layout = screen::Message::Layout {
        width: 128,
        height: 64,
        monitors: vec![screen::Monitor {
            name: "DP-1".into(),
            x: 0,
            y: 0,
            width: 128,
            height: 64,
            primary: true,
        }],
    };
    let update = screen::Message::Update {
        seq: 1,
        captured_us: 1000,
        tiles: vec![
            screen::Tile {
                x: 0,
                y: 0,
                width: 64,
                height: 64,
                data: screen::TileData::Solid([10, 20, 30]),
            },
            screen::Tile {
                x: 64,
                y: 0,
                width: 16,
                height: 16,
                data: screen::TileData::Png(png_rgb(16, 16, false)),
            },
            screen::Tile {
                x: 80,
                y: 0,
                width: 16,
                height: 16,
                data: screen::TileData::Jpeg(jpeg_rgb(16, 16)),
            },
            screen::Tile {
                x: 96,
                y: 0,
                width: 8,
                height: 8,
                data: screen::TileData::Zlib(zlib_tile(&[0u8; 8 * 8 * 3])),
            },
        ],
    };
    let cursor = screen::Message::Cursor {
        x: 5,
        y: 6,
        shape: Some(screen::CursorShape {
            width: 8,
            height: 8,
            hot_x: 1,
            hot_y: 1,
            png: png_rgb(8, 8, true),
        }),
    };
    let others = [
        screen::Message::Sync { token: 9 },
        screen::Message::Status {
            level: screen::Level::Warning,
            text: "control was not allowed by the customer".into(),
        },
        screen::Message::Clipboard {
            text: "copied text".into(),
        },
    ];
    let mut all = vec![layout, update, cursor];
    all.extend(others);
    let mut stream = Vec::new();
    for (i, m) in all.iter().enumerate() {
        let mut bytes = Vec::new();
        screen::encode_message(m, &mut bytes);
        screen::decode_message(&bytes).expect("a screen message decodes");
        let len = u16::try_from(bytes.len()).expect("a small seed");
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        write(corpus, "screen", &format!("message-{i}.bin"), &framed);
        stream.extend_from_slice(&framed);
    }
    let inputs = [
        screen::Input::PointerMove { x: 10, y: 20 },
        screen::Input::Button {
            button: 1,
            pressed: true,
        },
        screen::Input::Key {
            keysym: 0x61,
            pressed: true,
        },
        screen::Input::Refresh,
        screen::Input::Sync { token: 9 },
    ];
    let mut bytes = Vec::new();
    for i in &inputs {
        screen::encode_input(i, &mut bytes);
    }
    let mut framed = u16::try_from(bytes.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&bytes);
    write(corpus, "screen", "inputs.bin", &framed);
    stream.extend_from_slice(&framed);
    write(corpus, "screen", "stream.bin", &stream);
}

/// Seeds of the `e2e` target (fuzz_targets/e2e.rs; its layers and chunk
/// bytes are described there). Layer 0 gets the fixed handshake's real
/// hello, reply and confirm and real sealed messages, so the fuzzer starts
/// past the handshake; layers 1 and 2 get sequences of real seals, opens,
/// replays and alterations by the harness's own ends (a real ciphertext
/// the harness did not seal itself would break its invariant, "nothing
/// opens that the peer did not seal").
fn e2e(corpus: &Path) {
    use shims::e2e_fixture::{self as fx, framed};
    let hs = fx::handshake();
    let (mut agent, _operator) = (hs.agent, hs.operator);
    let hi = agent.seal_control(b"hi").expect("seals");
    let frame = agent.seal_data(b"frame").expect("seals");
    let seeds: [(&str, Vec<u8>); 2] = [
        (
            "handshake-agent.bin",
            framed(&[0], &[&hs.hello, &hs.confirm]),
        ),
        (
            "handshake-operator.bin",
            framed(&[0], &[&hs.reply, &hi, &frame]),
        ),
    ];
    for (name, bytes) in seeds {
        write(corpus, "e2e", name, &bytes);
    }
    // Layer 1: a chunk's first byte is 1 (agent acts) or 0 (operator),
    // + 2 for data, + 4 × action (0 open, 1 seal, 2 replay, 3 open the
    // peer's latest).
    let channel = framed(
        &[1],
        &[
            b"\x04hello customer",
            b"\x0d",
            b"\x09\x01",
            b"\x09\x01\x09\x01",
            b"\x05hello operator",
            b"\x0c",
            b"\x07frame 1",
            b"\x07frame 2",
            b"\x0e",
            b"\x0a\x02",
            b"\x00not sealed at all, not sealed at all",
        ],
    );
    write(corpus, "e2e", "channel.bin", &channel);
    // Layer 2: 0/1 a session message (JSON) to the agent/operator, 2/3
    // raw sealed bytes, 4/5 data frames, 6 the operator's chat, 7 the
    // agent's (+ 8: replay one already sent).
    let other_hello = lifeline_protocol::e2e::OperatorEnd::start(fx::SESSION, 9, [5; 32])
        .expect("a hello")
        .1;
    let clear_chat = SessionMessage::Chat {
        from: lifeline_protocol::Party::Operator,
        text: "in the clear".into(),
    };
    let mut c0 = vec![0u8];
    c0.extend(fx::json(&other_hello));
    let mut c1 = vec![1u8];
    c1.extend(fx::json(&clear_chat));
    let protocol = framed(
        &[2],
        &[
            b"\x06hello customer",
            b"\x07hello operator",
            b"\x0f\x00",
            b"\x05frame",
            b"\x04frame",
            &c0,
            &c1,
            b"\x02AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            b"\x06after the replay",
        ],
    );
    write(corpus, "e2e", "protocol.bin", &protocol);
}
