//! A share's clipboard against a real X server (Xvfb): the operator's text
//! pasted by another application in every form offered, the customer's
//! text read from another application's selection, ownership given up
//! when someone copies and when the share ends, INCR refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lifeline_runtime::HostError;
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode,
    SELECTION_NOTIFY_EVENT, SelectionNotifyEvent, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

use super::clipboard::INCR_REFUSED;
use super::tests::{PLUGIN, eventually, fixture};

/// Bound on a paste by the test's application.
const PASTE_WAIT: Duration = Duration::from_secs(5);

/// A client of the test's own with a window.
struct App {
    conn: RustConnection,
    win: Window,
}

impl App {
    fn new(display: &str) -> App {
        let (conn, n) = x11rb::connect(Some(display)).unwrap();
        let root = conn.setup().roots[n].root;
        let win = conn.generate_id().unwrap();
        conn.create_window(
            0,
            win,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new(),
        )
        .unwrap();
        conn.flush().unwrap();
        App { conn, win }
    }

    fn atom(&self, name: &str) -> Atom {
        let c = self.conn.intern_atom(false, name.as_bytes()).unwrap();
        c.reply().unwrap().atom
    }

    fn atom_name(&self, atom: Atom) -> String {
        let r = self.conn.get_atom_name(atom).unwrap().reply().unwrap();
        String::from_utf8(r.name).unwrap()
    }

