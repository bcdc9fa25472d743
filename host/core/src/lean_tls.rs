//! A TLS server stream that holds no buffer while the connection is idle.
//!
//! rustls's buffered connection (what tokio-rustls wraps) keeps a 4 KiB
//! receive buffer for as long as the connection lives, and the broker
//! keeps tens of thousands of idle agent connections: that buffer was the
//! largest single item of an idle agent's memory (docs/benchmarks.md, "Idle
//! agents"). This stream drives rustls's *unbuffered* server connection
//! instead and owns its buffers, each allocated while bytes are in it and
//! freed when it empties, so an idle connection holds only rustls's own
//! state (keys, handshake leftovers). TLS itself (records, keys, alerts,
//! key updates, close_notify) stays rustls's: this file only moves bytes
//! between the socket, rustls and the caller.
//!
//! The stream is `AsyncRead + AsyncWrite` and is used behind
//! `tokio::io::split` (one reader task, one writer task): whichever side
//! meets bytes meant for the other (the writer finding decrypted data or
//! the peer's close, the reader finding TLS data to send) keeps them in the
//! stream and wakes the other side.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes asked of the socket per read: one TLS record at most (16 KiB of
/// plaintext plus header, content type and tag), so a busy connection
/// reads whole records and an idle one allocates nothing until a byte comes.
pub const READ_CHUNK: usize = 16 * 1024 + 256;

/// Plaintext encrypted per write call at most: four full records. Bounds
/// the outgoing buffer (the caller's next write waits until it is sent).
pub const WRITE_CHUNK: usize = 64 * 1024;

/// Incoming TLS bytes buffered before the peer counts as misbehaving: a
/// handshake message may span records up to 64 KiB (rustls's own limit),
/// any other record is at most [`READ_CHUNK`].
pub const MAX_INCOMING: usize = 64 * 1024 + READ_CHUNK;

/// A TLS 1.3 server connection over `S` (a TCP stream) with no buffer held
/// while idle.
pub struct LeanTlsStream<S> {
    io: S,
    conn: UnbufferedServerConnection,
    /// TLS bytes read from the socket and not yet processed by rustls:
    /// `incoming[..in_len]`; the rest is zeroed room for the next read
    /// (zeroed once per allocation, not per read).
    incoming: Vec<u8>,
    in_len: usize,
    /// Decrypted bytes not yet read by the caller, from `plain_at` on.
    plain: Vec<u8>,
    plain_at: usize,
    /// TLS bytes for the socket not yet written: `outgoing[out_at..out_len]`;
    /// the rest is zeroed room, kept between writes and freed by a flush
    /// (the link flushes when its queue is empty).
    outgoing: Vec<u8>,
    out_at: usize,
    out_len: usize,
    /// The peer sent close_notify (the reader returns end of file).
    peer_closed: bool,
    /// The socket returned end of file.
    eof: bool,
    /// close_notify is queued (shutdown).
    sent_close: bool,
    /// rustls refused the connection (it queued its fatal alert then):
    /// rustls is not called again, every later call gets this error.
    failed: Option<rustls::Error>,
    /// The reader waiting for bytes the writer may find.
    read_waker: Option<Waker>,
}

/// What one step of rustls's state machine asks for next.
enum Step {
    /// Call rustls again (after sending what it encoded).
    Again,
    /// Nothing pending: more must be read to make progress (the handshake
    /// waits for the peer, or the connection is idle).
    Idle,
    /// `n` bytes of the caller's data were encrypted into `outgoing`.
    Wrote(usize),
    /// The connection is closed (both close_notify sent and received).
    Closed,
}

/// What the caller of [`LeanTlsStream::step`] wants done once rustls lets
/// it write.
#[derive(Clone, Copy)]
enum Want<'d> {
    Read,
    Write(&'d [u8]),
    Close,
}

/// At least `need` bytes of room in `buf` after its first `len` bytes
/// (zeroed when it grows: no `unsafe` here).
fn room(buf: &mut Vec<u8>, len: usize, need: usize) -> &mut [u8] {
    if buf.len() < len + need {
        buf.resize(len + need, 0);
    }
    &mut buf[len..]
}

