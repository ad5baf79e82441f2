//! The layers of `src/` (README, "Architecture"): every `crate::` path in the
//! service's code points down or sideways, never up, and no two top-level
//! modules import each other, however indirectly (issue 19).
//!
//! The paths are read with syn from every file under `src/`: `use` trees,
//! paths in code and types, `super::` paths that climb to the crate root,
//! and `crate::` paths inside macro calls (templates, `format!`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Top-level modules of `src/`, highest layer first. A module may use the
/// modules of its own layer and of every layer below it.
const LAYERS: &[(&str, &[&str])] = &[
    ("the command line", &["cli"]),
    ("the service", &["app"]),
    (
        "edges and outputs",
        &["http", "sources", "alerts", "sink", "simulate"],
    ),
    ("what the data means", &["query", "report", "tickets"]),
    (
        "what is kept",
        &["store", "registry", "parts", "catalog", "db"],
    ),
    ("the process", &["runtime"]),
    (
        "settings and input files",
        &["config", "recording", "lines"],
    ),
];

/// One use of another top-level module: `from` uses `to` in `file` (under
/// `src/`) through `path` (`crate::store::Store`).
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    file: PathBuf,
    path: String,
}

/// Collects the top-level modules a file's paths reach.
struct Paths<'a> {
    /// The module path of the code being visited (`["store", "wal"]`).
    module: Vec<String>,
    file: &'a Path,
    found: Vec<(String, String)>,
}

impl Paths<'_> {
    /// The top-level module that `segments` (the words of a path, `crate`
    /// and `super` included) names, if it starts at the crate or climbs to
    /// it.
    fn target(&self, segments: &[String]) -> Option<String> {
        let first = segments.first()?;
        if first == "crate" {
            return segments.get(1).cloned();
        }
        if first != "super" {
            return None;
        }
        let ups = segments.iter().take_while(|s| *s == "super").count();
        let mut here = self.module.clone();
        for _ in 0..ups {
            here.pop()?;
        }
        here.extend(segments.iter().skip(ups).cloned());
        here.first().cloned()
    }

    fn record(&mut self, segments: &[String]) {
        if let Some(t) = self.target(segments) {
            self.found.push((t, segments.join("::")));
        }
    }
}

/// Every path a use tree imports, as word lists (`crate::{a, b::c}` gives
/// `crate a` and `crate b c`).
fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut p = prefix.clone();
            p.push(n.ident.to_string());
            out.push(p);
        }
        syn::UseTree::Rename(r) => {
            let mut p = prefix.clone();
            p.push(r.ident.to_string());
            out.push(p);
        }
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_paths(t, prefix, out);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        use_paths(&u.tree, &mut Vec::new(), &mut paths);
        for p in paths {
            self.record(&p);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let words: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.record(&words);
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        macro_paths(m.tokens.clone(), self);
        syn::visit::visit_macro(self, m);
    }
}

/// `crate::x` and `super::x` inside a macro's tokens (maud templates,
/// `format!` arguments), which syn leaves unparsed.
fn macro_paths(tokens: proc_macro2::TokenStream, paths: &mut Paths<'_>) {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        if let TokenTree::Group(g) = &tokens[i] {
            macro_paths(g.stream(), paths);
        }
        if let TokenTree::Ident(id) = &tokens[i]
            && (id == "crate" || id == "super")
        {
            let mut words = vec![id.to_string()];
            let mut j = i + 1;
            while let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)), Some(next)) =
                (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2))
            {
                if a.as_char() != ':' || b.as_char() != ':' {
                    break;
                }
                match next {
                    TokenTree::Ident(n) => words.push(n.to_string()),
                    _ => break,
                }
                j += 3;
            }
            if words.len() > 1 {
                paths.record(&words);
            }
            i = j;
            continue;
        }
        i += 1;
    }
}

