//! [`router`]: the page, its JSON, readiness and Prometheus text as an axum `Router`.

use axum::extract::State;
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::collector::StatusPage;
use super::html::render_html;

/// The page's routes, all `GET` and read-only:
///
/// - `/status`: the HTML page (server-rendered, refreshed by its embedded script);
/// - `/status.json`: [`StatusView`](super::StatusView);
/// - `/health`: [`Readiness`](super::Readiness), HTTP 200 when ready, 503 when not
///   (Kubernetes readiness);
/// - `/metrics`: Prometheus text, when the page has [metrics](StatusPage::metrics)
///   (404 otherwise), with the per-key series of the keyed services.
///
/// Merge it into your own router (`app.merge(router(page))`) or serve it alone. It exposes no
/// control action; put it behind your own authentication before exposing it beyond loopback.
pub fn router(page: StatusPage) -> Router {
    Router::new()
        .route("/status", get(status_html))
        .route("/status.json", get(status_json))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(page)
}

/// The registry stopped: nothing to report.
fn gone() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the registry is not running\n",
    )
        .into_response()
}

/// Headers every answer carries: never cached, and the page may load nothing from elsewhere.
fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ),
    );
    response
}

async fn status_html(State(page): State<StatusPage>) -> Response {
    harden(match page.view().await {
        Ok(view) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            render_html(&view),
        )
            .into_response(),
        Err(_) => gone(),
    })
}

async fn status_json(State(page): State<StatusPage>) -> Response {
    harden(match page.view().await {
        Ok(view) => Json(view).into_response(),
        Err(_) => gone(),
    })
}

async fn health(State(page): State<StatusPage>) -> Response {
    harden(match page.readiness().await {
        Ok(readiness) => {
            let code = if readiness.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (code, Json(readiness)).into_response()
        }
        Err(_) => gone(),
    })
}

async fn metrics(State(page): State<StatusPage>) -> Response {
    harden(match page.metrics_handle() {
        Some(metrics) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            // The recorder's series, then the per-key series of the keyed services (rendered
            // by warden, so an evicted key's series go with it).
            metrics.render() + &page.key_series().await.unwrap_or_default(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no prometheus recorder\n").into_response(),
    })
}
