//! [`ChatModel`] over any OpenAI-compatible server with async-openai (OpenAI, Azure OpenAI,
//! Ollama, vLLM, llama.cpp's `llama-server`).
//!
//! - **Our retries only.** async-openai's default client retries 429 and 5xx three times by
//!   itself (wire-facts §4.6); this adapter installs a plain reqwest transport through
//!   `Client::with_http_service`, so the retries below are the only ones. It retries opening
//!   the stream — 429 (not `insufficient_quota`), 5xx, refused connections — at most
//!   [`MAX_ATTEMPTS`] times, waiting what `Retry-After` says (integer seconds or an HTTP date;
//!   RFC 9110 §10.2.3) or an exponential backoff with jitter (backon) when it says nothing; a
//!   `Retry-After` longer than [`MAX_RETRY_WAIT`] is not waited for (the caller falls back at
//!   once). Nothing is retried once the stream has started.
//! - **Errors read from the response, not the client's parser**: non-2xx answers are turned into
//!   [`ChatError`]s by the transport with their status, `Retry-After` and body, so integer error
//!   codes (llama.cpp, vLLM: `"code": 500`) and text/plain bodies are reported, not lost in a
//!   JSON error (wire-facts §4.3, §4.5, §4.7).
//! - **Timeouts**: connect (reqwest), first token and total (on the stream).
//! - **Stream checks**: an error chunk mid-stream (`data: {"error":…}`), a chunk that is not a
//!   `chat.completion.chunk`, a cut connection, or an end without a `finish_reason` all end the
//!   stream with [`ChatError::Stream`].

use crate::ports::chat::{
    ChatError, ChatEvent, ChatModel, ChatRequest, ChatRole, ChatStream, FinishReason, TimeoutKind,
    TokenUsage,
};
use async_openai::Client;
use async_openai::config::{AzureConfig, Config, OpenAIConfig};
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    ChatCompletionStreamOptions, CreateChatCompletionRequest, ResponseFormat,
    ResponseFormatJsonSchema,
};
use backon::BackoffBuilder;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::time::Instant;

/// Attempts to open a stream (the first and two retries).
pub const MAX_ATTEMPTS: usize = 3;
/// Longest `Retry-After` we wait for before a retry; longer ones fail at once.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// Where and how to reach the model.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// OpenAI or any server speaking its API: `base_url` ends in `/v1`.
    OpenAi {
        base_url: String,
        api_key: Option<String>,
        model: String,
    },
    /// Azure OpenAI: the resource endpoint, a deployment and an `api-version`.
    Azure {
        base_url: String,
        api_key: String,
        deployment: String,
        api_version: String,
    },
}

/// Timeouts of one completion.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_token: Duration,
    pub total: Duration,
}

/// An OpenAI-compatible chat model.
pub struct OpenAiChatModel {
    client: Client<Box<dyn Config>>,
    model: String,
    timeouts: Timeouts,
    /// Delays between attempts when the server gives no `Retry-After` (tests shorten them).
    backoff: backon::ExponentialBuilder,
}

/// A non-2xx answer, as the transport saw it.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {message}")]
struct HttpStatusError {
    status: u16,
    retry_after: Option<Duration>,
    /// `error.message` of an OpenAI-style body, else the body's text (trimmed).
    message: String,
    /// `error.code` or `error.type` is `insufficient_quota` (a 429 that retrying cannot fix).
    insufficient_quota: bool,
}

