//! Embeddings from any OpenAI-compatible `POST {base}/embeddings` endpoint (OpenAI, Ollama,
//! llama.cpp `llama-server`, vLLM), through async-openai 0.43.
//!
//! Wire format (`docs/wire-facts.md` §4.4): request `{model, input: [string], dimensions?}`,
//! response `{object: "list", data: [{object: "embedding", index, embedding: [float]}], model,
//! usage: {prompt_tokens, total_tokens}}`. Vectors are put back in input order by `index` and
//! L2-normalised here (OpenAI's are already unit length; local servers' may not be).
//!
//! Retries (§4.6): async-openai's client always retries 429 (except `insufficient_quota`),
//! 5xx and connection failures up to 3 times, waiting an integer `Retry-After` if the server
//! sends one, else 100 ms · 2ⁿ. This adapter adds no retry of its own: an error it returns has
//! already been retried, so [`EmbedError::RateLimited`] carries `retry_after: None` (the client
//! does not expose the last response's headers).
//!
//! Sync over async: [`Embedder::embed_batch`] is blocking, and async-openai is async. Each
//! embedder owns one background thread running a tokio current-thread runtime; a call sends its
//! request future there and waits on a channel. This works from any thread that may block — a
//! `spawn_blocking` thread, a rayon worker, a plain thread, with or without an ambient tokio
//! runtime — and dropping the embedder is safe anywhere, including inside an async task (a
//! runtime owned directly by the embedder would panic if dropped there, and
//! `Handle::block_on` needs an ambient runtime that a CLI or a rayon thread may not have).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, CreateEmbeddingResponse};
use tokenizers::Tokenizer;

use super::{EmbedError, Embedder, l2_normalize};

/// Default limit for one `embed_batch` call, async-openai's own retries included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Characters per token assumed by the approximate token count (OpenAI's rule of thumb for
/// English text with its BPE tokenizers: "one token ≈ 4 characters").
const CHARS_PER_TOKEN: usize = 4;

/// An embedder backed by an OpenAI-compatible HTTP service.
pub struct OpenAiEmbedder {
    client: Client<OpenAIConfig>,
    worker: RuntimeThread,
    base_url: String,
    model: String,
    model_id: String,
    dimensions: usize,
    max_tokens: usize,
    timeout: Duration,
    send_dimensions: bool,
    tokenizer: Option<Tokenizer>,
}

impl std::fmt::Debug for OpenAiEmbedder {
    // Hand-written so the API key (inside the client's config) never prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("base_url", &self.base_url)
            .field("model_id", &self.model_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbedder {
    /// An embedder calling `{base_url}/embeddings` (the base includes `/v1`, e.g.
    /// `https://api.openai.com/v1` or `http://localhost:11434/v1`; a trailing `/` is dropped)
    /// with `Authorization: Bearer {api_key}`, for `model`, whose vectors have `dimensions`
    /// floats and whose window is `max_tokens` tokens.
    ///
    /// Defaults: [`DEFAULT_TIMEOUT`], no `dimensions` field in requests, approximate token
    /// counts (see [`Embedder::count_tokens`]).
    ///
    /// Errors: [`EmbedError::Other`] if the background runtime thread cannot be started.
    pub fn new(
        base_url: &str,
        api_key: &str,
        model: &str,
        dimensions: usize,
        max_tokens: usize,
    ) -> Result<Self, EmbedError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let config = OpenAIConfig::new()
            .with_api_base(base_url.clone())
            .with_api_key(api_key);
        Ok(Self {
            client: Client::with_config(config),
            worker: RuntimeThread::start()?,
            model_id: format!("openai/{model}/{dimensions}"),
            base_url,
            model: model.to_owned(),
            dimensions,
            max_tokens,
            timeout: DEFAULT_TIMEOUT,
            send_dimensions: false,
            tokenizer: None,
        })
    }

    /// Limits each `embed_batch` call, retries included, to `timeout`; past it the call
    /// returns [`EmbedError::Timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `dimensions` in every request, asking the service to shorten its vectors
    /// (supported by OpenAI's `text-embedding-3-*` and by Ollama; rejected by older models such
    /// as `text-embedding-ada-002`, hence off by default).
    pub fn with_requested_dimensions(mut self) -> Self {
        self.send_dimensions = true;
        self
    }

    /// Counts tokens exactly with the Hugging Face `tokenizer.json` at `path` (without special
    /// tokens or truncation) instead of approximately.
    ///
    /// Errors: [`EmbedError::ModelUnavailable`] naming `path` if it cannot be loaded.
    pub fn with_tokenizer(mut self, path: &Path) -> Result<Self, EmbedError> {
        let mut tokenizer = Tokenizer::from_file(path).map_err(|error| {
            EmbedError::ModelUnavailable(format!(
                "tokenizer {} cannot be loaded: {error}",
                path.display()
            ))
        })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|error| EmbedError::Other(error.to_string().into()))?;
        self.tokenizer = Some(tokenizer);
        Ok(self)
    }

