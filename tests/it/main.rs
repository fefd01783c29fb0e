//! Integration tests: the real `tickit-sync` binary, run by the shared [`harness`] in a
//! temporary directory and spoken to over HTTP, its command line and its service-manager
//! interface. One module per area; the request fixtures are read from `tests/fixtures/`.

mod bad_states;
mod check;
mod cli;
mod connections;
mod convergence;
mod crash;
mod dates;
mod decoding_fuzz;
mod desktop_model;
mod desktop_replay;
mod harness;
mod http_errors;
mod lifecycle;
mod limits;
mod memory;
mod metrics;
mod operations;
mod original_tokens;
mod switch_from_original;
mod sync_rules;
mod tidy_turns;
