//! Support signals of one visitor message, from hand-written rules in English, Spanish, French
//! and German: frustration (capitals, repeated punctuation, profanity, repeated contact),
//! urgency (deadlines), churn risk (cancelling in anger, leaving for a competitor, "the third
//! time I'm contacting you"), security, legal and billing-dispute cues, and requests for an action on
//! the account (refund, plan change, data deletion, cancellation, account change).
//!
//! The rules were written from DESIGN.md's definitions and general support vocabulary; none is
//! taken from the evaluation files. Each rule is a case-insensitive regular expression over the
//! message; word boundaries are Unicode-aware.

use crate::domain::{ActionKind, ActionRequest};
use regex::{Regex, RegexSet};
use std::sync::LazyLock;

/// Why a message reads as frustrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrustrationCue {
    /// Several words in capitals ("THIS IS BROKEN").
    Capitals,
    /// "!!", "?!", "???".
    RepeatedPunctuation,
    Profanity,
    /// "third time I'm contacting you", "still not fixed", "nobody answers".
    RepeatedContact,
}

/// Everything the rules found in one message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// Frustration cues found (empty: none), in the order of [`FrustrationCue`].
    pub frustration_cues: Vec<FrustrationCue>,
    /// A deadline or an explicit urgency ("before my presentation tomorrow", "ASAP").
    pub urgency: bool,
    /// Cancelling or leaving, naming a competitor, repeated contact.
    pub churn_risk: bool,
    /// Account takeover, suspicious logins, compromised two-factor authentication.
    pub security: bool,
    /// Subpoenas, legal notices, lawyers, law enforcement, formal compliance requests.
    pub legal: bool,
    /// Contested charges, double charges, chargebacks.
    pub billing_dispute: bool,
    /// The visitor asks the team to do something on the account.
    pub action: Option<ActionRequest>,
}

impl Signals {
    /// Some frustration cue was found.
    pub fn frustration(&self) -> Option<&[FrustrationCue]> {
        (!self.frustration_cues.is_empty()).then_some(self.frustration_cues.as_slice())
    }

    /// True when some frustration cue was found.
    pub fn is_frustrated(&self) -> bool {
        !self.frustration_cues.is_empty()
    }
}

fn set(patterns: &[&str]) -> RegexSet {
    // Constants checked by the tests below, so building them cannot fail.
    RegexSet::new(patterns.iter().map(|p| format!("(?i){p}"))).expect("signal patterns are valid")
}

fn regex(pattern: &str) -> Regex {
    Regex::new(&format!("(?i){pattern}")).expect("signal patterns are valid")
}

/// Profanity and insults (en, es, fr, de); whole words only.
static PROFANITY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(f+u+c+k+\w*|wtf|shit\w*|bullshit|crap\w*|damn\w*|goddamn|bastards?|assholes?|idiots?|useless|pathetic|joke|scam\w*|mierda|joder|puta|co[ñn]o|estafa\w*|in[uú]til(es)?|merde|putain|bordel|nul(le)?s?|arnaque\w*|escroc\w*|schei(ß|ss)\w*|verdammt|mist|betrug|betr[üu]ger\w*|abzocke|unversch[äa]mt\w*)\b",
    )
});

