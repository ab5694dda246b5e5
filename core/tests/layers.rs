//! The crate's layers and the direction of every arrow between them.
//!
//! `src/lib.rs` declares the layers (its `pub mod` lines), lowest first. This test reads
//! every source file under `src/`, takes each path that leaves its own layer (`crate::x`,
//! `crate::{x, y}`, or `super::` climbing to the crate root, and the root's re-exports such
//! as `crate::ErrorCode`), and fails on any that names a layer declared after the file's
//! own: a lower layer never reaches up, so there is no import circle between layers.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layers in the order lib.rs declares them, and the layer each root re-export
/// (`pub use layer::...::{A, B}`) comes from.
fn layers() -> (Vec<String>, HashMap<String, String>) {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("read lib.rs");
    let mut order = Vec::new();
    let mut reexports = HashMap::new();
    for line in lib.lines() {
        if let Some(rest) = line.strip_prefix("pub mod ") {
            order.push(rest.trim_end_matches(';').trim().to_string());
        } else if let Some(rest) = line.strip_prefix("pub use ") {
            let layer = rest.split("::").next().unwrap_or_default().to_string();
            let names = rest.rsplit("::").next().unwrap_or_default();
            for name in names
                .trim_end_matches(';')
                .trim_matches(|c| c == '{' || c == '}')
                .split(',')
            {
                reexports.insert(name.trim().to_string(), layer.clone());
            }
        }
    }
    (order, reexports)
}

/// Code without comments (line comments, doc comments and block comments).
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_block = 0usize;
    for line in text.lines() {
        let mut rest = line;
        let mut kept = String::new();
        loop {
            if in_block > 0 {
                match rest.find("*/") {
                    Some(i) => {
                        in_block -= 1;
                        rest = &rest[i + 2..];
                    }
                    None => break,
                }
            } else {
                let line_comment = rest.find("//");
                let block = rest.find("/*");
                match (line_comment, block) {
                    (Some(l), Some(b)) if b < l => {
                        kept.push_str(&rest[..b]);
                        in_block += 1;
                        rest = &rest[b + 2..];
                    }
                    (Some(l), _) => {
                        kept.push_str(&rest[..l]);
                        break;
                    }
                    (None, Some(b)) => {
                        kept.push_str(&rest[..b]);
                        in_block += 1;
                        rest = &rest[b + 2..];
                    }
                    (None, None) => {
                        kept.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The root-level names a file's code reaches: after `crate::` (one name, or each name
/// of a `{...}` group) and after as many `super::` as climb out of the file's module.
fn root_names(code: &str, depth: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut push_after = |rest: &str| {
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut level = 0i32;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => level += 1,
                    '}' if level == 0 => break,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        names.push(ident_at(item.trim()).to_string());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if level == 0 {
                    item.push(c);
                }
            }
            names.push(ident_at(item.trim()).to_string());
        } else {
            names.push(ident_at(rest).to_string());
        }
    };
    for (i, _) in code.match_indices("crate::") {
        if i > 0 && code[..i].ends_with('$') {
            continue;
        }
        push_after(&code[i + "crate::".len()..]);
    }
    let climb = "super::".repeat(depth);
    for (i, _) in code.match_indices(&climb) {
        let before = &code[..i];
        if before.ends_with("super::") {
            continue;
        }
        let after = &code[i + climb.len()..];
        if after.starts_with("super::") {
            continue;
        }
        push_after(after);
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_layer_uses_only_the_layers_below_it() {
    let (order, reexports) = layers();
    assert!(
        order.len() >= 8,
        "lib.rs should declare the layers as `pub mod` lines: {order:?}"
    );
    let rank = |name: &str| order.iter().position(|l| l == name);
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upward = Vec::new();
    let mut seen_layers = std::collections::BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(src()).expect("under src");
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if parts == ["lib"] {
            continue;
        }
        let layer = parts[0].clone();
        let own = rank(&layer)
            .unwrap_or_else(|| panic!("{} is not under a layer lib.rs declares", rel.display()));
        seen_layers.insert(layer.clone());
        // The file's module depth: `a.rs` and `a/mod.rs` are 1 deep, `a/b.rs` 2.
        let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod"));
        let code = code_of(&fs::read_to_string(file).expect("read source"));
        for name in root_names(&code, depth) {
            let target = reexports.get(&name).cloned().unwrap_or(name.clone());
            let Some(to) = rank(&target) else {
                continue;
            };
            if to > own {
                upward.push(format!(
                    "{} (layer {layer}) uses crate::{name} (layer {target}, above it)",
                    rel.display()
                ));
            }
        }
    }
    assert!(upward.is_empty(), "arrows up:\n{}", upward.join("\n"));
    assert_eq!(
        seen_layers.len(),
        order.len(),
        "every declared layer has code"
    );
}

#[test]
fn the_reader_sees_what_it_must() {
    let code = code_of("use crate::{a::B, c, d::{e, f}}; // crate::g\n/* crate::h */ x::y");
    assert_eq!(root_names(&code, 1), ["a", "c", "d"]);
    assert_eq!(root_names("use super::super::store::Store;", 2), ["store"]);
    assert_eq!(
        root_names("use super::table::Spec;", 2),
        Vec::<String>::new()
    );
    assert_eq!(root_names("use super::engine::Engine;", 1), ["engine"]);
    assert_eq!(root_names("crate::ErrorCode::Io", 1), ["ErrorCode"]);
}
