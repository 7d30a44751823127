// The invariants the path_sanitize fuzz target checks on every input (HOSTILE 12–15, T1 `path_sanitize`).
// Shared, via `include!`/`#[path]`, by the fuzz target and by `crates/metainfo/tests/fuzz_corpus.rs`
// (which replays the committed corpus) and `crates/metainfo/tests/paths.rs` (which runs it over the
// frozen table of hostile names).

use std::path::{Component, Path};

use shoal_metainfo::{MAX_COMPONENT_BYTES, check_component, safe_join, sanitize_component};

/// Treats `data` as one raw path component, then as a `/`-separated list of them: a component is refused
/// exactly when it could name something other than one entry of the directory, and whatever is accepted
/// sanitizes to a single, non-empty, relative name that stays inside any root and is stable.
pub fn check_path_sanitize(data: &[u8]) {
    check_one_component(data);
    // The same bytes as a path, split the way a torrent's `path` list is.
    let root = Path::new("/save");
    let parts: Vec<&[u8]> = data.split(|&b| b == b'/').collect();
    let all_accepted = parts.iter().all(|part| check_component(part).is_ok());
    match safe_join(root, parts.iter().copied()) {
        Some(joined) => {
            assert!(all_accepted, "{data:?} joined to {joined:?}");
            assert!(joined.starts_with(root), "{joined:?}");
            let below = joined.strip_prefix(root).expect("starts with the root");
            assert_eq!(below.components().count(), parts.len(), "{joined:?}");
            assert!(
                below
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{joined:?}"
            );
        }
        None => assert!(!all_accepted, "{data:?} was refused by safe_join only"),
    }
}

fn check_one_component(raw: &[u8]) {
    // An independent statement of what must be refused: `check_component` must agree with it exactly.
    let must_refuse = matches!(raw, b"" | b"." | b"..")
        || raw.iter().any(|&b| matches!(b, 0 | b'/' | b'\\'))
        || matches!(raw, [letter, b':', ..] if letter.is_ascii_alphabetic());
    let checked = check_component(raw);
    assert_eq!(checked.is_err(), must_refuse, "{raw:?}: {checked:?}");
    if checked.is_err() {
        return;
    }
    let name = sanitize_component(raw);
    assert!(!name.is_empty(), "{raw:?}");
    assert!(name != "." && name != "..", "{raw:?} -> {name:?}");
    assert!(!name.contains(['/', '\\', '\0']), "{raw:?} -> {name:?}");
    assert!(name.len() <= MAX_COMPONENT_BYTES, "{raw:?} -> {name:?}");
    assert!(!name.chars().any(is_unwanted), "{raw:?} -> {name:?}");
    // Exactly one plain component: not absolute, no prefix, nothing that climbs.
    let path = Path::new(name.as_ref());
    assert!(path.is_relative(), "{name:?}");
    let mut components = path.components();
    assert!(
        matches!(components.next(), Some(Component::Normal(n)) if n == name.as_ref()),
        "{name:?}"
    );
    assert_eq!(components.next(), None, "{name:?}");
    // The sanitized name is itself acceptable and sanitizing it again changes nothing (HOSTILE 18).
    assert_eq!(check_component(name.as_bytes()), Ok(()), "{name:?}");
    assert_eq!(sanitize_component(name.as_bytes()), name, "{raw:?}");
    // Clean UTF-8 within the length limit comes back untouched.
    if let Ok(text) = std::str::from_utf8(raw)
        && text.len() <= MAX_COMPONENT_BYTES
        && !cfg!(windows)
        && !text.chars().any(is_unwanted)
    {
        assert_eq!(name, text);
    }
    let root = Path::new("/save");
    assert_eq!(safe_join(root, [raw]), Some(root.join(name.as_ref())));
}

/// Characters no sanitized name may hold: controls, and the bidi controls that make a name display as
/// something else (U+202E turns `exe.txt` around; U+061C is the Arabic letter mark).
fn is_unwanted(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}
