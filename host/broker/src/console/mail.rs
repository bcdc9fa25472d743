//! `POST /console/api/invitations/{session_id}/email {"to"}`: sends an
//! invitation by e-mail through the broker's mail server (`[smtp]` in
//! broker.toml), with `lettre` over tokio and rustls.
//!
//! The invitation is read with the operator protocol's `Invitation`
//! request on the cookie session's connection, so only the operator's own
//! open invitations can be sent. The SMTP password comes from a private
//! file (`smtp.password_file`) and is never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use lifeline_core::config::smtp::{SmtpConfig, SmtpTls};
use lifeline_protocol::{InvitationInfo, OperatorProfile, Party, ReplyBody, Request};
use serde::Deserialize;

use super::auth;
use super::error::ApiError;
use crate::Shared;

/// Time one e-mail may take to reach the mail server (connect, TLS, login,
/// send). Threat: a hung mail server holding console requests open.
pub const CONSOLE_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Invitations one cookie session may e-mail per hour. Threat: a stolen
/// cookie (or a runaway script) sending mail in the broker's name without
/// bound.
pub const CONSOLE_MAILS_PER_HOUR: u32 = 30;

/// Longest e-mail address accepted (RFC 5321's path limit).
pub const MAX_ADDRESS_CHARS: usize = 254;

/// Why the mail server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("[smtp] from = {from:?} is not an e-mail address: {reason}")]
    From { from: String, reason: String },
    #[error("[smtp] TLS for {host}: {reason}")]
    Tls { host: String, reason: String },
    #[error("the invitation e-mail could not be built: {0}")]
    Build(String),
    #[error("the mail server did not take the e-mail: {0}")]
    Send(String),
}

/// The broker's mail server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// Prepares the transport (no connection is made before a send).
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer, MailError> {
        let from: Mailbox = cfg.from.parse().map_err(|e| MailError::From {
            from: cfg.from.clone(),
            reason: format!("{e}"),
        })?;
        let tls_params = || {
            TlsParameters::new(cfg.host.clone()).map_err(|e| MailError::Tls {
                host: cfg.host.clone(),
                reason: e.to_string(),
            })
        };
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(CONSOLE_SMTP_TIMEOUT));
        if let Some((user, password)) = &cfg.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// Sends invitation `inv` of `operator` to `to`.
    pub async fn send(
        &self,
        broker: &str,
        operator: &OperatorProfile,
        inv: &InvitationInfo,
        to: Address,
    ) -> Result<(), MailError> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(one_line(&inv.end_user)), to))
            .subject(subject(inv))
            .header(ContentType::TEXT_PLAIN);
        if let Ok(addr) = operator.email.parse::<Address>() {
            b = b.reply_to(Mailbox::new(Some(one_line(&operator.name)), addr));
        }
        let email = b
            .body(body(broker, operator, inv))
            .map_err(|e| MailError::Build(e.to_string()))?;
        match tokio::time::timeout(CONSOLE_SMTP_TIMEOUT, self.transport.send(email)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(MailError::Send(e.to_string())),
            Err(_) => Err(MailError::Send(format!(
                "no answer within {} s",
                CONSOLE_SMTP_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Text for a header: control characters (line breaks) become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The e-mail's subject.
pub fn subject(inv: &InvitationInfo) -> String {
    one_line(&format!(
        "Your remote-support session for ticket {}",
        inv.ticket
    ))
}

/// The e-mail's text: the same as the join page, with every way in.
pub fn body(broker: &str, op: &OperatorProfile, inv: &InvitationInfo) -> String {
    let title = if op.title.is_empty() {
        String::new()
    } else {
        format!(", {}", op.title)
    };
    format!(
        "Hello {user},\n\n\
         {name}{title} of {broker} invites you to a remote-support session for ticket {ticket}.\n\n\
         To start it, open this link:\n\n    {link}\n\n\
         or run this command in a terminal on your computer:\n\n    lifeline agent join {link}\n\n\
         Short link:    {short}\n\
         Connection ID: {code}\n\n\
         The invitation can be used once and expires at {expires} (UTC).\n\
         Nothing happens on your computer without your consent, and you can end\n\
         the session at any time.\n",
        user = inv.end_user,
        name = op.name,
        ticket = inv.ticket,
        link = inv.link,
        short = inv.short_link,
        code = inv.connection_id,
        expires = inv.expires_at,
    )
}

#[derive(Deserialize)]
pub struct EmailBody {
    to: String,
}

/// The handler.
pub async fn send(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
    b: Result<Json<EmailBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let s = auth::session_csrf(&shared, &headers)?;
    let Some(mailer) = &shared.console.mailer else {
        return Err(ApiError::Conflict(
            "this broker has no mail server configured ([smtp] in broker.toml); send the invitation yourself"
                .into(),
        ));
    };
    let to_text = auth::body(b)?.to.trim().to_string();
    if to_text.chars().count() > MAX_ADDRESS_CHARS {
        return Err(ApiError::BadRequest(format!(
            "an e-mail address has at most {MAX_ADDRESS_CHARS} characters"
        )));
    }
    let to: Address = to_text
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("{to_text:?} is not an e-mail address: {e}")))?;
    {
        let mut m = s.mails.lock().expect("never poisoned");
        if m.0.elapsed() >= Duration::from_secs(3600) {
            *m = (Instant::now(), 0);
        }
        if m.1 >= CONSOLE_MAILS_PER_HOUR {
            let left = Duration::from_secs(3600).saturating_sub(m.0.elapsed());
            return Err(ApiError::RateLimited {
                message: format!(
                    "at most {CONSOLE_MAILS_PER_HOUR} invitations per hour are sent by e-mail from one console login"
                ),
                retry_after_secs: left.as_secs().max(1),
            });
        }
        m.1 += 1;
    }
    let req = Request::Invitation {
        session_id: session_id.clone(),
    };
    let inv = match s.request(&shared, req).await? {
        ReplyBody::Invitation(inv) => inv,
        other => {
            return Err(ApiError::Internal(format!(
                "unexpected reply to an invitation request: {other:?}"
            )));
        }
    };
    if let Err(e) = mailer.send(&shared.name, &s.profile, &inv, to).await {
        tracing::warn!(session = %session_id, "invitation e-mail: {e}");
        return Err(ApiError::BadGateway(e.to_string()));
    }
    tracing::info!(session = %session_id, operator = %s.profile.username, "invitation e-mailed");
    shared.record(
        &session_id,
        "invitation_email",
        Party::Operator,
        &format!("{} e-mailed the invitation to {to_text}", s.profile.name),
    );
    Ok(StatusCode::NO_CONTENT)
}
