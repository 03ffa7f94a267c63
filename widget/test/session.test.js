// The Session's protocol logic (PROTOCOL.md) against a recording view: resume, reconnect with
// last_event_id, dedupe by event_id, re-sending unacknowledged messages, errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Session, backoffDelay, uuid, codeKey } from "../src/session.js";
import { recordingView, memoryStore, recordingTransport, manualTimers } from "./fakes.js";

function setup(saved = {}, sent = {}) {
  const { view, calls, of } = recordingView();
  const store = memoryStore(saved, sent);
  const transport = recordingTransport();
  const timers = manualTimers();
  let n = 0;
  const session = new Session({
    siteKey: "pk_demo",
    locale: "en-GB",
    pageUrl: "https://www.example.com/help",
    store,
    transport,
    view,
    timers,
    newId: () => `00000000-0000-4000-8000-00000000000${++n}`,
  });
  return { session, calls, of, store, transport, timers };
}

const welcome = (extra = {}) => ({
  type: "welcome",
  conversation_id: "c1",
  visitor_id: "v1",
  resume_token: "r1",
  status: "bot",
  last_event_id: 0,
  history: [],
  ...extra,
});
const ack = (id, eventId, extra = {}) => ({
  type: "ack",
  client_message_id: id,
  message_id: `m${eventId}`,
  event_id: eventId,
  duplicate: false,
  ...extra,
});
const answer = (answerId, eventId, text = "Tap Forgot password?") => ({
  type: "answer_end",
  answer_id: answerId,
  event_id: eventId,
  text,
  sources: [{ article_id: "account/reset-password", title: "Reset your password", url: "/reset-password" }],
  confidence: 0.9,
  decision: "answer",
});
const ID1 = "00000000-0000-4000-8000-000000000001";
const ID2 = "00000000-0000-4000-8000-000000000002";

/** A session with one answered exchange (events 1 and 2), socket open. */
function answered(saved) {
  const s = setup(saved);
  s.session.onOpen();
  s.session.onFrame(welcome());
  s.session.sendMessage("How do I reset my password?");
  s.session.onFrame(ack(ID1, 1));
  s.session.onFrame(answer("a1", 2));
  return s;
}

test("a new visitor says hello; the conversation is kept once an event is stored", () => {
  const { session, store, transport, of } = setup();
  session.onOpen();
  assert.deepEqual(transport.frames[0], {
    type: "hello",
    v: 1,
    site_key: "pk_demo",
    page_url: "https://www.example.com/help",
    locale: "en-GB",
  });
  session.onFrame(welcome());
  assert.equal(store.data.state.visitor_id, "v1");
  assert.equal(store.data.state.conversation_id, undefined, "nothing stored yet: no reconnect at next page load");
  assert.equal(session.hasOpenConversation(), false);

  session.sendMessage("How do I reset my password?");
  assert.deepEqual(transport.frames[1], { type: "message", client_message_id: ID1, text: "How do I reset my password?" });
  assert.deepEqual(store.data.state.pending, [[ID1, "How do I reset my password?"]], "kept until acknowledged");
  session.onFrame(ack(ID1, 1));
  assert.equal(store.data.state.conversation_id, "c1");
  assert.equal(store.data.state.resume_token, "r1");
  assert.deepEqual(store.data.state.pending, []);
  assert.equal(session.hasOpenConversation(), true);
  assert.deepEqual(of("update").at(-1), [ID1, { state: "sent", eventId: 1 }]);
});

test("deltas stream in seq order, repeats are ignored, answer_end replaces them", () => {
  const { session, of } = setup();
  session.onOpen();
  session.onFrame(welcome());
  session.onFrame({ type: "typing", actor: "assistant", is_typing: true });
  session.onFrame({ type: "delta", answer_id: "a1", seq: 0, text: "On the" });
  session.onFrame({ type: "delta", answer_id: "a1", seq: 1, text: " sign-in" });
  session.onFrame({ type: "delta", answer_id: "a1", seq: 1, text: " sign-in" });
  session.onFrame(answer("a1", 2, "On the sign-in screen…"));
  assert.deepEqual(of("typing")[0], ["assistant"]);
  assert.deepEqual(of("stream"), [
    ["a1", "On the"],
    ["a1", "On the sign-in"],
  ]);
  const added = of("add").filter(([m]) => m.key === "a1");
  assert.equal(added.length, 1);
  assert.equal(added[0][0].text, "On the sign-in screen…");
  assert.equal(added[0][0].answerId, "a1");
  assert.deepEqual(of("unread").at(-1), [1], "the panel is closed: one unread reply");
});