/// "third time I'm contacting you", "already asked twice", "still not fixed", "nobody answers".
static REPEATED_CONTACT: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\b(second|third|fourth|fifth|2nd|3rd|4th|5th|\d+th|umpteenth|nth)\s+time\b",
        r"\b(already|have)\s+(asked|contacted|written|emailed|called|reported|told)\b[^.!?]{0,30}\b(twice|three|four|several|multiple|many|\d+)\s*(times)?\b",
        r"\b(asked|contacted|written|emailed|called|reported)\s+(you\s+)?(twice|three times|four times|several times|multiple times|many times|\d+\s+times)\b",
        r"\b(still|again)\s+(not|isn'?t|doesn'?t|don'?t|hasn'?t|haven'?t|won'?t|can'?t)\s+(working|fixed|resolved|solved|answered|work|fixed)\b",
        r"\b(still|yet)\s+(no|not\s+a|without\s+a?)\s*(answer|reply|response|fix|solution)\b",
        r"\b(no\s*one|nobody)\s+(has\s+)?(answer|answered|answers|replied|replies|responds|responded|gets?\s+back|helped|helps)\b",
        r"\bnever\s+(got|received|heard)\s+(an?\s+)?(answer|reply|response|back)\b",
        r"\b(segunda|tercera|cuarta)\s+vez\b",
        r"\b(deuxi[eè]me|troisi[eè]me|quatri[eè]me)\s+fois\b",
        r"\b(zweite[nms]?|dritte[nms]?|vierte[nms]?)\s+mal\b",
        r"\bnadie\s+(me\s+)?(responde|contesta|ayuda)\b",
        r"\bpersonne\s+ne\s+(me\s+)?(r[ée]pond|aide)\b",
        r"\bniemand\s+(antwortet|hilft|meldet\s+sich)\b",
    ])
});

static URGENCY: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\b(urgent\w*|asap|emergency|critical|immediately|right\s+now|right\s+away|as\s+soon\s+as\s+possible|time[- ]sensitive)\b",
        r"\bdeadline\b",
        r"\b(by|before|until)\s+(today|tonight|tomorrow|monday|tuesday|wednesday|thursday|friday|saturday|sunday|eod|end\s+of\s+(the\s+)?(day|week)|noon|\d{1,2}\s*(am|pm|:\d\d))\b",
        r"\bbefore\s+(my|our|the)\s+(presentation|meeting|launch|demo|board|call|pitch|deadline|event|webinar|release|audit)\b",
        r"\b(in|within)\s+(the\s+next\s+)?(\d+|an?|one|two)\s+(minutes?|hours?)\b",
        r"\b(site|website|checkout|shop|store|production|dashboard|app)\s+(is\s+)?(down|broken|not\s+loading)\b",
        r"\b(urgente|urgencia|cuanto\s+antes|lo\s+antes\s+posible|inmediatamente|de\s+inmediato|para\s+ma[ñn]ana|para\s+hoy|antes\s+de\s+(mi|la|nuestra)\s+(presentaci[oó]n|reuni[oó]n))\b",
        r"\b(urgent|urgence|d[eè]s\s+que\s+possible|au\s+plus\s+vite|imm[ée]diatement|tout\s+de\s+suite|pour\s+demain|avant\s+(ma|la|notre|mon)\s+(pr[ée]sentation|r[ée]union|lancement))\b",
        r"\b(dringend|eilig|sofort|so\s+schnell\s+wie\s+m[öo]glich|umgehend|bis\s+morgen|bis\s+heute|vor\s+(meiner|unserer|der)\s+(pr[äa]sentation|besprechung))\b",
    ])
});

/// Leaving for someone else or for good: switching to a competitor, taking the business
/// elsewhere, "done with you" (churn risk on their own).
static CHURN: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\b(switch|switching|move|moving|go|going|migrate|migrating|leave|leaving)\s+(over\s+)?(to|for)\s+(another|a\s+different|a\s+competing|a\s+competitor|one\s+of\s+your\s+competitors)\b",
        r"\b(take|taking)\s+(my|our)\s+(business|money)\s+elsewhere\b",
        r"\b(i'?m|i\s+am|we'?re|we\s+are)\s+(done|finished)\s+with\s+(you|this|your)\b",
        r"\b(me\s+(voy|paso)\s+a\s+la\s+competencia|cambiarme\s+a\s+otr[oa]\s+(proveedor|servicio|empresa))\b",
        r"\b(passer|je\s+pars)\s+(à|a|chez)\s+la\s+concurrence\b|\bpasser\s+chez\s+un\s+autre\b",
        r"\b(zur\s+konkurrenz|zu\s+einem\s+(anderen\s+anbieter|wettbewerber))\b",
    ])
});

