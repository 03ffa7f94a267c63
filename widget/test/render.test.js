// render.js builds DOM nodes only from fixed tags and text: checked on a minimal DOM shim with
// hostile payloads from a model, a help article or an agent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { renderMarkdown, linkHref } from "../src/render.js";

class Text {
  constructor(value) {
    this.nodeType = 3;
    this.value = value;
  }
  get textContent() {
    return this.value;
  }
}

class Element {
  constructor(tag) {
    this.nodeType = 1;
    this.tagName = tag.toUpperCase();
    this.attributes = new Map();
    this.childNodes = [];
  }
  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }
  getAttribute(name) {
    return this.attributes.has(name) ? this.attributes.get(name) : null;
  }
  appendChild(node) {
    this.childNodes.push(node);
    return node;
  }
  removeChild(node) {
    this.childNodes.splice(this.childNodes.indexOf(node), 1);
    return node;
  }
  get firstChild() {
    return this.childNodes[0] || null;
  }
  get textContent() {
    return this.childNodes.map((n) => n.textContent).join("");
  }
  set textContent(value) {
    this.childNodes = value === "" ? [] : [new Text(value)];
  }
}

const doc = {
  baseURI: "https://www.example.com/help/",
  createElement: (tag) => new Element(tag),
  createTextNode: (value) => new Text(value),
};

function render(text) {
  const root = new Element("div");
  renderMarkdown(doc, root, text);
  return root;
}

/** Every element below `node`, depth first. */
function* elements(node) {
  for (const child of node.childNodes) {
    if (child.nodeType === 1) {
      yield child;
      yield* elements(child);
    }
  }
}

const ALLOWED_TAGS = new Set(["P", "BR", "STRONG", "EM", "CODE", "PRE", "A", "UL", "OL", "LI", "BLOCKQUOTE", "HR", "DIV", "TABLE", "TR", "TH", "TD"]);
const ALLOWED_ATTRIBUTES = new Set(["href", "target", "rel", "class", "start"]);

const HOSTILE = [
  '<img src=x onerror="alert(1)">',
  "<script>alert(document.cookie)</script>",
  '<a href="javascript:alert(1)">click</a>',
  "[click](javascript:alert(1))",
  "[click](JaVaScRiPt:alert(1))",
  "[click]( javascript:alert(1))",
  "[click](java\tscript:alert(1))",
  "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
  "[click](vbscript:msgbox)",
  "![img](javascript:alert(1))",
  '<iframe src="https://evil.example"></iframe>',
  "<svg onload=alert(1)>",
  '"><img src=x onerror=alert(1)>',
  "**<b onmouseover=alert(1)>bold</b>**",
  "`<script>alert(1)</script>`",
  "```\n<script>alert(1)</script>\n```",
  "| <img src=x> | [x](javascript:1) |\n|---|---|\n| <script> | y |",
  "> <style>*{display:none}</style>",
  "[<img src=x onerror=alert(1)>](https://ok.example)",
];

test("hostile payloads render as text: only allowed tags and attributes, no script URLs", () => {
  for (const payload of HOSTILE) {
    const root = render(payload);
    for (const el of elements(root)) {
      assert.ok(ALLOWED_TAGS.has(el.tagName), `${payload} → <${el.tagName}>`);
      for (const [name, value] of el.attributes) {
        assert.ok(ALLOWED_ATTRIBUTES.has(name), `${payload} → ${name}=`);
        if (name === "href") assert.match(value, /^(https?:|\/|[^:]*$)/i, `${payload} → href=${value}`);
      }
    }
    // Markup in the payload survives as visible text.
    if (payload.includes("<script>") && !payload.startsWith("|")) assert.ok(root.textContent.includes("<script>"), payload);
  }
});

test("links open in a new tab without an opener", () => {
  const root = render("See [Track your order](/track-your-order).");
  const [p] = root.childNodes;
  const a = p.childNodes[1];
  assert.equal(a.tagName, "A");
  assert.equal(a.getAttribute("href"), "/track-your-order");
  assert.equal(a.getAttribute("target"), "_blank");
  assert.equal(a.getAttribute("rel"), "noopener noreferrer nofollow");
  assert.equal(a.textContent, "Track your order");
});

test("an answer renders as paragraphs, lists and emphasis", () => {
  const root = render("To reset it:\n\n1. Tap **Forgot password?**\n2. Open the email\n\nThen sign in.");
  assert.deepEqual(root.childNodes.map((n) => n.tagName), ["P", "OL", "P"]);
  const items = root.childNodes[1].childNodes;
  assert.equal(items.length, 2);
  assert.equal(items[0].childNodes[1].tagName, "STRONG");
  assert.equal(root.textContent, "To reset it:Tap Forgot password?Open the emailThen sign in.");
});

test("re-rendering replaces the previous content (streaming)", () => {
  const root = new Element("div");
  renderMarkdown(doc, root, "On the");
  renderMarkdown(doc, root, "On the sign-in screen");
  assert.equal(root.childNodes.length, 1);
  assert.equal(root.textContent, "On the sign-in screen");
});

test("linkHref resolves against the page and keeps http(s) only", () => {
  assert.equal(linkHref("/reset", "https://www.example.com/"), "/reset");
  assert.equal(linkHref("javascript:alert(1)", "https://www.example.com/"), null);
  assert.equal(linkHref("https://ok.example/a", undefined), "https://ok.example/a");
  // A relative URL on a page that is not http(s) would not stay http(s).
  assert.equal(linkHref("/reset", "file:///tmp/page.html"), null);
});

test("no source file builds markup from strings", () => {
  const dir = new URL("../src/", import.meta.url);
  const forbidden = /\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\s*\(|new Function|srcdoc|createContextualFragment|DOMParser)\b/;
  for (const name of readdirSync(dir, { recursive: true })) {
    if (!String(name).endsWith(".js")) continue;
    const source = readFileSync(new URL(name, dir), "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    assert.doesNotMatch(source, forbidden, `src/${name}`);
  }
});
