#![no_main]

include!("../checks/krpc.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_krpc(data));
