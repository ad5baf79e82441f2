//! `fleetcare vehicles|services|stock import` and `vehicles unknown` end to
//! end: the built binary on the CSV fixtures in tests/data/registry/, with
//! the shipped catalogue and a SQLite database in a temporary --data
//! directory (and PostgreSQL through --config when
//! FLEETCARE_TEST_POSTGRES_URL is set).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::{AssertSqlSafe, Connection};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/data/registry").join(name)
}

/// `fleetcare --data DATA --models models/ ARGS...`
fn fleetcare(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetcare"))
        .arg("--data")
        .arg(data)
        .arg("--models")
        .arg(repo().join("models"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn import(data: &Path, what: &str, file: &Path) -> Output {
    fleetcare(data, &[what, "import", file.to_str().unwrap()])
}

#[test]
fn imports_print_a_summary_and_reimports_change_nothing() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path().join("data");
    let vehicles = fixture("vehicles.csv");

    let out = import(&data, "vehicles", &vehicles);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "imported 3 vehicles (3 new, 0 updated, 0 unchanged) from {}\n",
            vehicles.display()
        )
    );
    assert!(data.join("fleetcare.db").is_file());

    let services = fixture("services.csv");
    let out = import(&data, "services", &services);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "imported 4 services (4 new, 0 updated, 0 unchanged) from {}\n",
            services.display()
        )
    );
    let out = import(&data, "services", &services);
    assert_eq!(
        stdout(&out),
        format!(
            "imported 4 services (0 new, 0 updated, 4 unchanged) from {}\n",
            services.display()
        )
    );

    let stock = fixture("stock.csv");
    let out = import(&data, "stock", &stock);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "imported 3 stock levels (3 new, 0 updated, 0 unchanged) from {}\n",
            stock.display()
        )
    );
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_file_with_bad_rows_is_refused_whole_with_line_numbers() {
    let data = tempfile::tempdir().unwrap();
    let bad = fixture("vehicles-bad.csv");
    let out = import(data.path(), "vehicles", &bad);
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    let at = |line: u32| format!("{}:{line}: ", bad.display());
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with(&format!(
            "{}model_id \"compactor-c13\" is not in the catalogue; use one of compactor-c12, ",
            at(3)
        )),
        "{err}"
    );
    assert_eq!(
        lines[1],
        format!(
            "{}commissioned_on \"2024/05/01\" is not a date; write it as YYYY-MM-DD, e.g. 2024-03-15",
            at(4)
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "fleetcare: nothing was imported from {}: fix the 2 rows above and import the file again",
            bad.display()
        )
    );

    // Line 2 was good but was not applied: the good file finds TRK-001 new.
    let out = import(data.path(), "vehicles", &fixture("vehicles.csv"));
    assert!(
        stdout(&out).contains("(3 new, 0 updated, 0 unchanged)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_wrong_header_names_the_columns() {
    let data = tempfile::tempdir().unwrap();
    let file = fixture("stock-header.csv");
    let out = import(data.path(), "stock", &file);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "fleetcare: {}:1: column \"on_hand\" is missing, column \"count\" is not expected; \
             the header must be part,depot,on_hand (in any order)\n",
            file.display()
        )
    );
}

#[test]
fn services_of_unregistered_vehicles_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let file = fixture("services.csv");
    let out = import(data.path(), "services", &file);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "{}:2: vehicle \"TRK-001\" is not in the registry; add it with fleetcare vehicles import first\n",
            file.display()
        )),
        "{err}"
    );
    assert!(
        err.ends_with("fix the 4 rows above and import the file again\n"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_one_sentence() {
    let data = tempfile::tempdir().unwrap();
    let out = fleetcare(data.path(), &["vehicles", "import", "no-such.csv"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("fleetcare: cannot read no-such.csv: "),
        "{err}"
    );
    assert!(err.ends_with("; check the path\n"), "{err}");
}

#[test]
fn unknown_lists_vehicles_seen_but_not_registered_under_their_fleet() {
    let data = tempfile::tempdir().unwrap();
    let recording = fixture("seen.jsonl");
    let out = fleetcare(data.path(), &["replay", recording.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    import(data.path(), "vehicles", &fixture("vehicles.csv"));

    let out = fleetcare(data.path(), &["vehicles", "unknown"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert_eq!(
        rows[0],
        ["fleet", "vehicle", "first_seen", "last_seen", "note"]
    );
    assert_eq!(
        (rows[1][0], rows[1][1], rows[1][4]),
        ("acme", "TRK-099", "-")
    );
    assert_eq!(
        (rows[2][0], rows[2][1], rows[2][4]),
        ("beta", "TRK-002", "registered in fleet acme")
    );
    assert_eq!(
        rows[3].join(" "),
        "2 vehicles sent data but are not in the registry; add them with fleetcare vehicles import"
    );
}

/// The same import through `database.url`, on a PostgreSQL database made
/// for this test.
#[test]
fn imports_go_to_postgres_when_configured() {
    let Ok(server) = std::env::var("FLEETCARE_TEST_POSTGRES_URL") else {
        eprintln!("skipped: FLEETCARE_TEST_POSTGRES_URL is not set");
        return;
    };
    let name = format!("fleetcare_e2e_{}", std::process::id());
    let admin = |sql: String| {
        let server = server.clone();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                sqlx::any::install_default_drivers();
                let mut conn = sqlx::AnyConnection::connect(&server).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            });
    };
    admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    admin(format!("CREATE DATABASE {name}"));
    let (base, _) = server.rsplit_once('/').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleetcare.toml");
    std::fs::write(&config, format!("[database]\nurl = \"{base}/{name}\"\n")).unwrap();
    let data = dir.path().join("data");

    let run = |what: &str, file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_fleetcare"))
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(&data)
            .arg("--models")
            .arg(repo().join("models"))
            .args([what, "import", file.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let vehicles = run("vehicles", &fixture("vehicles.csv"));
    let services = run("services", &fixture("services.csv"));
    let again = run("services", &fixture("services.csv"));
    admin(format!("DROP DATABASE {name} WITH (FORCE)"));

    assert!(vehicles.status.success(), "{}", stderr(&vehicles));
    assert!(stdout(&vehicles).starts_with("imported 3 vehicles (3 new,"));
    assert!(
        stdout(&services).starts_with("imported 4 services (4 new,"),
        "{}",
        stderr(&services)
    );
    assert!(stdout(&again).starts_with("imported 4 services (0 new, 0 updated, 4 unchanged)"));
    assert!(
        !data.join("fleetcare.db").exists(),
        "no SQLite file when PostgreSQL is used"
    );
}
