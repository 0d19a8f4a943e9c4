//! The webhook's serving certificate, rotated without a restart and without dropping a request.
//!
//! [`CertStore`] holds the certificate and key read from PEM files behind an [`ArcSwap`]; the rustls
//! [`ServerConfig`] from [`CertStore::server_config`] asks the store on every handshake, so a swap affects the next
//! handshake while established connections keep theirs. [`CertStore::watch`] polls the files and compares their
//! content, which also sees the atomic `..data` symlink swap of a mounted Kubernetes Secret (an inotify watch set
//! on `tls.crt` follows the symlink to the old file and misses it). A new pair is served only when it parses and
//! the key matches the certificate; anything else keeps the old certificate serving.
//!
//! [`ClientCa`] (`--client-ca`) does the same for the CA that signs the certificates of the clients allowed to
//! call the webhook (mutual TLS: the API server's admission client certificate).

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::UnixTime;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};

/// TLS versions the webhook accepts: 1.3 and 1.2 (the Kubernetes API server speaks both; nothing older).
pub static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// ALPN protocols offered, in preference order.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a certificate/key pair could not be loaded. Messages name the files, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no certificate in PEM file {}", path.display())]
    NoCertificate { path: PathBuf },
    #[error("invalid certificate PEM in {}: {reason}", path.display())]
    InvalidCertificatePem { path: PathBuf, reason: String },
    /// `reason` is one of a few fixed texts: a parser's detail could quote bytes of the key.
    #[error("no usable private key in {}: {reason}", path.display())]
    PrivateKey { path: PathBuf, reason: &'static str },
    #[error("the private key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// `--client-ca`: no usable CA certificate in the file (a CA certificate is public: the reason may quote it).
    #[error("no usable client CA in {}: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    /// A short, stable name for the variant, fit for a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::NoCertificate { .. } => "no_certificate",
            Self::InvalidCertificatePem { .. } => "invalid_certificate_pem",
            Self::PrivateKey { .. } => "private_key",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::ClientCa { .. } => "client_ca",
            Self::Rustls(_) => "rustls",
        }
    }
}

/// The serving certificate, read from PEM files and swapped atomically when they change.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    /// Read without a lock on every handshake.
    current: ArcSwap<Served>,
    /// Digest of the file contents behind `current`. The mutex also serializes reloads, so two concurrent ones
    /// cannot store an older pair over a newer one; handshakes never take it.
    loaded_content: Mutex<ContentDigest>,
}

/// What is served, swapped as one so the certificate and its metadata never disagree.
struct Served {
    certified_key: Arc<CertifiedKey>,
    not_after: Option<i64>,
    fingerprint: String,
}

/// SHA-256 of each file's bytes: a change in either file is a change of the pair.
#[derive(PartialEq, Eq)]
struct ContentDigest {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl CertStore {
    /// Reads and validates the certificate chain (leaf first) and private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert_pem, key_pem) = read_pair(cert, key)?;
        let served = parse_pair(cert, key, &cert_pem, &key_pem, &provider)?;
        Ok(Arc::new(Self {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            provider,
            current: ArcSwap::from_pointee(served),
            loaded_content: Mutex::new(ContentDigest::of(&cert_pem, &key_pem)),
        }))
    }

    /// Re-reads both files; swaps only when their content changed and the new pair is valid (the key matches the
    /// certificate). On error the old certificate keeps serving, and the next call tries the files again.
    /// `Ok(true)`: swapped; `Ok(false)`: unchanged.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let mut loaded = self.loaded_content.lock().unwrap_or_else(PoisonError::into_inner);
        let (cert_pem, key_pem) = read_pair(&self.cert_path, &self.key_path)?;
        let content = ContentDigest::of(&cert_pem, &key_pem);
        if content == *loaded {
            return Ok(false);
        }
        let served = parse_pair(&self.cert_path, &self.key_path, &cert_pem, &key_pem, &self.provider)?;
        self.current.store(Arc::new(served));
        *loaded = content;
        Ok(true)
    }

    /// A rustls server configuration: ring provider, TLS 1.3 and 1.2 only, ALPN `h2` then `http/1.1`, the
    /// certificate taken from this store on every handshake (lock-free), no client authentication.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        self.server_config_with(None)
    }

    /// [`CertStore::server_config`], and with `client_ca` mutual TLS: a client must present a certificate that
    /// `client_ca` verifies, or the handshake fails. Session resumption is then off, so that a session
    /// authenticated under a CA that has since been replaced cannot be resumed (the API server keeps its
    /// connections alive: full handshakes are rare).
    pub fn server_config_with(self: &Arc<Self>, client_ca: Option<&Arc<ClientCa>>) -> Arc<ServerConfig> {
        let builder = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .expect("the ring provider supports TLS 1.2 and 1.3");
        let builder = match client_ca {
            Some(ca) => builder.with_client_cert_verifier(Arc::new(ReloadingClientVerifier(Arc::clone(ca)))),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(StoreResolver(Arc::clone(self))));
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|protocol| protocol.to_vec()).collect();
        if client_ca.is_some() {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        Arc::new(config)
    }

    /// Seconds since the Unix epoch at which the served (leaf) certificate expires; `None` if its `notAfter`
    /// cannot be read (rustls accepted it, so this does not happen for a well-formed certificate).
    pub fn not_after_unix(&self) -> Option<i64> {
        self.current.load().not_after
    }

    /// SHA-256 fingerprint of the served (leaf) certificate, formatted as `openssl x509 -fingerprint -sha256`
    /// prints it (`AB:CD:...`), for logs that say which certificate is in use.
    pub fn fingerprint(&self) -> String {
        self.current.load().fingerprint.clone()
    }

    /// Polls the files every `interval` (at least 1 ms) until `shutdown` resolves, calling `on_reload` with each
    /// result other than "unchanged": `Ok(true)` when a new certificate is served, `Err` when the files changed
    /// but cannot be served (the old certificate stays). A file that stays broken is reported at every poll.
    /// Content is compared, not modification times, so the `..data` symlink swap of a Kubernetes Secret volume is
    /// seen. The files are read on the blocking thread pool.
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl Future<Output = ()>,
        on_reload: impl FnMut(&Result<bool, TlsError>),
    ) {
        poll_reload(interval, shutdown, move || self.reload(), on_reload).await
    }
}

