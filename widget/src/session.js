// The conversation as the widget sees it: the frames of PROTOCOL.md in, view calls out.
//
// No DOM, no WebSocket, no timers of its own: the transport, the storage, the timers and the
// view are passed in, so the logic is unit-tested with fakes (test/session.test.js).
//
// Guarantees:
// - every stored event (anything with an `event_id`) is shown at most once: frames whose
//   `event_id` is not above the highest seen are dropped (PROTOCOL.md "Identifiers and events");
// - a page load resumes with the full history; a dropped socket reconnects with
//   `last_event_id` and gets only what it missed;
// - a visitor message is kept (in memory and in storage) until its `ack`, and re-sent with the
//   same `client_message_id` after a reconnect or a reload, so nothing typed is lost and
//   nothing is stored twice;
// - every error reaches the view: nothing fails silently.

/** Milliseconds between reconnects: exponential from `baseMs`, capped at `maxMs`, with jitter
 * (a random point in the upper half of the interval, so many widgets don't reconnect in step).
 * @param {number} attempt 0 for the first retry
 * @param {() => number} [random] 0..1
 */
export function backoffDelay(attempt, random = Math.random, baseMs = 1000, maxMs = 30000) {
  const cap = Math.min(maxMs, baseMs * Math.pow(2, Math.max(0, attempt)));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/** A random UUID (v4), the `client_message_id` of a message. `crypto.randomUUID` exists only
 * in secure contexts; `getRandomValues` everywhere. */
export function uuid(crypto = globalThis.crypto) {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(31)); // one per hex digit to fill
  let i = 0;
  return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
    (c ^ (bytes[i++] & (15 >> (c / 4)))).toString(16),
  );
}

/** Visitor messages whose text other tabs may need (an ack replayed there carries no text). */
const SENT_KEPT = 30;

/** Error codes after which the conversation in storage cannot be resumed. */
const LOST = ["unauthorized", "not_found"];

/**
 * @typedef {object} View
 * @property {() => void} clear                      forget every message shown
 * @property {(m: object) => void} add               a message: {kind, key, text, ...}
 * @property {(key: string, patch: object) => void} update
 * @property {(key: string) => void} remove
 * @property {(answerId: string, text: string) => void} stream   the text streamed so far
 * @property {(actor: string|null) => void} typing
 * @property {(s: object) => void} status            {status, handoff}
 * @property {(n: number) => void} unread
 * @property {(kind: string, params?: object) => void} notice   a localised notice (key of i18n)
 * @property {(csatRequested: boolean) => void} closed
 * @property {() => void} offlineForm
 */

export class Session {
  /**
   * @param {object} options
   * @param {string} options.siteKey
   * @param {object} [options.identity] hello.identity
   * @param {string} [options.locale]
   * @param {string} [options.pageUrl]
   * @param {{load(): object, save(state: object): void, loadSent(): object, saveSent(sent: object): void}} options.store
   * @param {{send(frame: object): boolean}} options.transport
   * @param {View} options.view
   * @param {{setTimeout: Function, clearTimeout: Function}} [options.timers]
   * @param {() => string} [options.newId]
   */
  constructor(options) {
    this._o = options;
    this._store = options.store;
    this._view = options.view;
    this._timers = options.timers || globalThis;
    this._newId = options.newId || uuid;
    this._saved = Object.assign({}, this._store.load());
    /** client_message_id → text, in send order; persisted until acknowledged. */
    this._pending = new Map(Array.isArray(this._saved.pending) ? this._saved.pending : []);
    this._lastEventId = 0;
    this.rendered = false;
    this._phase = "idle";
    this.status = "bot";
    this._handoff = null;
    this._streams = new Map();
    this._messageIds = new Set();
    this._mine = new Set();
    this._outbox = [];
    this._lastVisitor = null;
    this._lastReplyEventId = 0;
    this._replayUntil = 0;
    this._panelOpen = false;
    this._unread = 0;
    this._current = null;
    this._retryTimers = new Map();
    this._sentHello = null;
  }

