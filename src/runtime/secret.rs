//! Random secrets and the hex form of bytes: broker logins, API tokens and
//! their hashes, webhook signatures, alert ids; and the data directory
//! that keeps them, for its owner only.

use std::fmt::Write as _;

/// The operating system gave no random bytes.
#[derive(Debug, thiserror::Error)]
#[error("the operating system gave no random bytes: {0}")]
pub struct NoRandomness(pub String);

/// `bytes` as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `n` random bytes from the operating system, as hex.
pub fn random_hex(n: usize) -> Result<String, NoRandomness> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(hex(&buf))
}

/// Creates `dir` (and missing parents) for its owner only (0700): the data
/// directory holds the database with the token hashes and every fleet's
/// history. A directory that already exists keeps its mode: an operator
/// may have shared it with a backup group on purpose, and every command
/// (imports, reports) opens it, so a warning there would be noise on
/// stderr that scripts read (README, "Security", says to `chmod 700` an
/// older one).
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_and_padded() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::random_hex(16).unwrap().len(), 32);
    }

    /// Issue 20, finding 9: the data directory was created 0755.
    #[cfg(unix)]
    #[test]
    fn data_directories_are_created_for_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/data");
        super::private_dir(&dir).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        // An existing directory is left as it is.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        super::private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o750);
    }
}
