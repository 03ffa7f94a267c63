//! VADER sentiment (Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment
//! Analysis of Social Media Text", ICWSM 2014): a faithful port of the reference
//! implementation `vaderSentiment` 3.3.2 (PyPI, MIT licence), rules and constants included,
//! over the published lexicons shipped beside the code in `server/resources/vader/`
//! (`vader_lexicon.txt`, `emoji_utf8_lexicon.txt`, `LICENSE.txt`; see its README).
//!
//! Only the compound score is computed: the sum of the rule-adjusted valences of the words,
//! plus punctuation emphasis, normalised to −1..1 by `x / sqrt(x² + 15)` and rounded to four
//! decimals like the reference. `tests/fixtures/vader_reference.json` holds the reference
//! implementation's scores for 45 sentences, and the tests check this port matches them exactly.
//!
//! Quirks of the reference kept on purpose (they change scores): the `but` rule finds each
//! valence by value (`list.index`), so equal valences before and after `but` are scaled as the
//! first one is; the three-word negation rule's operator precedence.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// The published word lexicon (`token<TAB>mean valence −4..4<TAB>sd<TAB>ratings`).
const LEXICON_TSV: &str = include_str!("../../../resources/vader/vader_lexicon.txt");
/// The published emoji lexicon (`emoji<TAB>description`).
const EMOJI_TSV: &str = include_str!("../../../resources/vader/emoji_utf8_lexicon.txt");

/// Booster increment (empirical, from the paper).
const B_INCR: f64 = 0.293;
/// Dampener increment.
const B_DECR: f64 = -0.293;
/// Added to a word's valence when it is in capitals while other words are not.
const C_INCR: f64 = 0.733;
/// Negation scalar.
const N_SCALAR: f64 = -0.74;

const NEGATE: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

const BOOSTERS_UP: &[&str] = &[
    "absolutely",
    "amazingly",
    "awfully",
    "completely",
    "considerable",
    "considerably",
    "decidedly",
    "deeply",
    "effing",
    "enormous",
    "enormously",
    "entirely",
    "especially",
    "exceptional",
    "exceptionally",
    "extreme",
    "extremely",
    "fabulously",
    "flipping",
    "flippin",
    "frackin",
    "fracking",
    "fricking",
    "frickin",
    "frigging",
    "friggin",
    "fully",
    "fuckin",
    "fucking",
    "fuggin",
    "fugging",
    "greatly",
    "hella",
    "highly",
    "hugely",
    "incredible",
    "incredibly",
    "intensely",
    "major",
    "majorly",
    "more",
    "most",
    "particularly",
    "purely",
    "quite",
    "really",
    "remarkably",
    "so",
    "substantially",
    "thoroughly",
    "total",
    "totally",
    "tremendous",
    "tremendously",
    "uber",
    "unbelievably",
    "unusually",
    "utter",
    "utterly",
    "very",
];

const BOOSTERS_DOWN: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "just enough",
    "kind of",
    "kinda",
    "kindof",
    "kind-of",
    "less",
    "little",
    "marginal",
    "marginally",
    "occasional",
    "occasionally",
    "partly",
    "scarce",
    "scarcely",
    "slight",
    "slightly",
    "somewhat",
    "sort of",
    "sorta",
    "sortof",
    "sort-of",
];

/// Idioms and phrases containing lexicon words, with their valence.
const SPECIAL_CASES: &[(&str, f64)] = &[
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("badass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
];

/// The lexicons, parsed once.
struct Lexicons {
    words: HashMap<String, f64>,
    emojis: HashMap<char, String>,
    negations: HashSet<&'static str>,
    boosters: HashMap<&'static str, f64>,
    special_cases: HashMap<&'static str, f64>,
}

static LEXICONS: LazyLock<Lexicons> = LazyLock::new(|| {
    let words = LEXICON_TSV
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().split('\t');
            let word = fields.next()?;
            let valence = fields.next()?.trim().parse::<f64>().ok()?;
            Some((word.to_string(), valence))
        })
        .collect();
    let emojis = EMOJI_TSV
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().split('\t');
            let emoji = fields.next()?;
            let description = fields.next()?;
            // The reference replaces one character at a time, so only one-character keys
            // can ever match.
            let mut chars = emoji.chars();
            let first = chars.next()?;
            chars
                .next()
                .is_none()
                .then(|| (first, description.to_string()))
        })
        .collect();
    let boosters = BOOSTERS_UP
        .iter()
        .map(|w| (*w, B_INCR))
        .chain(BOOSTERS_DOWN.iter().map(|w| (*w, B_DECR)))
        .collect();
    Lexicons {
        words,
        emojis,
        negations: NEGATE.iter().copied().collect(),
        boosters,
        special_cases: SPECIAL_CASES.iter().copied().collect(),
    }
});

/// Number of entries in the word lexicon (7,506 in vaderSentiment 3.3.2), for tests and docs.
pub fn lexicon_len() -> usize {
    LEXICONS.words.len()
}

