//! Ingestion and chunking on real input: the Plausible help center (132 Markdown/MDX
//! articles with front matter, imports, JSX, JSON-LD and admonitions), read in place from
//! `../shared/corpora/plausible-help` (or `$FRONTDESK_SHARED/corpora/plausible-help`), and a
//! small hand-written help center in `tests/fixtures/ingest/help-center`.
//!
//! The MiniLM check needs `$FRONTDESK_MODELS/all-minilm-l6-v2/tokenizer.json`
//! (default `~/.cache/frontdesk/models`): run `scripts/fetch-models` once.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use frontdesk_kb::chunk::{SPECIAL_TOKENS, approx_word_pieces, chunk_document};
use frontdesk_kb::ingest::{IngestProblemKind, LoadOptions, load_path};
use frontdesk_kb::{Chunk, Document, SourceKind};

const MAX_TOKENS: usize = 256;

fn shared_dir() -> PathBuf {
    match std::env::var_os("FRONTDESK_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

fn corpus_dir() -> PathBuf {
    let dir = shared_dir().join("corpora/plausible-help");
    assert!(
        dir.is_dir(),
        "{} is missing: the shared data must sit at ../shared next to the repository (or set FRONTDESK_SHARED)",
        dir.display()
    );
    dir
}

fn load_corpus() -> Vec<Document> {
    let output = load_path(&corpus_dir(), &LoadOptions::default()).expect("corpus loads");
    assert!(
        output.problems.is_empty(),
        "unexpected problems: {:#?}",
        output.problems
    );
    assert_eq!(output.n_files_seen, 133, "132 articles + LICENSE.md");
    assert_eq!(output.n_files_skipped, 1, "LICENSE.md");
    output.documents
}

/// Every `.md` file under `dir` except `LICENSE*`, counted independently of the loader.
fn count_articles(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("readable corpus folder") {
        let path = entry.expect("readable entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            n += count_articles(&path);
        } else if name.ends_with(".md") && !name.to_ascii_lowercase().starts_with("license") {
            n += 1;
        }
    }
    n
}

/// Text that is code in a Markdown source: the lines of fenced code blocks and the content
/// of inline code spans. Markup may legitimately survive cleaning only inside these.
fn code_snippets(source: &str) -> Vec<String> {
    let mut snippets = Vec::new();
    let mut fence: Option<String> = None;
    for line in source.lines() {
        let trimmed = line.trim();
        match &fence {
            Some(marker) => {
                if trimmed.starts_with(marker.as_str())
                    && trimmed.trim_start_matches(['`', '~']).is_empty()
                {
                    fence = None;
                } else if !trimmed.is_empty() {
                    snippets.push(trimmed.to_string());
                }
            }
            None if trimmed.starts_with("```") || trimmed.starts_with("~~~") => {
                fence = Some(trimmed[..3].to_string());
            }
            None => {
                // Inline spans: text between matching single backticks on one line.
                let parts: Vec<&str> = line.split('`').collect();
                for (index, part) in parts.iter().enumerate() {
                    if index % 2 == 1 && index + 1 < parts.len() && !part.trim().is_empty() {
                        snippets.push(part.trim().to_string());
                    }
                }
            }
        }
    }
    snippets
}

fn chunk_all(documents: &[Document], count: &dyn Fn(&str) -> usize) -> Vec<Chunk> {
    documents
        .iter()
        .flat_map(|d| chunk_document(d, count, MAX_TOKENS))
        .collect()
}

#[test]
fn plausible_help_center_is_ingested_clean() {
    let corpus = corpus_dir();
    let documents = load_corpus();
    let n_articles = count_articles(&corpus);
    assert_eq!(n_articles, 132);
    assert_eq!(documents.len(), n_articles);

    // Ids are relative paths without extension, sorted and unique.
    let ids: Vec<&str> = documents.iter().map(|d| d.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "documents are sorted by id, ids unique");
    for document in &documents {
        assert!(
            corpus.join(format!("{}.md", document.id)).is_file(),
            "{} has no file",
            document.id
        );
        assert_eq!(document.kind, SourceKind::Markdown);
        assert!(!document.internal);
        assert!(
            !document.title.trim().is_empty(),
            "{} has no title",
            document.id
        );
        assert!(
            document.description.is_some(),
            "{}: every article has a description",
            document.id
        );
    }

    let proxy = documents
        .iter()
        .find(|d| d.id.as_str() == "proxy/introduction")
        .expect("proxy/introduction is ingested");
    assert_eq!(proxy.title, "Bypass adblockers with a proxy");
    assert_eq!(proxy.url.as_deref(), Some("/proxy/introduction"));
    assert!(
        proxy
            .sections
            .iter()
            .any(|s| s.heading_path == ["Which option fits you", "Self-setup proxy"])
    );
    let home = documents
        .iter()
        .find(|d| d.id.as_str() == "introduction")
        .expect("introduction");
    assert_eq!(
        home.url.as_deref(),
        Some("/"),
        "front matter slug, as given"
    );

    // Every article id the evaluation questions point at exists.
    let questions =
        std::fs::read_to_string(shared_dir().join("eval/plausible-questions.dev.jsonl"))
            .expect("dev questions are readable");
    let known: HashSet<&str> = ids.iter().copied().collect();
    for line in questions.lines().filter(|l| !l.trim().is_empty()) {
        let question: serde_json::Value = serde_json::from_str(line).expect("dev question is JSON");
        for relevant in question["relevant"].as_array().into_iter().flatten() {
            let relevant = relevant.as_str().expect("relevant ids are strings");
            assert!(
                known.contains(relevant),
                "eval id {relevant} is not a document"
            );
        }
    }

    // No markup survives outside code.
    let mut n_sections = 0;
    for document in &documents {
        let source = std::fs::read_to_string(corpus.join(format!("{}.md", document.id)))
            .expect("article is readable");
        let snippets = code_snippets(&source);
        let in_code = |line: &str, marker: &str| {
            snippets
                .iter()
                .any(|s| s.contains(marker) && line.contains(s.as_str()))
        };
        for section in &document.sections {
            n_sections += 1;
            assert!(
                !section.text.trim().is_empty(),
                "{}: empty section",
                document.id
            );
            assert!(section.heading_path.iter().all(|h| !h.trim().is_empty()));
            assert!(
                !section.text.contains("useBaseUrl"),
                "{}: {}",
                document.id,
                section.text
            );
            assert!(
                !section.text.contains("application/ld+json"),
                "{}: {}",
                document.id,
                section.text
            );
            assert!(
                !section.text.contains("\n\n\n"),
                "{}: runs of blank lines",
                document.id
            );
            for line in section.text.lines() {
                let trimmed = line.trim_start();
                for (marker, found) in [
                    ("import ", trimmed.starts_with("import ")),
                    (":::", trimmed.starts_with(":::")),
                    ("<div", line.contains("<div")),
                    ("</head>", line.contains("</head>")),
                    ("<img", line.contains("<img")),
                    ("<CtaBox", line.contains("<CtaBox")),
                ] {
                    assert!(
                        !found || in_code(line, marker),
                        "{} [{}]: `{marker}` outside code in line {line:?}",
                        document.id,
                        section.heading_path.join(" > ")
                    );
                }
            }
        }
    }

    // Chunks with the conservative counter fit the window and have unique ids.
    let chunks = chunk_all(&documents, &approx_word_pieces);
    let mut chunk_ids = HashSet::new();
    for chunk in &chunks {
        let tokens = approx_word_pieces(&chunk.embedding_text) + SPECIAL_TOKENS;
        assert!(tokens <= MAX_TOKENS, "{} has {tokens} tokens", chunk.id);
        assert!(!chunk.text.trim().is_empty());
        assert!(
            chunk_ids.insert(chunk.id.as_str()),
            "duplicate chunk id {}",
            chunk.id
        );
    }
    let n_split_sections = {
        let mut per_section: BTreeMap<(&str, String), usize> = BTreeMap::new();
        for chunk in &chunks {
            *per_section
                .entry((chunk.document_id.as_str(), chunk.heading_path.join(" > ")))
                .or_default() += 1;
        }
        per_section.values().filter(|&&n| n > 1).count()
    };
    eprintln!(
        "plausible-help: {} documents, {n_sections} sections, {} chunks (approx counter, {n_split_sections} sections split)",
        documents.len(),
        chunks.len()
    );
    assert!(
        chunks.len() >= n_sections,
        "every section yields at least one chunk"
    );
}

#[test]
fn approx_counter_over_estimates_minilm_and_minilm_chunks_fit() {
    let models = match std::env::var_os("FRONTDESK_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/frontdesk/models"),
    };
    let path = models.join("all-minilm-l6-v2/tokenizer.json");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models",
        path.display()
    );
    let mut tokenizer = tokenizers::Tokenizer::from_file(&path).expect("tokenizer loads");
    // The shipped file truncates (and pads) at 128: count everything.
    tokenizer
        .with_truncation(None)
        .expect("truncation can be disabled");
    tokenizer.with_padding(None);
    let minilm = |text: &str| tokenizer.encode(text, false).expect("tokenizes").len();

    let documents = load_corpus();

    let approx_chunks = chunk_all(&documents, &approx_word_pieces);
    let mut worst_ratio = 0f64;
    let mut real_total = 0usize;
    let mut approx_total = 0usize;
    for chunk in &approx_chunks {
        let real = minilm(&chunk.embedding_text);
        let approx = approx_word_pieces(&chunk.embedding_text);
        assert!(
            real <= approx,
            "{}: MiniLM {real} > approx {approx}",
            chunk.id
        );
        real_total += real;
        approx_total += approx;
        if real >= 64 {
            worst_ratio = worst_ratio.max(real as f64 / approx as f64);
        }
    }

    let minilm_chunks = chunk_all(&documents, &minilm);
    let mut max_real = 0;
    for chunk in &minilm_chunks {
        let real = minilm(&chunk.embedding_text) + SPECIAL_TOKENS;
        assert!(real <= MAX_TOKENS, "{} has {real} MiniLM tokens", chunk.id);
        max_real = max_real.max(real);
    }
    eprintln!(
        "plausible-help: approx chunks {} (mean {:.0} MiniLM tokens, MiniLM/approx overall {:.2}, worst {:.2}); MiniLM chunks {} (max {max_real} tokens with specials)",
        approx_chunks.len(),
        real_total as f64 / approx_chunks.len() as f64,
        real_total as f64 / approx_total as f64,
        worst_ratio,
        minilm_chunks.len()
    );
}

