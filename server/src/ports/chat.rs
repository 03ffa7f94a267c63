//! The chat-model port: one streamed chat completion from an OpenAI-compatible model
//! (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp's `llama-server`).
//!
//! Wire format: OpenAI's Chat Completions API (`POST {base}/chat/completions`, `stream: true`,
//! `stream_options.include_usage`; `../shared/docs/wire-facts.md` §4.1–4.3). The adapter
//! ([`crate::adapters::openai_chat`]) makes the only retries (async-openai's own are off):
//! before the stream starts, on 429 (honouring `Retry-After`) and 5xx — never once a token
//! has arrived.

use futures_util::stream::BoxStream;
use std::time::Duration;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

/// One message of the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::Assistant,
            content: content.into(),
        }
    }
}

/// A JSON schema the output must follow (`response_format: {type: "json_schema",
/// json_schema: {name, schema, strict}}`, the OpenAI nesting that llama.cpp also reads;
/// wire-facts §4.2, §4.5).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSchema {
    /// `[a-zA-Z0-9_-]{1,64}`.
    pub name: String,
    pub schema: serde_json::Value,
}

/// One completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature, 0..2 (0: the most likely token each time).
    pub temperature: f32,
    /// Structured output; `None` for free text.
    pub schema: Option<OutputSchema>,
}

/// Tokens a completion used, as the server reported them (`usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// Why the model stopped (`finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The answer is complete.
    Stop,
    /// `max_tokens` reached: the answer is cut.
    Length,
    /// The provider's content filter stopped it.
    ContentFilter,
    /// Anything else (`tool_calls`, `function_call`).
    Other,
}

/// One item of a completion stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// The next piece of the answer (never empty).
    Delta(String),
    /// The model finished; usage follows when the server reports it.
    Finished(FinishReason),
    /// Token usage of the whole completion (the last item, when reported).
    Usage(TokenUsage),
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// No TCP connection within `llm.connect_timeout`.
    Connect,
    /// No first token within `llm.first_token_timeout` of the request.
    FirstToken,
    /// The whole completion took longer than `llm.total_timeout`.
    Total,
}

/// Errors of a chat model. Each says whether part of the answer had already arrived.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ChatError {
    /// 429 after the retries (or `insufficient_quota`, which is not retried).
    #[error("the model server is rate-limiting us ({message})")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// A 4xx other than 429: our request is wrong for this server (bad model name, bad key,
    /// invalid schema). Not retried.
    #[error("the model server rejected the request: HTTP {status}: {message}")]
    Rejected { status: u16, message: String },
    /// 5xx after the retries.
    #[error("the model server failed: HTTP {status}: {message}")]
    Server { status: u16, message: String },
    /// No connection (refused, DNS, TLS) after the retries.
    #[error("cannot reach the model server: {0}")]
    Connect(String),
    #[error("the model timed out ({0:?})")]
    Timeout(TimeoutKind),
    /// The stream broke after it started: cut connection, an error chunk, a chunk that is not
    /// a `chat.completion.chunk`, or an end without `finish_reason`. Never retried.
    #[error("the model's stream broke: {0}")]
    Stream(String),
}

/// A stream of [`ChatEvent`]s; dropping it closes the HTTP stream.
pub type ChatStream = BoxStream<'static, Result<ChatEvent, ChatError>>;

/// A chat model.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    /// The model's name as sent in requests (`gpt-4o-mini`, an Azure deployment).
    fn model(&self) -> &str;

    /// Starts a streamed completion. Returns once the server accepted the request (HTTP 200);
    /// retries before that are the adapter's. Timeouts for the first token and the whole
    /// completion apply to the returned stream.
    ///
    /// Errors: every [`ChatError`] but `Stream`.
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ChatError>;
}

/// A completed (non-streamed) answer: its text, why it stopped, and usage.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub finish: Option<FinishReason>,
    pub usage: Option<TokenUsage>,
}

/// Runs `request` to the end and collects it.
///
/// Errors: as [`ChatModel::stream`], plus `Stream` and `Timeout` from the stream.
pub async fn complete(
    model: &dyn ChatModel,
    request: ChatRequest,
) -> Result<Completion, ChatError> {
    use futures_util::StreamExt;
    let mut stream = model.stream(request).await?;
    let mut completion = Completion {
        text: String::new(),
        finish: None,
        usage: None,
    };
    while let Some(event) = stream.next().await {
        match event? {
            ChatEvent::Delta(text) => completion.text.push_str(&text),
            ChatEvent::Finished(reason) => completion.finish = Some(reason),
            ChatEvent::Usage(usage) => completion.usage = Some(usage),
        }
    }
    Ok(completion)
}
