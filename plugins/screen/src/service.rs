//! The plugin's commands (`share`, `stop`, `status`) and session events,
//! over at most one sharing at a time.

use lifeline_screen_format::{MonitorChoice, Quality};

use crate::api::{Host, ScreenInfo};
use crate::share::clipboard::Access;
use crate::share::{shared_area, Control, Options, Sharing, Stop};

/// The `monitor` argument, before the display is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorPick {
    All,
    Index(u8),
    /// A monitor's RandR name ("DP-1").
    Name(String),
}

impl MonitorPick {
    /// "all", an index, or a monitor's name; `None` when empty.
    pub fn parse(arg: &str) -> Option<MonitorPick> {
        let arg = arg.trim();
        if arg.is_empty() {
            return None;
        }
        if arg.eq_ignore_ascii_case("all") {
            return Some(MonitorPick::All);
        }
        Some(match arg.parse::<u8>() {
            Ok(i) if i != u8::MAX => MonitorPick::Index(i),
            _ => MonitorPick::Name(arg.to_string()),
        })
    }

    /// The monitor of `info` this names.
    pub fn resolve(&self, info: &ScreenInfo) -> Result<MonitorChoice, String> {
        match self {
            MonitorPick::All => Ok(MonitorChoice::All),
            MonitorPick::Index(i) => Ok(MonitorChoice::Index(*i)),
            MonitorPick::Name(name) => info
                .monitors
                .iter()
                .position(|m| m.name == *name)
                .and_then(|i| u8::try_from(i).ok())
                .map(MonitorChoice::Index)
                .ok_or_else(|| {
                    format!(
                        "there is no monitor {name:?}: display {} has {}",
                        info.display,
                        crate::share::monitor_list(info)
                    )
                }),
        }
    }
}

/// The `quality` argument: "auto" or "lossless"; `None` when empty.
pub fn parse_quality(arg: &str) -> Result<Option<Quality>, String> {
    match arg.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "auto" => Ok(Some(Quality::Auto)),
        "lossless" => Ok(Some(Quality::Lossless)),
        other => Err(format!(
            "quality {other:?} is neither \"auto\" nor \"lossless\""
        )),
    }
}

/// The plugin's state in its long-lived instance.
#[derive(Default)]
pub struct Service {
    sharing: Option<Sharing>,
}

impl Service {
    pub const fn new() -> Service {
        Service { sharing: None }
    }

    pub fn is_sharing(&self) -> bool {
        self.sharing.is_some()
    }

    /// An operator command; `args` as text, in the manifest's order.
    pub fn run(
        &mut self,
        host: &mut dyn Host,
        command: &str,
        args: &[String],
    ) -> Result<String, String> {
        let arg = |i: usize| args.get(i).map_or("", String::as_str);
        match command {
            "share" => self.share(host, MonitorPick::parse(arg(0)), parse_quality(arg(1))?),
            "stop" => Ok(self.stop(host)),
            "status" => Ok(self.status(host)),
            other => Err(format!(
                "unknown command {other:?}: the screen plugin has share, stop and status"
            )),
        }
    }

    /// Starts sharing. While sharing, the share starts over on a new
    /// stream with the arguments given (an empty argument keeps its
    /// setting): an operator client that attached or reconnected since can
    /// only follow a stream it sees opened.
    fn share(
        &mut self,
        host: &mut dyn Host,
        monitor: Option<MonitorPick>,
        quality: Option<Quality>,
    ) -> Result<String, String> {
        let previous = self.sharing.as_ref().map(|s| s.options());
        if let (Some(m), Some(s)) = (monitor.as_ref(), &self.sharing) {
            // A wrong argument leaves the share in progress as it is.
            shared_area(s.info(), m.resolve(s.info())?)?;
        }
        if previous.is_some() {
            self.end(
                host,
                Stop::Ended("shared again by the operator: a new stream follows".into()),
            );
        }
        let options = |info: &ScreenInfo| {
            Ok(Options {
                monitor: match (monitor, previous) {
                    (Some(m), _) => m.clone().resolve(info)?,
                    (None, Some(p)) => p.monitor,
                    (None, None) => MonitorPick::All.resolve(info)?,
                },
                quality: quality
                    .or(previous.map(|p| p.quality))
                    .unwrap_or(Quality::Auto),
            })
        };
        let s = Sharing::start(host, options)?;
        let line = format!("sharing the screen: {}", s.summary());
        self.sharing = Some(s);
        Ok(line)
    }

    fn stop(&mut self, host: &mut dyn Host) -> String {
        if !self.is_sharing() {
            return "not sharing the screen".into();
        }
        self.end(host, Stop::Ended("stopped by the operator".into()));
        "screen sharing stopped".into()
    }

    fn status(&mut self, host: &mut dyn Host) -> String {
        let Some(s) = &self.sharing else {
            return "not sharing the screen".into();
        };
        let st = s.stats();
        let control = match s.control() {
            Control::NotAsked => "not asked yet",
            Control::Allowed => "allowed",
            Control::Refused => "refused by the customer",
        };
        let clipboard = match s.clipboard_access() {
            Access::NotAsked => "not asked yet",
            Access::Allowed => "shared",
            Access::Refused => "refused by the customer",
        };
        format!(
            "sharing for {} s: {}; {} updates ({} tiles, {} JPEG), {:.1} MiB sent, {} ticks skipped for bandwidth; control {control}; clipboard {clipboard}",
            s.elapsed_us(host) / 1_000_000,
            s.summary(),
            st.updates,
            st.tiles,
            st.jpeg_tiles,
            st.bytes as f64 / f64::from(1 << 20),
            s.skipped(),
        )
    }

    /// A `timer` event.
    pub fn on_timer(&mut self, host: &mut dyn Host, id: u32) {
        self.guard(host, |s, h| s.on_timer(h, id));
    }

    /// A `stream-input` event.
    pub fn on_stream_input(&mut self, host: &mut dyn Host, stream: u32) {
        self.guard(host, |s, h| s.on_input(h, stream));
    }

    /// Ends sharing, if any (the session ends, the plugin stops).
    pub fn end(&mut self, host: &mut dyn Host, why: Stop) {
        if let Some(mut s) = self.sharing.take() {
            s.finish(host, &why);
        }
    }

    /// Runs `f` on the sharing; when it stops, ends it.
    fn guard(
        &mut self,
        host: &mut dyn Host,
        f: impl FnOnce(&mut Sharing, &mut dyn Host) -> Result<(), Stop>,
    ) {
        let Some(s) = self.sharing.as_mut() else {
            return;
        };
        if let Err(why) = f(s, host) {
            self.end(host, why);
        }
    }
}
