// The WebSocket under a Session: connect, reconnect with exponential backoff, pause while the
// browser is offline or after the server's idle timeout. The WebSocket class, the timers, the
// random source and the online flag are passed in (test/connection.test.js uses fakes).

import { backoffDelay } from "./session.js";

/** Close code and reason the server uses for an idle socket (PROTOCOL.md). */
const IDLE = { code: 1000, reason: "idle timeout" };

export class Connection {
  /**
   * @param {object} options
   * @param {string} options.url ws(s)://…/v1/ws
   * @param {import("./session.js").Session} [options.session] set later with `attach`
   * @param {typeof WebSocket} options.WebSocket
   * @param {{setTimeout: Function, clearTimeout: Function}} [options.timers]
   * @param {() => number} [options.random]
   * @param {() => boolean} [options.isOnline]
   * @param {(state: {state: string, retryInMs?: number}) => void} [options.onState]
   *   "connecting" | "open" | "waiting" (retry in retryInMs) | "offline" | "paused" | "stopped"
   */
  constructor(options) {
    this._o = options;
    this.session = options.session;
    this._timers = options.timers || globalThis;
    this._random = options.random || Math.random;
    this._isOnline = options.isOnline || (() => true);
    this._socket = null;
    this._timer = null;
    this._attempt = 0;
    this.state = "idle";
  }

  attach(session) {
    this.session = session;
  }

  _setState(state, retryInMs) {
    this.state = state;
    if (this._o.onState) this._o.onState({ state, retryInMs });
  }

  /** Sends a frame if the socket is open; false otherwise. */
  send(frame) {
    if (!this._socket || this._socket.readyState !== 1) return false;
    this._socket.send(JSON.stringify(frame));
    return true;
  }

  /** Connects now unless a socket is open or opening (also: "retry now", back online). */
  connect() {
    if (this.state === "stopped" || this._socket) return;
    this._clearTimer();
    if (!this._isOnline()) {
      this._setState("offline");
      return;
    }
    this._setState("connecting");
    let socket;
    try {
      socket = new this._o.WebSocket(this._o.url);
    } catch {
      this._scheduleRetry();
      return;
    }
    this._socket = socket;
    socket.onopen = () => this.session.onOpen();
    socket.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      const next = this.session.onFrame(frame);
      if (frame.type === "welcome") {
        this._attempt = 0;
        this._setState("open");
      }
      if (next === "rehello") this.session.onOpen();
      else if (next === "fatal") this.stop();
      else if (next === "retry") socket.close(4000, "retry");
    };
    socket.onclose = (event) => {
      if (this._socket !== socket) return;
      this._socket = null;
      this.session.onClose();
      if (this.state === "stopped") return;
      if (event && event.code === IDLE.code && event.reason === IDLE.reason) {
        this._setState("paused");
      } else if (!this._isOnline()) {
        this._setState("offline");
      } else {
        this._scheduleRetry();
      }
    };
  }

  _scheduleRetry() {
    const delay = backoffDelay(this._attempt++, this._random);
    this._setState("waiting", delay);
    this._timer = this._timers.setTimeout(() => {
      this._timer = null;
      this.connect();
    }, delay);
  }

  _clearTimer() {
    if (this._timer !== null) {
      this._timers.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  /** The browser is back online: reconnect at once, with a fresh backoff. */
  online() {
    if (this.state === "offline" || this.state === "waiting") {
      this._attempt = 0;
      this.connect();
    }
  }

  /** The browser went offline: stop retrying until it is back. */
  offline() {
    if (this.state === "stopped") return;
    this._clearTimer();
    if (!this._socket) this._setState("offline");
  }

  /** Closes the socket and reconnects at once (a new conversation, a fresh hello). */
  restart() {
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, "restart");
      this.session.onClose();
    }
    this._attempt = 0;
    this.connect();
  }

  /** Gives up for good (a fatal error: wrong site key, forbidden origin). */
  stop() {
    this._clearTimer();
    this._setState("stopped");
    if (this._socket) {
      const socket = this._socket;
      this._socket = null;
      socket.close(1000, "bye");
      this.session.onClose();
    }
  }
}
