#![no_main]

include!("../checks/wire.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_wire(data));
