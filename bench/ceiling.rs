//! The ceiling of `bench/run.sh`: a bare hyper server on this machine that
//! answers every request with a fixed JSON body of the size of `GET
//! config`'s, on a multi-threaded tokio runtime like the server's. What
//! allauth-server achieves is reported as a share of this.
//!
//!     cargo run --release --example ceiling -- 127.0.0.1:8790

#![allow(clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// The fixed answer, shared with the other reference (`bench/fixed_body.json`).
const BODY: &str = include_str!("fixed_body.json");

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8790".to_string())
        .parse()
        .expect("an address such as 127.0.0.1:8790");
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("ceiling listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
                let mut response = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().expect("header"));
                Ok::<_, Infallible>(response)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
