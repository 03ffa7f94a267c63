//! all-MiniLM-L6-v2 sentence embeddings on candle (CPU, f32).
//!
//! The model is sentence-transformers' `all-MiniLM-L6-v2`: a 6-layer BERT encoder (hidden size
//! 384, 12 heads, exact-erf GELU) followed by mean pooling over the attention mask and L2
//! normalisation, as its `modules.json` (Transformer → Pooling(mean) → Normalize) prescribes.
//! The encoder is `candle_transformers::models::bert::BertModel`; pooling and normalisation
//! are done here.
//!
//! Files (filled by `scripts/fetch-models` into `$FRONTDESK_MODELS/all-minilm-l6-v2/`):
//! `model.safetensors`, `config.json`, `tokenizer.json`.
//!
//! Tokenisation: the shipped `tokenizer.json` pads *and* truncates every text at 128 tokens.
//! Both are overridden at load time: truncation at `max_tokens` (256, the model's
//! `max_seq_length` in `sentence_bert_config.json`), no padding per text; a sub-batch is padded
//! to its own longest text and the padding is masked out of attention and pooling, so a text
//! gets the same vector alone or in a batch.
//!
//! Correctness is checked against an independent numpy implementation
//! (`kb/tests/reference/make_reference.py`, test `kb/tests/embedder_reference.rs`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationParams};

use super::{EmbedError, Embedder, l2_normalize};

/// Default texts per forward pass ([`MiniLmEmbedder::with_sub_batch_size`]). Texts are sorted
/// by length before being cut into sub-batches, so each sub-batch pads little. Measured on
/// 250-token texts (2 cores): 8 and 16 embed ~2.5 texts per CPU-second, 32 only ~2.1 (more
/// time in page faults for its larger tensors); 16 keeps the attention scores of a 256-token
/// sub-batch at 16 × 12 heads × 256² × 4 bytes ≈ 50 MB and leaves several sub-batches to run in
/// parallel.
pub const DEFAULT_SUB_BATCH_SIZE: usize = 16;

/// The files `scripts/fetch-models` puts in the model folder.
const MODEL_FILES: [&str; 3] = ["model.safetensors", "config.json", "tokenizer.json"];

/// all-MiniLM-L6-v2 on candle's CPU backend.
///
/// `Send + Sync` without a lock: the encoder's weights are immutable tensors and the forward
/// pass takes `&self`, so concurrent `embed_batch` calls run side by side. All the parallel work
/// (sub-batches, candle's matrix products, batch tokenisation) runs on rayon's global pool.
pub struct MiniLmEmbedder {
    model: BertModel,
    /// Truncates at `max_tokens`, never pads: what the model sees.
    tokenizer: Tokenizer,
    /// Neither truncates nor pads: what [`Embedder::count_tokens`] counts.
    counting_tokenizer: Tokenizer,
    device: Device,
    model_id: String,
    max_tokens: usize,
    dimensions: usize,
    pad_token_id: u32,
    sub_batch_size: usize,
}

impl std::fmt::Debug for MiniLmEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLmEmbedder")
            .field("model_id", &self.model_id)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

impl MiniLmEmbedder {
    /// Loads the model from `model_dir` (containing `model.safetensors`, `config.json`,
    /// `tokenizer.json`), truncating texts at `max_tokens` tokens, special tokens included
    /// (use 256, the window all-MiniLM-L6-v2 was trained with).
    ///
    /// Errors: [`EmbedError::ModelUnavailable`] if the folder or a file is missing or
    /// unreadable (the message names the path and says to run `scripts/fetch-models`);
    /// [`EmbedError::Other`] if `max_tokens` is below 3 or beyond the model's position
    /// embeddings (512).
    pub fn load(model_dir: &Path, max_tokens: usize) -> Result<Self, EmbedError> {
        for file in MODEL_FILES {
            let path = model_dir.join(file);
            if !path.is_file() {
                return Err(unavailable(&path, "is missing"));
            }
        }
        let config_path = model_dir.join("config.json");
        let config_text = std::fs::read_to_string(&config_path)
            .map_err(|error| unavailable(&config_path, &format!("is unreadable ({error})")))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|error| {
            unavailable(&config_path, &format!("is not a BERT config ({error})"))
        })?;
        // [CLS] and [SEP] take two positions; a window without room for one word piece is a
        // configuration mistake.
        if max_tokens < 3 || max_tokens > config.max_position_embeddings {
            return Err(other(format!(
                "max_tokens = {max_tokens} is outside 3..={} for {}",
                config.max_position_embeddings,
                model_dir.display()
            )));
        }

