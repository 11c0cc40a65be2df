//! The HTTP exporter: binds loopback by default, serves `/metrics` with every family described,
//! and keeps serving while a client connects and never reads.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use warden::observe;

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get_metrics(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Local addresses of listening TCP sockets on `port`, from /proc/net/tcp (hex, little endian).
fn listening_addresses(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields.get(1)?, fields.get(3)?);
            let (ip, p) = local.split_once(':')?;
            (u16::from_str_radix(p, 16).ok()? == port && *state == "0A").then(|| ip.to_string())
        })
        .collect()
}

#[test]
fn default_address_is_loopback() {
    assert!(observe::DEFAULT_METRICS_ADDR.ip().is_loopback());
    assert_eq!(observe::DEFAULT_METRICS_ADDR.port(), 9464);
}

#[actix::test]
async fn serves_metrics_on_loopback_and_survives_a_client_that_never_reads() {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    observe::serve_metrics(addr).expect("exporter starts");
    // Bound to 127.0.0.1 only (0100007F in /proc/net/tcp), never to every interface.
    if std::path::Path::new("/proc/net/tcp").exists() {
        assert_eq!(listening_addresses(port), ["0100007F"]);
    }

    let svc = start("exported", plain_config());
    succeed(&svc).await.unwrap();
    svc.counts().await.unwrap();

    // A client that connects, sends half a request and never reads.
    let mut stuck = TcpStream::connect(addr).unwrap();
    stuck.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    // Another that asks for everything and never reads the answer.
    let mut greedy = TcpStream::connect(addr).unwrap();
    greedy
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();

    let body = tokio::task::spawn_blocking(move || get_metrics(addr))
        .await
        .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("warden_calls_total{service=\"exported\",outcome=\"success\"} 1"),
        "{body}"
    );
    // Every family a plain service has (a transition, a keyed or fleet service and the per-key series
    // rendered by warden come later, or elsewhere: see `metrics_export.rs`).
    for (name, _) in observe::METRIC_FAMILIES {
        if name != observe::CIRCUIT_TRANSITIONS_TOTAL
            && !name.starts_with("warden_keyed_")
            && !name.starts_with("warden_fleet_")
            && !observe::RENDERED_FAMILIES.contains(&name)
        {
            assert!(
                body.contains(&format!("# HELP {name} ")),
                "{name} not described"
            );
        }
    }
    drop((stuck, greedy));
}
