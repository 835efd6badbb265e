#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lookout_fuzz::node_targets::sync_response_decode(data));
