//! [`OriginPolicy`]: which web pages may open a WebSocket to the server.
//!
//! A browser sends the page's origin with every WebSocket handshake and
//! lets any page connect anywhere; with a token in `?token=` (or a cookie)
//! a page on another site could otherwise chat as the user (cross-site
//! WebSocket hijacking). Clients that are no browser send no `Origin` and
//! are not concerned.

/// Which `Origin` a WebSocket handshake may carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Only the server's own origin: the `Origin`'s host and port equal the
    /// request's `Host`. The default.
    #[default]
    SameOrigin,
    /// Any origin (for a public API meant for pages of any site).
    Any,
    /// These origins (`https://chat.example.com`, compared without case and
    /// without a trailing `/`), and the server's own.
    List(Vec<String>),
}

impl OriginPolicy {
    /// From a flag's list: empty is [`OriginPolicy::SameOrigin`], one `*`
    /// is [`OriginPolicy::Any`], anything else a [`OriginPolicy::List`].
    pub fn from_list(origins: &[String]) -> Self {
        let origins: Vec<String> = origins
            .iter()
            .map(|o| normalize(o))
            .filter(|o| !o.is_empty())
            .collect();
        if origins.iter().any(|o| o == "*") {
            Self::Any
        } else if origins.is_empty() {
            Self::SameOrigin
        } else {
            Self::List(origins)
        }
    }

    /// Whether a handshake with this `Origin` (if any) and `Host` (if any)
    /// may go on.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            // Not a browser: nothing to protect against here.
            return true;
        };
        let origin = normalize(origin);
        let same_origin = host.is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host.trim()))
        });
        match self {
            Self::Any => true,
            Self::SameOrigin => same_origin,
            Self::List(list) => same_origin || list.contains(&origin),
        }
    }
}

fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_allows_the_servers_own_origin_and_non_browsers() {
        let p = OriginPolicy::default();
        assert!(p.allows(None, Some("chat.example:8080")));
        assert!(p.allows(Some("http://chat.example:8080"), Some("chat.example:8080")));
        assert!(p.allows(Some("https://Chat.Example"), Some("chat.example")));
        assert!(!p.allows(Some("https://evil.example"), Some("chat.example")));
        assert!(!p.allows(Some("http://chat.example:9999"), Some("chat.example:8080")));
        assert!(!p.allows(Some("null"), Some("chat.example")));
        assert!(!p.allows(Some("http://chat.example"), None));
    }

    #[test]
    fn lists_and_stars_come_from_the_flag() {
        let list = |l: &[&str]| {
            OriginPolicy::from_list(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(list(&[]), OriginPolicy::SameOrigin);
        assert_eq!(list(&["", " "]), OriginPolicy::SameOrigin);
        assert_eq!(list(&["https://a.example", "*"]), OriginPolicy::Any);
        let p = list(&["https://App.example/"]);
        assert!(p.allows(Some("https://app.example"), Some("api.example")));
        assert!(p.allows(Some("https://api.example"), Some("api.example")));
        assert!(!p.allows(Some("https://evil.example"), Some("api.example")));
        assert!(OriginPolicy::Any.allows(Some("https://evil.example"), Some("x")));
    }
}