/// The module path of a file under `src/` (`store/wal.rs` → `store wal`,
/// `store/mod.rs` → `store`, `lib.rs` → nothing).
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_owned();
        if stem != "mod" && stem != "lib" && stem != "main" {
            parts.push(stem);
        }
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every use of one top-level module by another in `src`.
fn edges(src: &Path) -> Vec<Edge> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap().to_owned();
        let module = module_of(&relative);
        let Some(from) = module.first().cloned() else {
            continue; // lib.rs and main.rs only declare and call modules
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let ast = syn::parse_file(&text)
            .unwrap_or_else(|e| panic!("{}: syn cannot parse it: {e}", file.display()));
        let mut paths = Paths {
            module,
            file: &file,
            found: Vec::new(),
        };
        paths.visit_file(&ast);
        for (to, path) in paths.found {
            if to != from {
                edges.push(Edge {
                    from: from.clone(),
                    to,
                    file: paths.file.to_owned(),
                    path,
                });
            }
        }
    }
    edges
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// What is wrong with these edges: a module no layer names, an import of a
/// higher layer, a cycle between top-level modules.
fn violations(edges: &[Edge], top_level: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for m in top_level {
        if layer_of(m).is_none() {
            problems.push(format!(
                "src/{m} is in no layer: add it to LAYERS in tests/layering.rs and to README's Architecture"
            ));
        }
    }
    for e in edges {
        let (Some(from), Some(to)) = (layer_of(&e.from), layer_of(&e.to)) else {
            continue;
        };
        if to < from {
            problems.push(format!(
                "{}: `{}` ({}) uses `{}` ({}), a layer above it: {}",
                e.file.display(),
                e.from,
                LAYERS[from].0,
                e.to,
                LAYERS[to].0,
                e.path
            ));
        }
    }
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in edges {
        graph.entry(&e.from).or_default().insert(&e.to);
    }
    for cycle in cycles(&graph) {
        let witness: Vec<String> = cycle
            .windows(2)
            .filter_map(|w| {
                edges
                    .iter()
                    .find(|e| e.from == w[0] && e.to == w[1])
                    .map(|e| format!("{} in {}", e.path, e.file.display()))
            })
            .collect();
        problems.push(format!(
            "import cycle {} (at {})",
            cycle.join(" → "),
            witness.join(", ")
        ));
    }
    // One line per distinct problem: a path used twice in a file is one
    // import to move.
    let mut seen = BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    problems
}

/// One cycle through each strongly connected group of modules, closed
/// (`a b a`).
fn cycles<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<String>> {
    let reaches = |from: &'a str, to: &'a str| -> Option<Vec<&'a str>> {
        // Breadth-first, so the cycle shown is a shortest one.
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from]);
        while let Some(n) = queue.pop_front() {
            for &next in graph.get(n).into_iter().flatten() {
                if next == to {
                    let mut path = vec![to, n];
                    let mut at = n;
                    while at != from {
                        at = previous[at];
                        path.push(at);
                    }
                    path.reverse();
                    return Some(path);
                }
                if next != from && !previous.contains_key(next) {
                    previous.insert(next, n);
                    queue.push_back(next);
                }
            }
        }
        None
    };
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut found = Vec::new();
    for &start in graph.keys() {
        if seen.contains(start) {
            continue;
        }
        if let Some(path) = reaches(start, start) {
            seen.extend(path.iter().copied());
            found.push(path.into_iter().map(str::to_owned).collect());
        }
    }
    found
}

fn top_level_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            if p.is_dir() {
                Some(name)
            } else {
                let stem = name.strip_suffix(".rs")?;
                (stem != "lib" && stem != "main").then(|| stem.to_owned())
            }
        })
        .collect()
}

#[test]
fn src_imports_point_down_and_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = edges(&src);
    assert!(
        edges.len() > 50,
        "the scan found only {} imports between modules: it is broken",
        edges.len()
    );
    let problems = violations(&edges, &top_level_modules(&src));
    assert!(
        problems.is_empty(),
        "the layers of src/ are broken:\n{}",
        problems.join("\n")
    );
}

/// The check itself: an upward import, a module in no layer and a cycle
/// are each found.
#[test]
fn upward_imports_unknown_modules_and_cycles_are_found() {
    let edge = |from: &str, to: &str| Edge {
        from: from.to_owned(),
        to: to.to_owned(),
        file: PathBuf::from(format!("src/{from}/mod.rs")),
        path: format!("crate::{to}::Thing"),
    };
    let modules: BTreeSet<String> = ["store", "http", "catalog", "registry"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(violations(&[edge("http", "store")], &modules).is_empty());

    let upward = violations(&[edge("store", "http")], &modules);
    assert_eq!(upward.len(), 1, "{upward:?}");
    assert!(upward[0].contains("`store` (what is kept) uses `http`"));

    let sideways_cycle = violations(
        &[edge("catalog", "registry"), edge("registry", "catalog")],
        &modules,
    );
    assert_eq!(sideways_cycle.len(), 1, "{sideways_cycle:?}");
    assert!(sideways_cycle[0].starts_with("import cycle catalog → registry → catalog"));

    let mut with_stray = modules.clone();
    with_stray.insert("utils".to_owned());
    let stray = violations(&[], &with_stray);
    assert_eq!(stray.len(), 1);
    assert!(stray[0].contains("src/utils is in no layer"));
}

/// `super::` paths that climb out of a module count, and so do paths in
/// macro calls.
#[test]
fn super_paths_and_macro_paths_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::write(
        src.join("store/wal.rs"),
        "use super::super::http::Router;\n\
         fn f() { let _ = format!(\"{}\", crate::cli::NAME); }\n\
         mod tests { use super::super::dedupe::Set; }\n",
    )
    .unwrap();
    let found: BTreeSet<(String, String)> =
        edges(src).into_iter().map(|e| (e.from, e.to)).collect();
    let expected: BTreeSet<(String, String)> = [("store", "http"), ("store", "cli")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(found, expected);
}