  /** True when a conversation with messages is kept in storage (reconnect at page load). */
  hasOpenConversation() {
    return Boolean(this._saved.conversation_id && this._saved.resume_token && !this._saved.closed);
  }

  _persist() {
    this._saved.pending = Array.from(this._pending);
    this._store.save(this._saved);
  }

  /** The conversation exists on the server (an event was stored): keep it across page loads. */
  _keepConversation() {
    if (this._current && this._saved.conversation_id !== this._current.conversation_id) {
      this._saved.conversation_id = this._current.conversation_id;
      this._saved.resume_token = this._current.resume_token;
      this._persist();
    }
  }

  /** The socket opened: say hello. */
  onOpen() {
    const hello = { type: "hello", v: 1, site_key: this._o.siteKey };
    if (this._o.pageUrl) hello.page_url = this._o.pageUrl;
    if (this._o.locale) hello.locale = this._o.locale;
    if (this._o.identity) hello.identity = this._o.identity;
    if (this._saved.visitor_id) hello.visitor_id = this._saved.visitor_id;
    if (this._saved.conversation_id && this._saved.resume_token) {
      hello.conversation_id = this._saved.conversation_id;
      hello.resume_token = this._saved.resume_token;
      if (this.rendered && this._current && this._current.conversation_id === this._saved.conversation_id) {
        hello.last_event_id = this._lastEventId;
      }
    }
    this._phase = "hello";
    this._sentHello = hello;
    this._o.transport.send(hello);
  }

  /** The socket closed (or failed): answers being streamed will not finish on this socket. */
  onClose() {
    this._phase = "idle";
    this._view.typing(null);
  }

  /** Can frames other than hello be sent now? */
  ready() {
    return this._phase === "open";
  }

  send(frame) {
    return this.ready() && this._o.transport.send(frame);
  }

  /** Sends now, or after the next welcome. */
  _sendOrQueue(frame) {
    if (!this.send(frame)) this._outbox.push(frame);
  }

  /**
   * Handles a server frame. Returns what the connection should do next:
   * "rehello" (send hello again on this socket), "fatal" (stop reconnecting),
   * "retry" (close and reconnect later) or undefined.
   */
  onFrame(frame) {
    if (!frame || typeof frame.type !== "string") return undefined;
    if (frame.type === "welcome") return this._onWelcome(frame);
    if (frame.type === "error") return this._onError(frame);
    if (frame.type === "typing") {
      this._view.typing(frame.is_typing ? frame.actor : null);
      return undefined;
    }
    if (frame.type === "delta") return this._onDelta(frame);
    const eventId = typeof frame.event_id === "number" ? frame.event_id : null;
    const seen = eventId !== null && eventId <= this._lastEventId;
    if (frame.type === "ack") this._onAck(frame, seen);
    else if (seen) {
      // Already shown; a repeated handoff (request_human while pending) may still update its state.
      if (frame.type === "handoff") this._setHandoff(frame);
    } else if (frame.type === "answer_end") this._onAnswer(frame);
    else if (frame.type === "handoff") this._onHandoff(frame);
    else if (frame.type === "agent_message") this._onAgent(frame);
    else if (frame.type === "conversation_closed") this._onClosed(frame);
    if (eventId !== null && !seen) {
      this._lastEventId = eventId;
      this._keepConversation();
      if (this._panelOpen) this._markRead();
      if (this._phase === "replay" && this._lastEventId >= this._replayUntil) this._afterReplay();
    }
    return undefined;
  }

