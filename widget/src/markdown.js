// A safe Markdown subset for answers, knowledge-base passages and agent messages.
//
// `parseMarkdown(text)` turns text into a tree of plain objects; `render.js` builds DOM nodes
// from it with createElement/textContent only. Nothing here produces HTML, and raw HTML in the
// input stays literal text: the model, the knowledge base and agents cannot inject markup.
//
// Blocks: paragraphs (single newlines become line breaks), ATX headings, bullet and numbered
// lists, block quotes, fenced code, pipe tables, thematic breaks.
// Inlines: `code`, **strong** / __strong__, *em* / _em_, [links](url), images as links
// (never loaded), bare http(s) URLs, backslash escapes.
// Links keep only http:, https: and relative URLs (`safeUrl`); other links become their text.
//
// Tree nodes: {t:"p"|"h"|"quote-line", c: inline[]}, {t:"ul"|"ol", start?, items: inline[][]},
// {t:"quote", c: block[]}, {t:"pre", v}, {t:"hr"}, {t:"table", head: inline[][], rows: inline[][][]};
// inline: {t:"text", v}, {t:"code", v}, {t:"strong"|"em", c}, {t:"a", href, c}, {t:"br"}.

/** Deepest nesting of emphasis, links or quotes; deeper markup stays literal text. */
const MAX_DEPTH = 8;

/**
 * `url` when it is safe to link to (http:, https:, or relative with no scheme), else null.
 * The scheme is judged after dropping every whitespace and control character, as browsers
 * ignore them ("java\tscript:" is javascript:).
 * @param {unknown} url
 * @returns {string|null}
 */
