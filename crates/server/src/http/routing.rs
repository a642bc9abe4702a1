//! Routing a request to a route of the app, with Robyn's patterns: exact paths (`/chat`),
//! named parameters (`/user/:id`) and a trailing wildcard (`/files/*rest`). The patterns
//! become matchit's (`{id}`, `{*rest}`): a fixed segment wins over a parameter, a parameter
//! over a wildcard. A pattern it cannot serve is refused at start-up, never listed and then
//! answered with 404.

use std::collections::HashMap;

use axum::http::Method;

/// The endpoints' patterns, ready to match.
pub struct WebSocketRoutes {
    router: matchit::Router<usize>,
}

/// A request path matched to an endpoint.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched {
    pub endpoint: usize,
    /// The path's parameters, percent-decoded, in pattern order.
    pub params: Vec<(String, String)>,
}

impl WebSocketRoutes {
    /// `patterns[i]` is endpoint `i`. A pattern registered twice goes to its last handler, as
    /// in Robyn; the second list names such patterns so start-up can say so. A pattern that
    /// cannot be served, or that clashes with another, is an error naming it.
    pub fn new(patterns: &[String]) -> Result<(Self, Vec<String>), String> {
        let mut last: HashMap<&str, usize> = HashMap::new();
        let mut duplicates = Vec::new();
        for (index, pattern) in patterns.iter().enumerate() {
            if last.insert(pattern, index).is_some() {
                duplicates.push(pattern.clone());
            }
        }
        let mut router = matchit::Router::new();
        for (index, pattern) in patterns.iter().enumerate() {
            if last[pattern.as_str()] != index {
                continue;
            }
            let what = format!("the WebSocket route {pattern}");
            let route = matchit_route(pattern, &what)?;
            router.insert(route, index).map_err(|error| clash(&what, error))?;
        }
        Ok((Self { router }, duplicates))
    }

    pub fn lookup(&self, path: &str) -> Option<Matched> {
        let matched = self.router.at(path).ok()?;
        Some(Matched { endpoint: *matched.value, params: decoded(&matched.params) })
    }
}

/// The app's HTTP routes: one router per method, as in Robyn (so `GET /items/:id` and
/// `POST /items/:item` may name their parameter differently).
#[derive(Default)]
pub struct HttpRoutes {
    by_method: Vec<(Method, matchit::Router<usize>)>,
}

/// What routing answers for a method and a path.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpMatch {
    Route(Matched),
    /// A method HTTP knows, without a route here: 404.
    NoRoute,
    /// A method nobody registers routes for (`NONSTANDARD`): 405.
    UnknownMethod,
}

/// The methods Robyn's decorators register.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

impl HttpRoutes {
    /// `routes[i]` is route `i`, as (method, pattern). A pattern registered twice for one
    /// method goes to its last handler, as in Robyn. A pattern that cannot be served is an
    /// error naming it.
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut last: HashMap<(&str, &str), usize> = HashMap::new();
        let routes: Vec<(&str, &str)> = routes.into_iter().collect();
        for (index, route) in routes.iter().enumerate() {
            last.insert(*route, index);
        }
        let mut by_method: Vec<(Method, matchit::Router<usize>)> = Vec::new();
        for (index, &(method, pattern)) in routes.iter().enumerate() {
            if last[&(method, pattern)] != index {
                continue;
            }
            let what = format!("the HTTP route {method} {pattern}");
            let parsed = Method::from_bytes(method.as_bytes())
                .ok()
                .filter(|parsed| METHODS.contains(parsed))
                .ok_or_else(|| format!("{what} cannot be served: {method} is not an HTTP method"))?;
            let route = matchit_route(&strip_trailing_slash(pattern), &what)?;
            let router = match by_method.iter_mut().find(|(known, _)| *known == parsed) {
                Some((_, router)) => router,
                None => {
                    by_method.push((parsed, matchit::Router::new()));
                    &mut by_method.last_mut().expect("just pushed").1
                }
            };
            router.insert(route, index).map_err(|error| clash(&what, error))?;
        }
        Ok(Self { by_method })
    }

    /// The route for `method` at `path`; a trailing slash is not part of the path here (as in
    /// Robyn: `/items/` is `/items`), and HEAD falls back to GET.
    pub fn lookup(&self, method: &Method, path: &str) -> HttpMatch {
        if !METHODS.contains(method) {
            return HttpMatch::UnknownMethod;
        }
        let path = strip_trailing_slash(path);
        let find = |method: &Method| {
            let router = &self.by_method.iter().find(|(known, _)| known == method)?.1;
            router.at(&path).ok().map(|matched| Matched { endpoint: *matched.value, params: decoded(&matched.params) })
        };
        match find(method).or_else(|| if *method == Method::HEAD { find(&Method::GET) } else { None }) {
            Some(matched) => HttpMatch::Route(matched),
            None => HttpMatch::NoRoute,
        }
    }
}

