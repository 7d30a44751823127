#![no_main]

include!("../checks/peer_session.rs");

static ENGINE: std::sync::OnceLock<std::sync::Mutex<PeerSession>> = std::sync::OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let engine = ENGINE.get_or_init(|| std::sync::Mutex::new(PeerSession::new()));
    engine.lock().expect("no panic while held").run(data);
});
