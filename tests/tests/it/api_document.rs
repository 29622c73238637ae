//! The API document (made from the handlers' annotations by `tessera_node::api_doc`, served
//! at `/api/v1/openapi.json`, kept in `docs/openapi.json`) against the routes the nodes
//! mount: every route and method in the source is documented, and every documented path is
//! a route; every schema it names is in it; and the file in `docs/` is the document. The
//! routes are read from the crates' source, where `Router::route` names them.
//!
//! `TESSERA_WRITE_API_DOC=1` writes `docs/openapi.json` afresh instead of comparing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The crates whose routers a node mounts.
const CRATES: [&str; 4] = ["nodes", "live", "vod", "license"];
/// Routes that are not an API: the console's page and files.
const PAGES: [&str; 4] = ["/", "/console", "/console/", "/console/{*file}"];
const METHODS: [&str; 7] = ["get", "post", "put", "delete", "head", "patch", "options"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each `.route("PATH", METHOD(handler).METHOD(handler)...)` of `source` outside its tests:
/// the path and the methods named in the call.
fn routes_in(source: &str) -> Vec<(String, BTreeSet<String>)> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(quoted) = rest.trim_start().strip_prefix('"') else { continue };
        let Some(end) = quoted.find('"') else { continue };
        let path = quoted[..end].to_string();
        // The call runs to the parenthesis that closes `.route(`.
        let (mut depth, mut call_end) = (1usize, rest.len());
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        call_end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &rest[..call_end];
        let methods = METHODS
            .iter()
            .filter(|m| {
                call.match_indices(&format!("{m}(")).any(|(i, _)| {
                    let before = call[..i].chars().next_back();
                    before.is_none_or(|b| !(b.is_alphanumeric() || b == '_'))
                })
            })
            .map(|m| m.to_string())
            .collect();
        found.push((path, methods));
    }
    found
}

#[test]
fn every_route_is_in_the_api_document_and_every_documented_path_is_a_route() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for krate in CRATES {
        let mut files = Vec::new();
        rust_files(&root.join(krate).join("src"), &mut files);
        for file in files {
            for (path, methods) in routes_in(&std::fs::read_to_string(&file).unwrap()) {
                routes.entry(path).or_default().extend(methods);
            }
        }
    }
    for page in PAGES {
        assert!(routes.remove(page).is_some(), "the console's {page} is mounted");
    }
    assert!(routes.len() >= 35, "the routes were read: {routes:?}");
    let document: serde_json::Value = serde_json::from_str(&tessera_node::api_doc::json()).unwrap();
    let paths = document["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, methods) in &routes {
        assert!(!methods.is_empty(), "{path}: no method read");
        for m in methods {
            if paths.get(path).and_then(|p| p.get(m)).is_none() {
                missing.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "routes the API document does not describe: {missing:?}");
    let stale: Vec<&String> = paths.keys().filter(|p| !routes.contains_key(*p)).collect();
    assert!(stale.is_empty(), "documented paths no node serves: {stale:?}");
}

/// Every `$ref` of a JSON value.
fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                out.push(r);
            }
            m.values().for_each(|v| refs(v, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_operation_has_a_summary_and_answers_and_every_schema_it_names_exists() {
    let document: serde_json::Value = serde_json::from_str(&tessera_node::api_doc::json()).unwrap();
    let mut ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{} {path}", method.to_uppercase());
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty() && !s.contains('`')),
                "{what}: a plain summary"
            );
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{what}: its answers");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{what}: a tag");
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(ids.insert(id.clone()), "{what}: operationId {id:?} is used twice");
        }
    }
    let mut named = Vec::new();
    refs(&document, &mut named);
    let schemas = document["components"]["schemas"].as_object().expect("schemas");
    for r in named {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}: not a schema"));
        assert!(schemas.contains_key(name), "{r} is named but not defined");
    }
    for scheme in ["admin", "playback"] {
        assert!(document["components"]["securitySchemes"][scheme].is_object(), "the {scheme} scheme");
    }
}

#[test]
fn the_document_in_docs_is_the_one_the_handlers_make() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let made = tessera_node::api_doc::json();
    if std::env::var_os("TESSERA_WRITE_API_DOC").is_some() {
        std::fs::write(&file, &made).unwrap();
    }
    let kept = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        kept == made,
        "docs/openapi.json is not the document the handlers make: TESSERA_WRITE_API_DOC=1 cargo test -p tessera-tests api_document"
    );
}
