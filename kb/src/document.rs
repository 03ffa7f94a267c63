//! Documents (articles, past tickets) and the chunks they are split into.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A document id: the path relative to the source root without its extension, with `/`
/// separators (`reset-password`, `proxy/introduction`). For past tickets: `tickets/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocumentId(String);

impl DocumentId {
    /// Parses a document id: non-empty, relative, `/`-separated, no `..` segments.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim_matches('/');
        if trimmed.is_empty() {
            return Err("document id is empty".into());
        }
        if trimmed
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(format!(
                "document id {raw:?} has an empty, `.` or `..` segment"
            ));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a document came from; decides how it may be shown to a visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Markdown,
    Html,
    Text,
    /// A resolved past ticket: used to answer, never cited or linked to a visitor.
    Ticket,
}

/// One section of a document: the heading path that leads to it and its plain text
/// (paragraphs, list items, table rows and code kept as text, separated by newlines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Headings from the top of the document down to this section (empty for the lead).
    pub heading_path: Vec<String>,
    pub text: String,
}

/// A cleaned document, ready to be chunked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocumentId,
    pub title: String,
    pub description: Option<String>,
    /// Public URL path or absolute URL (front matter `slug`, else `/{id}`); `None` for internal documents.
    pub url: Option<String>,
    pub tags: Vec<String>,
    /// Internal documents (past tickets) are used to answer but never cited or linked.
    pub internal: bool,
    pub kind: SourceKind,
    pub sections: Vec<Section>,
}

/// A retrievable piece of a document that fits the embedding model's window together with
/// its title and section-path prefix (see [`Chunk::embedding_text`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// `{document id}#{heading path joined by " > "}#{ordinal}`: stable while the section keeps its place.
    pub id: String,
    pub document_id: DocumentId,
    pub heading_path: Vec<String>,
    /// 0-based position of this chunk within its section.
    pub ordinal: u32,
    /// The chunk's own text (without the prefix).
    pub text: String,
    /// Text sent to the embedder: `"{title}. {heading path}. {text}"`.
    pub embedding_text: String,
    /// Hex SHA-256 of `embedding_text`: the embedding cache key and the change detector.
    pub content_hash: String,
}

impl Chunk {
    /// Builds a chunk and its id, embedding text and content hash.
    pub fn new(document: &Document, heading_path: Vec<String>, ordinal: u32, text: String) -> Self {
        let id = format!("{}#{}#{}", document.id, heading_path.join(" > "), ordinal);
        let embedding_text = embedding_text(&document.title, &heading_path, &text);
        let content_hash = content_hash(&embedding_text);
        Self {
            id,
            document_id: document.id.clone(),
            heading_path,
            ordinal,
            text,
            embedding_text,
            content_hash,
        }
    }
}

/// The text a chunk is embedded (and keyword-indexed) as: title, heading path, body.
pub fn embedding_text(title: &str, heading_path: &[String], text: &str) -> String {
    let mut out = String::with_capacity(title.len() + text.len() + 32);
    out.push_str(title.trim());
    for heading in heading_path {
        if heading.trim() != title.trim() {
            out.push_str(". ");
            out.push_str(heading.trim());
        }
    }
    out.push_str(". ");
    out.push_str(text.trim());
    out
}

/// Hex SHA-256 of a text.
pub fn content_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_id_rejects_escaping_paths() {
        assert_eq!(
            DocumentId::parse("proxy/introduction").unwrap().as_str(),
            "proxy/introduction"
        );
        assert_eq!(
            DocumentId::parse("/reset-password/").unwrap().as_str(),
            "reset-password"
        );
        assert!(DocumentId::parse("../etc/passwd").is_err());
        assert!(DocumentId::parse("a//b").is_err());
        assert!(DocumentId::parse("").is_err());
    }

    #[test]
    fn embedding_text_skips_a_heading_equal_to_the_title() {
        let text = embedding_text(
            "Billing",
            &["Billing".into(), "Invoices".into()],
            "Download them.",
        );
        assert_eq!(text, "Billing. Invoices. Download them.");
    }
}
