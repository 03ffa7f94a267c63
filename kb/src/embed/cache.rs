//! Embedding cache and a counting embedder wrapper.
//!
//! [`EmbeddingCache`] keeps the vectors already computed for one embedder configuration, keyed by
//! the content hash of the embedded text, so that re-ingesting an unchanged knowledge base makes
//! no embedder call. It lives in one file per model id,
//! `{dir}/embeddings-{sanitised model id}.bin` (bincode 1, varint encoding), replaced
//! atomically (temporary file in the same folder, then rename) on [`EmbeddingCache::save`].
//!
//! [`CountingEmbedder`] wraps any [`SharedEmbedder`] and counts calls and texts, which is how
//! tests prove that a re-ingestion was served from the cache.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use bincode::Options;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{EmbedError, Embedder, SharedEmbedder};

/// Bumped whenever [`CacheFile`]'s layout changes; a file of another version is ignored.
const FORMAT_VERSION: u32 = 1;

/// Errors reading or writing the cache file. A file that exists but cannot be decoded (corrupt,
/// older format, another model id) is not an error: the cache starts empty and the next
/// [`EmbeddingCache::save`] overwrites it.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The file or its folder could not be read, created or replaced.
    #[error("embedding cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cache could not be encoded (should not happen for plain maps of floats).
    #[error("embedding cache {path}: cannot encode: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: bincode::Error,
    },
}

/// On-disk layout (bincode 1, `DefaultOptions`: varint integers, little-endian).
#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    format_version: u32,
    /// The exact model id, so two ids that sanitise to the same file name never mix.
    model_id: String,
    /// Content hash → L2-normalised vector.
    entries: HashMap<String, Vec<f32>>,
}

/// The vectors computed by one embedder configuration (its [`Embedder::model_id`]), keyed by
/// content hash (e.g. [`content_hash`] of the chunk text).
#[derive(Debug)]
pub struct EmbeddingCache {
    path: PathBuf,
    model_id: String,
    entries: HashMap<String, Vec<f32>>,
    /// True once the in-memory entries differ from the file.
    dirty: bool,
}

impl EmbeddingCache {
    /// Opens (or starts) the cache for `model_id` in `dir`, creating `dir` if needed.
    ///
    /// A missing, corrupt or foreign file gives an empty cache (logged at warn level when the
    /// file existed). Errors: [`CacheError::Io`] if `dir` cannot be created or the file exists
    /// but cannot be read.
    pub fn open(dir: &Path, model_id: &str) -> Result<Self, CacheError> {
        std::fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(cache_file_name(model_id));
        let entries = match std::fs::File::open(&path) {
            Ok(file) => read_entries(&path, file, model_id),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        Ok(Self {
            path,
            model_id: model_id.to_owned(),
            entries,
            dirty: false,
        })
    }

    /// The vector cached for `hash`, if any.
    pub fn get(&self, hash: &str) -> Option<&[f32]> {
        self.entries.get(hash).map(Vec::as_slice)
    }

    /// Caches `vector` for `hash`, replacing any earlier one.
    pub fn insert(&mut self, hash: String, vector: Vec<f32>) {
        self.entries.insert(hash, vector);
        self.dirty = true;
    }

    /// Keeps only the entries whose hash `keep` accepts (e.g. the hashes of the chunks still in
    /// the knowledge base), so the file does not grow with every edit.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|hash, _| keep(hash));
        if self.entries.len() != before {
            self.dirty = true;
        }
    }

    /// Writes the cache if it changed since it was opened or last saved: the whole map goes to
    /// a temporary file in the same folder, which is flushed to disk and renamed over the old
    /// file, so a crash leaves either the old or the new cache, never half of one.
    ///
    /// Errors: [`CacheError::Io`] if the folder is not writable or the rename fails.
    pub fn save(&mut self) -> Result<(), CacheError> {
        if !self.dirty && self.path.exists() {
            return Ok(());
        }
        let io_error = |source| CacheError::Io {
            path: self.path.clone(),
            source,
        };
        // `path` was built as `dir.join(name)`, so it has a parent.
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let temp = tempfile::NamedTempFile::new_in(dir).map_err(io_error)?;
        let file = CacheFile {
            format_version: FORMAT_VERSION,
            model_id: self.model_id.clone(),
            entries: std::mem::take(&mut self.entries),
        };
        let mut writer = BufWriter::new(temp.as_file());
        let encoded = bincode_options().serialize_into(&mut writer, &file);
        // Put the entries back before any early return, so a failed save loses nothing.
        self.entries = file.entries;
        encoded.map_err(|source| CacheError::Encode {
            path: self.path.clone(),
            source,
        })?;
        writer.flush().map_err(io_error)?;
        drop(writer);
        temp.as_file().sync_all().map_err(io_error)?;
        temp.persist(&self.path)
            .map_err(|error| io_error(error.error))?;
        self.dirty = false;
        tracing::debug!(
            cache.path = %self.path.display(),
            cache.n_entries = self.entries.len(),
            "saved embedding cache"
        );
        Ok(())
    }

