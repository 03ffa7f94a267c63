//! Heading-aware chunking: each [`Section`] of a [`Document`] becomes one [`Chunk`] when it
//! fits the embedding model's window, otherwise several.
//!
//! The budget applies to the whole [`Chunk::embedding_text`] (title, heading path and text,
//! see [`crate::document::embedding_text`]) plus [`SPECIAL_TOKENS`] (`[CLS]` and `[SEP]` for a
//! BERT-style model such as all-MiniLM-L6-v2): a chunk never gets truncated by the embedder.
//! An oversize section is split at the coarsest boundary that works — paragraphs (blank
//! lines), then lines, then sentences, then words, and as a last resort inside a word — and
//! the pieces are packed greedily back together, in order, as long as they fit.
//!
//! Chunk ids are `{document id}#{heading path}#{ordinal}` ([`Chunk::new`]); the ordinal counts
//! chunks per heading path, so two sections sharing a path (e.g. two `## Example` headings
//! under the same parent) still get distinct ids. Small sections are not merged into their
//! neighbours: merging would tie a chunk's id and heading path to text from another section.
//! Empty sections produce no chunk.

use std::collections::HashMap;

use crate::document::{Chunk, Document, Section, embedding_text};
use crate::embed::Embedder;

/// Tokens a BERT-style encoder adds to every input (`[CLS]`, `[SEP]`).
pub const SPECIAL_TOKENS: usize = 2;

/// The window of all-MiniLM-L6-v2 as configured here (`max_seq_length` 256), special tokens
/// included.
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// Splits `doc` into chunks whose embedding text, counted by `count_tokens` (tokens without
/// special tokens, e.g. [`Embedder::count_tokens`] or [`approx_word_pieces`]), plus
/// [`SPECIAL_TOKENS`] is at most `max_tokens`.
///
/// If a section's title-and-heading prefix alone leaves no room for text (a pathological
/// title or heading), the prefix is ignored for that section's budget and a warning is logged:
/// the embedder will then truncate those chunks.
pub fn chunk_document(
    doc: &Document,
    count_tokens: &dyn Fn(&str) -> usize,
    max_tokens: usize,
) -> Vec<Chunk> {
    let mut next_ordinal: HashMap<&[String], u32> = HashMap::new();
    let mut chunks = Vec::new();
    for section in &doc.sections {
        for text in split_section(doc, section, count_tokens, max_tokens) {
            let ordinal = next_ordinal
                .entry(section.heading_path.as_slice())
                .or_insert(0);
            chunks.push(Chunk::new(
                doc,
                section.heading_path.clone(),
                *ordinal,
                text,
            ));
            *ordinal += 1;
        }
    }
    chunks
}

/// [`chunk_document`] with an embedder's own token counter and window.
pub fn chunk_document_for(doc: &Document, embedder: &dyn Embedder) -> Vec<Chunk> {
    chunk_document(
        doc,
        &|text| embedder.count_tokens(text),
        embedder.max_tokens(),
    )
}

/// The texts of one section's chunks.
fn split_section(
    doc: &Document,
    section: &Section,
    count_tokens: &dyn Fn(&str) -> usize,
    max_tokens: usize,
) -> Vec<String> {
    let text = section.text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    let with_prefix = |candidate: &str| {
        count_tokens(&embedding_text(
            &doc.title,
            &section.heading_path,
            candidate,
        )) + SPECIAL_TOKENS
            <= max_tokens
    };
    if with_prefix(text) {
        return vec![text.to_string()];
    }
    // A one-character body must fit, otherwise the prefix alone fills the window.
    if with_prefix("x") {
        split_to_fit(text, &with_prefix)
    } else {
        tracing::warn!(
            document.id = %doc.id,
            section.heading_path = %section.heading_path.join(" > "),
            max_tokens,
            "title and heading path alone fill the embedding window; chunking the text without them"
        );
        let body_only = |candidate: &str| count_tokens(candidate) + SPECIAL_TOKENS <= max_tokens;
        split_to_fit(text, &body_only)
    }
}

/// Where a piece may be cut, coarsest first; each level's separator is used to re-join pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Paragraph,
    Line,
    Sentence,
    Word,
    Character,
}

impl Level {
    fn finer(self) -> Option<Self> {
        match self {
            Self::Paragraph => Some(Self::Line),
            Self::Line => Some(Self::Sentence),
            Self::Sentence => Some(Self::Word),
            Self::Word => Some(Self::Character),
            Self::Character => None,
        }
    }

    /// The text put back between two pieces cut at this level.
    fn joiner(self) -> &'static str {
        match self {
            Self::Paragraph => "\n\n",
            Self::Line => "\n",
            Self::Sentence | Self::Word => " ",
            Self::Character => "",
        }
    }

    fn split(self, text: &str) -> Vec<&str> {
        let pieces: Vec<&str> = match self {
            Self::Paragraph => text.split("\n\n").collect(),
            Self::Line => text.split('\n').collect(),
            Self::Sentence => split_sentences(text),
            Self::Word => text.split_whitespace().collect(),
            Self::Character => text
                .char_indices()
                .map(|(i, c)| &text[i..i + c.len_utf8()])
                .collect(),
        };
        pieces
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    }
}