fn tls_error(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Accepts a TLS connection on `io` with `config`: the handshake, then the
/// stream.
pub async fn accept<S>(io: S, config: Arc<ServerConfig>) -> io::Result<LeanTlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
    let mut tls = LeanTlsStream {
        io,
        conn,
        incoming: Vec::new(),
        in_len: 0,
        plain: Vec::new(),
        plain_at: 0,
        outgoing: Vec::new(),
        out_at: 0,
        out_len: 0,
        peer_closed: false,
        eof: false,
        sent_close: false,
        failed: None,
        read_waker: None,
    };
    std::future::poll_fn(|cx| tls.poll_handshake(cx)).await?;
    Ok(tls)
}

impl<S: AsyncRead + AsyncWrite + Unpin> LeanTlsStream<S> {
    /// Bytes of buffers this stream holds now (for tests and figures).
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.plain.capacity() + self.outgoing.capacity()
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.is_handshaking() {
            match self.step(Want::Read, None)? {
                Step::Again | Step::Wrote(_) => ready!(self.poll_send(cx))?,
                Step::Idle => {
                    ready!(self.poll_send(cx))?;
                    if !self.conn.is_handshaking() {
                        break;
                    }
                    // The client left mid-handshake: without this, the loop
                    // would read end of file again and again, never
                    // returning (a worker thread lost).
                    if self.eof {
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    ready!(self.poll_fill(cx))?;
                }
                Step::Closed => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
            }
        }
        ready!(self.poll_send(cx))?;
        self.outgoing = Vec::new();
        Poll::Ready(Ok(()))
    }

