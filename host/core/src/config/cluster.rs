//! The broker's `[cluster]` table: several brokers sharing one store
//! (`[store] kind = "postgres"`) route sessions to each other over NATS.
//! Without the table the broker runs alone. Raw → typed through [`Doc`],
//! so errors name the file, the line and the key.

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Doc};

/// Longest node name: it is part of NATS subjects and of every report line
/// that says where a party connected.
pub const MAX_NODE_NAME_CHARS: usize = 64;

/// How this broker joins the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `nats://host:port` of the NATS server (or one of its cluster).
    pub nats_url: String,
    /// This node's name, unique in the cluster: letters, digits, `-`, `_`.
    pub node: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    nats_url: Option<Spanned<String>>,
    node: Option<Spanned<String>>,
}

/// Validates `[cluster]` (called from `BrokerConfig::parse`); `store_shared`
/// says whether `[store]` is one that other nodes can share.
pub(super) fn validate_cluster(
    doc: &Doc<'_>,
    raw: &RawCluster,
    at: &std::ops::Range<usize>,
    store_shared: bool,
) -> Result<ClusterConfig, ConfigError> {
    if !store_shared {
        return Err(doc.invalid(
            at,
            "cluster",
            "a cluster needs a store its nodes share: set [store] kind = \"postgres\"",
        ));
    }
    let Some(url) = &raw.nats_url else {
        return Err(doc.invalid(
            at,
            "cluster.nats_url",
            "missing: e.g. \"nats://127.0.0.1:4222\"",
        ));
    };
    let u = url.get_ref().trim();
    let rest = u
        .strip_prefix("nats://")
        .or_else(|| u.strip_prefix("tls://"));
    if rest.is_none_or(|r| r.is_empty() || r.contains('@')) {
        return Err(doc.invalid(
            &url.span(),
            "cluster.nats_url",
            "expected nats://host:port or tls://host:port, without credentials",
        ));
    }
    let Some(node) = &raw.node else {
        return Err(doc.invalid(
            at,
            "cluster.node",
            "missing: a name unique in the cluster, e.g. \"broker-1\"",
        ));
    };
    let n = node.get_ref();
    let ok_chars = n
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if n.is_empty() || n.chars().count() > MAX_NODE_NAME_CHARS || !ok_chars {
        return Err(doc.invalid(
            &node.span(),
            "cluster.node",
            format!("{n:?}: use 1–{MAX_NODE_NAME_CHARS} letters, digits, '-' or '_'"),
        ));
    }
    Ok(ClusterConfig {
        nats_url: u.to_string(),
        node: n.clone(),
    })
}