/// A chunk text with the separator that preceded it in the section text.
struct Packed {
    text: String,
    joiner: &'static str,
}

/// Splits `text` (which does not fit) into chunk texts that each satisfy `fits`.
fn split_to_fit(text: &str, fits: &dyn Fn(&str) -> bool) -> Vec<String> {
    pack(text, Level::Paragraph, "", fits)
        .into_iter()
        .map(|packed| packed.text)
        .collect()
}

/// Cuts `text` at `level`, splits further (recursively) the pieces that do not fit, then packs
/// the results greedily, in order, as long as the joined text still fits.
///
/// A piece split at a finer level comes back as already-packed chunks, so its first chunk may
/// join the text before it and its last chunk the text after it, but its inner cuts stay
/// where the finer level put them (a sentence cut into words does not pull the next sentence
/// into its last chunk at the expense of a sentence boundary). Every chunk satisfies `fits`,
/// except a single character that does not fit alone (nothing smaller exists).
fn pack(
    text: &str,
    level: Level,
    joiner: &'static str,
    fits: &dyn Fn(&str) -> bool,
) -> Vec<Packed> {
    let mut units: Vec<Packed> = Vec::new();
    for (index, piece) in level.split(text).into_iter().enumerate() {
        // The first piece inherits the separator that preceded the whole text.
        let piece_joiner = if index == 0 { joiner } else { level.joiner() };
        match level.finer() {
            Some(finer) if !fits(piece) => units.extend(pack(piece, finer, piece_joiner, fits)),
            _ => units.push(Packed {
                text: piece.to_string(),
                joiner: piece_joiner,
            }),
        }
    }

    let mut chunks: Vec<Packed> = Vec::new();
    for unit in units {
        if let Some(last) = chunks.last_mut() {
            let candidate = format!("{}{}{}", last.text, unit.joiner, unit.text);
            if fits(&candidate) {
                last.text = candidate;
                continue;
            }
        }
        chunks.push(unit);
    }
    chunks
}

/// Splits after `.`, `!` or `?` (and any closing quotes or brackets) followed by whitespace.
fn split_sentences(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, closing)) = chars.peek() {
            if matches!(closing, '"' | '\'' | ')' | ']' | '”' | '’') {
                end = j + closing.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        if chars.peek().is_some_and(|&(_, next)| next.is_whitespace()) {
            sentences.push(&text[start..end]);
            start = end;
        }
    }
    sentences.push(&text[start..]);
    sentences
}

/// A conservative estimate of the WordPiece tokens (without special tokens) a BERT-uncased
/// tokenizer such as all-MiniLM-L6-v2's produces for `text`, for when no tokenizer is
/// available. It over-estimates: on the Plausible help center's 1,239 chunks the MiniLM
/// count is 0.72 of this estimate overall and at most 0.88 for any chunk of 64+ tokens (test
/// `kb/tests/ingest_plausible.rs`), so chunks come out ~28 % smaller than the window allows.
///
/// Method (mirroring BERT's basic tokenizer, then WordPiece): text is cut at whitespace;
/// each punctuation or symbol character and each CJK ideograph is one token; an ASCII
/// letter run of length L is `1 + (L - 6) / 3` pieces (words up to 8 letters are usually one
/// piece, longer ones split into pieces of ~3 letters); a digit run is `ceil(L / 2)` pieces;
/// any other run (letters mixed with digits, non-ASCII letters) one piece per character.
/// The sum is multiplied by 1.35 (rounded up) to cover short technical words that the
/// vocabulary splits (`div`, `utm`, `sso`).
pub fn approx_word_pieces(text: &str) -> usize {
    let mut pieces = 0usize;
    let mut run_len = 0usize;
    let mut run_letters = true;
    let mut run_digits = true;
    let mut end_run = |len: &mut usize, letters: &mut bool, digits: &mut bool| {
        if *len > 0 {
            pieces += if *letters {
                1 + len.saturating_sub(6) / 3
            } else if *digits {
                len.div_ceil(2)
            } else {
                *len
            };
        }
        *len = 0;
        *letters = true;
        *digits = true;
    };
    let mut symbols = 0usize;
    for c in text.chars() {
        if c.is_alphanumeric() && !is_cjk(c) {
            run_len += 1;
            run_letters &= c.is_ascii_alphabetic();
            run_digits &= c.is_ascii_digit();
        } else {
            end_run(&mut run_len, &mut run_letters, &mut run_digits);
            if !c.is_whitespace() && !c.is_control() {
                symbols += 1;
            }
        }
    }
    end_run(&mut run_len, &mut run_letters, &mut run_digits);
    let total = pieces + symbols;
    // × 1.35, rounded up, in integers.
    (total * 27).div_ceil(20)
}

