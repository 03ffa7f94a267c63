// Reconnecting: exponential backoff, pause when idle-closed or offline, stop on fatal errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection.js";
import { fakeWebSocketClass, manualTimers } from "./fakes.js";

function setup({ online = true, replies = {} } = {}) {
  const { FakeSocket, sockets } = fakeWebSocketClass();
  const timers = manualTimers();
  const states = [];
  const net = { online };
  const events = [];
  const connection = new Connection({
    url: "ws://127.0.0.1:9/v1/ws",
    WebSocket: FakeSocket,
    timers,
    random: () => 1, // the top of each backoff interval
    isOnline: () => net.online,
    onState: (s) => states.push(s),
  });
  const session = {
    onOpen: () => (events.push("open"), connection.send({ type: "hello" })),
    onFrame: (frame) => (events.push(frame.type), replies[frame.type]),
    onClose: () => events.push("close"),
  };
  connection.attach(session);
  return { connection, sockets, timers, states, net, events };
}

test("connects, says hello, and is open after welcome", () => {
  const { connection, sockets, states } = setup();
  connection.connect();
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0].url, "ws://127.0.0.1:9/v1/ws");
  sockets[0].open();
  assert.deepEqual(sockets[0].sent, [{ type: "hello" }]);
  sockets[0].receive({ type: "welcome" });
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open"]);
  connection.connect();
  assert.equal(sockets.length, 1, "one socket at a time");
});

test("reconnects with exponential backoff, reset by a welcome", () => {
  const { connection, sockets, timers, states } = setup();
  connection.connect();
  for (let i = 0; i < 6; i++) {
    sockets.at(-1).drop();
    assert.equal(states.at(-1).state, "waiting");
    timers.advance(states.at(-1).retryInMs);
  }
  const waits = states.filter((s) => s.state === "waiting").map((s) => s.retryInMs);
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000, 30000]);
  assert.equal(sockets.length, 7);
  sockets.at(-1).open();
  sockets.at(-1).receive({ type: "welcome" });
  sockets.at(-1).drop(1001, "server shutting down");
  assert.equal(states.at(-1).retryInMs, 1000, "a welcome resets the backoff");
});

test("'retry now' connects at once", () => {
  const { connection, sockets, timers } = setup();
  connection.connect();
  sockets[0].drop();
  connection.connect();
  assert.equal(sockets.length, 2);
  assert.deepEqual(timers.delays(), [], "the pending retry is cancelled");
});

test("an idle timeout pauses until the visitor comes back", () => {
  const { connection, sockets, timers, states } = setup();
  connection.connect();
  sockets[0].open();
  sockets[0].drop(1000, "idle timeout");
  assert.equal(states.at(-1).state, "paused");
  assert.deepEqual(timers.delays(), []);
  connection.connect();
  assert.equal(sockets.length, 2);
});

test("offline: no retries until the browser is back online, then at once", () => {
  const { connection, sockets, timers, states, net } = setup();
  connection.connect();
  sockets[0].open();
  net.online = false;
  connection.offline();
  sockets[0].drop();
  assert.equal(states.at(-1).state, "offline");
  assert.deepEqual(timers.delays(), []);
  net.online = true;
  connection.online();
  assert.equal(sockets.length, 2);
  assert.equal(states.at(-1).state, "connecting");
});

test("going offline while a retry waits cancels it", () => {
  const { connection, sockets, timers, states, net } = setup();
  connection.connect();
  sockets[0].drop();
  net.online = false;
  connection.offline();
  assert.deepEqual(timers.delays(), []);
  assert.equal(states.at(-1).state, "offline");
});

test("the session's verdicts: rehello on the same socket, retry later, or stop for good", () => {
  let s = setup({ replies: { error: "rehello" } });
  s.connection.connect();
  s.sockets[0].open();
  s.sockets[0].receive({ type: "error" });
  assert.deepEqual(s.sockets[0].sent, [{ type: "hello" }, { type: "hello" }]);

  s = setup({ replies: { error: "retry" } });
  s.connection.connect();
  s.sockets[0].open();
  s.sockets[0].receive({ type: "error" });
  assert.deepEqual(s.sockets[0].closedWith, { code: 4000, reason: "retry" });

  s = setup({ replies: { error: "fatal" } });
  s.connection.connect();
  s.sockets[0].open();
  s.sockets[0].receive({ type: "error" });
  assert.equal(s.states.at(-1).state, "stopped");
  assert.equal(s.sockets[0].readyState, 3);
  s.connection.connect();
  assert.equal(s.sockets.length, 1, "no reconnect after a fatal error");
});

test("frames are sent only on an open socket; malformed frames are ignored", () => {
  const { connection, sockets, events } = setup();
  assert.equal(connection.send({ type: "message" }), false);
  connection.connect();
  assert.equal(connection.send({ type: "message" }), false, "still connecting");
  sockets[0].open();
  sockets[0].onmessage({ data: "not json" });
  assert.deepEqual(events, ["open"]);
  assert.equal(connection.send({ type: "message" }), true);
});

test("restart closes the socket and opens a new one at once", () => {
  const { connection, sockets, events } = setup();
  connection.connect();
  sockets[0].open();
  connection.restart();
  assert.deepEqual(sockets[0].closedWith, { code: 1000, reason: "restart" });
  assert.equal(sockets.length, 2);
  assert.ok(events.includes("close"));
});