test("a reconnect sends last_event_id and shows each missed event exactly once", () => {
  const { session, transport, of, store } = answered();
  store.data.sent[ID2] = "Do you ship to Canada?"; // written by another tab
  session.onClose();
  session.onOpen();
  assert.deepEqual(transport.frames.at(-1), {
    type: "hello",
    v: 1,
    site_key: "pk_demo",
    page_url: "https://www.example.com/help",
    locale: "en-GB",
    visitor_id: "v1",
    conversation_id: "c1",
    resume_token: "r1",
    last_event_id: 2,
  });
  const clearsBefore = of("clear").length;
  session.onFrame(welcome({ last_event_id: 4 }));
  assert.equal(of("clear").length, clearsBefore, "a reconnect keeps what is shown");
  session.onFrame(ack(ID2, 3)); // replayed: sent from another tab while this one was cut off
  session.onFrame(answer("a2", 4, "Yes, in 5 to 8 days."));
  // Delivered again (e.g. live after the replay): dropped.
  session.onFrame(ack(ID2, 3));
  session.onFrame(answer("a2", 4, "Yes, in 5 to 8 days."));
  session.onFrame(answer("a1", 2));
  const shown = of("add").map(([m]) => m.key);
  assert.deepEqual(shown.filter((k) => k === "a2"), ["a2"]);
  assert.deepEqual(shown.filter((k) => k === "a1"), ["a1"]);
  const other = of("add").find(([m]) => m.key === ID2)[0];
  assert.equal(other.text, "Do you ship to Canada?");
  assert.equal(session._lastEventId, 4);
});

test("a page load resumes with the full history and counts unread replies", () => {
  const { session, transport, of } = setup({ visitor_id: "v1", conversation_id: "c1", resume_token: "r1", read_event_id: 2 });
  assert.equal(session.hasOpenConversation(), true);
  session.onOpen();
  const hello = transport.frames[0];
  assert.equal(hello.conversation_id, "c1");
  assert.equal(hello.last_event_id, undefined, "a page load asks for the whole history");
  session.onFrame(
    welcome({
      status: "with_agent",
      last_event_id: 4,
      history: [
        { message_id: "m1", event_id: 1, role: "visitor", text: "Refund please", created_at: "2026-01-01T00:00:00Z" },
        { message_id: "m2", event_id: 2, role: "assistant", text: "Here is how…", sources: [], created_at: "2026-01-01T00:00:01Z" },
        { message_id: "m3", event_id: 3, role: "system", text: "Connecting you…", created_at: "2026-01-01T00:00:02Z" },
        { message_id: "m4", event_id: 4, role: "agent", text: "Hi, Sam here.", created_at: "2026-01-01T00:01:00Z" },
      ],
    }),
  );
  assert.equal(of("clear").length, 1);
  assert.deepEqual(
    of("add").map(([m]) => [m.kind, m.text]),
    [
      ["visitor", "Refund please"],
      ["assistant", "Here is how…"],
      ["system", "Connecting you…"],
      ["agent", "Hi, Sam here."],
    ],
  );
  assert.deepEqual(of("unread").at(-1), [1], "the agent's reply after the last read event");
  assert.deepEqual(of("status").at(-1), [{ status: "with_agent", handoff: null }]);
  session.setPanelOpen(true);
  assert.deepEqual(of("unread").at(-1), [0]);
});

test("a message typed while cut off is sent after the replay, once, with its id", () => {
  const { session, transport, of, store } = answered();
  session.onClose();
  session.sendMessage("Are you there?");
  assert.equal(transport.frames.filter((f) => f.type === "message").length, 1, "not sent while cut off");
  assert.equal(of("add").at(-1)[0].state, "queued");
  assert.deepEqual(store.data.state.pending, [[ID2, "Are you there?"]]);
  session.onOpen();
  session.onFrame(welcome({ last_event_id: 2 }));
  const messages = transport.frames.filter((f) => f.type === "message");
  assert.deepEqual(messages.at(-1), { type: "message", client_message_id: ID2, text: "Are you there?" });
  assert.equal(messages.length, 2);
});

