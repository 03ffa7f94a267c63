// The launcher: what the script tag loads. It reads the settings, draws the launcher button in
// a shadow root and loads the chat panel (`/widget.js?part=chat&lang=…`, in the visitor's language) only when the visitor opens
// it — or at once when a conversation is kept in localStorage, so agent replies and the unread
// badge arrive while the panel is closed.
//
// Embedding: <script src="https://frontdesk.example.com/widget.js" data-site-key="pk_…" async></script>

/* global __LAUNCHER_CSS__, __CHAT_VERSION__ */
import { readConfig } from "./config.js";
import { LAUNCHER, format } from "./i18n.js";
import { createStore } from "./storage.js";
import { svg, CHAT_ICON, CLOSE_ICON } from "./icons.js";

(function () {
  const w = window;
  const d = document;
  if (w.__frontdesk) return; // the tag is on the page twice
  const script = d.currentScript;
  const config = readConfig(script ? script.dataset : {}, w.FrontdeskSettings, {
    pageLang: d.documentElement.lang,
    languages: navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language],
    scriptSrc: script ? script.src : undefined,
    pageUrl: location.href,
  });
  if (!config.siteKey) {
    console.error("Frontdesk: data-site-key is missing");
    return;
  }
  const strings = LAUNCHER[config.language];
  let storage;
  try {
    storage = w.localStorage;
  } catch {
    storage = undefined; // blocked third-party storage: the widget works for this page only
  }
  const store = createStore(storage, config.siteKey);

  const host = d.createElement("frontdesk-widget");
  const root = host.attachShadow({ mode: "open" });
  const style = d.createElement("style");
  style.textContent = __LAUNCHER_CSS__;
  const frame = d.createElement("div");
  frame.className = `fd ${config.position}`;
  frame.style.setProperty("--fd-primary", config.primary);
  frame.style.setProperty("--fd-on-primary", config.onPrimary);
  frame.setAttribute("lang", config.language);
  const button = d.createElement("button");
  button.type = "button";
  button.className = "launcher";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-haspopup", "dialog");
  button.setAttribute("aria-controls", "fd-panel");
  button.appendChild(svg(d, CHAT_ICON, "i-chat"));
  button.appendChild(svg(d, CLOSE_ICON, "i-close"));
  const badge = d.createElement("span");
  badge.className = "badge";
  badge.setAttribute("aria-hidden", "true");
  badge.hidden = true;
  button.appendChild(badge);
  frame.appendChild(button);
  root.appendChild(style);
  root.appendChild(frame);

  let chat = null;
  let loading = false;
  let wantOpen = false;
  let open = false;
  let unread = 0;
  const label = () => {
    let text = open ? strings.close : strings.open;
    if (unread && !open) text += `, ${format(strings.unread, { n: unread })}`;
    button.setAttribute("aria-label", text);
  };
  label();

  /** What the chat bundle gets to build the panel next to the launcher. */
  const api = {
    config,
    root,
    frame,
    launcher: button,
    store,
    icon: (path, className) => svg(d, path, className),
    setOpen(isOpen) {
      open = isOpen;
      button.setAttribute("aria-expanded", String(isOpen));
      frame.classList.toggle("open", isOpen);
      label();
    },
    setUnread(n) {
      unread = n;
      badge.textContent = n > 9 ? "9+" : String(n);
      badge.hidden = !n;
      label();
    },
  };

  const load = () => {
    if (loading || chat) return;
    loading = true;
    button.classList.add("loading");
    const tag = d.createElement("script");
    tag.async = true;
    tag.src = `${config.server}/widget.js?part=chat&lang=${config.language}&v=${__CHAT_VERSION__}`;
    tag.onerror = () => {
      // Never a silent failure: say so on the button, and let a click try again.
      loading = false;
      button.classList.remove("loading");
      button.classList.add("failed");
      button.setAttribute("aria-label", strings.loadFailed);
      button.title = strings.loadFailed;
      tag.remove();
    };
    d.head.appendChild(tag);
  };

  w.__frontdesk = {
    /** Called by the chat bundle with its factory. */
    register(createChat) {
      if (chat) return;
      loading = false;
      button.classList.remove("loading", "failed");
      button.removeAttribute("title");
      chat = createChat(api);
      if (wantOpen) chat.open();
    },
  };

  button.addEventListener("click", () => {
    if (chat) chat.toggle();
    else {
      wantOpen = true;
      load();
    }
  });

  const saved = store.load();
  if (saved.open || (saved.conversation_id && saved.resume_token && !saved.closed)) {
    wantOpen = Boolean(saved.open);
    load();
  }

  const mount = () => d.body.appendChild(host);
  if (d.body) mount();
  else d.addEventListener("DOMContentLoaded", mount);
})();
