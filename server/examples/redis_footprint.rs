//! Measures the Redis conversation store: memory per idle conversation, round trips and store
//! time per turn. BENCHMARKS.md "Conversation store (Redis)" has the figures and the commands.
//!
//! ```sh
//! redis-server --port 6390 --save '' --appendonly no --daemonize yes
//! cargo run --release -p frontdesk --example redis_footprint -- redis://127.0.0.1:6390/0 1000
//! ```
//!
//! Arguments: the Redis URL (use a dedicated, empty server: `used_memory` is server-wide) and
//! the number of conversations (default 1000). Every key it writes is under a fresh prefix and
//! deleted at the end.

use anyhow::{Context, bail};
use frontdesk::adapters::redis_store::{RedisStore, RedisStoreConfig};
use frontdesk::domain::{Citation, DecisionKind, EventKind};
use frontdesk::ids::{
    AnswerId, ClientMessageId, ConversationId, EventId, MessageId, SiteId, VisitorId,
};
use frontdesk::ports::store::{ConversationStore, NewConversation};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// A short real-looking exchange: two questions, two cited answers.
const QUESTIONS: [&str; 2] = [
    "Hi, how do I reset my password? The reset email never arrives.",
    "Thanks. And can I change the email address on my account?",
];
const ANSWER: &str = "Open Settings → Account, choose Reset password and follow the link we \
email you. If it does not arrive within five minutes, check your spam folder or add \
support@lumen.example to your contacts, then ask for a new link.";

fn answer_event() -> EventKind {
    EventKind::AssistantAnswer {
        message_id: MessageId::generate(),
        answer_id: AnswerId::generate(),
        text: ANSWER.into(),
        sources: vec![Citation {
            article_id: frontdesk_kb::DocumentId::parse("account/reset-password")
                .expect("a valid document id"),
            title: "Reset your password".into(),
            url: Some("/help/account/reset-password".into()),
        }],
        confidence: 0.86,
        decision: DecisionKind::Answer,
        reasons: Vec::new(),
        usage: None,
    }
}