impl OpenAiChatModel {
    /// A client for `endpoint`.
    ///
    /// Errors: the HTTP client cannot be built (TLS backend), as a message.
    pub fn new(endpoint: Endpoint, timeouts: Timeouts) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        let (config, model): (Box<dyn Config>, String) = match endpoint {
            Endpoint::OpenAi {
                base_url,
                api_key,
                model,
            } => (
                Box::new(
                    OpenAIConfig::new()
                        .with_api_base(base_url.trim_end_matches('/'))
                        .with_api_key(api_key.unwrap_or_default()),
                ),
                model,
            ),
            Endpoint::Azure {
                base_url,
                api_key,
                deployment,
                api_version,
            } => (
                Box::new(
                    AzureConfig::new()
                        .with_api_base(base_url.trim_end_matches('/'))
                        .with_api_key(api_key)
                        .with_deployment_id(deployment.clone())
                        .with_api_version(api_version),
                ),
                deployment,
            ),
        };
        let transport = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            async move {
                let request = factory.build().await?;
                let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                if response.status().is_success() {
                    return Ok(response);
                }
                Err(OpenAIError::Boxed(Box::new(
                    http_status_error(response).await,
                )))
            }
        });
        Ok(Self {
            client: Client::with_config(config).with_http_service(transport),
            model,
            timeouts,
            backoff: backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(250))
                .with_max_delay(Duration::from_secs(4))
                .with_jitter(),
        })
    }

    /// Replaces the delays used when the server sends no `Retry-After` (for tests).
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = backon::ExponentialBuilder::default()
            .with_min_delay(min)
            .with_max_delay(max);
        self
    }

    fn build_request(&self, request: &ChatRequest) -> CreateChatCompletionRequest {
        let messages = request
            .messages
            .iter()
            .map(|m| match m.role {
                ChatRole::System => ChatCompletionRequestMessage::System(
                    ChatCompletionRequestSystemMessage::from(m.content.as_str()),
                ),
                ChatRole::User => ChatCompletionRequestMessage::User(
                    ChatCompletionRequestUserMessage::from(m.content.as_str()),
                ),
                ChatRole::Assistant => ChatCompletionRequestMessage::Assistant(
                    ChatCompletionRequestAssistantMessage::from(m.content.as_str()),
                ),
            })
            .collect();
        #[allow(deprecated)]
        CreateChatCompletionRequest {
            model: self.model.clone(),
            messages,
            // `max_tokens`: the field Ollama, vLLM and llama.cpp all read (OpenAI still accepts
            // it for chat models; `max_completion_tokens` is its newer name).
            max_tokens: Some(request.max_tokens),
            temperature: Some(request.temperature),
            stream: Some(true),
            stream_options: Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            response_format: request
                .schema
                .as_ref()
                .map(|schema| ResponseFormat::JsonSchema {
                    json_schema: ResponseFormatJsonSchema {
                        description: None,
                        name: schema.name.clone(),
                        schema: schema.schema.clone(),
                        strict: Some(true),
                    },
                }),
            ..Default::default()
        }
    }
}

async fn http_status_error(response: reqwest::Response) -> HttpStatusError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::adapters::http::parse_retry_after);
    let body = response.text().await.unwrap_or_default();
    let (message, insufficient_quota) = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(json) => {
            let error = json.get("error").unwrap_or(&json);
            let text = |key: &str| {
                error.get(key).map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
            };
            let quota = [text("code"), text("type")]
                .iter()
                .flatten()
                .any(|v| v == "insufficient_quota");
            (
                text("message").unwrap_or_else(|| body.trim().to_string()),
                quota,
            )
        }
        Err(_) => (body.trim().chars().take(500).collect(), false),
    };
    HttpStatusError {
        status,
        retry_after,
        message,
        insufficient_quota,
    }
}

/// What to do after a failed attempt to open the stream.
enum Failure {
    /// Retry after at least this long (`None`: the backoff's delay).
    Retry(ChatError, Option<Duration>),
    Fail(ChatError),
}

