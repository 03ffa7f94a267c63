//! Ingestion: a folder (or a single file) of help articles and past tickets → cleaned
//! [`Document`]s, plus a list of the problems met on the way.
//!
//! Formats, chosen by file extension (case-insensitive):
//! - `.md`, `.mdx`, `.markdown` — Markdown/MDX help articles ([`markdown`]): YAML front matter,
//!   MDX imports, JSX components, `<head>` JSON-LD and `:::` admonitions cleaned away;
//! - `.html`, `.htm` — HTML pages ([`html`]);
//! - `.txt` — plain text ([`text`]);
//! - `.jsonl` — resolved past tickets, one JSON object a line ([`tickets`]); personal data
//!   (emails, phone numbers, payment card numbers) is scrubbed at ingest.
//!
//! Everything else (images, `LICENSE*`, `README*`) is skipped and counted; hidden files and
//! folders (name starting with `.`) are not visited at all.
//!
//! Bad input never stops ingestion: an unreadable file, invalid UTF-8, a file over the size
//! limit, malformed front matter, a bad JSONL line or a source with nothing to ingest each
//! become an [`IngestProblem`] (path, line when known, kind, message) and the rest is
//! ingested. Only a source path that does not exist or cannot be opened at all is an
//! [`IngestError`].
//!
//! Document ids are the path relative to the source root without its extension, with `/`
//! separators (`reset-password`, `proxy/introduction`); tickets get `tickets/{id}`. Output is
//! sorted by id, so ingestion is deterministic.

pub mod html;
pub mod markdown;
mod mdx;
mod sections;
pub mod text;
pub mod tickets;

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use walkdir::WalkDir;

use crate::document::{Document, DocumentId};

/// Default per-file size limit: 10 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Settings of one ingestion run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Files larger than this many bytes are not read; each is reported as
    /// [`IngestProblemKind::TooLarge`]. Default [`DEFAULT_MAX_FILE_BYTES`] (10 MiB).
    pub max_file_bytes: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// What [`load_path`] produced.
#[derive(Debug, Clone, Default)]
pub struct LoadOutput {
    /// Cleaned documents, sorted by id, ids unique.
    pub documents: Vec<Document>,
    /// Everything that could not be ingested (or only partly), in the order met.
    pub problems: Vec<IngestProblem>,
    /// Regular files visited (hidden files and folders are not visited).
    pub n_files_seen: usize,
    /// Visited files deliberately not ingested: `LICENSE*`, `README*` and unsupported
    /// extensions. Files that failed (unreadable, too large…) are in `problems` instead.
    pub n_files_skipped: usize,
}

/// What went wrong with one file or line; the rest of the source is still ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestProblemKind {
    /// The file (or a folder entry) could not be read: permissions, a dangling symlink, a loop.
    Unreadable,
    /// The file is not valid UTF-8 (`line` is the line of the first invalid byte).
    InvalidUtf8,
    /// The file is larger than [`LoadOptions::max_file_bytes`].
    TooLarge,
    /// The source holds nothing to ingest (empty folder, only skipped files, no valid line).
    EmptySource,
    /// The YAML front matter could not be parsed; the document was ingested with the first
    /// `# heading` (or its file name) as title.
    MalformedFrontMatter,
    /// A JSONL line that is not JSON or lacks ticket fields; the other lines were ingested.
    MalformedTicket,
    /// The file name (or ticket id) cannot form a [`DocumentId`] (non-UTF-8, `..`, empty).
    InvalidId,
    /// Two files (or tickets) map to the same id; the first (in path order) was kept.
    DuplicateId,
    /// Anything else (raised by callers through [`IngestProblem::new`]).
    Other,
}

/// One problem met during ingestion: where (file path, 1-based line when known) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestProblem {
    pub path: PathBuf,
    /// 1-based line in `path`, when the problem is tied to one.
    pub line: Option<usize>,
    pub kind: IngestProblemKind,
    /// Human-readable explanation, naming what to fix.
    pub message: String,
}

impl IngestProblem {
    /// A problem of kind [`IngestProblemKind::Other`] (for callers outside this module).
    pub fn new(path: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Self::of_kind(IngestProblemKind::Other, path, line, message)
    }

