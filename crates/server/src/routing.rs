//! Exact-path routing to the app's WebSocket endpoints. Robyn paths are matched as plain
//! strings (no parameters), so a hash map is the whole router.

use std::collections::HashMap;

pub struct Routes {
    by_path: HashMap<String, usize>,
    count: usize,
}

impl Routes {
    /// `paths[i]` is endpoint `i`. A path registered twice goes to its last handler, as in
    /// Robyn; `duplicates` lists such paths so start-up can say so.
    pub fn new(paths: &[String]) -> (Self, Vec<String>) {
        let mut by_path = HashMap::new();
        let mut duplicates = Vec::new();
        for (index, path) in paths.iter().enumerate() {
            if by_path.insert(path.clone(), index).is_some() {
                duplicates.push(path.clone());
            }
        }
        (Self { by_path, count: paths.len() }, duplicates)
    }

    pub fn lookup(&self, path: &str) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    /// Number of endpoints (indexes run from 0 to `len() - 1`).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Every served path with the endpoint that serves it.
    pub fn paths(&self) -> impl Iterator<Item = (&str, usize)> {
        self.by_path.iter().map(|(path, endpoint)| (path.as_str(), *endpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_exact_paths_only() {
        let (routes, duplicates) = Routes::new(&["/ws".into(), "/chat".into()]);
        assert!(duplicates.is_empty());
        assert_eq!(routes.lookup("/ws"), Some(0));
        assert_eq!(routes.lookup("/chat"), Some(1));
        assert_eq!(routes.lookup("/ws/"), None);
        assert_eq!(routes.lookup("/WS"), None);
        assert_eq!(routes.lookup("/"), None);
    }

    #[test]
    fn the_last_handler_of_a_path_wins() {
        let (routes, duplicates) = Routes::new(&["/ws".into(), "/ws".into()]);
        assert_eq!(routes.lookup("/ws"), Some(1));
        assert_eq!(duplicates, ["/ws"]);
        assert_eq!(routes.len(), 2);
    }

    #[test]
    fn paths_with_robyn_or_axum_syntax_are_plain_strings() {
        let (routes, _) = Routes::new(&["/rooms/:id".into(), "/files/{*rest}".into()]);
        assert_eq!(routes.lookup("/rooms/:id"), Some(0));
        assert_eq!(routes.lookup("/rooms/7"), None);
        assert_eq!(routes.lookup("/files/{*rest}"), Some(1));
    }
}
