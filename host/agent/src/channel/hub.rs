//! One agent process's customer channel: what a new window must see, the
//! broadcast of events, and commands on their way to the session.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::{CommandRequest, CustomerCommand, CustomerEvent};
use crate::CustomerUi;

/// Chat lines, notices and other lines a window connecting late still
/// sees (the most recent ones).
pub const HISTORY: usize = 200;
/// Events buffered for a slow window before it must resynchronise.
const BROADCAST_CAPACITY: usize = 256;
/// Commands waiting for the session loop.
const COMMAND_QUEUE: usize = 16;
/// Longest wait for the session to carry out a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What a window connecting now is shown first.
#[derive(Default)]
struct Snapshot {
    welcome: Option<CustomerEvent>,
    state: Option<CustomerEvent>,
    /// The latest security code of each operator's channel.
    codes: BTreeMap<String, CustomerEvent>,
    consents: BTreeMap<u64, CustomerEvent>,
    sharing: BTreeMap<String, CustomerEvent>,
    suspension: Option<CustomerEvent>,
    recent: VecDeque<CustomerEvent>,
    ended: Option<CustomerEvent>,
}

impl Snapshot {
    fn record(&mut self, ev: &CustomerEvent) {
        use CustomerEvent as E;
        match ev {
            E::Welcome { .. } => self.welcome = Some(ev.clone()),
            E::State { .. } => self.state = Some(ev.clone()),
            E::Secured { operator, .. } => {
                // Bounded by the session's operators, each kept once.
                self.codes.insert(operator.clone(), ev.clone());
            }
            E::Consent(ask) => {
                self.consents.insert(ask.id, ev.clone());
            }
            E::ConsentResolved { id, .. } => {
                self.consents.remove(id);
            }
            E::Sharing {
                active: true,
                plugin,
                ..
            } => {
                self.sharing.insert(plugin.clone(), ev.clone());
            }
            E::Sharing {
                by_customer: true, ..
            } => self.sharing.clear(),
            E::Sharing { plugin, .. } => {
                self.sharing.remove(plugin);
            }
            E::Suspension { active, .. } => {
                self.suspension = active.then(|| ev.clone());
            }
            E::Ended { .. } => {
                self.ended = Some(ev.clone());
                self.consents.clear();
                self.sharing.clear();
                self.suspension = None;
            }
            E::Line { .. } | E::Chat { .. } | E::Notice { .. } => {
                if self.recent.len() == HISTORY {
                    self.recent.pop_front();
                }
                self.recent.push_back(ev.clone());
            }
            // Answers to one command: for whoever sent it.
            E::Refused { .. } => {}
        }
    }

    fn events(&self) -> Vec<CustomerEvent> {
        let mut out: Vec<CustomerEvent> = self.welcome.iter().cloned().collect();
        out.extend(self.state.iter().cloned());
        out.extend(self.codes.values().cloned());
        out.extend(self.recent.iter().cloned());
        out.extend(self.sharing.values().cloned());
        out.extend(self.suspension.iter().cloned());
        out.extend(self.consents.values().cloned());
        out.extend(self.ended.iter().cloned());
        out
    }
}

/// A window's view of the channel: what happened so far, then what comes.
pub struct Subscription {
    pub backlog: Vec<CustomerEvent>,
    pub events: broadcast::Receiver<CustomerEvent>,
}

/// The customer channel of one agent process.
pub struct Hub {
    snapshot: Mutex<Snapshot>,
    events: broadcast::Sender<CustomerEvent>,
    commands: mpsc::Sender<CommandRequest>,
    /// Where the events are also printed (the terminal), if anywhere.
    echo: Option<Arc<dyn CustomerUi>>,
}

impl Hub {
    /// A channel printing to `echo` too; the session reads the commands
    /// from the receiver.
    pub fn new(echo: Option<Arc<dyn CustomerUi>>) -> (Arc<Hub>, mpsc::Receiver<CommandRequest>) {
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let hub = Hub {
            snapshot: Mutex::new(Snapshot::default()),
            events: broadcast::channel(BROADCAST_CAPACITY).0,
            commands,
            echo,
        };
        (Arc::new(hub), rx)
    }

    fn snapshot(&self) -> MutexGuard<'_, Snapshot> {
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records and broadcasts `ev` (without printing it).
    pub fn publish(&self, ev: CustomerEvent) {
        let mut s = self.snapshot();
        s.record(&ev);
        // No window connected is fine.
        let _ = self.events.send(ev);
    }

    /// What a window connecting now must see, and the events after it.
    pub fn subscribe(&self) -> Subscription {
        let s = self.snapshot();
        Subscription {
            backlog: s.events(),
            events: self.events.subscribe(),
        }
    }

    /// How many windows (or socket clients) listen now.
    pub fn listeners(&self) -> usize {
        self.events.receiver_count()
    }

    /// Whether the session ended (a window may close).
    pub fn ended(&self) -> bool {
        self.snapshot().ended.is_some()
    }

    /// Hands `command` to the session and waits for its outcome.
    pub async fn command(&self, command: CustomerCommand) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        let req = CommandRequest { command, reply };
        if self.commands.send(req).await.is_err() {
            return Err("there is no session running".into());
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the session ended before carrying out the command".into()),
            Err(_) => Err(format!(
                "the session did not carry out the command within {} s",
                COMMAND_TIMEOUT.as_secs()
            )),
        }
    }
}

impl CustomerUi for Hub {
    fn show(&self, line: &str) {
        if let Some(e) = &self.echo {
            e.show(line);
        }
        self.publish(CustomerEvent::Line {
            text: line.to_string(),
        });
    }

    fn event(&self, ev: &CustomerEvent) {
        if let Some(e) = &self.echo {
            e.event(ev);
        }
        self.publish(ev.clone());
    }

    /// A window is connected, or the echo is someone's terminal.
    fn attended(&self) -> bool {
        self.listeners() > 0 || self.echo.as_ref().is_some_and(|e| e.attended())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Helper;
    use lifeline_protocol::Party;

    #[tokio::test]
    async fn a_late_window_sees_who_helps_and_what_is_open() {
        let (hub, mut rx) = Hub::new(None);
        hub.event(&CustomerEvent::Welcome {
            helper: Helper {
                name: "Alice".into(),
                title: "Support".into(),
                organisation: "Acme".into(),
            },
            ticket: "T-1".into(),
            rejoined: true,
            operator_present: true,
        });
        for i in 0..HISTORY + 5 {
            hub.show(&format!("line {i}"));
        }
        hub.event(&CustomerEvent::Chat {
            from: Party::Operator,
            name: "Alice".into(),
            text: "hi".into(),
        });
        for code in ["111 111", "123 456"] {
            hub.event(&CustomerEvent::Secured {
                operator: "Alice".into(),
                code: code.into(),
            });
        }
        let back = hub.subscribe().backlog;
        assert!(matches!(
            &back[0],
            CustomerEvent::Welcome { rejoined: true, .. }
        ));
        // The latest security code of each operator, once.
        assert!(matches!(
            &back[1],
            CustomerEvent::Secured { code, .. } if code == "123 456"
        ));
        assert_eq!(back.len(), 2 + HISTORY);
        // Commands go to the session, and its answer comes back.
        let h = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.command(CustomerCommand::End).await }
        });
        let req = rx.recv().await.unwrap();
        assert_eq!(req.command, CustomerCommand::End);
        req.reply.send(Err("no".into())).unwrap();
        assert_eq!(h.await.unwrap(), Err("no".into()));
        drop(rx);
        assert!(hub.command(CustomerCommand::End).await.is_err());
    }
}
