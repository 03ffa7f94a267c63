//! What the assistant says when it is not quoting the knowledge base. Visitor-safe: never a
//! reason code, never internal detail.

/// Nothing relevant in the knowledge base (or too unsure): say so and offer a human.
pub const NOTHING_FOUND: &str = "I couldn't find an answer to that in our help center, and I'd rather not guess. \
Would you like me to connect you with someone from our team?";

/// Retrieval found an article but is unsure it answers: name it (it is cited) and offer a human.
pub fn unsure_closest(title: &str) -> String {
    format!(
        "I'm not sure I have the right answer to that. The closest article in our help center is \"{title}\", \
which may help. Would you like me to connect you with someone from our team?"
    )
}

/// A handoff was recorded (`handoff{status: pending}`).
pub const HANDOFF_PENDING: &str = "Of course. I'm connecting you with someone from our team now. \
They'll see everything you've written here, so you won't need to repeat yourself.";

/// With a team name ("billing team"), once routing picked one.
pub fn handoff_pending_to(team: &str) -> String {
    format!(
        "Of course. I'm connecting you with our {team} now. \
They'll see everything you've written here, so you won't need to repeat yourself."
    )
}

/// A handoff when nobody who could take it is online (built-in inbox): `handoff{status:
/// offline}`; the ticket waits in the queue.
pub fn nobody_available(team: &str, email: Option<&str>) -> String {
    match email {
        Some(email) => format!(
            "Nobody from our {team} is available right now. They'll reply here and by email to \
             {email} as soon as they're back, and they'll see everything you've written."
        ),
        None => format!(
            "Nobody from our {team} is available right now. Leave your email and they'll reply \
             there as well as here as soon as they're back; they'll see everything you've written \
             here, so you won't need to repeat yourself."
        ),
    }
}

/// After the handoff message when it waits in the built-in inbox's line (the frame's
/// `queue_position` says where; the widget shows it).
pub const IN_LINE: &str = "You're in line, and we'll be with you as soon as we can.";

/// A handoff outside the team's business hours (`handoff{status: offline}`): when they are
/// back (`"Monday at 09:00 (Europe/Berlin)"`) and where they will answer.
pub fn team_offline(team: &str, back: Option<&str>, email: Option<&str>) -> String {
    let back = back.map_or_else(String::new, |when| format!(" They're back {when}."));
    match email {
        Some(email) => format!(
            "Our {team} is offline right now.{back} They'll reply here and by email to {email}, \
             and they'll see everything you've written, so you won't need to repeat yourself."
        ),
        None => format!(
            "Our {team} is offline right now.{back} Leave your email and they'll reply there \
             as well as here; they'll see everything you've written, so you won't need to \
             repeat yourself."
        ),
    }
}

/// An inbox agent took the conversation (`handoff{status: assigned}`).
pub fn agent_joined(agent_name: &str) -> String {
    format!("{agent_name} has joined the conversation.")
}

/// A draft answer is waiting for an agent's approval.
pub const DRAFT_PENDING: &str = "Thanks, I've passed this to our team so a person can check it before anything is done. \
They'll reply here shortly, and they'll see everything you've written.";

/// Part of an LLM answer was shown, then it was not supported by the help center (or was
/// blocked): the stored answer starts with this, then the extractive answer.
pub const LLM_REPLACED: &str = "Sorry, I had to stop that answer because I couldn't back it up with our help center. \
Here is what the help center says:";

/// The model failed before writing anything, and the site hands off in that case.
pub const LLM_UNAVAILABLE_HANDOFF: &str = "Sorry, I can't answer that right now. \
I'm connecting you with someone from our team, and they'll see everything you've written here.";

/// Part of an LLM answer was shown, then it failed, and the site hands off in that case: the
/// `answer_end` text replacing the deltas (the handoff message follows).
pub const LLM_INTERRUPTED_HANDOFF: &str = "Sorry, I had to stop that answer.";

/// The handoff message after [`LLM_INTERRUPTED_HANDOFF`].
pub const LLM_HANDOFF_AFTER_CUT: &str = "I'm connecting you with someone from our team now. \
They'll see everything you've written here, so you won't need to repeat yourself.";

/// Part of an LLM answer was shown, then the model failed (timeout, broken stream): the stored
/// answer starts with this, then the extractive answer.
pub const LLM_INTERRUPTED: &str =
    "Sorry, my answer was cut off. Here is what our help center says:";
