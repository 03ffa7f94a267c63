//! MDX → plain CommonMark, before the Markdown parser sees it.
//!
//! MDX (<https://mdxjs.com/docs/what-is-mdx/>) is Markdown plus ESM `import`/`export`
//! statements, JSX elements and `{…}` expressions; Docusaurus adds `:::type Title` admonition
//! fences (<https://docusaurus.io/docs/markdown-features/admonitions>) and `<head>` blocks.
//! A Markdown parser would keep most of that as raw HTML or literal text, so this pass
//! rewrites it line by line, leaving fenced code and inline code untouched:
//!
//! - `import …` / `export …` statements (column 0) are dropped;
//! - `<head>…</head>`, `<script>`, `<style>`, `<svg>`, `<template>`, `<noscript>` elements
//!   are dropped with their content (the JSON-LD blocks);
//! - every other HTML/JSX tag is dropped and its text content kept; attributes, including
//!   `{…}` expressions such as `src={useBaseUrl('…')}`, go with the tag. Block-level tags
//!   become line or paragraph breaks, `<li>` becomes `- `, `<h1>`–`<h6>` become Markdown
//!   headings, and `<tr>`/`<td>` become `cell | cell` rows;
//! - HTML comments and MDX `{/* … */}` comments are dropped; in MDX files (ESM present or
//!   `.mdx`), other `{…}` expressions are dropped too, except Docusaurus heading ids `{#id}`;
//! - admonition fences (`:::tip Title`, `:::tip[Title]`, `:::note`, `:::`) are dropped and
//!   their titles kept as a paragraph;
//! - inside HTML/JSX containers, indentation is layout, not Markdown (MDX has no indented
//!   code blocks), so lines there are dedented.

use std::sync::LazyLock;

use regex::Regex;

/// Cleans MDX into CommonMark. `force_mdx`: treat `{…}` as expressions even when the text has
/// no ESM statement (`.mdx` files).
pub(crate) fn mdx_to_markdown(source: &str, force_mdx: bool) -> String {
    let mut cleaner = Cleaner {
        src: source,
        pos: 0,
        out: Out::default(),
        depth: 0,
        rows: Vec::new(),
        heading: None,
        mdx: force_mdx || has_esm(source),
        line_has_text: false,
    };
    cleaner.run();
    cleaner.out.text
}

static ESM_IMPORT_ONE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    // `import X from 'y'`, `import {A, B} from "y";`, `import 'y';`
    Regex::new(r#"^import\s*(?:['"]|.*\bfrom\s*['"])"#).expect("static regex")
});
static ESM_IMPORT_START: LazyLock<Regex> = LazyLock::new(|| {
    // The first line of a multi-line `import {\n A,\n B\n} from 'y'`.
    Regex::new(r"^import\s+(?:\w+\s*,\s*)?(?:\{|\*\s+as\s)").expect("static regex")
});
static ESM_FROM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\bfrom\s*['"]"#).expect("static regex"));
static ESM_EXPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^export\s+(?:const|let|var|function|async|class|default|\{|\*)")
        .expect("static regex")
});
static ADMONITION: LazyLock<Regex> = LazyLock::new(|| {
    // `:::tip Title`, `:::tip[Title]`, `:::tip{title="Title"}`, `:::note`, `:::`
    Regex::new(r"^\s*:{3,}\s*([A-Za-z][\w-]*)?\s*(.*?)\s*$").expect("static regex")
});
static HEADING_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\{#[\w.:-]+\}").expect("static regex"));

/// Does the text (outside fenced code) have an ESM `import`/`export` line, i.e. is it MDX?
fn has_esm(source: &str) -> bool {
    let mut fence: Option<Fence> = None;
    for line in source.split('\n') {
        match &fence {
            Some(open) => {
                if open.is_closed_by(line) {
                    fence = None;
                }
            }
            None => {
                if let Some(open) = Fence::open(line) {
                    fence = Some(open);
                } else if ESM_IMPORT_ONE_LINE.is_match(line)
                    || ESM_IMPORT_START.is_match(line)
                    || ESM_EXPORT.is_match(line)
                {
                    return true;
                }
            }
        }
    }
    false
}

/// An open code fence: its indentation, character and length.
#[derive(Debug, Clone, Copy)]
struct Fence {
    indent: usize,
    ch: u8,
    len: usize,
}

impl Fence {
    /// A line opening a fence (any indentation: MDX has no indented code).
    fn open(line: &str) -> Option<Self> {
        let trimmed = line.trim_start_matches([' ', '\t']);
        let indent = line.len() - trimmed.len();
        let ch = *trimmed.as_bytes().first()?;
        if ch != b'`' && ch != b'~' {
            return None;
        }
        let len = trimmed.bytes().take_while(|&b| b == ch).count();
        if len < 3 {
            return None;
        }
        // A backtick fence's info string may not contain a backtick (CommonMark 4.5).
        if ch == b'`' && trimmed[len..].contains('`') {
            return None;
        }
        Some(Self { indent, ch, len })
    }

    /// A closing fence: the same character, at least as long, nothing after it.
    fn is_closed_by(&self, line: &str) -> bool {
        let trimmed = line.trim();
        let run = trimmed.bytes().take_while(|&b| b == self.ch).count();
        run >= self.len && run == trimmed.len()
    }
}

/// A break waiting to be written before the next text; the strongest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Break {
    #[default]
    None,
    Space,
    Line,
    Paragraph,
}

