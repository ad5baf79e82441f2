//! The check of `dashboards/`: every Grafana dashboard parses, every panel
//! has a description and uses the provisioned data source, and every
//! measurement, field and tag a Flux query names is one the sink writes
//! ([`super::schema`]).
//!
//! Names are read from the queries as written: `r._measurement == "…"`,
//! `r._field == "…"` (also `r["…"]`), any other `r.name`, and the strings
//! of `columns: [...]`, `column: "…"` and `tag: "…"`. Columns starting with
//! `_` are Flux's own. A field must belong to a measurement the query
//! filters on, a column to one of their tags or fields; a query that names
//! no measurement (a variable's `schema.tagValues`) may use any tag.

use std::path::Path;

use serde_json::Value;

use super::schema::{self, Measurement};

/// The data source uid the provisioning file defines.
const DATASOURCE_UID: &str = "fleetcare-influxdb";

/// What one query names.
#[derive(Debug, Default, PartialEq, Eq)]
struct Names {
    measurements: Vec<String>,
    fields: Vec<String>,
    columns: Vec<String>,
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The string literal at the start of `s` (after blanks), if any.
fn literal(s: &str) -> Option<&str> {
    let s = s.trim_start().strip_prefix('"')?;
    s.find('"').map(|end| &s[..end])
}

fn names(query: &str) -> Names {
    let mut n = Names::default();
    let bytes = query.as_bytes();
    let mut i = 0;
    while i + 2 < bytes.len() {
        let standalone = i == 0 || !is_ident(bytes[i - 1]);
        if standalone && bytes[i] == b'r' && (bytes[i + 1] == b'.' || bytes[i + 1] == b'[') {
            let rest = &query[i + 2..];
            let (name, after) = if bytes[i + 1] == b'.' {
                let len = rest.bytes().take_while(|b| is_ident(*b)).count();
                (&rest[..len], &rest[len..])
            } else {
                match literal(rest) {
                    Some(name) => {
                        let after = rest.trim_start();
                        (name, after[name.len() + 2..].trim_start_matches([']', ' ']))
                    }
                    None => ("", rest),
                }
            };
            let compared = after.trim_start().strip_prefix("==").and_then(literal);
            match (name, compared) {
                ("_measurement", Some(v)) => n.measurements.push(v.to_owned()),
                ("_field", Some(v)) => n.fields.push(v.to_owned()),
                (name, _) if !name.is_empty() && !name.starts_with('_') => {
                    n.columns.push(name.to_owned());
                }
                _ => {}
            }
        }
        i += 1;
    }
    for key in ["columns:", "columnKey:", "rowKey:"] {
        for (at, _) in query.match_indices(key) {
            let rest = query[at + key.len()..].trim_start();
            let Some(list) = rest.strip_prefix('[').and_then(|r| r.split(']').next()) else {
                continue;
            };
            for item in list.split(',') {
                if let Some(c) = literal(item).filter(|c| !c.starts_with('_')) {
                    n.columns.push(c.to_owned());
                }
            }
        }
    }
    for key in ["column:", "tag:"] {
        for (at, _) in query.match_indices(key) {
            let before = query[..at].bytes().next_back();
            if before.is_some_and(is_ident) {
                continue;
            }
            if let Some(c) = literal(&query[at + key.len()..]).filter(|c| !c.starts_with('_')) {
                n.columns.push(c.to_owned());
            }
        }
    }
    n
}

/// What is wrong with one query, as sentences.
fn check_query(where_: &str, query: &str) -> Vec<String> {
    let n = names(query);
    let mut problems = Vec::new();
    let mut used: Vec<&Measurement> = Vec::new();
    for m in &n.measurements {
        match schema::measurement(m) {
            Some(s) => used.push(s),
            None => problems.push(format!(
                "{where_}: measurement {m:?} is not written by the sink"
            )),
        }
    }
    for f in &n.fields {
        if !used.iter().any(|m| m.fields.contains(&f.as_str())) {
            problems.push(format!(
                "{where_}: field {f:?} is not a field of {:?}",
                n.measurements
            ));
        }
    }
    let candidates: Vec<&Measurement> = if used.is_empty() {
        schema::ALL.iter().collect()
    } else {
        used
    };
    for c in &n.columns {
        let known = candidates
            .iter()
            .any(|m| m.tags.contains(&c.as_str()) || m.fields.contains(&c.as_str()));
        if !known {
            problems.push(format!(
                "{where_}: tag {c:?} is not written for {:?}",
                n.measurements
            ));
        }
    }
    problems
}

fn uid_ok(datasource: Option<&Value>) -> bool {
    datasource
        .and_then(|d| d.get("uid"))
        .and_then(Value::as_str)
        == Some(DATASOURCE_UID)
}

/// The problems of one dashboard (its JSON text); `name` for messages.
fn check_dashboard(name: &str, text: &str) -> Vec<String> {
    let d: Value = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(e) => return vec![format!("{name}: not JSON: {e}")],
    };
    let mut problems = Vec::new();
    for key in ["uid", "title"] {
        if d.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
            problems.push(format!("{name}: no {key}"));
        }
    }
    let mut panels: Vec<&Value> = Vec::new();
    let mut stack: Vec<&Value> = d
        .get("panels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    while let Some(p) = stack.pop() {
        stack.extend(
            p.get("panels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
        if p.get("type").and_then(Value::as_str) != Some("row") {
            panels.push(p);
        }
    }
    if panels.is_empty() {
        problems.push(format!("{name}: no panels"));
    }
    for p in panels {
        let title = p
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("(untitled)");
        let at = format!("{name}, panel {title:?}");
        if p.get("description")
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            problems.push(format!("{at}: no description"));
        }
        if !uid_ok(p.get("datasource")) {
            problems.push(format!("{at}: data source is not {DATASOURCE_UID:?}"));
        }
        let targets = p.get("targets").and_then(Value::as_array);
        if targets.is_none_or(Vec::is_empty) {
            problems.push(format!("{at}: no query"));
        }
        for t in targets.into_iter().flatten() {
            match t.get("query").and_then(Value::as_str) {
                Some(q) => {
                    if names(q).measurements.is_empty() {
                        problems.push(format!("{at}: the query names no measurement"));
                    }
                    problems.extend(check_query(&at, q));
                }
                None => problems.push(format!("{at}: a target without a Flux query")),
            }
        }
    }
    let variables = d.pointer("/templating/list").and_then(Value::as_array);
    for v in variables.into_iter().flatten() {
        let at = format!(
            "{name}, variable {:?}",
            v.get("name").and_then(Value::as_str).unwrap_or("?")
        );
        if v.get("type").and_then(Value::as_str) != Some("query") {
            continue;
        }
        if !uid_ok(v.get("datasource")) {
            problems.push(format!("{at}: data source is not {DATASOURCE_UID:?}"));
        }
        let q = v.get("query");
        let q = q
            .and_then(Value::as_str)
            .or_else(|| q?.get("query")?.as_str());
        match q {
            Some(q) => problems.extend(check_query(&at, q)),
            None => problems.push(format!("{at}: no query")),
        }
    }
    problems
}

