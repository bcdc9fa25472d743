//! The clipboard of a share (`clipboard.text`): the text of the display's
//! CLIPBOARD selection, read and replaced on the operator's behalf.
//!
//! Each share that uses the clipboard gets a [`Clipboard`]: a thread with
//! its own X connection and an unmapped window, which
//!
//! - reads: `ConvertSelection(CLIPBOARD, UTF8_STRING)` (then `STRING`)
//!   into a property of its window, waits at most [`READ_WAIT`] for the
//!   owner's `SelectionNotify`, and reads the property (at most
//!   [`MAX_CLIPBOARD_BYTES`]; an owner that sends the text in pieces, INCR,
//!   is refused with [`INCR_REFUSED`]). The answer is kept until XFixes
//!   says the clipboard changed owner, so that polling does not ask the
//!   owning application again and again;
//! - writes: takes ownership of CLIPBOARD with the text and serves
//!   `SelectionRequest`s for `TARGETS`, `UTF8_STRING`, `STRING` and `TEXT`
//!   (any other target is refused with property None) until another
//!   application copies (`SelectionClear`) or the share ends (the window,
//!   and with it the ownership, goes with the thread).
//!
//! Threat: the clipboard often holds passwords. The text is never logged,
//! reported or put into an error message; only its size is.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lifeline_runtime::HostError;
use lifeline_runtime::screen::MAX_CLIPBOARD_BYTES;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{self, ConnectionExt as _, SelectionEventMask};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, SelectionNotifyEvent,
    SelectionRequestEvent, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

use super::error::{ScreenError, XContext};

/// Longest a `clipboard-read` waits for the application that owns the
/// clipboard to hand its text over (`SelectionNotify`).
pub const READ_WAIT: Duration = Duration::from_secs(2);
/// How often the clipboard's thread looks for X events (requests for the
/// text it owns) between calls.
const POLL: Duration = Duration::from_millis(10);
/// How often a read looks for the owner's answer while it waits.
const ANSWER_POLL: Duration = Duration::from_millis(2);
/// The property of the agent's window that a read's text is put into.
pub const PROPERTY: &str = "LIFELINE_CLIPBOARD";
/// Why a text sent in pieces (INCR) is refused.
pub const INCR_REFUSED: &str = "clipboard text larger than the X server carries at once (sent in pieces, INCR) is not supported";
/// Bytes of a `ChangeProperty` request besides its data.
const CHANGE_PROPERTY_HEADER: usize = 24;

/// A request to the clipboard's thread.
enum Request {
    Read(mpsc::Sender<Result<Option<String>, HostError>>),
    Write(String, mpsc::Sender<Result<(), HostError>>),
}