    /// A problem of the given kind.
    pub fn of_kind(
        kind: IngestProblemKind,
        path: &Path,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            line,
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for IngestProblem {
    /// `path:line: message` (or `path: message` without a line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// The source as a whole cannot be read; nothing was ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("knowledge source {} does not exist: check the path", .path.display())]
    NotFound { path: PathBuf },
    #[error("knowledge source {} cannot be read: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("knowledge source {} is neither a regular file nor a folder", .path.display())]
    NotAFileOrFolder { path: PathBuf },
}

/// The format of a source file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Markdown,
    Html,
    Text,
    TicketsJsonl,
}

impl SourceFormat {
    /// `.md`/`.mdx`/`.markdown`, `.html`/`.htm`, `.txt`, `.jsonl` (case-insensitive); `None`
    /// for anything else.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "md" | "mdx" | "markdown" => Some(Self::Markdown),
            "html" | "htm" => Some(Self::Html),
            "txt" => Some(Self::Text),
            "jsonl" => Some(Self::TicketsJsonl),
            _ => None,
        }
    }
}

/// Loads every supported file under `path` (a folder, walked recursively in path order) or
/// the single file `path`.
///
/// Errors: [`IngestError`] only when `path` does not exist, cannot be opened, or is neither
/// a file nor a folder. Everything else is reported in [`LoadOutput::problems`].
pub fn load_path(path: &Path, options: &LoadOptions) -> Result<LoadOutput, IngestError> {
    let metadata = fs::metadata(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => IngestError::NotFound {
            path: path.to_path_buf(),
        },
        _ => IngestError::Unreadable {
            path: path.to_path_buf(),
            source,
        },
    })?;

    let mut loader = Loader {
        options,
        output: LoadOutput::default(),
        loaded: Vec::new(),
    };
    if metadata.is_file() {
        // A single file: its id is its file stem (the root is its folder).
        let root = path.parent().unwrap_or(Path::new(""));
        loader.load_file(root, path);
    } else if metadata.is_dir() {
        // Open the folder once up front so "cannot read the source" is an error, not a problem.
        fs::read_dir(path).map_err(|source| IngestError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        loader.load_folder(path);
    } else {
        return Err(IngestError::NotAFileOrFolder {
            path: path.to_path_buf(),
        });
    }
    Ok(loader.finish(path))
}

/// A document with where it came from (for duplicate-id reports).
struct Loaded {
    document: Document,
    path: PathBuf,
    line: Option<usize>,
}

struct Loader<'a> {
    options: &'a LoadOptions,
    output: LoadOutput,
    loaded: Vec<Loaded>,
}

