//! How a caller proves who they are: API tokens, and the dashboard's sign-in sessions (which the
//! API accepts too).

pub mod api_tokens;
pub mod sessions;