        let device = Device::Cpu;
        let weights_path = model_dir.join("model.safetensors");
        // Reads the weights into memory (~90 MB): memory-mapping needs `unsafe`, which the
        // workspace forbids.
        let tensors = candle_core::safetensors::load(&weights_path, &device)
            .map_err(|error| unavailable(&weights_path, &format!("is unreadable ({error})")))?;
        let var_builder = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(var_builder, &config).map_err(|error| {
            unavailable(
                &weights_path,
                &format!("does not hold a BERT model ({error})"),
            )
        })?;

        let tokenizer_path = model_dir.join("tokenizer.json");
        let mut counting_tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|error| unavailable(&tokenizer_path, &format!("is unreadable ({error})")))?;
        counting_tokenizer.with_padding(None);
        counting_tokenizer
            .with_truncation(None)
            .map_err(|error| other(format!("cannot turn truncation off: {error}")))?;
        let mut tokenizer = counting_tokenizer.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|error| other(format!("cannot truncate at {max_tokens} tokens: {error}")))?;

        let pad_token_id = u32::try_from(config.pad_token_id)
            .map_err(|_| other(format!("pad_token_id {} is too large", config.pad_token_id)))?;
        tracing::debug!(
            model.dir = %model_dir.display(),
            model.max_tokens = max_tokens,
            model.dimensions = config.hidden_size,
            "loaded all-MiniLM-L6-v2"
        );
        Ok(Self {
            model,
            tokenizer,
            counting_tokenizer,
            device,
            model_id: format!("all-minilm-l6-v2/mean/{max_tokens}"),
            max_tokens,
            dimensions: config.hidden_size,
            pad_token_id,
            sub_batch_size: DEFAULT_SUB_BATCH_SIZE,
        })
    }

    /// Sets how many texts go through the encoder together (at least 1; default
    /// [`DEFAULT_SUB_BATCH_SIZE`]). Larger sub-batches make bigger matrix products but pad more.
    pub fn with_sub_batch_size(mut self, sub_batch_size: usize) -> Self {
        self.sub_batch_size = sub_batch_size.max(1);
        self
    }

    /// Runs one padded sub-batch through the encoder; returns one L2-normalised vector per
    /// encoding, in the order given.
    fn embed_sub_batch(
        &self,
        encodings: &[&tokenizers::Encoding],
    ) -> Result<Vec<Vec<f32>>, candle_core::Error> {
        let n_texts = encodings.len();
        let max_len = encodings
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0);
        let mut ids = Vec::with_capacity(n_texts * max_len);
        let mut type_ids = Vec::with_capacity(n_texts * max_len);
        let mut mask = Vec::with_capacity(n_texts * max_len);
        for encoding in encodings {
            let len = encoding.get_ids().len();
            ids.extend_from_slice(encoding.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_token_id, max_len - len));
            type_ids.extend_from_slice(encoding.get_type_ids());
            type_ids.extend(std::iter::repeat_n(0u32, max_len - len));
            mask.extend(std::iter::repeat_n(1u32, len));
            mask.extend(std::iter::repeat_n(0u32, max_len - len));
        }
        let ids = Tensor::from_vec(ids, (n_texts, max_len), &self.device)?;
        let type_ids = Tensor::from_vec(type_ids, (n_texts, max_len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n_texts, max_len), &self.device)?;

        // [n_texts, max_len, hidden]
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        // Mean over the real tokens only (sentence-transformers `Pooling`, mean mode).
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // [n, len, 1]
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // [n, hidden]
        let counts = mask.sum(1)?; // [n, 1], ≥ 2 ([CLS] and [SEP])
        let pooled = summed.broadcast_div(&counts)?;
        let mut vectors = pooled.to_vec2::<f32>()?;
        vectors.iter_mut().for_each(|vector| l2_normalize(vector));
        Ok(vectors)
    }
}

