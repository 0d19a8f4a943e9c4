//! A fake kube-apiserver behind the real kube-rs `Client`: the client's transport is a `tower_test` mock, and every
//! request it sends is handed, body collected, to the test's handler with the means to answer it as the API server
//! does (JSON objects, `Status` failures, lists, streaming watches of newline-delimited WatchEvents). What the fake
//! knows and decides (its objects, its routes, what it checks) is the test's.

use std::collections::BTreeMap;
use std::io;

use futures::channel::mpsc;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tower_test::mock;

pub type ResponseBody = UnsyncBoxBody<Bytes, io::Error>;
pub type Responder = mock::SendResponse<Response<ResponseBody>>;
/// A request's query parameters, decoded.
pub type Query = BTreeMap<String, String>;
type WatchFrame = Result<Frame<Bytes>, io::Error>;

/// A kube-rs `Client` whose requests `handler` answers (through the [`Responder`], now or later), and the task that
/// hands them over; the task ends when every clone of the client is dropped.
pub fn client(mut handler: impl FnMut(Request<Bytes>, Responder) + Send + 'static) -> (kube::Client, JoinHandle<()>) {
    let (service, handle) = mock::pair::<Request<kube::client::Body>, Response<ResponseBody>>();
    let task = tokio::spawn(async move {
        let mut handle = std::pin::pin!(handle);
        while let Some((request, respond)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            handler(Request::from_parts(parts, bytes), respond);
        }
    });
    (kube::Client::new(service, "default"), task)
}

/// A complete body.
pub fn full(body: impl Into<Bytes>) -> ResponseBody {
    Full::new(body.into()).map_err(|never| match never {}).boxed_unsync()
}

/// `object` as JSON with `status`.
pub fn json_response(status: StatusCode, object: &Value) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(object.to_string()))
        .expect("a valid response")
}

/// The `Status` object of a failure, as the API server words it.
pub fn failure(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

/// The body of an open watch: what the test sends on it reaches the client as the API server's stream would.
pub struct Watch(mpsc::UnboundedSender<WatchFrame>);

impl Watch {
    /// A watch answer (200, a streaming body) and its sending end.
    pub fn open() -> (Watch, Response<ResponseBody>) {
        let (sender, body) = mpsc::unbounded::<WatchFrame>();
        let response = Response::builder()
            .header("content-type", "application/json")
            .body(StreamBody::new(body).boxed_unsync())
            .expect("a valid response");
        (Watch(sender), response)
    }

    /// One line of the stream.
    pub fn send_line(&self, line: String) {
        self.0.unbounded_send(Ok(Frame::data(Bytes::from(line + "\n")))).expect("the client reads the watch");
    }

    /// One WatchEvent (`ADDED`, `MODIFIED`, `DELETED`, `ERROR`).
    pub fn send(&self, event_type: &str, object: &Value) {
        self.send_line(json!({"type": event_type, "object": object}).to_string());
    }

    /// Breaks the stream mid-way (a connection reset).
    pub fn break_stream(self) {
        let _ = self.0.unbounded_send(Err(io::Error::from(io::ErrorKind::ConnectionReset)));
    }
}

/// A request's query, decoded (`application/x-www-form-urlencoded`, what kube's query serializer writes).
pub fn parse_query(query: &str) -> Query {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII");
                out.push(u8::from_str_radix(hex, 16).expect("a percent escape"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8")
}