/// The Markdown being written, with a pending break and the current line's indentation.
#[derive(Debug, Default)]
struct Out {
    text: String,
    pending: Break,
    /// Indentation to write before the first text of the current line.
    indent: String,
    at_line_start: bool,
}

impl Out {
    fn request(&mut self, kind: Break) {
        self.pending = self.pending.max(kind);
    }

    /// Writes the pending break before `next`.
    fn flush(&mut self, next: &str) {
        let pending = std::mem::take(&mut self.pending);
        if self.text.is_empty() {
            self.at_line_start = true;
            return;
        }
        match pending {
            Break::None => {}
            Break::Space => {
                if !self.text.ends_with(char::is_whitespace)
                    && !next.starts_with(char::is_whitespace)
                {
                    self.text.push(' ');
                }
            }
            Break::Line => {
                if !self.text.ends_with('\n') {
                    self.text.push('\n');
                }
                self.at_line_start = true;
            }
            Break::Paragraph => {
                while !self.text.ends_with("\n\n") {
                    self.text.push('\n');
                }
                self.at_line_start = true;
            }
        }
    }

    /// Writes text (after the pending break and the line's indentation).
    fn push(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.flush(text);
        if self.at_line_start {
            let indent = std::mem::take(&mut self.indent);
            self.text.push_str(&indent);
            self.at_line_start = false;
        }
        self.text.push_str(text);
    }

    /// Writes whole lines verbatim (code fences), on a line of their own.
    fn push_lines(&mut self, lines: &str) {
        self.request(Break::Line);
        self.flush(lines);
        self.text.push_str(lines);
        self.at_line_start = false;
        self.indent.clear();
        self.request(Break::Line);
    }
}

/// How an HTML/JSX tag is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagRole {
    /// Dropped with everything up to its closing tag.
    DropWithContent,
    /// No content, no nesting (`<img>`, `<br>`, `<hr>`…).
    Void,
    /// Dropped, content kept inline (`<a>`, `<b>`, `<code>`, unknown lowercase tags).
    Inline,
    /// Dropped, content kept as its own block (`<div>`, `<p>`, JSX containers…).
    Block,
    ListItem,
    Heading(u8),
    Row,
    Cell,
}

