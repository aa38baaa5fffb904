//! The repository stands alone: no tracked file refers to a path outside the checkout (a
//! sibling folder that a user's clone does not have), and the documentation it links to is
//! in the repository.
//!
//! Every relative path of the form `../name` in a tracked text file is resolved against the
//! file's own folder and against the repository root; a path that leaves the repository
//! both ways is a failure.

use std::path::{Component, Path, PathBuf};
use userstats_tests::workspace;

/// `git ls-files`: the tracked files, relative to the root.
fn tracked_files(root: &Path) -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .expect("git runs (the tests run in a git checkout)");
    assert!(out.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(String::from_utf8_lossy(s).as_ref()))
        .collect()
}

/// Resolves `rel` inside `base` lexically; `None` when it climbs above the root.
fn stays_inside(base: &Path, rel: &str) -> bool {
    let mut depth: i64 = base.components().filter(|c| matches!(c, Component::Normal(_))).count() as i64;
    for part in rel.split('/') {
        match part {
            ".." => depth -= 1,
            "." | "" => {}
            _ => depth += 1,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// The `../…` paths in a text: each run of `../` followed by a name character.
fn parent_paths(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 3 <= bytes.len() {
        if &bytes[i..i + 3] == b"../" && (i == 0 || !matches!(bytes[i - 1], b'.' | b'/' | b'A'..=b'Z' | b'a'..=b'z')) {
            let start = i;
            let mut end = i;
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'.' | b'/' | b'_' | b'-'))
            {
                end += 1;
            }
            let path = &text[start..end];
            if path.trim_start_matches("../").chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                found.push(path.to_string());
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

#[test]
fn no_tracked_file_refers_outside_the_repository() {
    let root = workspace();
    let mut outside = Vec::new();
    for file in tracked_files(&root) {
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else { continue };
        let dir = file.parent().unwrap_or(Path::new(""));
        for path in parent_paths(&text) {
            if !stays_inside(dir, &path) && !stays_inside(Path::new(""), &path) {
                outside.push(format!("{}: {path}", file.display()));
            }
        }
    }
    assert!(outside.is_empty(), "tracked files refer to paths outside the repository:\n{}", outside.join("\n"));
}

#[test]
fn the_checker_finds_an_outside_path() {
    // The test above must be able to fail: a sibling folder is outside, a folder of ours is not.
    let sibling = format!("{}/spec/03-api.md", ["..", "shared"].join("/"));
    assert_eq!(
        parent_paths(&format!("see [api]({sibling}) and ../../x")),
        vec![sibling.clone(), "../../x".to_string()]
    );
    assert!(!stays_inside(Path::new(""), &sibling));
    assert!(!stays_inside(Path::new("docs"), "../../x"));
    assert!(stays_inside(Path::new("docs"), "../README.md"));
    assert!(stays_inside(Path::new("shared/src"), "../../tests/fixtures/kv.json"));
}

#[test]
fn every_command_is_documented() {
    let api = std::fs::read_to_string(workspace().join("docs/api.md")).expect("docs/api.md exists");
    let missing: Vec<&str> =
        shared::api::COMMANDS.iter().map(|c| c.name).filter(|name| !api.contains(&format!("`{name}`"))).collect();
    assert!(missing.is_empty(), "commands missing from docs/api.md: {missing:?}");
}
