//! Routing a request path to an endpoint of the app, with Robyn's patterns: exact paths
//! (`/chat`), named parameters (`/user/:id`) and a trailing wildcard (`/files/*rest`). The
//! patterns become matchit's (`{id}`, `{*rest}`); a pattern it cannot serve is refused at
//! start-up, never listed and then answered with 404.

use std::collections::HashMap;

/// The endpoints' patterns, ready to match.
pub struct Routes {
    router: matchit::Router<usize>,
    /// The pattern serving each endpoint index, as the app wrote it; None for an endpoint
    /// whose pattern another one registered later took over.
    patterns: Vec<Option<String>>,
}

/// A request path matched to an endpoint.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched {
    pub endpoint: usize,
    /// The path's parameters, percent-decoded, in pattern order.
    pub params: Vec<(String, String)>,
}

impl Routes {
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
        let mut served = vec![None; patterns.len()];
        for (index, pattern) in patterns.iter().enumerate() {
            if last[pattern.as_str()] != index {
                continue;
            }
            let route = matchit_route(pattern)?;
            router.insert(route, index).map_err(|error| match error {
                matchit::InsertError::Conflict { with } => format!(
                    "the WebSocket route {pattern} clashes with {}: a path could match both; make them differ by a fixed segment",
                    robyn_pattern(&with)
                ),
                other => format!("the WebSocket route {pattern} cannot be served: {other}"),
            })?;
            served[index] = Some(pattern.clone());
        }
        Ok((Self { router, patterns: served }, duplicates))
    }

    pub fn lookup(&self, path: &str) -> Option<Matched> {
        let matched = self.router.at(path).ok()?;
        let params = matched
            .params
            .iter()
            .map(|(name, value)| {
                (name.to_owned(), percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned())
            })
            .collect();
        Some(Matched { endpoint: *matched.value, params })
    }

    /// Every served pattern with the endpoint that serves it.
    pub fn patterns(&self) -> impl Iterator<Item = (&str, usize)> {
        self.patterns.iter().enumerate().filter_map(|(endpoint, pattern)| Some((pattern.as_deref()?, endpoint)))
    }
}

/// The app's HTTP routes, which this server does not serve: matched only so that a request
/// for one is told so.
pub struct HttpRoutes {
    router: matchit::Router<usize>,
    /// Each pattern with its methods.
    routes: Vec<(String, Vec<String>)>,
}

impl HttpRoutes {
    /// `(method, pattern)` pairs; a pattern the router cannot take is left out (it is only a
    /// better 404).
    pub fn new(routes: &[(String, String)]) -> Self {
        let mut router = matchit::Router::new();
        let mut by_pattern: Vec<(String, Vec<String>)> = Vec::new();
        for (method, pattern) in routes {
            if let Some((_, methods)) = by_pattern.iter_mut().find(|(known, _)| known == pattern) {
                methods.push(method.clone());
                continue;
            }
            if matchit_route(pattern).is_ok_and(|route| router.insert(route, by_pattern.len()).is_ok()) {
                by_pattern.push((pattern.clone(), vec![method.clone()]));
            }
        }
        Self { router, routes: by_pattern }
    }

    /// `GET, POST /items/:id` for a path one of them matches.
    pub fn lookup(&self, path: &str) -> Option<String> {
        let (pattern, methods) = &self.routes[*self.router.at(path).ok()?.value];
        Some(format!("{} {pattern}", methods.join(", ")))
    }
}

/// Robyn's pattern in matchit's syntax: `:name` segments become `{name}`, a last `*name`
/// segment `{*name}`, and literal braces are escaped.
fn matchit_route(pattern: &str) -> Result<String, String> {
    let unservable = |why: &str| format!("the WebSocket route {pattern} cannot be served: {why}");
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

    fn routes(patterns: &[&str]) -> Routes {
        Routes::new(&patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>()).unwrap().0
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
        let (routes, duplicates) = Routes::new(&["/ws".into(), "/ws".into()]).unwrap();
        assert_eq!(routes.lookup("/ws").map(|m| m.endpoint), Some(1));
        assert_eq!(duplicates, ["/ws"]);
        assert_eq!(routes.patterns.len(), 2);
        assert_eq!(routes.patterns().collect::<Vec<_>>(), [("/ws", 1)]);
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
            let error = Routes::new(&patterns).err().expect("refused");
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn http_routes_are_found_with_their_methods_and_unservable_ones_skipped() {
        let pairs = [("GET", "/items/:id"), ("POST", "/items/:id"), ("GET", "/"), ("GET", "/x-:bad")];
        let routes = HttpRoutes::new(&pairs.map(|(method, path)| (method.to_owned(), path.to_owned())));
        assert_eq!(routes.lookup("/items/7").as_deref(), Some("GET, POST /items/:id"));
        assert_eq!(routes.lookup("/").as_deref(), Some("GET /"));
        assert_eq!(routes.lookup("/nowhere"), None);
    }

    #[test]
    fn literal_braces_are_plain_text() {
        let routes = routes(&["/odd{name}"]);
        assert_eq!(routes.lookup("/odd{name}").map(|m| m.endpoint), Some(0));
        assert_eq!(routes.lookup("/oddx"), None);
    }
}
