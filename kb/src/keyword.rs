//! Keyword retrieval: a tantivy BM25 index over chunks.
//!
//! Each chunk's [`embedding_text`](crate::Chunk::embedding_text) (title, heading path, body) is
//! indexed twice: once with English stemming and stop words (`body_stem`), once lowercased
//! with stop words but no stemming (`body_exact`), so exact terms (setting names, error codes)
//! score above their stemmed relatives. Queries are bags of words (no query syntax: visitors
//! type `?`, `:` and quotes freely); each analysed term is a `Should` clause on both fields.
//! Scores are tantivy's BM25 (k1 = 1.2, b = 0.75; Robertson & Zaragoza, "The Probabilistic
//! Relevance Framework: BM25 and Beyond", 2009), summed over the two fields.

use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Errors of the keyword index.
#[derive(Debug, thiserror::Error)]
pub enum KeywordError {
    /// Another process holds the index writer (a running `frontdesk serve`).
    #[error(
        "the keyword index at {0} is locked by another process (a running `frontdesk serve`?): ingest through the running server's admin API or stop it first"
    )]
    Locked(String),
    #[error("keyword index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("keyword index {0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("keyword index was opened read-only")]
    ReadOnly,
}

const ANALYZER_STEM: &str = "frontdesk_en_stem";
const ANALYZER_EXACT: &str = "frontdesk_en_exact";
/// Memory budget of the index writer (bytes); tantivy needs at least 15 MB per thread.
const WRITER_HEAP_BYTES: usize = 50_000_000;

#[derive(Clone, Copy)]
struct Fields {
    chunk_id: Field,
    site: Field,
    tags: Field,
    internal: Field,
    body_stem: Field,
    body_exact: Field,
}

/// A chunk as the keyword index sees it.
pub struct KeywordDoc<'a> {
    pub chunk_id: &'a str,
    pub site: &'a str,
    pub tags: &'a [String],
    pub internal: bool,
    pub text: &'a str,
}

/// Filters applied to every keyword search.
pub struct KeywordFilter<'a> {
    pub site: &'a str,
    pub tags: &'a [String],
    pub include_internal: bool,
}

/// The BM25 index. Readers are lock-free; one writer per index directory (tantivy's lock).
pub struct KeywordIndex {
    reader: IndexReader,
    writer: Option<Mutex<IndexWriter>>,
    fields: Fields,
    stem: TextAnalyzer,
    exact: TextAnalyzer,
}

fn analyzers() -> (TextAnalyzer, TextAnalyzer) {
    let stop = || StopWordFilter::new(Language::English).expect("tantivy ships English stop words");
    let stem = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop())
        .filter(Stemmer::new(Language::English))
        .build();
    let exact = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop())
        .build();
    (stem, exact)
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |analyzer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let fields = Fields {
        chunk_id: builder.add_text_field("chunk_id", STRING | STORED),
        site: builder.add_text_field("site", STRING),
        tags: builder.add_text_field("tags", STRING),
        internal: builder.add_text_field("internal", STRING),
        body_stem: builder.add_text_field("body_stem", text(ANALYZER_STEM)),
        body_exact: builder.add_text_field("body_exact", text(ANALYZER_EXACT)),
    };
    (builder.build(), fields)
}