/// `/a/b/` is `/a/b`; `/` stays.
fn strip_trailing_slash(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => std::borrow::Cow::Borrowed(stripped),
        _ => std::borrow::Cow::Borrowed(path),
    }
}

fn decoded(params: &matchit::Params<'_, '_>) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(name, value)| {
            (name.to_owned(), percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned())
        })
        .collect()
}

fn clash(what: &str, error: matchit::InsertError) -> String {
    match error {
        matchit::InsertError::Conflict { with } => format!(
            "{what} clashes with {}: a path could match both; make them differ by a fixed segment",
            robyn_pattern(&with)
        ),
        other => format!("{what} cannot be served: {other}"),
    }
}

/// Robyn's pattern in matchit's syntax: `:name` segments become `{name}`, a last `*name`
/// segment `{*name}`, and literal braces are escaped.
fn matchit_route(pattern: &str, what: &str) -> Result<String, String> {
    let unservable = |why: &str| format!("{what} cannot be served: {why}");
    if !pattern.starts_with('/') {
        return Err(unservable("it must start with '/'"));
    }
    let segments: Vec<&str> = pattern[1..].split('/').collect();
    let mut route = String::with_capacity(pattern.len() + 8);
    for (position, segment) in segments.iter().enumerate() {
        route.push('/');
        if let Some(name) = segment.strip_prefix(':') {
            check_name(name).map_err(|why| unservable(&why))?;
            route.push_str(&format!("{{{name}}}"));
        } else if let Some(name) = segment.strip_prefix('*') {
            if position + 1 != segments.len() {
                return Err(unservable("a *wildcard segment must be the last one"));
            }
            check_name(name).map_err(|why| unservable(&why))?;
            route.push_str(&format!("{{*{name}}}"));
        } else if segment.contains([':', '*']) {
            return Err(unservable(&format!(
                "'{segment}' mixes text and a parameter; a parameter is a whole segment (/:name, or /*name last)"
            )));
        } else {
            route.push_str(&segment.replace('{', "{{").replace('}', "}}"));
        }
    }
    Ok(route)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(format!("'{name}' is not a parameter name (letters, digits and _)"));
    }
    Ok(())
}