  _onWelcome(frame) {
    const hello = this._sentHello || {};
    this._current = { conversation_id: frame.conversation_id, resume_token: frame.resume_token };
    if (frame.visitor_id && frame.visitor_id !== this._saved.visitor_id) {
      this._saved.visitor_id = frame.visitor_id;
      this._persist();
    }
    if (this._saved.conversation_id === frame.conversation_id) {
      this._saved.resume_token = frame.resume_token;
      this._persist();
    }
    const reconnect = typeof hello.last_event_id === "number";
    if (!reconnect) {
      this._view.clear();
      this._streams.clear();
      this._messageIds.clear();
      this._lastReplyEventId = 0;
      this._lastVisitor = null;
      let unread = 0;
      const readUpTo = typeof this._saved.read_event_id === "number" ? this._saved.read_event_id : Infinity;
      for (const entry of frame.history || []) {
        this._messageIds.add(entry.message_id);
        const kind = entry.role === "visitor" || entry.role === "agent" || entry.role === "system" ? entry.role : "assistant";
        this._view.add({
          kind,
          key: entry.message_id,
          text: entry.text,
          sources: entry.sources,
          agentName: entry.agent_name,
          eventId: entry.event_id,
          history: true,
        });
        if (kind === "visitor") this._lastVisitor = { eventId: entry.event_id, text: entry.text };
        else this._lastReplyEventId = Math.max(this._lastReplyEventId, entry.event_id);
        if ((kind === "assistant" || kind === "agent") && entry.event_id > readUpTo) unread++;
      }
      // Messages typed before a reload and never acknowledged are shown again and re-sent.
      for (const [id, text] of this._pending) {
        this._mine.add(id);
        this._view.add({ kind: "visitor", key: id, text, state: "sending" });
      }
      this._lastEventId = frame.last_event_id || 0;
      this.rendered = true;
      this._setUnread(this._panelOpen ? 0 : unread);
      if (this._panelOpen) this._markRead();
    }
    this.status = frame.status || "bot";
    if (this.status === "bot") this._handoff = null;
    this._emitStatus();
    this._phase = "replay";
    this._replayUntil = reconnect ? frame.last_event_id || 0 : this._lastEventId;
    if (this.status === "closed") {
      this._saved.closed = true;
      this._persist();
      this._view.closed(false);
    }
    if (this._lastEventId >= this._replayUntil) this._afterReplay();
    return undefined;
  }

  /** Everything stored before this socket opened has been shown: catch up on the rest. */
  _afterReplay() {
    this._phase = "open";
    if (this._streams.size) {
      // The socket closed mid-answer: the server stopped that turn, so no answer_end will come.
      const askAgain = this._lastVisitor && this._lastVisitor.text;
      for (const [answerId] of this._streams) this._view.update(answerId, { interrupted: true, askAgain });
      this._streams.clear();
      this._lastVisitor = null;
    }
    this._checkUnanswered();
    for (const [id, text] of this._pending) {
      if (!this._retryTimers.has(id)) this._o.transport.send({ type: "message", client_message_id: id, text });
    }
    const outbox = this._outbox.splice(0);
    for (const frame of outbox) this._o.transport.send(frame);
  }

  /** The last visitor message has no reply and none is coming (its turn ended with the socket). */
  _checkUnanswered(eventId) {
    const last = this._lastVisitor;
    if (!last || this.status !== "bot" || this._pending.size) return;
    if (eventId !== undefined && eventId !== last.eventId) return;
    if (last.eventId > this._lastReplyEventId && last.text) {
      this._view.notice("interrupted", { askAgain: last.text });
      this._lastVisitor = null;
    }
  }

  _onAck(frame, seen) {
    const id = frame.client_message_id;
    const ours = this._pending.has(id) || this._mine.has(id);
    if (ours) {
      const text = this._pending.get(id);
      this._pending.delete(id);
      this._persist();
      this._clearRetry(id);
      if (seen && this._messageIds.has(frame.message_id) && text !== undefined) {
        // Stored before a reload: the history already shows it.
        this._view.remove(id);
      } else {
        this._view.update(id, { state: "sent", eventId: frame.event_id });
      }
      if (!seen) this._lastVisitor = { eventId: frame.event_id, text: text !== undefined ? text : (this._lastVisitor || {}).text };
      if (frame.duplicate) this._checkUnanswered(frame.event_id);
    } else if (!seen) {
      // A message sent from another tab of this visitor (or replayed after a cut).
      const sent = this._store.loadSent() || {};
      const text = typeof sent[id] === "string" ? sent[id] : null;
      this._view.add({ kind: "visitor", key: id, text, elsewhere: text === null, eventId: frame.event_id });
      this._lastVisitor = { eventId: frame.event_id, text };
    }
    if (!seen) this._messageIds.add(frame.message_id);
  }

