//! Builders shared by the Markdown and HTML parsers: plain text with explicit breaks, and
//! sections split at headings.
//!
//! Text layout of a [`Section`]: blocks (paragraphs, lists, tables, code blocks) are separated
//! by one blank line; lines inside a block (list items, table rows, code lines) by one
//! newline; no trailing spaces, no runs of blank lines. The chunker splits at exactly these
//! boundaries.

use crate::document::Section;

/// A break waiting to be written before the next text (so that a break is written once,
/// never at the start or the end, and the strongest requested break wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Break {
    #[default]
    None,
    Space,
    Line,
    Paragraph,
}

/// Plain text built from inline text and block breaks.
#[derive(Debug, Default)]
pub(crate) struct TextBuffer {
    out: String,
    pending: Break,
}

impl TextBuffer {
    /// A space before the next text (collapses with other spaces and breaks).
    pub(crate) fn space(&mut self) {
        self.pending = self.pending.max(Break::Space);
    }

    /// A newline before the next text.
    pub(crate) fn line_break(&mut self) {
        self.pending = self.pending.max(Break::Line);
    }

    /// A blank line before the next text.
    pub(crate) fn paragraph_break(&mut self) {
        self.pending = self.pending.max(Break::Paragraph);
    }

    /// Appends inline text; runs of whitespace (newlines included) become one space.
    pub(crate) fn push_inline(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() {
                self.space();
            } else {
                self.flush();
                self.out.push(c);
            }
        }
    }

    /// Appends code verbatim: lines keep their indentation, blank lines stay blank lines.
    pub(crate) fn push_verbatim(&mut self, text: &str) {
        for (index, line) in text.trim_end_matches('\n').split('\n').enumerate() {
            if index > 0 {
                self.line_break();
            }
            let line = line.trim_end();
            if line.is_empty() {
                if index > 0 {
                    self.paragraph_break();
                }
                continue;
            }
            self.flush();
            self.out.push_str(line);
        }
    }

    /// Writes the pending break (nothing at the very start of the text).
    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if self.out.is_empty() {
            return;
        }
        match pending {
            Break::None => {}
            Break::Space => {
                if !self.out.ends_with([' ', '\n']) {
                    self.out.push(' ');
                }
            }
            Break::Line | Break::Paragraph => {
                let kept = self.out.trim_end_matches([' ', '\t']).len();
                self.out.truncate(kept);
                if !self.out.ends_with('\n') {
                    self.out.push('\n');
                }
                if pending == Break::Paragraph && !self.out.ends_with("\n\n") {
                    self.out.push('\n');
                }
            }
        }
    }

    /// The text so far (trimmed), leaving the buffer empty.
    pub(crate) fn take(&mut self) -> String {
        let text = self.out.trim().to_string();
        self.out.clear();
        self.pending = Break::None;
        text
    }
}

/// Splits a document into [`Section`]s at headings.
///
/// The heading path is the stack of heading texts by level. A level-1 heading equal to the
/// document title (or the first level-1 heading when the title is not known yet) adds no
/// level. Consecutive text under the same path stays one section; empty sections are dropped.
#[derive(Debug)]
pub(crate) struct SectionBuilder {
    title: Option<String>,
    stack: Vec<(u8, String)>,
    current_path: Vec<String>,
    /// Text of the current section.
    pub(crate) text: TextBuffer,
    sections: Vec<Section>,
}

impl SectionBuilder {
    /// `title`: the document title when known (front matter, `<title>`), else `None`.
    pub(crate) fn new(title: Option<String>) -> Self {
        Self {
            title: title
                .map(|t| collapse_whitespace(&t))
                .filter(|t| !t.is_empty()),
            stack: Vec::new(),
            current_path: Vec::new(),
            text: TextBuffer::default(),
            sections: Vec::new(),
        }
    }

    /// Starts the section under a heading of `level` (1–6).
    pub(crate) fn heading(&mut self, level: u8, text: &str) {
        let text = collapse_whitespace(text);
        if text.is_empty() {
            return;
        }
        if level == 1 && self.title.is_none() {
            self.title = Some(text.clone());
        }
        let is_title = level == 1
            && self
                .title
                .as_deref()
                .is_some_and(|t| same_heading(t, &text));
        if is_title {
            self.stack.clear();
        } else {
            while self.stack.last().is_some_and(|(top, _)| *top >= level) {
                self.stack.pop();
            }
            self.stack.push((level, text));
        }
        let path: Vec<String> = self.stack.iter().map(|(_, t)| t.clone()).collect();
        if path == self.current_path {
            // Same place (e.g. `# Title` after a lead): one section, a new paragraph.
            self.text.paragraph_break();
        } else {
            self.finish_section();
            self.current_path = path;
        }
    }

    fn finish_section(&mut self) {
        let text = self.text.take();
        if !text.is_empty() {
            self.sections.push(Section {
                heading_path: self.current_path.clone(),
                text,
            });
        }
    }

    /// The title seen (given, or the first level-1 heading) and the non-empty sections.
    pub(crate) fn finish(mut self) -> (Option<String>, Vec<Section>) {
        self.finish_section();
        (self.title, self.sections)
    }
}

/// Runs of whitespace → one space, trimmed.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Headings compare case-insensitively, ignoring whitespace differences.
fn same_heading(a: &str, b: &str) -> bool {
    collapse_whitespace(a).to_lowercase() == collapse_whitespace(b).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaks_collapse_and_never_trail() {
        let mut text = TextBuffer::default();
        text.paragraph_break();
        text.push_inline("  Hello \n world ");
        text.line_break();
        text.paragraph_break();
        text.push_inline("Next");
        text.line_break();
        text.push_inline("- item");
        text.paragraph_break();
        assert_eq!(text.take(), "Hello world\n\nNext\n- item");
    }

    #[test]
    fn verbatim_keeps_indentation_and_blank_lines() {
        let mut text = TextBuffer::default();
        text.push_inline("Run:");
        text.paragraph_break();
        text.push_verbatim("fn main() {\n    run();\n\n}\n");
        assert_eq!(text.take(), "Run:\n\nfn main() {\n    run();\n\n}");
    }

    #[test]
    fn sections_follow_the_heading_stack_and_the_title_adds_no_level() {
        let mut builder = SectionBuilder::new(Some("Billing".into()));
        builder.text.push_inline("Lead.");
        builder.heading(1, "Billing");
        builder.text.push_inline("Still the lead.");
        builder.heading(2, "Invoices");
        builder.text.push_inline("Download.");
        builder.heading(3, "VAT");
        builder.text.push_inline("Add VAT id.");
        builder.heading(2, "Refunds");
        builder.heading(3, "Partial");
        builder.text.push_inline("Ask us.");
        let (title, sections) = builder.finish();
        assert_eq!(title.as_deref(), Some("Billing"));
        let got: Vec<(Vec<&str>, &str)> = sections
            .iter()
            .map(|s| {
                (
                    s.heading_path.iter().map(String::as_str).collect(),
                    s.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (vec![], "Lead.\n\nStill the lead."),
                (vec!["Invoices"], "Download."),
                (vec!["Invoices", "VAT"], "Add VAT id."),
                (vec!["Refunds", "Partial"], "Ask us."),
            ]
        );
    }

    #[test]
    fn the_first_h1_becomes_the_title_when_none_is_given() {
        let mut builder = SectionBuilder::new(None);
        builder.heading(1, "Reset  your password");
        builder.text.push_inline("Click reset.");
        let (title, sections) = builder.finish();
        assert_eq!(title.as_deref(), Some("Reset your password"));
        assert!(sections[0].heading_path.is_empty());
    }
}
