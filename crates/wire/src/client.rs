//! Which program a peer runs, read from its peer id (BEP 20 and the older conventions).
//!
//! Three styles cover nearly every client seen today:
//! - Azureus style: `-` two letters, four version characters, `-` (`-TR3000-`, `-LT2080-`, `-qB4520-`);
//! - Shadow style: one letter, up to five version characters from a 64-character alphabet padded with
//!   `-`, then `---` (`S58B-----`, `T03I-----`);
//! - Mainline style: `M` then dash-separated decimal numbers (`M7-4-1--`).
//!
//! The output holds only ASCII letters, digits, spaces and dots, so it is safe to show in a terminal
//! (HOSTILE 62): nothing the peer chose is echoed raw.

use std::fmt;

use shoal_metainfo::PeerId;

/// A peer's client program and version, as far as its peer id tells.
///
/// ```
/// use shoal_metainfo::PeerId;
/// use shoal_wire::Client;
///
/// let client = Client::from_peer_id(&PeerId(*b"-TR3000-abcdefghijkl")).unwrap();
/// assert_eq!(client.to_string(), "Transmission 3.00");
/// let client = Client::from_peer_id(&PeerId(*b"-LT2080-abcdefghijkl")).unwrap();
/// assert_eq!((client.name.as_str(), client.version.as_str()), ("libtorrent", "2.0.8"));
/// assert_eq!(Client::from_peer_id(&PeerId([0; 20])), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Client {
    /// The program's name, or `unknown (XX)` for an Azureus-style code not in the table.
    pub name: String,
    /// The version, dotted (`2.0.8`); empty when the id carries none.
    pub version: String,
}

impl Client {
    /// Identifies the client from a peer id, or `None` if it follows no known convention.
    pub fn from_peer_id(peer_id: &PeerId) -> Option<Self> {
        let id = &peer_id.0;
        azureus(id).or_else(|| shadow(id)).or_else(|| mainline(id))
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{} {}", self.name, self.version)
        }
    }
}

/// Azureus-style two-letter codes (BEP 20 and the client lists derived from it).
const AZUREUS: &[(&[u8; 2], &str)] = &[
    (b"A~", "Ares"),
    (b"AG", "Ares"),
    (b"AR", "Arctic"),
    (b"AT", "Artemis"),
    (b"AX", "BitPump"),
    (b"AZ", "Vuze"),
    (b"BB", "BitBuddy"),
    (b"BC", "BitComet"),
    (b"BF", "Bitflu"),
    (b"BI", "BiglyBT"),
    (b"BT", "BitTorrent"),
    (b"BW", "BitWombat"),
    (b"CD", "Enhanced CTorrent"),
    (b"DE", "Deluge"),
    (b"FD", "Free Download Manager"),
    (b"FW", "FrostWire"),
    (b"FX", "Freebox BitTorrent"),
    (b"HL", "Halite"),
    (b"KG", "KGet"),
    (b"KT", "KTorrent"),
    (b"LH", "LH-ABC"),
    (b"LP", "Lphant"),
    (b"LT", "libtorrent"),
    (b"lt", "libTorrent (rakshasa)"),
    (b"LW", "LimeWire"),
    (b"MO", "MonoTorrent"),
    (b"MP", "MooPolice"),
    (b"OT", "OmegaTorrent"),
    (b"PI", "PicoTorrent"),
    (b"qB", "qBittorrent"),
    (b"QD", "QQDownload"),
    (b"RQ", "rqbit"),
    (b"rQ", "rqbit"),
    (b"SD", "Thunder"),
    (b"SH", "Shoal"),
    (b"ST", "SymTorrent"),
    (b"TL", "Tribler"),
    (b"TR", "Transmission"),
    (b"TT", "TuoTu"),
    (b"UM", "µTorrent Mac"),
    (b"UT", "µTorrent"),
    (b"UW", "µTorrent Web"),
    (b"WD", "WebTorrent Desktop"),
    (b"WW", "WebTorrent"),
    (b"XL", "Xunlei"),
    (b"XX", "Xtorrent"),
    (b"ZT", "ZipTorrent"),
];

/// Shadow-style one-letter codes.
const SHADOW: &[(u8, &str)] = &[
    (b'A', "ABC"),
    (b'O', "Osprey Permaseed"),
    (b'Q', "BTQueue"),
    (b'R', "Tribler"),
    (b'S', "Shadow"),
    (b'T', "BitTornado"),
    (b'U', "UPnP NAT Bit Torrent"),
];

