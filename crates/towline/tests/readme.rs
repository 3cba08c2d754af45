//! The README's snippets run as doc tests of this crate (`src/lib.rs` includes README.md), so
//! each compiles as a crate of its own depending on `towline`. That a new crate copying them
//! verbatim compiles also needs the README to list every crate they use: checked here.

use std::collections::BTreeSet;

const README: &str = include_str!("../../../README.md");

/// The fenced blocks of the README: (info string, body).
fn blocks() -> Vec<(&'static str, String)> {
    let mut blocks = Vec::new();
    let mut lines = README.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        blocks.push((info.trim(), body));
    }
    blocks
}

/// The crates the README's `[dependencies]` block lists, as Rust names.
fn listed() -> BTreeSet<String> {
    let (_, toml) = blocks()
        .into_iter()
        .find(|(info, body)| *info == "toml" && body.contains("[dependencies]"))
        .expect("the README lists the dependencies to add");
    toml.lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim()))
        .filter(|name| !name.is_empty() && !name.starts_with('['))
        .map(|name| name.replace('-', "_"))
        .collect()
}

#[test]
fn every_crate_the_readme_snippets_use_is_in_its_dependency_list() {
    let listed = listed();
    assert!(listed.contains("towline"), "{listed:?}");
    let rust: Vec<String> = blocks()
        .into_iter()
        .filter(|(info, _)| *info == "rust")
        .map(|(_, body)| body)
        .collect();
    assert!(rust.len() >= 2, "the README's Rust snippets were not found");
    for body in &rust {
        for line in body.lines() {
            let line = line.trim_start();
            let Some(path) = line.strip_prefix("use ") else {
                // `#[tokio::main]` and paths like `tokio::...` used inline count too.
                if let Some(attr) = line.strip_prefix("#[") {
                    let root = attr.split("::").next().unwrap();
                    if attr.contains("::") {
                        assert!(listed.contains(root), "`{root}` is not listed: {line}");
                    }
                }
                continue;
            };
            let root = path.split(['{', ':', ';']).next().unwrap().trim();
            if ["std", "core", "alloc", "crate", "self", "super"].contains(&root) {
                continue;
            }
            assert!(
                listed.contains(root),
                "`{root}` is used but not listed: {line}"
            );
        }
    }
}

#[test]
fn every_readme_code_block_says_its_language() {
    // An unlabelled block would be compiled as Rust by the doc test (the diagrams are text).
    for (info, body) in blocks() {
        assert!(!info.is_empty(), "a code block without a language:\n{body}");
    }
}
