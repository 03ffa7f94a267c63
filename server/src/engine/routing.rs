//! Handoff routing: which team takes a handoff (DESIGN.md "The turn", step 7). Rules come from
//! the site's `[sites.routing]`; the first rule whose every set condition matches the turn's
//! analysis and the visitor's verified customer tier wins, else the site's `default_team`.

use crate::config::{Routing, Team};
use crate::ports::analyzer::TurnAnalysis;

/// The team for a handoff after `analysis` (`None`: no analysis ran, e.g. the `request_human`
/// button before any message: only tier conditions can match then) for a visitor of `tier`
/// (from a verified identity only; `None` for anonymous visitors). A category condition
/// matches the category itself or any of its subcategories (`billing` matches
/// `billing/refund`). `None` only if the default team is not declared (config validation
/// prevents it).
pub fn route<'a>(
    routing: &'a Routing,
    analysis: Option<&TurnAnalysis>,
    tier: Option<&str>,
) -> Option<&'a Team> {
    let team_id = routing
        .rules
        .iter()
        .find(|rule| {
            if rule
                .tier
                .as_deref()
                .is_some_and(|wanted| tier != Some(wanted))
            {
                return false;
            }
            let Some(analysis) = analysis else {
                let only_tier =
                    rule.category.is_none() && rule.priority.is_none() && rule.language.is_none();
                return only_tier && rule.tier.is_some();
            };
            let category_ok = rule.category.as_deref().is_none_or(|wanted| {
                analysis.category.as_ref().is_some_and(|found| {
                    found.category == wanted
                        || found
                            .subcategory
                            .as_deref()
                            .is_some_and(|sub| format!("{}/{sub}", found.category) == wanted)
                })
            });
            let priority_ok = rule
                .priority
                .is_none_or(|wanted| analysis.priority == wanted);
            let language_ok = rule
                .language
                .as_deref()
                .is_none_or(|wanted| analysis.language.as_deref() == Some(wanted));
            category_ok && priority_ok && language_ok
        })
        .map_or(routing.default_team.as_str(), |rule| rule.team.as_str());
    routing.teams.iter().find(|team| team.id == team_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Priority, RoutingRule};
    use crate::ports::analyzer::{AnalysisSource, CategoryMatch};
    use crate::taxonomy::Handling;

    fn routing() -> Routing {
        let team = |id: &str, name: &str| Team {
            id: id.into(),
            name: name.into(),
            hours: None,
        };
        let rule =
            |category: Option<&str>, priority, language: Option<&str>, team: &str| RoutingRule {
                category: category.map(str::to_string),
                priority,
                language: language.map(str::to_string),
                tier: None,
                team: team.into(),
            };
        Routing {
            default_team: "support".into(),
            teams: vec![
                team("support", "support team"),
                team("billing", "billing team"),
                team("urgent", "on-call team"),
                team("es", "Spanish-speaking team"),
                team("vip", "account team"),
            ],
            rules: vec![
                RoutingRule {
                    tier: Some("enterprise".into()),
                    ..rule(None, None, None, "vip")
                },
                rule(None, Some(Priority::Urgent), None, "urgent"),
                rule(Some("billing"), None, None, "billing"),
                rule(None, None, Some("es"), "es"),
            ],
        }
    }

    fn analysis(
        category: Option<(&str, Option<&str>)>,
        priority: Priority,
        language: &str,
    ) -> TurnAnalysis {
        TurnAnalysis {
            language: Some(language.into()),
            sentiment: 0.0,
            previous_sentiment: None,
            requested_human: true,
            frustrated: false,
            urgent: false,
            category: category.map(|(category, sub)| CategoryMatch {
                category: category.into(),
                subcategory: sub.map(str::to_string),
                similarity: 0.8,
                probability: 0.9,
            }),
            out_of_taxonomy: false,
            taxonomy_similarity: None,
            handling: Handling::Answer,
            priority,
            action: None,
            flagged: Vec::new(),
            source: AnalysisSource::Local,
            usage: None,
        }
    }

    #[test]
    fn the_first_matching_rule_picks_the_team_else_the_default() {
        let routing = routing();
        let team =
            |analysis: Option<&TurnAnalysis>| route(&routing, analysis, None).map(|t| t.id.clone());
        assert_eq!(team(None), Some("support".into()));
        let billing = analysis(Some(("billing", Some("refund"))), Priority::Normal, "es");
        // The category rule comes before the language rule.
        assert_eq!(team(Some(&billing)), Some("billing".into()));
        let urgent_billing = analysis(Some(("billing", None)), Priority::Urgent, "en");
        assert_eq!(team(Some(&urgent_billing)), Some("urgent".into()));
        let spanish = analysis(Some(("account", None)), Priority::High, "es");
        assert_eq!(team(Some(&spanish)), Some("es".into()));
        let other = analysis(None, Priority::Normal, "en");
        assert_eq!(team(Some(&other)), Some("support".into()));
        // A verified enterprise customer goes to the account team, with or without analysis.
        let vip = |analysis: Option<&TurnAnalysis>| {
            route(&routing, analysis, Some("enterprise")).map(|t| t.id.clone())
        };
        assert_eq!(vip(Some(&urgent_billing)), Some("vip".into()));
        assert_eq!(vip(None), Some("vip".into()));
        assert_eq!(
            route(&routing, Some(&other), Some("free")).map(|t| t.id.clone()),
            Some("support".into()),
            "another tier matches no tier rule"
        );
    }
}
