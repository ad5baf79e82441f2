//! The relational database: the fleet registry, service history and stock,
//! tickets, API tokens and the alert log. SQLite in `{data_dir}/fleetcare.db` unless
//! `database.url` names a PostgreSQL server (contract C9).
//!
//! Both go through sqlx's `Any` driver, so every module writes its SQL once
//! and runs it on either: `$1` placeholders (SQLite accepts them too), types
//! both know (TEXT, BIGINT, DOUBLE PRECISION), dates and times as
//! fixed-width ISO 8601 text. The schema lives in `migrations/`, embedded in
//! the binary and applied on every connect.

#[cfg(test)]
pub(crate) mod testing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection};
use thiserror::Error;

use crate::config::Config;

/// The SQLite file under the data directory when no `database.url` is set.
pub const SQLITE_FILE: &str = "fleetcare.db";

/// How long a command waits for a connection before it gives up: long
/// enough for a busy server, short enough that a wrong address is reported
/// while the user still waits for it.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// A database that cannot be opened or used.
#[derive(Debug, Error)]
pub enum DbError {
    #[error("cannot create the data directory {}: {error}; check --data and its permissions", dir.display())]
    DataDir { dir: PathBuf, error: std::io::Error },
    #[error("cannot make the database file {} readable by its owner only: {error}; check --data and its permissions", path.display())]
    FileMode {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the database path {} is not valid UTF-8; choose a --data directory with a UTF-8 name", path.display())]
    NonUtf8Path { path: PathBuf },
    #[error(
        "database.url {url} is neither postgres:// nor sqlite:; give a PostgreSQL URL or remove it to use SQLite"
    )]
    UnsupportedUrl { url: String },
    #[error(
        "cannot open the database {url}: {error}; check database.url and that the server is running"
    )]
    Connect { url: String, error: sqlx::Error },
    #[error(
        "the database server at {url} did not answer within 10 s; check database.url and that the server is running"
    )]
    NoAnswer { url: String },
    #[error("cannot bring the database {url} up to date: {error}")]
    Migrate {
        url: String,
        error: sqlx::migrate::MigrateError,
    },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// A stored value that this version cannot read: the database was
    /// edited by hand or written by something else.
    #[error("the database holds {table}.{column} = {value:?}, which is not valid: {reason}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        value: String,
        reason: String,
    },
}

