//! Shared helpers for the black-box tests in `tests/` (this file is the test-only root
//! package's library, so every test binary can `use frontdesk_tests::…`).