async fn info_field(
    connection: &mut redis::aio::MultiplexedConnection,
    section: &str,
    field: &str,
) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(connection)
        .await?;
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .with_context(|| format!("INFO {section} has no {field}"))?
        .trim()
        .parse()
        .with_context(|| format!("INFO {field} is not a number"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6390/0".into());
    let n_conversations: usize = args.next().map_or(Ok(1000), |n| n.parse())?;
    if n_conversations == 0 {
        bail!("the number of conversations must be at least 1");
    }
    let prefix = format!("footprint:{}:", uuid::Uuid::new_v4().simple());
    let store = RedisStore::connect(RedisStoreConfig {
        url: url.clone(),
        key_prefix: prefix.clone(),
        closed_ttl: Duration::from_secs(30 * 86400),
        timeout: Duration::from_secs(2),
    })
    .await
    .with_context(|| format!("connecting to {url}"))?;
    let client = redis::Client::open(url.as_str())?;
    let mut raw = client.get_multiplexed_async_connection().await?;
    let version = {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut raw)
            .await?;
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_string()
    };
    let site = SiteId::parse("demo").context("site id")?;

    let memory_before = info_field(&mut raw, "memory", "used_memory").await?;
    let commands_before = info_field(&mut raw, "stats", "total_commands_processed").await?;
    let round_trips_before = store.round_trips();
    let mut turn_times = Vec::with_capacity(n_conversations * QUESTIONS.len());
    let mut ids = Vec::with_capacity(n_conversations);
    let started = Instant::now();
    for _ in 0..n_conversations {
        let id = ConversationId::generate();
        let visitor = VisitorId::generate();
        store
            .create_conversation(NewConversation {
                site: site.clone(),
                id,
                visitor: visitor.clone(),
                user_id: None,
                locale: Some("en".into()),
                page_url: Some("https://www.lumen.example/help".into()),
                created_at: OffsetDateTime::now_utc(),
            })
            .await?;
        for question in QUESTIONS {
            // The store calls of one answered turn, as the engine makes them: store the
            // message (status read atomically), read the events and the recent answers'
            // feedback for the policy, store the answer.
            let turn = Instant::now();
            store
                .append_visitor_message(
                    &site,
                    &id,
                    ClientMessageId::generate(),
                    MessageId::generate(),
                    question,
                    OffsetDateTime::now_utc(),
                )
                .await?;
            let events = store.events_after(&site, &id, EventId::ZERO, 1000).await?;
            let answers: Vec<AnswerId> = events
                .iter()
                .rev()
                .filter_map(|event| match &event.kind {
                    EventKind::AssistantAnswer { answer_id, .. } => Some(*answer_id),
                    _ => None,
                })
                .take(3)
                .collect();
            store.feedback_on_answers(&site, &id, &answers).await?;
            store
                .append_event(&site, &id, answer_event(), OffsetDateTime::now_utc())
                .await?;
            turn_times.push(turn.elapsed());
        }
        ids.push((id, visitor));
    }
    let elapsed = started.elapsed();
    let round_trips = store.round_trips() - round_trips_before;
    let commands =
        info_field(&mut raw, "stats", "total_commands_processed").await? - commands_before;
    let memory_after = info_field(&mut raw, "memory", "used_memory").await?;

    // MEMORY USAGE of each key of one conversation (SAMPLES 0 = exact).
    let (sample_id, sample_visitor) = &ids[0];
    let stem = format!("{prefix}conv:{}:{sample_id}", site.as_str());
    let mut per_key = Vec::new();
    for key in [
        format!("{stem}:meta"),
        format!("{stem}:events"),
        format!("{stem}:ids"),
        format!(
            "{prefix}visitor:{}:{}",
            site.as_str(),
            sample_visitor.as_str()
        ),
    ] {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut raw)
            .await?;
        per_key.push((
            key.trim_start_matches(&prefix).to_string(),
            bytes.unwrap_or(0),
        ));
    }

    turn_times.sort();
    let n_turns = turn_times.len();
    println!(
        "redis {version} at {url}, {n_conversations} conversations × {} turns",
        QUESTIONS.len()
    );
    println!(
        "memory: used_memory +{} bytes → {:.0} bytes per idle conversation (4 events, 3 keys + visitor index)",
        memory_after.saturating_sub(memory_before),
        memory_after.saturating_sub(memory_before) as f64 / n_conversations as f64
    );
    for (key, bytes) in &per_key {
        println!("  MEMORY USAGE {key}: {bytes} bytes");
    }
    println!(
        "  sum over one conversation's keys: {} bytes",
        per_key.iter().map(|(_, b)| b).sum::<u64>()
    );
    println!(
        "round trips: {round_trips} = {n_conversations} creations + {} for {n_turns} turns → {:.2} per turn \
         (a conversation's first turn has no earlier answer whose feedback to read: 3; later turns: 4); \
         Redis counted {commands} commands (scripts' inner calls included)",
        round_trips - n_conversations as u64,
        (round_trips - n_conversations as u64) as f64 / n_turns as f64,
    );
    println!(
        "store time per answered turn (3–4 round trips, loopback): p50 {:.0} µs, p99 {:.0} µs; {:.0} turns/s on one connection, sequential",
        percentile(&turn_times, 0.5).as_secs_f64() * 1e6,
        percentile(&turn_times, 0.99).as_secs_f64() * 1e6,
        n_turns as f64 / elapsed.as_secs_f64()
    );

    for (_, visitor) in &ids {
        store.delete_visitor(&site, visitor).await?;
    }
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut raw)
        .await?;
    println!(
        "cleanup: delete_visitor for every visitor left {} keys",
        left.len()
    );
    Ok(())
}