/// A share's clipboard: its thread, connection and window. Dropping it
/// gives the clipboard up (if the agent holds it) and ends the thread.
pub struct Clipboard {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Clipboard {
    /// Connects to `display` and starts the clipboard's thread.
    pub fn start(display: &str) -> Result<Clipboard, ScreenError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel::<Request>();
        let name = display.to_string();
        let thread = std::thread::Builder::new()
            .name("screen-clipboard".into())
            .spawn(move || match Selection::open(&name) {
                Ok(mut s) => {
                    let _ = ready_tx.send(Ok(()));
                    s.serve(&rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| ScreenError::Clipboard(format!("cannot start its thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Clipboard {
                tx: Some(tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(ScreenError::Clipboard(
                "its thread ended unexpectedly".into(),
            )),
        }
    }

    /// The clipboard's text; `None` when it is empty or holds no text.
    pub fn read(&self) -> Result<Option<String>, HostError> {
        let (tx, rx) = mpsc::channel();
        self.ask(Request::Read(tx))?;
        rx.recv().map_err(|_| gone())?
    }

    /// Puts `text` on the clipboard; the agent holds it until someone else
    /// copies or the share ends.
    pub fn write(&self, text: String) -> Result<(), HostError> {
        let (tx, rx) = mpsc::channel();
        self.ask(Request::Write(text, tx))?;
        rx.recv().map_err(|_| gone())?
    }

    fn ask(&self, req: Request) -> Result<(), HostError> {
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send(req)
            .map_err(|_| gone())
    }
}

fn gone() -> HostError {
    HostError::Failed("the clipboard's connection to the X display is gone".into())
}

impl Drop for Clipboard {
    /// Ends the thread, which destroys its window (the X server then gives
    /// the clipboard up if the agent held it) and waits for the server.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The atoms the clipboard speaks.
struct Atoms {
    clipboard: Atom,
    targets: Atom,
    utf8: Atom,
    text: Atom,
    incr: Atom,
    property: Atom,
}

/// A read's answer as it is kept until the clipboard changes owner.
type Answer = Result<Option<String>, HostError>;

/// The thread's side: the connection, the window, what the agent owns.
struct Selection {
    conn: RustConnection,
    display: String,
    win: Window,
    atoms: Atoms,
    /// The text the agent holds the clipboard with, until another
    /// application copies.
    owned: Option<String>,
    /// The last read's answer, while the clipboard's owner has not changed
    /// since (XFixes tells); `None`: read again.
    cached: Option<Answer>,
    /// Whether XFixes tells about owner changes (else nothing is kept).
    watching: bool,
}

impl Selection {
    fn open(display: &str) -> Result<Selection, ScreenError> {
        let (conn, screen_num) = x11rb::connect(Some(display)).x("connect", display)?;
        let root = conn.setup().roots[screen_num].root;
        let win = conn.generate_id().x("ids", display)?;
        conn.create_window(
            0,
            win,
            root,
            -10,
            -10,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )
        .x("clipboard window", display)?;
        let intern = |name: &str| -> Result<Atom, ScreenError> {
            Ok(conn
                .intern_atom(false, name.as_bytes())
                .x("atoms", display)?
                .reply()
                .x("atoms", display)?
                .atom)
        };
        let atoms = Atoms {
            clipboard: intern("CLIPBOARD")?,
            targets: intern("TARGETS")?,
            utf8: intern("UTF8_STRING")?,
            text: intern("TEXT")?,
            incr: intern("INCR")?,
            property: intern(PROPERTY)?,
        };
        let watching = watch_owner(&conn, win, atoms.clipboard);
        conn.flush().x("clipboard window", display)?;
        Ok(Selection {
            conn,
            display: display.to_string(),
            win,
            atoms,
            owned: None,
            cached: None,
            watching,
        })
    }

    /// Answers calls and the other applications' requests until the
    /// [`Clipboard`] is dropped; then destroys the window.
    fn serve(&mut self, rx: &mpsc::Receiver<Request>) {
        loop {
            match rx.recv_timeout(POLL) {
                Ok(Request::Read(reply)) => {
                    let _ = reply.send(self.read());
                }
                Ok(Request::Write(text, reply)) => {
                    let _ = reply.send(self.write(text));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.pump() {
                        tracing::warn!("the screen clipboard: {e}");
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = self.conn.destroy_window(self.win);
        let _ = self.conn.get_input_focus().map(|c| c.reply());
    }

    fn x_failed(&self, what: &'static str, e: impl std::fmt::Display) -> HostError {
        ScreenError::X {
            what,
            display: self.display.clone(),
            reason: e.to_string(),
        }
        .into()
    }

    /// Handles every event waiting.
    fn pump(&mut self) -> Result<(), HostError> {
        while let Some(ev) = self
            .conn
            .poll_for_event()
            .map_err(|e| self.x_failed("clipboard events", e))?
        {
            self.handle(ev);
        }
        Ok(())
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::SelectionRequest(req) => self.answer(&req),
            Event::SelectionClear(c) if c.selection == self.atoms.clipboard => {
                self.owned = None;
            }
            Event::XfixesSelectionNotify(n) if n.selection == self.atoms.clipboard => {
                self.cached = None;
            }
            _ => {}
        }
    }

    fn read(&mut self) -> Answer {
        self.pump()?;
        if let Some(text) = &self.owned {
            return Ok(Some(text.clone()));
        }
        if let Some(answer) = &self.cached {
            return answer.clone();
        }
        let answer = self.convert_any();
        if self.watching {
            self.cached = Some(answer.clone());
        }
        answer
    }

    /// The clipboard's text as UTF-8, else as Latin-1 (`STRING`).
    fn convert_any(&mut self) -> Answer {
        let owner = self
            .conn
            .get_selection_owner(self.atoms.clipboard)
            .map_err(|e| self.x_failed("clipboard owner", e))?
            .reply()
            .map_err(|e| self.x_failed("clipboard owner", e))?
            .owner;
        if owner == NONE {
            return Ok(None);
        }
        match self.convert(self.atoms.utf8)? {
            Some(text) => Ok(Some(text)),
            None => self.convert(AtomEnum::STRING.into()),
        }
    }

    /// Asks the owner for `target` and reads its answer; `None` when it
    /// refused, or had nothing.
    fn convert(&mut self, target: Atom) -> Answer {
        let (win, a) = (self.win, &self.atoms);
        let (clipboard, property) = (a.clipboard, a.property);
        let sent = self
            .conn
            .delete_property(win, property)
            .and_then(|_| {
                self.conn
                    .convert_selection(win, clipboard, target, property, CURRENT_TIME)
            })
            .and_then(|_| self.conn.flush());
        sent.map_err(|e| self.x_failed("clipboard request", e))?;
        let deadline = Instant::now() + READ_WAIT;
        loop {
            let ev = self
                .conn
                .poll_for_event()
                .map_err(|e| self.x_failed("clipboard events", e))?;
            match ev {
                Some(Event::SelectionNotify(n)) if self.answers(&n, target) => {
                    if n.property == NONE {
                        return Ok(None);
                    }
                    return self.take_text(target);
                }
                Some(other) => self.handle(other),
                None if Instant::now() >= deadline => {
                    return Err(HostError::Failed(format!(
                        "the application holding the clipboard did not hand its text over within {} s",
                        READ_WAIT.as_secs()
                    )));
                }
                None => std::thread::sleep(ANSWER_POLL),
            }
        }
    }

    fn answers(&self, n: &SelectionNotifyEvent, target: Atom) -> bool {
        n.requestor == self.win && n.selection == self.atoms.clipboard && n.target == target
    }

    /// Reads (and removes) the answer from the window's property.
    fn take_text(&mut self, target: Atom) -> Answer {
        let words = u32::try_from(MAX_CLIPBOARD_BYTES / 4).unwrap_or(u32::MAX);
        let reply = self
            .conn
            .get_property(
                false,
                self.win,
                self.atoms.property,
                AtomEnum::ANY,
                0,
                words,
            )
            .map_err(|e| self.x_failed("clipboard text", e))?
            .reply()
            .map_err(|e| self.x_failed("clipboard text", e))?;
        if reply.type_ == self.atoms.incr {
            // Not deleted: deleting would start the transfer.
            return Err(HostError::Failed(INCR_REFUSED.into()));
        }
        let _ = self.conn.delete_property(self.win, self.atoms.property);
        let _ = self.conn.flush();
        if reply.bytes_after > 0 {
            return Err(HostError::Limit(format!(
                "the clipboard holds more than {MAX_CLIPBOARD_BYTES} bytes of text; at most {MAX_CLIPBOARD_BYTES} bytes"
            )));
        }
        if reply.format != 8 || reply.value.is_empty() {
            return Ok(None);
        }
        let text = if target == self.atoms.utf8 {
            String::from_utf8_lossy(&reply.value).into_owned()
        } else {
            reply.value.iter().map(|b| char::from(*b)).collect()
        };
        if text.len() > MAX_CLIPBOARD_BYTES {
            // Latin-1 grows in UTF-8.
            return Err(HostError::Limit(format!(
                "the clipboard's text takes {} bytes as UTF-8; at most {MAX_CLIPBOARD_BYTES} bytes",
                text.len()
            )));
        }
        Ok(Some(text))
    }

    fn write(&mut self, text: String) -> Result<(), HostError> {
        self.pump()?;
        let clipboard = self.atoms.clipboard;
        self.conn
            .set_selection_owner(self.win, clipboard, CURRENT_TIME)
            .map_err(|e| self.x_failed("clipboard owner", e))?;
        let owner = self
            .conn
            .get_selection_owner(clipboard)
            .map_err(|e| self.x_failed("clipboard owner", e))?
            .reply()
            .map_err(|e| self.x_failed("clipboard owner", e))?
            .owner;
        if owner != self.win {
            return Err(HostError::Failed(format!(
                "the X server on display {} did not give the agent the clipboard",
                self.display
            )));
        }
        self.owned = Some(text);
        self.cached = None;
        Ok(())
    }

    /// Answers another application's request for the text the agent owns.
    fn answer(&self, req: &SelectionRequestEvent) {
        // An old requestor names no property: the target is the property.
        let property = if req.property == NONE {
            req.target
        } else {
            req.property
        };
        let given = match (&self.owned, req.selection == self.atoms.clipboard) {
            (Some(text), true) => self.give(req.requestor, property, req.target, text),
            _ => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: x11rb::protocol::xproto::SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: req.time,
            requestor: req.requestor,
            selection: req.selection,
            target: req.target,
            property: if given { property } else { NONE },
        };
        let _ = self
            .conn
            .send_event(false, req.requestor, EventMask::NO_EVENT, notify);
        let _ = self.conn.flush();
    }

    /// Puts `text` as `target` into the requestor's property; false for a
    /// target the agent does not offer (or a text too large to send).
    fn give(&self, requestor: Window, property: Atom, target: Atom, text: &str) -> bool {
        let a = &self.atoms;
        let string: Atom = AtomEnum::STRING.into();
        if target == a.targets {
            let offered = [a.targets, a.utf8, string, a.text];
            return self
                .conn
                .change_property32(
                    PropMode::REPLACE,
                    requestor,
                    property,
                    AtomEnum::ATOM,
                    &offered,
                )
                .is_ok();
        }
        let (kind, bytes) = if target == a.utf8 || target == a.text {
            (a.utf8, text.as_bytes().to_vec())
        } else if target == string {
            (string, latin1(text))
        } else {
            return false;
        };
        if bytes.len() + CHANGE_PROPERTY_HEADER > self.conn.maximum_request_bytes() {
            tracing::warn!(
                "the screen clipboard: {} bytes of text are more than display {} takes at once; the request is refused",
                bytes.len(),
                self.display
            );
            return false;
        }
        self.conn
            .change_property8(PropMode::REPLACE, requestor, property, kind, &bytes)
            .is_ok()
    }
}

/// Asks XFixes to tell `win` whenever the clipboard changes owner; false
/// when the display has no XFixes (then nothing is kept between reads).
fn watch_owner(conn: &RustConnection, win: Window, clipboard: Atom) -> bool {
    let has = conn
        .extension_information(xfixes::X11_EXTENSION_NAME)
        .ok()
        .flatten()
        .is_some();
    if !has {
        return false;
    }
    let version = conn
        .xfixes_query_version(5, 0)
        .ok()
        .and_then(|c| c.reply().ok());
    if version.is_none() {
        return false;
    }
    let mask = SelectionEventMask::SET_SELECTION_OWNER
        | SelectionEventMask::SELECTION_WINDOW_DESTROY
        | SelectionEventMask::SELECTION_CLIENT_CLOSE;
    conn.xfixes_select_selection_input(win, clipboard, mask)
        .is_ok()
}

/// `text` as Latin-1 (`STRING`): what Latin-1 cannot say becomes `?`.
pub fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_keeps_what_it_can_say() {
        assert_eq!(latin1("grüße €"), b"gr\xfc\xdfe ?");
    }
}