    /// One call into rustls with the incoming bytes; what it yields is
    /// kept here (plaintext, TLS bytes to send, the peer's close), and once
    /// it lets application data be written, `want` is done. Every call's
    /// `discard` is applied: rustls has consumed those bytes.
    /// With `dest` (the reader's buffer), decrypted bytes go there first,
    /// without a copy through `plain`.
    fn step(&mut self, want: Want<'_>, mut dest: Option<&mut ReadBuf<'_>>) -> io::Result<Step> {
        let UnbufferedStatus { mut discard, state } = self
            .conn
            .process_tls_records(&mut self.incoming[..self.in_len]);
        let next = match state.map_err(tls_error)? {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(tls_error)?;
                    discard += record.discard;
                    let mut payload = record.payload;
                    if let Some(d) = dest.as_deref_mut()
                        && self.plain.is_empty()
                    {
                        let n = d.remaining().min(payload.len());
                        d.put_slice(&payload[..n]);
                        payload = &payload[n..];
                    }
                    self.plain.extend_from_slice(payload);
                }
                if let Some(w) = self.read_waker.take() {
                    w.wake();
                }
                Step::Again
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                let mut need = 1024;
                loop {
                    match encode.encode(room(&mut self.outgoing, self.out_len, need)) {
                        Ok(n) => {
                            self.out_len += n;
                            break;
                        }
                        Err(EncodeError::InsufficientSize(s)) => need = s.required_size,
                        Err(e) => return Err(tls_error(e)),
                    }
                }
                Step::Again
            }
            ConnectionState::TransmitTlsData(transmit) => {
                // What was encoded is in `outgoing`: every caller sends it
                // before it reads the socket or encrypts more.
                transmit.done();
                Step::Again
            }
            ConnectionState::PeerClosed => {
                self.peer_closed = true;
                if let Some(w) = self.read_waker.take() {
                    w.wake();
                }
                Step::Again
            }
            ConnectionState::Closed => Step::Closed,
            ConnectionState::WriteTraffic(mut traffic) => match want {
                Want::Read => Step::Idle,
                Want::Write(data) => {
                    let chunk = &data[..data.len().min(WRITE_CHUNK)];
                    let mut need = chunk.len() + 256;
                    loop {
                        match traffic.encrypt(chunk, room(&mut self.outgoing, self.out_len, need)) {
                            Ok(n) => {
                                self.out_len += n;
                                break;
                            }
                            Err(EncryptError::InsufficientSize(s)) => need = s.required_size,
                            Err(e) => return Err(tls_error(e)),
                        }
                    }
                    Step::Wrote(chunk.len())
                }
                Want::Close => {
                    let out = room(&mut self.outgoing, self.out_len, 64);
                    self.out_len += traffic.queue_close_notify(out).unwrap_or(0);
                    Step::Wrote(0)
                }
            },
            ConnectionState::BlockedHandshake => Step::Idle,
            // Early data is not enabled (`max_early_data_size` is 0).
            ConnectionState::ReadEarlyData(_) => {
                return Err(tls_error(rustls::Error::General("early data".into())));
            }
            _ => return Err(tls_error(rustls::Error::General("unknown state".into()))),
        };
        self.incoming.copy_within(discard..self.in_len, 0);
        self.in_len -= discard;
        Ok(next)
    }

    /// Writes `outgoing` to the socket until it is empty (its room kept).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.out_len {
            let pending = &self.outgoing[self.out_at..self.out_len];
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_at += n;
        }
        self.out_at = 0;
        self.out_len = 0;
        Poll::Ready(Ok(()))
    }

    /// Reads once from the socket into `incoming`; an empty `incoming` is
    /// freed while the socket has nothing.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.in_len >= MAX_INCOMING {
            return Poll::Ready(Err(tls_error(rustls::Error::General(
                "TLS message too large".into(),
            ))));
        }
        if self.incoming.len() - self.in_len < READ_CHUNK / 2 {
            // Zeroed, not uninitialised (no `unsafe` here), once per
            // allocation.
            self.incoming.resize(self.in_len + READ_CHUNK, 0);
        }
        let mut buf = ReadBuf::new(&mut self.incoming[self.in_len..]);
        let polled = Pin::new(&mut self.io).poll_read(cx, &mut buf);
        let n = buf.filled().len();
        self.in_len += n;
        match polled {
            Poll::Pending => {
                if self.in_len == 0 {
                    self.incoming = Vec::new();
                }
                if self.out_len == 0 {
                    self.outgoing = Vec::new();
                }
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                if n == 0 {
                    self.eof = true;
                }
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Copies decrypted bytes to the caller's buffer, freeing them once read.
    fn take_plain(&mut self, buf: &mut ReadBuf<'_>) {
        let n = buf.remaining().min(self.plain.len() - self.plain_at);
        buf.put_slice(&self.plain[self.plain_at..self.plain_at + n]);
        self.plain_at += n;
        if self.plain_at == self.plain.len() {
            self.plain = Vec::new();
            self.plain_at = 0;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for LeanTlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.plain_at < me.plain.len() {
                me.take_plain(buf);
                return Poll::Ready(Ok(()));
            }
            if me.peer_closed {
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            let step = me.step(Want::Read, Some(buf))?;
            if buf.filled().len() > before {
                // Sent later, by the next call or the writer.
                let _ = me.poll_send(cx)?;
                return Poll::Ready(Ok(()));
            }
            match step {
                Step::Again | Step::Wrote(_) => ready!(me.poll_send(cx))?,
                Step::Closed => return Poll::Ready(Ok(())),
                Step::Idle => {
                    ready!(me.poll_send(cx))?;
                    if me.eof {
                        // The socket ended without close_notify.
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    me.read_waker = Some(cx.waker().clone());
                    ready!(me.poll_fill(cx))?;
                    me.read_waker = None;
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LeanTlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        loop {
            // `outgoing` is empty before more is encrypted: it holds at
            // most one write's records.
            ready!(me.poll_send(cx))?;
            match me.step(Want::Write(data), None)? {
                Step::Again => {}
                Step::Wrote(n) => {
                    // Sent now as far as the socket takes it; the rest by
                    // the next write or flush.
                    if let Poll::Ready(Err(e)) = me.poll_send(cx) {
                        return Poll::Ready(Err(e));
                    }
                    return Poll::Ready(Ok(n));
                }
                Step::Idle => {
                    return Poll::Ready(Err(tls_error(rustls::Error::HandshakeNotComplete)));
                }
                Step::Closed => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_send(cx))?;
        // The writer has nothing more queued: free the room.
        me.outgoing = Vec::new();
        Pin::new(&mut me.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        while !me.conn.is_handshaking() && !me.sent_close && me.failed.is_none() {
            ready!(me.poll_send(cx))?;
            match me.step(Want::Close, None)? {
                Step::Again => {}
                Step::Wrote(_) | Step::Closed | Step::Idle => me.sent_close = true,
            }
        }
        ready!(me.poll_send(cx))?;
        Pin::new(&mut me.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "lean_tls_tests.rs"]
mod tests;
