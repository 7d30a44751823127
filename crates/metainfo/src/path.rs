//! Path safety: every name and path component of a torrent is checked before anything can use it.
//!
//! Two steps, both deterministic and the same on every platform (HOSTILE entries 12–18):
//!
//! 1. [`check_component`] **rejects** what can only be an attack or a broken torrent: empty, `.`, `..`,
//!    a `/` or `\` inside a component, a NUL byte, a drive-letter prefix (`C:`). A torrent holding one is
//!    refused by the parser, so the rest of Shoal never sees such a path.
//! 2. [`sanitize_component`] **rewrites** what is harmless to the download directory but awkward on disk or
//!    on screen: invalid UTF-8 becomes U+FFFD, control characters and bidi overrides become `_`, and a
//!    component longer than 255 bytes is cut (keeping its extension). On Windows, reserved device names,
//!    `:` and trailing dots or spaces are also rewritten.
//!
//! After both, a component is a single, non-empty, relative name, so joining components under a directory
//! can never leave it. [`safe_join`] does the join and checks that once more.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

use crate::error::PathProblem;

/// The longest component kept, in bytes: the limit of common file systems (ext4, NTFS in UTF-16 units).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Checks that one raw path component (a torrent's `name` or one element of a `path` list) is safe to use.
///
/// # Errors
/// The [`PathProblem`] the component has.
///
/// ```
/// use shoal_metainfo::{check_component, PathProblem};
///
/// assert_eq!(check_component(b"movie.mkv"), Ok(()));
/// assert_eq!(check_component(b".."), Err(PathProblem::ParentDir));
/// assert_eq!(check_component(b"x /../../a.exe"), Err(PathProblem::Separator));
/// assert_eq!(check_component(b"C:"), Err(PathProblem::DriveLetter));
/// ```
pub fn check_component(raw: &[u8]) -> Result<(), PathProblem> {
    match raw {
        b"" => Err(PathProblem::Empty),
        b"." => Err(PathProblem::CurrentDir),
        b".." => Err(PathProblem::ParentDir),
        [letter, b':', ..] if letter.is_ascii_alphabetic() => Err(PathProblem::DriveLetter),
        _ => {
            for &byte in raw {
                match byte {
                    0 => return Err(PathProblem::Nul),
                    b'/' | b'\\' => return Err(PathProblem::Separator),
                    _ => {}
                }
            }
            Ok(())
        }
    }
}

/// Turns a raw component that passed [`check_component`] into a file name that is safe to create and to
/// show: valid UTF-8, no control or bidi-override characters, at most [`MAX_COMPONENT_BYTES`] bytes.
///
/// The mapping is frozen by snapshot tests; it must not change silently between versions (HOSTILE 18).
/// Returns the input unchanged (borrowed) in the common case.
///
/// ```
/// use shoal_metainfo::sanitize_component;
///
/// assert_eq!(sanitize_component(b"song.mp3"), "song.mp3");
/// assert_eq!(sanitize_component(b"evil\x1b[2Jname"), "evil_[2Jname");
/// assert_eq!(sanitize_component(b"caf\xe9"), "caf\u{FFFD}");
/// ```
pub fn sanitize_component(raw: &[u8]) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(raw);
    if is_clean(&text) {
        return text;
    }
    let mut out: String = text
        .chars()
        .map(|c| if is_unwanted(c) { '_' } else { c })
        .collect();
    if cfg!(windows) {
        windows_rewrite(&mut out);
    }
    if out.len() > MAX_COMPONENT_BYTES {
        truncate_keeping_extension(&mut out);
    }
    if out.is_empty() || out == "." || out == ".." {
        // Cannot happen for checked input (only invisible characters were rewritten, not removed), but a
        // sanitized name must never be one of these.
        out = "_".into();
    }
    Cow::Owned(out)
}

fn is_clean(text: &str) -> bool {
    text.len() <= MAX_COMPONENT_BYTES
        && !text.chars().any(is_unwanted)
        && !(cfg!(windows) && needs_windows_rewrite(text))
}

/// Control characters and the Unicode bidi controls that can make a name display as something else
/// (U+202E turns `exe.txt` around).
fn is_unwanted(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

fn needs_windows_rewrite(text: &str) -> bool {
    text.contains([':', '*', '?', '"', '<', '>', '|'])
        || text.ends_with(['.', ' '])
        || is_windows_reserved(text)
}

fn is_windows_reserved(text: &str) -> bool {
    let stem = text
        .split('.')
        .next()
        .unwrap_or(text)
        .trim_end()
        .to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit())
}

