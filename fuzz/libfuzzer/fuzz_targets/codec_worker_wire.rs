#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| (tessera_fuzz::target("codec_worker_wire").expect("a target").run)(data));