/// Calls `reload` on the blocking thread pool every `interval` (at least 1 ms) until `shutdown` resolves, and
/// `on_reload` with each result other than "unchanged" (`Ok(false)`).
async fn poll_reload<R>(
    interval: Duration,
    shutdown: impl Future<Output = ()>,
    reload: R,
    mut on_reload: impl FnMut(&Result<bool, TlsError>),
) where
    R: Fn() -> Result<bool, TlsError> + Clone + Send + 'static,
{
    let interval = interval.max(Duration::from_millis(1));
    // The first poll comes one interval after start: the files were just read by `load`.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        let result = match tokio::task::spawn_blocking(reload.clone()).await {
            Ok(result) => result,
            Err(join_error) if join_error.is_panic() => std::panic::resume_unwind(join_error.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        };
        if !matches!(result, Ok(false)) {
            on_reload(&result);
        }
    }
}

/// `--client-ca`: the CA certificates (PEM, one or more) that the webhook's clients must present a certificate
/// from, read from a file and swapped atomically when its content changes. A file that cannot be used keeps the
/// previous CA (as with the serving certificate): a broken rotation never opens the webhook to everyone, nor
/// closes it to the API server that was accepted before.
pub struct ClientCa {
    path: PathBuf,
    provider: Arc<CryptoProvider>,
    /// Read on every handshake, without a lock.
    current: ArcSwap<CurrentVerifier>,
    /// SHA-256 of the file behind `current`; the mutex also serializes reloads.
    loaded_content: Mutex<Vec<u8>>,
}

/// The verifier built from one version of the file (an `Arc<dyn …>` is not `Sized`: `ArcSwap` needs a wrapper).
struct CurrentVerifier(Arc<dyn ClientCertVerifier>);

impl ClientCa {
    /// Reads the CA certificate(s); fails when the file holds no certificate usable as a trust anchor.
    pub fn load(path: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pem = std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })?;
        let verifier = client_verifier(path, &pem, &provider)?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            provider,
            current: ArcSwap::from_pointee(CurrentVerifier(verifier)),
            loaded_content: Mutex::new(sha256(&pem)),
        }))
    }

    /// Re-reads the file; swaps only when its content changed and is usable. `Ok(true)`: swapped (new
    /// handshakes verify against the new CA; open connections keep theirs); `Ok(false)`: unchanged.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let mut loaded = self.loaded_content.lock().unwrap_or_else(PoisonError::into_inner);
        let pem = std::fs::read(&self.path).map_err(|source| TlsError::Read { path: self.path.clone(), source })?;
        let content = sha256(&pem);
        if content == *loaded {
            return Ok(false);
        }
        let verifier = client_verifier(&self.path, &pem, &self.provider)?;
        self.current.store(Arc::new(CurrentVerifier(verifier)));
        *loaded = content;
        Ok(true)
    }

    /// Polls the file like [`CertStore::watch`].
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl Future<Output = ()>,
        on_reload: impl FnMut(&Result<bool, TlsError>),
    ) {
        poll_reload(interval, shutdown, move || self.reload(), on_reload).await
    }
}

impl fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCa").field("path", &self.path).finish_non_exhaustive()
    }
}

