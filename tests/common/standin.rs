//! The stand-in for Mattermost's server and mmctl that the boot tests package and run
//! under systemd (source: `standin.c`, which says what it does).

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::process::Command;
use std::sync::Mutex;

/// The stand-in compiled with `gcc -static` to report `version`, once per version and test
/// process.
pub fn standin(version: &str) -> Vec<u8> {
    static BUILT: Mutex<Option<HashMap<String, Vec<u8>>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(bytes) = built.get(version) {
        return bytes.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("standin.c");
    fs::write(&src, include_str!("standin.c")).unwrap();
    let out = dir.path().join("standin");
    let define = format!("-DMM_VERSION=\"{version}\"");
    super::run(
        Command::new("gcc")
            .args(["-static", "-O1", "-Wall", "-Werror", &define, "-o"])
            .arg(&out)
            .arg(&src),
    );
    let bytes = fs::read(out).unwrap();
    built.insert(version.to_string(), bytes.clone());
    bytes
}
