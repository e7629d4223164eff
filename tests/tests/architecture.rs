//! The shape of the domain crate, held by a test: use cases never name an
//! adapter, adapters never name a use case, no import loop among the use-case
//! modules, and no use-case file over 500 lines outside its tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The file without its `#[cfg(test)]` module.
fn production_part(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// `board_to_hubspot::batch_writer` for `app/board_to_hubspot/batch_writer.rs`.
fn module_of(app: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(app).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The use-case modules a file names (through `super::` or `crate::app::`,
/// grouped imports included), resolved to the longest module that exists.
fn dependencies(module: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let parent: Vec<&str> = module.split("::").collect();
    let resolve = |path: &str| -> Option<String> {
        let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let mut base: Vec<&str> = parent[..parent.len() - 1].to_vec();
        if segments.first() == Some(&"crate") {
            segments.drain(..2);
            base.clear();
        } else {
            segments.remove(0); // the first `super` names the parent
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
        }
        let candidate: Vec<&str> = base.into_iter().chain(segments).collect();
        (1..=candidate.len())
            .rev()
            .map(|k| candidate[..k].join("::"))
            .find(|name| modules.contains(name))
    };
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(['s', 'c']) {
        rest = &rest[at..];
        let prefix = ["super::", "crate::app::"]
            .into_iter()
            .find(|p| rest.starts_with(p));
        let Some(prefix) = prefix else {
            rest = &rest[1..];
            continue;
        };
        let boundary_ok = text.len() == rest.len()
            || !text[..text.len() - rest.len()]
                .ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path = &rest[..end];
        if boundary_ok {
            let after = &rest[end..];
            if after.starts_with('{') {
                let group = &after[1..after.find('}').unwrap_or(after.len())];
                for item in group.split(',') {
                    let item = item.trim();
                    if !item.is_empty() && item != "self" {
                        found.extend(resolve(&format!("{path}{item}")));
                    }
                }
            } else {
                found.extend(resolve(path));
            }
        }
        rest = &rest[prefix.len().max(end)..];
    }
    found.remove(module);
    found
}

#[test]
fn use_cases_and_adapters_do_not_import_each_other() {
    for path in rust_files(&src().join("app")) {
        let text = production_part(&path);
        assert!(
            !text.contains("crate::adapters"),
            "{} imports an adapter",
            path.display()
        );
    }
    for path in rust_files(&src().join("adapters")) {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("crate::app"),
            "{} imports a use case",
            path.display()
        );
    }
}

#[test]
fn no_use_case_file_is_over_500_lines_outside_its_tests() {
    for path in rust_files(&src().join("app")) {
        let lines = production_part(&path).lines().count();
        assert!(lines <= 500, "{}: {lines} lines", path.display());
    }
}

#[test]
fn the_use_case_modules_import_each_other_without_a_loop() {
    let app = src().join("app");
    let files = rust_files(&app);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(&app, f))
        .filter(|m| !m.is_empty())
        .collect();
    let graph: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .map(|f| (module_of(&app, f), f))
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, f)| {
            let deps = dependencies(&m, &production_part(f), &modules);
            (m, deps)
        })
        .collect();
    // Depth-first search for a back edge; the loop is printed when found.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("import loop: {} -> {node}", path[at..].join(" -> "));
        }
        path.push(node.to_owned());
        for next in &graph[node] {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
    // The check finds loops: the old shape had one.
    let mut looped = graph.clone();
    looped
        .get_mut("failure")
        .unwrap()
        .insert("worker::batch".into());
    let caught = std::panic::catch_unwind(|| {
        let mut done = BTreeSet::new();
        for node in looped.keys() {
            visit(node, &looped, &mut Vec::new(), &mut done);
        }
    });
    assert!(caught.is_err(), "a loop added by hand is found");
}

/// Background sync calls HubSpot only through `BudgetedHubSpot` (the portal's
/// budget, HubSpot's answers metered, refused tokens counted), as it calls
/// board only through `BudgetedBoard`. Calls a person waits for (registration,
/// diagnosis, the card, drafts) use HubSpot's share left for people, directly.
#[test]
fn background_use_cases_call_hubspot_only_through_the_budgeted_port() {
    let app = src().join("app");
    let interactive = [
        "budgeted_hubspot",
        "register::customers",
        "diagnosis",
        "card",
        "drafts",
        "connect",
        "connection_status",
        "settings::pipelines",
        "settings::common",
        "settings::preview",
        "directory",
        "tokens",
        "services",
    ];
    let mut offenders = Vec::new();
    for path in rust_files(&app) {
        let module = module_of(&app, &path);
        if interactive.contains(&module.as_str()) {
            continue;
        }
        let text = production_part(&path).replace(char::is_whitespace, "");
        for port in [".batch.", ".write.", ".search."] {
            if text.contains(&format!("services{port}")) {
                offenders.push(format!("{module} calls services{port}"));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