test("a message stored before a reload but never acknowledged is re-sent and not shown twice", () => {
  const { session, transport, of, store } = setup({
    visitor_id: "v1",
    conversation_id: "c1",
    resume_token: "r1",
    pending: [[ID1, "Where is my order?"]],
  });
  session.onOpen();
  session.onFrame(
    welcome({
      last_event_id: 1,
      history: [{ message_id: "m1", event_id: 1, role: "visitor", text: "Where is my order?", created_at: "x" }],
    }),
  );
  assert.deepEqual(transport.frames.at(-1), { type: "message", client_message_id: ID1, text: "Where is my order?" });
  session.onFrame(ack(ID1, 1, { duplicate: true }));
  assert.deepEqual(of("remove"), [[ID1]], "the history already shows it");
  assert.deepEqual(store.data.state.pending, []);
  assert.ok(of("notice").some(([key, p]) => key === "interrupted" && p.askAgain === "Where is my order?"), "its answer was lost with the old page: offer to ask again");
});

test("an answer cut off by a dropped socket is marked and offered again", () => {
  const { session, of } = setup();
  session.onOpen();
  session.onFrame(welcome());
  session.sendMessage("How do refunds work?");
  session.onFrame(ack(ID1, 1));
  session.onFrame({ type: "delta", answer_id: "a1", seq: 0, text: "Refunds are" });
  session.onClose();
  session.onOpen();
  session.onFrame(welcome({ last_event_id: 1 }));
  assert.deepEqual(of("update").at(-1), ["a1", { interrupted: true, askAgain: "How do refunds work?" }]);
});

test("an unanswered message found after a reload offers to ask again", () => {
  const { session, of } = setup({ visitor_id: "v1", conversation_id: "c1", resume_token: "r1" });
  session.onOpen();
  session.onFrame(welcome({ last_event_id: 1, history: [{ message_id: "m1", event_id: 1, role: "visitor", text: "Hello?", created_at: "x" }] }));
  assert.deepEqual(of("notice"), [["interrupted", { askAgain: "Hello?" }]]);
});

test("rate-limited messages wait retry_after_ms and are re-sent with the same id", () => {
  const { session, transport, timers, of } = answered();
  session.sendMessage("one more");
  session.onFrame({ type: "error", code: "rate_limited", message: "slow down", retry_after_ms: 2500, client_message_id: ID2 });
  assert.deepEqual(of("update").at(-1), [ID2, { state: "waiting", note: ["rateLimited", { s: 3 }] }]);
  assert.deepEqual(timers.delays(), [2500]);
  timers.advance(2500);
  assert.deepEqual(transport.frames.at(-1), { type: "message", client_message_id: ID2, text: "one more" });
});

test("a message the server refuses is marked failed with the reason, not dropped silently", () => {
  const { session, of, store } = answered();
  session.sendMessage("x".repeat(10));
  session.onFrame({ type: "error", code: "bad_request", message: "message too long", client_message_id: ID2 });
  assert.deepEqual(of("update").at(-1), [ID2, { state: "failed", note: ["failed", { reason: "message too long" }], retryText: "xxxxxxxxxx" }]);
  assert.deepEqual(store.data.state.pending, []);
});

test("a conversation that cannot be resumed is replaced by a new one, and the visitor is told", () => {
  const { session, store, transport, of } = setup({ visitor_id: "v1", conversation_id: "c-old", resume_token: "bad" });
  session.onOpen();
  const next = session.onFrame({ type: "error", code: "unauthorized", message: "bad token" });
  assert.equal(next, "rehello");
  assert.deepEqual(of("notice"), [["restarted"]]);
  assert.equal(store.data.state.conversation_id, undefined);
  assert.equal(store.data.state.visitor_id, "v1");
  session.onOpen();
  assert.equal(transport.frames.at(-1).conversation_id, undefined);
});

