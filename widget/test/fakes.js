// Fakes for the Session and Connection tests: a recording view, an in-memory store, a
// transport that records frames, manual timers and a scripted WebSocket.

export function recordingView() {
  const calls = [];
  const view = new Proxy(
    {},
    {
      get: (_, name) => (...args) => {
        calls.push([name, ...args]);
      },
    },
  );
  return { view, calls, of: (name) => calls.filter((c) => c[0] === name).map((c) => c.slice(1)) };
}

export function memoryStore(initial = {}, sent = {}) {
  const data = { state: JSON.parse(JSON.stringify(initial)), sent: { ...sent } };
  return {
    data,
    load: () => JSON.parse(JSON.stringify(data.state)),
    save: (state) => {
      data.state = JSON.parse(JSON.stringify(state));
    },
    loadSent: () => ({ ...data.sent }),
    saveSent: (value) => {
      data.sent = { ...value };
    },
  };
}

export function recordingTransport() {
  const frames = [];
  return { frames, send: (frame) => (frames.push(frame), true) };
}

export function manualTimers() {
  let now = 0;
  let next = 1;
  const pending = new Map();
  return {
    setTimeout(fn, ms) {
      const id = next++;
      pending.set(id, { fn, at: now + ms, ms });
      return id;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
    /** Delays of the timers now waiting. */
    delays: () => Array.from(pending.values(), (t) => t.ms),
    /** Runs every timer due within `ms`. */
    advance(ms) {
      now += ms;
      for (const [id, t] of Array.from(pending)) {
        if (t.at <= now) {
          pending.delete(id);
          t.fn();
        }
      }
    },
  };
}

/** A WebSocket class whose instances the test drives. */
export function fakeWebSocketClass() {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close(code = 1005, reason = "") {
      this.closedWith = { code, reason };
      this.readyState = 3;
    }
    // Test side:
    open() {
      this.readyState = 1;
      this.onopen && this.onopen();
    }
    receive(frame) {
      this.onmessage && this.onmessage({ data: JSON.stringify(frame) });
    }
    drop(code = 1006, reason = "") {
      this.readyState = 3;
      this.onclose && this.onclose({ code, reason });
    }
  }
  return { FakeSocket, sockets };
}
