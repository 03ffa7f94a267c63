//! Small text tools for the engine: content words (lower-cased, stop words removed, Snowball
//! English stems), keyword coverage, sentence splitting and streaming chunks.

use rust_stemmers::{Algorithm, Stemmer};
use std::collections::HashSet;
use std::sync::LazyLock;

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// English function words and chat filler that say nothing about the topic of a question.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "anyone", "are", "as",
    "at", "be", "been", "before", "being", "but", "by", "can", "cannot", "could", "did", "do",
    "does", "doing", "done", "for", "from", "get", "getting", "got", "had", "has", "have",
    "having", "he", "hello", "help", "her", "here", "hey", "hi", "him", "his", "how", "i", "if",
    "im", "in", "into", "is", "it", "its", "just", "know", "let", "like", "me", "might", "much",
    "must", "my", "need", "no", "not", "now", "of", "off", "ok", "okay", "on", "one", "or", "our",
    "out", "please", "really", "should", "so", "some", "still", "than", "thank", "thanks", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "too", "try",
    "trying", "up", "us", "use", "using", "very", "want", "wanted", "was", "way", "we", "were",
    "what", "when", "where", "whether", "which", "while", "who", "why", "will", "with", "without",
    "would", "you", "your", "yours", "don", "doesn", "didn", "isn", "can't", "won", "t", "s", "ll",
    "ve", "re", "d", "m",
];

static STOP_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| STOP_WORDS.iter().copied().collect());

/// Lower-cased word tokens (letters and digits; apostrophes split words).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The stem of one lower-cased word.
pub fn stem(word: &str) -> String {
    STEMMER.stem(word).into_owned()
}

/// Distinct stems of the content words of `text`, in first-seen order.
pub fn content_terms(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    words(text)
        .filter(|w| {
            !STOP_SET.contains(w.as_str()) && (w.len() > 1 || w.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|w| stem(&w))
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

/// Distinct stems of every word of `text` (stop words included: they never match a content term).
pub fn stem_set(text: &str) -> HashSet<String> {
    words(text).map(|w| stem(&w)).collect()
}

/// Share (0..1) of `terms` found in `text`'s stems; 0 when `terms` is empty.
pub fn coverage(terms: &[String], text_stems: &HashSet<String>) -> f32 {
    if terms.is_empty() {
        return 0.0;
    }
    let found = terms.iter().filter(|t| text_stems.contains(*t)).count();
    found as f32 / terms.len() as f32
}

/// A sentence or list line of a passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub text: String,
    /// True when the unit starts a new line in the passage (joined with `\n`, else a space).
    pub starts_line: bool,
}

/// Splits passage text into units: each line, then each sentence of a line (a `.`, `!` or `?`
/// followed by a space and an upper-case letter, a digit or an opening quote or bracket).
pub fn split_units(text: &str) -> Vec<Unit> {
    let mut units = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut starts_line = true;
        let mut start = 0;
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        for (i, &(byte, c)) in chars.iter().enumerate() {
            if !matches!(c, '.' | '!' | '?') {
                continue;
            }
            let next_is_space = chars.get(i + 1).is_some_and(|&(_, n)| n == ' ');
            let after = chars.iter().skip(i + 2).map(|&(_, n)| n).next();
            let next_starts_sentence = after.is_some_and(|n| {
                n.is_uppercase() || n.is_ascii_digit() || matches!(n, '"' | '(' | '[' | '*')
            });
            let end = byte + c.len_utf8();
            if next_is_space && next_starts_sentence && !is_list_marker(&line[start..end]) {
                let sentence = line[start..end].trim();
                if !sentence.is_empty() {
                    units.push(Unit {
                        text: sentence.to_string(),
                        starts_line,
                    });
                    starts_line = false;
                }
                start = end;
            }
        }
        let rest = line[start..].trim();
        if !rest.is_empty() {
            units.push(Unit {
                text: rest.to_string(),
                starts_line,
            });
        }
    }
    units
}

/// `3.` or `b)`: an ordered-list marker, not a sentence.
fn is_list_marker(candidate: &str) -> bool {
    let body = candidate.trim().trim_end_matches(['.', ')']);
    !body.is_empty() && (body.chars().all(|c| c.is_ascii_digit()) || body.chars().count() == 1)
}

/// Joins units back into text (a new line before each unit that started one).
pub fn join_units<'a>(units: impl IntoIterator<Item = &'a Unit>) -> String {
    let mut out = String::new();
    for unit in units {
        if !out.is_empty() {
            out.push(if unit.starts_line { '\n' } else { ' ' });
        }
        out.push_str(&unit.text);
    }
    out
}

/// Splits `text` into streaming chunks of about `words_per_chunk` words; every chunk but the
/// first starts with the whitespace before its first word, so the chunks concatenate back to
/// exactly `text`.
pub fn stream_chunks(text: &str, words_per_chunk: usize) -> Vec<String> {
    let words_per_chunk = words_per_chunk.max(1);
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut n_words = 0;
    let mut in_word = false;
    for c in text.chars() {
        let is_space = c.is_whitespace();
        if !is_space && !in_word {
            if n_words == words_per_chunk {
                chunks.push(std::mem::take(&mut current));
                // The whitespace before this word was already pushed into the previous
                // chunk; moving it keeps each chunk starting with its separator.
                let previous = chunks.last_mut().map(|last| {
                    let trimmed_len = last.trim_end().len();
                    last.split_off(trimmed_len)
                });
                current = previous.unwrap_or_default();
                n_words = 0;
            }
            n_words += 1;
        }
        in_word = !is_space;
        current.push(c);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_terms_drop_stop_words_and_stem() {
        assert_eq!(
            content_terms("How do I reset my passwords? Resetting!"),
            vec!["reset", "password"]
        );
        assert_eq!(content_terms("the of and"), Vec::<String>::new());
        assert_eq!(
            content_terms("Error 42 on the app"),
            vec!["error", "42", "app"]
        );
    }

    #[test]
    fn coverage_counts_the_share_of_terms_found() {
        let terms = content_terms("download invoices for accounting");
        let stems = stem_set("You can download every invoice from Billing.");
        assert_eq!(terms.len(), 3);
        assert!((coverage(&terms, &stems) - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(coverage(&[], &stems), 0.0);
    }

    #[test]
    fn split_units_splits_lines_and_sentences_but_not_abbreviations() {
        let units = split_units(
            "Open the app. Tap Settings, e.g. the gear.\nStep two: wait 5 min.\n\n3. Done!",
        );
        let texts: Vec<&str> = units.iter().map(|u| u.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "Open the app.",
                "Tap Settings, e.g. the gear.",
                "Step two: wait 5 min.",
                "3. Done!"
            ]
        );
        assert_eq!(
            units.iter().map(|u| u.starts_line).collect::<Vec<_>>(),
            vec![true, false, true, true]
        );
        assert_eq!(
            join_units(&units),
            "Open the app. Tap Settings, e.g. the gear.\nStep two: wait 5 min.\n3. Done!"
        );
    }

    #[test]
    fn stream_chunks_concatenate_to_the_text() {
        let text = "Tap  Forgot password? on the sign-in screen.\nThe link lasts 60 minutes. ";
        let chunks = stream_chunks(text, 3);
        assert_eq!(chunks.concat(), text);
        assert_eq!(chunks[0], "Tap  Forgot password?");
        assert_eq!(chunks[1], " on the sign-in");
        assert!(chunks.iter().all(|c| c.split_whitespace().count() <= 3));
        assert_eq!(stream_chunks("", 3), Vec::<String>::new());
        assert_eq!(stream_chunks("one", 3), vec!["one"]);
    }
}
