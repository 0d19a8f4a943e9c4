//! When a pull credential expires (issue 12 item 5), computed once while a Secret is indexed: the payload is read
//! here and dropped; only the resulting time is kept ([`crate::core::credentials::CandidateSecret::expires_at`]).
//!
//! A credential expires at the earliest of: the Secret's [`EXPIRES_AT_ANNOTATION`] (RFC 3339), and the `exp` claim of
//! any JWT password the kubelet sends (its entries as the kubelet decodes them: `auth` wins over `password`;
//! `identitytoken` and `registrytoken`, which the kubelet drops, do not count). The JWT is decoded without verifying its signature: we only predict when the registry will refuse it. Anything that
//! does not parse means "no expiry" — a guess is never a reason to withhold a credential.
//!
//! Every input here is a tenant's: the work is bounded ([`MAX_TOKEN_BYTES`]), nothing panics, and no value read here
//! ever leaves this module (only a timestamp does).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::kubelet::docker_config::RegistryEntry;

/// The annotation an owner sets on a pull Secret whose credential expires at a known time (RFC 3339).
pub const EXPIRES_AT_ANNOTATION: &str = "pullsecret-injector.io/expires-at";

/// Seconds since the Unix epoch, UTC.
pub type UnixTime = i64;

/// A token longer than this is not decoded (a real JWT is under 4 KiB): no expiry, and bounded work.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The latest time kept: 9999-12-31T23:59:59Z. A later `exp` is no expiry (and cannot overflow arithmetic).
const MAX_TIME: UnixTime = 253_402_300_799;
/// The earliest time kept: 0000-01-01T00:00:00Z. An earlier `exp` is long past: clamped here.
const MIN_TIME: UnixTime = -62_167_219_200;

/// What "now" is, passed to the decision so that tests are deterministic.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> UnixTime + Send + Sync>);

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Self(Arc::new(|| time::OffsetDateTime::now_utc().unix_timestamp()))
    }

    /// A clock that always says `now` (tests, `explain` at a chosen time).
    pub fn fixed(now: UnixTime) -> Self {
        Self(Arc::new(move || now))
    }

    pub fn now(&self) -> UnixTime {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// Whether a credential valid now expires within `window` (`--expiry-warning`; a zero window never warns): the
/// decision warns about such a Secret it injects, `explain` marks it.
pub fn expires_within(at: UnixTime, now: UnixTime, window: std::time::Duration) -> bool {
    let horizon = now.saturating_add(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
    !window.is_zero() && at > now && at <= horizon
}

/// The earlier of two optional times.
pub fn earliest(a: Option<UnixTime>, b: Option<UnixTime>) -> Option<UnixTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The expiry of a Secret: its annotation (when present and valid) and the JWT passwords of its entries as the
/// kubelet decodes them ([`crate::kubelet::docker_config::decode`]), the earliest. Only what the kubelet sends
/// counts: the password after `auth` overrides `username`/`password` (R9); `identitytoken` and `registrytoken`,
/// which the kubelet drops (D19, D20), never make a working credential look expired.
pub fn secret_expiry(annotation: Option<&str>, entries: &[RegistryEntry]) -> Option<UnixTime> {
    let tokens = entries.iter().filter_map(|entry| jwt_expiry(&entry.password)).min();
    earliest(annotation.and_then(parse_rfc3339), tokens)
}

/// The `exp` claim of a JWS compact token (`header.payload.signature`), unverified. `None` when the token is not a
/// JWT, is over [`MAX_TOKEN_BYTES`], or its `exp` is not a number (RFC 7519 NumericDate: integer or not) in the
/// years 0 to 9999; an earlier one is clamped (long past).
pub fn jwt_expiry(token: &str) -> Option<UnixTime> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let engine = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let claims: Value = serde_json::from_slice(&engine.decode(payload).ok()?).ok()?;
    let exp = field_exact(&claims, "exp")?.as_f64()?;
    if !exp.is_finite() || exp > MAX_TIME as f64 {
        return None;
    }
    // `as` saturates; the clamp keeps formatting and arithmetic in range.
    Some((exp.floor() as UnixTime).max(MIN_TIME))
}

/// Claim names are case-sensitive (RFC 7519).
fn field_exact<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object.as_object()?.get(name)
}

