#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| (tessera_fuzz::target("mpeg_ts").expect("a target").run)(data));