    /// Pastes the clipboard as `target`: its type and bytes, or `None`
    /// when the owner refused.
    fn paste(&self, target: &str) -> Option<(String, Vec<u8>)> {
        let (clipboard, target, prop) = (self.atom("CLIPBOARD"), self.atom(target), self.atom("P"));
        self.conn
            .convert_selection(self.win, clipboard, target, prop, CURRENT_TIME)
            .unwrap();
        self.conn.flush().unwrap();
        let deadline = Instant::now() + PASTE_WAIT;
        loop {
            assert!(Instant::now() < deadline, "no answer to the paste");
            match self.conn.poll_for_event().unwrap() {
                Some(Event::SelectionNotify(n)) if n.target == target => {
                    if n.property == NONE {
                        return None;
                    }
                    let r = self
                        .conn
                        .get_property(true, self.win, prop, AtomEnum::ANY, 0, 1 << 20)
                        .unwrap()
                        .reply()
                        .unwrap();
                    return Some((self.atom_name(r.type_), r.value));
                }
                Some(_) => {}
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn owner(&self) -> Window {
        let c = self.conn.get_selection_owner(self.atom("CLIPBOARD"));
        c.unwrap().reply().unwrap().owner
    }
}

/// How another application offers its clipboard.
#[derive(Clone)]
enum Offer {
    /// `UTF8_STRING`.
    Utf8(String),
    /// `STRING` only (Latin-1 bytes).
    Latin1(Vec<u8>),
    /// In pieces: `INCR` with this size.
    Incr(u32),
}

/// Another application holding the clipboard, on a thread, until dropped.
struct Owner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Owner {
    fn start(display: &str, offer: Offer) -> Owner {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (display, flag) = (display.to_string(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let app = App::new(&display);
            let clipboard = app.atom("CLIPBOARD");
            app.conn
                .set_selection_owner(app.win, clipboard, CURRENT_TIME)
                .unwrap();
            assert_eq!(app.owner(), app.win);
            ready_tx.send(()).unwrap();
            while !flag.load(Ordering::Relaxed) {
                match app.conn.poll_for_event().unwrap() {
                    Some(Event::SelectionRequest(r)) => {
                        let given = give(&app, r.requestor, r.property, r.target, &offer);
                        let n = SelectionNotifyEvent {
                            response_type: SELECTION_NOTIFY_EVENT,
                            sequence: 0,
                            time: r.time,
                            requestor: r.requestor,
                            selection: r.selection,
                            target: r.target,
                            property: if given { r.property } else { NONE },
                        };
                        app.conn
                            .send_event(false, r.requestor, EventMask::NO_EVENT, n)
                            .unwrap();
                        app.conn.flush().unwrap();
                    }
                    Some(_) => {}
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ready_rx.recv().unwrap();
        Owner {
            stop,
            thread: Some(thread),
        }
    }
}

fn give(app: &App, to: Window, prop: Atom, target: Atom, offer: &Offer) -> bool {
    let c = &app.conn;
    match offer {
        Offer::Utf8(t) if target == app.atom("UTF8_STRING") => {
            c.change_property8(PropMode::REPLACE, to, prop, target, t.as_bytes())
                .unwrap();
        }
        Offer::Latin1(b) if target == Atom::from(AtomEnum::STRING) => {
            c.change_property8(PropMode::REPLACE, to, prop, target, b)
                .unwrap();
        }
        Offer::Incr(size) => {
            c.change_property32(PropMode::REPLACE, to, prop, app.atom("INCR"), &[*size])
                .unwrap();
        }
        _ => return false,
    }
    true
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

#[test]
fn the_operators_text_is_pasted_in_every_offered_form_until_someone_copies() {
    let f = fixture();
    let text = "grüße vom Operator";
    let denied = f.screen.clipboard_write(PLUGIN, text);
    assert!(matches!(denied, Err(HostError::Denied(_))), "{denied:?}");
    f.open();
    f.screen.clipboard_write(PLUGIN, text).unwrap();
    let app = App::new(&f.x.display);
    let utf8 = Some(("UTF8_STRING".to_string(), text.as_bytes().to_vec()));
    assert_eq!(app.paste("UTF8_STRING"), utf8);
    assert_eq!(app.paste("TEXT"), utf8);
    let latin1 = b"gr\xfc\xdfe vom Operator".to_vec();
    assert_eq!(app.paste("STRING"), Some(("STRING".into(), latin1)));
    let (kind, atoms) = app.paste("TARGETS").expect("targets");
    assert_eq!(kind, "ATOM");
    let names: Vec<String> = atoms
        .chunks_exact(4)
        .map(|a| app.atom_name(u32::from_ne_bytes([a[0], a[1], a[2], a[3]])))
        .collect();
    assert_eq!(names, ["TARGETS", "UTF8_STRING", "STRING", "TEXT"]);
    assert_eq!(app.paste("image/png"), None, "refused");
    assert_eq!(f.screen.clipboard_read(PLUGIN), Ok(Some(text.to_string())));
    f.screen.clipboard_write(PLUGIN, "second").unwrap();
    assert_eq!(f.events.reported("clipboard replaced"), 1, "once a share");
    assert_eq!(f.events.reported("clipboard shared"), 1);

    // Someone else copies: the agent lets go and reads theirs.
    let other = Owner::start(&f.x.display, Offer::Utf8("the customer's".into()));
    eventually("the customer's text", || {
        f.screen.clipboard_read(PLUGIN) == Ok(Some("the customer's".into()))
    });
    drop(other);
    eventually("an empty clipboard", || {
        f.screen.clipboard_read(PLUGIN) == Ok(None)
    });

    // The share ends: so does the agent's hold on the clipboard.
    f.screen.clipboard_write(PLUGIN, "last").unwrap();
    assert_ne!(app.owner(), NONE);
    f.screen.close(PLUGIN);
    assert_eq!(app.owner(), NONE, "given up with the share");
    let denied = f.screen.clipboard_read(PLUGIN);
    assert!(matches!(denied, Err(HostError::Denied(_))), "{denied:?}");
    let reports = super::lock(&f.events.reports);
    let customer = super::lock(&f.events.customer);
    for line in reports.iter().map(|r| &r.2).chain(customer.iter()) {
        for secret in [text, "second", "last", "the customer's"] {
            assert!(!line.contains(secret), "{line:?} shows the clipboard");
        }
    }
}

#[test]
fn the_customers_text_is_read_as_utf8_or_latin1_and_pieces_are_refused() {
    let f = fixture();
    f.open();
    assert_eq!(f.screen.clipboard_read(PLUGIN), Ok(None), "nobody copied");
    let text = "a line of the customer's\nand ünïcode";
    let owner = Owner::start(&f.x.display, Offer::Utf8(text.into()));
    // XFixes tells the agent's connection of the new owner (asynchronously).
    eventually("the customer's text", || {
        f.screen.clipboard_read(PLUGIN) == Ok(Some(text.into()))
    });
    assert_eq!(f.screen.clipboard_read(PLUGIN), Ok(Some(text.into())));
    assert_eq!(f.events.reported("clipboard shared"), 1);
    assert!(
        super::lock(&f.events.customer)
            .iter()
            .any(|l| l.contains("now receives the text you copy")),
    );
    drop(owner);
    let old = Owner::start(&f.x.display, Offer::Latin1(b"caf\xe9".to_vec()));
    eventually("the Latin-1 text", || {
        f.screen.clipboard_read(PLUGIN) == Ok(Some("café".into()))
    });
    drop(old);
    let _big = Owner::start(&f.x.display, Offer::Incr(4 << 20));
    eventually("INCR refused", || {
        f.screen.clipboard_read(PLUGIN) == Err(HostError::Failed(INCR_REFUSED.into()))
    });
}