impl Loader<'_> {
    fn load_folder(&mut self, root: &Path) {
        let walker = WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            // Never descend into hidden folders nor visit hidden files (the root itself may be
            // `.` or `..`, so it is exempt).
            .filter_entry(|entry| entry.depth() == 0 || !is_hidden(entry.file_name()));
        for entry in walker {
            match entry {
                Ok(entry) if entry.file_type().is_file() => self.load_file(root, entry.path()),
                Ok(_) => {} // folders (and other non-files) are only traversed
                Err(error) => {
                    let path = error.path().unwrap_or(root).to_path_buf();
                    self.problem(
                        IngestProblemKind::Unreadable,
                        &path,
                        None,
                        format!("cannot read this entry: {error}"),
                    );
                }
            }
        }
    }

    fn load_file(&mut self, root: &Path, path: &Path) {
        self.output.n_files_seen += 1;
        let Some(format) = SourceFormat::from_path(path).filter(|_| !is_boilerplate(path)) else {
            self.output.n_files_skipped += 1;
            return;
        };
        let Some(content) = self.read_text(path) else {
            return;
        };
        match format {
            SourceFormat::TicketsJsonl => self.load_tickets(path, &content),
            SourceFormat::Markdown => {
                self.load_article(root, path, |id| {
                    markdown::parse_markdown(id, path, &content)
                });
            }
            SourceFormat::Html => {
                self.load_article(root, path, |id| {
                    (html::parse_html(id, &content), Vec::new())
                });
            }
            SourceFormat::Text => {
                self.load_article(root, path, |id| {
                    (text::parse_text(id, &content), Vec::new())
                });
            }
        }
    }

    /// One article: its id from its path, its document from `parse`.
    fn load_article(
        &mut self,
        root: &Path,
        path: &Path,
        parse: impl FnOnce(DocumentId) -> (Document, Vec<IngestProblem>),
    ) {
        let id = match document_id(root, path) {
            Ok(id) => id,
            Err(message) => {
                self.problem(IngestProblemKind::InvalidId, path, None, message);
                return;
            }
        };
        let (document, problems) = parse(id);
        self.output.problems.extend(problems);
        self.loaded.push(Loaded {
            document,
            path: path.to_path_buf(),
            line: None,
        });
    }

    /// A JSONL file of tickets: ids come from the lines, not from the file name.
    fn load_tickets(&mut self, path: &Path, content: &str) {
        let (documents, problems) = tickets::parse_tickets_jsonl(path, content);
        self.output.problems.extend(problems);
        for (line, document) in documents {
            self.loaded.push(Loaded {
                document,
                path: path.to_path_buf(),
                line: Some(line),
            });
        }
    }

    /// Reads a file as UTF-8 text (BOM removed, line endings normalised to `\n`), or reports why
    /// it cannot be read.
    fn read_text(&mut self, path: &Path) -> Option<String> {
        let limit = self.options.max_file_bytes;
        let mut bytes = Vec::new();
        // Read at most limit + 1 bytes: enough to know the file is too large without reading
        // all of it (and safe against a file that grows while it is read).
        let read = fs::File::open(path)
            .and_then(|file| file.take(limit.saturating_add(1)).read_to_end(&mut bytes));
        if let Err(error) = read {
            self.problem(
                IngestProblemKind::Unreadable,
                path,
                None,
                format!("cannot read: {error}"),
            );
            return None;
        }
        if bytes.len() as u64 > limit {
            let size = fs::metadata(path)
                .map(|m| m.len())
                .unwrap_or(bytes.len() as u64);
            self.problem(
                IngestProblemKind::TooLarge,
                path,
                None,
                format!(
                    "file is {size} bytes, over the {limit}-byte limit (raise max_file_bytes to ingest it)"
                ),
            );
            return None;
        }
        match String::from_utf8(bytes) {
            Ok(text) => Some(normalize_text(&text)),
            Err(error) => {
                let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
                let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
                self.problem(
                    IngestProblemKind::InvalidUtf8,
                    path,
                    Some(line),
                    format!(
                        "not valid UTF-8 (first invalid byte at offset {}): re-save the file as UTF-8",
                        valid.len()
                    ),
                );
                None
            }
        }
    }

    fn problem(
        &mut self,
        kind: IngestProblemKind,
        path: &Path,
        line: Option<usize>,
        message: impl Into<String>,
    ) {
        self.output
            .problems
            .push(IngestProblem::of_kind(kind, path, line, message));
    }

    /// Sorts by id, drops (and reports) duplicate ids, and reports an empty source.
    fn finish(mut self, source: &Path) -> LoadOutput {
        // Stable sort: among equal ids the first loaded (in path order) comes first.
        self.loaded
            .sort_by(|a, b| a.document.id.cmp(&b.document.id));
        let mut documents: Vec<Document> = Vec::with_capacity(self.loaded.len());
        let mut kept_from: Option<PathBuf> = None;
        for loaded in self.loaded {
            if documents
                .last()
                .is_some_and(|last| last.id == loaded.document.id)
            {
                let first = kept_from.as_deref().unwrap_or(Path::new("?"));
                self.output.problems.push(IngestProblem::of_kind(
                    IngestProblemKind::DuplicateId,
                    &loaded.path,
                    loaded.line,
                    format!(
                        "document id `{}` is already taken by {}; this one was not ingested",
                        loaded.document.id,
                        first.display()
                    ),
                ));
                continue;
            }
            kept_from = Some(loaded.path);
            documents.push(loaded.document);
        }
        if documents.is_empty() {
            self.output.problems.push(IngestProblem::of_kind(
                IngestProblemKind::EmptySource,
                source,
                None,
                format!(
                    "nothing to ingest: {} file(s) seen, {} skipped; supported are .md, .mdx, .markdown, .html, .htm, .txt and .jsonl",
                    self.output.n_files_seen, self.output.n_files_skipped
                ),
            ));
        }
        self.output.documents = documents;
        self.output
    }
}

/// Hidden: the name starts with `.`.
fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|name| name.starts_with('.'))
}

/// `LICENSE*` and `README*` (case-insensitive) are repository boilerplate, not articles.
fn is_boilerplate(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    name.starts_with("license") || name.starts_with("readme")
}

/// The id of a file: its path relative to `root` without the extension, `/`-separated.
fn document_id(root: &Path, path: &Path) -> Result<DocumentId, String> {
    let relative = path.strip_prefix(root).unwrap_or(path).with_extension("");
    let mut segments = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(segment) => match segment.to_str() {
                Some(segment) => segments.push(segment),
                None => return Err("file name is not valid UTF-8: rename the file".into()),
            },
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "path {} cannot form a document id",
                    relative.display()
                ));
            }
        }
    }
    DocumentId::parse(&segments.join("/")).map_err(|e| format!("cannot form a document id: {e}"))
}

