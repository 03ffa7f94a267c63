//! The embedded knowledge base: documents, chunks, a tantivy BM25 index and an exact-cosine
//! vector index persisted under one data directory, searched with hybrid fusion.
//!
//! On disk (`kb.data_dir`):
//! - `state.bin`   documents and chunks (bincode), with the chunker version and model id;
//! - `embeddings/` the embedding cache, keyed by model id and chunk content hash;
//! - `keyword/`    the tantivy index (its writer lock makes ingestion single-process).
//!
//! Opening an existing directory re-embeds nothing: vectors come from the cache.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::chunk;
use crate::confidence::{ConfidenceFeatures, ConfidenceModel};
use crate::document::{Chunk, Document, DocumentId, SourceKind, content_hash};
use crate::embed::cache::EmbeddingCache;
use crate::embed::{EmbedError, SharedEmbedder};
use crate::fusion::{ArticleEvidence, FusionParams};
use crate::ingest::{self, IngestProblem, LoadOptions};
use crate::keyword::{KeywordDoc, KeywordError, KeywordFilter, KeywordIndex};
use crate::vector::{VectorIndex, dot};

/// Version of the chunker and of the stored state; bump when chunk text or ids change.
pub const STATE_VERSION: u32 = 1;
/// Texts per embedder call during ingestion.
const EMBED_BATCH: usize = 64;

/// Errors of the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error(transparent)]
    Keyword(#[from] KeywordError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("ingestion failed: {0}")]
    Ingest(String),
    #[error("the knowledge base was opened read-only")]
    ReadOnly,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> KbError {
    KbError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// How to open a knowledge base.
#[derive(Debug, Clone)]
pub struct KbSettings {
    pub data_dir: PathBuf,
    /// Take the index writer (ingestion). Read-only handles can search while a server runs.
    pub writable: bool,
    pub fusion: FusionParams,
}

/// One search.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    /// The visitor's text.
    pub query: &'a str,
    /// The query's embedding when the caller already computed it (one embedding per turn);
    /// `None` → the knowledge base embeds the query itself (if it has an embedder).
    pub query_vector: Option<&'a [f32]>,
    /// Site (tenant) whose documents are searched.
    pub site: &'a str,
    /// Number of articles to return.
    pub k: usize,
    /// 0 = keyword only, 1 = semantic only; `None` = the configured default.
    pub semantic_ratio: Option<f32>,
    /// Only documents carrying every one of these tags.
    pub tags: &'a [String],
    /// Include internal documents (past tickets): they can inform an answer but are never cited.
    pub include_internal: bool,
}

impl<'a> SearchRequest<'a> {
    /// A request with defaults: k = 5, configured ratio, no tags, no internal documents.
    pub fn new(query: &'a str, site: &'a str) -> Self {
        Self {
            query,
            query_vector: None,
            site,
            k: 5,
            semantic_ratio: None,
            tags: &[],
            include_internal: false,
        }
    }
}

/// Article-level results, best first, with the calibrated confidence of the top one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResult {
    pub hits: Vec<ArticleHit>,
    /// Calibrated probability (0..1) that the top article answers the query (0 when no hit).
    pub confidence: f32,
    /// True when no embedder is configured and only BM25 ran.
    pub keyword_only: bool,
    /// Whether the keyword and semantic rankings agree on the top article.
    pub rankings_agree: bool,
}

/// One article in a result, with its best passages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArticleHit {
    pub document_id: DocumentId,
    pub title: String,
    pub url: Option<String>,
    pub internal: bool,
    /// Article keyword score: BM25 of its best chunk (raw, unnormalised; 0 if not retrieved).
    pub keyword_score: f32,
    /// Article semantic score: cosine of its best chunk (−1..1; 0 when keyword-only).
    pub semantic_score: f32,
    /// Fused score used for ranking (0..1).
    pub fused_score: f32,
    /// The article's best chunks, best first (the first is the one shown).
    pub passages: Vec<Passage>,
}

