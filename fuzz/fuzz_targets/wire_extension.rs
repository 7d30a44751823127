#![no_main]

include!("../checks/wire_extension.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_wire_extension(data));
