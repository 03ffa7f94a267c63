// The chat panel, loaded by the launcher (`/widget.js?part=chat`) when the visitor opens the
// widget or has a conversation to resume. It draws the panel in the launcher's shadow root and
// is the Session's view: every DOM node is built with createElement and textContent.

/* global __CHAT_CSS__ */
import { translator } from "./i18n.js";
// One language per chat bundle: build.mjs aliases this to src/strings/<language>.js.
import STRINGS from "fd-strings";
import { Session } from "./session.js";
import { Connection } from "./connection.js";
import { renderMarkdown, linkHref, anchor } from "./render.js";
import { CLOSE_ICON, SEND_ICON } from "./icons.js";

/** Longest visitor message (the server's default `ws.max_message_chars`). */
const MAX_CHARS = 4000;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Builds an element. `props`: `text` → textContent, `on<event>` → listener, `hidden`,
 * anything else → attribute. Children: nodes or strings (text nodes).
 */
function h(d, tag, props, ...children) {
  const el = d.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") el.textContent = value;
    else if (name === "hidden") el.hidden = true;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      el.appendChild(typeof child === "string" ? d.createTextNode(child) : child);
    }
  }
  return el;
}

/**
 * Creates the panel under the launcher.
 * @param {{config: object, root: ShadowRoot, frame: HTMLElement, launcher: HTMLButtonElement,
 *   store: object, icon(path: string, className: string): SVGElement,
 *   setOpen(open: boolean): void, setUnread(n: number): void}} api
 */