#[test]
fn hand_written_help_center_covers_every_format_and_problem() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ingest/help-center");
    let output = load_path(&root, &LoadOptions::default()).expect("fixtures load");

    let ids: Vec<&str> = output.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "billing/refunds",
            "faq",
            "getting-started",
            "shipping",
            "tickets/1001",
            "tickets/1003"
        ]
    );
    // Seen: LICENSE.md, README.md, billing/refunds.md, faq.html, getting-started.mdx,
    // shipping.txt, styles.css, tickets.jsonl (not .drafts/).
    assert_eq!(output.n_files_seen, 8);
    assert_eq!(
        output.n_files_skipped, 3,
        "LICENSE.md, README.md, styles.css"
    );

    let problems: Vec<(IngestProblemKind, String, Option<usize>)> = output
        .problems
        .iter()
        .map(|p| {
            let relative = p
                .path
                .strip_prefix(&root)
                .expect("problem paths are inside the root");
            (p.kind, relative.display().to_string(), p.line)
        })
        .collect();
    assert_eq!(problems.len(), 2, "{:#?}", output.problems);
    assert_eq!(problems[0].0, IngestProblemKind::MalformedFrontMatter);
    assert_eq!(problems[0].1, "billing/refunds.md");
    let line = problems[0].2.expect("front matter problems have a line");
    assert!(
        (2..=4).contains(&line),
        "line {line} points into the front matter"
    );
    assert_eq!(
        problems[1],
        (
            IngestProblemKind::MalformedTicket,
            "tickets.jsonl".into(),
            Some(2)
        )
    );

    let by_id = |id: &str| {
        output
            .documents
            .iter()
            .find(|d| d.id.as_str() == id)
            .expect("document exists")
    };
    let sections = |id: &str| -> Vec<(String, String)> {
        by_id(id)
            .sections
            .iter()
            .map(|s| (s.heading_path.join(" > "), s.text.clone()))
            .collect()
    };

    let refunds = by_id("billing/refunds");
    assert_eq!(
        refunds.title, "Refunds and cancellations",
        "the first # heading"
    );
    assert_eq!(refunds.url.as_deref(), Some("/billing/refunds"));
    assert_eq!(
        sections("billing/refunds"),
        [
            (String::new(), "We refund unused months on request.".into()),
            (
                "How to ask".into(),
                "Email support from the address on your account.".into()
            ),
        ]
    );

    let start = by_id("getting-started");
    assert_eq!(start.title, "Getting started");
    assert_eq!(start.url.as_deref(), Some("/start"));
    assert_eq!(start.tags, ["setup", "onboarding"]);
    assert_eq!(
        sections("getting-started"),
        [
            (
                String::new(),
                "Add the snippet to the <head> of every page. See the script guide for options.\n\nUsing WordPress?\n\nInstall the official plugin instead.".into()
            ),
            (
                "Install".into(),
                "Paste this before </head>:\n\n<script defer src=\"https://plausible.io/js/script.js\"></script>\n\nRun npm install @plausible-analytics/tracker.\n\nVisits appear within a minute.".into()
            ),
            (
                "Plans".into(),
                "Plan | Sites\nStarter | 1\nGrowth | 3\n\nDo not self-host the script\n\nIt will not get updates.".into()
            ),
        ]
    );

    let faq = by_id("faq");
    assert_eq!(faq.kind, SourceKind::Html);
    assert_eq!(faq.title, "Frequently asked questions");
    assert_eq!(faq.description.as_deref(), Some("Short answers."));
    assert_eq!(
        sections("faq"),
        [
            (
                "Do you use cookies?".into(),
                "No. Plausible is cookieless.".into()
            ),
            (
                "Which browsers are supported?".into(),
                "- Chrome\n- Firefox\n- Safari".into()
            ),
        ]
    );

    let shipping = by_id("shipping");
    assert_eq!(shipping.kind, SourceKind::Text);
    assert_eq!(shipping.title, "Shipping times");

    let ticket = by_id("tickets/1001");
    assert!(ticket.internal);
    assert_eq!(ticket.url, None);
    assert_eq!(
        ticket.sections[0].text,
        "customer: I was charged twice on [card], email me at [email] or call [phone].\nagent: Sorry! One charge is refunded.\nResolution: Duplicate charge refunded."
    );

    // Every document chunks within the window.
    for document in &output.documents {
        for chunk in chunk_document(document, &approx_word_pieces, MAX_TOKENS) {
            assert!(approx_word_pieces(&chunk.embedding_text) + SPECIAL_TOKENS <= MAX_TOKENS);
        }
    }
}
