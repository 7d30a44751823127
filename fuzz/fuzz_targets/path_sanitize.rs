#![no_main]

include!("../checks/path_sanitize.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_path_sanitize(data));
