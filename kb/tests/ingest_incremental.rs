//! Re-ingestion is incremental and exact: the same folder twice changes nothing and makes no
//! embedder call; editing one section re-embeds exactly that section's chunks; a removed
//! article is deleted; the index survives a restart without re-embedding.

mod common;

use std::path::Path;
use std::sync::Arc;

use frontdesk_kb::embed::cache::CountingEmbedder;
use frontdesk_kb::fusion::FusionParams;
use frontdesk_kb::index::{KbSettings, KnowledgeBase, SearchRequest};
use frontdesk_kb::ingest::LoadOptions;

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn open(data_dir: &Path, embedder: &Arc<CountingEmbedder>) -> KnowledgeBase {
    KnowledgeBase::open(
        KbSettings {
            data_dir: data_dir.to_path_buf(),
            writable: true,
            fusion: FusionParams::default(),
        },
        Some(embedder.clone()),
    )
    .unwrap()
}

#[test]
fn reingesting_is_exact_and_embeds_only_changed_text() {
    let corpus = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    copy_dir(&common::demo_kb(), corpus.path());
    let counting = Arc::new(CountingEmbedder::new(common::embedder()));
    let kb = open(data.path(), &counting);
    let options = LoadOptions::default();

    let first = kb.ingest_path(corpus.path(), "demo", &options).unwrap();
    let n_documents = first.documents_added;
    assert!(n_documents >= 20, "{first:?}");
    assert_eq!(
        first.chunks_updated + first.chunks_deleted + first.chunks_unchanged,
        0
    );
    // Every chunk and every article vector embedded once.
    assert_eq!(
        counting.n_texts_embedded(),
        first.chunks_added + n_documents
    );
    assert_eq!(first.texts_embedded, counting.n_texts_embedded());

    counting.reset();
    let second = kb.ingest_path(corpus.path(), "demo", &options).unwrap();
    assert_eq!(
        (
            second.documents_added,
            second.documents_updated,
            second.documents_deleted,
            second.documents_unchanged
        ),
        (0, 0, 0, n_documents)
    );
    assert_eq!(
        (
            second.chunks_added,
            second.chunks_updated,
            second.chunks_deleted
        ),
        (0, 0, 0)
    );
    assert_eq!(second.chunks_unchanged, first.chunks_added);
    assert_eq!(
        counting.n_calls(),
        0,
        "no embedder call when nothing changed"
    );

    // Edit one section of one article: exactly its chunk(s) are re-embedded.
    let article = corpus.path().join("refunds/refund-policy.md");
    let text = std::fs::read_to_string(&article).unwrap();
    let section_start = text.find("\n## ").expect("the article has sections") + 1;
    let line_end = section_start + text[section_start..].find('\n').unwrap() + 1;
    let edited = format!(
        "{}We also accept returns of gift cards within 10 days.\n\n{}",
        &text[..line_end],
        &text[line_end..]
    );
    std::fs::write(&article, edited).unwrap();
    counting.reset();
    let third = kb.ingest_path(corpus.path(), "demo", &options).unwrap();
    assert_eq!(
        (
            third.documents_updated,
            third.documents_added,
            third.documents_deleted
        ),
        (1, 0, 0)
    );
    assert_eq!(
        (
            third.chunks_updated,
            third.chunks_added,
            third.chunks_deleted
        ),
        (1, 0, 0),
        "{third:?}"
    );
    assert_eq!(
        counting.n_texts_embedded(),
        1,
        "only the edited section's chunk"
    );

    // Remove an article: its document and chunks are deleted, nothing is embedded.
    std::fs::remove_file(corpus.path().join("shipping/track-your-order.md")).unwrap();
    counting.reset();
    let fourth = kb.ingest_path(corpus.path(), "demo", &options).unwrap();
    assert_eq!(fourth.documents_deleted, 1);
    assert!(fourth.chunks_deleted >= 1);
    assert_eq!(counting.n_calls(), 0);
    let result = kb
        .search(&SearchRequest::new("gift cards returns", "demo"))
        .unwrap();
    assert_eq!(result.hits[0].document_id.as_str(), "refunds/refund-policy");
    assert!(
        result
            .hits
            .iter()
            .all(|h| h.document_id.as_str() != "shipping/track-your-order")
    );
    drop(kb);

    // A restart re-embeds nothing and finds the same results.
    counting.reset();
    let reopened = open(data.path(), &counting);
    let mut request = SearchRequest::new("gift cards returns", "demo");
    request.query_vector = None;
    let again = reopened.search(&request).unwrap();
    assert_eq!(again.hits[0].document_id.as_str(), "refunds/refund-policy");
    assert_eq!(
        counting.n_texts_embedded(),
        1,
        "only the query was embedded"
    );
}

#[test]
fn sites_are_isolated_and_a_second_writer_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let counting = Arc::new(CountingEmbedder::new(common::embedder()));
    let kb = open(data.path(), &counting);
    kb.ingest_path(&common::demo_kb(), "lumen", &LoadOptions::default())
        .unwrap();
    assert!(
        kb.search(&SearchRequest::new("refund policy", "other-site"))
            .unwrap()
            .hits
            .is_empty()
    );
    assert!(
        !kb.search(&SearchRequest::new("refund policy", "lumen"))
            .unwrap()
            .hits
            .is_empty()
    );
    let second = KnowledgeBase::open(
        KbSettings {
            data_dir: data.path().to_path_buf(),
            writable: true,
            fusion: FusionParams::default(),
        },
        None,
    );
    let message = second.err().expect("the index writer is held").to_string();
    assert!(message.contains("locked by another process"), "{message}");
    let reader = KnowledgeBase::open(
        KbSettings {
            data_dir: data.path().to_path_buf(),
            writable: false,
            fusion: FusionParams::default(),
        },
        Some(counting.clone()),
    )
    .expect("read-only handles open while a writer runs");
    assert!(
        !reader
            .search(&SearchRequest::new("refund policy", "lumen"))
            .unwrap()
            .hits
            .is_empty()
    );
}