/// Saying one will cancel or leave: churn risk only in anger (with a frustration cue or a VADER
/// compound below [`ANGRY_CANCEL_SENTIMENT`]); a calm "I want to cancel" is a cancellation.
static LEAVING_INTENT: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\b(about\s+to|going\s+to|gonna|will|i'?ll|we'?ll|want\s+to|ready\s+to)\s+(cancel|quit|leave|drop|ditch|churn|unsubscribe)\b",
        r"\b(cancel|cancelling|canceling)\b[^.!?]{0,40}\b(unless|if\s+(this|you|it)\s+(isn'?t|is\s+not|doesn'?t|don'?t|can'?t))\b",
        r"\b(voy\s+a\s+cancelar|darme\s+de\s+baja)\b",
        r"\bje\s+vais\s+(r[ée]silier|annuler)\b",
        r"\b(ich\s+k[üu]ndige|werde\s+k[üu]ndigen)\b",
    ])
});

/// VADER compound below which announcing a cancellation counts as cancelling in anger.
pub const ANGRY_CANCEL_SENTIMENT: f64 = -0.3;

static SECURITY: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\b(hacked|hijacked|compromised|breached|stolen\s+(account|password|credentials))\b",
        r"\b(been|got|was|were|i\s+think\s+i'?ve\s+been)\s+(hacked|compromised|phished)\b",
        r"\b(someone|somebody|a\s+stranger|an\s+attacker|unknown\s+person|someone\s+else)\b[^.!?]{0,40}\b(logged\s+in|logged\s+into|signed\s+in|accessed|got\s+into|broke\s+into|changed\s+my\s+(password|email))\b",
        r"\b(suspicious|unrecognized|unrecognised|unknown|unusual|unauthori[sz]ed)\s+(login|log-?in|sign-?in|session|access|activity|device)s?\b",
        r"\b(2fa|two[- ]factor|mfa|authenticator)\b[^.!?]{0,40}\b(didn'?t\s+request|not\s+requested|compromised|stolen|bypassed|someone)\b",
        r"\b(phishing|account\s+takeover)\b",
        r"\b(hackeado|hackearon|pirateado|acceso\s+no\s+autorizado|inicio\s+de\s+sesi[oó]n\s+sospechoso)\b",
        r"\b(pirat[ée]|hack[ée]|acc[eè]s\s+non\s+autoris[ée]|connexion\s+suspecte)\b",
        r"\b(gehackt|kompromittiert|unbefugte[rn]?\s+zugriff|verd[äa]chtige\s+anmeldung)\b",
    ])
});

static LEGAL: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\b(subpoena\w*|court\s+order|warrant|lawsuit|litigation|cease\s+and\s+desist|legal\s+(notice|action|proceedings?|claim|demand|department|team)|law\s+enforcement|police|attorneys?|lawyers?|solicitors?|legal\s+counsel)\b",
        r"\b(sue|suing)\s+(you|your|the\s+company)\b",
        r"\b(data\s+subject\s+(access\s+)?request|dsar|regulator|supervisory\s+authority|data\s+protection\s+authority)\b",
        r"\b(abogad[oa]s?|demanda\s+judicial|orden\s+judicial|aviso\s+legal|polic[ií]a|citaci[oó]n)\b",
        r"\b(avocats?|mise\s+en\s+demeure|injonction|proc[eè]s|notification\s+l[ée]gale|police)\b",
        r"\b(anwalt|anw[äa]ltin|rechtsanwalt|klage|gerichtsbeschluss|abmahnung|polizei|rechtliche\s+schritte)\b",
    ])
});

