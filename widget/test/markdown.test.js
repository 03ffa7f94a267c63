// The Markdown subset and its safety: parseMarkdown/parseInline/safeUrl are pure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseMarkdown, parseInline, safeUrl } from "../src/markdown.js";

const txt = (v) => ({ t: "text", v });

test("inline emphasis, code and links become nodes", () => {
  assert.deepEqual(parseInline("Tap **Forgot password?** then *wait* for `the email`."), [
    txt("Tap "),
    { t: "strong", c: [txt("Forgot password?")] },
    txt(" then "),
    { t: "em", c: [txt("wait")] },
    txt(" for "),
    { t: "code", v: "the email" },
    txt("."),
  ]);
  assert.deepEqual(parseInline("See [Reset your password](/reset-password \"title\")."), [
    txt("See "),
    { t: "a", href: "/reset-password", c: [txt("Reset your password")] },
    txt("."),
  ]);
});

test("nested emphasis and underscores inside words", () => {
  assert.deepEqual(parseInline("*a **b** c*"), [
    { t: "em", c: [txt("a "), { t: "strong", c: [txt("b")] }, txt(" c")] },
  ]);
  assert.deepEqual(parseInline("snake_case_name stays"), [txt("snake_case_name stays")]);
  assert.deepEqual(parseInline("2 * 3 * 4"), [txt("2 * 3 * 4")]);
  assert.deepEqual(parseInline("\\*not em\\*"), [txt("*not em*")]);
});

test("bare http(s) URLs are linked without trailing punctuation", () => {
  assert.deepEqual(parseInline("Go to https://example.com/help."), [
    txt("Go to "),
    { t: "a", href: "https://example.com/help", c: [txt("https://example.com/help")] },
    txt("."),
  ]);
  assert.deepEqual(parseInline("ftp://example.com stays text"), [txt("ftp://example.com stays text")]);
});

test("safeUrl keeps http, https and relative URLs only", () => {
  const allowed = [
    "https://example.com/a?b=c#d",
    "http://example.com",
    "HTTPS://EXAMPLE.COM",
    "/reset-password",
    "reset-password",
    "../up",
    "#section",
    "?q=1",
    "//cdn.example.com/x",
    // Not a scheme: a relative path "&" with a fragment (setAttribute never decodes entities).
    "&#106;avascript:alert(1)",
  ];
  for (const url of allowed) assert.equal(safeUrl(url), url, url);
  const refused = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\u0000javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "mailto:a@example.com",
    "javascript&colon;alert(1):",
    "",
    "   ",
    null,
    42,
  ];
  for (const url of refused) assert.equal(safeUrl(url), null, String(url));
});

test("hostile links keep their text and lose the link", () => {
  assert.deepEqual(parseInline("[click me](javascript:alert(document.cookie))"), [txt("click me")]);
  assert.deepEqual(parseInline("![x](data:image/svg+xml,<svg onload=alert(1)>)"), [txt("x")]);
  // An image becomes a link to it (never loaded), when its URL is safe.
  assert.deepEqual(parseInline("![diagram](https://example.com/d.png)"), [
    { t: "a", href: "https://example.com/d.png", c: [txt("diagram")] },
  ]);
});

test("raw HTML stays literal text", () => {
  const hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script><a href="javascript:x">y</a>';
  const tree = parseMarkdown(hostile);
  assert.deepEqual(tree, [{ t: "p", c: [txt(hostile)] }]);
});

test("blocks: paragraphs with line breaks, headings, lists, quotes, code, rules", () => {
  const tree = parseMarkdown(
    "## Find your order\nFirst line\nsecond line\n\n- one\n- **two**\n\n3. three\n4. four\n\n> quoted\n\n```\n<b>code</b>\n```\n\n---",
  );
  assert.deepEqual(tree, [
    { t: "h", c: [txt("Find your order")] },
    { t: "p", c: [txt("First line"), { t: "br" }, txt("second line")] },
    { t: "ul", items: [[txt("one")], [{ t: "strong", c: [txt("two")] }]] },
    { t: "ol", start: 3, items: [[txt("three")], [txt("four")]] },
    { t: "quote", c: [{ t: "p", c: [txt("quoted")] }] },
    { t: "pre", v: "<b>code</b>" },
    { t: "hr" },
  ]);
});

test("pipe tables from help articles", () => {
  const tree = parseMarkdown("| Status | Meaning |\n|---|---|\n| Shipped | On its way \\| soon |\n| **Held** | At customs |");
  assert.deepEqual(tree, [
    {
      t: "table",
      head: [[txt("Status")], [txt("Meaning")]],
      rows: [
        [[txt("Shipped")], [txt("On its way | soon")]],
        [[{ t: "strong", c: [txt("Held")] }], [txt("At customs")]],
      ],
    },
  ]);
});

test("pathological input parses quickly and without deep recursion", () => {
  const started = Date.now();
  parseMarkdown("*".repeat(20000));
  parseMarkdown("[".repeat(5000) + "x" + "](y)".repeat(5000));
  parseMarkdown("> ".repeat(2000) + "deep");
  parseMarkdown("**a ".repeat(3000));
  assert.ok(Date.now() - started < 3000, "took too long");
  // Nesting deeper than the limit stays text instead of recursing.
  const deep = parseInline("*".repeat(40) + "x" + "*".repeat(40));
  assert.ok(JSON.stringify(deep).length < 5000);
});
