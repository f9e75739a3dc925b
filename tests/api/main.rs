//! Integration tests: each starts the real server on a free port and talks HTTP to it.

mod classification;
mod cli;
mod durability;
mod errors;
mod helpers;
mod mmdb;
mod privacy;
mod tracker;
