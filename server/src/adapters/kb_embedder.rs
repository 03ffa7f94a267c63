//! `QueryEmbedder` adapter over the knowledge base's blocking `Embedder`: each call runs on
//! tokio's blocking pool so the model never stalls the runtime.

use crate::adapters::kb_retriever::retrieve_error;
use crate::ports::embedder::QueryEmbedder;
use crate::ports::retriever::RetrieveError;
use frontdesk_kb::embed::SharedEmbedder;

/// The `QueryEmbedder` over a `frontdesk_kb` embedder.
pub struct BlockingQueryEmbedder {
    embedder: SharedEmbedder,
}

impl BlockingQueryEmbedder {
    pub fn new(embedder: SharedEmbedder) -> Self {
        Self { embedder }
    }
}

#[async_trait::async_trait]
impl QueryEmbedder for BlockingQueryEmbedder {
    fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    async fn embed(&self, text: &str) -> Result<Vec<f32>, RetrieveError> {
        let embedder = SharedEmbedder::clone(&self.embedder);
        let text = text.to_string();
        let mut vectors = tokio::task::spawn_blocking(move || embedder.embed_batch(&[&text]))
            .await
            .map_err(|join| RetrieveError::Other(Box::new(join)))?
            .map_err(|err| retrieve_error(frontdesk_kb::index::KbError::Embed(err)))?;
        vectors
            .pop()
            .ok_or_else(|| RetrieveError::Unavailable("the embedder returned no vector".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_kb::embed::{EmbedError, Embedder};
    use std::sync::Arc;

    struct Fixed;
    impl Embedder for Fixed {
        fn model_id(&self) -> &str {
            "fixed"
        }
        fn dimensions(&self) -> usize {
            2
        }
        fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        fn max_tokens(&self) -> usize {
            256
        }
    }

    #[tokio::test]
    async fn embeds_on_the_blocking_pool() {
        let adapter = BlockingQueryEmbedder::new(Arc::new(Fixed));
        assert_eq!(adapter.model_id(), "fixed");
        assert_eq!(
            adapter.embed("hello").await.expect("embeds"),
            vec![1.0, 0.0]
        );
    }
}