  _onDelta(frame) {
    const stream = this._streams.get(frame.answer_id) || { seq: -1, text: "" };
    if (typeof frame.seq !== "number" || frame.seq <= stream.seq) return undefined;
    stream.seq = frame.seq;
    stream.text += frame.text || "";
    this._streams.set(frame.answer_id, stream);
    this._view.stream(frame.answer_id, stream.text);
    return undefined;
  }

  _onAnswer(frame) {
    this._streams.delete(frame.answer_id);
    this._view.typing(null);
    this._view.add({
      kind: "assistant",
      key: frame.answer_id,
      answerId: frame.answer_id,
      text: frame.text,
      sources: frame.sources,
      decision: frame.decision,
      eventId: frame.event_id,
    });
    this._lastReplyEventId = frame.event_id;
    this._bumpUnread();
  }

  _setHandoff(frame) {
    this._handoff = { status: frame.status, team: frame.team || null, queue_position: frame.queue_position };
    // Offline: recorded and waiting too (nobody answers live; the email form is offered).
    if (frame.status === "pending" || frame.status === "offline") this.status = "waiting_for_agent";
    else if (frame.status === "assigned") this.status = "with_agent";
    else if (frame.status === "failed") this.status = "bot";
    this._emitStatus();
  }

  _onHandoff(frame) {
    this._view.typing(null);
    this._view.add({ kind: "system", key: `handoff-${frame.event_id}`, text: frame.message, eventId: frame.event_id });
    this._lastReplyEventId = frame.event_id;
    this._setHandoff(frame);
    if (frame.status === "offline") this._view.offlineForm();
  }

  _onAgent(frame) {
    this._view.typing(null);
    this._view.add({
      kind: "agent",
      key: frame.message_id,
      text: frame.text,
      agentName: frame.agent_name,
      eventId: frame.event_id,
    });
    this._lastReplyEventId = frame.event_id;
    this.status = "with_agent";
    this._emitStatus();
    this._bumpUnread();
  }

  _onClosed(frame) {
    this.status = "closed";
    this._saved.closed = true;
    this._persist();
    this._emitStatus();
    this._view.closed(Boolean(frame.csat_requested));
  }

  _onError(frame) {
    const id = frame.client_message_id;
    if (this._phase === "hello") {
      if (LOST.includes(frame.code) && this._sentHello && this._sentHello.conversation_id) {
        // The kept conversation cannot be resumed (expired, or the server's secret changed):
        // start a new one on this socket, and say so.
        this.forgetConversation();
        this._view.clear();
        this._view.notice("restarted");
        return "rehello";
      }
      if (frame.code === "unauthorized" || frame.code === "forbidden" || frame.code === "bad_request") {
        this._view.notice(frame.code === "forbidden" ? "forbidden" : "unauthorized", { fatal: true });
        return "fatal";
      }
      this._view.notice(codeKey(frame.code));
      return "retry";
    }
    if (id && this._pending.has(id)) {
      if (frame.code === "rate_limited" || frame.code === "upstream_unavailable" || frame.code === "upstream_timeout") {
        const wait = Math.max(1000, frame.retry_after_ms || 3000);
        this._view.update(id, {
          state: "waiting",
          note: frame.code === "rate_limited" ? ["rateLimited", { s: Math.ceil(wait / 1000) }] : [codeKey(frame.code)],
        });
        this._scheduleRetry(id, wait);
        return undefined;
      }
      const text = this._pending.get(id);
      this._pending.delete(id);
      this._persist();
      this._view.update(id, { state: "failed", note: ["failed", { reason: frame.message }], retryText: text });
      return undefined;
    }
    if (frame.code === "bad_request" && this._contactSent) {
      this._contactSent = false;
      this._view.notice("emailInvalid", { contact: true });
      return undefined;
    }
    if (frame.code === "bad_request" && this.status === "closed") {
      this._view.notice("closed");
      return undefined;
    }
    this._view.notice(codeKey(frame.code), { message: frame.message });
    return undefined;
  }

