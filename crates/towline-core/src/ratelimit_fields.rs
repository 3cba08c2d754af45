//! The rate-limit header fields: the IETF `RateLimit` and `RateLimit-Policy` structured fields
//! (draft-ietf-httpapi-ratelimit-headers, RFC 9651 syntax, parsed with the `sfv` crate), the
//! older dictionary form of `RateLimit`, and whether a response's headers mark it as a rate
//! limit at all.

use std::time::Duration;

use http::{HeaderMap, HeaderName, StatusCode};
use sfv::{BareItem, Dictionary, List, ListEntry, Parameters, Parser};

/// The `RateLimit` field of the current IETF draft.
pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The `RateLimit-Policy` field of the current IETF draft.
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// One member of a `RateLimit` field: the state of one quota policy of the server.
///
/// The current draft sends a list of policy names with parameters, `"default";r=0;t=20`
/// (`r`: requests remaining, `t`: seconds until the quota resets); earlier drafts sent one
/// dictionary, `limit=100, remaining=0, reset=20`, read here as a policy without a name.
/// A member whose `r` or `t` is missing, negative or not an integer has that value `None`.
///
/// ```
/// use std::time::Duration;
/// use towline_core::RateLimitEntry;
///
/// let entries = RateLimitEntry::parse(br#""default";r=0;t=20, "daily";r=400;t=3600"#);
/// assert_eq!(entries[0].policy, "default");
/// assert_eq!(entries[0].remaining, Some(0));
/// assert_eq!(entries[0].reset, Some(Duration::from_secs(20)));
/// assert!(entries[0].is_exhausted() && !entries[1].is_exhausted());
///
/// // The older dictionary form, and garbage (nothing).
/// let old = RateLimitEntry::parse(b"limit=100, remaining=0, reset=7");
/// assert_eq!(old[0].reset, Some(Duration::from_secs(7)));
/// assert!(RateLimitEntry::parse(b"r=;;").is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitEntry {
    /// The policy's name (`""` for the older, unnamed dictionary form).
    pub policy: String,
    /// Requests left in the current window (`r`, or `remaining`).
    pub remaining: Option<u64>,
    /// Time until the quota resets (`t`, or `reset`).
    pub reset: Option<Duration>,
}

impl RateLimitEntry {
    /// Parses a `RateLimit` field value. Never panics; anything that is neither form of the
    /// field gives no entries. See the type's docs for an example.
    pub fn parse(value: &[u8]) -> Vec<RateLimitEntry> {
        if let Ok(list) = Parser::new(value).parse::<List>() {
            return list
                .iter()
                .filter_map(|member| {
                    let ListEntry::Item(item) = member else {
                        return None;
                    };
                    Some(RateLimitEntry {
                        policy: name(&item.bare_item)?,
                        remaining: non_negative(&item.params, "r"),
                        reset: non_negative(&item.params, "t").map(Duration::from_secs),
                    })
                })
                .collect();
        }
        // Earlier drafts: `limit=100, remaining=0, reset=20` (a list parse rejects `=`).
        let Ok(dictionary) = Parser::new(value).parse::<Dictionary>() else {
            return Vec::new();
        };
        let member = |key: &str| match dictionary.get(key) {
            Some(ListEntry::Item(item)) => integer(&item.bare_item),
            _ => None,
        };
        let (remaining, reset) = (member("remaining"), member("reset"));
        if remaining.is_none() && reset.is_none() {
            return Vec::new();
        }
        vec![RateLimitEntry {
            policy: String::new(),
            remaining,
            reset: reset.map(Duration::from_secs),
        }]
    }

    /// Whether this policy's quota is used up (`r=0`): then the reset is a demand to wait.
    pub fn is_exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

/// One member of a `RateLimit-Policy` field: a quota the server enforces.
///
/// The current draft sends `"default";q=100;w=60` (`q`: the quota, `w`: the window in
/// seconds). A missing, negative or non-integer `q` or `w` is `None`.
///
/// ```
/// use std::time::Duration;
/// use towline_core::RateLimitPolicy;
///
/// let policies = RateLimitPolicy::parse(br#""burst";q=100;w=60, "daily";q=1000;w=86400"#);
/// assert_eq!(policies[1].name, "daily");
/// assert_eq!(policies[1].quota, Some(1000));
/// assert_eq!(policies[1].window, Some(Duration::from_secs(86_400)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitPolicy {
    /// The policy's name, as `RateLimit` refers to it.
    pub name: String,
    /// The quota (`q`): how many units the window allows.
    pub quota: Option<u64>,
    /// The window (`w`).
    pub window: Option<Duration>,
}

impl RateLimitPolicy {
    /// Parses a `RateLimit-Policy` field value. Never panics; garbage gives no policies.
    /// See the type's docs for an example.
    pub fn parse(value: &[u8]) -> Vec<RateLimitPolicy> {
        let Ok(list) = Parser::new(value).parse::<List>() else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|member| {
                let ListEntry::Item(item) = member else {
                    return None;
                };
                Some(RateLimitPolicy {
                    name: name(&item.bare_item)?,
                    quota: non_negative(&item.params, "q"),
                    window: non_negative(&item.params, "w").map(Duration::from_secs),
                })
            })
            .collect()
    }
}

