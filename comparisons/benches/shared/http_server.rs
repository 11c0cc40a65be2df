//! The loopback HTTP server the benches that send real requests share (`placement`'s `http`,
//! `reqwest_middleware`).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Starts a hyper 1 HTTP/1.1 server answering `ok` to every request, on 127.0.0.1 (a free
/// port), on its own thread and current-thread runtime; it lives until the process ends.
pub fn start_http_server() -> SocketAddr {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;

    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("http-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .expect("bind 127.0.0.1");
                sender
                    .send(listener.local_addr().expect("bound address"))
                    .expect("the bench waits for the address");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(|_request| async {
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        });
                        // A client that goes away ends its connection: not an error here.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        })
        .expect("server thread");
    receiver.recv().expect("server address")
}