fn tag_role(name: &str) -> TagRole {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "head" | "script" | "style" | "svg" | "template" | "noscript" => TagRole::DropWithContent,
        "area" | "base" | "br" | "col" | "embed" | "hr" | "img" | "input" | "link" | "meta"
        | "param" | "source" | "track" | "wbr" => TagRole::Void,
        "a" | "abbr" | "b" | "bdi" | "bdo" | "cite" | "code" | "data" | "del" | "dfn" | "em"
        | "font" | "i" | "ins" | "kbd" | "label" | "mark" | "q" | "s" | "samp" | "small"
        | "span" | "strike" | "strong" | "sub" | "sup" | "time" | "u" | "var" | "button" => {
            TagRole::Inline
        }
        "li" => TagRole::ListItem,
        "tr" => TagRole::Row,
        "td" | "th" => TagRole::Cell,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
            TagRole::Heading(lower.as_bytes()[1] - b'0') // "h1".."h6": the digit is the level
        }
        "div" | "p" | "ul" | "ol" | "dl" | "dt" | "dd" | "table" | "thead" | "tbody" | "tfoot"
        | "caption" | "colgroup" | "details" | "summary" | "section" | "article" | "aside"
        | "header" | "footer" | "nav" | "main" | "figure" | "figcaption" | "blockquote" | "pre"
        | "center" | "form" | "fieldset" | "body" | "html" | "video" | "audio" | "picture"
        | "iframe" => TagRole::Block,
        // JSX components (`<Tabs>`, `<TabItem>`, `<CtaBox />`) are containers; unknown
        // lowercase tags are most likely placeholders used inline.
        _ if name.starts_with(|c: char| c.is_ascii_uppercase()) => TagRole::Block,
        _ => TagRole::Inline,
    }
}

/// A parsed tag: `<name …>`, `</name>` or `<name … />`.
#[derive(Debug)]
struct Tag<'a> {
    name: &'a str,
    closing: bool,
    self_closing: bool,
    /// Bytes from `<` to `>` inclusive.
    len: usize,
}

/// Parses a tag at the start of `s` (which starts with `<`). `None` when it is not a tag
/// (`a < b`, an autolink `<https://…>`, an email `<a@b.c>`), or it never closes before a
/// blank line.
fn parse_tag(s: &str) -> Option<Tag<'_>> {
    let bytes = s.as_bytes();
    let closing = bytes.get(1) == Some(&b'/');
    let name_start = if closing { 2 } else { 1 };
    if !bytes.get(name_start)?.is_ascii_alphabetic() {
        return None;
    }
    let name_len = bytes[name_start..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        .count();
    let name = &s[name_start..name_start + name_len];
    let mut i = name_start + name_len;
    match bytes.get(i)? {
        b'>' | b'/' => {}
        b if b.is_ascii_whitespace() => {}
        _ => return None,
    }
    // Attributes: quoted strings and `{…}` expressions (which may hold `>` and strings).
    let mut quote: Option<u8> = None;
    let mut braces = 0usize;
    let mut last_significant = b' ';
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == q {
                    quote = None;
                } else if b == b'\\' && braces > 0 {
                    i += 1; // an escaped character inside a JS string
                }
            }
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'`' if braces > 0 => quote = Some(b),
                b'{' => braces += 1,
                b'}' => braces = braces.saturating_sub(1),
                b'>' if braces == 0 => {
                    return Some(Tag {
                        name,
                        closing,
                        self_closing: last_significant == b'/',
                        len: i + 1,
                    });
                }
                b'\n' if braces == 0 && next_line_is_blank(&s[i + 1..]) => return None,
                _ => {}
            },
        }
        if !b.is_ascii_whitespace() {
            last_significant = b;
        }
        i += 1;
    }
    None
}

/// Is the line starting at `rest` empty or whitespace-only?
fn next_line_is_blank(rest: &str) -> bool {
    rest.split('\n')
        .next()
        .is_none_or(|line| line.trim().is_empty())
}

