//! TLS to PostgreSQL, with rustls, configured as libpq is: the connection
//! string's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`.
//!
//! The driver (tokio-postgres) knows only `sslmode=disable|prefer|require`
//! and no certificate files, so gust takes these four out of the string,
//! hands the rest to the driver, and builds the rustls client itself:
//!
//! | `sslmode` | gust does |
//! |---|---|
//! | absent, `disable`, `allow`, `prefer` | no TLS (gust never negotiated TLS before; libpq would try it for `prefer`) |
//! | `require` | TLS; the certificate is checked only when `sslrootcert` is given (then as `verify-ca`), as libpq does |
//! | `verify-ca` | TLS; the server's chain must lead to `sslrootcert` |
//! | `verify-full` | TLS; the chain must lead to `sslrootcert` and the certificate must name the host connected to |
//!
//! `sslrootcert` is a PEM file of trusted CAs, or `system` for the operating
//! system's; `verify-ca` and `verify-full` need it (libpq's default
//! `~/.postgresql/root.crt` is not read). `sslcert` and `sslkey` (PEM, the
//! key PKCS#8, PKCS#1 or SEC1) are a client certificate, for servers that
//! ask for one (`clientcert=verify-full` in pg_hba.conf).

use std::{str::FromStr, sync::Arc};

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::DbError;
use crate::settings::redact_url;

/// What the driver needs to connect: its settings and the TLS connector (unused without TLS).
pub struct ConnectSpec {
    /// The connection string without the TLS keys the driver does not know.
    pub config: tokio_postgres::Config,
    /// The rustls connector built from those keys.
    pub tls: MakeRustlsConnect,
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verify {
    /// Nothing (libpq's `require` without `sslrootcert`).
    Nothing,
    /// The chain, not the host name.
    Chain,
    /// The chain and the host name.
    Full,
}

/// The libpq TLS keys found in a connection string.
#[derive(Debug, Default)]
struct TlsKeys {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
}

impl TlsKeys {
    /// Takes `key=value` if it is one of the four; false when it is not.
    fn take(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "sslcert" => &mut self.sslcert,
            "sslkey" => &mut self.sslkey,
            _ => return false,
        };
        *slot = Some(value.to_string());
        true
    }
}

/// Parses a URL (`postgres://…?sslmode=verify-full&sslrootcert=…`) or keyword
/// string (`host=… sslmode=verify-full sslrootcert=…`) into driver settings and a TLS connector.
pub fn connect_spec(url: &str) -> Result<ConnectSpec, DbError> {
    let bad = |cause: String| DbError::BadUrl { url: redact_url(url), cause };
    let (rest, keys) = split_tls_keys(url);
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| bad(e.to_string()))?;
    let verify = match keys.sslmode.as_deref() {
        None | Some("disable" | "allow" | "prefer") => None,
        Some("require") if keys.sslrootcert.is_some() => Some(Verify::Chain),
        Some("require") => Some(Verify::Nothing),
        Some("verify-ca") => Some(Verify::Chain),
        Some("verify-full") => Some(Verify::Full),
        Some(other) => {
            return Err(bad(format!(
                "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )))
        }
    };
    let Some(verify) = verify else {
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        return Ok(ConnectSpec { config, tls: plain_connector() });
    };
    config.ssl_mode(tokio_postgres::config::SslMode::Require);
    let client = client_config(verify, &keys).map_err(bad)?;
    Ok(ConnectSpec { config, tls: MakeRustlsConnect::new(client) })
}

/// `url` without the four TLS keys, and those keys.
fn split_tls_keys(url: &str) -> (String, TlsKeys) {
    let mut keys = TlsKeys::default();
    if url.contains("://") {
        let Some((head, query)) = url.split_once('?') else { return (url.to_string(), keys) };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                !keys.take(key, &value)
            })
            .collect();
        let rest = if kept.is_empty() { head.to_string() } else { format!("{head}?{}", kept.join("&")) };
        return (rest, keys);
    }
    let kept: Vec<&str> = url
        .split_whitespace()
        .filter(|word| {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            !keys.take(key.trim(), value.trim_matches('\''))
        })
        .collect();
    (kept.join(" "), keys)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The connector of connections that never negotiate TLS (`sslmode=disable`; the driver still wants one).
pub fn plain_connector() -> MakeRustlsConnect {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the default provider supports the default protocol versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

fn client_config(verify: Verify, keys: &TlsKeys) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match verify {
        Verify::Full => builder.with_root_certificates(root_store(keys, "verify-full")?),
        Verify::Chain => {
            let roots = Arc::new(root_store(keys, "verify-ca")?);
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("the CA certificates of sslrootcert cannot verify servers: {e}"))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(LaxVerifier { chain: Some(inner), provider }))
        }
        Verify::Nothing => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(LaxVerifier { chain: None, provider }))
        }
    };
    match (&keys.sslcert, &keys.sslkey) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read sslcert {cert}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read sslkey {key}: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("sslcert and sslkey do not fit: {e}"))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err("give both sslcert and sslkey for a client certificate, or neither".into()),
    }
}