fn classify(err: OpenAIError) -> Failure {
    match err {
        OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpStatusError>() {
            Ok(status) => {
                let status = *status;
                match status.status {
                    429 if status.insufficient_quota => Failure::Fail(ChatError::RateLimited {
                        retry_after: None,
                        message: status.message,
                    }),
                    429 => Failure::Retry(
                        ChatError::RateLimited {
                            retry_after: status.retry_after,
                            message: status.message,
                        },
                        status.retry_after,
                    ),
                    code @ 500..=599 => Failure::Retry(
                        ChatError::Server {
                            status: code,
                            message: status.message,
                        },
                        status.retry_after,
                    ),
                    code => Failure::Fail(ChatError::Rejected {
                        status: code,
                        message: status.message,
                    }),
                }
            }
            Err(other) => Failure::Fail(ChatError::Connect(other.to_string())),
        },
        OpenAIError::Reqwest(err) if err.is_timeout() && err.is_connect() => {
            Failure::Fail(ChatError::Timeout(TimeoutKind::Connect))
        }
        OpenAIError::Reqwest(err) if err.is_connect() => {
            Failure::Retry(ChatError::Connect(error_chain(&err)), None)
        }
        OpenAIError::Reqwest(err) => Failure::Fail(ChatError::Connect(error_chain(&err))),
        other => Failure::Fail(ChatError::Rejected {
            status: 0,
            message: other.to_string(),
        }),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[async_trait::async_trait]
impl ChatModel for OpenAiChatModel {
    fn model(&self) -> &str {
        &self.model
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ChatError> {
        let started = Instant::now();
        let total_deadline = started + self.timeouts.total;
        let first_token_deadline = started + self.timeouts.first_token;
        let body = self.build_request(&request);
        let mut delays = self.backoff.build();
        let mut attempt = 0;
        let raw = loop {
            attempt += 1;
            let opened = tokio::time::timeout_at(
                first_token_deadline.min(total_deadline),
                self.client.chat().create_stream(body.clone()),
            )
            .await;
            let failure = match opened {
                Err(_) => return Err(ChatError::Timeout(TimeoutKind::FirstToken)),
                Ok(Ok(stream)) => break stream,
                Ok(Err(err)) => classify(err),
            };
            let (error, wait) = match failure {
                Failure::Fail(error) => return Err(error),
                Failure::Retry(error, retry_after) => {
                    let backoff = delays.next().unwrap_or(Duration::from_secs(1));
                    (error, retry_after.unwrap_or(backoff))
                }
            };
            if attempt >= MAX_ATTEMPTS
                || wait > MAX_RETRY_WAIT
                || Instant::now() + wait >= first_token_deadline.min(total_deadline)
            {
                return Err(error);
            }
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %error, "model server failed; retrying");
            tokio::time::sleep(wait).await;
        };
        let state = StreamState {
            raw,
            first_token_deadline,
            total_deadline,
            got_token: false,
            finished: false,
            done: false,
            pending: std::collections::VecDeque::new(),
        };
        Ok(futures_util::stream::unfold(state, next_event).boxed())
    }
}

struct StreamState {
    raw: async_openai::types::chat::ChatCompletionResponseStream,
    first_token_deadline: Instant,
    total_deadline: Instant,
    got_token: bool,
    finished: bool,
    done: bool,
    pending: std::collections::VecDeque<ChatEvent>,
}

async fn next_event(mut state: StreamState) -> Option<(Result<ChatEvent, ChatError>, StreamState)> {
    loop {
        if let Some(event) = state.pending.pop_front() {
            return Some((Ok(event), state));
        }
        if state.done {
            return None;
        }
        let (deadline, kind) = if state.got_token {
            (state.total_deadline, TimeoutKind::Total)
        } else if state.first_token_deadline < state.total_deadline {
            (state.first_token_deadline, TimeoutKind::FirstToken)
        } else {
            (state.total_deadline, TimeoutKind::Total)
        };
        let item = match tokio::time::timeout_at(deadline, state.raw.next()).await {
            Err(_) => {
                state.done = true;
                return Some((Err(ChatError::Timeout(kind)), state));
            }
            Ok(item) => item,
        };
        match item {
            None => {
                state.done = true;
                if !state.finished {
                    return Some((
                        Err(ChatError::Stream(
                            "the stream ended before the model finished (no finish_reason)".into(),
                        )),
                        state,
                    ));
                }
                return None;
            }
            Some(Err(err)) => {
                state.done = true;
                let message = match err {
                    OpenAIError::JSONDeserialize(_, content) => {
                        format!(
                            "an error or malformed chunk: {}",
                            content.chars().take(300).collect::<String>()
                        )
                    }
                    other => error_chain(&other),
                };
                return Some((Err(ChatError::Stream(message)), state));
            }
            Some(Ok(chunk)) => {
                for choice in chunk.choices.iter().filter(|c| c.index == 0) {
                    let text = choice
                        .delta
                        .content
                        .as_deref()
                        .or(choice.delta.refusal.as_deref())
                        .unwrap_or("");
                    if !text.is_empty() {
                        state.got_token = true;
                        state.pending.push_back(ChatEvent::Delta(text.to_string()));
                    }
                    if let Some(reason) = &choice.finish_reason {
                        use async_openai::types::chat::FinishReason as Wire;
                        state.finished = true;
                        state.got_token = true;
                        state.pending.push_back(ChatEvent::Finished(match reason {
                            Wire::Stop => FinishReason::Stop,
                            Wire::Length => FinishReason::Length,
                            Wire::ContentFilter => FinishReason::ContentFilter,
                            Wire::ToolCalls | Wire::FunctionCall => FinishReason::Other,
                        }));
                    }
                }
                if let Some(usage) = &chunk.usage {
                    state.pending.push_back(ChatEvent::Usage(TokenUsage {
                        prompt_tokens: usage.prompt_tokens,
                        completion_tokens: usage.completion_tokens,
                    }));
                }
            }
        }
    }
}