    /// Checks the response against the request and returns normalised vectors in input order.
    fn vectors_from(
        &self,
        response: CreateEmbeddingResponse,
        n_texts: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if response.data.len() != n_texts {
            return Err(malformed(format!(
                "{} vectors for {n_texts} inputs",
                response.data.len()
            )));
        }
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; n_texts];
        for item in response.data {
            let index = item.index as usize;
            if item.embedding.len() != self.dimensions {
                return Err(malformed(format!(
                    "vector {index} has {} dimensions; {} are configured for {}",
                    item.embedding.len(),
                    self.dimensions,
                    self.model
                )));
            }
            let slot = vectors
                .get_mut(index)
                .ok_or_else(|| malformed(format!("index {index} out of 0..{n_texts}")))?;
            if slot.is_some() {
                return Err(malformed(format!("index {index} appears twice")));
            }
            let mut vector = item.embedding;
            l2_normalize(&mut vector);
            *slot = Some(vector);
        }
        // n_texts items with distinct indices in 0..n_texts fill every slot.
        Ok(vectors.into_iter().flatten().collect())
    }

    fn map_error(&self, error: OpenAIError) -> EmbedError {
        let endpoint = format!("{}/embeddings", self.base_url);
        match error {
            OpenAIError::ApiError(response) => {
                let status = response.status_code.as_u16();
                let api_error = &response.api_error;
                let is_quota = api_error.r#type.as_deref() == Some("insufficient_quota")
                    || api_error.code.as_deref() == Some("insufficient_quota");
                match status {
                    429 if is_quota => EmbedError::Unavailable(format!(
                        "{endpoint}: quota exhausted (HTTP 429 insufficient_quota)"
                    )),
                    429 => EmbedError::RateLimited { retry_after: None },
                    401 | 403 => EmbedError::Unavailable(format!(
                        "{endpoint} rejected the API key (HTTP {status}): {}",
                        api_error.message
                    )),
                    404 => EmbedError::ModelUnavailable(format!(
                        "{endpoint} does not serve model {:?} (HTTP 404): {}",
                        self.model, api_error.message
                    )),
                    // 5xx bodies are raw text: keep them out of the message (they get logged).
                    500..=599 => EmbedError::Unavailable(format!("{endpoint}: HTTP {status}")),
                    _ => EmbedError::Other(Box::new(response)),
                }
            }
            OpenAIError::Reqwest(error) if error.is_timeout() => EmbedError::Timeout,
            OpenAIError::Reqwest(error) => EmbedError::Unavailable(format!("{endpoint}: {error}")),
            OpenAIError::JSONDeserialize(error, _body) => {
                malformed(format!("not an embeddings response ({error})"))
            }
            other => EmbedError::Other(Box::new(other)),
        }
    }
}

