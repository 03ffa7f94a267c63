/*
 * Frontdesk widget (minimal page script): one script tag,
 *   <script src="https://frontdesk.example.com/widget.js" data-site-key="pk_..." async></script>
 * opens the chat WebSocket (/v1/ws on the script's origin), says hello (resuming the
 * conversation kept in localStorage), sends messages and renders streamed answers with their
 * sources. Protocol: PROTOCOL.md. The full widget (styles, offline form, CSAT…) is its own issue.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.siteKey) {
    console.error("frontdesk: the script tag needs data-site-key");
    return;
  }
  var siteKey = script.dataset.siteKey;
  var origin = new URL(script.src, location.href).origin;
  var wsUrl = origin.replace(/^http/, "ws") + "/v1/ws";
  var storageKey = "frontdesk:" + siteKey;

  function load() {
    try { return JSON.parse(localStorage.getItem(storageKey)) || {}; } catch (e) { return {}; }
  }
  function save(state) {
    try { localStorage.setItem(storageKey, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
      return (c ^ (Math.random() * 16) >> (c / 4)).toString(16);
    });
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  // --- UI ---------------------------------------------------------------------------------
  var box = el("div", { id: "frontdesk-widget", role: "region", "aria-label": "Chat with support" });
  box.style.cssText = "position:fixed;right:1rem;bottom:1rem;width:22rem;max-height:32rem;display:flex;" +
    "flex-direction:column;font:14px/1.4 system-ui,sans-serif;background:#fff;border:1px solid #d0d7de;" +
    "border-radius:10px;box-shadow:0 4px 16px rgba(0,0,0,.12);z-index:2147483000";
  var log = el("div", { "aria-live": "polite" });
  log.style.cssText = "flex:1;overflow-y:auto;padding:.75rem";
  var status = el("div", {}, "Connecting…");
  status.style.cssText = "padding:.25rem .75rem;color:#57606a;font-size:12px";
  var form = el("form");
  form.style.cssText = "display:flex;gap:.25rem;padding:.5rem;border-top:1px solid #d0d7de";
  var input = el("input", { type: "text", placeholder: "Ask a question…", "aria-label": "Your message" });
  input.style.cssText = "flex:1;padding:.4rem";
  var human = el("button", { type: "button", title: "Talk to a person" }, "Person");
  var send = el("button", { type: "submit" }, "Send");
  form.appendChild(input); form.appendChild(human); form.appendChild(send);
  box.appendChild(log); box.appendChild(status); box.appendChild(form);

  function bubble(role, text) {
    var node = el("div", { "data-role": role });
    node.style.cssText = "margin:.35rem 0;padding:.4rem .6rem;border-radius:8px;white-space:pre-wrap;" +
      (role === "visitor" ? "background:#ddf4ff;margin-left:2rem" : "background:#f6f8fa;margin-right:2rem");
    node.textContent = text || "";
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
    return node;
  }
  function renderSources(node, sources) {
    if (!sources || !sources.length) return;
    var list = el("div");
    list.style.cssText = "margin-top:.35rem;font-size:12px;color:#57606a";
    list.appendChild(document.createTextNode("Sources: "));
    sources.forEach(function (s, i) {
      if (i) list.appendChild(document.createTextNode(", "));
      if (s.url) {
        var a = el("a", { href: s.url, target: "_blank", rel: "noopener" }, s.title);
        list.appendChild(a);
      } else {
        list.appendChild(document.createTextNode(s.title));
      }
    });
    node.appendChild(list);
  }

  // --- Protocol ---------------------------------------------------------------------------
  var state = load();
  var socket = null;
  var answers = {};           // answer_id -> bubble being streamed
  var pending = {};           // client_message_id -> text not yet acknowledged
  var retryMs = 1000;
  var rendered = false;       // history shown on this page load (then reconnects replay)

  function connect() {
    socket = new WebSocket(wsUrl);
    socket.onopen = function () {
      var hello = { type: "hello", v: 1, site_key: siteKey, page_url: location.href, locale: navigator.language };
      if (state.visitor_id) hello.visitor_id = state.visitor_id;
      if (state.conversation_id && state.resume_token) {
        hello.conversation_id = state.conversation_id;
        hello.resume_token = state.resume_token;
        if (rendered) hello.last_event_id = state.last_event_id || 0;
      }
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = function (event) { onFrame(JSON.parse(event.data)); };
    socket.onclose = function () {
      status.textContent = "Reconnecting…";
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    };
  }

  function seen(eventId) {
    if (eventId > (state.last_event_id || 0)) { state.last_event_id = eventId; save(state); }
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        retryMs = 1000;
        state.visitor_id = frame.visitor_id;
        state.conversation_id = frame.conversation_id;
        state.resume_token = frame.resume_token;
        if (!rendered) {
          log.textContent = "";
          frame.history.forEach(function (m) {
            var node = bubble(m.role, m.text);
            renderSources(node, m.sources);
          });
        }
        rendered = true;
        seen(frame.last_event_id);
        status.textContent = frame.status === "bot" ? "Ask us anything." : "A person from our team will reply here.";
        Object.keys(pending).forEach(function (id) {   // resend what was never acknowledged
          socket.send(JSON.stringify({ type: "message", client_message_id: id, text: pending[id] }));
        });
        break;
      case "ack":
        delete pending[frame.client_message_id];
        seen(frame.event_id);
        break;
      case "typing":
        status.textContent = frame.is_typing ? "Typing…" : "";
        break;
      case "delta":
        if (!answers[frame.answer_id]) answers[frame.answer_id] = bubble("assistant", "");
        answers[frame.answer_id].textContent += frame.text;
        log.scrollTop = log.scrollHeight;
        break;
      case "answer_end":
        var node = answers[frame.answer_id] || bubble("assistant", "");
        node.textContent = frame.text;
        renderSources(node, frame.sources);
        delete answers[frame.answer_id];
        status.textContent = frame.decision === "handoff" ? "Press “Person” to reach our team." : "";
        seen(frame.event_id);
        break;
      case "handoff":
      case "agent_message":
        bubble(frame.type === "handoff" ? "system" : "agent", frame.text || frame.message);
        status.textContent = frame.type === "handoff" ? "Waiting for a person from our team…" : "";
        seen(frame.event_id);
        break;
      case "conversation_closed":
        status.textContent = "This conversation is closed.";
        seen(frame.event_id);
        break;
      case "error":
        status.textContent = frame.message;
        if (frame.code === "unauthorized" || frame.code === "not_found") {
          state = { visitor_id: state.visitor_id }; save(state);   // start a new conversation
          if (socket) socket.close();
        }
        break;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || !socket || socket.readyState !== 1) return;
    var id = uuid();
    pending[id] = text;
    bubble("visitor", text);
    socket.send(JSON.stringify({ type: "message", client_message_id: id, text: text }));
    input.value = "";
  });
  human.addEventListener("click", function () {
    if (socket && socket.readyState === 1) socket.send(JSON.stringify({ type: "request_human" }));
  });

  function start() { document.body.appendChild(box); connect(); }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