/// webpki's verifier over every CA certificate in `pem`: chains to one of them, valid now, extended key usage
/// clientAuth (when the certificate lists any).
fn client_verifier(
    path: &Path,
    pem: &[u8],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let error = |reason: String| TlsError::ClientCa { path: path.to_owned(), reason };
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| error(format!("invalid certificate PEM: {err}")))?;
    if certificates.is_empty() {
        return Err(error("no CERTIFICATE PEM block".into()));
    }
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|err| error(format!("not a usable CA certificate: {err}")))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|err| error(err.to_string()))
}

/// Asks the [`ClientCa`] for its current verifier on every handshake. Client authentication is mandatory. No CA
/// names are sent as hints: a Go client (the API server) then presents its configured certificate whatever its
/// issuer, and a rotated CA needs no change here.
#[derive(Debug)]
struct ReloadingClientVerifier(Arc<ClientCa>);

impl ClientCertVerifier for ReloadingClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0.current.load().0.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.current.load().0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.current.load().0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.current.load().0.supported_verify_schemes()
    }
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let served = self.current.load();
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("fingerprint", &served.fingerprint)
            .field("not_after", &served.not_after)
            .finish_non_exhaustive()
    }
}

/// Serves whatever the store holds at handshake time, whatever the SNI: the webhook has one identity.
#[derive(Debug)]
struct StoreResolver(Arc<CertStore>);

impl ResolvesServerCert for StoreResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.current.load().certified_key))
    }
}

impl ContentDigest {
    fn of(cert_pem: &[u8], key_pem: &[u8]) -> Self {
        Self { cert: sha256(cert_pem), key: sha256(key_pem) }
    }
}

/// Reads the certificate, then the key, then the certificate again, retrying if it changed meanwhile: the two
/// files are replaced together (a Secret's `..data` swap), but two reads are not atomic, and a read straddling the
/// swap would otherwise be reported as a mismatched pair.
fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    const ATTEMPTS: usize = 3;
    let read = |path: &Path| std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source });
    let mut cert_pem = read(cert)?;
    let mut attempts_left = ATTEMPTS;
    loop {
        let key_pem = read(key)?;
        let cert_again = read(cert)?;
        attempts_left -= 1;
        if cert_again == cert_pem || attempts_left == 0 {
            // Out of attempts, validation decides: a pair that still does not match is rejected.
            return Ok((cert_again, key_pem));
        }
        cert_pem = cert_again;
    }
}

fn parse_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<Served, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::InvalidCertificatePem { path: cert_path.to_owned(), reason: err.to_string() })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate { path: cert_path.to_owned() });
    };
    let not_after = x509_not_after(leaf);
    let fingerprint = fingerprint(leaf);

    let key_error = |reason| TlsError::PrivateKey { path: key_path.to_owned(), reason };
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| match err {
        pem::Error::NoItemsFound => key_error("no PRIVATE KEY PEM block"),
        _ => key_error("malformed PEM"),
    })?;
    let signing_key =
        provider.key_provider.load_private_key(key).map_err(|_| key_error("unsupported or invalid key"))?;

    let certified_key = CertifiedKey::new(chain, signing_key);
    match certified_key.keys_match() {
        Ok(()) => {}
        // `Unknown` (a key that cannot report its public key) is refused too: serving a pair we could not check
        // risks every handshake failing. ring's keys always report theirs.
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(TlsError::KeyMismatch { cert: cert_path.to_owned(), key: key_path.to_owned() });
        }
        // E.g. a PEM block whose content is not an X.509 certificate.
        Err(err) => return Err(TlsError::Rustls(err)),
    }
    Ok(Served { certified_key: Arc::new(certified_key), not_after, fingerprint })
}

fn sha256(data: &[u8]) -> Vec<u8> {
    // rustls exposes ring's SHA-256 through its cipher suites; this spares a direct `ring` dependency.
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13().expect("a TLS 1.3 suite");
    suite.common.hash_provider.hash(data).as_ref().to_vec()
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    sha256(cert).iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":")
}

