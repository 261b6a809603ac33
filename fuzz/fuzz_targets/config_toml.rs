//! The node config: any text parses and validates to a config or to problems each naming its path,
//! never a panic; every source of a valid config builds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_engine::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            assert!(config.validate().is_empty());
            for source in &config.sources {
                let _ = source.build();
            }
        }
        Err(e) => {
            assert!(!e.problems.is_empty());
            assert!(e.problems.iter().all(|p| !p.is_empty()));
        }
    }
});
