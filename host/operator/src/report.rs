//! Session reports as text and JSON (shared with the broker's web console:
//! `lifeline_protocol::report`).

pub use lifeline_protocol::report::{to_json, to_text};
