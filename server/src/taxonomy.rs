//! A site's taxonomy (`[sites.taxonomy]`): categories → subcategories, each with a description
//! and example messages (what the few-shot classifier learns from), a default priority, and how
//! the assistant handles it (`answer` alone, a `draft` for an agent, or always a `human`); plus
//! priority rules raised by the turn's signals, competitor names for the churn rule, and the
//! out-of-scope similarity threshold.
//!
//! Parsed from TOML by [`RawTaxonomy`] (unknown keys refused) and checked by [`validate`], which
//! names the offending key. Subcategories inherit their category's priority, handling and
//! reason unless they set their own.

use crate::config::{ConfigError, Priority};
use crate::domain::{ActionKind, ReasonCode};
use serde::Deserialize;
use std::collections::HashSet;

/// Default of `min_similarity`: cosine (all-MiniLM-L6-v2) to the nearest example below which a
/// message is outside the taxonomy.
pub const DEFAULT_MIN_SIMILARITY: f32 = 0.3;

/// Categories for classification, with their handling and priority rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Taxonomy {
    pub categories: Vec<Category>,
    /// Cosine to the nearest example (or description) below which the message is out of scope.
    pub min_similarity: f32,
    /// Competitors' names: naming one with leaving words ("switching to X") is churn risk.
    pub competitors: Vec<String>,
    /// Rules that raise the priority when a signal fires (the highest wins).
    pub priority_rules: Vec<PriorityRule>,
}

impl Default for Taxonomy {
    fn default() -> Self {
        Self {
            categories: Vec::new(),
            min_similarity: DEFAULT_MIN_SIMILARITY,
            competitors: Vec::new(),
            priority_rules: Vec::new(),
        }
    }
}

/// How the assistant handles messages of a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Handling {
    /// Answer alone when the knowledge base covers it (the policy's other rules still apply).
    #[default]
    Answer,
    /// Prepare an answer for an agent to approve.
    Draft,
    /// Always hand off, with the category's `reason`.
    Human,
}

impl Handling {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Draft => "draft",
            Self::Human => "human",
        }
    }
}

/// One category.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub id: String,
    pub description: String,
    pub examples: Vec<String>,
    pub priority: Priority,
    pub handling: Handling,
    /// The reason code of a `human` category (required then).
    pub reason: Option<ReasonCode>,
    /// The account action its messages ask for, if any (drafts follow `policy.draft`).
    pub action: Option<ActionKind>,
    pub subcategories: Vec<Subcategory>,
}

/// One subcategory (its handling, priority, reason and action default to its category's).
#[derive(Debug, Clone, PartialEq)]
pub struct Subcategory {
    pub id: String,
    pub description: String,
    pub examples: Vec<String>,
    pub priority: Priority,
    pub handling: Handling,
    pub reason: Option<ReasonCode>,
    pub action: Option<ActionKind>,
}

/// A turn signal a priority rule reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrioritySignal {
    Urgency,
    Frustration,
    ChurnRisk,
    NegativeSentiment,
    RequestedHuman,
    Security,
    Legal,
    BillingDispute,
}

impl PrioritySignal {
    pub const ALL: [PrioritySignal; 8] = [
        Self::Urgency,
        Self::Frustration,
        Self::ChurnRisk,
        Self::NegativeSentiment,
        Self::RequestedHuman,
        Self::Security,
        Self::Legal,
        Self::BillingDispute,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Urgency => "urgency",
            Self::Frustration => "frustration",
            Self::ChurnRisk => "churn_risk",
            Self::NegativeSentiment => "negative_sentiment",
            Self::RequestedHuman => "requested_human",
            Self::Security => "security",
            Self::Legal => "legal",
            Self::BillingDispute => "billing_dispute",
        }
    }
}

/// "When `signal` fires, the priority is at least `priority`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityRule {
    pub signal: PrioritySignal,
    pub priority: Priority,
}

