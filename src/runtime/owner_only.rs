//! Files and folders that only the user running fleetcare can read
//! (issue 20, finding 9): the store and the database under the data
//! directory hold what trucks sent, where they were and when, the token
//! hashes and the ticket history — the fleets' business, not that of every
//! account on the host. Folders are made `0700`, files `0600` (less
//! whatever the umask takes away), and a data directory that others can
//! enter is closed when the store's writer opens it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Permissions of the folders fleetcare creates.
pub const DIR_MODE: u32 = 0o700;
/// Permissions of the files fleetcare creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parent, each `0700`.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates (or truncates) `path` for writing; a new file is `0600`.
pub fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// [`OpenOptions`] that create a file `0600`.
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Takes the group's and others' permissions off the data directory
/// `dir` if it has any (made by an older version, by hand, or by the
/// database before the store); returns its mode before, when changed.
pub fn close_to_others(dir: &Path) -> io::Result<Option<u32>> {
    let mode = fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode & !0o077))?;
    Ok(Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Issue 20, finding 9: the data directory was created 0755 and its
    /// files 0644.
    #[test]
    fn new_folders_and_files_are_the_owners_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/data");
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        create(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        // An existing folder keeps its mode until a writer closes it.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o750);
        assert_eq!(close_to_others(&dir).unwrap(), Some(0o750));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(close_to_others(&dir).unwrap(), None);
    }
}