/// Byte offset of `needle` (ASCII, case-insensitive) in `haystack`.
fn find_ignore_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// The length of a balanced `{…}` expression at the start of `s`, strings respected; `None`
/// when it does not close before a blank line.
fn expression_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) if b == b'\\' => i += 1,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' | b'`' => quote = Some(b),
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                b'\n' if next_line_is_blank(&s[i + 1..]) => return None,
                _ => {}
            },
        }
        i += 1;
    }
    None
}

struct Cleaner<'a> {
    src: &'a str,
    pos: usize,
    out: Out,
    /// Open block-level HTML/JSX elements (lines inside are dedented).
    depth: usize,
    /// Cells seen so far in each open `<tr>`.
    rows: Vec<usize>,
    /// Inside `<hN>…</hN>`: its text is written as one Markdown heading line.
    heading: Option<u8>,
    /// `{…}` expressions are dropped only in MDX.
    mdx: bool,
    /// Whether the current source line has produced text yet.
    line_has_text: bool,
}

impl<'a> Cleaner<'a> {
    fn run(&mut self) {
        while self.pos < self.src.len() {
            self.line();
        }
    }

    /// The rest of the current line (without its `\n`) and where the next line starts.
    fn current_line(&self) -> (&'a str, usize) {
        let src: &'a str = self.src;
        let rest = &src[self.pos..];
        match rest.find('\n') {
            Some(end) => (&rest[..end], self.pos + end + 1),
            None => (rest, self.src.len()),
        }
    }

    /// Joined lines: inside a heading or a table row, a newline is only a space.
    fn inline_only(&self) -> bool {
        self.heading.is_some() || !self.rows.is_empty()
    }

    /// Handles one source line, starting at `self.pos` (a line start).
    fn line(&mut self) {
        let (line, next) = self.current_line();
        self.line_has_text = false;
        if line.trim().is_empty() {
            self.out.request(if self.inline_only() {
                Break::Space
            } else {
                Break::Paragraph
            });
            self.pos = next;
            return;
        }
        if !self.inline_only() {
            if let Some(fence) = Fence::open(line) {
                self.copy_fence(fence);
                return;
            }
            if self.depth == 0 && self.skip_esm() {
                return;
            }
            if let Some(captures) = ADMONITION.captures(line) {
                let rest = captures.get(2).map_or("", |m| m.as_str());
                self.out.request(Break::Paragraph);
                let title = admonition_title(rest);
                if !title.is_empty() {
                    self.out.indent.clear();
                    self.out.push(title);
                    self.out.request(Break::Paragraph);
                }
                self.pos = next;
                return;
            }
        }
        let indent_len = line.len() - line.trim_start_matches([' ', '\t']).len();
        self.out.indent = if self.depth > 0 || self.inline_only() {
            String::new()
        } else {
            line[..indent_len].to_string()
        };
        self.pos += indent_len;
        self.scan_to_line_end();
    }

    /// Copies a fenced code block verbatim (dedented inside HTML/JSX containers).
    fn copy_fence(&mut self, fence: Fence) {
        let mut end = self.src.len();
        let mut block_lines = Vec::new();
        let mut cursor = self.pos;
        let mut first = true;
        while cursor < self.src.len() {
            let rest = &self.src[cursor..];
            let (line, next) = match rest.find('\n') {
                Some(e) => (&rest[..e], cursor + e + 1),
                None => (rest, self.src.len()),
            };
            block_lines.push(line);
            cursor = next;
            if !first && fence.is_closed_by(line) {
                end = next;
                break;
            }
            first = false;
        }
        let dedent = if self.depth > 0 { fence.indent } else { 0 };
        let text: Vec<&str> = block_lines
            .iter()
            .map(|line| {
                let removable = line.len() - line.trim_start_matches([' ', '\t']).len();
                &line[removable.min(dedent)..]
            })
            .collect();
        self.out.push_lines(&text.join("\n"));
        self.pos = end;
    }

    /// Skips an ESM `import`/`export` statement at the current line; false if there is none.
    fn skip_esm(&mut self) -> bool {
        let (line, next) = self.current_line();
        if ESM_IMPORT_ONE_LINE.is_match(line) {
            self.pos = next;
            return true;
        }
        let multi_line_import = ESM_IMPORT_START.is_match(line);
        if !multi_line_import && !ESM_EXPORT.is_match(line) {
            return false;
        }
        // Up to the line naming the module (imports) or the next blank line (exports).
        self.pos = next;
        while self.pos < self.src.len() {
            let (line, next) = self.current_line();
            if line.trim().is_empty() {
                break;
            }
            self.pos = next;
            if multi_line_import && ESM_FROM.is_match(line) {
                break;
            }
        }
        true
    }

    /// Scans inline content up to and including the end of the current line (tags and
    /// expressions may span lines).
    fn scan_to_line_end(&mut self) {
        while self.pos < self.src.len() {
            let rest = &self.src[self.pos..];
            let c = rest.chars().next().expect("pos < len, so a char follows");
            match c {
                '\n' => {
                    self.pos += 1;
                    self.out.request(if self.inline_only() {
                        Break::Space
                    } else {
                        Break::Line
                    });
                    return;
                }
                '`' => self.code_span(),
                '\\' => {
                    let escaped = rest[1..]
                        .chars()
                        .next()
                        .filter(|c| c.is_ascii_punctuation());
                    let len = 1 + escaped.map_or(0, char::len_utf8);
                    self.text(&rest[..len]);
                    self.pos += len;
                }
                '<' => {
                    if !self.markup() {
                        self.text("<");
                        self.pos += 1;
                    }
                }
                '{' if self.mdx && !HEADING_ID.is_match(rest) => match expression_len(rest) {
                    Some(len) => self.pos += len,
                    None => {
                        self.text("{");
                        self.pos += 1;
                    }
                },
                _ => {
                    let len = c.len_utf8();
                    self.text(&rest[..len]);
                    self.pos += len;
                }
            }
        }
    }

    fn text(&mut self, text: &str) {
        self.out.push(text);
        self.line_has_text = true;
    }

    /// An inline code span copied verbatim (same line only), or a literal backtick run.
    fn code_span(&mut self) {
        let rest = &self.src[self.pos..];
        let line = rest.split('\n').next().unwrap_or(rest);
        let run = line.bytes().take_while(|&b| b == b'`').count();
        let mut search = run;
        while let Some(offset) = line[search..].find('`') {
            let start = search + offset;
            let len = line[start..].bytes().take_while(|&b| b == b'`').count();
            if len == run {
                self.text(&line[..start + len]);
                self.pos += start + len;
                return;
            }
            search = start + len;
        }
        self.text(&line[..run]);
        self.pos += run;
    }

    /// Handles `<…` at `self.pos`: a comment or a tag. False if it is neither (a literal `<`).
    fn markup(&mut self) -> bool {
        let rest = &self.src[self.pos..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            return match comment.find("-->") {
                Some(end) => {
                    self.pos += 4 + end + 3;
                    true
                }
                None => false,
            };
        }
        let Some(tag) = parse_tag(rest) else {
            return false;
        };
        let role = tag_role(tag.name);
        self.pos += tag.len;
        if tag.closing {
            self.close_tag(role);
        } else {
            self.open_tag(role, tag.name, tag.self_closing);
        }
        true
    }

    /// The break a block-level tag makes here: a paragraph at a line start, a line inside
    /// HTML, only a space inside a Markdown line (a table row, a paragraph).
    fn block_break(&self) -> Break {
        if !self.line_has_text {
            Break::Paragraph
        } else if self.depth > 0 {
            Break::Line
        } else {
            Break::Space
        }
    }

    fn open_tag(&mut self, role: TagRole, name: &str, self_closing: bool) {
        if self_closing {
            // `<br />`, `<hr/>`, `<CtaBox … />`: nothing inside.
            if name.eq_ignore_ascii_case("br") || name.eq_ignore_ascii_case("hr") {
                self.out
                    .request(self.block_break().min(Break::Line).max(Break::Space));
            }
            return;
        }
        match role {
            // `<head>` only as a block at a line start: prose that mentions it (outside
            // backticks) must not swallow everything up to a later `</head>`.
            TagRole::DropWithContent if name.eq_ignore_ascii_case("head") && self.line_has_text => {
            }
            TagRole::DropWithContent => {
                let rest = &self.src[self.pos..];
                let closing = format!("</{name}");
                if let Some(start) = find_ignore_ascii_case(rest, &closing) {
                    let after = &rest[start..];
                    let end = after.find('>').map_or(after.len(), |e| e + 1);
                    self.pos += start + end;
                }
            }
            TagRole::Void => {
                if name.eq_ignore_ascii_case("br") {
                    self.out
                        .request(self.block_break().min(Break::Line).max(Break::Space));
                } else if name.eq_ignore_ascii_case("hr") {
                    self.out.request(self.block_break());
                }
            }
            TagRole::Inline => {}
            TagRole::Block => {
                self.out.request(self.block_break());
                self.depth += 1;
            }
            TagRole::ListItem => {
                let kind = if self.line_has_text && self.depth == 0 {
                    Break::Space
                } else {
                    Break::Line
                };
                self.out.request(kind);
                self.out.push("- ");
                self.depth += 1;
            }
            TagRole::Heading(level) => {
                self.depth += 1;
                let closing = format!("</{name}");
                let window = &self.src[self.pos..self.src.len().min(self.pos + 1000)];
                if self.heading.is_none() && find_ignore_ascii_case(window, &closing).is_some() {
                    self.out.request(Break::Paragraph);
                    self.out.indent.clear();
                    self.out
                        .push(&format!("{} ", "#".repeat(usize::from(level))));
                    self.heading = Some(level);
                } else {
                    self.out.request(self.block_break());
                }
            }
            TagRole::Row => {
                self.out.request(Break::Paragraph);
                self.rows.push(0);
                self.depth += 1;
            }
            TagRole::Cell => {
                self.depth += 1;
                match self.rows.last_mut() {
                    Some(cells) => {
                        *cells += 1;
                        if *cells > 1 {
                            self.out.request(Break::Space);
                            self.out.push("| ");
                        }
                    }
                    None => self.out.request(self.block_break()),
                }
            }
        }
    }

    fn close_tag(&mut self, role: TagRole) {
        match role {
            TagRole::DropWithContent | TagRole::Void | TagRole::Inline => {}
            TagRole::Block | TagRole::ListItem => {
                self.depth = self.depth.saturating_sub(1);
                self.out.request(self.block_break());
            }
            TagRole::Heading(level) => {
                self.depth = self.depth.saturating_sub(1);
                if self.heading == Some(level) {
                    self.heading = None;
                    self.out.request(Break::Paragraph);
                } else {
                    self.out.request(self.block_break());
                }
            }
            TagRole::Row => {
                self.depth = self.depth.saturating_sub(1);
                self.rows.pop();
                self.out.request(Break::Paragraph);
            }
            TagRole::Cell => {
                self.depth = self.depth.saturating_sub(1);
                if self.rows.is_empty() {
                    self.out.request(self.block_break());
                }
            }
        }
    }
}

