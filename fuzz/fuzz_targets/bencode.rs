#![no_main]

include!("../checks/bencode.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_bencode(data));
