//! Plain-text articles (`.txt`) → [`Document`].
//!
//! Title: the first non-empty line. One section (empty heading path) holding the rest of the
//! text, paragraphs separated by one blank line, lines kept; when the file is a single line,
//! that line is also the section text (so the document is still retrievable).

use super::title_from_id;
use crate::document::{Document, DocumentId, Section, SourceKind};

/// Parses one plain-text article (text with `\n` line endings).
pub fn parse_text(id: DocumentId, source: &str) -> Document {
    let mut lines = source.lines().map(str::trim_end);
    let title = lines
        .by_ref()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(String::from);
    let mut body = paragraphs(lines);
    if body.is_empty() {
        body = title.clone().unwrap_or_default();
    }
    let sections = if body.is_empty() {
        Vec::new()
    } else {
        vec![Section {
            heading_path: Vec::new(),
            text: body,
        }]
    };
    let url = Some(format!("/{id}"));
    Document {
        title: title.unwrap_or_else(|| title_from_id(&id)),
        id,
        description: None,
        url,
        tags: Vec::new(),
        internal: false,
        kind: SourceKind::Text,
        sections,
    }
}

/// Lines joined with `\n`, runs of blank lines collapsed to one, trimmed.
fn paragraphs<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut blank_pending = false;
    for line in lines {
        if line.trim().is_empty() {
            blank_pending = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_pending { "\n\n" } else { "\n" });
        }
        blank_pending = false;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Document {
        parse_text(DocumentId::parse("faq/shipping").expect("valid id"), source)
    }

    #[test]
    fn first_line_is_the_title_and_paragraphs_are_kept() {
        let document = parse(
            "\n\n  Shipping times  \n\nWe ship in 2 days.\nTracking is emailed.\n\n\n\nReturns take a week.\n",
        );
        assert_eq!(document.title, "Shipping times");
        assert_eq!(document.kind, SourceKind::Text);
        assert_eq!(document.url.as_deref(), Some("/faq/shipping"));
        assert_eq!(document.sections.len(), 1);
        assert!(document.sections[0].heading_path.is_empty());
        assert_eq!(
            document.sections[0].text,
            "We ship in 2 days.\nTracking is emailed.\n\nReturns take a week."
        );
    }

    #[test]
    fn a_single_line_is_title_and_text() {
        let document = parse("Call us any time.");
        assert_eq!(document.title, "Call us any time.");
        assert_eq!(document.sections[0].text, "Call us any time.");
    }

    #[test]
    fn an_empty_file_has_no_sections() {
        let document = parse("  \n\n");
        assert_eq!(document.title, "Shipping");
        assert!(document.sections.is_empty());
    }
}
