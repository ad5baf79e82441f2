//! Real databases for unit tests: a SQLite file in a temporary directory,
//! and, when `FLEETCARE_TEST_POSTGRES_URL` is set, a PostgreSQL database
//! created for the one test and dropped after it, so that tests run in
//! parallel without seeing each other's rows.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::AnyConnection;
use sqlx::{AssertSqlSafe, Connection};

use super::{Db, sqlite_url};

/// The server to test against, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub(crate) const POSTGRES_ENV: &str = "FLEETCARE_TEST_POSTGRES_URL";

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A runtime with worker threads, for tests of concurrent callers.
pub(crate) fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `case` on a fresh SQLite database.
pub(crate) fn on_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    on_sqlite_in(runtime(), case);
}

/// [`on_sqlite`] on the runtime `rt`.
pub(crate) fn on_sqlite_in<F, Fut>(rt: tokio::runtime::Runtime, case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let url = sqlite_url(&dir.path().join("fleetcare.db")).unwrap();
        let db = Db::connect_url(&url).await.unwrap();
        case(db.clone()).await;
        db.close().await;
    });
}

/// Runs `case` on a PostgreSQL database of its own, or says it was skipped.
pub(crate) fn on_postgres<F, Fut>(case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    on_postgres_in(runtime(), case);
}

/// [`on_postgres`] on the runtime `rt`.
pub(crate) fn on_postgres_in<F, Fut>(rt: tokio::runtime::Runtime, case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(server) = std::env::var(POSTGRES_ENV) else {
        eprintln!("skipped: {POSTGRES_ENV} is not set, so this test did not run on PostgreSQL");
        return;
    };
    let name = unique_name();
    let db = rt.block_on(async {
        admin(&server, &format!("CREATE DATABASE {name}")).await;
        Db::connect_url(&with_database(&server, &name))
            .await
            .unwrap()
    });
    let outcome = catch_unwind(AssertUnwindSafe(|| rt.block_on(case(db.clone()))));
    // Dropped even when the case failed, so failed runs leave nothing behind.
    rt.block_on(async {
        db.close().await;
        admin(&server, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
    });
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// Generates `mod $case { fn sqlite(); fn postgres(); }` for each
/// `async fn $case(db: Db)` in scope, so that one body runs on both.
/// `db_tests!(multi_thread: a, b)` runs them on a runtime with worker
/// threads, for cases that spawn concurrent tasks.
macro_rules! db_tests {
    (multi_thread: $($case:ident),* $(,)?) => {$(
        mod $case {
            #[test]
            fn sqlite() {
                $crate::db::testing::on_sqlite_in(
                    $crate::db::testing::multi_thread_runtime(),
                    super::$case,
                );
            }
            #[test]
            fn postgres() {
                $crate::db::testing::on_postgres_in(
                    $crate::db::testing::multi_thread_runtime(),
                    super::$case,
                );
            }
        }
    )*};
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[test]
            fn sqlite() {
                $crate::db::testing::on_sqlite(super::$case);
            }
            #[test]
            fn postgres() {
                $crate::db::testing::on_postgres(super::$case);
            }
        }
    )*};
}
pub(crate) use db_tests;

fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "fleetcare_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `server` with its database name replaced by `name`.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

async fn admin(server: &str, statement: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(server).await.unwrap();
    // The database name is made here, not taken from input.
    sqlx::raw_sql(AssertSqlSafe(statement))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[test]
fn database_names_replace_the_server_s() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://p@h:1?sslmode=disable", "x"),
        "postgres://p@h:1/x?sslmode=disable"
    );
}
