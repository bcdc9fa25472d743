//! Client side of a connection to the broker (agent and operator client):
//! TCP, TLS with the configured trust, the versioned handshake, then a
//! heartbeating [`Link`].

use std::sync::Arc;
use std::time::Duration;

use lifeline_protocol::{
    ClientRole, Frame, MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES, Message, PROTOCOL_NAME,
    PROTOCOL_VERSION, read_frame,
};
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsConnector;

use crate::link::{Link, spawn_link};
use crate::proxy::{ManualProxy, OpenError, Proxies};
use crate::tls::{self, TlsError, Trust};

/// Time allowed for TCP connect, TLS and the `Hello`/`Welcome` exchange.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the broker is and how to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` of the broker's session listener.
    pub address: String,
    /// Name checked against the certificate (CA trust) and sent as SNI.
    pub server_name: String,
    pub trust: Trust,
    pub heartbeat: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach the broker at {address}: {source}")]
    Tcp {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {address} failed: {reason}")]
    Tls { address: String, reason: String },
    #[error(transparent)]
    TlsSetup(#[from] TlsError),
    #[error("invalid broker server name {0:?}")]
    ServerName(String),
    #[error("the broker refused the connection: {0}")]
    Refused(String),
    #[error("the broker did not complete the handshake: {0}")]
    Handshake(String),
    #[error("timed out after {0:?} connecting to the broker")]
    Timeout(Duration),
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
}

/// What the broker said in its `Welcome`.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub broker_name: String,
}

/// Connects, authenticates the broker and completes the handshake.
pub async fn connect(ep: &Endpoint, role: ClientRole) -> Result<(Link, Welcome), ConnectError> {
    connect_via(ep, role, None).await
}

/// Like [`connect`], through a manual HTTP proxy (`CONNECT` tunnel) when
/// one is given and its `no_proxy` does not name the broker.
pub async fn connect_via(
    ep: &Endpoint,
    role: ClientRole,
    proxy: Option<&ManualProxy>,
) -> Result<(Link, Welcome), ConnectError> {
    within_handshake_timeout(connect_inner(ep, role, proxy, None)).await
}

/// Like [`connect_via`], with `first` (an agent's join, rejoin or resume)
/// written right behind the `Hello` instead of after the `Welcome`: the
/// broker reads it once its handshake is done, one round trip sooner. A
/// broker that refuses the handshake never reads it; the refusal is the
/// error, as with [`connect_via`].
pub async fn connect_then(
    ep: &Endpoint,
    role: ClientRole,
    proxy: Option<&ManualProxy>,
    first: &Frame,
) -> Result<(Link, Welcome), ConnectError> {
    within_handshake_timeout(connect_inner(ep, role, proxy, Some(first))).await
}

/// A connection attempt, given up after [`HANDSHAKE_TIMEOUT`].
async fn within_handshake_timeout(
    attempt: impl Future<Output = Result<(Link, Welcome), ConnectError>>,
) -> Result<(Link, Welcome), ConnectError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt)
        .await
        .map_err(|_| ConnectError::Timeout(HANDSHAKE_TIMEOUT))?
}

async fn connect_inner(
    ep: &Endpoint,
    role: ClientRole,
    proxy: Option<&ManualProxy>,
    first: Option<&Frame>,
) -> Result<(Link, Welcome), ConnectError> {
    let config = tls::client_config(&ep.trust)?;
    let proxies = match proxy {
        Some(p) => Proxies::manual(p)?,
        None => Proxies::direct(),
    };
    let tcp = match crate::proxy::open(&proxies, "https", &ep.address).await {
        Ok(tcp) => tcp,
        Err(OpenError::Proxy(e)) => return Err(e.into()),
        Err(OpenError::Direct(source)) => {
            return Err(ConnectError::Tcp {
                address: ep.address.clone(),
                source,
            });
        }
    };
    tcp.set_nodelay(true).ok();
    let name = ServerName::try_from(ep.server_name.clone())
        .map_err(|_| ConnectError::ServerName(ep.server_name.clone()))?;
    let mut stream = TlsConnector::from(Arc::clone(&config))
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectError::Tls {
            address: ep.address.clone(),
            reason: e.to_string(),
        })?;
    let hello = Message::Hello {
        protocol: PROTOCOL_NAME.into(),
        version: PROTOCOL_VERSION,
        role,
        software: format!("lifeline {}", env!("CARGO_PKG_VERSION")),
    };
    // One write (and one TLS record) for the hello and what follows it.
    let mut out = Frame::Control(hello).encode();
    if let Some(first) = first {
        out.extend(first.encode());
    }
    let sent = async {
        stream.write_all(&out).await?;
        stream.flush().await
    };
    sent.await
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    let reply = read_frame(&mut stream, MAX_HANDSHAKE_FRAME_BYTES)
        .await
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    let welcome = match reply {
        Frame::Control(Message::Welcome { broker, .. }) => Welcome {
            broker_name: broker,
        },
        Frame::Control(Message::Error { message, .. }) => {
            return Err(ConnectError::Refused(message));
        }
        other => {
            return Err(ConnectError::Handshake(format!(
                "unexpected first message {other:?}"
            )));
        }
    };
    Ok((spawn_link(stream, ep.heartbeat, MAX_FRAME_BYTES), welcome))
}