impl Embedder for MiniLmEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Tokenises all texts (in parallel), sorts them by length, runs sub-batches of
    /// `sub_batch_size` and returns the vectors in input order. Texts longer than
    /// `max_tokens` are truncated (the chunker keeps chunks inside the window).
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|error| other(format!("tokenisation failed: {error}")))?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&index| encodings[index].get_ids().len());

        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        let chunks: Vec<&[usize]> = order.chunks(self.sub_batch_size).collect();
        let run = |indices: &&[usize]| {
            let sub_batch: Vec<&tokenizers::Encoding> =
                indices.iter().map(|&index| &encodings[index]).collect();
            self.embed_sub_batch(&sub_batch)
        };
        // Sub-batches run on rayon's global pool. candle parallelises only its matrix
        // products (on the same pool); its element-wise ops (GELU, softmax, layer norm, strided
        // copies: about half the time) are single-threaded, so running sub-batches side by side
        // is what keeps every core busy during a large ingestion.
        let results: Vec<Result<Vec<Vec<f32>>, candle_core::Error>> =
            chunks.par_iter().map(run).collect();
        for (indices, sub_vectors) in chunks.iter().zip(results) {
            let sub_vectors = sub_vectors.map_err(|error| EmbedError::Other(Box::new(error)))?;
            for (&index, vector) in indices.iter().zip(sub_vectors) {
                vectors[index] = vector;
            }
        }
        Ok(vectors)
    }

    /// Word pieces of `text` without `[CLS]`/`[SEP]` and without truncation (a text of 300
    /// word pieces counts 300 even though the model only reads the first 254).
    fn count_tokens(&self, text: &str) -> usize {
        match self.counting_tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding.get_ids().len(),
            Err(error) => {
                // The BERT word-piece pipeline has no failing step for a `&str`; if it ever
                // fails, over-count (one token per byte) so the chunker splits, never overflows.
                tracing::warn!(error = %error, "token count failed; counting bytes instead");
                text.len()
            }
        }
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }
}

fn unavailable(path: &Path, problem: &str) -> EmbedError {
    let path: PathBuf = path.to_path_buf();
    EmbedError::ModelUnavailable(format!(
        "{} {problem}; run `scripts/fetch-models` to download all-MiniLM-L6-v2 into \
         $FRONTDESK_MODELS/all-minilm-l6-v2 (default ~/.cache/frontdesk/models/all-minilm-l6-v2)",
        path.display()
    ))
}

fn other(message: String) -> EmbedError {
    EmbedError::Other(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folder_is_model_unavailable_naming_path_and_fix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("all-minilm-l6-v2");
        let error = MiniLmEmbedder::load(&missing, 256).expect_err("no model there");
        let EmbedError::ModelUnavailable(message) = &error else {
            panic!("expected ModelUnavailable, got {error:?}");
        };
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
        assert!(message.contains("scripts/fetch-models"), "{message}");
    }

    #[test]
    fn folder_without_weights_names_the_missing_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.json"), "{}").expect("write config");
        std::fs::write(dir.path().join("tokenizer.json"), "{}").expect("write tokenizer");
        let error = MiniLmEmbedder::load(dir.path(), 256).expect_err("no weights");
        let EmbedError::ModelUnavailable(message) = &error else {
            panic!("expected ModelUnavailable, got {error:?}");
        };
        assert!(message.contains("model.safetensors"), "{message}");
    }

    #[test]
    fn embedder_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MiniLmEmbedder>();
    }
}