static BILLING_DISPUTE: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\b(charged|billed|debited)\s+(me\s+|us\s+|my\s+card\s+|our\s+card\s+)?(twice|double|two\s+times|three\s+times|again|multiple\s+times)\b",
        r"\b(double|duplicate)[- ]?(charge|charged|billing|billed|payment)\b",
        r"\b(charged|billed)\b[^.!?]{0,40}\b(after\s+(i|we)\s+(cancel+ed|canceled|unsubscribed)|without\s+(my|our)\s+(permission|consent|authori[sz]ation)|for\s+nothing|the\s+wrong\s+amount|too\s+much)\b",
        r"\b(unauthori[sz]ed|unexpected|unknown|wrong|incorrect|fraudulent|disputed?)\s+(charge|payment|transaction|invoice\s+amount)s?\b",
        r"\b(charge\s*back|chargeback|dispute\s+(the|this|a)\s+(charge|payment)|overcharged|over-charged)\b",
        r"\b(didn'?t|did\s+not|never)\s+(authori[sz]e|agree\s+to|approve)\b[^.!?]{0,30}\b(charge|payment)\b",
        r"\b(cobrado|cobraron|cargaron)\s+(dos\s+veces|doble)|\bcobro\s+(indebido|duplicado|no\s+autorizado)\b",
        r"\b(d[ée]bit[ée]|factur[ée]|pr[ée]lev[ée])\s+(deux\s+fois|en\s+double)|\b(pr[ée]l[eè]vement|paiement)\s+(non\s+autoris[ée]|en\s+double)\b",
        r"\b(doppelt|zweimal)\s+(abgebucht|belastet|berechnet)|\b(unberechtigte|falsche)\s+(abbuchung|belastung)\b",
    ])
});

/// Account actions, as requests addressed to the team (not "how do I…" questions).
static REFUND: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"\b(want|need|request|requesting|demand|like|get|give\s+me|issue|process|expect|deserve)\s+(a\s+|my\s+|the\s+|an?\s+immediate\s+|a\s+full\s+|a\s+partial\s+)?(full\s+|partial\s+)?refund\b",
        r"\brefund\s+(me|us|my|our|the|this)\b",
        r"\b(money|cash)\s+back\b",
        r"\b(quiero|solicito|exijo|necesito)\s+(un|el|mi)\s+reembolso\b|\bdevu[eé]lvan(me)?\s+(mi|el)\s+dinero\b",
        r"\b(je\s+veux|je\s+demande|j'exige|je\s+souhaite)\s+(un|le|mon)\s+remboursement\b|\brembourse[zr]-?moi\b",
        r"\b(ich\s+will|ich\s+m[öo]chte|ich\s+verlange|bitte\s+um)\s+(eine|meine|die)\s+r[üu]ckerstattung\b|\bgeld\s+zur[üu]ck\b",
    ])
});

/// "please / can you / I need you to …" before an action verb: the team should act.
const ASK_TEAM: &str = r"(please|pls|kindly|can\s+you|could\s+you|would\s+you|will\s+you|i\s+need\s+you\s+to|i\s+want\s+you\s+to|i'?d\s+like\s+you\s+to|you\s+need\s+to|you\s+must)\s+";

static PLAN_CHANGE: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b{ASK_TEAM}(upgrade|downgrade|change|switch|move)\s+(my|our|the)\s+(plan|subscription|account|billing)\b"
    ))
});

static DATA_DELETION: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b({ASK_TEAM}(delete|remove|erase|wipe|purge)\s+(all\s+)?(of\s+)?(my|our|the)\s+(data|account|personal\s+data|information|info|stats|site|records)|right\s+to\s+(be\s+forgotten|erasure)|erasure\s+request|(borren|eliminen|supriman)\s+(mis|todos\s+mis)\s+datos|supprimez\s+(mes|toutes\s+mes)\s+donn[ée]es|l[öo]schen\s+sie\s+(meine|alle\s+meine)\s+daten)\b"
    ))
});

static CANCELLATION: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b({ASK_TEAM}(cancel|terminate|end|close)\s+(my|our|the)\s+(subscription|account|plan|membership|contract)|cancel\s+(it|my\s+subscription)\s+for\s+me)\b"
    ))
});

static ACCOUNT_CHANGE: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b{ASK_TEAM}(change|update|transfer|merge|move|rename)\s+(my|our|the)\s+(email|e-mail|login|username|ownership|owner|accounts?|billing\s+details|company\s+name)\b"
    ))
});

/// An amount of money: "$120", "120 €", "EUR 30", "30 dollars".
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?:[$€£]\s?(\d+(?:[.,]\d{1,2})?))|(?:(\d+(?:[.,]\d{1,2})?)\s?(?:[$€£]|usd|eur|gbp|dollars?|euros?|pounds?)\b)|(?:\b(?:usd|eur|gbp)\s?(\d+(?:[.,]\d{1,2})?))",
    )
});