/// CJK ideographs, which BERT's basic tokenizer splits into one token each.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{DocumentId, SourceKind};

    fn document(title: &str, sections: &[(&[&str], &str)]) -> Document {
        Document {
            id: DocumentId::parse("billing").expect("valid id"),
            title: title.into(),
            description: None,
            url: Some("/billing".into()),
            tags: Vec::new(),
            internal: false,
            kind: SourceKind::Markdown,
            sections: sections
                .iter()
                .map(|(path, text)| Section {
                    heading_path: path.iter().map(|s| s.to_string()).collect(),
                    text: text.to_string(),
                })
                .collect(),
        }
    }

    /// One token per whitespace-separated word: easy to reason about in tests.
    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn a_section_that_fits_is_one_chunk_and_empty_sections_none() {
        let doc = document(
            "Billing",
            &[
                (&[], "Lead text."),
                (&["Invoices"], "  "),
                (&["Refunds"], "Ask us."),
            ],
        );
        let chunks = chunk_document(&doc, &words, 256);
        let got: Vec<(&str, &str, u32)> = chunks
            .iter()
            .map(|c| (c.id.as_str(), c.text.as_str(), c.ordinal))
            .collect();
        assert_eq!(
            got,
            [
                ("billing##0", "Lead text.", 0),
                ("billing#Refunds#0", "Ask us.", 0)
            ]
        );
        assert_eq!(chunks[1].embedding_text, "Billing. Refunds. Ask us.");
    }

    #[test]
    fn oversize_sections_split_at_paragraphs_first_and_every_chunk_fits() {
        // Prefix "Billing. Invoices. " = 2 words; budget 12 → 12 - 2 - 2 = 8 words of text.
        let text = "one two three four five.\n\nsix seven eight.\n\nnine ten eleven twelve thirteen fourteen.";
        let doc = document("Billing", &[(&["Invoices"], text)]);
        let chunks = chunk_document(&doc, &words, 12);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "one two three four five.\n\nsix seven eight.",
                "nine ten eleven twelve thirteen fourteen."
            ]
        );
        let ids: Vec<&str> = chunks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["billing#Invoices#0", "billing#Invoices#1"]);
        for chunk in &chunks {
            assert!(
                words(&chunk.embedding_text) + SPECIAL_TOKENS <= 12,
                "{:?}",
                chunk.embedding_text
            );
        }
    }

    #[test]
    fn long_paragraphs_split_at_lines_then_sentences_then_words() {
        let text = "- alpha beta gamma\n- delta epsilon\nOne two three. Four five six seven. Eight nine ten eleven twelve thirteen fourteen fifteen sixteen.";
        let doc = document("T", &[(&[], text)]);
        // Prefix "T. " = 1 word; budget 9 → 6 words of text.
        let chunks = chunk_document(&doc, &words, 9);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "- alpha beta gamma",
                "- delta epsilon\nOne two three.",
                "Four five six seven.",
                "Eight nine ten eleven twelve thirteen",
                "fourteen fifteen sixteen.",
            ]
        );
        for chunk in &chunks {
            assert!(words(&chunk.embedding_text) + SPECIAL_TOKENS <= 9);
        }
    }

    #[test]
    fn a_giant_word_is_cut_inside() {
        let doc = document("T", &[(&[], "aaaaaaaaaaaaaaaaaaaa")]);
        let chars = |text: &str| text.chars().count();
        // Prefix "T. " = 3 chars; budget 12 → 7 characters of text.
        let chunks = chunk_document(&doc, &chars, 12);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["aaaaaaa", "aaaaaaa", "aaaaaa"]);
    }

    #[test]
    fn sections_sharing_a_heading_path_get_distinct_ordinals() {
        let doc = document("T", &[(&["Example"], "First."), (&["Example"], "Second.")]);
        let ids: Vec<String> = chunk_document(&doc, &words, 256)
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["billing#Example#0", "billing#Example#1"]);
    }

    #[test]
    fn a_prefix_that_fills_the_window_falls_back_to_the_text_budget() {
        let doc = document(
            "a b c d e f g h i j",
            &[(&[], "one two three four five six")],
        );
        let chunks = chunk_document(&doc, &words, 6);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["one two three four", "five six"]);
    }

    #[test]
    fn sentences_split_after_terminal_punctuation_and_closing_quotes() {
        assert_eq!(
            split_sentences("He said \"stop.\" Then left! Why? e.g.x stays"),
            ["He said \"stop.\"", " Then left!", " Why?", " e.g.x stays"]
        );
    }

    #[test]
    fn approx_word_pieces_counts_words_punctuation_and_long_words() {
        assert_eq!(approx_word_pieces(""), 0);
        // "hello" 1, "," 1, "world" 1, "!" 1 → 4 × 1.35 = 5.4 → 6
        assert_eq!(approx_word_pieces("hello, world!"), 6);
        // "internationalization" (20 letters) = 1 + 14/3 = 5 → 5 × 1.35 = 6.75 → 7
        assert_eq!(approx_word_pieces("internationalization"), 7);
        // "20240315" digits: 4; "a1b2" mixed: 4 → 8 × 1.35 = 10.8 → 11
        assert_eq!(approx_word_pieces("20240315 a1b2"), 11);
        // Each CJK ideograph is one token: 3 → 4.05 → 5
        assert_eq!(approx_word_pieces("中文字"), 5);
    }
}
