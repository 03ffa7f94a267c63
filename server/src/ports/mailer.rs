//! The mailer port: email to visitors who have left (an agent's reply with the transcript).

/// An email to send (plain text, UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// One address (`ana@example.com`).
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Why an email was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The address or the message is invalid: retrying will not help.
    #[error("the email is invalid: {0}")]
    Invalid(String),
    /// The mail server refused it for now or could not be reached: try again later.
    #[error("the mail server did not take the email: {0}")]
    Unavailable(String),
}

/// Sends email.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email.
    ///
    /// Errors: [`MailError`].
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}
