//! PROTOCOL.md cannot drift from the code: every ```json example parses as the wire type of
//! its section and serialises back to the same JSON, and every frame type has exactly one
//! example.

use frontdesk::api::wire::{CLIENT_FRAME_TYPES, ClientFrame, ServerFrame};
use frontdesk_tests::read_repo_file;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ClientToServer,
    ServerToClient,
}

/// (direction, JSON text) of every ```json block, by the `## ` section it sits in.
fn examples(markdown: &str) -> Vec<(Direction, String)> {
    let mut direction = None;
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        if let Some(block) = current.as_mut() {
            if line.trim_start().starts_with("```") {
                let dir = direction.unwrap_or_else(|| {
                    panic!("a json example outside the frame sections:\n{block}")
                });
                blocks.push((dir, std::mem::take(block)));
                current = None;
            } else {
                block.push_str(line);
                block.push('\n');
            }
            continue;
        }
        if let Some(heading) = line.strip_prefix("## ") {
            direction = match heading.trim() {
                "Client → server frames" => Some(Direction::ClientToServer),
                "Server → client frames" => Some(Direction::ServerToClient),
                _ => None,
            };
        } else if line.trim() == "```json" {
            current = Some(String::new());
        }
    }
    blocks
}

/// The frame as the server or widget would put it on the wire, read back as JSON.
fn wire_json<T: serde::Serialize>(frame: &T) -> Value {
    let text = serde_json::to_string(frame).expect("serialises");
    serde_json::from_str(&text).expect("the wire text is JSON")
}

#[test]
fn every_protocol_example_round_trips_through_the_wire_types() {
    let markdown = read_repo_file("PROTOCOL.md");
    let blocks = examples(&markdown);
    let mut client_types: BTreeMap<String, usize> = BTreeMap::new();
    let mut server_types: BTreeMap<String, usize> = BTreeMap::new();
    for (direction, text) in &blocks {
        let original: Value =
            serde_json::from_str(text).unwrap_or_else(|err| panic!("not JSON ({err}):\n{text}"));
        let kind = original["type"]
            .as_str()
            .unwrap_or_else(|| panic!("no type:\n{text}"))
            .to_string();
        let round_tripped = match direction {
            Direction::ClientToServer => {
                let frame: ClientFrame = serde_json::from_value(original.clone())
                    .unwrap_or_else(|err| panic!("client frame {kind}: {err}"));
                *client_types.entry(kind.clone()).or_default() += 1;
                wire_json(&frame)
            }
            Direction::ServerToClient => {
                let frame: ServerFrame = serde_json::from_value(original.clone())
                    .unwrap_or_else(|err| panic!("server frame {kind}: {err}"));
                *server_types.entry(kind.clone()).or_default() += 1;
                wire_json(&frame)
            }
        };
        assert_eq!(round_tripped, original, "{kind} does not round-trip");
    }

    let expected_client: Vec<&str> = {
        let mut all = CLIENT_FRAME_TYPES.to_vec();
        all.sort_unstable();
        all
    };
    assert_eq!(
        client_types.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_client,
        "one example per client frame"
    );
    let mut expected_server = vec![
        "welcome",
        "ack",
        "typing",
        "delta",
        "answer_end",
        "handoff",
        "agent_message",
        "conversation_closed",
        "error",
    ];
    expected_server.sort_unstable();
    assert_eq!(
        server_types.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_server,
        "one example per server frame"
    );
    assert!(
        client_types
            .values()
            .chain(server_types.values())
            .all(|&n| n == 1),
        "exactly one example each"
    );
}

#[test]
fn the_error_code_table_lists_the_closed_set() {
    let markdown = read_repo_file("PROTOCOL.md");
    for code in [
        "bad_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "rate_limited",
        "upstream_unavailable",
        "upstream_timeout",
        "internal",
    ] {
        let parsed: frontdesk::api::wire::ErrorCode =
            serde_json::from_value(Value::String(code.into()))
                .unwrap_or_else(|err| panic!("{code}: {err}"));
        assert_eq!(
            serde_json::to_value(parsed).expect("serialises"),
            Value::String(code.into())
        );
        assert!(
            markdown.contains(&format!("| `{code}` |")),
            "PROTOCOL.md's table lacks {code}"
        );
    }
}