/// The CAs `sslrootcert` names; `mode` is only for the message when it is missing.
fn root_store(keys: &TlsKeys, mode: &str) -> Result<RootCertStore, String> {
    let Some(path) = keys.sslrootcert.as_deref() else {
        return Err(format!("sslmode={mode} needs sslrootcert=<PEM file of the CA> (or sslrootcert=system)"));
    };
    let mut store = RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = if path == "system" {
        rustls_native_certs::load_native_certs().certs
    } else {
        CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read sslrootcert {path}: {e}"))?
    };
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("sslrootcert {path} holds no usable CA certificate"));
    }
    Ok(store)
}

/// The certificate check of `verify-ca` (`chain` set: the chain must lead to
/// a trusted CA, the host name is not checked) and of `require` without
/// `sslrootcert` (`chain` unset: any certificate; libpq's meaning). The
/// handshake's signatures are verified either way.
#[derive(Debug)]
struct LaxVerifier {
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for LaxVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_libpq_tls_keys_are_taken_out_of_a_url_and_the_rest_is_kept() {
        let (rest, keys) = split_tls_keys(
            "postgres://u@h1,h2/gust?sslmode=verify-full&target_session_attrs=read-write&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u@h1,h2/gust?target_session_attrs=read-write");
        assert_eq!(keys.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(keys.sslrootcert.as_deref(), Some("/etc/ca.pem"));
    }

    #[test]
    fn the_libpq_tls_keys_are_taken_out_of_a_keyword_string() {
        let (rest, keys) = split_tls_keys("host=h1,h2 sslmode=verify-ca sslrootcert='/ca.pem' dbname=gust");
        assert_eq!(rest, "host=h1,h2 dbname=gust");
        assert_eq!(keys.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(keys.sslrootcert.as_deref(), Some("/ca.pem"));
    }

    #[test]
    fn verify_full_without_a_root_certificate_is_refused_naming_the_key() {
        let Err(error) = connect_spec("postgres://u:secret@h/gust?sslmode=verify-full") else { panic!("refused") };
        let text = error.to_string();
        assert!(text.contains("sslrootcert") && !text.contains("secret"), "{text}");
    }

    #[test]
    fn an_unknown_sslmode_is_refused_with_the_modes_there_are() {
        let Err(error) = connect_spec("postgres://h/gust?sslmode=always") else { panic!("refused") };
        let text = error.to_string();
        assert!(text.contains("verify-full"), "{text}");
    }

    #[test]
    fn without_tls_keys_the_driver_gets_tls_disabled() {
        let spec = connect_spec("postgres://postgres@127.0.0.1/gust?sslmode=prefer").expect("valid");
        assert_eq!(spec.config.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
    }
}
