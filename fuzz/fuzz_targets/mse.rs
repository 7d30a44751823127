#![no_main]

include!("../checks/mse.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_mse(data));
