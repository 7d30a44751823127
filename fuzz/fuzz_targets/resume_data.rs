#![no_main]

include!("../checks/resume_data.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_resume_data(data));
