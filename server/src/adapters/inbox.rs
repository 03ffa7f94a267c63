//! [`Helpdesk`] for the built-in inbox (the default): the handoff's ticket is its entry in the
//! site's queue, which the store wrote atomically with the handoff
//! ([`crate::ports::store::ConversationStore::handoff_queue`]); agents work it at `/inbox`.
//! Creating the ticket therefore only names it: its id is the handoff id, so it is exactly
//! once by construction, and it cannot fail.

use crate::ports::helpdesk::{Helpdesk, HelpdeskError, TicketRef, TicketRequest};

/// The built-in inbox.
#[derive(Debug, Clone, Default)]
pub struct InboxHelpdesk;

#[async_trait::async_trait]
impl Helpdesk for InboxHelpdesk {
    fn adapter_name(&self) -> &'static str {
        "inbox"
    }

    async fn create_ticket(&self, request: &TicketRequest) -> Result<TicketRef, HelpdeskError> {
        Ok(TicketRef {
            id: request.handoff_id.clone(),
            url: Some("/inbox".to_string()),
        })
    }
}
