//! Limits on how fast one caller may go: API requests per token and per address, and dashboard
//! sign-in guesses per address.

pub mod rate_limit;
pub mod sign_in_limit;