const TAG_INTEGER: u8 = 0x02;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT Version`, present in every v2/v3 certificate.
const TAG_VERSION: u8 = 0xA0;

/// `notAfter` of a DER X.509 certificate (RFC 5280 §4.1), in Unix seconds.
///
/// A walk over the few DER elements in front of `validity`, rather than an X.509 crate: rustls/webpki parse the
/// validity but do not expose it, and `x509-parser` (with its nom/asn1-rs tree) is a lot of code for one field.
fn x509_not_after(cert: &[u8]) -> Option<i64> {
    let (certificate, _) = der_expect(cert, TAG_SEQUENCE)?;
    let (tbs_certificate, _) = der_expect(certificate, TAG_SEQUENCE)?;
    let mut fields = tbs_certificate;
    if fields.first() == Some(&TAG_VERSION) {
        fields = der_expect(fields, TAG_VERSION)?.1;
    }
    let (_serial_number, fields) = der_expect(fields, TAG_INTEGER)?;
    let (_signature_algorithm, fields) = der_expect(fields, TAG_SEQUENCE)?;
    let (_issuer, fields) = der_expect(fields, TAG_SEQUENCE)?;
    let (validity, _) = der_expect(fields, TAG_SEQUENCE)?;
    let (_not_before_tag, _not_before, rest) = der_element(validity)?;
    let (tag, not_after, _) = der_element(rest)?;
    der_time(tag, not_after)
}

/// One DER element: (tag, contents, what follows). Only single-byte tags, which is all the fields above use.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&length_byte, rest) = rest.split_first()?;
    let (length, rest) = if length_byte < 0x80 {
        (usize::from(length_byte), rest)
    } else {
        // Long form; 0x80 (indefinite length) is not DER, and more than 4 length bytes is not a certificate.
        let count = usize::from(length_byte & 0x7F);
        if !(1..=4).contains(&count) {
            return None;
        }
        let (length_bytes, rest) = rest.split_at_checked(count)?;
        (length_bytes.iter().fold(0, |length, &byte| length << 8 | usize::from(byte)), rest)
    };
    let (contents, rest) = rest.split_at_checked(length)?;
    Some((tag, contents, rest))
}

fn der_expect(input: &[u8], expected_tag: u8) -> Option<(&[u8], &[u8])> {
    let (tag, contents, rest) = der_element(input)?;
    (tag == expected_tag).then_some((contents, rest))
}

/// RFC 5280 §4.1.2.5: UTCTime `YYMMDDHHMMSSZ` (YY >= 50 means 19YY) or GeneralizedTime `YYYYMMDDHHMMSSZ`, always
/// UTC with seconds and no fraction.
fn der_time(tag: u8, contents: &[u8]) -> Option<i64> {
    let digits = contents.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = |digits: &[u8]| digits.iter().fold(0, |value, &digit| value * 10 + i32::from(digit - b'0'));
    let (year, rest) = match (tag, digits.len()) {
        (TAG_UTC_TIME, 12) => {
            let two_digit = number(&digits[..2]);
            (if two_digit >= 50 { 1900 + two_digit } else { 2000 + two_digit }, &digits[2..])
        }
        (TAG_GENERALIZED_TIME, 14) => (number(&digits[..4]), &digits[4..]),
        _ => return None,
    };
    let field = |index: usize| u8::try_from(number(&rest[index..index + 2])).ok();
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let time_of_day = time::Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(time::PrimitiveDateTime::new(date, time_of_day).assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::certs::{self, Bundle, CERT_FILE, KEY_FILE};
    use std::fs;
    use std::net::{IpAddr, Ipv4Addr};
    use std::os::unix::fs::symlink;

    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{mpsc, oneshot};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    /// Generous bound for events that arrive within milliseconds; reaching it fails the test instead of hanging.
    const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

    fn bundle(dns: &str) -> Bundle {
        certs::generate(&[dns.to_owned()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 30).expect("generate")
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
    }

    fn load(dir: &Path) -> Arc<CertStore> {
        CertStore::load(&dir.join(CERT_FILE), &dir.join(KEY_FILE)).expect("load")
    }

    #[derive(Debug)]
    struct Handshake {
        leaf: CertificateDer<'static>,
        alpn: Option<Vec<u8>>,
        version: ProtocolVersion,
    }

    /// One real TLS handshake over loopback: a tokio-rustls client trusting only `ca_pem`, connecting as `name`.
    async fn handshake(
        config: Arc<ServerConfig>,
        ca_pem: &str,
        name: &str,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Result<Handshake, io::Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            acceptor.accept(tcp).await.map(drop)
        });

        let mut roots = RootCertStore::empty();
        roots.add(der(ca_pem)).expect("CA");
        let mut client = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(address).await?;
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        let client_result = TlsConnector::from(Arc::new(client)).connect(name, tcp).await;
        let server_result = server.await.expect("server task");
        let tls = client_result?;
        server_result?;
        let (_, connection) = tls.get_ref();
        Ok(Handshake {
            leaf: connection.peer_certificates().expect("server certificate")[0].clone().into_owned(),
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
            version: connection.protocol_version().expect("negotiated"),
        })
    }

    async fn served(config: &Arc<ServerConfig>, bundle: &Bundle, name: &str) -> CertificateDer<'static> {
        handshake(Arc::clone(config), &bundle.ca_cert_pem, name, PROTOCOL_VERSIONS).await.expect("handshake").leaf
    }

    #[tokio::test]
    async fn serves_the_loaded_certificate_with_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = bundle("webhook.ns.svc");
        certs::write_bundle(dir.path(), &bundle).unwrap();
        let store = load(dir.path());
        let config = store.server_config();

        for name in ["webhook.ns.svc", "127.0.0.1"] {
            let handshake = handshake(Arc::clone(&config), &bundle.ca_cert_pem, name, PROTOCOL_VERSIONS).await;
            let handshake = handshake.unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(handshake.leaf, der(&bundle.cert_pem), "{name}");
            assert_eq!(handshake.alpn.as_deref(), Some(&b"h2"[..]), "{name}");
        }
        // The client checks the SAN: a name the certificate lacks fails, so the checks above are meaningful.
        assert!(handshake(config, &bundle.ca_cert_pem, "other.ns.svc", PROTOCOL_VERSIONS).await.is_err());
    }

    #[tokio::test]
    async fn negotiates_tls_1_2_and_1_3_only() {
        assert_eq!(
            PROTOCOL_VERSIONS.iter().map(|version| version.version).collect::<Vec<_>>(),
            [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2]
        );
        let dir = tempfile::tempdir().unwrap();
        let bundle = bundle("webhook.ns.svc");
        certs::write_bundle(dir.path(), &bundle).unwrap();
        let config = load(dir.path()).server_config();
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let handshake = handshake(Arc::clone(&config), &bundle.ca_cert_pem, "webhook.ns.svc", &[version]).await;
            assert_eq!(handshake.unwrap().version, version.version);
        }
    }

    /// A ClientHello with an ECDHE-ECDSA suite and the extensions it needs, for `client_version`: rustls's client
    /// cannot speak TLS 1.1, so the bytes are written by hand.
    fn raw_client_hello(client_version: [u8; 2]) -> Vec<u8> {
        let mut hello = Vec::new();
        hello.extend_from_slice(&client_version);
        hello.extend_from_slice(&[0x42; 32]); // random
        hello.push(0); // empty session id
        hello.extend_from_slice(&[0x00, 0x02, 0xC0, 0x2B]); // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        hello.extend_from_slice(&[0x01, 0x00]); // null compression
        let extensions: &[u8] = &[
            0x00, 0x0A, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1D, // supported_groups: x25519
            0x00, 0x0B, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
            0x00, 0x0D, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signature_algorithms: ecdsa_secp256r1_sha256
        ];
        hello.extend_from_slice(&u16::try_from(extensions.len()).unwrap().to_be_bytes());
        hello.extend_from_slice(extensions);

        let mut handshake = vec![0x01, 0x00]; // ClientHello, 24-bit length
        handshake.extend_from_slice(&u16::try_from(hello.len()).unwrap().to_be_bytes());
        handshake.extend(hello);
        let mut record = vec![0x16, 0x03, 0x01]; // handshake record
        record.extend_from_slice(&u16::try_from(handshake.len()).unwrap().to_be_bytes());
        record.extend(handshake);
        record
    }

    #[tokio::test]
    async fn refuses_a_tls_1_1_client_hello() {
        let dir = tempfile::tempdir().unwrap();
        certs::write_bundle(dir.path(), &bundle("webhook.ns.svc")).unwrap();
        let acceptor = TlsAcceptor::from(load(dir.path()).server_config());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move { acceptor.accept(tcp).await });
            }
        });

        // The same hello as TLS 1.2 is answered with a ServerHello: the refusal below is about the version alone.
        for (label, version, expected) in [
            ("TLS 1.2", [0x03, 0x03], [0x16, 0x02]), // handshake record, ServerHello
            ("TLS 1.1", [0x03, 0x02], [0x15, 0x02]), // alert record, fatal
            ("TLS 1.0", [0x03, 0x01], [0x15, 0x02]),
        ] {
            let mut tcp = TcpStream::connect(address).await.unwrap();
            tcp.write_all(&raw_client_hello(version)).await.unwrap();
            let mut reply = [0; 7];
            tokio::time::timeout(EVENT_TIMEOUT, tcp.read_exact(&mut reply)).await.expect(label).expect(label);
            assert_eq!([reply[0], reply[5]], expected, "{label}: {reply:02X?}");
            if expected[0] == 0x15 {
                assert_eq!(reply[6], 70, "{label}: alert protocol_version");
            }
        }
    }

    /// A CA for client certificates, and client certificates it signs (ECDSA P-256, extended key usage clientAuth).
    struct ClientAuthority {
        pem: String,
        issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    }

    impl ClientAuthority {
        fn new(name: &str) -> Self {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
            params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
            let key = rcgen::KeyPair::generate().unwrap();
            let pem = params.self_signed(&key).unwrap().pem();
            Self { pem, issuer: rcgen::Issuer::new(params, key) }
        }

        /// A client certificate chain and key signed by this CA.
        fn client(&self, name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
            (vec![cert.der().clone()], key)
        }
    }

    /// One handshake with a client presenting `identity` (or none); both sides must succeed. With TLS 1.3 the
    /// client finishes first and learns of a refusal only from the server's alert, so the server's result counts.
    async fn client_auth_handshake(
        config: Arc<ServerConfig>,
        server: &Bundle,
        identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
        version: &'static SupportedProtocolVersion,
    ) -> Result<(), String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(config);
        let accepted = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await?;
            tls.write_all(b"ok").await?;
            tls.shutdown().await
        });
        let mut roots = RootCertStore::empty();
        roots.add(der(&server.ca_cert_pem)).unwrap();
        let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots);
        let client = match identity {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
            None => builder.with_no_client_auth(),
        };
        let tcp = TcpStream::connect(address).await.unwrap();
        let name = ServerName::try_from("webhook.ns.svc").unwrap();
        let client_side = async {
            let mut tls = TlsConnector::from(Arc::new(client)).connect(name, tcp).await?;
            let mut reply = Vec::new();
            tls.read_to_end(&mut reply).await?;
            Ok::<_, io::Error>(reply)
        };
        let client_side = tokio::time::timeout(EVENT_TIMEOUT, client_side).await.expect("client bounded");
        let server_side = tokio::time::timeout(EVENT_TIMEOUT, accepted).await.expect("server bounded").unwrap();
        server_side.map_err(|e| format!("server: {e}"))?;
        let reply = client_side.map_err(|e| format!("client: {e}"))?;
        if reply == b"ok" { Ok(()) } else { Err(format!("reply {reply:?}")) }
    }

    #[tokio::test]
    async fn a_client_ca_admits_only_its_clients_and_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let server = bundle("webhook.ns.svc");
        certs::write_bundle(dir.path(), &server).unwrap();
        let (first, second) = (ClientAuthority::new("first client CA"), ClientAuthority::new("second client CA"));
        let ca_file = dir.path().join("client-ca.crt");
        fs::write(&ca_file, &first.pem).unwrap();
        let client_ca = ClientCa::load(&ca_file).unwrap();
        let config = load(dir.path()).server_config_with(Some(&client_ca));

        for version in PROTOCOL_VERSIONS {
            let label = format!("{:?}", version.version);
            let ok = |identity| client_auth_handshake(Arc::clone(&config), &server, identity, version);
            ok(Some(first.client("kube-apiserver")))
                .await
                .unwrap_or_else(|e| panic!("{label}, first CA's client: {e}"));
            let refused = ok(None).await.expect_err("no client certificate");
            assert!(refused.contains("server:"), "{label}: refused by the server: {refused}");
            ok(Some(second.client("kube-apiserver"))).await.expect_err("a certificate from another CA");
        }

        // Rotation: the second CA replaces the first for new handshakes.
        fs::write(&ca_file, &second.pem).unwrap();
        assert!(client_ca.reload().unwrap());
        assert!(!client_ca.reload().unwrap(), "unchanged");
        let handshake =
            |identity| client_auth_handshake(Arc::clone(&config), &server, identity, &rustls::version::TLS13);
        handshake(Some(second.client("kube-apiserver"))).await.expect("the new CA's client");
        handshake(Some(first.client("kube-apiserver"))).await.expect_err("the old CA's client");

        // A broken file keeps the second CA; both CAs in one file (a rotation's overlap) admit both.
        for (label, content, kind) in [
            ("garbage", "garbage".to_owned(), "client_ca"),
            ("not X.509", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned(), "client_ca"),
        ] {
            fs::write(&ca_file, content).unwrap();
            assert_eq!(client_ca.reload().expect_err(label).kind(), kind, "{label}");
            handshake(Some(second.client("kube-apiserver"))).await.unwrap_or_else(|e| panic!("{label}: {e}"));
        }
        fs::remove_file(&ca_file).unwrap();
        assert_eq!(client_ca.reload().unwrap_err().kind(), "read");
        fs::write(&ca_file, format!("{}{}", first.pem, second.pem)).unwrap();
        assert!(client_ca.reload().unwrap());
        handshake(Some(first.client("a"))).await.expect("first CA during the overlap");
        handshake(Some(second.client("b"))).await.expect("second CA during the overlap");
        assert!(ClientCa::load(&dir.path().join("tls.key")).is_err(), "a key is no CA");
    }

    #[tokio::test]
    async fn reload_rotates_the_certificate_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let first = bundle("first.example");
        certs::write_bundle(dir.path(), &first).unwrap();
        let store = load(dir.path());
        let config = store.server_config();
        let first_fingerprint = store.fingerprint();
        assert_eq!(served(&config, &first, "first.example").await, der(&first.cert_pem));
        assert!(!store.reload().unwrap(), "unchanged files are not reloaded");

        let second = bundle("second.example");
        certs::write_bundle(dir.path(), &second).unwrap();
        assert!(store.reload().unwrap());
        assert!(!store.reload().unwrap(), "a second reload sees no change");

        // The config built before the rotation serves the new certificate: no restart, no new listener.
        assert_eq!(served(&config, &second, "second.example").await, der(&second.cert_pem));
        assert!(handshake(config, &first.ca_cert_pem, "first.example", PROTOCOL_VERSIONS).await.is_err());
        assert_ne!(store.fingerprint(), first_fingerprint);
    }

    fn write(dir: &Path, name: &str, contents: &str) {
        fs::write(dir.join(name), contents).unwrap();
    }

    #[tokio::test]
    async fn a_broken_pair_keeps_the_old_certificate() {
        type Break = fn(&Path, &Bundle);
        let cases: [(&str, Break, &str); 9] = [
            ("garbage certificate", |dir, _| write(dir, CERT_FILE, "garbage"), "no_certificate"),
            ("empty certificate", |dir, _| write(dir, CERT_FILE, ""), "no_certificate"),
            (
                "broken certificate PEM",
                |dir, _| write(dir, CERT_FILE, "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
                "invalid_certificate_pem",
            ),
            (
                "PEM that is not X.509",
                |dir, _| write(dir, CERT_FILE, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
                "rustls",
            ),
            ("certificate removed", |dir, _| fs::remove_file(dir.join(CERT_FILE)).unwrap(), "read"),
            ("garbage key", |dir, _| write(dir, KEY_FILE, "garbage"), "private_key"),
            (
                "unsupported key",
                |dir, _| write(dir, KEY_FILE, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
                "private_key",
            ),
            ("key of another certificate", |dir, other| write(dir, KEY_FILE, &other.key_pem), "key_mismatch"),
            ("certificate of another key", |dir, other| write(dir, CERT_FILE, &other.cert_pem), "key_mismatch"),
        ];
        let original = bundle("original.example");
        let other = bundle("other.example");
        for (label, break_files, expected_kind) in cases {
            let dir = tempfile::tempdir().unwrap();
            certs::write_bundle(dir.path(), &original).unwrap();
            let store = load(dir.path());
            let config = store.server_config();

            break_files(dir.path(), &other);
            let err = store.reload().expect_err(label);
            assert_eq!(err.kind(), expected_kind, "{label}: {err}");
            assert!(store.reload().is_err(), "{label}: still broken, still reported");
            assert_eq!(served(&config, &original, "original.example").await, der(&original.cert_pem), "{label}");

            // Restored files equal what is served, so nothing is swapped: the failed attempt was not recorded.
            certs::write_bundle(dir.path(), &original).unwrap();
            assert!(!store.reload().expect(label), "{label}");
        }
    }

    #[test]
    fn error_messages_name_files_not_key_material() {
        let dir = tempfile::tempdir().unwrap();
        let original = bundle("original.example");
        certs::write_bundle(dir.path(), &original).unwrap();
        let store = load(dir.path());
        // A key PEM with a corrupted body: its bytes must not end up in the error.
        let corrupted = original.key_pem.replacen("\n", "\n!", 1);
        write(dir.path(), KEY_FILE, &corrupted);
        let err = store.reload().unwrap_err();
        let message = format!("{err} {err:?}");
        assert!(message.contains(KEY_FILE), "{message}");
        let body_line = original.key_pem.lines().nth(1).unwrap();
        assert!(!message.contains(&body_line[..16]), "{message}");
        assert!(!format!("{store:?}").contains("PRIVATE"));
    }

    #[test]
    fn reports_the_expiry_of_the_served_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let before = time::OffsetDateTime::now_utc().unix_timestamp();
        certs::write_bundle(dir.path(), &bundle("a.example")).unwrap();
        let after = time::OffsetDateTime::now_utc().unix_timestamp();
        let not_after = load(dir.path()).not_after_unix().expect("notAfter");
        const THIRTY_DAYS: i64 = 30 * 86_400;
        assert!((before + THIRTY_DAYS - 1..=after + THIRTY_DAYS + 1).contains(&not_after), "{not_after}");
    }

    #[test]
    fn reads_not_after_in_both_time_encodings() {
        // rcgen writes UTCTime for 1950..2050 and GeneralizedTime otherwise, as RFC 5280 requires.
        let cases = [
            ("UTCTime", 1_893_456_000),                        // 2030-01-01T00:00:00Z
            ("UTCTime, leap day", 1_709_210_096),              // 2024-02-29T12:34:56Z
            ("UTCTime, last second", 2_524_607_999),           // 2049-12-31T23:59:59Z
            ("UTCTime, first year 1950", -631_152_000),        // 1950-01-01T00:00:00Z
            ("GeneralizedTime, 2050", 2_524_608_000),          // 2050-01-01T00:00:00Z
            ("GeneralizedTime, end of time", 253_402_300_799), // 9999-12-31T23:59:59Z
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        for (label, unix) in cases {
            let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
            params.not_before = time::OffsetDateTime::from_unix_timestamp(unix - 86_400).unwrap();
            params.not_after = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
            let cert = params.self_signed(&key).unwrap();
            assert_eq!(x509_not_after(cert.der()), Some(unix), "{label}");
        }
    }

    #[test]
    fn rejects_malformed_times_and_der() {
        for (label, tag, contents) in [
            ("no Z", TAG_UTC_TIME, &b"300101000000"[..]),
            ("offset instead of Z", TAG_UTC_TIME, b"300101000000+0100"),
            ("UTCTime without seconds", TAG_UTC_TIME, b"3001010000Z"),
            ("GeneralizedTime with a fraction", TAG_GENERALIZED_TIME, b"20500101000000.5Z"),
            ("UTCTime length under the GeneralizedTime tag", TAG_GENERALIZED_TIME, b"300101000000Z"),
            ("month 13", TAG_UTC_TIME, b"301301000000Z"),
            ("February 30", TAG_UTC_TIME, b"300230000000Z"),
            ("hour 24", TAG_UTC_TIME, b"300101240000Z"),
            ("not digits", TAG_UTC_TIME, b"30o101000000Z"),
            ("wrong tag", TAG_INTEGER, b"300101000000Z"),
        ] {
            assert_eq!(der_time(tag, contents), None, "{label}");
        }
        assert_eq!(der_time(TAG_UTC_TIME, b"491231235959Z"), Some(2_524_607_999), "control");

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap().self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        assert!(x509_not_after(&der).is_some(), "control");
        for (label, input) in [
            ("empty", Vec::new()),
            ("truncated", der[..der.len() / 2].to_vec()),
            ("not a SEQUENCE", [&[0x31], &der[1..]].concat()),
            ("indefinite length", [&[0x30, 0x80], &der[2..]].concat()),
        ] {
            assert_eq!(x509_not_after(&input), None, "{label}");
        }
    }

    /// Lays out `dir` like a mounted Secret: `tls.crt -> ..data/tls.crt`, `..data -> ..<generation>/`.
    fn kubernetes_secret_volume(dir: &Path, generation: &str, bundle: &Bundle) {
        certs::write_bundle(&dir.join(generation), bundle).unwrap();
        symlink(generation, dir.join("..data")).unwrap();
        for file in [CERT_FILE, KEY_FILE] {
            symlink(Path::new("..data").join(file), dir.join(file)).unwrap();
        }
    }

    /// Points `..data` at `generation` the way the kubelet does: a new symlink renamed over the old one.
    fn swap_data(dir: &Path, generation: &str) {
        symlink(generation, dir.join("..data_tmp")).unwrap();
        fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    }

    type WatchEvent = Result<bool, &'static str>;

    /// The next event that is not a repeat of `previous` (a broken pair is reported at every poll).
    async fn next_event(events: &mut mpsc::UnboundedReceiver<WatchEvent>, previous: Option<WatchEvent>) -> WatchEvent {
        let next = async {
            loop {
                let event = events.recv().await.expect("watch is running");
                if Some(event) != previous {
                    return event;
                }
            }
        };
        tokio::time::timeout(EVENT_TIMEOUT, next).await.expect("event")
    }

    #[tokio::test]
    async fn watch_follows_a_kubernetes_secret_symlink_swap() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let first = bundle("first.example");
        kubernetes_secret_volume(dir, "..2026_a", &first);
        let store = load(dir);
        let config = store.server_config();

        let (events_tx, mut events) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let watcher = tokio::spawn(Arc::clone(&store).watch(
            Duration::from_millis(10),
            async {
                let _ = stopped.await;
            },
            move |result| {
                let _ = events_tx.send(result.as_ref().map(|swapped| *swapped).map_err(TlsError::kind));
            },
        ));

        let second = bundle("second.example");
        certs::write_bundle(&dir.join("..2026_b"), &second).unwrap();
        swap_data(dir, "..2026_b");
        assert_eq!(next_event(&mut events, None).await, Ok(true));
        assert_eq!(served(&config, &second, "second.example").await, der(&second.cert_pem));

        // A generation with a garbage certificate: reported, and the second certificate keeps serving.
        certs::write_bundle(&dir.join("..2026_c"), &second).unwrap();
        write(&dir.join("..2026_c"), CERT_FILE, "garbage");
        swap_data(dir, "..2026_c");
        assert_eq!(next_event(&mut events, None).await, Err("no_certificate"));
        assert_eq!(served(&config, &second, "second.example").await, der(&second.cert_pem));

        // The files disappear altogether: reported, still serving.
        fs::remove_file(dir.join("..data")).unwrap();
        assert_eq!(next_event(&mut events, Some(Err("no_certificate"))).await, Err("read"));
        assert_eq!(served(&config, &second, "second.example").await, der(&second.cert_pem));

        stop.send(()).unwrap();
        tokio::time::timeout(EVENT_TIMEOUT, watcher).await.expect("watch stops on shutdown").unwrap();
    }
}
