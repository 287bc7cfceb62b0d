//! HTTP basic authentication over the whole site, as stock's `HTTPAuthSessionWrapper`.
//!
//! The check runs before routing, so unknown paths and `OPTIONS` need credentials too. The
//! comparison takes the same time whatever the supplied credentials are, so it leaks nothing
//! about how much of a guess was right.

use base64::Engine;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

/// The configured credentials.
#[derive(Clone)]
pub struct Credentials {
    username: Vec<u8>,
    password: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &String::from_utf8_lossy(&self.username))
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Self {
        Credentials { username: username.as_bytes().to_vec(), password: password.as_bytes().to_vec() }
    }

    /// Whether the request carries these credentials in a `Basic` authorization header. The
    /// scheme is matched case-insensitively; the password may contain `:`.
    pub fn accept(&self, headers: &HeaderMap) -> bool {
        let Some(decoded) = headers.get(AUTHORIZATION).and_then(|value| decode_basic(value.as_bytes())) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else { return false };
        let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
        let user_ok = user.ct_eq(&self.username);
        let pass_ok = pass.ct_eq(&self.password);
        bool::from(user_ok & pass_ok)
    }
}

fn decode_basic(header: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    // Python's b64decode is lenient about missing padding; so are we.
    let encoded = encoded.trim().trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    fn basic(raw: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }

    #[test]
    fn accepts_only_the_configured_pair() {
        let creds = Credentials::new("hello12345", "67890:world");
        assert!(creds.accept(&headers(&basic("hello12345:67890:world"))));
        assert!(creds.accept(&headers(&basic("hello12345:67890:world").replace("Basic", "bAsIc"))));
        assert!(!creds.accept(&headers(&basic("hello12345:67890"))));
        assert!(!creds.accept(&headers(&basic("hello12345"))));
        assert!(!creds.accept(&headers("Bearer abc")));
        assert!(!creds.accept(&headers("Basic !!!")));
        assert!(!creds.accept(&HeaderMap::new()));
    }
}
