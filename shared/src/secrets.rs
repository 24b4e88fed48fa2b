//! Encryption at rest of connection passwords and secret extras: Fernet tokens,
//! the format and key format of Airflow's `fernet_key`, so a key from an Airflow
//! deployment works here and tokens are readable by Airflow's `cryptography`.
//!
//! `GUST__SECRETS__KEY` holds one key or several separated by commas (Airflow's
//! `MultiFernet`): the first encrypts, any of them decrypts. To rotate, put the
//! new key first, run `gust-webapi rotate-secrets`, then remove the old key.

use fernet::{Fernet, MultiFernet};

/// The environment variable that holds the key(s).
pub const KEY_VARIABLE: &str = "GUST__SECRETS__KEY";

/// Why a key could not be used or a token not decrypted.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A key is not 32 bytes in URL-safe base64.
    #[error(
        "{KEY_VARIABLE}: key number {0} is not a Fernet key (32 bytes in URL-safe base64); \
         make one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` \
         or `openssl rand -base64 32 | tr '+/' '-_'`"
    )]
    BadKey(usize),
    /// No key is set, so nothing secret can be stored or read.
    #[error("no encryption key is set; set {KEY_VARIABLE} to a Fernet key to store or read connection secrets")]
    NoKey,
    /// None of the keys decrypts the token (wrong key, or the token was changed).
    #[error(
        "a stored secret cannot be decrypted with any key in {KEY_VARIABLE}; \
         add the key it was encrypted with (comma-separated, after the current one)"
    )]
    Undecryptable,
}

/// The configured keys: the first encrypts, every one decrypts.
pub struct Secrets {
    fernet: MultiFernet,
    keys: usize,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} keys)", self.keys)
    }
}

