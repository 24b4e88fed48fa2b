//! A certificate authority made by the test (rcgen): a CA certificate and
//! the server and client certificates it signs, as PEM files in a temporary
//! folder that is removed with the CA.
//!
//! Keys are ECDSA P-256 in PKCS#8, which PostgreSQL (OpenSSL), RabbitMQ
//! (Erlang's ssl) and rustls all read. Files are world-readable so servers
//! running as their own users (`postgres`, `rabbitmq`) can read them, except
//! that PostgreSQL insists its key be private to its owner: see
//! [`TestCa::hand_to`].

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A CA and the folder of the files it issued.
pub struct TestCa {
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key (PKCS#8).
    pub key: PathBuf,
}

impl TestCa {
    /// A fresh CA named `name`; its certificate is at [`TestCa::ca_file`].
    pub fn new(name: &str) -> TestCa {
        let dir = std::env::temp_dir().join(format!("gust-ca-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        std::fs::create_dir_all(&dir).expect("creating the CA's folder");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a CA key")).expect("the CA");
        std::fs::write(dir.join("ca.pem"), issuer.pem()).expect("writing the CA certificate");
        chmod(&dir, 0o755);
        chmod(&dir.join("ca.pem"), 0o644);
        TestCa { dir, issuer }
    }

    /// The CA certificate (PEM), to trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server certificate for `names` (DNS names or IP addresses), saved as `<file>.pem`/`<file>.key`.
    pub fn server(&self, file: &str, names: &[&str]) -> Issued {
        self.issue(file, names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate whose common name is `user`.
    pub fn client(&self, file: &str, user: &str) -> Issued {
        self.issue(file, &[user], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// Copies `issued` into `dir`, owned by `owner` with the key private to it (PostgreSQL
    /// refuses a key that others can read); returns the copies.
    pub fn hand_to(&self, issued: &Issued, dir: &Path, owner: &str) -> Issued {
        let copy = Issued {
            cert: dir.join(issued.cert.file_name().expect("a file name")),
            key: dir.join(issued.key.file_name().expect("a file name")),
        };
        std::fs::copy(&issued.cert, &copy.cert).expect("copying the certificate");
        std::fs::copy(&issued.key, &copy.key).expect("copying the key");
        for path in [&copy.cert, &copy.key] {
            let status = std::process::Command::new("chown")
                .arg(format!("{owner}:{owner}"))
                .arg(path)
                .status()
                .expect("running chown");
            assert!(status.success(), "chown {owner} {} failed", path.display());
        }
        chmod(&copy.key, 0o600);
        copy
    }

    fn issue(&self, file: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("names");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or(file));
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("signing a certificate");
        let issued = Issued { cert: self.dir.join(format!("{file}.pem")), key: self.dir.join(format!("{file}.key")) };
        std::fs::write(&issued.cert, cert.pem()).expect("writing a certificate");
        std::fs::write(&issued.key, key.serialize_pem()).expect("writing a key");
        chmod(&issued.cert, 0o644);
        chmod(&issued.key, 0o644);
        issued
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("setting file permissions");
}
