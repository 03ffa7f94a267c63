//! Markdown/MDX help articles → [`Document`].
//!
//! 1. YAML front matter (`---` … `---`, parsed with `serde_yaml_ng`): `title`, `description`,
//!    `slug`, `tags`. Malformed front matter is reported with its file line and the article is
//!    still ingested.
//! 2. MDX clean-up (imports, JSX, `<head>` JSON-LD, admonitions; see the `mdx` module).
//! 3. CommonMark + GFM tables walked with `pulldown-cmark`, split into sections at headings.
//!    Link text is kept and URLs dropped, images dropped, inline code kept as text, tables
//!    rendered as `cell | cell` rows, list items as `- ` lines, code blocks verbatim.
//!
//! Title: front matter `title`, else the first `# heading`, else the file name. URL: front
//! matter `slug` as given, else `/{id}`.

use std::path::Path;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde_yaml_ng::Value;

use super::sections::SectionBuilder;
use super::{IngestProblem, IngestProblemKind, title_from_id};
use crate::document::{Document, DocumentId, SourceKind};

/// The front matter fields an article may set.
#[derive(Debug, Default, PartialEq)]
pub struct FrontMatter {
    pub title: Option<String>,
    pub description: Option<String>,
    pub slug: Option<String>,
    pub tags: Vec<String>,
}

/// Parses one Markdown/MDX article. `path` is only used in problem reports; `source` is the
/// file's text with `\n` line endings. Problems: [`IngestProblemKind::MalformedFrontMatter`].
pub fn parse_markdown(id: DocumentId, path: &Path, source: &str) -> (Document, Vec<IngestProblem>) {
    let mut problems = Vec::new();
    let (front_matter, body) = split_front_matter(source, path, &mut problems);
    let is_mdx_file = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mdx"));
    let markdown = super::mdx::mdx_to_markdown(body, is_mdx_file);
    let (first_h1, sections) = markdown_sections(&markdown, front_matter.title.clone());

    let title = front_matter
        .title
        .or(first_h1)
        .unwrap_or_else(|| title_from_id(&id));
    let url = front_matter.slug.unwrap_or_else(|| format!("/{id}"));
    let document = Document {
        id,
        title,
        description: front_matter.description,
        url: Some(url),
        tags: front_matter.tags,
        internal: false,
        kind: SourceKind::Markdown,
        sections,
    };
    (document, problems)
}

/// Splits `--- yaml ---` front matter off the top of `source`. Returns the fields (default
/// when absent or malformed) and the body after the closing delimiter. Malformed or
/// unterminated front matter is reported in `problems` with its 1-based file line.
pub fn split_front_matter<'a>(
    source: &'a str,
    path: &Path,
    problems: &mut Vec<IngestProblem>,
) -> (FrontMatter, &'a str) {
    let mut lines = source.split_inclusive('\n');
    let Some(first) = lines.next() else {
        return (FrontMatter::default(), source);
    };
    if first.trim_end() != "---" {
        return (FrontMatter::default(), source);
    }
    let yaml_start = first.len();
    let mut offset = yaml_start;
    for line in lines {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            let yaml = &source[yaml_start..offset];
            let body = &source[offset + line.len()..];
            let front_matter = parse_front_matter(yaml, path, problems);
            return (front_matter, body);
        }
        offset += line.len();
    }
    problems.push(IngestProblem::of_kind(
        IngestProblemKind::MalformedFrontMatter,
        path,
        Some(1),
        "front matter opened with `---` is never closed: add a `---` line after it; the file was read as Markdown",
    ));
    (FrontMatter::default(), source)
}