    /// Number of cached vectors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The model id this cache belongs to.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The cache file (which may not exist yet).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Hex SHA-256 of `text` (64 lowercase hex digits): a content hash suitable as a cache key.
pub fn content_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `embeddings-{id}.bin` with every character outside `[A-Za-z0-9._-]` of the model id
/// replaced by `_` (`all-minilm-l6-v2/mean/256` → `embeddings-all-minilm-l6-v2_mean_256.bin`).
fn cache_file_name(model_id: &str) -> String {
    let sanitised: String = model_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("embeddings-{sanitised}.bin")
}

/// The bincode configuration used for both writing and reading the cache file.
fn bincode_options() -> impl bincode::Options {
    bincode::DefaultOptions::new()
}

fn read_entries(path: &Path, file: std::fs::File, model_id: &str) -> HashMap<String, Vec<f32>> {
    // A corrupt length prefix could otherwise ask for an allocation of exabytes: no value in a
    // well-formed file is longer than the file itself.
    let limit = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let decoded: Result<CacheFile, _> = bincode_options()
        .with_limit(limit)
        .deserialize_from(BufReader::new(file));
    match decoded {
        Ok(cache) if cache.format_version == FORMAT_VERSION && cache.model_id == model_id => {
            cache.entries
        }
        Ok(cache) => {
            tracing::warn!(
                cache.path = %path.display(),
                cache.format_version = cache.format_version,
                cache.model_id = %cache.model_id,
                "embedding cache belongs to another format or model; starting empty"
            );
            HashMap::new()
        }
        Err(error) => {
            tracing::warn!(
                cache.path = %path.display(),
                error = %error,
                "embedding cache is unreadable; starting empty"
            );
            HashMap::new()
        }
    }
}

/// An [`Embedder`] that forwards to another and counts what it forwards.
///
/// Used by tests to prove that re-ingesting unchanged content embeds nothing
/// (`n_texts_embedded() == 0`).
pub struct CountingEmbedder {
    inner: SharedEmbedder,
    n_calls: AtomicUsize,
    n_texts: AtomicUsize,
}

impl CountingEmbedder {
    /// Wraps `inner` with both counters at zero.
    pub fn new(inner: SharedEmbedder) -> Self {
        Self {
            inner,
            n_calls: AtomicUsize::new(0),
            n_texts: AtomicUsize::new(0),
        }
    }

    /// Texts passed to `embed_batch` so far (successful or not).
    pub fn n_texts_embedded(&self) -> usize {
        self.n_texts.load(Ordering::SeqCst)
    }

    /// `embed_batch` calls so far, empty batches included.
    pub fn n_calls(&self) -> usize {
        self.n_calls.load(Ordering::SeqCst)
    }