/// Which server a [`Db`] talks to, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the migrated database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Opens the database `config` names, creating the SQLite file (and the
    /// data directory) if needed, and applies pending migrations.
    pub async fn connect(config: &Config) -> Result<Self> {
        match &config.database.url {
            Some(url) => Self::connect_url(url).await,
            None => {
                let dir = &config.data_dir;
                crate::runtime::owner_only::create_dir_all(dir).map_err(|error| {
                    DbError::DataDir {
                        dir: dir.clone(),
                        error,
                    }
                })?;
                let file = dir.join(SQLITE_FILE);
                owner_only_file(&file).map_err(|error| DbError::FileMode {
                    path: file.clone(),
                    error,
                })?;
                Self::connect_url(&sqlite_url(&file)?).await
            }
        }
    }

    /// Opens a `postgres://` or `sqlite:` URL and applies pending migrations.
    pub async fn connect_url(url: &str) -> Result<Self> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(DbError::UnsupportedUrl { url: redact(url) });
        };
        sqlx::any::install_default_drivers();
        // One plain connection first: a pool retries until its timeout and
        // then reports only that it timed out, where this says "password
        // authentication failed" or "database does not exist".
        let probe = tokio::time::timeout(ACQUIRE_TIMEOUT, AnyConnection::connect(url))
            .await
            .map_err(|_| DbError::NoAnswer { url: redact(url) })?
            .map_err(|error| DbError::Connect {
                url: redact(url),
                error,
            })?;
        probe.close().await?;
        let pool = AnyPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(|error| DbError::Connect {
                url: redact(url),
                error,
            })?;
        if backend == Backend::Sqlite {
            use_wal(&pool).await;
        }
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|error| DbError::Migrate {
                url: redact(url),
                error,
            })?;
        Ok(Self { pool, backend })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for the connections to close: a SQLite file is complete (its
    /// WAL checkpointed) once this returns.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Write-ahead logging lets the API read while an import or the ticket
/// path writes. It is a property of the file, so an old file is switched
/// once; if another process holds it open the switch cannot take its lock,
/// and the default journal is still correct, only less concurrent.
async fn use_wal(pool: &AnyPool) {
    let mode: std::result::Result<(String,), _> = sqlx::query_as("PRAGMA journal_mode = WAL")
        .fetch_one(pool)
        .await;
    match mode {
        Ok((mode,)) if mode.eq_ignore_ascii_case("wal") => {}
        Ok((mode,)) => tracing::warn!(mode, "SQLite kept its journal mode instead of WAL."),
        Err(error) => tracing::warn!(%error, "Could not switch SQLite to WAL."),
    }
}

/// Creates the SQLite file `path` readable and writable by its owner only
/// (0600), or narrows an existing one to that: it holds the hashes of API
/// tokens and web sessions, the ticket history and the fleet registry.
/// SQLite gives its `-wal` and `-shm` files the mode of the database file,
/// so they follow. An empty file is a valid new database.
fn owner_only_file(path: &Path) -> std::io::Result<()> {
    use crate::runtime::owner_only::{FILE_MODE, options};
    use std::os::unix::fs::PermissionsExt;
    options().create(true).append(true).open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
}

/// The sqlx URL of a SQLite file, created if missing. The path is made
/// absolute and percent-encoded, so that spaces, `?` and `#` in directory
/// names survive the URL.
pub fn sqlite_url(path: &Path) -> Result<String> {
    let absolute = std::path::absolute(path).map_err(|error| DbError::DataDir {
        dir: path.to_path_buf(),
        error,
    })?;
    let text = absolute.to_str().ok_or_else(|| DbError::NonUtf8Path {
        path: absolute.clone(),
    })?;
    let mut url = String::from("sqlite://");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'_' | b'.' | b'~') {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_survive_odd_directory_names() {
        let url = sqlite_url(Path::new("/tmp/a b/c?d#e%/fleetcare.db")).unwrap();
        assert_eq!(
            url,
            "sqlite:///tmp/a%20b/c%3Fd%23e%25/fleetcare.db?mode=rwc"
        );
        let relative = sqlite_url(Path::new("data/fleetcare.db")).unwrap();
        assert!(relative.starts_with("sqlite:///"), "{relative}");
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://fc:s3cret@db:5432/fleetcare?sslmode=require"),
            "postgres://fc:***@db:5432/fleetcare?sslmode=require"
        );
        assert_eq!(redact("postgres://fc@db/x"), "postgres://fc@db/x");
        assert_eq!(redact("sqlite:///x.db"), "sqlite:///x.db");
    }

    #[test]
    fn other_schemes_are_refused() {
        let rt = testing::runtime();
        let e = rt.block_on(Db::connect_url("mysql://db/x")).unwrap_err();
        assert!(matches!(e, DbError::UnsupportedUrl { .. }), "{e}");
    }

    #[test]
    fn connect_creates_the_data_dir_and_migrates_twice() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("new dir"),
            ..Config::default()
        };
        let rt = testing::runtime();
        rt.block_on(async {
            let db = Db::connect(&config).await.unwrap();
            assert_eq!(db.backend(), Backend::Sqlite);
            db.close().await;
            // A second start finds the schema current.
            let db = Db::connect(&config).await.unwrap();
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM vehicles")
                .fetch_one(db.pool())
                .await
                .unwrap();
            assert_eq!(n, 0);
            db.close().await;
        });
        assert!(config.data_dir.join(SQLITE_FILE).is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&config.data_dir)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "issue 20, finding 9");
        }
    }

    /// Issue 20, finding 9: the database was created 0644.
    #[cfg(unix)]
    #[test]
    fn the_sqlite_file_is_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let file = config.data_dir.join(SQLITE_FILE);
        let rt = testing::runtime();
        rt.block_on(async {
            let db = Db::connect(&config).await.unwrap();
            sqlx::query("SELECT COUNT(*) FROM vehicles")
                .execute(db.pool())
                .await
                .unwrap();
            assert_eq!(mode(&file), 0o600);
            let wal = config.data_dir.join(format!("{SQLITE_FILE}-wal"));
            assert_eq!(mode(&wal), 0o600, "the write-ahead log follows the file");
            db.close().await;
        });
        // A file an older version left readable by everyone is narrowed.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        rt.block_on(async {
            Db::connect(&config).await.unwrap().close().await;
        });
        assert_eq!(mode(&file), 0o600);
    }
}
