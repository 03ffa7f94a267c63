//! Server-side time to first delta (extractive answers, retrieval and query embedding
//! included) over 1,000 turns on the Plausible help center, through the engine as the socket
//! drives it. A benchmark, not a test: it prints p50 / p99 / max and asserts nothing about time.
//!
//! ```sh
//! cargo bench -p frontdesk-tests --bench first_delta
//! ```

use frontdesk::engine::{Hello, TurnInput};
use frontdesk::ids::ClientMessageId;
use frontdesk_tests::plausible::{
    DevQuestion, SITE_KEY, config, dev_questions, plausible_retriever,
};
use frontdesk_tests::{TestAppOptions, spawn_app_with};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let retriever = tokio::task::spawn_blocking(plausible_retriever)
        .await
        .expect("kb builds");
    let app = spawn_app_with(TestAppOptions {
        config: vec![config()],
        retriever: Some(retriever),
        ..Default::default()
    })
    .await;
    // Questions that get an answer (a handoff streams no delta).
    let questions: Vec<DevQuestion> = dev_questions()
        .into_iter()
        .filter(|q| q.expected == "answer")
        .collect();
    let engine = app.engine.clone();
    let opened = engine
        .open(Hello {
            version: 1,
            site_key: SITE_KEY.into(),
            ..Default::default()
        })
        .await
        .expect("a conversation opens");
    let mut first_delta = Vec::with_capacity(1000);
    for n in 0..1000 {
        let question = &questions[n % questions.len()].question;
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        // As the socket does: store the message (a turn answers a stored message), then run it.
        let accepted = engine
            .accept_message(&opened.context, ClientMessageId::generate(), question)
            .await
            .expect("the message is stored");
        let input = TurnInput {
            message_id: accepted.appended.message_id,
            text: question.clone(),
        };
        let summary = engine
            .run_turn(&opened.context, input, &tx)
            .await
            .expect("a turn");
        drop(tx);
        drain.await.expect("drained");
        first_delta.push(
            summary
                .first_delta_after
                .unwrap_or_else(|| panic!("turn {n} streamed nothing: {summary:?}")),
        );
    }
    first_delta.sort();
    let percentile =
        |p: f64| first_delta[((first_delta.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let (p50, p99) = (percentile(0.50), percentile(0.99));
    println!(
        "server-side time to first delta, extractive, retrieval and query embedding included, 1000 turns: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        first_delta[first_delta.len() - 1].as_secs_f64() * 1000.0
    );
}
