//! `certs`: a throw-away CA and a serving certificate for the webhook ([`crate::serve::certs`] makes them). The
//! command checks what it is given first, so that a typo is an error naming the flag, not a certificate no client
//! will accept: DNS names as RFC 1123 host names (as Kubernetes Service names are), at most [`MAX_DAYS`] days.

use std::io::Write;
use std::net::IpAddr;

use crate::commands::CliError;
use crate::commands::args::CertsCmd;
use crate::serve::certs;

/// The longest validity `certs` issues: ten years. A development or self-signed install certificate that outlives
/// that is a forgotten one; rotate instead (`make certs`, or cert-manager).
pub const MAX_DAYS: u32 = 3650;

/// Checks a `--dns` name: an RFC 1123 host name (labels of lowercase letters, digits and `-`, neither first nor
/// last, 1 to 63 characters; 253 in all), optionally a leading `*.` wildcard label; not an IP address (that is
/// `--ip`). Lowercase only, as Kubernetes names are: certificate names compare case-insensitively, and a mixed-case
/// name is almost always a typo of the Service's.
pub fn check_dns_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("--dns {:?}: {why}", crate::safe_text::line(name, 300)));
    if name.is_empty() {
        return bad("empty");
    }
    if name.parse::<IpAddr>().is_ok() {
        return bad("an IP address: give it with --ip");
    }
    if name.len() > 253 {
        return bad("longer than 253 characters");
    }
    if name.ends_with('.') {
        return bad("ends with a dot: give the name without it");
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    for label in host.split('.') {
        if label.is_empty() {
            return bad("has an empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return bad("has a label longer than 63 characters");
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
            let why = if c == '*' {
                "a wildcard is only allowed as the whole first label (*.example.com)".to_string()
            } else if c.is_ascii_uppercase() {
                "has an upper-case letter: DNS names in Kubernetes are lowercase".to_string()
            } else if !c.is_ascii() {
                "is not ASCII: give an internationalized name in its punycode form (xn--...)".to_string()
            } else {
                format!("has {c:?}: a label holds lowercase letters, digits and '-' only (RFC 1123)")
            };
            return bad(&why);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("has a label that starts or ends with '-'");
        }
    }
    Ok(())
}

/// Checks `--days`.
pub fn check_days(days: u32) -> Result<(), String> {
    match days {
        0 => Err("--days 0: a certificate must be valid for at least 1 day".into()),
        d if d > MAX_DAYS => {
            Err(format!("--days {d}: at most {MAX_DAYS} (10 years); rotate the certificate instead of outliving it"))
        }
        _ => Ok(()),
    }
}

/// Runs `certs`: writes the files, prints the `caBundle` on `out` and what was written on `err`.
pub fn run(cmd: &CertsCmd, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    if cmd.dns.is_empty() && cmd.ip.is_empty() {
        return Err(CliError::Usage("certs: give at least one --dns NAME or --ip ADDR".into()));
    }
    for name in &cmd.dns {
        check_dns_name(name).map_err(CliError::Usage)?;
    }
    check_days(cmd.days).map_err(CliError::Usage)?;
    let bundle = certs::generate(&cmd.dns, &cmd.ip, cmd.days).map_err(|e| CliError::Usage(format!("certs: {e}")))?;
    certs::write_bundle(&cmd.out, &bundle).map_err(|e| CliError::Usage(format!("--out {}: {e}", cmd.out.display())))?;
    writeln!(
        err,
        "wrote {0}/ca.crt, {0}/tls.crt, {0}/tls.key; caBundle for the webhook configuration:",
        cmd.out.display()
    )?;
    writeln!(out, "{}", certs::ca_bundle(&bundle))?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_follow_rfc_1123() {
        let ok = [
            "localhost",
            "pullsecret-injector.pullsecret-injector.svc",
            "pullsecret-injector.pullsecret-injector.svc.cluster.local",
            "a",
            "0-a.b9",
            "*.example.com",
            "xn--bcher-kva.example",
            &format!("{}.example", "a".repeat(63)),
            &["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join("."),
        ];
        for name in ok {
            assert_eq!(check_dns_name(name), Ok(()), "{name}");
        }
        // (name, what the error says)
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("127.0.0.1", "--ip"),
            ("::1", "--ip"),
            ("example.com.", "ends with a dot"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("-a.example", "starts or ends with '-'"),
            ("a-.example", "starts or ends with '-'"),
            ("under_score.example", "'_'"),
            ("Example.com", "upper-case"),
            ("bücher.example", "punycode"),
            ("a.*.example", "wildcard"),
            ("*", "wildcard"),
            ("**.example", "wildcard"),
            ("with space", "' '"),
            ("new\nline", "'\\n'"),
            (&format!("{}.example", "a".repeat(64)), "longer than 63"),
            (&["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join("."), "longer than 253"),
        ];
        for (name, want) in bad {
            let err = check_dns_name(name).unwrap_err();
            assert!(err.starts_with("--dns ") && err.contains(want), "{name:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn days_are_between_one_and_ten_years() {
        for (days, ok) in
            [(0, false), (1, true), (365, true), (MAX_DAYS, true), (MAX_DAYS + 1, false), (1_000_000, false)]
        {
            assert_eq!(check_days(days).is_ok(), ok, "{days}");
        }
        assert!(check_days(1_000_000).unwrap_err().contains("at most 3650"));
    }
}