/// A matchit route back in Robyn's syntax, for messages.
fn robyn_pattern(route: &str) -> String {
    route.replace("{*", "*").replace('{', ":").replace('}', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(patterns: &[&str]) -> WebSocketRoutes {
        WebSocketRoutes::new(&patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>()).unwrap().0
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn exact_paths_match_exactly() {
        let routes = routes(&["/ws", "/chat"]);
        assert_eq!(routes.lookup("/ws"), Some(Matched { endpoint: 0, params: vec![] }));
        assert_eq!(routes.lookup("/chat").map(|m| m.endpoint), Some(1));
        for other in ["/ws/", "/WS", "/", "/chat/x"] {
            assert_eq!(routes.lookup(other), None, "{other}");
        }
    }

    #[test]
    fn named_parameters_and_a_trailing_wildcard_are_captured_and_decoded() {
        let routes = routes(&["/user/:id", "/rooms/:room/members/:member", "/files/*rest", "/user/me"]);
        assert_eq!(routes.lookup("/user/42"), Some(Matched { endpoint: 0, params: params(&[("id", "42")]) }));
        assert_eq!(routes.lookup("/user/me").map(|m| m.endpoint), Some(3), "a fixed segment wins");
        assert_eq!(
            routes.lookup("/rooms/lobby/members/ann%20b").map(|m| m.params),
            Some(params(&[("room", "lobby"), ("member", "ann b")]))
        );
        assert_eq!(routes.lookup("/files/a/b/c.txt").map(|m| m.params), Some(params(&[("rest", "a/b/c.txt")])));
        assert_eq!(routes.lookup("/user/42/more"), None);
        assert_eq!(routes.lookup("/user/"), None);
    }

    #[test]
    fn the_last_handler_of_a_pattern_wins() {
        let (routes, duplicates) = WebSocketRoutes::new(&["/ws".into(), "/ws".into()]).unwrap();
        assert_eq!(routes.lookup("/ws").map(|m| m.endpoint), Some(1));
        assert_eq!(duplicates, ["/ws"]);
    }

    #[test]
    fn patterns_that_cannot_be_served_are_refused_with_a_reason() {
        for (patterns, says) in [
            (vec!["/user/:id", "/user/:name"], "clashes with /user/:id"),
            (vec!["/files/*rest/more"], "must be the last one"),
            (vec!["/user-:id"], "mixes text and a parameter"),
            (vec!["/user/:"], "is not a parameter name"),
            (vec!["chat"], "must start with '/'"),
        ] {
            let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
            let error = WebSocketRoutes::new(&patterns).err().expect("refused");
            assert!(error.contains(says), "{error}");
        }
    }

    fn http(routes: &[(&str, &str)]) -> HttpRoutes {
        HttpRoutes::new(routes.iter().copied()).unwrap()
    }

    fn route(index: usize, pairs: &[(&str, &str)]) -> HttpMatch {
        HttpMatch::Route(Matched { endpoint: index, params: params(pairs) })
    }

    #[test]
    fn http_routes_are_found_per_method_without_the_trailing_slash() {
        let routes = http(&[("GET", "/items/:id"), ("POST", "/items/:item"), ("GET", "/"), ("GET", "/trailing/")]);
        assert_eq!(routes.lookup(&Method::GET, "/items/7"), route(0, &[("id", "7")]));
        assert_eq!(routes.lookup(&Method::POST, "/items/7/"), route(1, &[("item", "7")]));
        assert_eq!(routes.lookup(&Method::GET, "/"), route(2, &[]));
        assert_eq!(routes.lookup(&Method::GET, "/trailing"), route(3, &[]));
        assert_eq!(routes.lookup(&Method::GET, "/trailing/"), route(3, &[]));
        assert_eq!(routes.lookup(&Method::PUT, "/items/7"), HttpMatch::NoRoute);
        assert_eq!(routes.lookup(&Method::GET, "/nowhere"), HttpMatch::NoRoute);
        let odd = Method::from_bytes(b"NONSTANDARD").unwrap();
        assert_eq!(routes.lookup(&odd, "/"), HttpMatch::UnknownMethod);
    }

    #[test]
    fn head_falls_back_to_get_and_the_last_registration_wins() {
        let routes = http(&[("GET", "/a"), ("HEAD", "/b"), ("GET", "/b"), ("GET", "/a")]);
        assert_eq!(routes.lookup(&Method::HEAD, "/a"), route(3, &[]));
        assert_eq!(routes.lookup(&Method::HEAD, "/b"), route(1, &[]));
    }

    #[test]
    fn fixed_segments_win_over_parameters_and_wildcards() {
        let routes = http(&[("GET", "/f/*rest"), ("GET", "/g/:one"), ("GET", "/f/me"), ("GET", "/g/me")]);
        assert_eq!(routes.lookup(&Method::GET, "/f/me"), route(2, &[]));
        assert_eq!(routes.lookup(&Method::GET, "/g/me"), route(3, &[]));
        assert_eq!(routes.lookup(&Method::GET, "/g/x"), route(1, &[("one", "x")]));
        assert_eq!(routes.lookup(&Method::GET, "/f/x/y"), route(0, &[("rest", "x/y")]));
    }

    #[test]
    fn http_routes_that_cannot_be_served_are_refused_with_a_reason() {
        for (routes, says) in [
            (vec![("GET", "/u/:id"), ("GET", "/u/:name")], "clashes with /u/:id"),
            (vec![("FETCH", "/")], "FETCH is not an HTTP method"),
            (vec![("GET", "/x-:bad")], "mixes text and a parameter"),
        ] {
            let error = HttpRoutes::new(routes).err().expect("refused");
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn literal_braces_are_plain_text() {
        let routes = routes(&["/odd{name}"]);
        assert_eq!(routes.lookup("/odd{name}").map(|m| m.endpoint), Some(0));
        assert_eq!(routes.lookup("/oddx"), None);
    }
}
