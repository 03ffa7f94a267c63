//! [`Mailer`] over SMTP with lettre (RFC 5321): `smtp://host:port` (plain, for a local relay),
//! `smtp://host:587?tls=required` (STARTTLS) or `smtps://user:pass@host:465` (implicit TLS), as
//! lettre's `AsyncSmtpTransport::from_url` reads them.

use crate::ports::mailer::{MailError, Mailer, OutgoingEmail};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Longest wait for one SMTP session.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The SMTP mailer.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// Errors: the URL or the `from` address is invalid (the message names which).
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|err| format!("email.smtp_url is not an SMTP URL: {err}"))?
            .timeout(Some(TIMEOUT))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|err| format!("email.from {from:?} is not an address: {err}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let to = email
            .to
            .parse::<Mailbox>()
            .map_err(|err| MailError::Invalid(format!("{:?}: {err}", email.to)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .body(email.text.clone())
            .map_err(|err| MailError::Invalid(err.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| {
                if err.is_permanent() {
                    MailError::Invalid(err.to_string())
                } else {
                    MailError::Unavailable(err.to_string())
                }
            })
    }
}