/// `[sites.taxonomy]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTaxonomy {
    #[serde(default)]
    categories: Vec<RawCategory>,
    min_similarity: Option<f64>,
    #[serde(default)]
    competitors: Vec<String>,
    #[serde(default)]
    priority_rules: Vec<RawPriorityRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    id: String,
    description: String,
    #[serde(default)]
    examples: Vec<String>,
    priority: Option<String>,
    handling: Option<String>,
    reason: Option<String>,
    action: Option<String>,
    #[serde(default)]
    subcategories: Vec<RawSubcategory>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubcategory {
    id: String,
    description: String,
    #[serde(default)]
    examples: Vec<String>,
    priority: Option<String>,
    handling: Option<String>,
    reason: Option<String>,
    action: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPriorityRule {
    signal: String,
    priority: String,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// Parses `low|normal|high|urgent`.
pub fn parse_priority(key: &str, raw: &str) -> Result<Priority, ConfigError> {
    match raw.trim() {
        "low" => Ok(Priority::Low),
        "normal" => Ok(Priority::Normal),
        "high" => Ok(Priority::High),
        "urgent" => Ok(Priority::Urgent),
        other => Err(invalid(
            key,
            format!("{other:?} is not low, normal, high or urgent"),
        )),
    }
}

fn parse_handling(key: &str, raw: &str) -> Result<Handling, ConfigError> {
    match raw.trim() {
        "answer" => Ok(Handling::Answer),
        "draft" => Ok(Handling::Draft),
        "human" => Ok(Handling::Human),
        other => Err(invalid(
            key,
            format!("{other:?} is not answer, draft or human"),
        )),
    }
}

fn parse_reason(key: &str, raw: &str) -> Result<ReasonCode, ConfigError> {
    raw.trim()
        .parse::<ReasonCode>()
        .map_err(|err| invalid(key, err.to_string()))
}

fn parse_action(key: &str, raw: &str) -> Result<ActionKind, ConfigError> {
    raw.trim()
        .parse::<ActionKind>()
        .map_err(|message| invalid(key, message))
}

/// Handling, reason, priority and action of one node, inheriting from `parent`.
struct NodeRules {
    priority: Priority,
    handling: Handling,
    reason: Option<ReasonCode>,
    action: Option<ActionKind>,
}

fn node_rules(
    key: &str,
    priority: Option<&str>,
    handling: Option<&str>,
    reason: Option<&str>,
    action: Option<&str>,
    parent: Option<&NodeRules>,
) -> Result<NodeRules, ConfigError> {
    let priority = match priority {
        Some(raw) => parse_priority(&format!("{key}.priority"), raw)?,
        None => parent.map_or(Priority::Normal, |p| p.priority),
    };
    let handling = match handling {
        Some(raw) => parse_handling(&format!("{key}.handling"), raw)?,
        None => parent.map_or(Handling::Answer, |p| p.handling),
    };
    let reason = match reason {
        Some(raw) => Some(parse_reason(&format!("{key}.reason"), raw)?),
        None => parent.and_then(|p| p.reason),
    };
    let action = match action {
        Some(raw) => Some(parse_action(&format!("{key}.action"), raw)?),
        None => parent.and_then(|p| p.action),
    };
    if handling == Handling::Human && reason.is_none() {
        return Err(invalid(
            format!("{key}.reason"),
            "handling = \"human\" needs a reason code (e.g. \"security\")",
        ));
    }
    Ok(NodeRules {
        priority,
        handling,
        reason,
        action,
    })
}

/// Checks a site's taxonomy; `key` is its config path (`sites[0].taxonomy`).
///
/// Errors: [`ConfigError::Invalid`] naming the key (empty or repeated ids, unknown priority,
/// handling, reason or action, a `human` category without a reason, a threshold outside −1..1).
pub fn validate(key: &str, raw: RawTaxonomy) -> Result<Taxonomy, ConfigError> {
    let min_similarity = raw
        .min_similarity
        .unwrap_or(f64::from(DEFAULT_MIN_SIMILARITY));
    if !(-1.0..=1.0).contains(&min_similarity) {
        return Err(invalid(
            format!("{key}.min_similarity"),
            format!("must be a cosine between -1 and 1, got {min_similarity}"),
        ));
    }
    let mut ids = HashSet::new();
    let mut categories = Vec::with_capacity(raw.categories.len());
    for (index, category) in raw.categories.into_iter().enumerate() {
        let category_key = format!("{key}.categories[{index}]");
        let id = category.id.trim().to_string();
        if id.is_empty() || !ids.insert(id.clone()) {
            return Err(invalid(
                format!("{key}.categories"),
                format!("category id {id:?} is empty or repeated"),
            ));
        }
        let rules = node_rules(
            &category_key,
            category.priority.as_deref(),
            category.handling.as_deref(),
            category.reason.as_deref(),
            category.action.as_deref(),
            None,
        )?;
        let mut sub_ids = HashSet::new();
        let mut subcategories = Vec::with_capacity(category.subcategories.len());
        for (sub_index, sub) in category.subcategories.into_iter().enumerate() {
            let sub_key = format!("{category_key}.subcategories[{sub_index}]");
            let sub_id = sub.id.trim().to_string();
            if sub_id.is_empty() || !sub_ids.insert(sub_id.clone()) {
                return Err(invalid(
                    format!("{category_key}.subcategories"),
                    format!("subcategory id {sub_id:?} is empty or repeated"),
                ));
            }
            let sub_rules = node_rules(
                &sub_key,
                sub.priority.as_deref(),
                sub.handling.as_deref(),
                sub.reason.as_deref(),
                sub.action.as_deref(),
                Some(&rules),
            )?;
            subcategories.push(Subcategory {
                id: sub_id,
                description: sub.description,
                examples: sub.examples,
                priority: sub_rules.priority,
                handling: sub_rules.handling,
                reason: sub_rules.reason,
                action: sub_rules.action,
            });
        }
        categories.push(Category {
            id,
            description: category.description,
            examples: category.examples,
            priority: rules.priority,
            handling: rules.handling,
            reason: rules.reason,
            action: rules.action,
            subcategories,
        });
    }
    let priority_rules = raw
        .priority_rules
        .into_iter()
        .enumerate()
        .map(|(index, rule)| {
            let rule_key = format!("{key}.priority_rules[{index}]");
            let signal = PrioritySignal::ALL
                .into_iter()
                .find(|s| s.as_str() == rule.signal.trim())
                .ok_or_else(|| {
                    invalid(
                        format!("{rule_key}.signal"),
                        format!(
                            "{:?} is not a signal (expected one of: {})",
                            rule.signal,
                            PrioritySignal::ALL.map(|s| s.as_str()).join(", ")
                        ),
                    )
                })?;
            Ok(PriorityRule {
                signal,
                priority: parse_priority(&format!("{rule_key}.priority"), &rule.priority)?,
            })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    Ok(Taxonomy {
        categories,
        // Checked above to lie in −1..=1.
        min_similarity: min_similarity as f32,
        competitors: raw
            .competitors
            .into_iter()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
        priority_rules,
    })
}

/// Reads the taxonomy of the first `[[sites]]` entry of a config file (the
/// `--taxonomy FILE` of `frontdesk eval decisions`), or of `--site ID` when given.
///
/// Errors: the file cannot be read or is not a valid config ([`ConfigError`]).
pub fn from_config_file(
    path: &std::path::Path,
    site: Option<&str>,
) -> Result<Taxonomy, ConfigError> {
    let settings = crate::config::Settings::load(&crate::config::ConfigSources {
        file: Some(path.to_path_buf()),
        ..Default::default()
    })?;
    let chosen = match site {
        Some(id) => settings.sites.iter().find(|s| s.id.as_str() == id),
        None => settings.sites.first(),
    };
    chosen.map(|s| s.taxonomy.clone()).ok_or_else(|| {
        invalid(
            "sites",
            format!("{} declares no site {}", path.display(), site.unwrap_or("")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Taxonomy, ConfigError> {
        let raw: RawTaxonomy = toml::from_str(toml_text).expect("TOML of the right shape");
        validate("sites[0].taxonomy", raw)
    }

    #[test]
    fn subcategories_inherit_and_override() {
        let taxonomy = parse(
            r#"
min_similarity = 0.4
competitors = ["Acme"]
priority_rules = [{ signal = "urgency", priority = "high" }]
[[categories]]
id = "billing"
description = "Money"
priority = "normal"
handling = "answer"
[[categories.subcategories]]
id = "dispute"
description = "Contested charges"
handling = "human"
reason = "billing_dispute"
priority = "high"
[[categories.subcategories]]
id = "refund"
description = "Refund requests"
handling = "draft"
action = "refund"
[[categories.subcategories]]
id = "invoices"
description = "Invoices"
"#,
        )
        .expect("valid");
        assert_eq!(taxonomy.min_similarity, 0.4);
        assert_eq!(taxonomy.competitors, vec!["Acme".to_string()]);
        assert_eq!(taxonomy.priority_rules[0].signal, PrioritySignal::Urgency);
        let subs = &taxonomy.categories[0].subcategories;
        assert_eq!(subs[0].handling, Handling::Human);
        assert_eq!(subs[0].reason, Some(ReasonCode::BillingDispute));
        assert_eq!(subs[0].priority, Priority::High);
        assert_eq!(subs[1].action, Some(ActionKind::Refund));
        assert_eq!(subs[1].priority, Priority::Normal);
        assert_eq!(subs[2].handling, Handling::Answer);
    }

    #[test]
    fn bad_taxonomies_name_the_key() {
        let cases = [
            (
                "[[categories]]\nid = \"a\"\ndescription = \"x\"\nhandling = \"human\"\n",
                "categories[0].reason",
            ),
            (
                "[[categories]]\nid = \"a\"\ndescription = \"x\"\npriority = \"asap\"\n",
                "categories[0].priority",
            ),
            (
                "[[categories]]\nid = \"a\"\ndescription = \"x\"\n[[categories]]\nid = \"a\"\ndescription = \"y\"\n",
                "categories",
            ),
            (
                "priority_rules = [{ signal = \"mood\", priority = \"high\" }]\n",
                "priority_rules[0].signal",
            ),
            ("min_similarity = 2.0\n", "min_similarity"),
        ];
        for (text, key) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().contains(key), "{text:?}: {err}");
        }
    }
}
