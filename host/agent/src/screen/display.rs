//! Which X display the agent shares (`[screen] display`), or why none.

use crate::config::machine::Display;

/// Why there is nothing to share when the agent runs in a Wayland session
/// without an X display.
pub const WAYLAND: &str = "no X11 display: Wayland sessions are not supported";
/// Why there is nothing to share without any display.
pub const NO_DISPLAY: &str = "this agent has no display";
/// Why there is nothing to share when the admin turned it off.
pub const TURNED_OFF: &str =
    "this agent has no display (screen sharing is off: [screen] display = \"none\")";

/// The display named by `setting`, with `$DISPLAY` and `$WAYLAND_DISPLAY`
/// of the agent's environment; `Err`: why there is none.
pub fn resolve(setting: &Display) -> Result<String, String> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    resolve_with(setting, var("DISPLAY"), var("WAYLAND_DISPLAY"))
}

/// [`resolve`] with the environment given.
pub fn resolve_with(
    setting: &Display,
    x_display: Option<String>,
    wayland_display: Option<String>,
) -> Result<String, String> {
    match setting {
        Display::X(d) => Ok(d.clone()),
        Display::None => Err(TURNED_OFF.to_string()),
        Display::FromEnvironment => match (x_display, wayland_display) {
            (Some(d), _) => Ok(d),
            (None, Some(_)) => Err(WAYLAND.to_string()),
            (None, None) => Err(NO_DISPLAY.to_string()),
        },
    }
}

/// Whether two display names are the same display (":0", ":0.0" and
/// "unix:0" are).
pub fn same_display(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

fn normalise(d: &str) -> (String, String) {
    let (host, rest) = d.rsplit_once(':').unwrap_or(("", d));
    let number = rest.split('.').next().unwrap_or(rest);
    let host = if host == "unix" { "" } else { host };
    (host.to_string(), number.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_display_comes_from_the_config_or_the_environment() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            resolve_with(&Display::X(":3".into()), None, None),
            Ok(":3".into())
        );
        assert_eq!(
            resolve_with(&Display::None, s(":0"), None),
            Err(TURNED_OFF.into())
        );
        let env = Display::FromEnvironment;
        assert_eq!(resolve_with(&env, s(":1"), s("wayland-0")), Ok(":1".into()));
        assert_eq!(
            resolve_with(&env, None, s("wayland-0")),
            Err(WAYLAND.into())
        );
        assert_eq!(resolve_with(&env, None, None), Err(NO_DISPLAY.into()));
    }

    #[test]
    fn display_names_are_compared_without_the_screen() {
        assert!(same_display(":0", ":0.0"));
        assert!(same_display("unix:0", ":0"));
        assert!(!same_display(":0", ":1"));
        assert!(!same_display("host:0", ":0"));
    }
}
