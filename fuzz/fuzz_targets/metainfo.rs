#![no_main]

include!("../checks/metainfo.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_metainfo(data));
