#![no_main]

include!("../checks/tracker_udp.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_tracker_udp(data));
