// Builds DOM nodes from the Markdown tree of markdown.js. Only fixed tag names,
// createTextNode/textContent and the attributes below are used: never innerHTML, so no text
// from the model, the knowledge base or an agent can become markup.

import { parseMarkdown, safeUrl } from "./markdown.js";

const BLOCK_TAGS = { p: "p", h: "p", ul: "ul", ol: "ol", quote: "blockquote", pre: "pre", hr: "hr" };

/**
 * The href to put on a link, or null: `safeUrl`, then (in a browser) the resolved URL's
 * protocol must still be http: or https:.
 * @param {string} href
 * @param {string|undefined} base document.baseURI
 */
export function linkHref(href, base) {
  const safe = safeUrl(href);
  if (!safe) return null;
  if (base) {
    try {
      const { protocol } = new URL(safe, base);
      if (protocol !== "http:" && protocol !== "https:") return null;
    } catch {
      return null;
    }
  }
  return safe;
}

/**
 * An `<a>` that opens in a new tab without giving the page a handle on the opener.
 * @param {Document} doc
 * @param {string} href already checked with linkHref
 */
export function anchor(doc, href) {
  const a = doc.createElement("a");
  a.setAttribute("href", href);
  a.setAttribute("target", "_blank");
  a.setAttribute("rel", "noopener noreferrer nofollow");
  return a;
}

function appendInline(doc, parent, nodes) {
  for (const node of nodes) {
    if (node.t === "text") parent.appendChild(doc.createTextNode(node.v));
    else if (node.t === "br") parent.appendChild(doc.createElement("br"));
    else if (node.t === "code") {
      const code = doc.createElement("code");
      code.textContent = node.v;
      parent.appendChild(code);
    } else if (node.t === "strong" || node.t === "em") {
      const el = doc.createElement(node.t);
      appendInline(doc, el, node.c);
      parent.appendChild(el);
    } else if (node.t === "a") {
      const href = linkHref(node.href, doc.baseURI);
      if (href) {
        const a = anchor(doc, href);
        appendInline(doc, a, node.c);
        parent.appendChild(a);
      } else appendInline(doc, parent, node.c);
    }
  }
}

function appendBlocks(doc, parent, blocks) {
  for (const block of blocks) {
    if (block.t === "table") {
      const wrap = doc.createElement("div");
      wrap.setAttribute("class", "table");
      const table = doc.createElement("table");
      const head = doc.createElement("tr");
      for (const cell of block.head) {
        const th = doc.createElement("th");
        appendInline(doc, th, cell);
        head.appendChild(th);
      }
      table.appendChild(head);
      for (const row of block.rows) {
        const tr = doc.createElement("tr");
        for (const cell of row) {
          const td = doc.createElement("td");
          appendInline(doc, td, cell);
          tr.appendChild(td);
        }
        table.appendChild(tr);
      }
      wrap.appendChild(table);
      parent.appendChild(wrap);
      continue;
    }
    const el = doc.createElement(BLOCK_TAGS[block.t] || "p");
    if (block.t === "h") el.setAttribute("class", "heading");
    if (block.t === "pre") el.textContent = block.v;
    else if (block.t === "quote") appendBlocks(doc, el, block.c);
    else if (block.t === "ul" || block.t === "ol") {
      if (block.start) el.setAttribute("start", String(block.start));
      for (const item of block.items) {
        const li = doc.createElement("li");
        appendInline(doc, li, item);
        el.appendChild(li);
      }
    } else if (block.c) appendInline(doc, el, block.c);
    parent.appendChild(el);
  }
}

/**
 * Renders Markdown `text` into `parent` (its previous children are removed).
 * @param {Document} doc
 * @param {Element} parent
 * @param {string} text
 */
export function renderMarkdown(doc, parent, text) {
  parent.textContent = "";
  appendBlocks(doc, parent, parseMarkdown(text));
}
