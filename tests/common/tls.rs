//! The webhook's real TLS accept loop (`http::serve_https`) on 127.0.0.1:0, in process, and its clients: reqwest (an
//! ordinary HTTPS client trusting only the test CAs) and a minimal HTTP/1.1 client over tokio-rustls for tests that
//! must own the bytes and the connection.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use pullsecret_injector::serve::certs::{self, Bundle};
use pullsecret_injector::serve::config::Limits;
use pullsecret_injector::serve::connections::Shutdown;
use pullsecret_injector::serve::http;
use pullsecret_injector::serve::tls::CertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

/// The DNS name of the test servers' certificates.
pub const SERVER_NAME: &str = "webhook.test";

/// A CA and a serving certificate it signed for `dns` and 127.0.0.1.
pub fn bundle(dns: &str) -> Bundle {
    certs::generate(&[dns.to_owned()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1).expect("a test certificate")
}

/// The leaf certificate of `bundle`, DER.
pub fn leaf(bundle: &Bundle) -> Vec<u8> {
    CertificateDer::from_pem_slice(bundle.cert_pem.as_bytes()).unwrap().to_vec()
}

/// `serve_https` on 127.0.0.1:0 with a certificate store over files in a temporary directory; stopped when dropped.
pub struct TlsServer {
    pub addr: SocketAddr,
    pub certs: Arc<CertStore>,
    /// The certificate it was started with.
    pub bundle: Bundle,
    dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
    /// The accept loop; taken by tests that wait for it to return.
    pub task: Option<JoinHandle<()>>,
}

impl TlsServer {
    /// Serves `app` (the webhook router or a stand-in) with `bundle`'s certificate; `drain` bounds the shutdown.
    pub async fn start(bundle: &Bundle, app: Router, limits: Limits, drain: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        certs::write_bundle(dir.path(), bundle).unwrap();
        let certs =
            CertStore::load(&dir.path().join(certs::CERT_FILE), &dir.path().join(certs::KEY_FILE)).expect("load");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, shutdown) = Shutdown::new();
        let task = tokio::spawn(http::serve_https(listener, certs.server_config(), app, limits, shutdown, drain));
        Self { addr, certs, bundle: bundle.clone(), dir, stop, task: Some(task) }
    }

    /// Writes `bundle` over the served files, as a rotated Secret would, and reloads.
    pub fn rotate(&self, bundle: &Bundle) {
        certs::write_bundle(self.dir.path(), bundle).unwrap();
        assert!(self.certs.reload().expect("the new pair is valid"), "a changed pair is swapped in");
    }

    pub fn url(&self) -> String {
        format!("https://{}/mutate", self.addr)
    }

    /// Starts the graceful shutdown.
    pub fn shutdown(&self) {
        self.stop.send(true).unwrap();
    }

    /// Whether the accept loop still runs.
    pub fn is_serving(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }

    /// reqwest trusting only the CA of the certificate it was started with, reusing connections.
    pub fn client(&self) -> reqwest::Client {
        https_client(&[&self.bundle], Connections::Reused)
    }

    /// A TLS connection as [`SERVER_NAME`], trusting only the CA of the certificate it was started with.
    pub async fn connect(&self) -> io::Result<TlsStream<TcpStream>> {
        tls_connect(self.addr, &[&self.bundle], SERVER_NAME, &[]).await
    }

    /// [`TlsServer::connect`], for HTTP/1.1 requests written by hand.
    pub async fn conn(&self) -> io::Result<Conn> {
        Ok(Conn::over(self.connect().await?))
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A rustls client configuration trusting only the CAs of `trusted`.
pub fn client_config(trusted: &[&Bundle]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for bundle in trusted {
        roots.add(CertificateDer::from_pem_slice(bundle.ca_cert_pem.as_bytes()).unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection to `addr` for `server_name`, trusting `trusted`, offering `alpn` (none: no ALPN).
pub async fn tls_connect(
    addr: SocketAddr,
    trusted: &[&Bundle],
    server_name: &str,
    alpn: &[&[u8]],
) -> io::Result<TlsStream<TcpStream>> {
    let mut config = Arc::unwrap_or_clone(client_config(trusted));
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned()).expect("a valid server name");
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await
}

/// How a reqwest client connects.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// Kept alive and reused (reqwest's default).
    Reused,
    /// A new connection per request, resuming the TLS session when the server allows (as most clients do).
    New,
    /// A new connection and a full TLS handshake per request: the server's current certificate every time.
    FullHandshake,
}

/// reqwest trusting only the given CAs, never through a proxy, each request bounded by [`super::WAIT`].
pub fn https_client(trusted: &[&Bundle], connections: Connections) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().tls_info(true).no_proxy().timeout(super::WAIT);
    if connections == Connections::FullHandshake {
        let mut config = Arc::unwrap_or_clone(client_config(trusted));
        config.resumption = rustls::client::Resumption::disabled();
        builder = builder.use_preconfigured_tls(config);
    } else {
        builder = builder.use_rustls_tls().tls_built_in_root_certs(false);
        for bundle in trusted {
            let ca = reqwest::Certificate::from_pem(bundle.ca_cert_pem.as_bytes()).unwrap();
            builder = builder.add_root_certificate(ca);
        }
    }
    if connections != Connections::Reused {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder.build().unwrap()
}

/// POSTs `body` to `url` with reqwest; returns the status, the body and the leaf certificate the server presented.
pub async fn post_reqwest(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
) -> reqwest::Result<(u16, Vec<u8>, Vec<u8>)> {
    let response = client.post(url).header("content-type", "application/json").body(body.to_vec()).send().await?;
    let leaf = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("TLS info with the peer certificate")
        .to_vec();
    let status = response.status().as_u16();
    Ok((status, response.bytes().await?.to_vec(), leaf))
}

/// The head of a `POST /mutate` with a JSON body of `content_length` bytes.
pub fn request_head(content_length: usize) -> String {
    format!(
        "POST /mutate HTTP/1.1\r\nHost: {SERVER_NAME}\r\nContent-Type: application/json\r\nContent-Length: \
         {content_length}\r\n\r\n"
    )
}

/// One HTTP/1.1 response, as read by hand.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 response: `UnexpectedEof` when the connection ends before a status line, `InvalidData` when
/// what comes is not one.
pub async fn read_response(io: &mut (impl AsyncBufRead + Unpin)) -> io::Result<Response> {
    let mut line = String::new();
    if io.read_line(&mut line).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status =
        line.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok()).ok_or_else(
            || io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP/1.1 status line: {line:?}")),
        )?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        io.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| io::Error::other("bad header line"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut response = Response { status, headers, body: Vec::new() };
    match response.header("content-length") {
        Some(length) => {
            response.body.resize(length.parse().map_err(io::Error::other)?, 0);
            io.read_exact(&mut response.body).await?;
        }
        None => {
            assert!(response.header("transfer-encoding").is_none(), "chunked responses are not expected");
            io.read_to_end(&mut response.body).await?;
        }
    }
    Ok(response)
}

/// One HTTP/1.1 connection over TLS, written by hand so that a test controls every byte and knows which
/// connection a request travels on.
pub struct Conn {
    pub io: BufReader<TlsStream<TcpStream>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr, trusted: &[&Bundle], server_name: &str) -> io::Result<Self> {
        Ok(Self::over(tls_connect(addr, trusted, server_name, &[]).await?))
    }

    /// A connection made elsewhere (another client identity, another protocol version).
    pub fn over(tls: TlsStream<TcpStream>) -> Self {
        Self { io: BufReader::new(tls) }
    }

    /// The leaf certificate the server presented on this connection.
    pub fn peer_leaf(&self) -> Vec<u8> {
        self.io.get_ref().get_ref().1.peer_certificates().expect("a server certificate")[0].to_vec()
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    pub async fn post(&mut self, body: &[u8]) -> io::Result<Response> {
        let mut request = request_head(body.len()).into_bytes();
        request.extend_from_slice(body);
        self.send(&request).await?;
        self.read_response().await
    }

    pub async fn read_response(&mut self) -> io::Result<Response> {
        read_response(&mut self.io).await
    }

    /// Waits until the server closes the connection (EOF or a reset), ignoring anything it sends first.
    pub async fn closed(self) {
        until_closed(self.io).await;
    }
}

/// Reads until the server closes the connection (EOF or an error), ignoring what it sends first.
pub async fn until_closed(mut stream: impl tokio::io::AsyncRead + Unpin) {
    let mut buf = [0; 512];
    while let Ok(1..) = stream.read(&mut buf).await {}
}