fn azureus(id: &[u8; 20]) -> Option<Client> {
    let (head, _) = id.split_first_chunk::<8>()?;
    let [b'-', c1, c2, v1, v2, v3, v4, b'-'] = *head else {
        return None;
    };
    if !(c1.is_ascii_alphanumeric() || c1 == b'~') || !(c2.is_ascii_alphanumeric() || c2 == b'~') {
        return None;
    }
    let version = [v1, v2, v3, v4];
    if !version.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let code = [c1, c2];
    let name = AZUREUS
        .iter()
        .find(|(known, _)| **known == code)
        .map_or_else(
            // Only alphanumerics and `~` reach here: safe to show.
            || format!("unknown ({})", String::from_utf8_lossy(&code)),
            |(_, name)| (*name).to_owned(),
        );
    let version = match &code {
        // Transmission: major, two-digit minor, then `0` for a release or `Z`/`X`/`b` for a beta.
        b"TR" => {
            let [major, m1, m2, tag] = version.map(char::from);
            let beta = if tag == '0' { "" } else { "+" };
            format!("{major}.{m1}{m2}{beta}")
        }
        // µTorrent: three version digits and a build-type letter.
        b"UT" | b"UM" | b"UW" => dotted(&[v1, v2, v3], 3),
        _ => dotted(&version, 3),
    };
    Some(Client { name, version })
}

/// Joins version characters with dots (`A`–`Z` stand for 10–35, as libtorrent writes them), dropping
/// trailing zero components down to `keep` components.
fn dotted(chars: &[u8], keep: usize) -> String {
    let mut parts: Vec<u32> = chars.iter().map(|&c| digit(c).unwrap_or(0)).collect();
    while parts.len() > keep && parts.last() == Some(&0) {
        parts.pop();
    }
    parts
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// The value of a version character: `0`–`9`, then `A`–`Z` for 10–35, `a`–`z` for 36–61, `.` for 62
/// (Shadow's alphabet, which libtorrent's Azureus-style versions share for their first 36 values).
fn digit(c: u8) -> Option<u32> {
    const ALPHABET: &[u8; 63] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.";
    let position = ALPHABET.iter().position(|&a| a == c)?;
    u32::try_from(position).ok()
}

fn shadow(id: &[u8; 20]) -> Option<Client> {
    let (&letter, rest) = id.split_first()?;
    let name = SHADOW.iter().find(|(known, _)| *known == letter)?.1;
    let (version, rest) = rest.split_first_chunk::<5>()?;
    // The version is followed by `---` (sometimes other bytes, which we do not try to recognise).
    if rest.get(..3) != Some(b"---") {
        return None;
    }
    let digits: Vec<u32> = version
        .iter()
        .take_while(|&&c| c != b'-')
        .map(|&c| digit(c))
        .collect::<Option<_>>()?;
    if digits.is_empty() {
        return None;
    }
    let version = digits
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".");
    Some(Client {
        name: name.to_owned(),
        version,
    })
}

fn mainline(id: &[u8; 20]) -> Option<Client> {
    let (&b'M', rest) = id.split_first()? else {
        return None;
    };
    // `M` then numbers separated by single dashes, ending in a dash, all within the first 8 bytes.
    let head = rest.get(..7)?;
    let end = head.iter().rposition(|&c| c != b'-')?;
    let numbers = head.get(..=end)?;
    if end.checked_add(1).and_then(|next| head.get(next)) != Some(&b'-') {
        return None;
    }
    let parts: Vec<&[u8]> = numbers.split(|&c| c == b'-').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    let version = parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(".");
    Some(Client {
        name: "BitTorrent".to_owned(),
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &[u8], expected: Option<&str>) {
        let mut bytes = [b'x'; 20];
        bytes[..id.len()].copy_from_slice(id);
        let client = Client::from_peer_id(&PeerId(bytes));
        assert_eq!(client.map(|c| c.to_string()).as_deref(), expected, "{id:?}");
    }

    #[test]
    fn azureus_style() {
        check(b"-TR3000-", Some("Transmission 3.00"));
        check(b"-TR294Z-", Some("Transmission 2.94+"));
        check(b"-LT2080-", Some("libtorrent 2.0.8"));
        check(b"-LT1210-", Some("libtorrent 1.2.1"));
        check(b"-qB4520-", Some("qBittorrent 4.5.2"));
        check(b"-DE13F0-", Some("Deluge 1.3.15"));
        check(b"-UT355W-", Some("µTorrent 3.5.5"));
        check(b"-AZ5770-", Some("Vuze 5.7.7"));
        check(b"-SH0010-", Some("Shoal 0.0.1"));
        check(b"-ZZ1234-", Some("unknown (ZZ) 1.2.3.4"));
        check(b"-TR30\x1b0-", None);
        check(b"-T\x1b3000-", None);
    }

    #[test]
    fn shadow_style() {
        check(b"S58B-----", Some("Shadow 5.8.11"));
        check(b"T03I-----", Some("BitTornado 0.3.18"));
        check(b"A310-----", Some("ABC 3.1.0"));
        check(b"S-------", None);
    }

    #[test]
    fn mainline_style() {
        check(b"M4-3-6--", Some("BitTorrent 4.3.6"));
        check(b"M4-20-8-", Some("BitTorrent 4.20.8"));
        check(b"M4-3--", None);
    }

    #[test]
    fn random_ids_are_unknown() {
        check(&[0; 20], None);
        check(b"exbc\x00\x38", None);
    }
}