/// The VADER compound score of `text`, −1 (most negative) to 1 (most positive), rounded to
/// four decimals; 0 for text without sentiment-bearing words.
pub fn compound(text: &str) -> f64 {
    let lexicons = &*LEXICONS;
    let text = replace_emojis(text, lexicons);
    let words: Vec<String> = text.split_whitespace().map(strip_punctuation).collect();
    if words.is_empty() {
        return 0.0;
    }
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let is_cap_diff = allcap_differential(&words);
    let mut sentiments: Vec<f64> = Vec::with_capacity(words.len());
    for i in 0..words.len() {
        if lexicons.boosters.contains_key(lower[i].as_str())
            || (i + 1 < words.len() && lower[i] == "kind" && lower[i + 1] == "of")
        {
            sentiments.push(0.0);
            continue;
        }
        sentiments.push(sentiment_valence(lexicons, &words, &lower, i, is_cap_diff));
    }
    but_check(&lower, &mut sentiments);
    score_valence(&sentiments, &text)
}

fn replace_emojis(text: &str, lexicons: &Lexicons) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_space = true;
    for c in text.chars() {
        if let Some(description) = lexicons.emojis.get(&c) {
            if !prev_space {
                out.push(' ');
            }
            out.push_str(description);
            prev_space = false;
        } else {
            out.push(c);
            prev_space = c == ' ';
        }
    }
    out.trim().to_string()
}

/// Python's `string.punctuation`.
fn is_ascii_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// Strips leading and trailing punctuation unless two or fewer characters would remain (then
/// the token is probably an emoticon such as `:)` and is kept whole).
fn strip_punctuation(token: &str) -> String {
    let stripped = token.trim_matches(is_ascii_punctuation);
    if stripped.chars().count() <= 2 {
        token.to_string()
    } else {
        stripped.to_string()
    }
}

/// Python's `str.isupper()`: at least one cased character and no lower-case one.
fn is_upper(word: &str) -> bool {
    word.chars().any(char::is_uppercase) && !word.chars().any(char::is_lowercase)
}

/// True when some but not all words are in capitals.
fn allcap_differential(words: &[String]) -> bool {
    let n_caps = words.iter().filter(|w| is_upper(w)).count();
    let differential = words.len() - n_caps;
    0 < differential && differential < words.len()
}

fn negated(word: &str, lexicons: &Lexicons) -> bool {
    lexicons.negations.contains(word) || word.contains("n't")
}

fn scalar_inc_dec(word: &str, lower: &str, valence: f64, is_cap_diff: bool) -> f64 {
    let Some(&booster) = LEXICONS.boosters.get(lower) else {
        return 0.0;
    };
    let mut scalar = if valence < 0.0 { -booster } else { booster };
    if is_upper(word) && is_cap_diff {
        if valence > 0.0 {
            scalar += C_INCR;
        } else {
            scalar -= C_INCR;
        }
    }
    scalar
}