/// The dashboards folder of the repository.
fn folder() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

#[test]
fn every_dashboard_uses_only_what_the_sink_writes() {
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(folder()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            problems.extend(check_dashboard(
                &name,
                &std::fs::read_to_string(&path).unwrap(),
            ));
            checked.push(name);
        }
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "faults-per-model.json",
            "fleet-health.json",
            "meters.json",
            "ticket-sla.json"
        ]
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn provisioning_points_at_the_dashboards_and_the_data_source() {
    let ds =
        std::fs::read_to_string(folder().join("provisioning/datasources/influxdb.yaml")).unwrap();
    assert!(ds.contains(&format!("uid: {DATASOURCE_UID}")), "{ds}");
    assert!(ds.contains("version: Flux"), "{ds}");
    assert!(ds.contains("token: ${FLEETCARE_INFLUXDB_TOKEN}"), "{ds}");
    let provider =
        std::fs::read_to_string(folder().join("provisioning/dashboards/fleetcare.yaml")).unwrap();
    assert!(provider.contains("type: file"), "{provider}");
}

#[test]
fn names_are_read_from_flux() {
    let q = r#"from(bucket: v.defaultBucket)
  |> filter(fn: (r) => r._measurement == "fault" and r["_field"] == "started" and r.fleet =~ /^${fleet:regex}$/)
  |> filter(fn: (r) => r["model"] != "" and r._value == 1.0)
  |> group(columns: ["spn", "fmi", "_time"])
  |> distinct(column: "vehicle")"#;
    assert_eq!(
        names(q),
        Names {
            measurements: vec!["fault".into()],
            fields: vec!["started".into()],
            columns: ["fleet", "model", "spn", "fmi", "vehicle"]
                .map(String::from)
                .to_vec(),
        }
    );
    assert!(check_query("q", q).is_empty(), "{:?}", check_query("q", q));
}

#[test]
fn unknown_names_are_caught() {
    let bad = r#"from(bucket: v.defaultBucket)
  |> filter(fn: (r) => r._measurement == "meters" or r._measurement == "meter")
  |> filter(fn: (r) => r._field == "valu" and r.vehicel == "TRK-001")
  |> group(columns: ["spn"])"#;
    let problems = check_query("q", bad);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].contains("measurement \"meters\""));
    assert!(problems[1].contains("field \"valu\""));
    assert!(problems[2].contains("tag \"vehicel\""));
    // spn is a tag of faults, not of meters.
    assert!(problems[3].contains("tag \"spn\""));
    // Variables: any tag of any measurement, and nothing else.
    assert!(
        check_query(
            "v",
            r#"schema.tagValues(bucket: v.defaultBucket, tag: "model")"#
        )
        .is_empty()
    );
    assert_eq!(
        check_query(
            "v",
            r#"schema.tagValues(bucket: v.defaultBucket, tag: "depot")"#
        )
        .len(),
        1
    );

    let panel = |description: &str, uid: &str, query: &str| {
        serde_json::json!({
            "uid": "x", "title": "X",
            "panels": [{"type": "row", "panels": [{
                "title": "P", "type": "stat", "description": description,
                "datasource": {"type": "influxdb", "uid": uid},
                "targets": [{"refId": "A", "query": query}]
            }]}]
        })
        .to_string()
    };
    let good = r#"from(bucket: v.defaultBucket) |> filter(fn: (r) => r._measurement == "meter")"#;
    assert!(check_dashboard("x.json", &panel("Why.", DATASOURCE_UID, good)).is_empty());
    let p = check_dashboard("x.json", &panel(" ", "other", bad));
    assert!(p.iter().any(|s| s.contains("no description")), "{p:?}");
    assert!(p.iter().any(|s| s.contains("data source")), "{p:?}");
    assert!(p.iter().any(|s| s.contains("\"valu\"")), "{p:?}");
    let p = check_dashboard(
        "x.json",
        &panel("Why.", DATASOURCE_UID, "from(bucket: \"b\")"),
    );
    assert!(
        p.iter().any(|s| s.contains("names no measurement")),
        "{p:?}"
    );
    assert!(
        check_dashboard("x.json", "{")
            .first()
            .unwrap()
            .contains("not JSON")
    );
}
