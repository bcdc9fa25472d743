//! Formatting the figures and the summary rows.

use super::*;

pub(super) fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / 1048576.0)
}

pub(super) fn kib(b: f64) -> String {
    format!("{:.1} KiB", b / 1024.0)
}

pub(super) fn ms(secs: f64) -> String {
    format!("{:.2} ms", secs * 1e3)
}

/// Two lines on a throughput or desktop run.
pub(super) fn describe(who: &str, r: &Run, relay: &str) -> String {
    let per = |v: f64| v / r.updates.max(1) as f64;
    let mut head = format!(
        "{} updates in {:.1} s = {:.1}/s",
        r.updates,
        r.secs,
        r.rate()
    );
    if r.eq.is_some() {
        head += &format!(" = {:.1} complete frames/s", r.frame_rate());
    }
    if r.split > 0 {
        head += &format!(" ({} cut in several messages)", r.split);
    }
    head += &format!("; {:.2} Mpx/update", per(r.px as f64) / 1e6);
    if r.tiles > 0 {
        head += &format!(" ({:.0} tiles)", per(r.tiles as f64));
    }
    head += &format!("; {} ({}/update)", mib(r.bytes), kib(per(r.bytes as f64)));
    let mut cpu = format!("CPU per update: {who} {}", ms(r.cpu_per_update(0)));
    if r.eq.is_some() {
        cpu += &format!(", {} per complete frame", ms(r.cpu_per_frame()));
    }
    cpu += &format!(
        " → {:.0}/s on one core; Xvfb {}, {relay} {}, bench {}; {who} VmRSS {}",
        r.per_core(),
        ms(r.cpu_per_update(1)),
        ms(r.cpu_per_update(2)),
        ms(r.cpu_per_update(3)),
        mib(r.rss)
    );
    if r.draws > 0.0 {
        cpu += &format!("; screen redrawn {:.0}/s", r.draws);
    }
    let mut out = format!("    {who}: {head}; {}\n      {cpu}", r.load);
    if r.threads.len() > 1 {
        let t: Vec<String> = r
            .threads
            .iter()
            .take(4)
            .map(|(n, c)| format!("{n} {}", ms(c / r.frames().max(1e-9))))
            .collect();
        out += &format!("\n      {who} threads per frame: {}", t.join(", "));
    }
    if r.tiles > 0 {
        let [solid, png, jpeg, zlib] = r.kinds;
        let avg = |k: (u64, u64)| k.1 as f64 / k.0.max(1) as f64;
        out += &format!(
            "\n      tiles: {} solid, {} zlib (avg {:.0} B), {} PNG (avg {:.0} B), {} JPEG (avg {:.0} B)",
            solid.0,
            zlib.0,
            avg(zlib),
            png.0,
            avg(png),
            jpeg.0,
            avg(jpeg)
        );
    }
    if !r.encodings.is_empty() {
        out += &format!("\n      rectangles (whole connection): {}", r.encodings);
    }
    if !r.segments.is_empty() {
        out += &format!("\n{}", segments_text(r));
    }
    out
}

pub(super) fn fps_row(what: &str, target: f64, l: &Run, v: &Run) -> Row {
    let met = l.per_core() >= target && l.frame_rate() >= 0.95 * target;
    row(
        "6 screen",
        what,
        format!(
            "{:.1} complete frames/s received ({:.1} updates/s); one core: {:.0}/s ({} agent CPU/frame)",
            l.frame_rate(),
            l.rate(),
            l.per_core(),
            ms(l.cpu_per_frame())
        ),
        &format!(
            "x11vnc {:.1}/s ({:.1} updates/s); one core: {:.0}/s ({})",
            v.frame_rate(),
            v.rate(),
            v.per_core(),
            ms(v.cpu_per_frame())
        ),
        Some((&format!("≥ {target:.0} fps"), met)),
    )
}

pub(super) fn bytes_text(r: &Run) -> String {
    format!(
        "{} for {} updates ({}/update)",
        mib(r.bytes),
        r.updates,
        kib(r.bytes as f64 / r.updates.max(1) as f64)
    )
}
