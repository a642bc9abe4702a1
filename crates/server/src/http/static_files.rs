//! The folders an app serves (`app.serve_directory`): GET and HEAD of a file under a mount's
//! route, never anything outside its folder. A path is taken apart segment by segment from
//! the raw request path, each segment percent-decoded on its own, so `..`, `%2e%2e`, an encoded
//! slash or backslash, or an absolute path cannot climb out; the file found is then resolved
//! (symlinks followed) and must still lie inside the folder. Anything else is a 404.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pyhost::StaticMount;

pub struct StaticFiles {
    /// Longest route first, so a nested mount wins over its parent.
    mounts: Vec<Mount>,
}

struct Mount {
    /// The route without its trailing slash (`""` for `/`).
    route: String,
    /// Canonical: every file served must resolve to a path under it.
    root: PathBuf,
    index_file: Option<String>,
    listing: bool,
}

/// What a path under a mount names.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    File(PathBuf),
    /// A folder without an index file, listed (its entries' names).
    Listing(Vec<String>),
}

impl StaticFiles {
    pub fn new(mounts: &[StaticMount]) -> Result<Self, String> {
        let mut served = Vec::with_capacity(mounts.len());
        for mount in mounts {
            let root = mount.directory.canonicalize().map_err(|error| {
                format!(
                    "serve_directory({:?}, {:?}): the folder cannot be served: {error}",
                    mount.route,
                    mount.directory.display()
                )
            })?;
            served.push(Mount {
                route: mount.route.trim_end_matches('/').to_owned(),
                root,
                index_file: mount.index_file.clone(),
                listing: mount.listing,
            });
        }
        served.sort_by_key(|mount| std::cmp::Reverse(mount.route.len()));
        Ok(Self { mounts: served })
    }

    /// The answer for a GET or HEAD of `raw_path` (as sent, still percent-encoded), if a
    /// mount covers it and the file exists.
    pub async fn serve(&self, raw_path: &str) -> Option<Response> {
        for mount in &self.mounts {
            let Some(rest) = under(raw_path, &mount.route) else { continue };
            // A few metadata calls on a local disk: cheaper inline than on a blocking thread.
            let found = mount.find(rest)?;
            return Some(match found {
                Found::File(path) => file_response(&path).await,
                Found::Listing(names) => listing_response(raw_path, &names),
            });
        }
        None
    }
}

/// The part of `path` below `route`, if it is under it (`/static/a` under `/static`).
fn under<'a>(path: &'a str, route: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(route)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

impl Mount {
    fn find(&self, rest: &str) -> Option<Found> {
        let mut path = self.root.clone();
        for segment in rest.split('/').filter(|segment| !segment.is_empty()) {
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8().ok()?;
            if decoded == "." || decoded == ".." || decoded.contains(['/', '\\', '\0']) {
                return None;
            }
            path.push(decoded.as_ref());
        }
        let resolved = path.canonicalize().ok()?;
        if !resolved.starts_with(&self.root) {
            return None;
        }
        if resolved.is_file() {
            return Some(Found::File(resolved));
        }
        if !resolved.is_dir() {
            return None;
        }
        if let Some(index) = &self.index_file {
            let index = resolved.join(index).canonicalize().ok()?;
            if index.starts_with(&self.root) && index.is_file() {
                return Some(Found::File(index));
            }
        }
        self.listing.then(|| Found::Listing(entries(&resolved)))
    }
}

fn entries(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if entry.file_type().is_ok_and(|kind| kind.is_dir()) { format!("{name}/") } else { name }
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn file_response(path: &Path) -> Response {
    match tokio::fs::read(path).await {
        Ok(contents) => {
            let kind = mime_guess::from_path(path).first_or_octet_stream();
            let mut response = Response::new(Body::from(contents));
            if let Ok(kind) = HeaderValue::from_str(kind.essence_str()) {
                response.headers_mut().insert(header::CONTENT_TYPE, kind);
            }
            response
        }
        Err(error) => {
            tracing::warn!("serving {} failed: {error}", path.display());
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

fn listing_response(raw_path: &str, names: &[String]) -> Response {
    let base = raw_path.trim_end_matches('/');
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title></head><body><h1>{0}</h1><ul>\n",
        escape(raw_path)
    );
    for name in names {
        let href: String = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .replace("%2F", "/");
        page.push_str(&format!("<li><a href=\"{base}/{href}\">{}</a></li>\n", escape(name)));
    }
    page.push_str("</ul></body></html>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(root: &Path, index: Option<&str>, listing: bool) -> Mount {
        Mount { route: "/s".into(), root: root.canonicalize().unwrap(), index_file: index.map(str::to_owned), listing }
    }

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("static-files-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(dir.join("site/sub")).unwrap();
        std::fs::write(dir.join("site/a.txt"), "a").unwrap();
        std::fs::write(dir.join("site/sub/index.html"), "i").unwrap();
        std::fs::write(dir.join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("site/leak.txt")).unwrap();
        dir
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    }

    #[test]
    fn files_under_the_folder_are_found_and_nothing_outside_it() {
        let dir = scratch();
        let site = mount(&dir.join("site"), Some("index.html"), false);
        assert_eq!(site.find("/a.txt"), Some(Found::File(dir.join("site/a.txt").canonicalize().unwrap())));
        assert_eq!(site.find("/sub"), Some(Found::File(dir.join("site/sub/index.html").canonicalize().unwrap())));
        for escape in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/sub/..%2f..%2fsecret.txt",
            "/..%5csecret.txt",
            "/leak.txt",
            "/%2fetc%2fpasswd",
            "/nothing",
            "/a.txt%00",
        ] {
            assert_eq!(site.find(escape), None, "{escape}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_folder_without_an_index_is_listed_only_when_asked() {
        let dir = scratch();
        assert_eq!(mount(&dir.join("site"), None, false).find("/"), None);
        let listed = mount(&dir.join("site"), None, true).find("/");
        assert_eq!(listed, Some(Found::Listing(vec!["a.txt".into(), "leak.txt".into(), "sub/".into()])));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_mount_covers_its_route_and_what_is_below_it_only() {
        assert_eq!(under("/static/a", "/static"), Some("/a"));
        assert_eq!(under("/static", "/static"), Some(""));
        assert_eq!(under("/staticx", "/static"), None);
        assert_eq!(under("/anything", ""), Some("/anything"));
    }
}
