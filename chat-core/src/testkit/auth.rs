//! [`Authenticator`] conformance: issued tokens verify to their user; anything
//! else is refused.

use super::fixtures::{device, user};
use crate::auth::Authenticator;
use crate::error::Error;

async fn refused(auth: &dyn Authenticator, token: &str, what: &str) {
    match auth.verify(token).await {
        Err(Error::Unauthorized { .. }) => {}
        other => panic!("{what} must be refused as Unauthorized, got {other:?}"),
    }
}

/// A token verifies to the user and device it was issued for; each issue
/// gives a new token, also twice in the same second; empty, made-up and
/// altered tokens are `Unauthorized`.
pub async fn auth_issue_and_verify(auth: &dyn Authenticator) {
    let (u, v) = (user("u"), user("v"));
    let (phone, laptop, vd) = (device("phone"), device("laptop"), device("v"));
    let t1 = auth.issue(&u, &phone).await.expect("issue failed");
    let t2 = auth.issue(&u, &phone).await.expect("issue failed");
    let t3 = auth.issue(&u, &laptop).await.expect("issue failed");
    let tv = auth.issue(&v, &vd).await.expect("issue failed");
    assert_ne!(
        t1, t2,
        "each issue must give a new token, even within one second"
    );
    for (token, owner, dev) in [
        (&t1, &u, &phone),
        (&t2, &u, &phone),
        (&t3, &u, &laptop),
        (&tv, &v, &vd),
    ] {
        let id = auth
            .verify(token)
            .await
            .expect("an issued token must verify");
        assert_eq!(
            (&id.user_id, &id.device_id),
            (owner, dev),
            "a token verifies to its user and device"
        );
    }
    refused(auth, "", "an empty token").await;
    refused(auth, "not-a-token", "a made-up token").await;
    // Change a character in the middle: the last one may only carry
    // padding bits in base64, and a JWT's dots must stay.
    let mut chars: Vec<char> = t1.chars().collect();
    let i = (chars.len() / 2..chars.len())
        .find(|&i| chars[i].is_ascii_alphanumeric())
        .expect("a token has an alphanumeric character in its second half");
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let altered: String = chars.into_iter().collect();
    refused(auth, &altered, "a token with one character changed").await;
}
