//! Human-readable sizes, rates and dates for terminal output.

/// `1.50 GiB (1610612736 bytes)`-style size, binary units.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// A piece size, exact when it is a whole number of KiB or MiB: `256 KiB`, `4 MiB`.
pub fn piece_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// Parses a size with an optional binary suffix: `262144`, `256K`, `256KiB`, `4M`, `1G`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 262144, 256K or 4M"))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{text:?}: unknown unit {suffix:?} (use K, M or G)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses a duration like `90s`, `45m`, `12h`, `3d` or `1h30m` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let trimmed = text.trim();
    let bad = || format!("{text:?} is not a duration like 90s, 45m, 12h, 3d or 1h30m");
    if trimmed.is_empty() {
        return Err(bad());
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|_| bad());
    }
    let mut seconds = 0u64;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let scale = match unit.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        seconds = number
            .checked_mul(scale)
            .and_then(|n| seconds.checked_add(n))
            .ok_or_else(|| format!("{text:?} is too long"))?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// A Unix timestamp as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Where a magnet link's metadata stage stands, and when it is stuck, why: `fetching metadata from 3
/// peers (2/5 pieces)`, or `no metadata yet: no tracker answered (…); the DHT found no peers`.
pub fn metadata_status(stats: &shoal_session::TorrentStats) -> String {
    let Some(progress) = &stats.metadata else {
        return String::new();
    };
    if progress.sources > 0 {
        let pieces = if progress.pieces_total > 0 {
            format!(
                " ({}/{} pieces)",
                progress.pieces_have, progress.pieces_total
            )
        } else {
            String::new()
        };
        let plural = if progress.sources == 1 { "" } else { "s" };
        return format!(
            "fetching metadata from {} peer{plural}{pieces}",
            progress.sources
        );
    }
    let mut why = Vec::new();
    if progress.peers > 0 {
        why.push(format!(
            "{} peers connected, none offers the metadata",
            progress.peers
        ));
    } else if progress.known_addresses > 0 {
        why.push(format!(
            "none of {} known addresses answered",
            progress.known_addresses
        ));
    }
    if stats.trackers.is_empty() {
        why.push("no tracker has answered yet".into());
    } else if stats.trackers.iter().all(|t| t.last.is_err()) {
        let errors: Vec<String> = stats
            .trackers
            .iter()
            .map(|t| {
                format!(
                    "{}: {}",
                    t.url,
                    t.last.as_ref().err().map_or("", String::as_str)
                )
            })
            .collect();
        why.push(format!("no tracker answered ({})", errors.join("; ")));
    } else {
        let peers: usize = stats
            .trackers
            .iter()
            .filter_map(|t| t.last.as_ref().ok())
            .sum();
        why.push(format!("trackers returned {peers} peers"));
    }
    why.push(match stats.dht_peers {
        None => "DHT off".into(),
        Some(0) => "the DHT found no peers".into(),
        Some(n) => format!("the DHT found {n} peers"),
    });
    format!("no metadata yet: {}", why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(5), "5 B");
        assert_eq!(size(1536), "1.50 KiB");
        assert_eq!(piece_size(262_144), "256 KiB");
        assert_eq!(piece_size(4 << 20), "4 MiB");
        assert_eq!(parse_size("256K"), Ok(262_144));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("16384"), Ok(16384));
        assert!(parse_size("4X").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn durations() {
        let secs = |n| Ok(std::time::Duration::from_secs(n));
        assert_eq!(parse_duration("90"), secs(90));
        assert_eq!(parse_duration("90s"), secs(90));
        assert_eq!(parse_duration("45m"), secs(2700));
        assert_eq!(parse_duration("12H"), secs(43_200));
        assert_eq!(parse_duration("3d"), secs(259_200));
        assert_eq!(parse_duration(" 1h30m "), secs(5400));
        for bad in [
            "",
            "m",
            "1x",
            "h1",
            "1.5h",
            "1h30",
            "-1m",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
