//! Keeps the README's configuration reference and the shipped configuration file in
//! step: the same keys, each documented once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

/// `section.key` of every key in the shipped file, commented-out examples included
/// (but not the fields of a commented-out `[[admin.tokens]]` entry).
fn keys_in_config(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut section = String::new();
    let mut in_example_entry = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            in_example_entry = false;
            continue;
        }
        if line.starts_with("# [[") {
            in_example_entry = true;
            continue;
        }
        let commented = line.starts_with('#');
        let entry = line.strip_prefix("# ").unwrap_or(line);
        let Some((key, _)) = entry.split_once(" = ") else {
            continue;
        };
        let is_key = key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if is_key && !(in_example_entry && commented) && !section.is_empty() {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

/// Keys in the first column of the README's configuration reference table.
fn keys_in_readme(text: &str) -> Vec<String> {
    let start = text
        .find("### Configuration reference")
        .expect("reference section");
    text[start..]
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(key, _)| key.to_string()))
        .collect()
}

#[test]
fn the_shipped_file_is_valid_and_names_every_key_hookgate_knows() {
    let config = std::fs::read_to_string("config/hookgate.toml").expect("shipped config");
    let env = std::collections::BTreeMap::new();
    hookgate::config::Settings::from_toml(&config, &env).expect("the shipped file is valid");
    assert_eq!(keys_in_config(&config), hookgate::config::known_keys());
}

#[test]
fn the_readme_documents_every_key_of_the_shipped_configuration_once() {
    let config = std::fs::read_to_string("config/hookgate.toml").expect("shipped config");
    let readme = std::fs::read_to_string("README.md").expect("README");
    let documented = keys_in_readme(&readme);
    let unique: BTreeSet<String> = documented.iter().cloned().collect();
    assert_eq!(unique.len(), documented.len(), "a key is documented twice");
    assert_eq!(unique, keys_in_config(&config));
}

#[test]
fn hookgate_check_config_accepts_the_shipped_file_and_names_bad_keys() {
    let binary = env!("CARGO_BIN_EXE_hookgate");
    let ok = std::process::Command::new(binary)
        .args(["--config", "config/hookgate.toml", "check-config"])
        .output()
        .expect("run check-config");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let bad = std::env::temp_dir().join(format!("hookgate-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "[public]\nlisten = \"nowhere\"\nmax_body_bytes = 0\n").expect("write");
    let out = std::process::Command::new(binary)
        .args(["--config", bad.to_str().unwrap(), "check-config"])
        .output()
        .expect("run check-config");
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("public.listen"), "{stderr}");
    assert!(stderr.contains("public.max_body_bytes"), "{stderr}");
}
