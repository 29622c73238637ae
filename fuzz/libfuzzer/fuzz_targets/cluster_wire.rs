#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| (tessera_fuzz::target("cluster_wire").expect("a target").run)(data));
