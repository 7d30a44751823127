#![no_main]

include!("../checks/magnet.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_magnet(data));
