//! Development and self-signed certificates for the webhook (`pullsecret-injector certs`).
//!
//! [`generate`] makes a throw-away CA and a serving certificate it signs; [`write_bundle`] lays them out the way a
//! Kubernetes TLS Secret is mounted (`ca.crt`, `tls.crt`, `tls.key`) so [`crate::serve::tls::CertStore`] can serve them;
//! [`ca_bundle`] is what goes into the `MutatingWebhookConfiguration`'s `caBundle`. The CA's private key is
//! discarded: rotating means generating a new bundle (and a new `caBundle`), which keeps nothing secret lying around
//! that could sign further certificates.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// Common name of the generated CA.
pub const CA_COMMON_NAME: &str = "pullsecret-injector CA";
/// File names inside the bundle directory: those of a mounted `kubernetes.io/tls` Secret (plus `ca.crt`).
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";

/// Allowance for clocks that lag ours: the certificates are valid from this long before "now", so an API server
/// whose clock is a little behind does not reject a freshly generated certificate as "not yet valid".
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Why a certificate bundle could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("at least one DNS name or IP address is required")]
    NoSubjectNames,
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidDnsName { name: String, reason: String },
    #[error("validity of {days} days is not supported (must be between 1 day and the year 9999)")]
    InvalidValidity { days: u32 },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// A CA certificate and a serving certificate and key it signed, all PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    pub ca_cert_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Never prints the private key.
impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A new CA (CN "pullsecret-injector CA", may sign end-entity certificates only) and a serving certificate it signs
/// for `dns` names and `ips` (subject alternative names; CN = the first DNS name, else the first IP; extended key
/// usage serverAuth), both valid for `days` days from now, starting 5 minutes early for clock skew. Keys are ECDSA
/// P-256.
pub fn generate(dns: &[String], ips: &[IpAddr], days: u32) -> Result<Bundle, CertError> {
    let common_name = match (dns.first(), ips.first()) {
        (Some(name), _) => name.clone(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => return Err(CertError::NoSubjectNames),
    };
    let mut subject_alt_names = Vec::with_capacity(dns.len() + ips.len());
    for name in dns {
        subject_alt_names.push(SanType::DnsName(dns_name(name)?));
    }
    subject_alt_names.extend(ips.iter().copied().map(SanType::IpAddress));

    let now = OffsetDateTime::now_utc();
    let not_before = now - CLOCK_SKEW;
    let not_after = validity_end(now, days)?;

    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = common_name_dn(CA_COMMON_NAME);
    // Path length 0: this CA signs the serving certificate and nothing that could sign further.
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(&common_name);
    params.subject_alt_names = subject_alt_names;
    params.is_ca = IsCa::ExplicitNoCa;
    // ECDSA keys only sign (no key encipherment), so digitalSignature is the one key usage a TLS server needs.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca_issuer)?;

    Ok(Bundle { ca_cert_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Writes `dir/ca.crt`, `dir/tls.crt` (mode 0644) and `dir/tls.key` (mode 0600 from its creation, so the key is
/// never readable by others, not even briefly), creating `dir`. Each file is written to a temporary file in `dir`
/// and renamed over the target, so a reader never sees half a file. The files are replaced one after the other:
/// a reader may see the new key with the old certificate for a moment, which [`crate::serve::tls::CertStore::reload`]
/// rejects as a mismatched pair (keeping the old certificate) until the next poll.
pub fn write_bundle(dir: &Path, bundle: &Bundle) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    write_atomically(dir, CA_CERT_FILE, bundle.ca_cert_pem.as_bytes(), 0o644)?;
    write_atomically(dir, KEY_FILE, bundle.key_pem.as_bytes(), 0o600)?;
    write_atomically(dir, CERT_FILE, bundle.cert_pem.as_bytes(), 0o644)?;
    // Make the renames durable, so a crash does not leave the old names pointing at nothing.
    fs::File::open(dir)?.sync_all()
}

/// The base64 of the CA PEM: the value of a webhook configuration's `clientConfig.caBundle`.
pub fn ca_bundle(bundle: &Bundle) -> String {
    STANDARD.encode(bundle.ca_cert_pem.as_bytes())
}

fn dns_name(name: &str) -> Result<Ia5String, CertError> {
    let invalid = |reason: &str| CertError::InvalidDnsName { name: name.to_owned(), reason: reason.to_owned() };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    // rcgen checks only that the name is ASCII (IA5String); internationalized names must be given as punycode.
    Ia5String::try_from(name).map_err(|_| invalid("not ASCII (use the punycode form)"))
}

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn validity_end(now: OffsetDateTime, days: u32) -> Result<OffsetDateTime, CertError> {
    // X.509 times end at 9999-12-31 (GeneralizedTime has four year digits).
    now.checked_add(Duration::days(i64::from(days)))
        .filter(|end| days > 0 && end.year() <= 9999)
        .ok_or(CertError::InvalidValidity { days })
}

/// Creates a fresh temporary file in `dir` with `mode` (never reusing an existing path: `create_new` also refuses to
/// follow a planted symlink), writes and syncs it, then renames it to `dir/name`.
fn write_atomically(dir: &Path, name: &str, contents: &[u8], mode: u32) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp_path = |attempt: u64| -> PathBuf { dir.join(format!(".{name}.tmp-{}-{attempt}", std::process::id())) };
    let (mut file, temp) = loop {
        let temp = temp_path(COUNTER.fetch_add(1, Ordering::Relaxed));
        match fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp) {
            Ok(file) => break (file, temp),
            // A leftover of an earlier crashed run with the same pid and counter: take the next name.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    };
    let result =
        file.write_all(contents).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&temp, dir.join(name)));
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use rustls::RootCertStore;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::server::WebPkiClientVerifier;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
    }

    fn roots(bundle: &Bundle) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(der(&bundle.ca_cert_pem)).expect("CA usable as a trust anchor");
        Arc::new(roots)
    }

    /// Verifies the serving certificate as a TLS client would (webpki: chain to the CA, SAN, serverAuth EKU, time).
    fn verify_as_server(bundle: &Bundle, name: &str, at: OffsetDateTime) -> Result<(), rustls::Error> {
        let verifier =
            WebPkiServerVerifier::builder_with_provider(roots(bundle), provider()).build().expect("verifier");
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at.unix_timestamp() as u64));
        verifier.verify_server_cert(&der(&bundle.cert_pem), &[], &name, &[], at).map(|_| ())
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn serving_certificate_is_valid_for_every_name_and_only_those() {
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
        let bundle = generate(&names(&["webhook.ns.svc", "webhook.ns.svc.cluster.local"]), &ips, 30).unwrap();
        let now = OffsetDateTime::now_utc();
        for (name, valid) in [
            ("webhook.ns.svc", true),
            ("webhook.ns.svc.cluster.local", true),
            ("127.0.0.1", true),
            ("::1", true),
            ("other.ns.svc", false),
            ("ns.svc", false),
            ("10.0.0.1", false),
        ] {
            assert_eq!(verify_as_server(&bundle, name, now).is_ok(), valid, "{name}");
        }
    }

    #[test]
    fn validity_starts_five_minutes_early_and_lasts_the_given_days() {
        let bundle = generate(&names(&["webhook.ns.svc"]), &[], 2).unwrap();
        let now = OffsetDateTime::now_utc();
        // One minute of margin either side absorbs the time between `generate` and this `now`.
        for (label, at, valid) in [
            ("now", now, true),
            ("4 minutes ago (clock skew)", now - Duration::minutes(4), true),
            ("6 minutes ago", now - Duration::minutes(6), false),
            ("just before the end", now + Duration::days(2) - Duration::minutes(1), true),
            ("just after the end", now + Duration::days(2) + Duration::minutes(1), false),
        ] {
            assert_eq!(verify_as_server(&bundle, "webhook.ns.svc", at).is_ok(), valid, "{label}");
        }
    }

    #[test]
    fn serving_certificate_is_for_servers_only() {
        // webpki checks the extended key usage: serverAuth passes as a server, and the same certificate presented as
        // a client certificate (clientAuth) is refused.
        let bundle = generate(&names(&["webhook.ns.svc"]), &[], 1).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(&bundle), provider()).build().unwrap();
        let now = UnixTime::now();
        assert!(verifier.verify_client_cert(&der(&bundle.cert_pem), &[], now).is_err());
    }

    #[test]
    fn subjects_carry_the_expected_common_names() {
        let bundle = generate(&names(&["first.example", "second.example"]), &[], 1).unwrap();
        let contains = |haystack: &CertificateDer<'_>, needle: &str| {
            haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
        };
        let ca = der(&bundle.ca_cert_pem);
        let leaf = der(&bundle.cert_pem);
        assert!(contains(&ca, CA_COMMON_NAME));
        assert!(contains(&leaf, "first.example"));
        assert!(!contains(&ca, "first.example"));

        let ip_only = generate(&[], &[IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))], 1).unwrap();
        assert!(contains(&der(&ip_only.cert_pem), "10.1.2.3"), "CN falls back to the first IP");
    }

    #[test]
    fn key_pairs_are_fresh_and_match() {
        let first = generate(&names(&["a.example"]), &[], 1).unwrap();
        let second = generate(&names(&["a.example"]), &[], 1).unwrap();
        assert_ne!(first.key_pem, second.key_pem);
        assert_ne!(first.ca_cert_pem, second.ca_cert_pem);
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(first.key_pem.as_bytes()).unwrap();
        let signing_key = provider().key_provider.load_private_key(key).unwrap();
        rustls::sign::CertifiedKey::new(vec![der(&first.cert_pem)], signing_key).keys_match().unwrap();
    }

    #[test]
    fn invalid_requests_are_refused() {
        type IsExpected = fn(&CertError) -> bool;
        let cases: [(&str, &[&str], u32, IsExpected); 5] = [
            ("no names", &[], 1, |e| matches!(e, CertError::NoSubjectNames)),
            ("empty DNS name", &[""], 1, |e| matches!(e, CertError::InvalidDnsName { .. })),
            ("non-ASCII DNS name", &["bücher.example"], 1, |e| matches!(e, CertError::InvalidDnsName { .. })),
            ("zero days", &["a.example"], 0, |e| matches!(e, CertError::InvalidValidity { days: 0 })),
            ("past the year 9999", &["a.example"], u32::MAX, |e| matches!(e, CertError::InvalidValidity { .. })),
        ];
        for (label, dns, days, expected) in cases {
            let err = generate(&names(dns), &[], days).expect_err(label);
            assert!(expected(&err), "{label}: {err:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let bundle = generate(&names(&["a.example"]), &[], 1).unwrap();
        let debug = format!("{bundle:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert!(debug.contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn ca_bundle_is_the_base64_of_the_ca_pem() {
        let bundle = generate(&names(&["a.example"]), &[], 1).unwrap();
        let decoded = STANDARD.decode(ca_bundle(&bundle)).unwrap();
        assert_eq!(decoded, bundle.ca_cert_pem.as_bytes());
    }

    #[test]
    fn write_bundle_creates_the_directory_and_files_with_their_modes() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("nested/certs");
        // A pre-existing, world-readable tls.key must be replaced by a 0600 file, not rewritten in place.
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(KEY_FILE), "old").unwrap();
        fs::set_permissions(dir.join(KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();

        let bundle = generate(&names(&["a.example"]), &[], 1).unwrap();
        write_bundle(&dir, &bundle).unwrap();

        assert_eq!(fs::read_to_string(dir.join(CA_CERT_FILE)).unwrap(), bundle.ca_cert_pem);
        assert_eq!(fs::read_to_string(dir.join(CERT_FILE)).unwrap(), bundle.cert_pem);
        assert_eq!(fs::read_to_string(dir.join(KEY_FILE)).unwrap(), bundle.key_pem);
        let mode = |name: &str| fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(KEY_FILE), 0o600);
        assert_eq!(mode(CERT_FILE) & 0o022, 0, "certificates are not writable by others");
        let mut entries: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        entries.sort();
        assert_eq!(entries, [CA_CERT_FILE, CERT_FILE, KEY_FILE], "no temporary file left behind");
    }
}
