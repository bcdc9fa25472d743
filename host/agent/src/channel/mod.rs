//! The customer channel: everything the agent shows the customer as
//! structured [`CustomerEvent`]s, and what the customer sends back as
//! [`CustomerCommand`]s. A terminal renders the events as text
//! ([`CustomerEvent::text`]); the customer's window (`crate::window`)
//! renders them in the browser; after a restart the agent service offers
//! the same channel on a unix socket ([`socket`]).
//!
//! A [`Hub`] is the channel of one agent process: a [`crate::CustomerUi`]
//! that keeps what a newly connected window must see (who helps, the
//! state, open consent requests, shares, a run-as suspension, recent chat),
//! broadcasts every event, and passes commands to the session loop.

mod command;
mod event;
mod hub;
pub mod socket;

pub use command::{CommandError, CommandRequest, CustomerCommand, MAX_LINE_BYTES, parse};
pub use event::{ConsentAsk, ConsentKind, CustomerEvent, Helper, Resolution};
pub use hub::{HISTORY, Hub, Subscription};