fn sentiment_valence(
    lexicons: &Lexicons,
    words: &[String],
    lower: &[String],
    i: usize,
    is_cap_diff: bool,
) -> f64 {
    let Some(&base) = lexicons.words.get(&lower[i]) else {
        return 0.0;
    };
    let in_lexicon = |j: usize| lexicons.words.contains_key(&lower[j]);
    let mut valence = base;
    // "no" before a lexicon word negates it rather than counting on its own.
    if lower[i] == "no" && i + 1 < words.len() && in_lexicon(i + 1) {
        valence = 0.0;
    }
    if (i > 0 && lower[i - 1] == "no")
        || (i > 1 && lower[i - 2] == "no")
        || (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor"))
    {
        valence = base * N_SCALAR;
    }
    if is_upper(&words[i]) && is_cap_diff {
        if valence > 0.0 {
            valence += C_INCR;
        } else {
            valence -= C_INCR;
        }
    }
    for start in 0..3 {
        if i > start && !in_lexicon(i - (start + 1)) {
            let j = i - (start + 1);
            let mut s = scalar_inc_dec(&words[j], &lower[j], valence, is_cap_diff);
            if start == 1 && s != 0.0 {
                s *= 0.95;
            }
            if start == 2 && s != 0.0 {
                s *= 0.9;
            }
            valence += s;
            valence = negation_check(lexicons, valence, lower, start, i);
            if start == 2 {
                valence = special_idioms_check(lexicons, valence, lower, i);
            }
        }
    }
    least_check(lexicons, valence, lower, i)
}

fn negation_check(
    lexicons: &Lexicons,
    valence: f64,
    lower: &[String],
    start: usize,
    i: usize,
) -> f64 {
    let w = |back: usize| lower[i - back].as_str();
    match start {
        0 => {
            if negated(w(1), lexicons) {
                return valence * N_SCALAR;
            }
            valence
        }
        1 => {
            if w(2) == "never" && (w(1) == "so" || w(1) == "this") {
                valence * 1.25
            } else if w(2) == "without" && w(1) == "doubt" {
                valence
            } else if negated(w(2), lexicons) {
                valence * N_SCALAR
            } else {
                valence
            }
        }
        _ => {
            // The reference's precedence: (never and (so|this)) or so or this.
            if (w(3) == "never" && (w(2) == "so" || w(2) == "this"))
                || (w(1) == "so" || w(1) == "this")
            {
                valence * 1.25
            } else if w(3) == "without" && (w(2) == "doubt" || w(1) == "doubt") {
                valence
            } else if negated(w(3), lexicons) {
                valence * N_SCALAR
            } else {
                valence
            }
        }
    }
}

fn special_idioms_check(lexicons: &Lexicons, valence: f64, lower: &[String], i: usize) -> f64 {
    let mut valence = valence;
    let onezero = format!("{} {}", lower[i - 1], lower[i]);
    let twoonezero = format!("{} {} {}", lower[i - 2], lower[i - 1], lower[i]);
    let twoone = format!("{} {}", lower[i - 2], lower[i - 1]);
    let threetwoone = format!("{} {} {}", lower[i - 3], lower[i - 2], lower[i - 1]);
    let threetwo = format!("{} {}", lower[i - 3], lower[i - 2]);
    for sequence in [&onezero, &twoonezero, &twoone, &threetwoone, &threetwo] {
        if let Some(&v) = lexicons.special_cases.get(sequence.as_str()) {
            valence = v;
            break;
        }
    }
    if lower.len() - 1 > i {
        let zeroone = format!("{} {}", lower[i], lower[i + 1]);
        if let Some(&v) = lexicons.special_cases.get(zeroone.as_str()) {
            valence = v;
        }
    }
    if lower.len() - 1 > i + 1 {
        let zeroonetwo = format!("{} {} {}", lower[i], lower[i + 1], lower[i + 2]);
        if let Some(&v) = lexicons.special_cases.get(zeroonetwo.as_str()) {
            valence = v;
        }
    }
    for ngram in [&threetwoone, &threetwo, &twoone] {
        if let Some(&b) = lexicons.boosters.get(ngram.as_str()) {
            valence += b;
        }
    }
    valence
}

fn least_check(lexicons: &Lexicons, valence: f64, lower: &[String], i: usize) -> f64 {
    let in_lexicon = |j: usize| lexicons.words.contains_key(&lower[j]);
    if i > 1 && !in_lexicon(i - 1) && lower[i - 1] == "least" {
        if lower[i - 2] != "at" && lower[i - 2] != "very" {
            return valence * N_SCALAR;
        }
        valence
    } else if i > 0 && !in_lexicon(i - 1) && lower[i - 1] == "least" {
        valence * N_SCALAR
    } else {
        valence
    }
}

/// The contrastive `but`: halves what comes before it, multiplies what follows by 1.5, with the
/// reference's lookup of each valence by value.
fn but_check(lower: &[String], sentiments: &mut [f64]) {
    let Some(but_index) = lower.iter().position(|w| w == "but") else {
        return;
    };
    for k in 0..sentiments.len() {
        let sentiment = sentiments[k];
        // `list.index(value)`: the first position holding an equal value (k holds one).
        let si = sentiments.iter().position(|s| *s == sentiment).unwrap_or(k);
        if si < but_index {
            sentiments[si] = sentiment * 0.5;
        } else if si > but_index {
            sentiments[si] = sentiment * 1.5;
        }
    }
}

fn punctuation_emphasis(text: &str) -> f64 {
    let n_exclamation = text.matches('!').count().min(4);
    let n_question = text.matches('?').count();
    let question = match n_question {
        0 | 1 => 0.0,
        2 | 3 => n_question as f64 * 0.18,
        _ => 0.96,
    };
    n_exclamation as f64 * 0.292 + question
}

fn score_valence(sentiments: &[f64], text: &str) -> f64 {
    if sentiments.is_empty() {
        return 0.0;
    }
    let mut sum: f64 = sentiments.iter().sum();
    let emphasis = punctuation_emphasis(text);
    if sum > 0.0 {
        sum += emphasis;
    } else if sum < 0.0 {
        sum -= emphasis;
    }
    let compound = (sum / (sum * sum + 15.0).sqrt()).clamp(-1.0, 1.0);
    (compound * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Reference {
        text: String,
        compound: f64,
    }

    #[test]
    fn matches_the_reference_implementation() {
        let raw = include_str!("../../../tests/fixtures/vader_reference.json");
        let cases: Vec<Reference> = serde_json::from_str(raw).expect("fixture is JSON");
        assert_eq!(cases.len(), 45);
        for case in cases {
            let got = compound(&case.text);
            assert!(
                (got - case.compound).abs() < 1e-4,
                "{:?}: got {got}, reference {}",
                case.text,
                case.compound
            );
        }
    }

    #[test]
    fn the_published_lexicon_is_loaded() {
        assert_eq!(lexicon_len(), 7506);
        assert_eq!(LEXICONS.emojis.len(), 1212);
    }

    #[test]
    fn strips_punctuation_but_keeps_emoticons() {
        assert_eq!(strip_punctuation("hello!!!"), "hello");
        assert_eq!(strip_punctuation(":)"), ":)");
        assert_eq!(strip_punctuation("\"don't\","), "don't");
    }
}
