//! Redaction and escaping (`safe_text`, issue 11): for any input, every display-safe form is free of control and bidi
//! characters, bounded and stable; and a password planted as the userinfo of a key, in a spelling chosen by the
//! input, never survives `safe_text::key` (what every output shows of a key) or a decode error about that key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pullsecret_injector::kubelet::docker_config::{self, SecretKind};
use pullsecret_injector::safe_text;

const PLANTED: &str = "PLANTEDpw7";

const SCHEMES: [&str; 8] = ["", "//", "https://", "HTTPS://", "Http://", "oci://", "https://https://", "https:%2F%2F"];
const ATS: [&str; 5] = ["@", "%40", "%2540", "\u{ff20}", "\u{fe6b}"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);

    // Totality, safety, bounds, idempotence.
    for max in [1usize, 16, 256] {
        let line = safe_text::line(&text, max);
        assert!(safe_text::is_safe(&line) && line.chars().count() <= max, "{line:?}");
        let label = safe_text::label(&text, max.max(16));
        assert!(safe_text::is_safe(&label) && label.chars().count() <= max.max(16), "{label:?}");
    }
    let shown = safe_text::text(&text);
    assert!(safe_text::is_safe(&shown));
    assert_eq!(safe_text::text(&shown), shown);
    let key = safe_text::key(&text);
    assert!(safe_text::is_safe(&key) && key.chars().count() <= safe_text::MAX_KEY_CHARS);
    assert_eq!(safe_text::key(&key), key);

    // A planted password: `{before}{scheme}{user}:{PLANTED}{at}{after}`, the input split at its first NUL byte.
    if text.contains(PLANTED) {
        return;
    }
    let (before, after) = text.split_once('\0').unwrap_or(("", &text));
    let scheme = SCHEMES[usize::from(selector) % SCHEMES.len()];
    let at = ATS[usize::from(selector / 8) % ATS.len()];
    let user = if selector & 0x80 == 0 { "user" } else { "" };
    let planted = format!("{before}{scheme}{user}:{PLANTED}{at}{after}");
    let shown = safe_text::key(&planted);
    assert!(!shown.contains(PLANTED), "{planted:?} -> {shown:?}");
    let payload = serde_json::json!({ "auths": { &planted: { "auth": "!" } } }).to_string();
    if let Err(error) = docker_config::decode_keys(SecretKind::DockerConfigJson, payload.as_bytes()) {
        let message = error.to_string();
        assert!(!message.contains(PLANTED), "{planted:?} -> {message:?}");
        assert!(safe_text::is_safe(&message), "{message:?}");
    }
});