/// The title of an admonition fence from what follows `:::type`: `[Title]`,
/// `{title="Title"}` or ` Title`.
fn admonition_title(rest: &str) -> &str {
    let rest = rest.trim();
    if let Some(inner) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.trim();
    }
    if let Some(inner) = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        let inner = inner.trim();
        if let Some(value) = inner.strip_prefix("title=") {
            return value.trim_matches(['"', '\'']);
        }
        return "";
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(source: &str) -> String {
        mdx_to_markdown(source, false)
    }

    #[test]
    fn imports_and_exports_are_dropped() {
        let source = "import useBaseUrl from '@docusaurus/useBaseUrl';\nimport {\n  A,\n  B,\n} from '../x.tsx';\nexport const meta = {\n  a: 1,\n};\n\nText.\n";
        assert_eq!(clean(source), "Text.");
    }

    #[test]
    fn jsx_images_and_wrappers_disappear() {
        let source = "Before.\n\n<div class=\"browser\"><img alt=\"Shot\" src={useBaseUrl('img/a>b.png')} /></div>\n\nAfter.";
        assert_eq!(clean(source), "Before.\n\nAfter.");
    }

    #[test]
    fn multi_line_self_closing_components_disappear() {
        let source = "A.\n\n<CtaBox\n  headline=\"Need help?\"\n  link=\"https://x\"\n/>\n\nB.";
        assert_eq!(clean(source), "A.\n\nB.");
    }

    #[test]
    fn head_json_ld_is_dropped_entirely() {
        let source = "<head>\n  <script type=\"application/ld+json\">{`\n    {\"@type\": \"FAQPage\"}\n  `}</script>\n</head>\n\nBody.";
        assert_eq!(clean(source), "Body.");
    }

    #[test]
    fn a_head_tag_inside_prose_does_not_swallow_the_text_after_it() {
        let source = "Put it in the <head> section.\n\nLater text.\n\nClose with </head> here.";
        assert_eq!(
            clean(source),
            "Put it in the  section.\n\nLater text.\n\nClose with  here."
        );
    }

    #[test]
    fn admonitions_keep_text_and_titles() {
        let source = ":::tip Using WordPress?\nUse the plugin.\n:::\n\n:::note\nA note.\n:::\n\n:::tip[Not what you need?]\nSee more.\n:::";
        assert_eq!(
            clean(source),
            "Using WordPress?\n\nUse the plugin.\n\nA note.\n\nNot what you need?\n\nSee more."
        );
    }

    #[test]
    fn container_components_keep_their_text() {
        let source = "<Tabs>\n  <TabItem value=\"npm\" label=\"npm\">\n\n    Run the installer.\n\n  </TabItem>\n</Tabs>";
        assert_eq!(clean(source), "Run the installer.");
    }

    #[test]
    fn code_is_untouched() {
        let source = "Put it in the `<head>` of `{page}`.\n\n```html\n<script src=\"x.js\"></script>\nimport y from 'z'\n:::\n```\n";
        assert_eq!(clean(source), source.trim_end());
    }

    #[test]
    fn html_lists_headings_and_tables_become_markdown() {
        let source = "<div class=\"card\">\n<h3>Start here</h3>\n<p>Get set up.</p>\n<ul>\n<li><a href=\"/a\">Register</a></li>\n<li>Add a site</li>\n</ul>\n</div>\n\n<table>\n  <tr>\n    <th>Type</th>\n    <th>Action</th>\n  </tr>\n  <tr>\n    <td><b>Script</b></td>\n    <td>\n      No action\n    </td>\n  </tr>\n</table>";
        assert_eq!(
            clean(source),
            "### Start here\n\nGet set up.\n\n- Register\n- Add a site\n\nType | Action\n\nScript | No action"
        );
    }

    #[test]
    fn heading_tags_around_blank_lines_make_one_heading() {
        let source = "<h3>\n\n1. Verify the `id`\n\n</h3>\n\nText.";
        assert_eq!(clean(source), "### 1. Verify the `id`\n\nText.");
    }

    #[test]
    fn inline_tags_in_markdown_tables_do_not_break_rows() {
        let source = "| <div style={{minWidth: '200px'}}>Channel</div> | Definition |\n|---|---|\n| a<br/>b | c |";
        assert_eq!(
            clean(source),
            "| Channel | Definition |\n|---|---|\n| a b | c |"
        );
    }

    #[test]
    fn comments_and_expressions_are_dropped_in_mdx_but_heading_ids_stay() {
        let source = "import X from 'x';\n\n## Google tag manager {#gtm}\n\n{/* hidden */}Text <!-- todo --> here.\n<CodeBlock language=\"json\">{getExampleCode(\"query\")}</CodeBlock>";
        assert_eq!(clean(source), "## Google tag manager {#gtm}\n\nText  here.");
    }

    #[test]
    fn plain_markdown_keeps_braces_and_non_tags() {
        let source = "Use {{name}} when a < b, see <https://example.com> or <help@example.com>.";
        assert_eq!(clean(source), source);
    }

    #[test]
    fn indentation_is_kept_outside_html_for_lists() {
        let source = "1. Step one\n\n   <div class=\"browser\"><img src={x} /></div>\n\n   Continued.\n2. Step two";
        assert_eq!(clean(source), "1. Step one\n\n   Continued.\n2. Step two");
    }
}