/// Parses the YAML between the delimiters (which starts on file line 2).
fn parse_front_matter(yaml: &str, path: &Path, problems: &mut Vec<IngestProblem>) -> FrontMatter {
    let mut report = |line: Option<usize>, message: String| {
        problems.push(IngestProblem::of_kind(
            IngestProblemKind::MalformedFrontMatter,
            path,
            line,
            message,
        ));
    };
    let value: Value = match serde_yaml_ng::from_str(yaml) {
        Ok(value) => value,
        Err(error) => {
            // YAML line 1 is file line 2 (after the opening `---`).
            let line = error.location().map_or(1, |l| l.line() + 1);
            report(
                Some(line),
                format!(
                    "front matter is not valid YAML ({error}); the title was taken from the first heading or the file name"
                ),
            );
            return FrontMatter::default();
        }
    };
    let mapping = match value {
        Value::Mapping(mapping) => mapping,
        Value::Null => return FrontMatter::default(),
        _ => {
            report(
                Some(2),
                "front matter is not a `key: value` mapping; it was ignored".into(),
            );
            return FrontMatter::default();
        }
    };
    let mut text_field = |key: &str| -> Option<String> {
        match mapping.get(key)? {
            Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            _ => {
                report(
                    Some(2),
                    format!("front matter `{key}` is not text; it was ignored"),
                );
                None
            }
        }
    };
    let title = text_field("title");
    let description = text_field("description");
    let slug = text_field("slug");
    let tags = match mapping.get("tags") {
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|t| !t.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    FrontMatter {
        title,
        description,
        slug,
        tags,
    }
}

/// Walks cleaned Markdown into sections. Returns the first level-1 heading (the title when
/// `title` is `None`) and the non-empty sections.
fn markdown_sections(
    markdown: &str,
    title: Option<String>,
) -> (Option<String>, Vec<crate::document::Section>) {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut builder = SectionBuilder::new(title);
    let mut heading: Option<(u8, String)> = None;
    let mut list_depth = 0usize;
    let mut in_code_block = false;
    let mut image_depth = 0usize;
    let mut cells_in_row = 0usize;

    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Heading { level, .. } => heading = Some((heading_level(level), String::new())),
                // Inside a list item the item's `- ` line already started the paragraph.
                Tag::Paragraph if list_depth == 0 => builder.text.paragraph_break(),
                Tag::List(_) => {
                    if list_depth == 0 {
                        builder.text.paragraph_break();
                    }
                    list_depth += 1;
                }
                Tag::Item => {
                    builder.text.line_break();
                    builder.text.push_inline("- ");
                }
                Tag::CodeBlock(_) => {
                    in_code_block = true;
                    block_break(&mut builder, list_depth);
                }
                Tag::Table(_) | Tag::BlockQuote(_) => builder.text.paragraph_break(),
                Tag::TableHead | Tag::TableRow => {
                    builder.text.line_break();
                    cells_in_row = 0;
                }
                Tag::TableCell => {
                    if cells_in_row > 0 {
                        builder.text.push_inline(" | ");
                    }
                    cells_in_row += 1;
                }
                Tag::Image { .. } => image_depth += 1,
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Heading(_) => {
                    if let Some((level, text)) = heading.take() {
                        builder.heading(level, &text);
                    }
                }
                TagEnd::Paragraph => {
                    if list_depth == 0 {
                        builder.text.paragraph_break();
                    } else {
                        builder.text.line_break();
                    }
                }
                TagEnd::List(_) => {
                    list_depth = list_depth.saturating_sub(1);
                    block_break(&mut builder, list_depth);
                }
                TagEnd::Item => builder.text.line_break(),
                TagEnd::CodeBlock => {
                    in_code_block = false;
                    block_break(&mut builder, list_depth);
                }
                TagEnd::Table | TagEnd::BlockQuote(_) => builder.text.paragraph_break(),
                TagEnd::TableHead | TagEnd::TableRow => builder.text.line_break(),
                TagEnd::Image => image_depth = image_depth.saturating_sub(1),
                _ => {}
            },
            Event::Text(text) | Event::Code(text) => {
                if image_depth > 0 {
                    continue;
                }
                if let Some((_, heading_text)) = heading.as_mut() {
                    heading_text.push_str(&text);
                } else if in_code_block {
                    builder.text.push_verbatim(&text);
                } else {
                    builder.text.push_inline(&text);
                }
            }
            Event::SoftBreak => match heading.as_mut() {
                Some((_, heading_text)) => heading_text.push(' '),
                None => builder.text.space(),
            },
            Event::HardBreak => match heading.as_mut() {
                Some((_, heading_text)) => heading_text.push(' '),
                None => builder.text.line_break(),
            },
            Event::Rule => builder.text.paragraph_break(),
            // Raw HTML left after the MDX pass (e.g. a stray `<?php`) is markup, not text.
            Event::Html(_) | Event::InlineHtml(_) => {}
            _ => {}
        }
    }
    builder.finish()
}