export function createChat(api) {
  const d = document;
  const { config, frame, launcher } = api;
  const t = translator(STRINGS, config.greeting ? { greeting: config.greeting } : undefined);

  const style = h(d, "style", { text: __CHAT_CSS__ });
  api.root.insertBefore(style, api.root.firstChild.nextSibling);

  // --- Panel -------------------------------------------------------------------------------
  const humanButton = h(d, "button", { type: "button", class: "human", text: t("human"), onclick: () => session.requestHuman() });
  const closeButton = h(d, "button", { type: "button", class: "x", "aria-label": t("close"), onclick: () => close(true) }, api.icon(CLOSE_ICON, "i"));
  const conn = h(d, "div", { class: "conn", role: "status", hidden: true });
  const state = h(d, "div", { class: "state", role: "status", hidden: true });
  const log = h(d, "div", { class: "log", role: "log", "aria-live": "polite", "aria-labelledby": "fd-title", tabindex: "0" });
  const typing = h(d, "div", { class: "typing", role: "status", hidden: true });
  const input = h(d, "textarea", { id: "fd-input", rows: "1", maxlength: String(MAX_CHARS), placeholder: t("placeholder"), autocomplete: "off" });
  const sendButton = h(d, "button", { type: "submit", class: "send", "aria-label": t("send") }, api.icon(SEND_ICON, "i"));
  const form = h(d, "form", { class: "composer" }, h(d, "label", { for: "fd-input", class: "sr", text: t("inputLabel") }), input, sendButton);
  const panel = h(
    d,
    "div",
    { class: "panel", id: "fd-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "fd-title", hidden: true },
    h(d, "div", { class: "head" }, h(d, "h2", { id: "fd-title", text: config.title || t("title") }), humanButton, closeButton),
    conn,
    state,
    log,
    typing,
    form,
  );
  frame.insertBefore(panel, launcher);

  // --- Messages ------------------------------------------------------------------------------
  /** key → {el, body, meta, m} */
  const items = new Map();
  let greeting = null;

  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  const append = (el) => {
    const stick = nearBottom();
    log.appendChild(el);
    if (stick || !panel.hidden) log.scrollTop = log.scrollHeight;
  };

  const showGreeting = () => {
    greeting = h(d, "div", { class: "msg assistant greeting" }, h(d, "div", { class: "body", text: t("greeting") }));
    log.appendChild(greeting);
  };

  function sourcesList(sources) {
    if (!Array.isArray(sources) || !sources.length) return null;
    const list = h(d, "ul");
    for (const source of sources) {
      if (!source || typeof source.title !== "string") continue;
      const href = linkHref(source.url, d.baseURI);
      let item;
      if (href) {
        item = anchor(d, href);
        item.textContent = source.title;
      } else item = d.createTextNode(source.title);
      list.appendChild(h(d, "li", null, item));
    }
    return list.childNodes.length ? h(d, "div", { class: "sources" }, h(d, "span", { text: `${t("sources")}:` }), list) : null;
  }

  function feedbackButtons(answerId) {
    const note = h(d, "span", { class: "note", role: "status" });
    const buttons = [true, false].map((helpful) =>
      h(d, "button", {
        type: "button",
        class: helpful ? "up" : "down",
        "aria-pressed": "false",
        text: t(helpful ? "helpful" : "notHelpful"),
        onclick: () => {
          session.feedback(answerId, helpful);
          buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === (helpful ? 0 : 1))));
          note.textContent = t("feedbackThanks");
        },
      }),
    );
    return h(d, "div", { class: "actions" }, ...buttons, note);
  }

  function fill(item) {
    const { m, el, body } = item;
    el.className = `msg ${m.kind}${m.elsewhere ? " elsewhere" : ""}`;
    el.removeAttribute("aria-busy");
    while (el.lastChild !== body) el.removeChild(el.lastChild);
    if (m.kind === "assistant" || m.kind === "agent") renderMarkdown(d, body, m.text || "");
    else body.textContent = m.elsewhere ? t("elsewhere") : m.text || "";
    const sources = m.kind === "assistant" ? sourcesList(m.sources) : null;
    if (sources) el.appendChild(sources);
    if (m.answerId) el.appendChild(feedbackButtons(m.answerId));
    if (m.decision === "handoff" && session.status === "bot") {
      el.appendChild(h(d, "div", { class: "actions" }, h(d, "button", { type: "button", class: "human inline", text: t("human"), onclick: () => session.requestHuman() })));
    }
    item.meta = h(d, "div", { class: "meta" });
    el.appendChild(item.meta);
    setMeta(item);
  }

  function setMeta(item) {
    const { m, meta } = item;
    meta.textContent = "";
    let text = "";
    if (m.state === "sending") text = t("sending");
    else if (m.state === "queued") text = t("notSent");
    else if ((m.state === "waiting" || m.state === "failed") && m.note) text = t(m.note[0], m.note[1]);
    if (m.interrupted) text = t("interrupted");
    meta.hidden = !text;
    meta.className = `meta${m.state === "failed" || m.interrupted ? " bad" : ""}`;
    if (text) meta.appendChild(d.createTextNode(text));
    const retry = m.state === "failed" ? m.retryText : m.interrupted ? m.askAgain : null;
    if (retry) {
      meta.appendChild(
        h(d, "button", { type: "button", class: "link", text: t("askAgain"), onclick: () => sendText(retry) }),
      );
    }
  }

  function who(m) {
    if (m.kind === "agent") return h(d, "div", { class: "who", text: m.agentName || t("agent") });
    if (m.kind === "system") return null;
    return h(d, "span", { class: "sr", text: `${t(m.kind === "visitor" ? "you" : "assistant")}: ` });
  }

  function add(m) {
    if (greeting) {
      greeting.remove();
      greeting = null;
    }
    const existing = items.get(m.key);
    if (existing) {
      existing.m = Object.assign(existing.m, m, { interrupted: false });
      fill(existing);
      return;
    }
    const body = h(d, "div", { class: "body" });
    const el = h(d, "div", { "data-key": m.key }, who(m), body);
    if (m.eventId) el.setAttribute("data-event-id", String(m.eventId));
    const item = { m: Object.assign({}, m), el, body };
    items.set(m.key, item);
    fill(item);
    append(el);
  }

  function notice(key, params = {}) {
    const el = h(d, "div", { class: `notice${params.fatal ? " bad" : ""}`, text: t(key, params) });
    if (params.askAgain) el.appendChild(h(d, "button", { type: "button", class: "link", text: t("askAgain"), onclick: () => sendText(params.askAgain) }));
    if (params.fatal) setComposer(false);
    if (params.contact) return offlineForm(t(key));
    append(el);
    return el;
  }

  function setComposer(enabled) {
    input.disabled = !enabled;
    sendButton.disabled = !enabled;
  }

  function offlineForm(error) {
    const email = h(d, "input", { type: "email", id: "fd-email", autocomplete: "email", "aria-describedby": "fd-email-error" });
    const err = h(d, "div", { id: "fd-email-error", class: "meta bad", role: "alert", text: error || "" });
    const box = h(
      d,
      "form",
      {
        class: "card",
        // Our own check, with a message in the widget's language.
        novalidate: true,
        onsubmit: (event) => {
          event.preventDefault();
          const value = email.value.trim();
          if (!EMAIL.test(value)) {
            err.textContent = t("emailInvalid");
            email.focus();
            return;
          }
          session.contact(value);
          box.replaceWith(h(d, "div", { class: "notice", text: t("emailThanks", { email: value }) }));
        },
      },
      h(d, "p", { text: t("offlineTeam") }),
      h(d, "label", { for: "fd-email", text: t("emailLabel") }),
      h(d, "div", { class: "row" }, email, h(d, "button", { type: "submit", class: "primary", text: t("emailSend") })),
      err,
    );
    append(box);
    if (!panel.hidden) email.focus();
  }

  function csatForm() {
    let rating = 0;
    const legendId = "fd-csat";
    const comment = h(d, "textarea", { id: "fd-csat-comment", rows: "2", maxlength: "2000" });
    const submit = h(d, "button", { type: "submit", class: "primary", text: t("csatSend"), disabled: true });
    const stars = [1, 2, 3, 4, 5].map((n) =>
      h(d, "button", {
        type: "button",
        class: "star",
        "aria-pressed": "false",
        "aria-label": t("csatRating", { n }),
        text: String(n),
        onclick: () => {
          rating = n;
          stars.forEach((b, i) => b.setAttribute("aria-pressed", String(i + 1 === n)));
          submit.disabled = false;
        },
      }),
    );
    const box = h(
      d,
      "form",
      {
        class: "card",
        onsubmit: (event) => {
          event.preventDefault();
          if (!rating) return;
          session.csat(rating, comment.value.trim());
          box.replaceWith(h(d, "div", { class: "notice", role: "status", text: t("csatThanks") }));
        },
      },
      h(d, "p", { id: legendId, text: t("csatQuestion") }),
      h(d, "div", { class: "stars", role: "group", "aria-labelledby": legendId }, ...stars),
      h(d, "label", { for: "fd-csat-comment", text: t("csatComment") }),
      comment,
      submit,
    );
    append(box);
  }

  // --- Status lines ------------------------------------------------------------------------
  let connState = { state: "idle" };
  let browserOffline = typeof navigator !== "undefined" && navigator.onLine === false;

  function renderConn() {
    conn.textContent = "";
    const s = connState.state;
    let text = "";
    if (browserOffline || s === "offline") text = t("offline");
    else if (s === "connecting" && !session.rendered) text = t("connecting");
    else if (s === "connecting" || s === "waiting") {
      const left = Math.max(1, Math.ceil(((connState.at || 0) - Date.now()) / 1000));
      text = t("reconnecting", { s: left });
      // Count down to the next attempt.
      if (s === "waiting" && left > 1) setTimeout(() => connState.state === "waiting" && renderConn(), 1000);
    }
    else if (s === "paused") text = t("paused");
    conn.hidden = !text;
    if (!text) return;
    conn.appendChild(d.createTextNode(text));
    if (s === "waiting" && !browserOffline) {
      conn.appendChild(h(d, "button", { type: "button", class: "link", text: t("retryNow"), onclick: () => connection.connect() }));
    }
  }

  function renderState(s) {
    let text = "";
    const handoff = s.handoff;
    if (s.status === "closed") text = t("closed");
    else if (handoff && handoff.status === "pending") {
      text = t("handoffPending", { team: handoff.team || t("ourTeam") });
      if (typeof handoff.queue_position === "number" && handoff.queue_position > 0) {
        text += ` ${t("queue", { n: handoff.queue_position })}`;
      }
    } else if (handoff && handoff.status === "offline") {
      text = t("handoffOffline", { team: handoff.team || t("ourTeam") });
      if (typeof handoff.queue_position === "number" && handoff.queue_position > 0) {
        text += ` ${t("queue", { n: handoff.queue_position })}`;
      }
    } else if (handoff && handoff.status === "assigned") text = t("handoffAssigned", { team: handoff.team || t("ourTeam") });
    else if (handoff && handoff.status === "failed") text = t("handoffFailed");
    state.textContent = text;
    state.hidden = !text;
    humanButton.hidden = s.status !== "bot";
    log.querySelectorAll(".human.inline").forEach((b) => {
      b.hidden = s.status !== "bot";
    });
  }

  // --- Session and connection ----------------------------------------------------------------
  const connection = new Connection({
    url: config.wsUrl,
    WebSocket: window.WebSocket,
    isOnline: () => navigator.onLine !== false,
    onState: (s) => {
      connState = Object.assign({ at: Date.now() + (s.retryInMs || 0) }, s);
      renderConn();
    },
  });

  const view = {
    clear() {
      items.clear();
      log.textContent = "";
      typing.hidden = true;
      setComposer(true);
      showGreeting();
    },
    add,
    update(key, patch) {
      const item = items.get(key);
      if (!item) return;
      Object.assign(item.m, patch);
      if (patch.interrupted) item.el.removeAttribute("aria-busy");
      if (patch.eventId) item.el.setAttribute("data-event-id", String(patch.eventId));
      setMeta(item);
    },
    remove(key) {
      const item = items.get(key);
      if (item) item.el.remove();
      items.delete(key);
    },
    stream(answerId, text) {
      typing.hidden = true;
      let item = items.get(answerId);
      if (!item) {
        add({ kind: "assistant", key: answerId, text: "" });
        item = items.get(answerId);
        item.el.setAttribute("aria-busy", "true");
        item.el.classList.add("streaming");
      }
      const stick = nearBottom();
      renderMarkdown(d, item.body, text);
      if (stick) log.scrollTop = log.scrollHeight;
    },
    typing(actor) {
      typing.textContent = "";
      typing.hidden = !actor;
      if (!actor) return;
      typing.appendChild(h(d, "span", { class: "dots", "aria-hidden": "true" }, h(d, "i"), h(d, "i"), h(d, "i")));
      typing.appendChild(h(d, "span", { class: "sr", text: t(actor === "agent" ? "typingAgent" : "typingAssistant") }));
    },
    status: renderState,
    unread: (n) => api.setUnread(n),
    notice,
    closed(csatRequested) {
      setComposer(false);
      const again = h(d, "button", {
        type: "button",
        class: "primary",
        text: t("newConversation"),
        onclick: () => {
          session.newConversation();
          connection.restart();
          input.focus();
        },
      });
      if (csatRequested) csatForm();
      append(h(d, "div", { class: "notice" }, h(d, "p", { text: t("closed") }), again));
    },
    offlineForm: () => offlineForm(),
  };

  const session = new Session({
    siteKey: config.siteKey,
    identity: config.identity,
    locale: config.locale,
    pageUrl: location.href,
    store: api.store,
    transport: connection,
    view,
  });
  connection.attach(session);
  view.clear();

  function sendText(text) {
    if (connection.state === "paused" || connection.state === "idle") connection.connect();
    session.sendMessage(text);
  }

  // --- Visitor input -------------------------------------------------------------------------
  let typingSent = 0;
  let typingTimer = null;
  const stopTyping = () => {
    if (typingSent) session.typing(false);
    typingSent = 0;
  };
  input.addEventListener("input", () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
    const now = Date.now();
    if (now - typingSent > 3000) {
      session.typing(true);
      typingSent = now;
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 4000);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || input.disabled) return;
    input.value = "";
    input.style.height = "auto";
    clearTimeout(typingTimer);
    stopTyping();
    sendText(text.slice(0, MAX_CHARS));
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      close(true);
    }
  });
  window.addEventListener("online", () => {
    browserOffline = false;
    renderConn();
    connection.online();
  });
  window.addEventListener("offline", () => {
    browserOffline = true;
    renderConn();
    connection.offline();
  });

  // --- Open and close --------------------------------------------------------------------------
  function open() {
    panel.hidden = false;
    api.setOpen(true);
    session.setPanelOpen(true);
    if (connection.state === "idle" || connection.state === "paused") connection.connect();
    log.scrollTop = log.scrollHeight;
    (input.disabled ? closeButton : input).focus();
  }

  function close(returnFocus) {
    panel.hidden = true;
    api.setOpen(false);
    session.setPanelOpen(false);
    if (returnFocus) launcher.focus();
  }

  // A kept conversation reconnects now, even with the panel closed (replies, unread badge).
  if (session.hasOpenConversation()) connection.connect();

  return {
    open,
    close: () => close(false),
    toggle: () => (panel.hidden ? open() : close(true)),
  };
}

if (window.__frontdesk) window.__frontdesk.register(createChat);
