//! Secrets in the configuration: the checks at start (a JWT secret long
//! enough, one at all in a cluster) and the redaction of URLs that may carry
//! a password before they reach a log line or an error message.

use super::Config;
use crate::error::ServerError;

/// Shortest `--jwt-secret`, in bytes: HS256 keys shorter than its 32-byte
/// output make offline guessing of the secret from one token cheaper.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// Refuses configurations that would run insecurely without saying so:
    /// a `--jwt-secret` shorter than [`MIN_JWT_SECRET_BYTES`] (an empty one
    /// included: anyone could forge tokens), and `--cluster` without
    /// `--jwt-secret` (each node would make its own random secret, and a
    /// token from one node would fail on every other).
    pub fn validate(&self) -> Result<(), ServerError> {
        match &self.jwt_secret {
            Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => {
                Err(ServerError::WeakJwtSecret {
                    bytes: secret.len(),
                    min: MIN_JWT_SECRET_BYTES,
                })
            }
            None if self.cluster.is_some() => Err(ServerError::ClusterWithoutJwtSecret),
            _ => Ok(()),
        }
    }
}

/// `url` without what could be secret: the user and password, the query
/// (`?password=…`) and the fragment. `postgres://u:pw@db:5432/chat?x=1` is
/// shown as `postgres://db:5432/chat`. Something that is no URL is shown
/// only by its scheme-less length, since it could be a secret itself.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            // `memory` and the like: a plain word, no secret.
            url.to_owned()
        } else {
            format!("<{} characters, not a URL>", url.chars().count())
        };
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_queries_and_fragments() {
        let cases = [
            ("memory", "memory"),
            ("postgres://u:pw@db:5432/chat", "postgres://db:5432/chat"),
            (
                "postgres://db/chat?password=pw&schema=x",
                "postgres://db/chat",
            ),
            ("redis://:pw@cache:6379", "redis://cache:6379"),
            ("rediss://u:p@w@cache/0#frag", "rediss://cache/0"),
            (
                "https://hooks.example/h?token=abc",
                "https://hooks.example/h",
            ),
            ("cassandra://h:9042/ks", "cassandra://h:9042/ks"),
            ("not a url: pw", "<13 characters, not a URL>"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn short_secrets_and_secretless_clusters_are_refused() {
        let with = |secret: Option<&str>, cluster: Option<&str>| Config {
            jwt_secret: secret.map(str::to_owned),
            cluster: cluster.map(str::to_owned),
            ..Config::default()
        };
        let long = "x".repeat(MIN_JWT_SECRET_BYTES);
        assert!(with(None, None).validate().is_ok());
        assert!(with(Some(&long), None).validate().is_ok());
        assert!(with(Some(&long), Some("redis://r")).validate().is_ok());
        for short in ["", "x", &long[1..]] {
            let err = with(Some(short), None).validate().unwrap_err();
            assert!(matches!(err, ServerError::WeakJwtSecret { .. }), "{err}");
        }
        let err = with(None, Some("redis://r")).validate().unwrap_err();
        assert!(matches!(err, ServerError::ClusterWithoutJwtSecret), "{err}");
    }

    #[test]
    fn debug_output_hides_every_secret() {
        let config = Config {
            store: "postgres://u:store-pw@db/chat".into(),
            cluster: Some("redis://:cluster-pw@r".into()),
            push_webhook: Some("https://h/x?token=hook-pw".into()),
            jwt_secret: Some("jwt-pw".repeat(8)),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        for secret in ["store-pw", "cluster-pw", "hook-pw", "jwt-pw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://db/chat"), "{shown}");
    }
}
