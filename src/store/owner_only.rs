//! Files and folders of the store that only the user running fleetcare
//! can read (issue 20, finding 9): what trucks sent, where they were and
//! when, is the fleet's business, not that of every account on the host.
//! Folders are made `0700`, files `0600` (less whatever the umask takes
//! away), and a data directory that others can enter is closed when a
//! writer opens it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Permissions of the folders the store creates.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Permissions of the files the store creates.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parent, each `0700`.
pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates (or truncates) `path` for writing; a new file is `0600`.
pub(crate) fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// [`OpenOptions`] that create a file `0600`.
pub(crate) fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Takes the group's and others' permissions off the data directory
/// `dir` if it has any (made by an older version, by hand, or by the
/// database before the store); returns its mode before, when changed.
pub(crate) fn close_to_others(dir: &Path) -> io::Result<Option<u32>> {
    let mode = fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode & !0o077))?;
    Ok(Some(mode))
}
