//! chat-core's authenticator conformance suite on the server's own
//! [`JwtAuthenticator`], as every other real implementation runs its suite:
//! issued tokens verify to their user and device, each issue gives a new
//! token (also twice within one second: the `jti`), and empty, made-up and
//! altered tokens are refused.

use std::sync::Arc;
use std::time::Duration;

use chat_server::auth::JwtAuthenticator;

const SECRET: &[u8] = b"a conformance secret of 32 bytes";

chat_core::authenticator_conformance!(async {
    Arc::new(JwtAuthenticator::new(SECRET, Duration::from_secs(3600)))
});
