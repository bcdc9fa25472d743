//! The operator's side of a share: input frames decoded and injected in
//! batches, the commands among them (refresh, sync, settings, control,
//! the clipboard), and the keys and buttons held down, released when
//! sharing ends.

use lifeline_screen_format::{decode_inputs, Input, Level, Message};

use super::{Control, Options, Sharing, Stop, CONTROL_REFUSED, MAX_INPUT_EVENTS};
use crate::api::{
    error_text, ButtonChange, Host, HostError, InputEvent, KeyChange, PointerPosition,
};

/// Keys and buttons the operator holds down, released when sharing ends.
#[derive(Debug, Default, Clone)]
pub(super) struct Held {
    keys: Vec<u32>,
    buttons: Vec<u8>,
}

impl Held {
    pub(super) fn track(&mut self, events: &[InputEvent]) {
        fn set<T: PartialEq>(v: &mut Vec<T>, item: T, pressed: bool) {
            v.retain(|i| *i != item);
            if pressed {
                v.push(item);
            }
        }
        for e in events {
            match e {
                InputEvent::Key(k) => set(&mut self.keys, k.keysym, k.pressed),
                InputEvent::PointerButton(b) => set(&mut self.buttons, b.button, b.pressed),
                InputEvent::PointerMove(_) => {}
            }
        }
    }

    pub(super) fn releases(&mut self) -> Vec<InputEvent> {
        let keys = self.keys.drain(..).map(|keysym| {
            InputEvent::Key(KeyChange {
                keysym,
                pressed: false,
            })
        });
        let buttons = self.buttons.drain(..).map(|button| {
            InputEvent::PointerButton(ButtonChange {
                button,
                pressed: false,
            })
        });
        keys.chain(buttons).collect()
    }
}

impl Sharing {
    /// The operator sent frames on the stream: reads them all and acts.
    pub fn on_input(&mut self, host: &mut dyn Host, stream: u32) -> Result<(), Stop> {
        if stream != self.stream {
            return Ok(());
        }
        let mut events = Vec::new();
        while let Some(frame) = host.stream_recv(self.stream, 0).map_err(Stop::stream)? {
            match decode_inputs(&frame) {
                Ok(inputs) => {
                    for input in inputs {
                        self.input(host, input, &mut events)?;
                    }
                }
                Err(e) => {
                    self.flush(host, &mut events)?;
                    let text = e.to_string();
                    self.status(host, Level::Error, &text)?;
                    let _ = host.report_line(&format!(
                        "screen: the operator side sent a bad frame: {text}"
                    ));
                }
            }
        }
        self.flush(host, &mut events)
    }

    /// One input: pointer and keys are batched in `events` (in display
    /// coordinates); anything else sends the batch first.
    fn input(
        &mut self,
        host: &mut dyn Host,
        input: Input,
        events: &mut Vec<InputEvent>,
    ) -> Result<(), Stop> {
        let event = match input {
            Input::PointerMove { x, y } => {
                let (x, y) = self.grid.area().point_inside(x, y);
                InputEvent::PointerMove(PointerPosition { x, y })
            }
            Input::Button { button, pressed } => {
                InputEvent::PointerButton(ButtonChange { button, pressed })
            }
            Input::Key { keysym, pressed } => InputEvent::Key(KeyChange { keysym, pressed }),
            other => {
                self.flush(host, events)?;
                return self.command(host, other);
            }
        };
        if self.control != Control::Refused {
            events.push(event);
        }
        Ok(())
    }

    /// An input that is not for the display.
    fn command(&mut self, host: &mut dyn Host, input: Input) -> Result<(), Stop> {
        match input {
            Input::Refresh => {
                self.refresh();
                Ok(())
            }
            Input::Sync { token } => self.sync(host, token),
            Input::Settings {
                quality,
                monitor,
                max_fps,
            } => {
                self.pacer.set_max_fps(max_fps);
                self.apply(host, Options { monitor, quality })
            }
            Input::RequestControl => self.request_control(host),
            Input::Clipboard { text } => self.write_clipboard(host, &text),
            Input::RequestClipboard => self.request_clipboard(host),
            Input::PointerMove { .. } | Input::Button { .. } | Input::Key { .. } => Ok(()),
        }
    }

    /// Forget what the operator holds: the next frame sends everything.
    pub fn refresh(&mut self) {
        self.memory.forget_all();
        self.cursor_at = None;
        self.resend_shape = true;
    }

    /// Captures now, whatever the credit, and answers with the token.
    fn sync(&mut self, host: &mut dyn Host, token: u32) -> Result<(), Stop> {
        let credit = host.stream_credit(self.stream).map_err(Stop::stream)?;
        let frame = self.pacer.begin_forced(credit);
        self.capture(host, frame)?;
        self.cursor(host)?;
        self.send(host, &Message::Sync { token }).map(drop)
    }

    /// Asks the customer for control (an empty `input-send`).
    fn request_control(&mut self, host: &mut dyn Host) -> Result<(), Stop> {
        match host.input_send(&[]) {
            Ok(()) => {
                self.control = Control::Allowed;
                self.input_problem = None;
                self.status(host, Level::Info, "control allowed")
            }
            Err(HostError::Denied(_)) => self.control_refused(host),
            Err(e) => self.status(host, Level::Warning, error_text(&e)),
        }
    }

    fn control_refused(&mut self, host: &mut dyn Host) -> Result<(), Stop> {
        self.control = Control::Refused;
        let _ = host.report_line(&format!("screen: {CONTROL_REFUSED}"));
        self.status(host, Level::Warning, CONTROL_REFUSED)
    }

    /// Injects the batched input events, at most [`MAX_INPUT_EVENTS`] a call.
    fn flush(&mut self, host: &mut dyn Host, events: &mut Vec<InputEvent>) -> Result<(), Stop> {
        let batch = std::mem::take(events);
        for chunk in batch.chunks(MAX_INPUT_EVENTS) {
            if let Err(e) = host.input_send(chunk) {
                return self.input_failed(host, e);
            }
            self.control = Control::Allowed;
            self.input_problem = None;
            self.held.track(chunk);
        }
        Ok(())
    }

    /// `input-send` refused: said to the operator once.
    fn input_failed(&mut self, host: &mut dyn Host, e: HostError) -> Result<(), Stop> {
        match e {
            HostError::Denied(_) if self.control == Control::Refused => Ok(()),
            HostError::Denied(_) => self.control_refused(host),
            other => {
                let text = error_text(&other).to_string();
                if self.input_problem.as_deref() == Some(text.as_str()) {
                    return Ok(());
                }
                self.status(host, Level::Warning, &text)?;
                self.input_problem = Some(text);
                Ok(())
            }
        }
    }
}