test("a forbidden origin or unknown site key stops reconnecting, with a message", () => {
  for (const code of ["forbidden", "unauthorized"]) {
    const { session, of } = setup();
    session.onOpen();
    assert.equal(session.onFrame({ type: "error", code, message: "no" }), "fatal");
    assert.deepEqual(of("notice"), [[code, { fatal: true }]]);
  }
  const { session } = setup();
  session.onOpen();
  assert.equal(session.onFrame({ type: "error", code: "upstream_unavailable", message: "later" }), "retry");
});

test("handoff: status with team and queue position; a repeat updates without a new message; offline asks for an email", () => {
  const { session, of } = answered();
  session.requestHuman();
  const handoff = { type: "handoff", event_id: 3, status: "pending", team: "billing team", message: "Connecting you…", queue_position: 2 };
  session.onFrame(handoff);
  session.onFrame({ ...handoff, queue_position: 1 });
  assert.equal(of("add").filter(([m]) => m.kind === "system").length, 1);
  assert.deepEqual(of("status").at(-1), [
    { status: "waiting_for_agent", handoff: { status: "pending", team: "billing team", queue_position: 1 } },
  ]);
  session.onFrame({ type: "handoff", event_id: 4, status: "offline", message: "Nobody is around." });
  assert.equal(of("offlineForm").length, 1);
  session.contact("not-an-email");
  session.onFrame({ type: "error", code: "bad_request", message: "not an email address" });
  assert.deepEqual(of("notice").at(-1), ["emailInvalid", { contact: true }]);
});

test("agent messages count as unread while the panel is closed", () => {
  const { session, of } = answered();
  session.setPanelOpen(true);
  session.setPanelOpen(false);
  session.onFrame({ type: "agent_message", event_id: 3, message_id: "m3", agent_name: "Sam", text: "Hi!" });
  assert.deepEqual(of("add").at(-1)[0], { kind: "agent", key: "m3", text: "Hi!", agentName: "Sam", eventId: 3 });
  assert.deepEqual(of("unread").at(-1), [1]);
});

test("a closed conversation asks for CSAT and is not resumed at the next page load", () => {
  const { session, of, store, transport } = answered();
  session.onFrame({ type: "conversation_closed", event_id: 3, csat_requested: true });
  assert.deepEqual(of("closed"), [[true]]);
  assert.equal(store.data.state.closed, true);
  assert.equal(session.hasOpenConversation(), false);
  session.csat(5, "Quick and clear");
  assert.deepEqual(transport.frames.at(-1), { type: "csat", rating: 5, comment: "Quick and clear" });
  session.newConversation();
  assert.equal(store.data.state.conversation_id, undefined);
  assert.equal(store.data.state.visitor_id, "v1");
});

test("actions taken while disconnected are sent after the next welcome", () => {
  const { session, transport } = setup();
  session.requestHuman();
  session.feedback("a1", false);
  assert.equal(transport.frames.length, 0);
  session.onOpen();
  session.onFrame(welcome());
  assert.deepEqual(transport.frames.map((f) => f.type), ["hello", "request_human", "feedback"]);
  assert.deepEqual(transport.frames[2], { type: "feedback", answer_id: "a1", helpful: false });
});

test("errors without a message id are shown as notices", () => {
  const { session, of } = answered();
  session.onFrame({ type: "error", code: "upstream_timeout", message: "too slow" });
  session.onFrame({ type: "error", code: "internal", message: "bug" });
  assert.deepEqual(of("notice").map(([k]) => k), ["timeout", "internal"]);
  assert.equal(codeKey("constructor"), "internal");
});

test("backoff doubles from 1 s up to 30 s, with jitter in the upper half", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 10].map((a) => backoffDelay(a, () => 1)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.deepEqual([0, 1, 2, 5].map((a) => backoffDelay(a, () => 0)), [500, 1000, 2000, 15000]);
});

test("uuid: version 4 from randomUUID or getRandomValues", () => {
  const v4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(uuid(), v4);
  const fallback = uuid({ getRandomValues: (bytes) => bytes.fill(0xff) });
  assert.equal(fallback, "efffffff-efff-4fff-bfff-efffffffffff");
  assert.match(uuid({ getRandomValues: (bytes) => bytes.fill(0) }), v4);
});