impl Secrets {
    /// The keys of a comma-separated list (blank entries skipped); `None` when there is none.
    pub fn from_keys(keys: &str) -> Result<Option<Self>, SecretsError> {
        let fernets = keys
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .enumerate()
            .map(|(i, key)| Fernet::new(key).ok_or(SecretsError::BadKey(i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        if fernets.is_empty() {
            return Ok(None);
        }
        let keys = fernets.len();
        Ok(Some(Self { fernet: MultiFernet::new(fernets), keys }))
    }

    /// A new random key in Fernet's format.
    pub fn generate_key() -> String {
        Fernet::generate_key()
    }

    /// The Fernet token of `plain`, with the first key.
    pub fn encrypt(&self, plain: &str) -> String {
        self.fernet.encrypt(plain.as_bytes())
    }

    /// The text a token holds, with whichever key opens it.
    pub fn decrypt(&self, token: &str) -> Result<String, SecretsError> {
        let bytes = self.fernet.decrypt(token).map_err(|_| SecretsError::Undecryptable)?;
        String::from_utf8(bytes).map_err(|_| SecretsError::Undecryptable)
    }

    /// The token re-encrypted with the first key (Airflow's `rotate`).
    pub fn rotate(&self, token: &str) -> Result<String, SecretsError> {
        Ok(self.encrypt(&self.decrypt(token)?))
    }
}

/// Words that make a name (a variable key, a field of a connection's extra) secret, as Airflow's
/// defaults (`DEFAULT_SENSITIVE_FIELDS`).
pub const SENSITIVE_WORDS: [&str; 12] = [
    "access_token",
    "api_key",
    "apikey",
    "authorization",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "service_account",
    "token",
    "keyfile_dict",
];

/// Whether a key or JSON field name names a secret.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.to_lowercase();
    SENSITIVE_WORDS.iter().any(|word| name.contains(word))
}

/// The secrets in a Variable, as Airflow's secrets masker finds them: its whole text when its
/// key names a secret, and, when the text is a JSON object or list, every string or number
/// under a field whose name names one, at any depth (so what `var.json.aws.secret_access_key`
/// reads is a secret even though `aws` is not).
pub fn variable_secrets(key: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    if is_sensitive(key) {
        found.push(text.to_string());
    }
    if text.trim_start().starts_with(['{', '[']) {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
            json_secrets(&json, false, &mut found);
        }
    }
    found.retain(|secret| !secret.is_empty());
    found
}

/// Collects the strings and numbers of `value` that sit under a secret field name.
fn json_secrets(value: &serde_json::Value, under_secret_name: bool, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                json_secrets(field, is_sensitive(name), found);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| json_secrets(item, under_secret_name, found)),
        serde_json::Value::String(text) if under_secret_name => found.push(text.clone()),
        serde_json::Value::Number(number) if under_secret_name => found.push(number.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_decrypts_with_any_key_and_encrypts_with_the_first() {
        let (old, new) = (Secrets::generate_key(), Secrets::generate_key());
        let before = Secrets::from_keys(&old).unwrap().unwrap();
        let token = before.encrypt("hunter2");
        assert_ne!(token, "hunter2");
        let both = Secrets::from_keys(&format!("{new}, {old}")).unwrap().unwrap();
        assert_eq!(both.decrypt(&token).unwrap(), "hunter2");
        let rotated = both.rotate(&token).unwrap();
        let after = Secrets::from_keys(&new).unwrap().unwrap();
        assert_eq!(after.decrypt(&rotated).unwrap(), "hunter2");
        assert!(matches!(after.decrypt(&token), Err(SecretsError::Undecryptable)));
    }

    #[test]
    fn a_python_cryptography_token_decrypts() {
        // Made by Python's cryptography.fernet, as Airflow stores passwords.
        let key = "nQZAn0nYkCKPuN7feyBSQm4cpJirwST4dFHmdO8Z_BM=";
        let token =
            "gAAAAABrDQcLjWufY0ZHVDek8uAxsA3RIZsmBRs1THBDSJ1_129qehxMLpm3Nwd3A0xN9xrl6sidIb-yW4OQNEdP8vV3sK3IMQ==";
        let secrets = Secrets::from_keys(key).unwrap().unwrap();
        assert_eq!(secrets.decrypt(token).unwrap(), "hunter2");
    }

    #[test]
    fn a_bad_key_is_named_by_its_position_and_blank_means_none() {
        let error = Secrets::from_keys(&format!("{}, short", Secrets::generate_key())).unwrap_err();
        assert!(error.to_string().contains("key number 2"), "{error}");
        assert!(Secrets::from_keys(" , ").unwrap().is_none());
    }

    #[test]
    fn secret_names_are_recognised_whatever_their_case() {
        assert!(is_sensitive("DB_PASSWORD") && is_sensitive("api_key") && is_sensitive("private_key_file"));
        assert!(!is_sensitive("region"));
    }

    #[test]
    fn every_name_of_airflows_default_sensitive_fields_is_a_secret() {
        for name in [
            "access_token",
            "api_key",
            "apikey",
            "authorization",
            "passphrase",
            "passwd",
            "password",
            "private_key",
            "secret",
            "token",
            "keyfile_dict",
            "service_account",
        ] {
            assert!(is_sensitive(name) && is_sensitive(&format!("GCP_{}_JSON", name.to_uppercase())), "{name}");
        }
    }

    #[test]
    fn a_variables_secrets_are_its_text_under_a_secret_key_and_its_json_fields_under_secret_names() {
        assert_eq!(variable_secrets("db_password", "hunter2-long"), ["hunter2-long"]);
        assert_eq!(variable_secrets("region", "eu-west-1"), Vec::<String>::new());
        let aws = r#"{"region": "eu-west-1", "secret_access_key": "AKIA-secret", "nested": {"api_key": 12345678, "tokens": ["t-one", "t-two"]}}"#;
        let mut found = variable_secrets("aws", aws);
        found.sort();
        assert_eq!(found, ["12345678", "AKIA-secret", "t-one", "t-two"]);
        let under_secret_key =
            variable_secrets("service_account_info", r#"{"user": "loader", "private_key": "-----BEGIN"}"#);
        assert_eq!(under_secret_key, [r#"{"user": "loader", "private_key": "-----BEGIN"}"#, "-----BEGIN"]);
        assert_eq!(variable_secrets("cfg", "{not json"), Vec::<String>::new());
    }
}
