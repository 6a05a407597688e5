//! [`JwtAuthenticator`]: HS256 bearer tokens that any node sharing the secret
//! can check without a store lookup.

use std::time::Duration;

use async_trait::async_trait;
use chat_core::auth::Authenticator;
use chat_core::{Error, Result, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The claims of a token: who, from when until when, and a unique id.
#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    /// Not before: a token is refused until then (checked when present;
    /// every token issued here has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    exp: u64,
    /// A random id per token: two tokens issued in the same second for the
    /// same user differ, so one can be told from (and later revoked
    /// without) the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

/// Issues and checks HS256 JWTs.
pub struct JwtAuthenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl JwtAuthenticator {
    /// Tokens signed with `secret`, valid for `ttl`. The server refuses
    /// secrets shorter than [`crate::config::MIN_JWT_SECRET_BYTES`] before it
    /// gets here (see [`crate::Config::validate`]).
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// Tokens signed with a fresh random secret: they stop working when the
    /// process restarts.
    pub fn random(ttl: Duration) -> Self {
        use rand::Rng;
        let secret: [u8; 32] = rand::rng().random();
        Self::new(&secret, ttl)
    }
}

/// 128 random bits as 32 hex digits.
fn random_jti() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    async fn issue(&self, user: &UserId) -> Result<String> {
        let iat = now_secs();
        let claims = Claims {
            sub: user.to_string(),
            iat,
            nbf: Some(iat),
            exp: iat + self.ttl.as_secs(),
            jti: Some(random_jti()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::unavailable("cannot sign a token", e))
    }

    async fn verify(&self, token: &str) -> Result<UserId> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| UserId::from(data.claims.sub))
            .map_err(|e| Error::unauthorized(format!("bad token: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a test secret of thirty-two bytes";

    fn signed(auth: &JwtAuthenticator, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &auth.encoding).unwrap()
    }

    #[tokio::test]
    async fn tokens_round_trip_and_forgeries_fail() {
        let auth = JwtAuthenticator::new(SECRET, Duration::from_secs(60));
        let token = auth.issue(&UserId::from("u1")).await.unwrap();
        assert_eq!(auth.verify(&token).await.unwrap(), UserId::from("u1"));
        let other = JwtAuthenticator::new(
            b"another secret of thirty-two bytes",
            Duration::from_secs(60),
        );
        assert!(matches!(
            other.verify(&token).await,
            Err(Error::Unauthorized { .. })
        ));
        assert!(auth.verify("not a token").await.is_err());
        let random = JwtAuthenticator::random(Duration::from_secs(60));
        assert!(random.verify(&token).await.is_err());
    }

    #[tokio::test]
    async fn expired_tokens_fail() {
        let auth = JwtAuthenticator::new(SECRET, Duration::from_secs(60));
        let claims = Claims {
            sub: "u1".into(),
            iat: 1,
            nbf: None,
            exp: 2,
            jti: None,
        };
        assert!(matches!(
            auth.verify(&signed(&auth, &claims)).await,
            Err(Error::Unauthorized { .. })
        ));
    }

    #[tokio::test]
    async fn tokens_are_refused_before_their_nbf() {
        let auth = JwtAuthenticator::new(SECRET, Duration::from_secs(60));
        let now = now_secs();
        let claims = |nbf| Claims {
            sub: "u1".into(),
            iat: now,
            nbf: Some(nbf),
            exp: now + 3600,
            jti: None,
        };
        // A minute ahead is past the 5 s leeway; a second ago is valid.
        let early = signed(&auth, &claims(now + 60));
        let err = auth.verify(&early).await.unwrap_err();
        assert!(err.to_string().contains("ImmatureSignature"), "{err}");
        let ok = signed(&auth, &claims(now - 1));
        assert_eq!(auth.verify(&ok).await.unwrap(), UserId::from("u1"));
    }

    #[tokio::test]
    async fn every_token_has_its_own_jti_and_an_nbf() {
        let auth = JwtAuthenticator::new(SECRET, Duration::from_secs(60));
        let user = UserId::from("u1");
        let a = auth.issue(&user).await.unwrap();
        let b = auth.issue(&user).await.unwrap();
        assert_ne!(a, b, "two tokens of one second must differ");
        let claims = |t: &str| {
            jsonwebtoken::decode::<Claims>(t, &auth.decoding, &auth.validation)
                .unwrap()
                .claims
        };
        let (ca, cb) = (claims(&a), claims(&b));
        assert_ne!(ca.jti, cb.jti);
        assert_eq!(ca.jti.as_ref().map(String::len), Some(32));
        assert_eq!(ca.nbf, Some(ca.iat));
    }
}