fn windows_rewrite(out: &mut String) {
    *out = out.replace([':', '*', '?', '"', '<', '>', '|'], "_");
    while out.ends_with(['.', ' ']) {
        out.pop();
        out.push('_');
    }
    if is_windows_reserved(out) {
        out.insert(0, '_');
    }
}

/// Cuts `out` to at most [`MAX_COMPONENT_BYTES`] on a character boundary, keeping a short extension.
fn truncate_keeping_extension(out: &mut String) {
    let extension = match out.rfind('.') {
        Some(dot) if out.len() - dot <= 16 && dot > 0 => out[dot..].to_owned(),
        _ => String::new(),
    };
    let mut keep = MAX_COMPONENT_BYTES - extension.len();
    while !out.is_char_boundary(keep) {
        keep -= 1;
    }
    out.truncate(keep);
    out.push_str(&extension);
}

/// Joins sanitized components under `root`, checking that the result stays inside it.
///
/// Each component must already have passed [`check_component`]; this re-checks, so a caller that skipped
/// it gets `None` instead of a path outside `root`.
///
/// ```
/// use std::path::Path;
/// use shoal_metainfo::safe_join;
///
/// let path = safe_join(Path::new("/downloads"), [&b"album"[..], b"01.flac"]).unwrap();
/// assert_eq!(path, Path::new("/downloads/album/01.flac"));
/// assert_eq!(safe_join(Path::new("/downloads"), [&b".."[..], b"etc"]), None);
/// ```
pub fn safe_join<'c>(
    root: &Path,
    components: impl IntoIterator<Item = &'c [u8]>,
) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    let mut depth = 0usize;
    for raw in components {
        check_component(raw).ok()?;
        let name = sanitize_component(raw);
        let name = Path::new(name.as_ref());
        // Belt and braces: the sanitized name must be exactly one normal component.
        let mut parts = name.components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(_)), None) => {}
            _ => return None,
        }
        path.push(name);
        depth += 1;
    }
    (depth > 0 && path.starts_with(root)).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_every_escape() {
        for (raw, problem) in [
            (&b""[..], PathProblem::Empty),
            (b".", PathProblem::CurrentDir),
            (b"..", PathProblem::ParentDir),
            (b"../../etc/passwd", PathProblem::Separator),
            (b"/etc/x", PathProblem::Separator),
            (b"x /../../Startup/a.exe", PathProblem::Separator),
            (b"a\\b", PathProblem::Separator),
            (b"\\\\host\\share", PathProblem::Separator),
            (b"C:\\x", PathProblem::DriveLetter),
            (b"c:", PathProblem::DriveLetter),
            (b"z:stream", PathProblem::DriveLetter),
            (b"a\0b", PathProblem::Nul),
            (b"\0", PathProblem::Nul),
        ] {
            assert_eq!(
                check_component(raw),
                Err(problem),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        for ok in [
            &b"..."[..],
            b".hidden",
            b"a..b",
            b"1:2",
            b"Movie: Part 2",
            b" ",
            b"con",
        ] {
            assert_eq!(
                check_component(ok),
                Ok(()),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
    }

    /// Frozen sanitizer output (HOSTILE 18): a change here must be deliberate.
    #[test]
    fn sanitizer_snapshot() {
        let long = "é".repeat(200) + ".txt";
        let cut = "é".repeat(125) + ".txt";
        for (raw, expected) in [
            (&b"plain.txt"[..], "plain.txt"),
            (b"tab\there", "tab_here"),
            (b"bell\x07", "bell_"),
            (b"del\x7f", "del_"),
            (b"\xff\xfe", "\u{FFFD}\u{FFFD}"),
            ("gpj\u{202E}exe.txt".as_bytes(), "gpj_exe.txt"),
            ("isolate\u{2066}x".as_bytes(), "isolate_x"),
            (long.as_bytes(), cut.as_str()),
            (&[b'a'; 300][..], &"a".repeat(255)),
        ] {
            assert_eq!(
                sanitize_component(raw),
                expected,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
            // Sanitizing twice changes nothing.
            assert_eq!(sanitize_component(expected.as_bytes()), expected);
        }
    }

    #[test]
    fn join_stays_inside() {
        let root = Path::new("/save");
        assert_eq!(
            safe_join(root, [&b"a"[..], b"b"]),
            Some(PathBuf::from("/save/a/b"))
        );
        assert_eq!(safe_join(root, [&b"a"[..], b"..", b"..", b"x"]), None);
        assert_eq!(safe_join(root, [&b"/abs"[..]]), None);
        assert_eq!(safe_join(root, std::iter::empty()), None);
    }
}