export function safeUrl(url) {
  if (typeof url !== "string") return null;
  const trimmed = url.trim();
  if (!trimmed) return null;
  // eslint-disable-next-line no-control-regex
  const probe = trimmed.replace(/[\u0000-\u0020\u007f-\u009f]/g, "").toLowerCase();
  const scheme = /^([a-z][a-z0-9+.-]*):/.exec(probe);
  if (scheme) return scheme[1] === "http" || scheme[1] === "https" ? trimmed : null;
  // "\\evil" is "//evil" to a browser: still http(s). A colon before any "/", "?" or "#"
  // without a valid scheme (e.g. "&#106;avascript:") is a relative path, harmless as an href
  // set through setAttribute; reject it anyway to keep links unambiguous.
  if (/^[^/?#]*:/.test(probe)) return null;
  return trimmed;
}

function text(v) {
  return { t: "text", v };
}

/** Trailing characters that end a bare URL rather than belong to it. */
const URL_TAIL = /[.,;:!?'")\]]+$/;

/**
 * Inline Markdown to inline nodes.
 * @param {string} src
 * @param {number} [depth]
 * @returns {object[]}
 */
export function parseInline(src, depth = 0) {
  const out = [];
  let buf = "";
  const flush = () => {
    if (buf) out.push(text(buf));
    buf = "";
  };
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    if (c === "\\" && i + 1 < n && /[\\`*_[\]()#+\-.!>|~<]/.test(src[i + 1])) {
      buf += src[i + 1];
      i += 2;
      continue;
    }
    if (c === "`") {
      let ticks = 1;
      while (src[i + ticks] === "`") ticks++;
      const fence = "`".repeat(ticks);
      const end = src.indexOf(fence, i + ticks);
      if (end > i + ticks - 1 && end !== -1) {
        flush();
        out.push({ t: "code", v: src.slice(i + ticks, end).replace(/^ (.+) $/, "$1") });
        i = end + ticks;
        continue;
      }
      buf += fence;
      i += ticks;
      continue;
    }
    if ((c === "*" || c === "_") && depth < MAX_DEPTH) {
      const double = src[i + 1] === c;
      const delim = double ? c + c : c;
      const start = i + delim.length;
      const intraword = c === "_" && /[\p{L}\p{N}]/u.test(src[i - 1] || "");
      if (!intraword && src[start] && !/\s/.test(src[start])) {
        let end = src.indexOf(delim, start);
        while (
          end !== -1 &&
          ((!double && src[end + 1] === c) ||
            /\s/.test(src[end - 1]) ||
            (c === "_" && /[\p{L}\p{N}]/u.test(src[end + delim.length] || "")))
        ) {
          end = src.indexOf(delim, end + (!double && src[end + 1] === c ? 2 : 1));
        }
        if (end > start) {
          flush();
          out.push({ t: double ? "strong" : "em", c: parseInline(src.slice(start, end), depth + 1) });
          i = end + delim.length;
          continue;
        }
      }
      buf += delim;
      i += delim.length;
      continue;
    }
    if ((c === "[" || (c === "!" && src[i + 1] === "[")) && depth < MAX_DEPTH) {
      const open = c === "!" ? i + 1 : i;
      const link = parseLink(src, open);
      if (link) {
        flush();
        const label = parseInline(link.label, depth + 1);
        const href = safeUrl(link.url);
        if (href) out.push({ t: "a", href, c: label.length ? label : [text(href)] });
        else out.push(...label);
        i = link.end;
        continue;
      }
    }
    if (c === "h" && (i === 0 || /[\s(]/.test(src[i - 1])) && /^https?:\/\/\S/i.test(src.slice(i, i + 9))) {
      const raw = /^\S+/.exec(src.slice(i))[0];
      const url = raw.replace(URL_TAIL, "");
      const href = safeUrl(url);
      if (href) {
        flush();
        out.push({ t: "a", href, c: [text(url)] });
        i += url.length;
        continue;
      }
    }
    buf += c;
    i++;
  }
  flush();
  return out;
}

/** `[label](url "title")` starting at `open` (the "["), or null. */
function parseLink(src, open) {
  let depth = 0;
  let close = -1;
  for (let j = open; j < src.length; j++) {
    if (src[j] === "\\") {
      j++;
      continue;
    }
    if (src[j] === "[") depth++;
    else if (src[j] === "]" && --depth === 0) {
      close = j;
      break;
    }
  }
  if (close === -1 || src[close + 1] !== "(") return null;
  let parens = 0;
  let end = -1;
  for (let j = close + 1; j < src.length; j++) {
    if (src[j] === "(") parens++;
    else if (src[j] === ")" && --parens === 0) {
      end = j;
      break;
    }
  }
  if (end === -1) return null;
  let url = src.slice(close + 2, end).trim();
  url = url.replace(/\s+("[^"]*"|'[^']*')$/, "");
  if (/^<.*>$/.test(url)) url = url.slice(1, -1);
  return { label: src.slice(open + 1, close), url, end: end + 1 };
}

/** Inline nodes of several lines joined by line breaks. */
function inlineLines(lines, depth) {
  const out = [];
  lines.forEach((line, k) => {
    if (k) out.push({ t: "br" });
    out.push(...parseInline(line.trim(), depth));
  });
  return out;
}

const FENCE = /^\s{0,3}(`{3,}|~{3,})/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)(\s+#+)?\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const ORDERED = /^\s*(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function startsBlock(line, next) {
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    BULLET.test(line) ||
    ORDERED.test(line) ||
    QUOTE.test(line) ||
    (line.includes("|") && next !== undefined && TABLE_RULE.test(next) && next.includes("-"))
  );
}

function cells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  // No lookbehind in regular expressions: Safari before 16.4 cannot parse them.
  const out = [];
  let cell = "";
  for (let i = 0; i < row.length; i++) {
    if (row[i] === "\\" && row[i + 1] === "|") {
      cell += "|";
      i++;
    } else if (row[i] === "|") {
      out.push(cell.trim());
      cell = "";
    } else cell += row[i];
  }
  out.push(cell.trim());
  return out;
}

/**
 * Markdown text to a block tree (see the file comment for the node shapes).
 * @param {string} source
 * @param {number} [depth]
 * @returns {object[]}
 */
export function parseMarkdown(source, depth = 0) {
  const lines = String(source == null ? "" : source).replace(/\r\n?/g, "\n").split("\n");
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i++;
      blocks.push({ t: "pre", v: body.join("\n") });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      blocks.push({ t: "h", c: parseInline(heading[2], depth) });
      i++;
      continue;
    }
    if (RULE.test(line)) {
      blocks.push({ t: "hr" });
      i++;
      continue;
    }
    const ordered = ORDERED.exec(line);
    if (BULLET.test(line) || ordered) {
      const kind = ordered ? ORDERED : BULLET;
      const items = [];
      while (i < lines.length && lines[i].trim()) {
        const item = kind.exec(lines[i]);
        if (item) items.push([item[ordered ? 2 : 1]]);
        else if (startsBlock(lines[i], lines[i + 1])) break;
        else items[items.length - 1].push(lines[i]);
        i++;
      }
      const list = { t: ordered ? "ol" : "ul", items: items.map((item) => inlineLines(item, depth)) };
      if (ordered && ordered[1] !== "1") list.start = Number(ordered[1]);
      blocks.push(list);
      continue;
    }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && QUOTE.test(lines[i])) body.push(QUOTE.exec(lines[i++])[1]);
      blocks.push(
        depth < MAX_DEPTH
          ? { t: "quote", c: parseMarkdown(body.join("\n"), depth + 1) }
          : { t: "p", c: inlineLines(body, depth) },
      );
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      const head = cells(line).map((cell) => parseInline(cell, depth));
      const rows = [];
      i += 2;
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
        rows.push(cells(lines[i++]).map((cell) => parseInline(cell, depth)));
      }
      blocks.push({ t: "table", head, rows });
      continue;
    }
    const body = [line];
    i++;
    while (i < lines.length && lines[i].trim() && !startsBlock(lines[i], lines[i + 1])) {
      body.push(lines[i++]);
    }
    blocks.push({ t: "p", c: inlineLines(body, depth) });
  }
  return blocks;
}
