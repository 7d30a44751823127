#![no_main]

include!("../checks/tracker_http.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_tracker_http(data));
