//! Who belongs to the cluster: its certificate authority, each node's certificate, and the
//! tokens that admit a node or an administrator.
//!
//! - `tessera cluster init` makes a CA and the first node's certificate. Every node
//!   certificate names the node (`node-ID.tessera`) and is signed by the CA; nodes talk to
//!   each other over mutually authenticated TLS against that CA only.
//! - Keys are Ed25519: cheaper to sign and check than ECDSA, and their signatures are
//!   deterministic and of one length, so a handshake between two nodes always takes the same
//!   bytes (the simulator, which replays QUIC datagram by datagram, relies on it). A cluster
//!   made with ECDSA keys keeps working: both are accepted.
//! - A join token is `SECRET.CAHASH`: the secret admits the joiner (the catalog keeps only
//!   its SHA-256), and the SHA-256 of the CA certificate lets the joiner check, before it
//!   sends the secret, that it is talking to this cluster (as kubeadm's discovery hash does).
//! - Admin tokens are bearer secrets for the admin API; the catalog keeps their SHA-256.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde::{Deserialize, Serialize};
use tessera_raft::NodeId;

/// What a node keeps in `DATA_DIR/cluster/identity.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    pub id: NodeId,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The cluster's CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCa {
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: {1}")]
    Corrupt(String, serde_json::Error),
    #[error("malformed join token: expected SECRET.CAHASH")]
    MalformedToken,
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Tessera cluster CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(p)
}

/// A certificate's serial number: 20 bytes of the SHA-256 of its public key (unique as the
/// key is), the first byte kept in 0x40..=0x7f so that the number is positive and its
/// encoding always 20 bytes long (with the first byte free, one serial in 256 would be a
/// byte shorter, and a certificate's size would vary with its key).
fn serial_of(key: &KeyPair) -> rcgen::SerialNumber {
    let hash = ring::digest::digest(&ring::digest::SHA256, key.public_key_raw());
    let mut serial = hash.as_ref()[..20].to_vec();
    serial[0] = (serial[0] & 0x3f) | 0x40;
    rcgen::SerialNumber::from(serial)
}

/// A name every node's certificate also carries: what a joiner (which does not know the
/// node's id yet) checks.
pub const CLUSTER_NAME: &str = "cluster.tessera";

/// The TLS server name of a node.
pub fn server_name(id: NodeId) -> String {
    format!("node-{id}.tessera")
}

impl ClusterCa {
    pub fn create() -> Result<Self, IdentityError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        let mut params = ca_params()?;
        params.serial_number = Some(serial_of(&key));
        let cert = params.self_signed(&key)?;
        Ok(ClusterCa { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A certificate and key for node `id`, signed by this CA.
    pub fn issue(&self, id: NodeId) -> Result<NodeIdentity, IdentityError> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::new(ca_params()?, ca_key);
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        let mut p = CertificateParams::new(vec![server_name(id), CLUSTER_NAME.to_string()])?;
        p.serial_number = Some(serial_of(&key));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, server_name(id));
        p.distinguished_name = dn;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &issuer)?;
        Ok(NodeIdentity { id, ca_pem: self.cert_pem.clone(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// SHA-256 of the CA certificate (DER), hex: what a join token pins.
    pub fn fingerprint(&self) -> String {
        ca_fingerprint_pem(&self.cert_pem).unwrap_or_default()
    }
}

/// SHA-256 of a certificate's DER, hex.
pub fn fingerprint_der(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

fn ca_fingerprint_pem(pem: &str) -> Option<String> {
    let der = rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok()?;
    Some(fingerprint_der(&der))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random secret (256 bits), hex.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("the system has randomness");
    hex(&b)
}

/// What the catalog keeps of a secret.
pub fn secret_hash(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

/// A join token: the secret and the CA fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub secret: String,
    pub ca_sha256: String,
}

impl JoinToken {
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        let (secret, ca) = s.trim().split_once('.').ok_or(IdentityError::MalformedToken)?;
        let hexy = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_hexdigit());
        if !hexy(secret) || ca.len() != 64 || !hexy(ca) {
            return Err(IdentityError::MalformedToken);
        }
        Ok(JoinToken { secret: secret.to_string(), ca_sha256: ca.to_ascii_lowercase() })
    }
}

impl std::fmt::Display for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.secret, self.ca_sha256)
    }
}

impl NodeIdentity {
    const FILE: &'static str = "identity.json";

    pub fn load(dir: &Path) -> Result<Option<Self>, IdentityError> {
        let path = dir.join(Self::FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| IdentityError::Corrupt(path.display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IdentityError::Io(path.display().to_string(), e)),
        }
    }

    /// Writes the identity (the key is readable by its owner only).
    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        std::fs::create_dir_all(dir).map_err(|e| IdentityError::Io(dir.display().to_string(), e))?;
        let path = dir.join(Self::FILE);
        let tmp = dir.join(format!("{}.tmp", Self::FILE));
        let bytes = serde_json::to_vec_pretty(self).expect("serializable");
        let io = |e| IdentityError::Io(path.display().to_string(), e);
        std::fs::write(&tmp, bytes).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_issues_node_certificates_that_rustls_accepts() {
        use rustls::client::danger::ServerCertVerifier;
        let ca = ClusterCa::create().unwrap();
        let node = ca.issue(7).unwrap();
        let ca_der = rustls_pemfile::certs(&mut ca.cert_pem.as_bytes()).next().unwrap().unwrap();
        let leaf = rustls_pemfile::certs(&mut node.cert_pem.as_bytes()).next().unwrap().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(std::sync::Arc::new(roots), provider)
                .build()
                .unwrap();
        let name = rustls::pki_types::ServerName::try_from(server_name(7)).unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier.verify_server_cert(&leaf, &[], &name, &[], now).expect("signed by the cluster CA, for node 7");
        let other = rustls::pki_types::ServerName::try_from(server_name(8)).unwrap();
        assert!(verifier.verify_server_cert(&leaf, &[], &other, &[], now).is_err(), "not node 8's");
        let stranger = ClusterCa::create().unwrap().issue(7).unwrap();
        let foreign = rustls_pemfile::certs(&mut stranger.cert_pem.as_bytes()).next().unwrap().unwrap();
        assert!(verifier.verify_server_cert(&foreign, &[], &name, &[], now).is_err(), "another CA's");
    }

    #[test]
    fn join_tokens_round_trip_and_refuse_garbage() {
        let ca = ClusterCa::create().unwrap();
        let t = JoinToken { secret: new_secret(), ca_sha256: ca.fingerprint() };
        assert_eq!(JoinToken::parse(&t.to_string()).unwrap(), t);
        assert_eq!(t.ca_sha256.len(), 64);
        for bad in ["", "nodot", "abc.def", "zz.0000000000000000000000000000000000000000000000000000000000000000"] {
            assert!(JoinToken::parse(bad).is_err(), "{bad}");
        }
        assert_ne!(secret_hash("a"), secret_hash("b"));
    }

    #[test]
    fn identities_are_saved_privately_and_loaded_back() {
        let dir = std::env::temp_dir().join(format!("tessera-identity-{}", std::process::id()));
        let id = ClusterCa::create().unwrap().issue(3).unwrap();
        assert!(NodeIdentity::load(&dir).unwrap().is_none());
        id.save(&dir).unwrap();
        assert_eq!(NodeIdentity::load(&dir).unwrap(), Some(id));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("identity.json")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