/// Extra competitor names for a site (`sites.taxonomy.competitors`), matched as whole words.
#[derive(Debug, Clone, Default)]
pub struct CompetitorNames {
    pattern: Option<Regex>,
}

impl CompetitorNames {
    /// Builds the matcher for `names` (empty names are ignored).
    pub fn new(names: &[String]) -> Self {
        let escaped: Vec<String> = names
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .map(regex::escape)
            .collect();
        if escaped.is_empty() {
            return Self::default();
        }
        // Escaped literals joined by `|` always form a valid pattern.
        let pattern = Regex::new(&format!(r"(?i)\b({})\b", escaped.join("|")))
            .expect("escaped competitor names form a valid pattern");
        Self {
            pattern: Some(pattern),
        }
    }

    /// True when `text` names a competitor as where the visitor is going: "switching to X",
    /// "moving to X", "X is cheaper", "use X instead" (importing from X is not leaving).
    pub fn named_as_alternative(&self, text: &str) -> bool {
        let Some(pattern) = &self.pattern else {
            return false;
        };
        static GOING_TO: LazyLock<Regex> = LazyLock::new(|| {
            regex(
                r"\b(switch\w*|mov(e|ing)|go(ing)?|migrat\w*|head(ing)?|return(ing)?|leav\w*\s+for)\s+(back\s+)?(over\s+)?to\s*$",
            )
        });
        static BETTER: LazyLock<Regex> = LazyLock::new(|| {
            regex(
                r"^\s*(is|seems|looks|are)\s+(much\s+|way\s+|a\s+lot\s+|so\s+much\s+)?(better|cheaper|faster|easier)|^\s*instead\b",
            )
        });
        pattern
            .find_iter(text)
            .any(|m| GOING_TO.is_match(&text[..m.start()]) || BETTER.is_match(&text[m.end()..]))
    }
}

/// Runs every rule on `text` (no site-specific competitor names).
pub fn detect(text: &str) -> Signals {
    detect_with(text, &CompetitorNames::default())
}

/// Runs every rule on `text`, with the site's competitor names.
pub fn detect_with(text: &str, competitors: &CompetitorNames) -> Signals {
    let mut frustration_cues = Vec::new();
    if shouts(text) {
        frustration_cues.push(FrustrationCue::Capitals);
    }
    if text.contains("!!") || text.contains("??") || text.contains("?!") || text.contains("!?") {
        frustration_cues.push(FrustrationCue::RepeatedPunctuation);
    }
    if PROFANITY.is_match(text) {
        frustration_cues.push(FrustrationCue::Profanity);
    }
    let repeated_contact = REPEATED_CONTACT.is_match(text);
    if repeated_contact {
        frustration_cues.push(FrustrationCue::RepeatedContact);
    }
    let angry =
        !frustration_cues.is_empty() || super::vader::compound(text) < ANGRY_CANCEL_SENTIMENT;
    let leaving = CHURN.is_match(text)
        || competitors.named_as_alternative(text)
        || (angry && LEAVING_INTENT.is_match(text));
    Signals {
        urgency: URGENCY.is_match(text),
        churn_risk: leaving || repeated_contact,
        security: SECURITY.is_match(text),
        legal: LEGAL.is_match(text),
        billing_dispute: BILLING_DISPUTE.is_match(text),
        action: action_request(text),
        frustration_cues,
    }
}

fn action_request(text: &str) -> Option<ActionRequest> {
    let kind = if REFUND.is_match(text) {
        ActionKind::Refund
    } else if DATA_DELETION.is_match(text) {
        ActionKind::DataDeletion
    } else if CANCELLATION.is_match(text) {
        ActionKind::Cancellation
    } else if PLAN_CHANGE.is_match(text) {
        ActionKind::PlanChange
    } else if ACCOUNT_CHANGE.is_match(text) {
        ActionKind::AccountChange
    } else {
        return None;
    };
    let amount = AMOUNT.captures(text).and_then(|c| {
        c.iter()
            .skip(1)
            .flatten()
            .next()
            .and_then(|m| m.as_str().replace(',', ".").parse::<f64>().ok())
    });
    Some(ActionRequest { kind, amount })
}