impl KeywordIndex {
    /// Opens (or creates) the index in `dir`. With `writable`, takes the directory's writer
    /// lock and fails with [`KeywordError::Locked`] when another process holds it.
    pub fn open(dir: &Path, writable: bool) -> Result<Self, KeywordError> {
        std::fs::create_dir_all(dir).map_err(|e| KeywordError::Io(dir.display().to_string(), e))?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| KeywordError::Tantivy(tantivy::TantivyError::from(e)))?;
        let index = Index::open_or_create(directory, schema)?;
        Self::finish(index, fields, writable, dir)
    }

    /// An index held in memory (tests, benchmarks).
    pub fn in_memory() -> Result<Self, KeywordError> {
        let (schema, fields) = schema();
        Self::finish(
            Index::create_in_ram(schema),
            fields,
            true,
            Path::new("<memory>"),
        )
    }

    fn finish(
        index: Index,
        fields: Fields,
        writable: bool,
        dir: &Path,
    ) -> Result<Self, KeywordError> {
        let (stem, exact) = analyzers();
        index.tokenizers().register(ANALYZER_STEM, stem.clone());
        index.tokenizers().register(ANALYZER_EXACT, exact.clone());
        let writer = if writable {
            match index.writer_with_num_threads(1, WRITER_HEAP_BYTES) {
                Ok(writer) => Some(Mutex::new(writer)),
                Err(tantivy::TantivyError::LockFailure(..)) => {
                    return Err(KeywordError::Locked(dir.display().to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            reader,
            writer,
            fields,
            stem,
            exact,
        })
    }

    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter) -> Result<T, KeywordError>,
    ) -> Result<T, KeywordError> {
        let writer = self.writer.as_ref().ok_or(KeywordError::ReadOnly)?;
        // A poisoned lock only means another thread panicked mid-write; tantivy's own
        // transaction (commit/rollback) keeps the index consistent, so keep going.
        let mut guard = writer.lock().unwrap_or_else(|poison| poison.into_inner());
        f(&mut guard)
    }

    /// Replaces the index content: deletes `removed` chunk ids and (re)adds `upserted` chunks,
    /// then commits and reloads the reader. One commit per call.
    pub fn apply(&self, removed: &[&str], upserted: &[KeywordDoc<'_>]) -> Result<(), KeywordError> {
        let f = self.fields;
        self.with_writer(|writer| {
            for id in removed
                .iter()
                .copied()
                .chain(upserted.iter().map(|d| d.chunk_id))
            {
                writer.delete_term(Term::from_field_text(f.chunk_id, id));
            }
            for doc in upserted {
                let mut tdoc = TantivyDocument::default();
                tdoc.add_text(f.chunk_id, doc.chunk_id);
                tdoc.add_text(f.site, doc.site);
                for tag in doc.tags {
                    tdoc.add_text(f.tags, tag);
                }
                tdoc.add_text(f.internal, if doc.internal { "true" } else { "false" });
                tdoc.add_text(f.body_stem, doc.text);
                tdoc.add_text(f.body_exact, doc.text);
                writer.add_document(tdoc)?;
            }
            writer.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// Number of chunks indexed.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Analysed query terms, for both fields: `(stemmed, exact)`.
    fn terms(&self, query: &str) -> (Vec<String>, Vec<String>) {
        let collect = |analyzer: &TextAnalyzer| {
            let mut analyzer = analyzer.clone();
            let mut stream = analyzer.token_stream(query);
            let mut out: Vec<String> = Vec::new();
            while let Some(token) = stream.next() {
                if !out.contains(&token.text) {
                    out.push(token.text.clone());
                }
            }
            out
        };
        (collect(&self.stem), collect(&self.exact))
    }

    /// Top `limit` chunks for a bag-of-words query: `(chunk_id, bm25)`, best first.
    /// A query with no indexable term (only stop words or punctuation) returns nothing.
    pub fn search(
        &self,
        query: &str,
        filter: &KeywordFilter<'_>,
        limit: usize,
    ) -> Result<Vec<(String, f32)>, KeywordError> {
        let f = self.fields;
        let (stemmed, exact) = self.terms(query);
        if (stemmed.is_empty() && exact.is_empty()) || limit == 0 {
            return Ok(Vec::new());
        }
        let term_query = |field: Field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::WithFreqs,
            ))
        };
        let filter_query = |field: Field, text: &str| -> Box<dyn Query> {
            Box::new(ConstScoreQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(field, text),
                    IndexRecordOption::Basic,
                )),
                0.0,
            ))
        };
        let mut text_clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        text_clauses.extend(
            stemmed
                .iter()
                .map(|t| (Occur::Should, term_query(f.body_stem, t))),
        );
        text_clauses.extend(
            exact
                .iter()
                .map(|t| (Occur::Should, term_query(f.body_exact, t))),
        );
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, Box::new(BooleanQuery::new(text_clauses))),
            (Occur::Must, filter_query(f.site, filter.site)),
        ];
        for tag in filter.tags {
            clauses.push((Occur::Must, filter_query(f.tags, tag)));
        }
        if !filter.include_internal {
            clauses.push((Occur::MustNot, filter_query(f.internal, "true")));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(f.chunk_id).and_then(|v| v.as_str()) {
                out.push((id.to_string(), score));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc<'a>(id: &'a str, site: &'a str, internal: bool, text: &'a str) -> KeywordDoc<'a> {
        KeywordDoc {
            chunk_id: id,
            site,
            tags: &[],
            internal,
            text,
        }
    }

    fn filter(site: &str) -> KeywordFilter<'_> {
        KeywordFilter {
            site,
            tags: &[],
            include_internal: false,
        }
    }

    #[test]
    fn ranks_by_bm25_and_filters_by_site_and_internal() {
        let index = KeywordIndex::in_memory().unwrap();
        index
            .apply(
                &[],
                &[
                    doc("a", "s1", false, "Reset your password from the login page."),
                    doc("b", "s1", false, "Download invoices from the billing page."),
                    doc("c", "s2", false, "Reset your password quickly."),
                    doc(
                        "d",
                        "s1",
                        true,
                        "Customer could not reset password; we reset it.",
                    ),
                ],
            )
            .unwrap();
        let hits = index
            .search("How do I reset my password?", &filter("s1"), 10)
            .unwrap();
        let ids: Vec<_> = hits.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["a"],
            "site s2 and the internal chunk are filtered out"
        );
        let with_internal = KeywordFilter {
            site: "s1",
            tags: &[],
            include_internal: true,
        };
        let hits = index.search("reset password", &with_internal, 10).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].0, "d", "two occurrences of `reset` outrank one");
    }

    #[test]
    fn exact_terms_outrank_stemmed_relatives_and_stop_words_alone_find_nothing() {
        let index = KeywordIndex::in_memory().unwrap();
        index
            .apply(
                &[],
                &[
                    doc("exact", "s", false, "Tracking goals"),
                    doc("stem", "s", false, "Track goal"),
                ],
            )
            .unwrap();
        let hits = index.search("tracking", &filter("s"), 10).unwrap();
        assert_eq!(hits.len(), 2, "stemming matches both");
        assert_eq!(hits[0].0, "exact");
        assert!(
            index
                .search("how do I?", &filter("s"), 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn apply_replaces_and_deletes_by_chunk_id() {
        let index = KeywordIndex::in_memory().unwrap();
        index
            .apply(
                &[],
                &[doc("a", "s", false, "alpha"), doc("b", "s", false, "beta")],
            )
            .unwrap();
        index
            .apply(&["b"], &[doc("a", "s", false, "gamma")])
            .unwrap();
        assert_eq!(index.len(), 1);
        assert!(index.search("alpha", &filter("s"), 5).unwrap().is_empty());
        assert_eq!(index.search("gamma", &filter("s"), 5).unwrap()[0].0, "a");
    }
}
