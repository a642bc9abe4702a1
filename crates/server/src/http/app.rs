//! Answering a request from the app's HTTP routes: its body read within `--max-body-size`,
//! the call handed to the Python side, and its answer sent back with the app's global
//! response headers. A `const=True` route is answered by Python once, then from here.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use pyhost::bridge::{Event, FormParts, HttpCall, HttpReply, ReplyBody};
use pyhost::{HttpApp, StartupError};

use super::routing::{HttpRoutes, Matched};
use super::static_files::StaticFiles;
use super::streaming::StreamingBody;
use super::{Site, multipart};
use crate::proxies;
use crate::tls::Encrypted;

/// The app's HTTP side, as the network side serves it.
pub struct AppRoutes {
    pub routes: HttpRoutes,
    /// Per route index: for a `const=True` route, its first answer once there is one.
    constant: Vec<Option<OnceLock<HttpReply>>>,
    pub static_files: StaticFiles,
    response_headers: Vec<(HeaderName, HeaderValue)>,
    header_exclusions: Vec<String>,
    /// The app's global middlewares see requests that matched nothing (their 404).
    pub not_found_in_python: bool,
}

impl AppRoutes {
    pub fn new(app: &HttpApp) -> Result<Self, StartupError> {
        let failure = |message: String| StartupError { details: None, message };
        let routes = HttpRoutes::new(app.routes.iter().map(|route| (route.method.as_str(), route.path.as_str())))
            .map_err(failure)?;
        let mut response_headers = Vec::with_capacity(app.response_headers.len());
        for (name, value) in &app.response_headers {
            match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
                (Ok(name), Ok(value)) => response_headers.push((name, value)),
                _ => {
                    return Err(failure(format!(
                        "the global response header {name:?}: {value:?} cannot be sent in HTTP: fix its name or value"
                    )));
                }
            }
        }
        Ok(Self {
            routes,
            constant: app.routes.iter().map(|route| route.constant.then(OnceLock::new)).collect(),
            static_files: StaticFiles::new(&app.static_mounts).map_err(failure)?,
            response_headers,
            header_exclusions: app.header_exclusions.clone(),
            not_found_in_python: app.not_found_in_python,
        })
    }

    /// Adds the app's global response headers the response does not have already (as Robyn
    /// does), unless the path is excluded from them.
    pub fn finish(&self, path: &str, mut response: Response) -> Response {
        // Routed without its trailing slash, so excluded without it too.
        let routed = path.strip_suffix('/').filter(|stripped| !stripped.is_empty()).unwrap_or(path);
        if !self.response_headers.is_empty() && !self.header_exclusions.iter().any(|excluded| excluded == routed) {
            let headers = response.headers_mut();
            for (name, value) in &self.response_headers {
                if !headers.contains_key(name) {
                    headers.insert(name.clone(), value.clone());
                }
            }
        }
        response
    }
}

/// Runs the app's route `matched` (None: no route, for the app's global middlewares to see
/// the 404) for `request`, and answers with what it returned.
pub async fn call(site: &Site, matched: Option<Matched>, request: Request, remote: SocketAddr) -> Response {
    let app = &site.app;
    let cache = matched.as_ref().and_then(|matched| app.constant.get(matched.endpoint)).and_then(Option::as_ref);
    if let Some(reply) = cache.and_then(OnceLock::get) {
        return reply_response(site, reply.clone());
    }
    let (parts, body) = request.into_parts();
    let limit = site.server.limits.http.max_body_size;
    if declared_length(&parts).is_some_and(|length| length > limit) {
        return too_large(limit);
    }
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => return too_large(limit),
        Err(error) => {
            tracing::debug!(%error, "reading a request body failed");
            return closing(StatusCode::BAD_REQUEST, "the request body could not be read\n");
        }
    };
    let form = match multipart::boundary(&parts.headers) {
        None => None,
        Some(boundary) => match async { multipart::split(body.clone(), boundary?).await }.await {
            Ok(form) => Some(Box::new(form)),
            Err(error) => {
                return closing(
                    StatusCode::BAD_REQUEST,
                    &format!("the multipart/form-data body is malformed: {error}\n"),
                );
            }
        },
    };
    // Cheap copies (shared bytes), for the line a late answer logs.
    let (method, uri) = (parts.method.clone(), parts.uri.clone());
    let (reply, answer) = tokio::sync::oneshot::channel();
    let call = http_call(site, parts, matched, (body, form), remote, reply);
    site.server.bridge.push(Event::Http(Box::new(call)));
    let answered = match site.server.limits.http.request_timeout {
        Some(timeout) => match tokio::time::timeout(timeout, answer).await {
            Ok(answered) => answered,
            Err(_) => {
                tracing::warn!(
                    "{method} {} did not answer within --request-timeout ({timeout:?}): the client got 503 (the handler runs on)",
                    uri.path()
                );
                return closing(StatusCode::SERVICE_UNAVAILABLE, "the app did not answer in time\n");
            }
        },
        None => answer.await,
    };
    match answered {
        Ok(reply) => {
            if let Some(cache) = cache
                && matches!(reply.body, ReplyBody::Whole(_))
            {
                let _ = cache.set(reply.clone());
            }
            reply_response(site, reply)
        }
        // The Python side dropped the call without answering: a bug of ours, or shutdown.
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
    }
}

fn http_call(
    site: &Site,
    mut head: Parts,
    matched: Option<Matched>,
    (body, form): (bytes::Bytes, Option<Box<FormParts>>),
    remote: SocketAddr,
    reply: tokio::sync::oneshot::Sender<HttpReply>,
) -> HttpCall {
    let (client, forwarded_secure) = proxies::client(&head.headers, remote, site.proxies.as_ref());
    let secure = forwarded_secure || head.extensions.get::<Encrypted>().is_some();
    // What the listener put there (the socket's place among --max-connections) stays with the
    // connection, not with a request Python may hold on to.
    head.extensions.clear();
    let (route, path_params) = match matched {
        Some(Matched { endpoint, params }) => (Some(endpoint), params),
        None => (None, Vec::new()),
    };
    HttpCall { route, head, path_params, body, form, client, scheme: if secure { "https" } else { "http" }, reply }
}

/// The body size the client announced, if any.
fn declared_length(parts: &Parts) -> Option<usize> {
    parts.headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn reply_response(site: &Site, reply: HttpReply) -> Response {
    let HttpReply { status, headers, body } = reply;
    let body = match body {
        ReplyBody::Whole(bytes) => Body::from(bytes),
        ReplyBody::Streamed(stream) => {
            let server = &site.server;
            Body::new(StreamingBody::new(
                stream,
                server.bridge.clone(),
                &server.streams,
                server.limits.http.sse_keepalive,
            ))
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let map = response.headers_mut();
    for (name, value) in headers {
        match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => tracing::warn!("a response header HTTP cannot carry was left out: {name:?}: {value:?}"),
        }
    }
    response
}

fn too_large(limit: usize) -> Response {
    closing(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body is larger than --max-body-size ({limit} bytes)\n"),
    )
}

/// An error response after which the connection is closed: the rest of what the client
/// sends is not read.
pub fn closing(status: StatusCode, body: &str) -> Response {
    let mut response = (status, body.to_owned()).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
