//! Where each request goes: a WebSocket handshake to its route, an HTTP request to the app's
//! route for its method and path, then (no route) the server's own stats and probes, the
//! app's served folders, and 404. An app's route wins over the server's own paths.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;

use super::Site;
use super::app::{self, closing};
use super::routing::{HttpMatch, Matched};
use crate::admission::Admitted;
use crate::ops::{probes, stats};
use crate::ws::handshake;

/// The answer to a request from `remote`, on a socket holding `admitted`'s place among
/// `--max-connections`.
pub async fn serve(site: &Site, request: Request, remote: SocketAddr, admitted: Option<Arc<Admitted>>) -> Response {
    if let Some(refusal) = ambiguous_body(&request) {
        return refusal;
    }
    let path = request.uri().path();
    let websocket = site.websocket_routes.lookup(path);
    let upgrade = asks_for_websocket(&request);
    if let Some(matched) = websocket.as_ref().filter(|_| upgrade) {
        return handshake(site, matched, request, remote, admitted).await;
    }
    let matched = match site.app.routes.lookup(request.method(), path) {
        HttpMatch::Route(matched) => matched,
        HttpMatch::UnknownMethod => {
            return site.app.finish(path, plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"));
        }
        HttpMatch::NoRoute => {
            // A plain request for a WebSocket route is told how to connect (426).
            if let Some(matched) = &websocket {
                return handshake(site, matched, request, remote, admitted).await;
            }
            if upgrade {
                return handshake::no_route(&site.server);
            }
            return without_route(site, request, remote).await;
        }
    };
    let path = path.to_owned();
    let response = app::call(site, Some(matched), request, remote).await;
    site.app.finish(&path, response)
}

async fn handshake(
    site: &Site,
    matched: &Matched,
    request: Request,
    remote: SocketAddr,
    admitted: Option<Arc<Admitted>>,
) -> Response {
    let route = handshake::Route {
        endpoint: matched.endpoint,
        spec: &site.endpoints[matched.endpoint],
        params: matched.params.clone(),
    };
    handshake::answer(&site.server, site.proxies.as_ref(), route, request, remote, admitted).await
}

/// A request no app route takes: the server's own paths, then the app's folders, then 404
/// (through the app's global middlewares when it has any).
async fn without_route(site: &Site, request: Request, remote: SocketAddr) -> Response {
    let path = request.uri().path().to_owned();
    if site.stats_path.as_deref() == Some(path.as_str()) {
        return stats::respond(&site.server, request.uri().query()).await;
    }
    if let Some(probe) = probes::Probe::at(&path)
        && site.probes_here.serves(&probe)
    {
        return probes::respond(&site.server, site.bus.as_deref(), probe);
    }
    if matches!(*request.method(), Method::GET | Method::HEAD)
        && let Some(response) = site.app.static_files.serve(&path).await
    {
        return site.app.finish(&path, response);
    }
    if site.app.not_found_in_python {
        let response = app::call(site, None, request, remote).await;
        return site.app.finish(&path, response);
    }
    site.app.finish(&path, plain(StatusCode::NOT_FOUND, "Not found"))
}

/// The client asks to upgrade to WebSocket (any method and version: the handshake checks
/// the rest, and answers what is wrong).
fn asks_for_websocket(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.split(',').any(|token| token.trim().eq_ignore_ascii_case("websocket")))
}

/// A body framed two ways (`Content-Length` beside `Transfer-Encoding`, or two different
/// lengths) is a 400: a proxy in front might read it the other way, and smuggle a request
/// past itself (RFC 9112 section 6.3).
fn ambiguous_body(request: &Request) -> Option<Response> {
    let headers = request.headers();
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let first = lengths.next();
    let differing = first.is_some_and(|first| lengths.any(|other| other != first));
    if differing || (first.is_some() && headers.contains_key(header::TRANSFER_ENCODING)) {
        return Some(closing(
            StatusCode::BAD_REQUEST,
            "the request gives its body's length two ways (Content-Length with Transfer-Encoding, or two lengths)\n",
        ));
    }
    None
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
    response
}
