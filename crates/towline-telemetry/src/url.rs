//! `url.full` as the conventions want it: no credentials, no query values.

use std::fmt;

use http::Uri;

/// Displays a request's URL with any `user:password@` and every query value replaced by
/// `REDACTED`, so that neither reaches a span. Paths are kept: the conventions ask for them.
pub(crate) struct RedactedUrl<'a>(pub(crate) &'a Uri);

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = uri.authority() {
            match authority.as_str().rsplit_once('@') {
                Some((_, host)) => write!(f, "REDACTED:REDACTED@{host}")?,
                None => f.write_str(authority.as_str())?,
            }
        }
        f.write_str(uri.path())?;
        if let Some(query) = uri.query() {
            f.write_str("?")?;
            for (index, pair) in query.split('&').enumerate() {
                if index > 0 {
                    f.write_str("&")?;
                }
                match pair.split_once('=') {
                    Some((key, _)) => write!(f, "{key}=REDACTED")?,
                    None => f.write_str(pair)?,
                }
            }
        }
        Ok(())
    }
}

/// The port a request goes to: the URL's, or its scheme's default.
pub(crate) fn port(uri: &Uri) -> Option<u16> {
    uri.port_u16().or(match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(uri: &str) -> String {
        RedactedUrl(&uri.parse().unwrap()).to_string()
    }

    #[test]
    fn credentials_and_query_values_are_redacted() {
        assert_eq!(
            redacted("https://user:secret@api.example/v1/items?key=abc&page=2&flag"),
            "https://REDACTED:REDACTED@api.example/v1/items?key=REDACTED&page=REDACTED&flag"
        );
        assert_eq!(
            redacted("http://api.example:8080/"),
            "http://api.example:8080/"
        );
        assert_eq!(redacted("/relative?q=1"), "/relative?q=REDACTED");
    }

    #[test]
    fn the_port_defaults_to_the_schemes() {
        assert_eq!(port(&"https://a.example/".parse().unwrap()), Some(443));
        assert_eq!(port(&"http://a.example/".parse().unwrap()), Some(80));
        assert_eq!(port(&"http://a.example:81/".parse().unwrap()), Some(81));
        assert_eq!(port(&"/x".parse().unwrap()), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::RedactedUrl;

    proptest! {
        /// No password and no query value reaches `url.full`, whatever they are.
        #[test]
        fn no_secret_survives(
            password in "[a-zA-Z0-9]{12,24}",
            value in "[a-zA-Z0-9%]{12,24}",
            key in "[a-z]{1,8}",
        ) {
            let uri: http::Uri = format!("https://u:{password}@api.example/p?{key}={value}&x=1")
                .parse()
                .unwrap();
            let shown = RedactedUrl(&uri).to_string();
            prop_assert!(!shown.contains(&password));
            prop_assert!(!shown.contains(&value));
        }
    }
}