/// A chunk as returned in a search result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Passage {
    pub chunk_id: String,
    pub heading_path: Vec<String>,
    pub text: String,
    pub keyword_score: f32,
    pub semantic_score: f32,
    pub fused_score: f32,
}

/// What an ingestion changed, counted exactly.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub site: String,
    pub source: String,
    pub documents_added: usize,
    pub documents_updated: usize,
    pub documents_deleted: usize,
    pub documents_unchanged: usize,
    pub chunks_added: usize,
    pub chunks_updated: usize,
    pub chunks_deleted: usize,
    pub chunks_unchanged: usize,
    /// Texts sent to the embedder (chunks and article vectors not found in the cache).
    pub texts_embedded: usize,
    pub files_seen: usize,
    pub files_skipped: usize,
    pub problems: Vec<IngestProblem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredDocument {
    document: Document,
    /// Canonical source path it was ingested from (deletions are scoped to it).
    source: String,
    /// Hash of `title. description`: the article vector's cache key.
    article_hash: String,
    chunks: Vec<Chunk>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredChunk {
    site: String,
    chunk: Chunk,
    tags: Vec<String>,
    internal: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PersistedState {
    version: u32,
    model_id: String,
    /// Site → document id → document.
    documents: BTreeMap<String, BTreeMap<String, StoredDocument>>,
}

/// In-memory view rebuilt from [`PersistedState`] and the embedding cache.
#[derive(Default)]
struct Loaded {
    persisted: PersistedState,
    chunks: Vec<StoredChunk>,
    /// `{site}\u{1f}{chunk id}` → position in `chunks`.
    chunk_by_key: HashMap<String, u32>,
    /// Chunk position → its row in `vectors` (None when it has no vector).
    row_of: Vec<Option<u32>>,
    /// `{site}\u{1f}{document id}` → positions of its chunks.
    document_chunks: HashMap<String, Vec<u32>>,
    sites: Vec<String>,
    vectors: Option<VectorIndex>,
    /// `{site}\u{1f}{document id}` → article vector.
    article_vectors: HashMap<String, Vec<f32>>,
}

fn key(site: &str, id: &str) -> String {
    format!("{site}\u{1f}{id}")
}

/// The embedded knowledge base.
pub struct KnowledgeBase {
    settings: KbSettings,
    embedder: Option<SharedEmbedder>,
    keyword: KeywordIndex,
    cache: RwLock<EmbeddingCache>,
    loaded: RwLock<Loaded>,
    confidence: ConfidenceModel,
}

impl KnowledgeBase {
    /// Opens (or creates) a knowledge base in `settings.data_dir`. Without an embedder the
    /// knowledge base is keyword-only (callers log one warning).
    pub fn open(settings: KbSettings, embedder: Option<SharedEmbedder>) -> Result<Self, KbError> {
        let dir = &settings.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let keyword = KeywordIndex::open(&dir.join("keyword"), settings.writable)?;
        let model_id = embedder
            .as_ref()
            .map_or("none".to_string(), |e| e.model_id().to_string());
        let cache = EmbeddingCache::open(&dir.join("embeddings"), &model_id)
            .map_err(|e| io_error(&dir.join("embeddings"), e))?;
        let persisted = match std::fs::read(dir.join("state.bin")) {
            Ok(bytes) => match bincode::deserialize::<PersistedState>(&bytes) {
                Ok(state) if state.version == STATE_VERSION => state,
                // An older layout is rebuilt by the next ingestion; nothing to search until then.
                _ => PersistedState::default(),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PersistedState::default(),
            Err(e) => return Err(io_error(&dir.join("state.bin"), e)),
        };
        let confidence = if embedder.is_some() {
            ConfidenceModel::embedded_default()
        } else {
            ConfidenceModel::keyword_only_default()
        };
        let kb = Self {
            settings,
            embedder,
            keyword,
            cache: RwLock::new(cache),
            loaded: RwLock::new(Loaded::default()),
            confidence,
        };
        let loaded = kb.build_loaded(persisted);
        *kb.loaded.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(kb)
    }

    /// The embedder, if any.
    pub fn embedder(&self) -> Option<&SharedEmbedder> {
        self.embedder.as_ref()
    }

    /// Replaces the confidence model (e.g. one fitted by `frontdesk eval calibrate`).
    pub fn set_confidence_model(&mut self, model: ConfidenceModel) {
        self.confidence = model;
    }

    pub fn confidence_model(&self) -> &ConfidenceModel {
        &self.confidence
    }

    pub fn fusion(&self) -> &FusionParams {
        &self.settings.fusion
    }

    pub fn set_fusion(&mut self, fusion: FusionParams) {
        self.settings.fusion = fusion;
    }

    /// Number of documents and chunks of a site.
    pub fn counts(&self, site: &str) -> (usize, usize) {
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        let docs = loaded
            .persisted
            .documents
            .get(site)
            .map_or(0, BTreeMap::len);
        let chunks = loaded.chunks.iter().filter(|c| c.site == site).count();
        (docs, chunks)
    }

    /// A document by id, if the site has it.
    pub fn document(&self, site: &str, id: &str) -> Option<Document> {
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        loaded
            .persisted
            .documents
            .get(site)?
            .get(id)
            .map(|d| d.document.clone())
    }

    fn build_loaded(&self, persisted: PersistedState) -> Loaded {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let mut loaded = Loaded {
            persisted,
            ..Default::default()
        };
        let dims = self.embedder.as_ref().map(|e| e.dimensions());
        let mut vectors = dims.map(VectorIndex::new);
        for (site, documents) in &loaded.persisted.documents {
            let site_no = loaded.sites.len() as u32;
            loaded.sites.push(site.clone());
            for stored in documents.values() {
                if let Some(v) = cache.get(&stored.article_hash) {
                    loaded
                        .article_vectors
                        .insert(key(site, stored.document.id.as_str()), v.to_vec());
                }
                let document_key = key(site, stored.document.id.as_str());
                for chunk in stored.chunks.iter().cloned() {
                    let position = loaded.chunks.len() as u32;
                    let mut row = None;
                    if let (Some(index), Some(v)) =
                        (vectors.as_mut(), cache.get(&chunk.content_hash))
                    {
                        if v.len() == index.dimensions() {
                            row = Some(index.len() as u32);
                            index.push(position, site_no, stored.document.internal, v);
                        }
                    }
                    loaded.row_of.push(row);
                    loaded
                        .document_chunks
                        .entry(document_key.clone())
                        .or_default()
                        .push(position);
                    loaded.chunk_by_key.insert(key(site, &chunk.id), position);
                    loaded.chunks.push(StoredChunk {
                        site: site.clone(),
                        chunk,
                        tags: stored.document.tags.clone(),
                        internal: stored.document.internal,
                    });
                }
            }
        }
        loaded.vectors = vectors;
        loaded
    }

    /// Ingests a folder or file for `site`: loads and cleans documents, chunks them, embeds
    /// only texts not in the cache, updates both indexes and persists the state. Documents
    /// previously ingested from the same `path` and now gone are deleted.
    ///
    /// Blocking and CPU-heavy: call from `spawn_blocking` or a CLI thread.
    pub fn ingest_path(
        &self,
        path: &Path,
        site: &str,
        options: &LoadOptions,
    ) -> Result<IngestReport, KbError> {
        if !self.settings.writable {
            return Err(KbError::ReadOnly);
        }
        let source = std::fs::canonicalize(path).map_err(|e| io_error(path, e))?;
        let source_str = source.display().to_string();
        let output =
            ingest::load_path(&source, options).map_err(|e| KbError::Ingest(e.to_string()))?;
        let mut report = IngestReport {
            site: site.to_string(),
            source: source_str.clone(),
            files_seen: output.n_files_seen,
            files_skipped: output.n_files_skipped,
            problems: output.problems,
            ..Default::default()
        };
        self.apply_documents(site, &source_str, output.documents, &mut report)?;
        Ok(report)
    }

    /// Replaces the documents of (`site`, `source`) with `documents` (the diff is computed on
    /// chunk ids and content hashes) and persists the result.
    pub fn apply_documents(
        &self,
        site: &str,
        source: &str,
        documents: Vec<Document>,
        report: &mut IngestReport,
    ) -> Result<(), KbError> {
        let max_tokens = self.embedder.as_ref().map_or(256, |e| e.max_tokens());
        let embedder = self.embedder.clone();
        let count = |text: &str| match &embedder {
            Some(e) => e.count_tokens(text),
            None => chunk::approx_word_pieces(text),
        };

        let mut persisted = self
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .persisted
            .clone();
        persisted.version = STATE_VERSION;
        persisted.model_id = embedder
            .as_ref()
            .map_or("none".into(), |e| e.model_id().to_string());
        let old_site = persisted.documents.remove(site).unwrap_or_default();

        // Old chunks of this source, by id → hash.
        let mut old_chunks: HashMap<String, String> = HashMap::new();
        let mut kept_other_sources = BTreeMap::new();
        for (id, stored) in old_site {
            if stored.source == source {
                for c in &stored.chunks {
                    old_chunks.insert(c.id.clone(), c.content_hash.clone());
                }
                old_chunks.insert(
                    format!("\u{0}doc\u{0}{id}"),
                    document_fingerprint(&stored.document),
                );
            } else {
                kept_other_sources.insert(id, stored);
            }
        }

        let mut new_site = kept_other_sources;
        let mut upserts: Vec<(Chunk, Vec<String>, bool)> = Vec::new();
        let mut to_embed: Vec<(String, String)> = Vec::new(); // (hash, text)
        let mut seen_chunk_ids = HashSet::new();
        let mut seen_doc_ids = HashSet::new();
        for document in documents {
            let doc_id = document.id.as_str().to_string();
            if new_site.contains_key(&doc_id) {
                report.problems.push(IngestProblem::new(
                    Path::new(&doc_id),
                    None,
                    "a document with this id was already ingested from another source; kept the earlier one",
                ));
                continue;
            }
            seen_doc_ids.insert(doc_id.clone());
            let chunks = chunk::chunk_document(&document, &count, max_tokens);
            let doc_key = format!("\u{0}doc\u{0}{doc_id}");
            let doc_changed = match old_chunks.get(&doc_key) {
                None => {
                    report.documents_added += 1;
                    true
                }
                Some(old) if *old != document_fingerprint(&document) => {
                    report.documents_updated += 1;
                    true
                }
                Some(_) => false,
            };
            let mut any_chunk_changed = false;
            for c in &chunks {
                seen_chunk_ids.insert(c.id.clone());
                match old_chunks.get(&c.id) {
                    None => {
                        report.chunks_added += 1;
                        any_chunk_changed = true;
                        upserts.push((c.clone(), document.tags.clone(), document.internal));
                    }
                    Some(hash) if *hash != c.content_hash => {
                        report.chunks_updated += 1;
                        any_chunk_changed = true;
                        upserts.push((c.clone(), document.tags.clone(), document.internal));
                    }
                    Some(_) => {
                        report.chunks_unchanged += 1;
                        if doc_changed {
                            // Tags or visibility may have changed: re-index without re-embedding.
                            upserts.push((c.clone(), document.tags.clone(), document.internal));
                        }
                    }
                }
                to_embed.push((c.content_hash.clone(), c.embedding_text.clone()));
            }
            if !doc_changed && old_chunks.contains_key(&doc_key) {
                if any_chunk_changed {
                    report.documents_updated += 1;
                } else {
                    report.documents_unchanged += 1;
                }
            }
            let article_text = article_text(&document);
            let article_hash = content_hash(&article_text);
            to_embed.push((article_hash.clone(), article_text));
            new_site.insert(
                doc_id,
                StoredDocument {
                    chunks,
                    document,
                    source: source.to_string(),
                    article_hash,
                },
            );
        }
        let deleted_chunks: Vec<String> = old_chunks
            .keys()
            .filter(|id| !id.starts_with('\u{0}') && !seen_chunk_ids.contains(*id))
            .cloned()
            .collect();
        report.chunks_deleted = deleted_chunks.len();
        report.documents_deleted = old_chunks
            .keys()
            .filter_map(|k| k.strip_prefix("\u{0}doc\u{0}"))
            .filter(|id| !seen_doc_ids.contains(*id))
            .count();

        // Embed what the cache lacks, in batches.
        if let Some(embedder) = &embedder {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            let mut missing: Vec<(String, String)> = Vec::new();
            let mut queued = HashSet::new();
            for (hash, text) in to_embed {
                if cache.get(&hash).is_none() && queued.insert(hash.clone()) {
                    missing.push((hash, text));
                }
            }
            for batch in missing.chunks(EMBED_BATCH) {
                let texts: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
                let vectors = embedder.embed_batch(&texts)?;
                for ((hash, _), vector) in batch.iter().zip(vectors) {
                    cache.insert(hash.clone(), vector);
                }
                report.texts_embedded += batch.len();
            }
            let live: HashSet<String> = persisted
                .documents
                .values()
                .flat_map(|docs| docs.values())
                .chain(new_site.values())
                .flat_map(|d| {
                    d.chunks
                        .iter()
                        .map(|c| c.content_hash.clone())
                        .chain(std::iter::once(d.article_hash.clone()))
                })
                .collect();
            cache.retain(|hash| live.contains(hash));
            cache
                .save()
                .map_err(|e| io_error(&self.settings.data_dir.join("embeddings"), e))?;
        }

        // Keyword index.
        let removed_keys: Vec<String> = deleted_chunks.iter().map(|id| key(site, id)).collect();
        let upsert_keys: Vec<String> = upserts.iter().map(|(c, _, _)| key(site, &c.id)).collect();
        let docs: Vec<KeywordDoc<'_>> = upserts
            .iter()
            .zip(&upsert_keys)
            .map(|((c, tags, internal), k)| KeywordDoc {
                chunk_id: k,
                site,
                tags,
                internal: *internal,
                text: &c.embedding_text,
            })
            .collect();
        let removed: Vec<&str> = removed_keys.iter().map(String::as_str).collect();
        if !removed.is_empty() || !docs.is_empty() {
            self.keyword.apply(&removed, &docs)?;
        }

        // Persist, then swap the in-memory view.
        persisted.documents.insert(site.to_string(), new_site);
        let bytes = bincode::serialize(&persisted).map_err(|e| KbError::Ingest(e.to_string()))?;
        let path = self.settings.data_dir.join("state.bin");
        let tmp = self.settings.data_dir.join("state.bin.tmp");
        std::fs::write(&tmp, bytes).map_err(|e| io_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
        let loaded = self.build_loaded(persisted);
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    /// Embeds a query (blocking). `Ok(None)` without an embedder.
    pub fn embed_query(&self, query: &str) -> Result<Option<Vec<f32>>, KbError> {
        let Some(embedder) = &self.embedder else {
            return Ok(None);
        };
        let mut vectors = embedder.embed_batch(&[query])?;
        Ok(vectors.pop())
    }

    /// Hybrid search (blocking; microseconds to milliseconds, plus the query embedding when
    /// `query_vector` is not given).
    pub fn search(&self, request: &SearchRequest<'_>) -> Result<SearchResult, KbError> {
        let owned_vector;
        let query_vector = match (request.query_vector, &self.embedder) {
            (Some(v), _) => Some(v),
            (None, Some(_)) => {
                owned_vector = self.embed_query(request.query)?;
                owned_vector.as_deref()
            }
            (None, None) => None,
        };
        let evidence = self.gather_evidence(request, query_vector)?;
        Ok(self.rank(request, evidence, query_vector.is_none()))
    }

    /// Per-article evidence for a query, unsorted (exposed for evaluation and tuning).
    pub fn gather_evidence(
        &self,
        request: &SearchRequest<'_>,
        query_vector: Option<&[f32]>,
    ) -> Result<Vec<ArticleCandidate>, KbError> {
        let fusion = &self.settings.fusion;
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        let Some(site_no) = loaded.sites.iter().position(|s| s == request.site) else {
            return Ok(Vec::new());
        };
        let filter = KeywordFilter {
            site: request.site,
            tags: request.tags,
            include_internal: request.include_internal,
        };
        let keyword_hits = self
            .keyword
            .search(request.query, &filter, fusion.n_candidates)?;
        let best_bm25 = keyword_hits.first().map_or(0.0, |h| h.1);

        // Candidate articles: those of the BM25 top chunks and of the nearest chunks; then every
        // chunk of a candidate article is scored exactly (its best and second-best cosine are
        // article evidence). Work is one pass of dot products plus the candidates' chunks.
        let mut bm25_of: HashMap<u32, f32> = HashMap::new();
        let mut candidate_documents: Vec<String> = Vec::new();
        let mut seen_documents: HashSet<String> = HashSet::new();
        let mut add_document = |position: u32, seen: &mut HashSet<String>| {
            let chunk = &loaded.chunks[position as usize].chunk;
            let document_key = key(request.site, chunk.document_id.as_str());
            if seen.insert(document_key.clone()) {
                candidate_documents.push(document_key);
            }
        };
        for (chunk_key, bm25) in &keyword_hits {
            if let Some(&position) = loaded.chunk_by_key.get(chunk_key) {
                bm25_of.insert(position, *bm25);
                add_document(position, &mut seen_documents);
            }
        }
        let semantic = query_vector.zip(loaded.vectors.as_ref());
        if let Some((q, vectors)) = semantic {
            let n_semantic = fusion.n_candidates.saturating_mul(2);
            for (position, _) in
                vectors.search(q, site_no as u32, request.include_internal, n_semantic)
            {
                add_document(position, &mut seen_documents);
            }
        }
        let mut chunk_scores: Vec<(u32, (f32, Option<f32>))> = Vec::new();
        for document_key in &candidate_documents {
            for &position in loaded
                .document_chunks
                .get(document_key)
                .into_iter()
                .flatten()
            {
                let bm25 = bm25_of.get(&position).copied().unwrap_or(0.0);
                let cosine = semantic.and_then(|(q, vectors)| {
                    loaded.row_of[position as usize]
                        .map(|row| dot(q, vectors.vector_of_row(row as usize)))
                });
                if bm25 > 0.0 || cosine.is_some() {
                    chunk_scores.push((position, (bm25, cosine)));
                }
            }
        }
        let mut by_article: HashMap<String, ArticleCandidate> = HashMap::new();
        let tags_ok = |c: &StoredChunk| request.tags.iter().all(|t| c.tags.contains(t));
        for (position, (bm25, cosine)) in chunk_scores {
            let stored = &loaded.chunks[position as usize];
            if !tags_ok(stored) || (stored.internal && !request.include_internal) {
                continue;
            }
            let doc_id = stored.chunk.document_id.as_str();
            let candidate =
                by_article
                    .entry(doc_id.to_string())
                    .or_insert_with(|| ArticleCandidate {
                        document_id: stored.chunk.document_id.clone(),
                        evidence: ArticleEvidence {
                            semantic_best: -1.0,
                            semantic_second: -1.0,
                            ..Default::default()
                        },
                        chunks: Vec::new(),
                    });
            let keyword = if best_bm25 > 0.0 {
                bm25 / best_bm25
            } else {
                0.0
            };
            let e = &mut candidate.evidence;
            if bm25 > e.keyword_raw {
                e.keyword_raw = bm25;
                e.keyword = keyword;
            }
            if let Some(cos) = cosine {
                if cos > e.semantic_best {
                    e.semantic_second = e.semantic_best;
                    e.semantic_best = cos;
                } else if cos > e.semantic_second {
                    e.semantic_second = cos;
                }
            }
            candidate.chunks.push(ChunkCandidate {
                position,
                keyword,
                keyword_raw: bm25,
                semantic: cosine.unwrap_or(0.0),
            });
        }
        for candidate in by_article.values_mut() {
            let e = &mut candidate.evidence;
            if query_vector.is_none() || loaded.vectors.is_none() {
                e.semantic_best = 0.0;
                e.semantic_second = 0.0;
            } else if e.semantic_second < -0.999 {
                e.semantic_second = e.semantic_best;
            }
            e.semantic_article = match query_vector {
                Some(q) => loaded
                    .article_vectors
                    .get(&key(request.site, candidate.document_id.as_str()))
                    .map_or(e.semantic_best, |v| dot(q, v)),
                None => 0.0,
            };
        }
        Ok(by_article.into_values().collect())
    }

    /// Sorts candidates by fused score and builds the result.
    fn rank(
        &self,
        request: &SearchRequest<'_>,
        mut candidates: Vec<ArticleCandidate>,
        keyword_only: bool,
    ) -> SearchResult {
        let fusion = &self.settings.fusion;
        let ratio = if keyword_only {
            0.0
        } else {
            request.semantic_ratio.unwrap_or(fusion.semantic_ratio)
        };
        let mut scored: Vec<(f32, ArticleCandidate)> = candidates
            .drain(..)
            .map(|c| (fusion.fuse(&c.evidence, ratio), c))
            .collect();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.document_id.cmp(&b.1.document_id))
        });

        let top_keyword = scored
            .iter()
            .filter(|(_, c)| c.evidence.keyword_raw > 0.0)
            .max_by(|a, b| {
                a.1.evidence
                    .keyword_raw
                    .total_cmp(&b.1.evidence.keyword_raw)
            })
            .map(|(_, c)| c.document_id.clone());
        let top_semantic = scored
            .iter()
            .max_by(|a, b| {
                fusion
                    .semantic(&a.1.evidence)
                    .total_cmp(&fusion.semantic(&b.1.evidence))
            })
            .map(|(_, c)| c.document_id.clone());
        let rankings_agree = match (&top_keyword, &top_semantic, scored.first()) {
            (Some(k), Some(s), Some((_, top))) if !keyword_only => k == s && *k == top.document_id,
            (Some(k), _, Some((_, top))) if keyword_only => *k == top.document_id,
            _ => false,
        };
        let confidence = match scored.first() {
            None => 0.0,
            Some((top, _)) => {
                let second = scored.get(1).map_or(0.0, |s| s.0);
                self.confidence.predict(&ConfidenceFeatures {
                    top_fused: *top,
                    margin: top - second,
                    agreement: f32::from(u8::from(rankings_agree)),
                })
            }
        };

        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        let hits = scored
            .into_iter()
            .take(request.k)
            .filter_map(|(fused, candidate)| {
                let stored = loaded
                    .persisted
                    .documents
                    .get(request.site)?
                    .get(candidate.document_id.as_str())?;
                let mut passages: Vec<Passage> = candidate
                    .chunks
                    .iter()
                    .map(|c| {
                        let chunk = &loaded.chunks[c.position as usize].chunk;
                        let evidence = ArticleEvidence {
                            keyword_raw: c.keyword_raw,
                            keyword: c.keyword,
                            semantic_best: c.semantic,
                            semantic_second: c.semantic,
                            semantic_article: c.semantic,
                        };
                        Passage {
                            chunk_id: chunk.id.clone(),
                            heading_path: chunk.heading_path.clone(),
                            text: chunk.text.clone(),
                            keyword_score: c.keyword_raw,
                            semantic_score: c.semantic,
                            fused_score: fusion.fuse(&evidence, ratio),
                        }
                    })
                    .collect();
                passages.sort_by(|a, b| b.fused_score.total_cmp(&a.fused_score));
                passages.truncate(3);
                let document = &stored.document;
                Some(ArticleHit {
                    document_id: document.id.clone(),
                    title: document.title.clone(),
                    url: if document.internal {
                        None
                    } else {
                        document.url.clone()
                    },
                    internal: document.internal,
                    keyword_score: candidate.evidence.keyword_raw,
                    semantic_score: candidate.evidence.semantic_best,
                    fused_score: fused,
                    passages,
                })
            })
            .collect();
        SearchResult {
            hits,
            confidence,
            keyword_only,
            rankings_agree,
        }
    }
}

/// Evidence about one article for one query.
#[derive(Debug, Clone)]
pub struct ArticleCandidate {
    pub document_id: DocumentId,
    pub evidence: ArticleEvidence,
    chunks: Vec<ChunkCandidate>,
}

impl ArticleCandidate {
    /// Per-chunk `(bm25, cosine)` of the article's candidate chunks (for tuning and analysis).
    pub fn chunk_scores(&self) -> Vec<(f32, f32)> {
        self.chunks
            .iter()
            .map(|c| (c.keyword_raw, c.semantic))
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
struct ChunkCandidate {
    position: u32,
    keyword: f32,
    keyword_raw: f32,
    semantic: f32,
}

/// Text of an article's own vector: title and description.
fn article_text(document: &Document) -> String {
    match &document.description {
        Some(d) if !d.trim().is_empty() => format!("{}. {}", document.title.trim(), d.trim()),
        _ => document.title.trim().to_string(),
    }
}

/// Hash of what, besides chunk text, makes a document change (title, url, tags, visibility).
fn document_fingerprint(document: &Document) -> String {
    let kind = match document.kind {
        SourceKind::Markdown => "md",
        SourceKind::Html => "html",
        SourceKind::Text => "text",
        SourceKind::Ticket => "ticket",
    };
    content_hash(&format!(
        "{}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{}\u{1f}{kind}",
        document.title, document.description, document.url, document.tags, document.internal
    ))
}

/// Fingerprint of a corpus folder: SHA-256 over every file's relative path and bytes, in
/// path order. Used to cache evaluation indexes by (corpus, model, chunker).
pub fn corpus_fingerprint(root: &Path) -> Result<String, KbError> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    for path in files {
        let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        hasher.update(
            path.strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Opens the knowledge base of `corpus` cached under `cache_root/{hash}` where the hash
/// covers the corpus bytes, the embedder's model id and [`STATE_VERSION`]; builds it first
/// when absent (ingesting `corpus` for `site`). Concurrent callers are serialised by a lock
/// file, so one test run builds the index once and the others open a read-only handle.
pub fn open_cached(
    corpus: &Path,
    site: &str,
    cache_root: &Path,
    embedder: Option<SharedEmbedder>,
    fusion: FusionParams,
) -> Result<KnowledgeBase, KbError> {
    let model_id = embedder
        .as_ref()
        .map_or("none".to_string(), |e| e.model_id().to_string());
    let fingerprint = content_hash(&format!(
        "{}\u{1f}{model_id}\u{1f}{STATE_VERSION}\u{1f}{site}",
        corpus_fingerprint(corpus)?
    ));
    let dir = cache_root.join(&fingerprint[..16]);
    let done = dir.join("complete");
    std::fs::create_dir_all(cache_root).map_err(|e| io_error(cache_root, e))?;
    if !done.exists() {
        let lock_path = cache_root.join(format!("{}.lock", &fingerprint[..16]));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, e))?;
        lock.lock().map_err(|e| io_error(&lock_path, e))?;
        if !done.exists() {
            let _ = std::fs::remove_dir_all(&dir);
            let kb = KnowledgeBase::open(
                KbSettings {
                    data_dir: dir.clone(),
                    writable: true,
                    fusion,
                },
                embedder.clone(),
            )?;
            let report = kb.ingest_path(corpus, site, &LoadOptions::default())?;
            tracing::info!(
                chunks = report.chunks_added,
                embedded = report.texts_embedded,
                "built the cached index of {}",
                corpus.display()
            );
            drop(kb);
            std::fs::write(&done, fingerprint.as_bytes()).map_err(|e| io_error(&done, e))?;
        }
        drop(lock);
    }
    KnowledgeBase::open(
        KbSettings {
            data_dir: dir,
            writable: false,
            fusion,
        },
        embedder,
    )
}
