//! A cluster's secrets made before its first node starts: the CA, the join token and the
//! first admin token, as four files of a folder (`ca.pem`, `ca-key.pem`, `join-token`,
//! `admin-token`). Deployments that start every node at once (a Kubernetes StatefulSet,
//! from a Secret) need the join token before the cluster exists: `tessera cluster
//! bootstrap --out DIR` writes the folder, and the first node starts with
//! `--init-from DIR` while the others join with its join token.

use std::path::Path;

use crate::identity::{new_secret, ClusterCa, IdentityError, JoinToken};

/// What a new cluster is made with.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub ca: ClusterCa,
    pub join: JoinToken,
    /// The first admin token, in clear (the catalog keeps its hash).
    pub admin: String,
}

/// Why a bootstrap folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: {source}")]
    Write { file: String, source: std::io::Error },
    #[error("{0}")]
    Identity(#[from] IdentityError),
    #[error("join-token pins CA {pinned}, but ca.pem is {actual}: the files come from different bootstraps")]
    Mismatch { pinned: String, actual: String },
    #[error("admin-token: {0}")]
    WeakAdminToken(&'static str),
}

const FILES: [&str; 4] = ["ca.pem", "ca-key.pem", "join-token", "admin-token"];

impl Bootstrap {
    /// A new CA and new tokens.
    pub fn create() -> Result<Self, IdentityError> {
        let ca = ClusterCa::create()?;
        let join = JoinToken { secret: new_secret(), ca_sha256: ca.fingerprint() };
        Ok(Bootstrap { ca, join, admin: new_secret() })
    }

    /// Writes the four files into `dir` (made if missing), readable by their owner only.
    pub fn write(&self, dir: &Path) -> Result<(), BootstrapError> {
        let texts = [&self.ca.cert_pem, &self.ca.key_pem, &format!("{}\n", self.join), &format!("{}\n", self.admin)];
        std::fs::create_dir_all(dir)
            .map_err(|source| BootstrapError::Write { file: dir.display().to_string(), source })?;
        for (name, text) in FILES.iter().zip(texts) {
            let path = dir.join(name);
            super::start::write_private(&path, text)
                .map_err(|source| BootstrapError::Write { file: path.display().to_string(), source })?;
        }
        Ok(())
    }

    /// Reads the four files of `dir`, checking that the join token pins this CA.
    pub fn read(dir: &Path) -> Result<Self, BootstrapError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map_err(|source| BootstrapError::Read { file: path.display().to_string(), source })
        };
        let ca = ClusterCa { cert_pem: read(FILES[0])?, key_pem: read(FILES[1])? };
        let join = JoinToken::parse(&read(FILES[2])?)?;
        let admin = read(FILES[3])?.trim().to_string();
        if admin.len() < 16 {
            return Err(BootstrapError::WeakAdminToken("at least 16 characters"));
        }
        let actual = ca.fingerprint();
        if actual.is_empty() || actual != join.ca_sha256 {
            return Err(BootstrapError::Mismatch { pinned: join.ca_sha256, actual });
        }
        Ok(Bootstrap { ca, join, admin })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bootstrap_folder_reads_back_and_refuses_files_of_another() {
        let dir = std::env::temp_dir().join(format!("tessera-bootstrap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let made = Bootstrap::create().unwrap();
        made.write(&dir).unwrap();
        let read = Bootstrap::read(&dir).unwrap();
        assert_eq!((read.join.clone(), read.admin.clone()), (made.join.clone(), made.admin.clone()));
        assert_eq!(read.ca.fingerprint(), made.ca.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("ca-key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the CA key is its owner's alone");
        }

        // A join token from another bootstrap does not pin this CA.
        let other = Bootstrap::create().unwrap();
        std::fs::write(dir.join("join-token"), other.join.to_string()).unwrap();
        assert!(matches!(Bootstrap::read(&dir), Err(BootstrapError::Mismatch { .. })));
        std::fs::write(dir.join("join-token"), made.join.to_string()).unwrap();
        std::fs::write(dir.join("admin-token"), "short\n").unwrap();
        assert!(matches!(Bootstrap::read(&dir), Err(BootstrapError::WeakAdminToken(_))));
        std::fs::remove_file(dir.join("ca.pem")).unwrap();
        let missing = Bootstrap::read(&dir).unwrap_err().to_string();
        assert!(missing.contains("ca.pem"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