    /// Sets both counters back to zero.
    pub fn reset(&self) {
        self.n_calls.store(0, Ordering::SeqCst);
        self.n_texts.store(0, Ordering::SeqCst);
    }
}

impl Embedder for CountingEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.n_calls.fetch_add(1, Ordering::SeqCst);
        self.n_texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.embed_batch(texts)
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }

    fn max_tokens(&self) -> usize {
        self.inner.max_tokens()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const MODEL_ID: &str = "all-minilm-l6-v2/mean/256";

    /// Deterministic stand-in: the vector is [byte length, word count], normalised.
    struct LengthEmbedder;

    impl Embedder for LengthEmbedder {
        fn model_id(&self) -> &str {
            "length/2"
        }
        fn dimensions(&self) -> usize {
            2
        }
        fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            Ok(texts
                .iter()
                .map(|text| {
                    let mut vector =
                        vec![text.len() as f32, text.split_whitespace().count() as f32];
                    super::super::l2_normalize(&mut vector);
                    vector
                })
                .collect())
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        fn max_tokens(&self) -> usize {
            7
        }
    }

    #[test]
    fn file_name_is_sanitised_model_id() {
        let cases = [
            (
                "all-minilm-l6-v2/mean/256",
                "embeddings-all-minilm-l6-v2_mean_256.bin",
            ),
            (
                "openai/text-embedding-3-small/1536",
                "embeddings-openai_text-embedding-3-small_1536.bin",
            ),
            ("a b:c\\d", "embeddings-a_b_c_d.bin"),
            ("v1.5_x", "embeddings-v1.5_x.bin"),
        ];
        for (model_id, expected) in cases {
            assert_eq!(cache_file_name(model_id), expected, "{model_id}");
        }
    }

    #[test]
    fn content_hash_is_hex_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            content_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn saved_entries_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = EmbeddingCache::open(dir.path(), MODEL_ID).expect("open");
        assert!(cache.is_empty());
        cache.insert("h1".into(), vec![0.6, 0.8]);
        cache.insert("h2".into(), vec![1.0, 0.0]);
        cache.insert("h1".into(), vec![0.0, 1.0]); // replaces
        cache.save().expect("save");
        assert_eq!(
            cache.path(),
            dir.path().join("embeddings-all-minilm-l6-v2_mean_256.bin")
        );

        let reopened = EmbeddingCache::open(dir.path(), MODEL_ID).expect("reopen");
        assert_eq!(reopened.len(), 2);
        assert_eq!(reopened.get("h1"), Some(&[0.0, 1.0][..]));
        assert_eq!(reopened.get("h2"), Some(&[1.0, 0.0][..]));
        assert_eq!(reopened.get("h3"), None);
        assert_eq!(reopened.model_id(), MODEL_ID);
    }

    #[test]
    fn retain_drops_entries_and_save_persists_the_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = EmbeddingCache::open(dir.path(), MODEL_ID).expect("open");
        for (hash, x) in [("keep-1", 1.0), ("drop-1", 2.0), ("keep-2", 3.0)] {
            cache.insert(hash.into(), vec![x]);
        }
        cache.save().expect("save");
        cache.retain(|hash| hash.starts_with("keep"));
        assert_eq!(cache.len(), 2);
        cache.save().expect("save after retain");

        let reopened = EmbeddingCache::open(dir.path(), MODEL_ID).expect("reopen");
        let mut hashes: Vec<&str> = reopened.entries.keys().map(String::as_str).collect();
        hashes.sort_unstable();
        assert_eq!(hashes, ["keep-1", "keep-2"]);
    }

    #[test]
    fn models_do_not_share_entries() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut minilm = EmbeddingCache::open(dir.path(), MODEL_ID).expect("open");
        minilm.insert("h".into(), vec![1.0]);
        minilm.save().expect("save");
        // Different model id in the same folder: a different file.
        let other = EmbeddingCache::open(dir.path(), "all-minilm-l6-v2/mean/128").expect("open");
        assert!(other.is_empty());
        // A model id that sanitises to the same file name: the stored id tells them apart.
        let colliding =
            EmbeddingCache::open(dir.path(), "all-minilm-l6-v2:mean:256").expect("open");
        assert_eq!(colliding.path(), minilm.path());
        assert!(colliding.is_empty());
    }

    #[test]
    fn corrupt_file_gives_empty_cache_that_save_repairs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(cache_file_name(MODEL_ID));
        std::fs::write(&path, b"\xff\xff\xff\xff not bincode").expect("write junk");
        let mut cache = EmbeddingCache::open(dir.path(), MODEL_ID).expect("open");
        assert!(cache.is_empty());
        cache.insert("h".into(), vec![0.5]);
        cache.save().expect("save");
        let reopened = EmbeddingCache::open(dir.path(), MODEL_ID).expect("reopen");
        assert_eq!(reopened.get("h"), Some(&[0.5][..]));
    }

    #[test]
    fn save_creates_the_file_even_when_empty_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = EmbeddingCache::open(&dir.path().join("nested"), MODEL_ID).expect("open");
        cache.save().expect("save");
        cache.insert("h".into(), vec![1.0]);
        cache.save().expect("save again");
        let names: Vec<String> = std::fs::read_dir(dir.path().join("nested"))
            .expect("read dir")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["embeddings-all-minilm-l6-v2_mean_256.bin"]);
    }

    #[test]
    fn counting_embedder_counts_calls_and_texts_and_forwards_results() {
        let counting = CountingEmbedder::new(Arc::new(LengthEmbedder));
        assert_eq!((counting.n_calls(), counting.n_texts_embedded()), (0, 0));
        let vectors = counting.embed_batch(&["one two", "three"]).expect("embed");
        assert_eq!(
            vectors,
            LengthEmbedder
                .embed_batch(&["one two", "three"])
                .expect("embed")
        );
        counting.embed_batch(&[]).expect("embed nothing");
        assert_eq!((counting.n_calls(), counting.n_texts_embedded()), (2, 2));
        assert_eq!(counting.model_id(), "length/2");
        assert_eq!(counting.dimensions(), 2);
        assert_eq!(counting.count_tokens("a b c"), 3);
        assert_eq!(counting.max_tokens(), 7);
        counting.reset();
        assert_eq!((counting.n_calls(), counting.n_texts_embedded()), (0, 0));
    }
}
