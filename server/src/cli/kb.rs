//! `frontdesk kb ingest PATH` and `frontdesk kb search QUERY`.

use crate::cli::{GlobalArgs, KbIngestArgs, KbSearchArgs, resolve_site};
use crate::config::Settings;
use crate::startup::open_knowledge_base;
use frontdesk_kb::index::{IngestReport, SearchRequest};
use frontdesk_kb::ingest::LoadOptions;

/// `frontdesk kb ingest PATH`: ingests into `kb.data_dir` for the site, prints what changed
/// (documents and chunks added / updated / deleted / unchanged, texts embedded) and every
/// problem with its path and line. Exits non-zero only when nothing could be ingested.
pub fn ingest(settings: &Settings, global: &GlobalArgs, args: &KbIngestArgs) -> anyhow::Result<()> {
    let site = resolve_site(settings, global)?;
    let kb = open_knowledge_base(settings, true)?;
    let report = kb.ingest_path(&args.path, site.as_str(), &LoadOptions::default())?;
    let (n_documents, _) = kb.counts(site.as_str());
    let ingested_now =
        report.documents_added + report.documents_updated + report.documents_unchanged;
    let failed = !(ingested_now > 0 || n_documents > 0 && report.problems.is_empty());
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if failed {
        for problem in &report.problems {
            println!("problem:   {problem}");
        }
    } else {
        print_report(&report);
    }
    anyhow::ensure!(
        !failed,
        "nothing could be ingested from {} ({} problem(s))",
        args.path.display(),
        report.problems.len()
    );
    Ok(())
}

fn print_report(report: &IngestReport) {
    println!("ingested {} into site {}", report.source, report.site);
    println!(
        "documents: {} added, {} updated, {} deleted, {} unchanged",
        report.documents_added,
        report.documents_updated,
        report.documents_deleted,
        report.documents_unchanged
    );
    println!(
        "chunks:    {} added, {} updated, {} deleted, {} unchanged",
        report.chunks_added, report.chunks_updated, report.chunks_deleted, report.chunks_unchanged
    );
    println!(
        "embedded:  {} texts ({} files seen, {} skipped)",
        report.texts_embedded, report.files_seen, report.files_skipped
    );
    for problem in &report.problems {
        println!("problem:   {problem}");
    }
}

/// `frontdesk kb search QUERY`: the top articles with their keyword, semantic and fused
/// scores, the best passage of each, and the result's calibrated confidence.
pub fn search(settings: &Settings, global: &GlobalArgs, args: &KbSearchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.query.trim().is_empty(),
        "the query is empty: give the question to search for"
    );
    anyhow::ensure!(args.k > 0, "-k must be at least 1");
    if let Some(ratio) = args.semantic_ratio {
        anyhow::ensure!(
            (0.0..=1.0).contains(&ratio),
            "--semantic-ratio must be between 0 and 1, got {ratio}"
        );
    }
    let site = resolve_site(settings, global)?;
    let kb = open_knowledge_base(settings, false)?;
    anyhow::ensure!(
        kb.counts(site.as_str()).0 > 0,
        "the knowledge base in {} has no document for site {site}: run `frontdesk kb ingest PATH` first \
         (or start `frontdesk serve`, which ingests kb.path)",
        settings.kb.data_dir.display()
    );
    let mut request = SearchRequest::new(&args.query, site.as_str());
    request.k = args.k;
    request.semantic_ratio = args.semantic_ratio;
    let result = kb.search(&request)?;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "confidence {:.3}{}",
        result.confidence,
        if result.keyword_only {
            " (keyword-only: no embedder)"
        } else {
            ""
        }
    );
    for (rank, hit) in result.hits.iter().enumerate() {
        println!(
            "{:>2}. {}  fused {:.3}  keyword {:.2}  semantic {:.3}  — {}",
            rank + 1,
            hit.document_id,
            hit.fused_score,
            hit.keyword_score,
            hit.semantic_score,
            hit.title
        );
        if let Some(passage) = hit.passages.first() {
            let excerpt: String = passage.text.chars().take(160).collect();
            println!(
                "    [{}] {}",
                passage.heading_path.join(" > "),
                excerpt.replace('\n', " ")
            );
        }
    }
    if result.hits.is_empty() {
        println!("no article matches");
    }
    Ok(())
}
