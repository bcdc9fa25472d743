//! Why a screen call failed, as the plugin (and through it the operator)
//! reads it: what went wrong, and on which X display.

use lifeline_runtime::HostError;
use lifeline_runtime::screen::NOT_SUPPORTED;

/// Why a screen call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    /// This host has no display that can be shared, and why.
    #[error("{NOT_SUPPORTED}: {0}")]
    NotSupported(String),
    /// An X request failed.
    #[error("{what} on X display {display}: {reason}")]
    X {
        what: &'static str,
        display: String,
        reason: String,
    },
    /// An area of `screen-read` not on the display.
    #[error(
        "screen-read area {x},{y} {width}x{height} is not on the display ({display_width}x{display_height}); call screen-changes for the current layout"
    )]
    Outside {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        display_width: u32,
        display_height: u32,
    },
    /// The indicator could not be shown: no share without it.
    #[error("screen sharing needs the sharing indicator on the customer's display: {0}")]
    Indicator(String),
    /// The session ended: no share opens.
    #[error("the session has ended: the screen is not shared any more")]
    Ended,
    /// An input event that cannot be injected (and why).
    #[error("input-send: {0}")]
    Input(String),
    /// The share's clipboard could not be set up (and why).
    #[error("the clipboard: {0}")]
    Clipboard(String),
}

impl From<ScreenError> for HostError {
    fn from(e: ScreenError) -> HostError {
        HostError::Failed(e.to_string())
    }
}

/// Turns any X error into a [`ScreenError::X`] naming what and where.
pub trait XContext<T> {
    fn x(self, what: &'static str, display: &str) -> Result<T, ScreenError>;
}

impl<T, E: std::fmt::Display> XContext<T> for Result<T, E> {
    fn x(self, what: &'static str, display: &str) -> Result<T, ScreenError> {
        self.map_err(|e| ScreenError::X {
            what,
            display: display.to_string(),
            reason: e.to_string(),
        })
    }
}
