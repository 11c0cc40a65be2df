//! Configuration parsing never panics: arbitrary bytes, read as TOML, give a `ServicesFile` or a
//! `ConfigError`, and an error always displays.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match warden::ServicesFile::from_toml_str(text) {
        Ok(file) => {
            // A file that loads is valid, and every service can be built from it.
            file.validate().expect("a loaded file is valid");
            for (name, config) in file.services {
                warden::ServiceSupervisor::builder(name)
                    .config(config)
                    .validate()
                    .expect("a loaded service is valid");
            }
        }
        Err(error) => {
            let shown = error.to_string();
            assert!(!shown.is_empty());
        }
    }
});