/// The wait the structured `RateLimit` field asks for: the latest reset of the policies whose
/// quota is used up; for such a policy without a reset, its window from `RateLimit-Policy`
/// (the longest the server can mean). `None` when no policy is used up.
pub(crate) fn structured_wait(headers: &HeaderMap) -> Option<Duration> {
    let exhausted: Vec<RateLimitEntry> = headers
        .get_all(RATELIMIT)
        .iter()
        .flat_map(|value| RateLimitEntry::parse(value.as_bytes()))
        .filter(RateLimitEntry::is_exhausted)
        .collect();
    if exhausted.is_empty() {
        return None;
    }
    let policies: Vec<RateLimitPolicy> = if exhausted.iter().any(|e| e.reset.is_none()) {
        headers
            .get_all(RATELIMIT_POLICY)
            .iter()
            .flat_map(|value| RateLimitPolicy::parse(value.as_bytes()))
            .collect()
    } else {
        Vec::new()
    };
    exhausted
        .iter()
        .filter_map(|entry| {
            entry.reset.or_else(|| {
                policies
                    .iter()
                    .find(|p| p.name == entry.policy)
                    .and_then(|p| p.window)
            })
        })
        .max()
}

/// Whether the headers say a quota is used up: `X-RateLimit-Remaining: 0` (GitHub and many
/// others), `RateLimit-Remaining: 0` (earlier IETF drafts), or a `RateLimit` policy with
/// `r=0`.
///
/// ```
/// use http::HeaderMap;
/// use towline_core::quota_exhausted;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("ratelimit", r#""default";r=0;t=20"#.parse().unwrap());
/// assert!(quota_exhausted(&headers));
/// headers.insert("ratelimit", r#""default";r=3;t=20"#.parse().unwrap());
/// assert!(!quota_exhausted(&headers));
/// ```
pub fn quota_exhausted(headers: &HeaderMap) -> bool {
    const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
    let zero = |name: HeaderName| {
        headers
            .get_all(name)
            .iter()
            .any(|value| value.as_bytes().trim_ascii() == b"0")
    };
    zero(X_REMAINING)
        || zero(REMAINING)
        || headers.get_all(RATELIMIT).iter().any(|value| {
            RateLimitEntry::parse(value.as_bytes())
                .iter()
                .any(RateLimitEntry::is_exhausted)
        })
}

/// Whether a response's status and headers mark it as a rate limit: a 429, or a 403 that
/// carries `Retry-After` or says its quota is used up ([`quota_exhausted`]).
///
/// GitHub answers both its primary and its secondary rate limits with 403 as well as 429
/// (with `x-ratelimit-remaining: 0` and a reset, or with `retry-after`) and asks clients not to
/// retry before the time it gives. A 403 without those headers is a refusal, not a rate limit;
/// other statuses (a 401 with `x-ratelimit-remaining: 0`) are never one here.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use towline_core::marks_rate_limit;
///
/// let mut headers = HeaderMap::new();
/// assert!(!marks_rate_limit(StatusCode::FORBIDDEN, &headers));
/// headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
/// headers.insert("x-ratelimit-reset", "1700000000".parse().unwrap());
/// assert!(marks_rate_limit(StatusCode::FORBIDDEN, &headers));
/// assert!(!marks_rate_limit(StatusCode::UNAUTHORIZED, &headers));
/// ```
pub fn marks_rate_limit(status: StatusCode, headers: &HeaderMap) -> bool {
    match status.as_u16() {
        429 => true,
        403 => headers.contains_key(http::header::RETRY_AFTER) || quota_exhausted(headers),
        _ => false,
    }
}

/// A policy's name: a String in the current draft, a Token in some implementations.
fn name(item: &BareItem) -> Option<String> {
    match item {
        BareItem::String(s) => Some(s.as_str().to_owned()),
        BareItem::Token(t) => Some(t.as_str().to_owned()),
        _ => None,
    }
}

fn integer(item: &BareItem) -> Option<u64> {
    u64::try_from(i64::from(item.as_integer()?)).ok()
}

fn non_negative(params: &Parameters, key: &str) -> Option<u64> {
    integer(params.get(key)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn wrong_types_and_negative_values_are_none() {
        let entries = RateLimitEntry::parse(br#""a";r=-1;t=1.5, "b";r=?1;t="20", ("c");r=0"#);
        assert_eq!(entries.len(), 2, "the inner list is no policy");
        assert!(
            entries
                .iter()
                .all(|e| e.remaining.is_none() && e.reset.is_none())
        );
    }

    #[test]
    fn an_exhausted_policy_without_a_reset_waits_its_window() {
        let map = headers(&[
            ("ratelimit", r#""daily";r=0"#),
            (
                "ratelimit-policy",
                r#""burst";q=10;w=1, "daily";q=1000;w=86400"#,
            ),
        ]);
        assert_eq!(structured_wait(&map), Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn the_latest_reset_of_the_exhausted_policies_is_the_wait() {
        let map = headers(&[("ratelimit", r#""a";r=0;t=5, "b";r=0;t=50, "c";r=9;t=500"#)]);
        assert_eq!(structured_wait(&map), Some(Duration::from_secs(50)));
        let fresh = headers(&[("ratelimit", r#""a";r=1;t=5"#)]);
        assert_eq!(structured_wait(&fresh), None);
    }
}