/// Code blocks and lists are their own blocks, except inside a list item (one line).
fn block_break(builder: &mut SectionBuilder, list_depth: usize) {
    if list_depth == 0 {
        builder.text.paragraph_break();
    } else {
        builder.text.line_break();
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Section;

    fn parse(id: &str, source: &str) -> (Document, Vec<IngestProblem>) {
        let id = DocumentId::parse(id).expect("valid id");
        parse_markdown(id, Path::new("help/article.md"), source)
    }

    fn paths_and_texts(sections: &[Section]) -> Vec<(String, String)> {
        sections
            .iter()
            .map(|s| (s.heading_path.join(" > "), s.text.clone()))
            .collect()
    }

    #[test]
    fn front_matter_sets_title_description_slug_and_tags() {
        let source = "---\ntitle: Reset your password\ndescription: \"How to reset it.\"\nslug: /reset\ntags: [account, login]\nsidebar_label: Reset\n---\n\nClick **Forgot password**.\n";
        let (document, problems) = parse("reset-password", source);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(document.title, "Reset your password");
        assert_eq!(document.description.as_deref(), Some("How to reset it."));
        assert_eq!(document.url.as_deref(), Some("/reset"));
        assert_eq!(document.tags, ["account", "login"]);
        assert_eq!(document.kind, SourceKind::Markdown);
        assert!(!document.internal);
        assert_eq!(
            paths_and_texts(&document.sections),
            [(String::new(), "Click Forgot password.".into())]
        );
    }

    #[test]
    fn closing_delimiter_may_have_trailing_spaces() {
        let (document, problems) = parse("top-pages", "---\ntitle: Top pages\n--- \n\nText.");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(document.title, "Top pages");
        assert_eq!(document.url.as_deref(), Some("/top-pages"));
    }

    #[test]
    fn malformed_front_matter_is_reported_with_its_line_and_the_h1_becomes_the_title() {
        let source = "---\ntitle: Fine\ndescription: \"unterminated\n  bad: [\n---\n\n# Export stats\n\nUse the menu.\n";
        let (document, problems) = parse("export-stats", source);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].kind, IngestProblemKind::MalformedFrontMatter);
        assert_eq!(problems[0].path, Path::new("help/article.md"));
        let line = problems[0].line.expect("a YAML error has a line");
        assert!(
            (3..=5).contains(&line),
            "line {line} should point into the front matter"
        );
        assert_eq!(document.title, "Export stats");
        assert_eq!(
            paths_and_texts(&document.sections),
            [(String::new(), "Use the menu.".into())]
        );
    }

    #[test]
    fn without_front_matter_or_heading_the_file_name_is_the_title() {
        let (document, problems) = parse("proxy/custom-domain", "Just text.");
        assert!(problems.is_empty());
        assert_eq!(document.title, "Custom domain");
        assert_eq!(document.url.as_deref(), Some("/proxy/custom-domain"));
    }

    #[test]
    fn unterminated_front_matter_is_reported_and_the_text_kept() {
        let (document, problems) = parse("a", "---\ntitle: A\n\nBody text.");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(1));
        assert!(document.sections[0].text.contains("Body text."));
    }

    #[test]
    fn sections_split_at_headings_with_the_title_h1_adding_no_level() {
        let source = "---\ntitle: Billing\n---\n\nLead text.\n\n# Billing\n\nMore lead.\n\n## Invoices\n\nDownload them.\n\n### VAT\n\nAdd your VAT id.\n\n## Refunds {#refunds}\n\nAsk us.\n";
        let (document, _) = parse("billing", source);
        assert_eq!(
            paths_and_texts(&document.sections),
            [
                (String::new(), "Lead text.\n\nMore lead.".into()),
                ("Invoices".into(), "Download them.".into()),
                ("Invoices > VAT".into(), "Add your VAT id.".into()),
                ("Refunds".into(), "Ask us.".into()),
            ]
        );
    }

    #[test]
    fn mdx_article_is_cleaned_to_text() {
        let source = r#"---
title: Exclude yourself
description: "Block your own visits."
---

import useBaseUrl from '@docusaurus/useBaseUrl';
import CtaBox from '@site/src/components/CtaBox';

<head>
  <script type="application/ld+json">{`
    {"@context": "https://schema.org", "@type": "FAQPage"}
  `}</script>
</head>

Use the [blocking page](https://plausible.io/docs/excluding) to exclude yourself. Run `localStorage.plausible_ignore=true` in the console.

<CtaBox
  headline="Need help?"
  link="https://plausible.io/contact"
/>

:::tip Using WordPress?
The plugin excludes logged-in admins.
:::

## Steps

1. Open your site.
2. Open the console:

   <div class="browser"><img alt="Console" src={useBaseUrl('img/console.png')} /></div>

3. Paste the code:

```js
localStorage.plausible_ignore = true
```

| Browser | Shortcut |
| --- | --- |
| Chrome | `Ctrl+Shift+J` |
| Firefox | `Ctrl+Shift+K` |

![A screenshot](img/shot.png)
"#;
        let (document, problems) = parse("excluding-localstorage", source);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(document.title, "Exclude yourself");
        assert_eq!(
            paths_and_texts(&document.sections),
            [
                (
                    String::new(),
                    "Use the blocking page to exclude yourself. Run localStorage.plausible_ignore=true in the console.\n\nUsing WordPress?\n\nThe plugin excludes logged-in admins.".into()
                ),
                (
                    "Steps".into(),
                    "- Open your site.\n- Open the console:\n- Paste the code:\n\nlocalStorage.plausible_ignore = true\n\nBrowser | Shortcut\nChrome | Ctrl+Shift+J\nFirefox | Ctrl+Shift+K".into()
                ),
            ]
        );
    }

    #[test]
    fn nested_lists_and_code_in_items_stay_readable() {
        let source = "# T\n\n- One\n  - One a\n- Two\n\n  ```sh\n  npm i\n  ```\n\nAfter.";
        let (document, _) = parse("t", source);
        assert_eq!(
            paths_and_texts(&document.sections),
            [(
                String::new(),
                "- One\n- One a\n- Two\nnpm i\n\nAfter.".into()
            )]
        );
    }
}
