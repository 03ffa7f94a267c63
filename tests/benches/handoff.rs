//! Handoff latency per helpdesk: from the decision (the handoff recorded) to its ticket created
//! and recorded, through the real server and its outbox, against the local vendor fakes
//! (`tests/support/fake_*.rs`) and the built-in inbox; then the same with the helpdesk
//! answering 429 (`Retry-After: 1`) or 500 to the first attempt, to show the retry behaviour.
//! A benchmark, not a test: it prints p50 / p95 / max and asserts nothing about time.
//!
//! ```sh
//! cargo bench --profile dev -p frontdesk-tests --bench handoff
//! ```

use frontdesk_tests::fake_freshdesk::{self, FakeFreshdesk};
use frontdesk_tests::fake_intercom::{self, FakeIntercom};
use frontdesk_tests::fake_zendesk::{self, FakeZendesk};
use frontdesk_tests::{TestApp, spawn_app_with_config};
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Handoffs per run.
const N: usize = 50;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

/// Opens `n` handoffs (a visitor message, then `request_human`) one after the other, waits for
/// each ticket, and returns the decision → ticket latencies the outbox measured, in ms.
async fn handoffs(app: &TestApp, n: usize) -> Vec<u64> {
    let counters = app.engine.outbox().counters();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let before = counters.tickets.load(Relaxed);
        let mut client = app.client().await;
        client.hello(&app.site_key).await.expect("welcome");
        client
            .ask(&format!("Order {i}: the lamp does not turn on"))
            .await
            .expect("turn");
        client.send_json(json!({"type": "request_human"})).await;
        client.recv_type("handoff").await.expect("handoff");
        let started = Instant::now();
        while counters.tickets.load(Relaxed) == before {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no ticket after 60 s: {:?}",
                counters.last_error()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(counters.last_latency_ms().expect("a ticket was recorded"));
    }
    latencies
}

fn report(name: &str, mut latencies: Vec<u64>, attempts: &str) {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies[((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "| {name} | {} | {} | {} | {} | {attempts} |",
        latencies.len(),
        at(0.5),
        at(0.95),
        latencies.last().copied().unwrap_or(0)
    );
}

async fn run() {
    println!("| helpdesk | handoffs | p50 ms | p95 ms | max ms | attempts |");
    println!("| --- | --- | --- | --- | --- | --- |");

    let inbox = spawn_app_with_config("").await;
    report("built-in inbox", handoffs(&inbox, N).await, "1 each");

    let zendesk = FakeZendesk::start().await;
    let app = spawn_app_with_config(&format!(
        "[helpdesk]\nkind = \"zendesk\"\n[helpdesk.zendesk]\nsubdomain = \"acme\"\nemail = {:?}\n\
         api_token = {:?}\nbase_url = {:?}\n",
        fake_zendesk::EMAIL,
        fake_zendesk::TOKEN,
        zendesk.base_url()
    ))
    .await;
    report("Zendesk (fake)", handoffs(&app, N).await, "1 each");
    // A fault before each handoff's first attempt.
    let mut retried = Vec::new();
    for _ in 0..10 {
        zendesk.push_fault(fake_zendesk::Fault::RateLimited(1));
        retried.extend(handoffs(&app, 1).await);
    }
    report(
        "Zendesk, 429 Retry-After: 1 first",
        retried,
        "2 each (waits the Retry-After)",
    );
    let mut retried = Vec::new();
    for _ in 0..10 {
        zendesk.push_fault(fake_zendesk::Fault::ServerError);
        retried.extend(handoffs(&app, 1).await);
    }
    report(
        "Zendesk, 500 first",
        retried,
        "2 each (backoff from 1 s, jittered)",
    );

    let freshdesk = FakeFreshdesk::start().await;
    let app = spawn_app_with_config(&format!(
        "[helpdesk]\nkind = \"freshdesk\"\n[helpdesk.freshdesk]\ndomain = \"acme.freshdesk.com\"\n\
         api_key = {:?}\nbase_url = {:?}\n",
        fake_freshdesk::API_KEY,
        freshdesk.base_url()
    ))
    .await;
    report("Freshdesk (fake)", handoffs(&app, N).await, "1 each");

    let intercom = FakeIntercom::start().await;
    let app = spawn_app_with_config(&format!(
        "[helpdesk]\nkind = \"intercom\"\n[helpdesk.intercom]\naccess_token = {:?}\n\
         admin_id = {:?}\nbase_url = {:?}\n",
        fake_intercom::TOKEN,
        fake_intercom::ADMIN_ID,
        intercom.base_url()
    ))
    .await;
    report("Intercom (fake)", handoffs(&app, N).await, "1 each");
}