/// Common acronyms written in capitals without shouting.
const ACRONYMS: &[&str] = &[
    "API", "CSV", "PDF", "URL", "GDPR", "CCPA", "DPA", "SSO", "SAML", "VAT", "CEO", "CTO", "SEO",
    "UTM", "CSS", "HTML", "SDK", "FAQ", "USD", "EUR", "GBP", "SAP", "ERP", "CRM", "AWS", "DNS",
    "SSL", "TLS", "JSON", "XML", "HTTP", "HTTPS", "IOS", "USA", "SPA", "WWW", "CMS", "CDN", "IBAN",
    "BIC", "SEPA", "MFA", "OTP", "TOTP", "DSAR", "ASAP", "ETA", "CNAME", "IP", "NGO", "EDU",
];

/// Two or more words of three or more letters in capitals (common acronyms such as "GDPR"
/// excluded), or a mostly-capital message of at least 12 letters.
fn shouts(text: &str) -> bool {
    let n_caps_words = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| {
            w.chars().count() >= 3 && w.chars().all(char::is_uppercase) && !ACRONYMS.contains(w)
        })
        .count();
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let n_upper = letters.iter().filter(|c| c.is_uppercase()).count();
    n_caps_words >= 2 || (letters.len() >= 12 && n_upper * 10 >= letters.len() * 7)
}