impl Embedder for OpenAiEmbedder {
    /// `openai/{model}/{dimensions}`.
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// One `POST /embeddings` with all `texts` as an array (callers batch; OpenAI accepts up to
    /// 2048 inputs per request). Errors: [`EmbedError::RateLimited`] (429 after the client's
    /// retries), [`EmbedError::Timeout`], [`EmbedError::Unavailable`] (connection refused, 5xx,
    /// bad key, exhausted quota), [`EmbedError::ModelUnavailable`] (404), [`EmbedError::Other`]
    /// (other 4xx, malformed response, wrong vector length).
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut request = CreateEmbeddingRequestArgs::default();
        request.model(self.model.clone()).input(
            texts
                .iter()
                .map(|text| text.to_string())
                .collect::<Vec<_>>(),
        );
        if self.send_dimensions {
            let dimensions = u32::try_from(self.dimensions)
                .map_err(|_| EmbedError::Other("dimensions do not fit in u32".into()))?;
            request.dimensions(dimensions);
        }
        let request = request
            .build()
            .map_err(|error| EmbedError::Other(Box::new(error)))?;
        let client = self.client.clone();
        let timeout = self.timeout;
        let outcome =
            self.worker
                .run(async move {
                    tokio::time::timeout(timeout, client.embeddings().create(request)).await
                })
                .ok_or_else(|| {
                    EmbedError::Unavailable("the embedder's runtime thread has stopped".into())
                })?;
        match outcome {
            Err(_elapsed) => Err(EmbedError::Timeout),
            Ok(Err(error)) => Err(self.map_error(error)),
            Ok(Ok(response)) => self.vectors_from(response, texts.len()),
        }
    }

    /// Exact with a tokenizer ([`OpenAiEmbedder::with_tokenizer`]); otherwise
    /// `ceil(chars / 4)`, OpenAI's rule of thumb for English, which over-counts code and
    /// under-counts languages with long words — keep `max_tokens` conservative.
    fn count_tokens(&self, text: &str) -> usize {
        if let Some(tokenizer) = &self.tokenizer {
            match tokenizer.encode_fast(text, false) {
                Ok(encoding) => return encoding.get_ids().len(),
                Err(error) => {
                    tracing::warn!(error = %error, "token count failed; approximating");
                }
            }
        }
        text.chars().count().div_ceil(CHARS_PER_TOKEN)
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }
}