/// Removes a byte-order mark and normalises `\r\n` and lone `\r` line endings to `\n`.
pub(crate) fn normalize_text(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.contains('\r') {
        return text.to_string();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// A title made from a file name: the last id segment with `-`/`_` as spaces, first letter
/// upper-cased (`reset-password` → `Reset password`).
pub(crate) fn title_from_id(id: &DocumentId) -> String {
    let stem = id.as_str().rsplit('/').next().unwrap_or(id.as_str());
    let spaced: String = stem
        .chars()
        .map(|c| if c == '-' || c == '_' { ' ' } else { c })
        .collect();
    let spaced = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => stem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::SourceKind;
    use std::fs;

    fn write(dir: &Path, relative: &str, content: &[u8]) -> PathBuf {
        let path = dir.join(relative);
        fs::create_dir_all(path.parent().expect("joined path has a parent")).expect("mkdir");
        fs::write(&path, content).expect("write fixture");
        path
    }

    #[test]
    fn ids_are_relative_paths_without_extension() {
        let root = Path::new("/help");
        let id = document_id(root, Path::new("/help/proxy/introduction.md")).expect("valid id");
        assert_eq!(id.as_str(), "proxy/introduction");
        let id = document_id(root, Path::new("/help/reset-password.mdx")).expect("valid id");
        assert_eq!(id.as_str(), "reset-password");
        let id = document_id(root, Path::new("/help/v1.2-notes.md")).expect("valid id");
        assert_eq!(id.as_str(), "v1.2-notes");
    }

    #[test]
    fn titles_from_file_names_are_humanised() {
        let id = DocumentId::parse("proxy/reset_your-password").expect("valid id");
        assert_eq!(title_from_id(&id), "Reset your password");
    }

    #[test]
    fn a_folder_is_walked_in_order_skipping_boilerplate_hidden_and_unknown_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "b.md", b"---\ntitle: B\n---\nBody of b.");
        write(
            dir.path(),
            "a/nested.html",
            b"<title>Nested</title><p>Hello</p>",
        );
        write(dir.path(), "notes.txt", b"Notes\n\nSome notes.");
        write(dir.path(), "LICENSE.md", b"# License");
        write(dir.path(), "readme.txt", b"Read me");
        write(dir.path(), "logo.png", b"\x89PNG");
        write(dir.path(), ".hidden.md", b"# Hidden");
        write(dir.path(), ".git/config.md", b"# Hidden too");
        write(
            dir.path(),
            "past.jsonl",
            br#"{"id":"7","subject":"S","messages":[],"resolution":"R"}"#,
        );

        let output = load_path(dir.path(), &LoadOptions::default()).expect("folder loads");
        let ids: Vec<&str> = output.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a/nested", "b", "notes", "tickets/7"]);
        assert_eq!(output.documents[0].kind, SourceKind::Html);
        assert_eq!(output.documents[1].kind, SourceKind::Markdown);
        assert_eq!(output.documents[2].kind, SourceKind::Text);
        assert_eq!(output.documents[3].kind, SourceKind::Ticket);
        assert_eq!(output.n_files_seen, 7, "hidden files are not visited");
        assert_eq!(
            output.n_files_skipped, 3,
            "LICENSE.md, readme.txt, logo.png"
        );
        assert!(output.problems.is_empty(), "{:?}", output.problems);
    }

    #[test]
    fn a_single_file_is_loaded_with_its_stem_as_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "reset-password.md",
            b"# Reset your password\n\nClick reset.",
        );
        let output = load_path(&path, &LoadOptions::default()).expect("file loads");
        assert_eq!(output.documents.len(), 1);
        assert_eq!(output.documents[0].id.as_str(), "reset-password");
        assert_eq!(output.documents[0].title, "Reset your password");
        assert_eq!(output.documents[0].url.as_deref(), Some("/reset-password"));
        assert_eq!(output.n_files_seen, 1);
    }

    #[test]
    fn a_missing_source_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let error = load_path(&missing, &LoadOptions::default()).expect_err("missing path");
        assert!(matches!(error, IngestError::NotFound { .. }), "{error:?}");
    }

    #[test]
    fn an_empty_folder_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = load_path(dir.path(), &LoadOptions::default()).expect("folder loads");
        assert!(output.documents.is_empty());
        assert_eq!(output.problems.len(), 1);
        assert_eq!(output.problems[0].kind, IngestProblemKind::EmptySource);
        assert_eq!(output.problems[0].path, dir.path());
        assert_eq!(output.problems[0].line, None);
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_line_and_the_rest_is_ingested() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = write(
            dir.path(),
            "bad.md",
            b"# Bad\n\nline two\ncaf\xe9 line three\n",
        );
        write(dir.path(), "good.md", b"# Good\n\nFine.");
        let output = load_path(dir.path(), &LoadOptions::default()).expect("folder loads");
        assert_eq!(output.documents.len(), 1);
        assert_eq!(output.documents[0].id.as_str(), "good");
        assert_eq!(output.problems.len(), 1);
        let problem = &output.problems[0];
        assert_eq!(problem.kind, IngestProblemKind::InvalidUtf8);
        assert_eq!(problem.path, bad);
        assert_eq!(problem.line, Some(4));
    }

    #[test]
    fn an_oversize_file_is_reported_and_the_limit_is_a_parameter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = write(dir.path(), "big.txt", "Big\n\n".repeat(100).as_bytes()); // 500 bytes
        write(dir.path(), "small.txt", b"Small\n\nok");
        let options = LoadOptions {
            max_file_bytes: 100,
        };
        let output = load_path(dir.path(), &options).expect("folder loads");
        assert_eq!(output.documents.len(), 1);
        assert_eq!(output.documents[0].id.as_str(), "small");
        assert_eq!(output.problems.len(), 1);
        assert_eq!(output.problems[0].kind, IngestProblemKind::TooLarge);
        assert_eq!(output.problems[0].path, big);
        assert!(
            output.problems[0].message.contains("500 bytes"),
            "{}",
            output.problems[0]
        );

        let output = load_path(dir.path(), &LoadOptions::default()).expect("folder loads");
        assert_eq!(output.documents.len(), 2, "the default limit is 10 MiB");
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_entry_is_reported_and_the_rest_is_ingested() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "good.md", b"# Good\n\nFine.");
        let dangling = dir.path().join("gone.md");
        std::os::unix::fs::symlink(dir.path().join("does-not-exist.md"), &dangling)
            .expect("symlink");
        let output = load_path(dir.path(), &LoadOptions::default()).expect("folder loads");
        assert_eq!(output.documents.len(), 1);
        assert_eq!(output.problems.len(), 1, "{:?}", output.problems);
        assert_eq!(output.problems[0].kind, IngestProblemKind::Unreadable);
        assert_eq!(output.problems[0].path, dangling);
    }

    #[test]
    fn duplicate_ids_keep_the_first_file_in_path_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "faq.html", b"<title>FAQ (html)</title><p>a</p>");
        let second = write(dir.path(), "faq.md", b"# FAQ (md)\n\nb");
        let output = load_path(dir.path(), &LoadOptions::default()).expect("folder loads");
        assert_eq!(output.documents.len(), 1);
        assert_eq!(output.documents[0].title, "FAQ (html)");
        assert_eq!(output.problems.len(), 1);
        assert_eq!(output.problems[0].kind, IngestProblemKind::DuplicateId);
        assert_eq!(output.problems[0].path, second);
    }

    #[test]
    fn a_bad_jsonl_line_is_reported_with_its_line_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "tickets.jsonl",
            concat!(
                r#"{"id":"1","subject":"Refund","messages":[{"role":"customer","text":"Refund please"}],"resolution":"Refunded"}"#,
                "\n",
                "this is not json\n",
                r#"{"id":"3","subject":"No messages field","resolution":"x"}"#,
                "\n",
                r#"{"id":4,"subject":"Login","messages":[{"role":"agent","text":"Reset it"}],"resolution":"Reset"}"#,
                "\n"
            )
            .as_bytes(),
        );
        let output = load_path(&path, &LoadOptions::default()).expect("file loads");
        let ids: Vec<&str> = output.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["tickets/1", "tickets/4"]);
        let lines: Vec<(IngestProblemKind, Option<usize>)> =
            output.problems.iter().map(|p| (p.kind, p.line)).collect();
        assert_eq!(
            lines,
            [
                (IngestProblemKind::MalformedTicket, Some(2)),
                (IngestProblemKind::MalformedTicket, Some(3))
            ]
        );
        assert!(
            output.problems[1].message.contains("messages"),
            "{}",
            output.problems[1]
        );
        assert!(output.problems.iter().all(|p| p.path == path));
    }

    #[test]
    fn problems_display_as_path_line_message() {
        let problem = IngestProblem::of_kind(
            IngestProblemKind::MalformedTicket,
            Path::new("t.jsonl"),
            Some(3),
            "not JSON",
        );
        assert_eq!(problem.to_string(), "t.jsonl:3: not JSON");
        assert_eq!(
            IngestProblem::new(Path::new("a.md"), None, "x").to_string(),
            "a.md: x"
        );
    }

    #[test]
    fn line_endings_and_bom_are_normalised() {
        assert_eq!(normalize_text("\u{feff}a\r\nb\rc"), "a\nb\nc");
    }
}