/// The support sentiment: VADER's compound lowered by 0.15 per frustration cue (capitals,
/// repeated punctuation, profanity, repeated contact), clamped to −1..1. Used for priority, and
/// reported beside the plain compound by `frontdesk eval sentiment`; the `negative_sentiment`
/// rule uses the plain compound, as DESIGN.md defines it.
pub fn support_sentiment(compound: f64, signals: &Signals) -> f64 {
    (compound - 0.15 * signals.frustration_cues.len() as f64).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for set in [
            &*REPEATED_CONTACT,
            &*URGENCY,
            &*CHURN,
            &*LEAVING_INTENT,
            &*SECURITY,
            &*LEGAL,
            &*BILLING_DISPUTE,
            &*REFUND,
        ] {
            assert!(!set.is_empty());
        }
        let _ = (
            &*PROFANITY,
            &*PLAN_CHANGE,
            &*DATA_DELETION,
            &*CANCELLATION,
            &*ACCOUNT_CHANGE,
            &*AMOUNT,
        );
    }

    #[test]
    fn frustration_cues() {
        let cases: &[(&str, &[FrustrationCue])] = &[
            ("THIS IS STILL BROKEN", &[FrustrationCue::Capitals]),
            (
                "why does this keep happening??",
                &[FrustrationCue::RepeatedPunctuation],
            ),
            ("this crap never loads", &[FrustrationCue::Profanity]),
            (
                "This is the fourth time I'm contacting you about the import",
                &[FrustrationCue::RepeatedContact],
            ),
            ("Is GDPR covered by the DPA?", &[]),
            ("How do I export my stats?", &[]),
            (
                "C'est la troisième fois que je vous écris",
                &[FrustrationCue::RepeatedContact],
            ),
            (
                "Das ist jetzt das dritte Mal, dass ich schreibe",
                &[FrustrationCue::RepeatedContact],
            ),
        ];
        for (text, cues) in cases {
            assert_eq!(detect(text).frustration_cues, *cues, "{text:?}");
        }
    }

    #[test]
    fn urgency_churn_security_legal_and_disputes() {
        type Check = fn(&Signals) -> bool;
        let cases: &[(&str, Check, bool)] = &[
            (
                "I need the numbers before my presentation tomorrow",
                |s| s.urgency,
                true,
            ),
            (
                "Our checkout is down, please help asap",
                |s| s.urgency,
                true,
            ),
            ("Es urgente, lo necesito para mañana", |s| s.urgency, true),
            ("Ich brauche das dringend", |s| s.urgency, true),
            ("How do I see yesterday's visitors?", |s| s.urgency, false),
            (
                "If this isn't fixed we're moving to another provider",
                |s| s.churn_risk,
                true,
            ),
            (
                "I'm going to cancel, this is useless",
                |s| s.churn_risk,
                true,
            ),
            ("Je vais passer à la concurrence", |s| s.churn_risk, true),
            ("How do I cancel my subscription?", |s| s.churn_risk, false),
            (
                "I want to cancel my subscription at the end of the month",
                |s| s.churn_risk,
                false,
            ),
            (
                "How do you compare to a competitor like Acme?",
                |s| s.churn_risk,
                false,
            ),
            ("Ich kündige, das ist eine Abzocke", |s| s.churn_risk, true),
            (
                "Someone signed in to my account from an unknown device",
                |s| s.security,
                true,
            ),
            ("I think I've been hacked", |s| s.security, true),
            (
                "How do I enable two-factor authentication?",
                |s| s.security,
                false,
            ),
            (
                "We received a subpoena concerning one of your customers",
                |s| s.legal,
                true,
            ),
            ("Mi abogado le enviará un aviso legal", |s| s.legal, true),
            ("Is your service GDPR compliant?", |s| s.legal, false),
            ("You billed us twice for March", |s| s.billing_dispute, true),
            (
                "There is an unauthorized charge on my statement",
                |s| s.billing_dispute,
                true,
            ),
            ("Sie haben doppelt abgebucht", |s| s.billing_dispute, true),
            (
                "Where do I download my invoices?",
                |s| s.billing_dispute,
                false,
            ),
        ];
        for (text, check, expected) in cases {
            assert_eq!(check(&detect(text)), *expected, "{text:?}");
        }
    }

    #[test]
    fn competitor_names_count_with_leaving_words() {
        let names = CompetitorNames::new(&["Acme Analytics".into(), "Foo".into()]);
        assert!(names.named_as_alternative("we're switching to Acme Analytics next month"));
        assert!(!names.named_as_alternative("can I import data from Acme Analytics?"));
        assert!(!names.named_as_alternative("we're migrating from Acme Analytics to you"));
        assert!(names.named_as_alternative("Acme Analytics is way cheaper"));
        assert!(detect_with("Foo is cheaper, I'll move there", &names).churn_risk);
    }

    #[test]
    fn account_actions_are_requests_not_questions() {
        let cases: &[(&str, Option<ActionKind>, Option<f64>)] = &[
            (
                "I want a refund for last month ($29)",
                Some(ActionKind::Refund),
                Some(29.0),
            ),
            (
                "please refund me 120 EUR",
                Some(ActionKind::Refund),
                Some(120.0),
            ),
            ("What is your refund policy?", None, None),
            (
                "Can you delete all my data?",
                Some(ActionKind::DataDeletion),
                None,
            ),
            ("How do I delete my account?", None, None),
            (
                "Please cancel my subscription",
                Some(ActionKind::Cancellation),
                None,
            ),
            ("How do I cancel my subscription?", None, None),
            (
                "Could you upgrade my plan to the business tier",
                Some(ActionKind::PlanChange),
                None,
            ),
            (
                "I want to switch from monthly to yearly billing",
                None,
                None,
            ),
            (
                "please change my email to ada@example.com",
                Some(ActionKind::AccountChange),
                None,
            ),
            ("Quiero un reembolso", Some(ActionKind::Refund), None),
        ];
        for (text, kind, amount) in cases {
            let action = detect(text).action;
            assert_eq!(action.map(|a| a.kind), *kind, "{text:?}");
            assert_eq!(action.and_then(|a| a.amount), *amount, "{text:?}");
        }
    }

    #[test]
    fn support_sentiment_subtracts_per_cue() {
        let signals = detect("WHY IS THIS STILL BROKEN??");
        assert_eq!(signals.frustration_cues.len(), 2);
        assert!((support_sentiment(0.0, &signals) + 0.3).abs() < 1e-9);
        assert_eq!(support_sentiment(-0.95, &signals), -1.0);
    }
}
