//! The chat server on a real help center: the Plausible corpus (`../shared`), embedded with the
//! local all-MiniLM-L6-v2, asked every dev question whose expected outcome is `answer` over a
//! real WebSocket client. (The server-side time to first delta over 1,000 turns is a benchmark:
//! `tests/benches/first_delta.rs`.)
//!
//! The index is built once and cached outside the clone (`~/.cache/frontdesk/test-kb`); the
//! first run embeds the corpus (minutes on two cores), later runs open the cache.

use frontdesk::ids::SiteId;
use frontdesk::ports::retriever::RetrievalQuery;
use frontdesk_tests::plausible::{
    DevQuestion, SITE, SITE_KEY, config, dev_questions, plausible_retriever,
};
use frontdesk_tests::{TestAppOptions, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answerable_dev_question_gets_ordered_deltas_and_a_cited_answer() {
    let retriever = tokio::task::spawn_blocking(plausible_retriever)
        .await
        .expect("kb builds");
    let questions: Vec<DevQuestion> = dev_questions()
        .into_iter()
        .filter(|q| q.expected == "answer")
        .collect();
    assert_eq!(
        questions.len(),
        36,
        "the dev set has 36 answerable questions"
    );

    // The retriever's own R@1 on these questions.
    let site = SiteId::parse(SITE).expect("valid");
    let mut n_top_relevant = 0;
    for q in &questions {
        let query = RetrievalQuery {
            text: q.question.clone(),
            query_vector: None,
            k: 5,
            semantic_ratio: None,
            include_internal: false,
        };
        let result = retriever.retrieve(&site, &query).await.expect("search");
        if result
            .hits
            .first()
            .is_some_and(|hit| q.relevant.iter().any(|r| r == hit.document_id.as_str()))
        {
            n_top_relevant += 1;
        }
    }

    let app = spawn_app_with(TestAppOptions {
        config: vec![config()],
        retriever: Some(retriever),
        ..Default::default()
    })
    .await;
    let mut n_cited_relevant = 0;
    let mut n_first_cited_relevant = 0;
    let mut misses = Vec::new();
    let mut n_answered = 0;
    let mut offered = Vec::new();
    for q in &questions {
        let mut client = app.client().await;
        client.hello(SITE_KEY).await.expect("welcome");
        let turn = client
            .ask(&q.question)
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", q.id));
        assert_eq!(turn.ack["duplicate"], false, "{}", q.id);
        assert_eq!(turn.end["type"], "answer_end", "{}: {}", q.id, turn.end);
        let seqs: Vec<u64> = turn
            .deltas
            .iter()
            .map(|d| d["seq"].as_u64().expect("seq"))
            .collect();
        assert_eq!(
            seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "{}: seq 0, 1, 2, …",
            q.id
        );
        assert_eq!(
            turn.streamed_text(),
            turn.end["text"].as_str().expect("text"),
            "{}",
            q.id
        );
        let cited: Vec<&str> = turn.end["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .map(|s| s["article_id"].as_str().expect("id"))
            .collect();
        assert!(
            !cited.is_empty(),
            "{} ({}) cites nothing: {}",
            q.id,
            q.question,
            turn.end
        );
        match turn.end["decision"].as_str() {
            Some("answer") => n_answered += 1,
            // Unsure: the closest article is cited and a person offered.
            Some("handoff") => {
                offered.push(format!("{} (confidence {})", q.id, turn.end["confidence"]))
            }
            other => panic!("{}: decision {other:?}", q.id),
        }
        if cited.iter().any(|c| q.relevant.iter().any(|r| r == c)) {
            n_cited_relevant += 1;
        } else {
            misses.push(format!(
                "{} cites {cited:?}, relevant {:?}",
                q.id, q.relevant
            ));
        }
        if cited
            .first()
            .is_some_and(|c| q.relevant.iter().any(|r| r == c))
        {
            n_first_cited_relevant += 1;
        }
    }
    let n = questions.len() as f64;
    println!(
        "plausible dev, {} answerable questions: retriever R@1 {:.3}; a relevant article cited {:.3}; first citation relevant {:.3}",
        questions.len(),
        n_top_relevant as f64 / n,
        n_cited_relevant as f64 / n,
        n_first_cited_relevant as f64 / n
    );
    println!(
        "answered {n_answered}, unsure (closest article cited, a person offered) {}: {offered:?}",
        offered.len()
    );
    for miss in &misses {
        println!("  miss: {miss}");
    }
    assert!(
        n_cited_relevant >= n_top_relevant,
        "cited relevant {n_cited_relevant} < R@1 hits {n_top_relevant}"
    );
}