/// RFC 3339 (`2026-12-04T16:00:00Z`, `2026-12-04T17:00:00.5+01:00`; `t`, `z` and a space separator accepted), to
/// whole seconds (a fraction is dropped). `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<UnixTime> {
    let b = text.trim().as_bytes();
    if b.len() < 20 || b.len() > 64 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().all(u8::is_ascii_digit).then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(num(0..4)?).ok()?, month, u8::try_from(num(8..10)?).ok()?).ok()?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // A leap second (60) is read as the next second, as Go's time.Parse refuses it and others round.
    let clock = time::Time::from_hms(u8::try_from(hour).ok()?, u8::try_from(minute).ok()?, 0).ok()?;
    if second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let field = |a: &u8, b: &u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit()).then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (h, m) = (field(h1, h2)?, field(m1, m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = h * 3600 + m * 60;
            if *sign == b'+' { seconds } else { -seconds }
        }
        _ => return None,
    };
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp() + second - offset)
}

/// A time as RFC 3339 in UTC (`2026-12-04T16:00:00Z`), for warnings, `verify` and `explain`.
pub fn format_rfc3339(t: UnixTime) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("@{t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64url(text: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    fn jwt(claims: &str) -> String {
        format!("{}.{}.c2lnbmF0dXJl", b64url(r#"{"alg":"RS256","typ":"JWT"}"#), b64url(claims))
    }

    /// (case, token, expiry)
    #[test]
    fn jwt_exp_is_read_without_trusting_it() {
        let huge = format!("{}.{}.sig", b64url("{}"), "A".repeat(1 << 20));
        let deep = jwt(&format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)));
        let cases: Vec<(&str, String, Option<UnixTime>)> = vec![
            ("integer", jwt(r#"{"exp":1796400000,"sub":"robot"}"#), Some(1_796_400_000)),
            ("float floors", jwt(r#"{"exp":1796400000.9}"#), Some(1_796_400_000)),
            ("exponent", jwt(r#"{"exp":1.7964e9}"#), Some(1_796_400_000)),
            ("negative: long past", jwt(r#"{"exp":-5}"#), Some(-5)),
            ("very negative: clamped", jwt(r#"{"exp":-1e300}"#), Some(MIN_TIME)),
            ("huge: none", jwt(r#"{"exp":1e300}"#), None),
            ("beyond u64: none", jwt(r#"{"exp":184467440737095516160}"#), None),
            ("i64::MAX: none", jwt(r#"{"exp":9223372036854775807}"#), None),
            ("string: none", jwt(r#"{"exp":"1796400000"}"#), None),
            ("null: none", jwt(r#"{"exp":null}"#), None),
            ("no exp", jwt(r#"{"sub":"x"}"#), None),
            ("claim names are case-sensitive", jwt(r#"{"EXP":1}"#), None),
            ("claims not an object", jwt("[1]"), None),
            ("padded base64url", format!("{}.{}=.s", b64url("{}"), b64url(r#"{"exp":10}"#)), Some(10)),
            ("malformed base64", "aGVhZA.!!!.sig".into(), None),
            ("standard alphabet rejected", format!("h.{}.s", "eyJleHAiOjF9+/"), None),
            ("not JSON", format!("h.{}.s", b64url("exp=1")), None),
            ("two parts", format!("h.{}", b64url(r#"{"exp":1}"#)), None),
            ("four parts", format!("h.{}.s.x", b64url(r#"{"exp":1}"#)), None),
            ("a password", "hunter2".into(), None),
            ("empty", String::new(), None),
            ("1 MiB token", huge, None),
            ("deep nesting", deep, None),
        ];
        for (case, token, want) in cases {
            let started = std::time::Instant::now();
            assert_eq!(jwt_expiry(&token), want, "{case}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1), "{case}: bounded work");
        }
    }

    #[test]
    fn rfc3339_annotation() {
        let cases: &[(&str, Option<UnixTime>)] = &[
            ("2026-12-04T16:00:00Z", Some(1_796_400_000)),
            ("2026-12-04t16:00:00z", Some(1_796_400_000)),
            ("2026-12-04 16:00:00Z", Some(1_796_400_000)),
            ("2026-12-04T17:00:00+01:00", Some(1_796_400_000)),
            ("2026-12-04T15:30:00-00:30", Some(1_796_400_000)),
            ("2026-12-04T16:00:00.999999999Z", Some(1_796_400_000)),
            ("  2026-12-04T16:00:00Z\n", Some(1_796_400_000)),
            ("2026-12-04", None),
            ("2026-12-04T16:00:00", None),
            ("2026-13-04T16:00:00Z", None),
            ("2026-02-30T16:00:00Z", None),
            ("2026-12-04T24:00:00Z", None),
            ("2026-12-04T16:00:00+24:00", None),
            ("2026-12-04T16:00:00.Z", None),
            ("+026-12-04T16:00:00Z", None),
            ("tomorrow", None),
            ("", None),
            ("2026-12-04T16:00:00Zextra", None),
            ("2026-12-04T16:00:00\u{e9}", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text), *want, "{text:?}");
        }
        assert_eq!(format_rfc3339(1_796_400_000), "2026-12-04T16:00:00Z");
        assert_eq!(format_rfc3339(MIN_TIME), "0000-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(MAX_TIME), "9999-12-31T23:59:59Z");
        assert_eq!(parse_rfc3339(&format_rfc3339(MAX_TIME)), Some(MAX_TIME));
    }

    #[test]
    fn a_secret_expires_with_the_earliest_token_the_kubelet_sends() {
        use crate::kubelet::docker_config::{SecretKind, decode};
        let soon = jwt(r#"{"exp":100}"#);
        let later = jwt(r#"{"exp":200}"#);
        let auth = |password: &str| base64::engine::general_purpose::STANDARD.encode(format!("robot:{password}"));
        let (json, cfg) = (SecretKind::DockerConfigJson, SecretKind::DockerCfg);
        let cases: Vec<(&str, String, SecretKind, Option<UnixTime>)> = vec![
            ("password", format!(r#"{{"auths":{{"r.io":{{"username":"u","password":"{later}"}}}}}}"#), json, Some(200)),
            ("auth", format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, auth(&soon)), json, Some(100)),
            (
                "auth overrides password (R9): the password is never sent",
                format!(r#"{{"auths":{{"r.io":{{"auth":"{}","password":"{soon}"}}}}}}"#, auth("plain")),
                json,
                None,
            ),
            (
                "identitytoken: dropped by the kubelet (D19), a working password stays",
                format!(r#"{{"auths":{{"r.io":{{"auth":"{}","identitytoken":"{soon}"}}}}}}"#, auth("plain")),
                json,
                None,
            ),
            (
                "registrytoken: dropped by the kubelet (D20)",
                format!(r#"{{"auths":{{"r.io":{{"registrytoken":"{soon}"}}}}}}"#),
                json,
                None,
            ),
            (
                "earliest of two entries",
                format!(r#"{{"auths":{{"a.io":{{"password":"{later}"}},"b.io":{{"password":"{soon}"}}}}}}"#),
                json,
                Some(100),
            ),
            ("dockercfg", format!(r#"{{"r.io":{{"password":"{later}"}}}}"#), cfg, Some(200)),
            ("plain password", r#"{"auths":{"r.io":{"username":"u","password":"p"}}}"#.into(), json, None),
        ];
        for (case, payload, kind, want) in cases {
            let entries = decode(kind, payload.as_bytes()).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(secret_expiry(None, &entries), want, "{case}");
        }
        let entries = decode(json, format!(r#"{{"auths":{{"r.io":{{"password":"{later}"}}}}}}"#).as_bytes()).unwrap();
        assert_eq!(secret_expiry(Some("1970-01-01T00:01:40Z"), &entries), Some(100));
        assert_eq!(secret_expiry(Some("1970-01-01T00:05:00Z"), &entries), Some(200));
        assert_eq!(secret_expiry(Some("not a time"), &entries), Some(200));
        assert_eq!(secret_expiry(None, &[]), None);
    }
}
