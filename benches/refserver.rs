//! The reference server: the least work an HTTPS admission webhook can do, to put the webhook's figures in
//! proportion. The same TLS stack and settings as `serve` (rustls with ring, TLS 1.2 and 1.3, ALPN h2 then
//! http/1.1, hyper's HTTP/1.1 + HTTP/2 server on a multi-threaded tokio runtime), a body parsed as JSON and thrown
//! away, and one fixed AdmissionReview as the answer. No routing, no limits, no metrics, no logging, no decision.
//!
//! `refserver --listen ADDR --admin-listen ADDR --tls-cert FILE --tls-key FILE` serves until killed; `/readyz`
//! answers 200 on the admin address as soon as it listens. Without `--listen` (as `cargo test --benches` runs
//! it) it starts on an ephemeral port, answers one request over TLS, and exits.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

/// The one answer: allowed, no patch (what a webhook with nothing to add says).
const RESPONSE: &[u8] = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"00000000-0000-0000-0000-000000000000","allowed":true}}"#;

struct Args {
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    cert: Option<String>,
    key: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args { listen: None, admin_listen: None, cert: None, key: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = Some(value().parse().expect("--listen ADDR")),
            "--admin-listen" => args.admin_listen = Some(value().parse().expect("--admin-listen ADDR")),
            "--tls-cert" => args.cert = Some(value()),
            "--tls-key" => args.key = Some(value()),
            // Flags cargo passes to bench and test binaries.
            _ if flag.starts_with("--") => {}
            _ => {}
        }
    }
    args
}

fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem).expect("private key PEM");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    if body.is_empty() {
        // GET /readyz on the admin port.
        return Ok(Response::new(Full::new(Bytes::from_static(b"ok\n"))));
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return Ok(status(StatusCode::BAD_REQUEST));
    }
    let mut response = Response::new(Full::new(Bytes::from_static(RESPONSE)));
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("static"));
    Ok(response)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

async fn serve_tls(listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), hyper::service::service_fn(answer))
                .await;
        });
    }
}

async fn serve_plain(listener: TcpListener) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(answer))
                .await;
        });
    }
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match (args.listen, args.cert, args.key) {
        (Some(listen), Some(cert), Some(key)) => runtime.block_on(async move {
            let tls = tls_config(&std::fs::read(&cert).expect("--tls-cert"), &std::fs::read(&key).expect("--tls-key"));
            let listener = TcpListener::bind(listen).await.expect("--listen");
            if let Some(admin) = args.admin_listen {
                tokio::spawn(serve_plain(TcpListener::bind(admin).await.expect("--admin-listen")));
            }
            serve_tls(listener, tls).await;
        }),
        _ => runtime.block_on(self_check()),
    }
}

/// One request over TLS on an ephemeral port, so that `cargo test --benches` proves the server works.
async fn self_check() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bundle =
        pullsecret_injector::serve::certs::generate(&[], &["127.0.0.1".parse().unwrap()], 1).expect("certificate");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(serve_tls(listener, tls_config(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes())));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(bundle.ca_cert_pem.as_bytes()).expect("CA")).expect("CA");
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .expect("handshake");
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
    let head =
        format!("POST /mutate HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(body).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with(std::str::from_utf8(RESPONSE).unwrap()), "{text}");
    println!("refserver self-check: ok");
}