fn malformed(message: String) -> EmbedError {
    EmbedError::Other(format!("malformed embeddings response: {message}").into())
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A background thread running a tokio current-thread runtime, to which blocking callers hand
/// futures. Jobs run concurrently as tasks; the thread ends when the sender is dropped.
struct RuntimeThread {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl RuntimeThread {
    fn start() -> Result<Self, EmbedError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| EmbedError::Other(Box::new(error)))?;
        let (jobs, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("openai-embedder".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = receiver.recv().await {
                        tokio::spawn(job);
                    }
                });
                // The runtime (and any job still running) is dropped here, on this thread,
                // outside any async context.
            })
            .map_err(|error| EmbedError::Other(Box::new(error)))?;
        Ok(Self { jobs })
    }

    /// Runs `future` on the runtime thread and blocks until it finishes; `None` if the thread
    /// has stopped.
    fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::pin(async move {
            // The receiver only goes away if the caller did, and then nobody wants the result.
            let _ = sender.send(future.await);
        });
        self.jobs.send(job).ok()?;
        receiver.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    fn embeddings_response(vectors: &[(u32, Vec<f32>)]) -> serde_json::Value {
        json!({
            "object": "list",
            "data": vectors.iter().map(|(index, embedding)| json!({
                "object": "embedding",
                "index": index,
                "embedding": embedding,
            })).collect::<Vec<_>>(),
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 5, "total_tokens": 5},
        })
    }

    fn embedder_for(server: &MockServer, dimensions: usize) -> OpenAiEmbedder {
        OpenAiEmbedder::new(
            &format!("{}/v1/", server.uri()),
            "sk-test",
            "text-embedding-3-small",
            dimensions,
            8191,
        )
        .expect("embedder")
    }

    /// Runs the blocking call off the test's runtime, as production code must.
    async fn embed(
        embedder: Arc<OpenAiEmbedder>,
        texts: &'static [&'static str],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        tokio::task::spawn_blocking(move || embedder.embed_batch(texts))
            .await
            .expect("blocking task")
    }

    #[tokio::test]
    async fn returns_normalised_vectors_in_input_order() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/embeddings"))
            .and(header("authorization", "Bearer sk-test"))
            .and(body_json(json!({
                "model": "text-embedding-3-small",
                "input": ["first", "second"],
            })))
            // Out of order and not unit length, as a local server may answer.
            .respond_with(
                ResponseTemplate::new(200).set_body_json(embeddings_response(&[
                    (1, vec![0.0, 2.0]),
                    (0, vec![3.0, 4.0]),
                ])),
            )
            .expect(1)
            .mount(&server)
            .await;
        let embedder = Arc::new(embedder_for(&server, 2));
        let vectors = embed(embedder, &["first", "second"])
            .await
            .expect("vectors");
        assert_eq!(vectors, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
    }

    #[tokio::test]
    async fn sends_dimensions_when_asked() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/embeddings"))
            .and(body_json(json!({
                "model": "text-embedding-3-small",
                "input": ["only"],
                "dimensions": 2,
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(embeddings_response(&[(0, vec![1.0, 0.0])])),
            )
            .expect(1)
            .mount(&server)
            .await;
        let embedder = Arc::new(embedder_for(&server, 2).with_requested_dimensions());
        let vectors = embed(embedder, &["only"]).await.expect("vectors");
        assert_eq!(vectors, vec![vec![1.0, 0.0]]);
    }

    #[tokio::test]
    async fn rate_limit_is_retried_by_the_client_then_reported() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/embeddings"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "0")
                    .set_body_json(json!({"error": {
                        "message": "Rate limit reached for requests",
                        "type": "requests",
                        "param": null,
                        "code": "rate_limit_exceeded",
                    }})),
            )
            // The first attempt and async-openai's 3 retries.
            .expect(4)
            .mount(&server)
            .await;
        let embedder = Arc::new(embedder_for(&server, 2));
        let error = embed(embedder, &["text"]).await.expect_err("429");
        assert!(
            matches!(error, EmbedError::RateLimited { retry_after: None }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn insufficient_quota_is_unavailable_without_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "param": null,
                "code": "insufficient_quota",
            }})))
            .expect(1)
            .mount(&server)
            .await;
        let embedder = Arc::new(embedder_for(&server, 2));
        let error = embed(embedder, &["text"]).await.expect_err("quota");
        let EmbedError::Unavailable(message) = &error else {
            panic!("expected Unavailable, got {error:?}");
        };
        assert!(message.contains("quota"), "{message}");
    }

    #[tokio::test]
    async fn slow_service_times_out() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(embeddings_response(&[(0, vec![1.0, 0.0])]))
                    .set_delay(Duration::from_secs(5)),
            )
            .mount(&server)
            .await;
        let embedder = Arc::new(embedder_for(&server, 2).with_timeout(Duration::from_millis(200)));
        let started = std::time::Instant::now();
        let error = embed(embedder, &["text"]).await.expect_err("timeout");
        assert!(matches!(error, EmbedError::Timeout), "{error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn server_error_is_unavailable_without_the_body() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503).set_body_string("upstream secret detail"))
            .mount(&server)
            .await;
        let embedder = Arc::new(embedder_for(&server, 2));
        let error = embed(embedder, &["text"]).await.expect_err("503");
        let EmbedError::Unavailable(message) = &error else {
            panic!("expected Unavailable, got {error:?}");
        };
        assert!(message.contains("503"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[tokio::test]
    async fn unknown_model_is_model_unavailable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
                "message": "The model `nope` does not exist",
                "type": "invalid_request_error",
                "param": null,
                "code": "model_not_found",
            }})))
            .mount(&server)
            .await;
        let embedder = Arc::new(embedder_for(&server, 2));
        let error = embed(embedder, &["text"]).await.expect_err("404");
        assert!(
            matches!(error, EmbedError::ModelUnavailable(_)),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn wrong_vector_length_or_count_is_rejected() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_json(
                json!({"model": "text-embedding-3-small", "input": ["a"]}),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(embeddings_response(&[(0, vec![1.0, 0.0, 0.0])])),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_json(
                json!({"model": "text-embedding-3-small", "input": ["a", "b"]}),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(embeddings_response(&[(0, vec![1.0, 0.0])])),
            )
            .mount(&server)
            .await;
        let embedder = Arc::new(embedder_for(&server, 2));
        let error = embed(embedder.clone(), &["a"]).await.expect_err("3 dims");
        assert!(error.to_string().contains("3 dimensions"), "{error}");
        let error = embed(embedder, &["a", "b"]).await.expect_err("1 vector");
        assert!(
            error.to_string().contains("1 vectors for 2 inputs"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn missing_usage_is_a_malformed_response() {
        let server = MockServer::start().await;
        let mut body = embeddings_response(&[(0, vec![1.0, 0.0])]);
        body.as_object_mut().expect("object").remove("usage");
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
        let embedder = Arc::new(embedder_for(&server, 2));
        let error = embed(embedder, &["a"]).await.expect_err("no usage");
        assert!(error.to_string().contains("malformed"), "{error}");
    }

    #[test]
    fn refused_connection_is_unavailable() {
        // Bind then free a port so nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let embedder = OpenAiEmbedder::new(
            &format!("http://127.0.0.1:{port}/v1"),
            "sk-test",
            "m",
            2,
            512,
        )
        .expect("embedder");
        // Called from a plain thread with no tokio runtime around it.
        let error = embedder.embed_batch(&["text"]).expect_err("refused");
        assert!(matches!(error, EmbedError::Unavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn dropping_inside_an_async_task_does_not_panic() {
        let embedder =
            OpenAiEmbedder::new("http://127.0.0.1:9/v1", "k", "m", 2, 512).expect("embedder");
        assert!(embedder.embed_batch(&[]).expect("empty batch").is_empty());
        drop(embedder);
    }

    #[test]
    fn approximate_token_count_is_chars_over_four_rounded_up_and_debug_hides_the_key() {
        let embedder = OpenAiEmbedder::new("http://127.0.0.1:9/v1", "sk-secret-key", "m", 2, 512)
            .expect("embedder");
        let cases = [
            ("", 0),
            ("abc", 1),
            ("abcd", 1),
            ("abcde", 2),
            ("héllo wörld", 3),
        ];
        for (text, expected) in cases {
            assert_eq!(embedder.count_tokens(text), expected, "{text:?}");
        }
        assert_eq!(embedder.model_id(), "openai/m/2");
        assert_eq!(embedder.max_tokens(), 512);
        assert!(
            !format!("{embedder:?}").contains("sk-secret"),
            "Debug must hide the key"
        );
    }

    #[test]
    fn tokenizer_gives_exact_counts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tokenizer_path = dir.path().join("tokenizer.json");
        let tokenizer_json = json!({
            "version": "1.0",
            "truncation": {"max_length": 1, "strategy": "LongestFirst", "stride": 0},
            "padding": null,
            "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": null,
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1}, "unk_token": "[UNK]"},
        });
        std::fs::write(&tokenizer_path, tokenizer_json.to_string()).expect("write");
        let embedder = OpenAiEmbedder::new("http://127.0.0.1:9/v1", "k", "m", 2, 512)
            .expect("embedder")
            .with_tokenizer(&tokenizer_path)
            .expect("tokenizer");
        // Whitespace pre-tokenizer splits words and punctuation; the file's truncation at 1
        // token is turned off for counting.
        assert_eq!(embedder.count_tokens("hello there, world"), 4);

        let error = OpenAiEmbedder::new("http://127.0.0.1:9/v1", "k", "m", 2, 512)
            .expect("embedder")
            .with_tokenizer(&dir.path().join("missing.json"))
            .expect_err("missing tokenizer");
        assert!(error.to_string().contains("missing.json"), "{error}");
    }
}
