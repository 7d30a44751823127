//! Text for the screen: hostile strings made safe, and numbers in one unit system (bytes, never bits).

use std::net::SocketAddr;
use std::time::Duration;

/// Removes control characters and bidirectional overrides from text a peer, tracker or `.torrent` file
/// chose (HOSTILE 62): an escape sequence in a torrent name must not reach the terminal, and a
/// right-to-left override must not reorder the columns around it.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            !c.is_control() && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

/// A size in binary units with three significant figures: `0 B`, `1023 B`, `1.50 KiB`, `64.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    // Three significant figures, without letting rounding print `1024 KiB`.
    let text = if value >= 99.95 {
        format!("{value:.0}")
    } else if value >= 9.995 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    format!("{text} {}", UNITS[unit])
}

/// A rate in bytes per second, the same units as sizes (USERS.md: never bits next to bytes).
pub fn rate(bytes_per_second: u64) -> String {
    format!("{}/s", size(bytes_per_second))
}

/// Progress as a percentage that reads `100%` only when every piece is verified: an almost-complete
/// torrent shows `99.9%`, never a rounded-up `100.0%`.
pub fn percent(have: u64, total: u64) -> String {
    if total > 0 && have >= total {
        return "100%".into();
    }
    if total == 0 {
        return "0.0%".into();
    }
    let tenths = (have as u128 * 1000 / total as u128) as u64;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// A duration as `45s`, `12m05s`, `3h20m`, `2d04h`; `∞` when it is unknown.
pub fn eta(duration: Option<Duration>) -> String {
    let Some(duration) = duration else {
        return "∞".into();
    };
    let s = duration.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ if s < 100 * 86_400 => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
        _ => "∞".into(),
    }
}

/// One form per address: an IPv4-mapped IPv6 address shows as the IPv4 address it is (USERS.md:
/// never both `[::ffff:127.0.0.1]` and `127.0.0.1`).
pub fn addr(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

/// Cuts `text` to at most `width` characters, ending in `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_loses_its_control_characters() {
        assert_eq!(
            sanitize("evil\x1b[2Jname\u{202E}txt.exe\n"),
            "evil[2Jnametxt.exe"
        );
        assert_eq!(sanitize("Ünïcode ok"), "Ünïcode ok");
    }

    #[test]
    fn sizes_and_rates_are_bytes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.50 KiB");
        assert_eq!(size(64 << 20), "64.0 MiB");
        assert_eq!(size(200 << 20), "200 MiB");
        assert_eq!(size((1 << 20) - 1), "1024 KiB");
        assert_eq!(rate(5 << 20), "5.00 MiB/s");
    }

    #[test]
    fn percent_never_rounds_up_to_complete() {
        assert_eq!(percent(0, 0), "0.0%");
        assert_eq!(percent(999_999, 1_000_000), "99.9%");
        assert_eq!(percent(1, 2), "50.0%");
        assert_eq!(percent(7, 7), "100%");
    }

    #[test]
    fn etas() {
        assert_eq!(eta(None), "∞");
        assert_eq!(eta(Some(Duration::from_secs(45))), "45s");
        assert_eq!(eta(Some(Duration::from_secs(725))), "12m05s");
        assert_eq!(eta(Some(Duration::from_secs(12_000))), "3h20m");
        assert_eq!(eta(Some(Duration::from_secs(187_200))), "2d04h");
    }

    #[test]
    fn mapped_addresses_show_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:6881".parse().unwrap();
        assert_eq!(addr(mapped), "127.0.0.1:6881");
        let v6: SocketAddr = "[::1]:6881".parse().unwrap();
        assert_eq!(addr(v6), "[::1]:6881");
    }

    #[test]
    fn fitting() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit("abc", 0), "");
    }
}
