//! HTML pages → [`Document`], parsed with `scraper` (html5ever, the WHATWG parsing algorithm).
//!
//! Title: `<title>`, else the first `<h1>`, else the file name. Description:
//! `<meta name="description">`. Sections split at `<h1>`–`<h6>`; `<script>`, `<style>`,
//! `<nav>`, `<footer>`, `<noscript>`, `<template>`, `<svg>`, `<iframe>` and `<head>` are dropped.
//! Lists become `- ` lines, table rows `cell | cell`, `<pre>` is kept verbatim.

use scraper::{ElementRef, Html, Node, Selector};

use super::sections::{SectionBuilder, collapse_whitespace};
use super::title_from_id;
use crate::document::{Document, DocumentId, SourceKind};

/// Elements dropped with their content.
const DROPPED: &[&str] = &[
    "script", "style", "nav", "footer", "noscript", "template", "svg", "iframe", "head",
];

/// Elements that start and end a block of text.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "form",
    "header",
    "hgroup",
    "html",
    "main",
    "ol",
    "p",
    "section",
    "summary",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "ul",
];

/// Parses one HTML page. Never fails: html5ever recovers from any markup.
pub fn parse_html(id: DocumentId, source: &str) -> Document {
    let page = Html::parse_document(source);
    let title = first_text(&page, "title").or_else(|| first_text(&page, "h1"));
    let description = selector("meta[name=description]")
        .and_then(|s| page.select(&s).next())
        .and_then(|meta| meta.attr("content"))
        .map(collapse_whitespace)
        .filter(|d| !d.is_empty());

    let mut walker = Walker {
        builder: SectionBuilder::new(title.clone()),
        pre_depth: 0,
        rows: Vec::new(),
    };
    walker.element(page.root_element());
    let (first_h1, sections) = walker.builder.finish();
    let title = title.or(first_h1).unwrap_or_else(|| title_from_id(&id));
    let url = Some(format!("/{id}"));
    Document {
        id,
        title,
        description,
        url,
        tags: Vec::new(),
        internal: false,
        kind: SourceKind::Html,
        sections,
    }
}

fn selector(css: &str) -> Option<Selector> {
    Selector::parse(css).ok()
}

/// The whitespace-collapsed text of the first element matching `css`, if non-empty.
fn first_text(page: &Html, css: &str) -> Option<String> {
    let selector = selector(css)?;
    page.select(&selector)
        .map(|element| collapse_whitespace(&element.text().collect::<String>()))
        .find(|text| !text.is_empty())
}

struct Walker {
    builder: SectionBuilder,
    /// Inside `<pre>`: text is verbatim.
    pre_depth: usize,
    /// Cells seen so far in each open `<tr>`.
    rows: Vec<usize>,
}

impl Walker {
    /// Walks the children of `element` (text and elements, in document order).
    fn children(&mut self, element: ElementRef<'_>) {
        for child in element.children() {
            match child.value() {
                Node::Text(text) => {
                    if self.pre_depth > 0 {
                        self.builder.text.push_verbatim(text);
                    } else {
                        self.builder.text.push_inline(text);
                    }
                }
                Node::Element(_) => {
                    if let Some(child) = ElementRef::wrap(child) {
                        self.element(child);
                    }
                }
                _ => {} // comments, doctype, processing instructions
            }
        }
    }

    fn element(&mut self, element: ElementRef<'_>) {
        let name = element.value().name();
        if DROPPED.contains(&name) {
            return;
        }
        if let Some(level) = heading_level(name) {
            self.builder.heading(level, &heading_text(element));
            self.builder.text.paragraph_break();
            return;
        }
        match name {
            "br" => self.builder.text.line_break(),
            "hr" => self.builder.text.paragraph_break(),
            "img" | "input" | "select" | "textarea" | "video" | "audio" | "canvas" => {}
            "li" | "dt" => {
                self.builder.text.line_break();
                self.builder.text.push_inline("- ");
                self.children(element);
                self.builder.text.line_break();
            }
            "tr" => {
                self.builder.text.line_break();
                self.rows.push(0);
                self.children(element);
                self.rows.pop();
                self.builder.text.line_break();
            }
            "td" | "th" => {
                if let Some(cells) = self.rows.last_mut() {
                    *cells += 1;
                    if *cells > 1 {
                        self.builder.text.push_inline(" | ");
                    }
                }
                self.children(element);
            }
            "pre" => {
                self.builder.text.paragraph_break();
                self.pre_depth += 1;
                self.children(element);
                self.pre_depth -= 1;
                self.builder.text.paragraph_break();
            }
            _ if BLOCKS.contains(&name) => {
                self.builder.text.paragraph_break();
                self.children(element);
                self.builder.text.paragraph_break();
            }
            _ => self.children(element), // inline: a, b, span, code…
        }
    }
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// A heading's text, without dropped elements (e.g. an inline `<svg>` anchor icon).
fn heading_text(heading: ElementRef<'_>) -> String {
    let mut text = String::new();
    for node in heading.descendants() {
        if let Node::Text(t) = node.value() {
            let dropped = node.ancestors().any(|a| {
                a.value()
                    .as_element()
                    .is_some_and(|e| DROPPED.contains(&e.name()))
            });
            if !dropped {
                text.push_str(t);
            }
        }
    }
    collapse_whitespace(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Document {
        parse_html(DocumentId::parse("guides/page").expect("valid id"), source)
    }

    #[test]
    fn title_meta_sections_and_dropped_chrome() {
        let source = r#"<!DOCTYPE html>
<html><head><title>Billing help</title>
<meta name="description" content="All about  invoices.">
<style>body { color: red }</style><script>var x = 1;</script></head>
<body>
<nav><a href="/">Home</a> <a href="/docs">Docs</a></nav>
<h1>Billing help</h1>
<p>Intro <b>text</b> with a <a href="/x">link</a>.</p>
<h2>Invoices</h2>
<ul><li>Open <code>Settings</code></li><li>Click Download</li></ul>
<h3>VAT</h3>
<table><tr><th>Country</th><th>Rate</th></tr><tr><td>FR</td><td>20%</td></tr></table>
<h2>Code</h2>
<pre>curl -X GET \
  https://x</pre>
<footer>© 2024 Example</footer>
</body></html>"#;
        let document = parse(source);
        assert_eq!(document.title, "Billing help");
        assert_eq!(document.description.as_deref(), Some("All about invoices."));
        assert_eq!(document.kind, SourceKind::Html);
        assert_eq!(document.url.as_deref(), Some("/guides/page"));
        let got: Vec<(String, &str)> = document
            .sections
            .iter()
            .map(|s| (s.heading_path.join(" > "), s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (String::new(), "Intro text with a link."),
                ("Invoices".into(), "- Open Settings\n- Click Download"),
                ("Invoices > VAT".into(), "Country | Rate\nFR | 20%"),
                ("Code".into(), "curl -X GET \\\n  https://x"),
            ]
        );
    }

    #[test]
    fn the_first_h1_is_the_title_without_a_title_element() {
        let document = parse("<h1>Reset your password</h1><p>Click reset.</p>");
        assert_eq!(document.title, "Reset your password");
        assert_eq!(document.sections.len(), 1);
        assert!(document.sections[0].heading_path.is_empty());
        assert_eq!(document.sections[0].text, "Click reset.");
    }

    #[test]
    fn without_title_or_h1_the_file_name_is_the_title() {
        assert_eq!(parse("<p>x</p>").title, "Page");
    }
}