  _scheduleRetry(id, wait) {
    this._clearRetry(id);
    const timer = this._timers.setTimeout(() => {
      this._retryTimers.delete(id);
      const text = this._pending.get(id);
      if (text === undefined) return;
      this._view.update(id, { state: "sending", note: null });
      this.send({ type: "message", client_message_id: id, text });
    }, wait);
    this._retryTimers.set(id, timer);
  }

  _clearRetry(id) {
    if (this._retryTimers.has(id)) {
      this._timers.clearTimeout(this._retryTimers.get(id));
      this._retryTimers.delete(id);
    }
  }

  /** Drops the kept conversation (the visitor id stays). */
  forgetConversation() {
    delete this._saved.conversation_id;
    delete this._saved.resume_token;
    delete this._saved.read_event_id;
    delete this._saved.closed;
    this._current = null;
    this.rendered = false;
    this._lastEventId = 0;
    this._lastVisitor = null;
    this._lastReplyEventId = 0;
    this.status = "bot";
    this._handoff = null;
    this._persist();
  }

  _emitStatus() {
    this._view.status({ status: this.status, handoff: this._handoff });
  }

  // --- Visitor actions ---------------------------------------------------------------------

  /** Sends a visitor message (or keeps it until the socket is back). Returns its client id. */
  sendMessage(text) {
    const id = this._newId();
    this._pending.set(id, text);
    this._mine.add(id);
    this._persist();
    const sent = Object.assign({}, this._store.loadSent());
    sent[id] = text;
    const ids = Object.keys(sent);
    for (const old of ids.slice(0, Math.max(0, ids.length - SENT_KEPT))) delete sent[old];
    this._store.saveSent(sent);
    const now = this.send({ type: "message", client_message_id: id, text });
    this._view.add({ kind: "visitor", key: id, text, state: now ? "sending" : "queued" });
    return id;
  }

  requestHuman() {
    this._sendOrQueue({ type: "request_human" });
  }

  feedback(answerId, helpful) {
    this._sendOrQueue({ type: "feedback", answer_id: answerId, helpful });
  }

  csat(rating, comment) {
    const frame = { type: "csat", rating };
    if (comment) frame.comment = comment;
    this._sendOrQueue(frame);
  }

  contact(email) {
    this._contactSent = true;
    this._sendOrQueue({ type: "contact", email });
  }

  /** Visitor typing, relayed to an agent (only worth sending once a person is involved). */
  typing(isTyping) {
    if (this.status !== "bot" && this.status !== "closed") this.send({ type: "typing", is_typing: isTyping });
  }

  /** Starts afresh after a closed conversation: the caller reconnects. */
  newConversation() {
    this.forgetConversation();
    this._pending.clear();
    this._persist();
    this._view.clear();
    this._emitStatus();
  }

  // --- Unread badge --------------------------------------------------------------------------

  setPanelOpen(open) {
    this._panelOpen = open;
    this._saved.open = open;
    if (open) {
      this._setUnread(0);
      this._markRead();
    } else this._persist();
  }

  _markRead() {
    if (this._saved.read_event_id !== this._lastEventId) {
      this._saved.read_event_id = this._lastEventId;
      this._persist();
    }
  }

  _bumpUnread() {
    if (!this._panelOpen) this._setUnread(this._unread + 1);
  }

  _setUnread(n) {
    this._unread = n;
    this._view.unread(n);
  }
}

/** The i18n key of the notice for each error code (PROTOCOL.md); anything else is "internal". */
const NOTICE_KEYS = {
  rate_limited: "rateLimitedNotice",
  bad_request: "badRequest",
  upstream_unavailable: "unavailable",
  upstream_timeout: "timeout",
  forbidden: "forbidden",
  unauthorized: "unauthorized",
};

/** The i18n key of the notice for an error code. */
export function codeKey(code) {
  return Object.prototype.hasOwnProperty.call(NOTICE_KEYS, code) ? NOTICE_KEYS[code] : "internal";
}
