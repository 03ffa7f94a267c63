//! The spend-ledger port: what each site spent on LLM tokens per calendar month, so a site's
//! `llm_monthly_budget_usd` holds across restarts and instances.
//!
//! Amounts are integer micro-dollars (1 USD = 1,000,000), so concurrent additions are exact.
//! Months are `YYYY-MM` in UTC. Adapters: the in-memory store and Redis (`INCRBY` on
//! `{prefix}spend:{site}:{month}`, kept 62 days).

use crate::ids::SiteId;
use crate::ports::store::StoreError;

/// Micro-dollars per US dollar.
pub const MICRO_USD_PER_USD: f64 = 1_000_000.0;

/// `YYYY-MM` (UTC) of `at`.
pub fn month_of(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

/// Records LLM spending per site and month.
#[async_trait::async_trait]
pub trait SpendLedger: Send + Sync {
    /// Adds `micro_usd` to `site`'s spending in `month`; returns the new total.
    ///
    /// Errors: the store's.
    async fn add_spend(
        &self,
        site: &SiteId,
        month: &str,
        micro_usd: u64,
    ) -> Result<u64, StoreError>;

    /// `site`'s spending in `month` (0 when nothing was recorded).
    ///
    /// Errors: the store's.
    async fn spent(&self, site: &SiteId, month: &str) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn months_are_utc() {
        let at = time::macros::datetime!(2026-12-31 23:30 -02:00);
        assert_eq!(super::month_of(at), "2027-01");
        assert_eq!(
            super::month_of(time::macros::datetime!(2026-03-01 00:00 UTC)),
            "2026-03"
        );
    }
}
