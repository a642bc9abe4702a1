//! Which changed files restart the workers: shell-style globs (`*`, `?`, `[abc]`, `[!abc]`,
//! by globset), matched as uvicorn's `--reload-include`/`--reload-exclude` are (Python's
//! `Path.match`): a pattern of one part matches a file or directory name, a pattern with `/`
//! its last parts.

use std::path::{Component, Path};

use globset::{GlobBuilder, GlobMatcher};

/// Always watched, as uvicorn watches them.
const DEFAULT_INCLUDES: &[&str] = &["*.py"];
/// Never watched unless included by name: hidden files and folders (`.git`, `.venv`, `.env`),
/// virtualenvs, caches, build output, and editors' backup and swap files.
const DEFAULT_EXCLUDES: &[&str] =
    &[".*", "__pycache__", "*.py[cod]", "venv", "node_modules", "target", "*~", "*.sw[opx]"];

/// One glob, split at `/`, each part matched against one part of a path.
#[derive(Debug, Clone)]
pub struct Glob(Vec<GlobMatcher>);

impl Glob {
    pub fn new(pattern: &str) -> Result<Self, String> {
        let part = |part: &str| {
            GlobBuilder::new(part)
                .literal_separator(true)
                .build()
                .map(|glob| glob.compile_matcher())
                .map_err(|error| format!("the reload pattern {pattern:?} is not a glob: {error}"))
        };
        pattern.split('/').filter(|part| !part.is_empty()).map(part).collect::<Result<_, _>>().map(Self)
    }

    /// Whether the last parts of `parts` match this glob, part by part.
    fn matches(&self, parts: &[&str]) -> bool {
        !self.0.is_empty()
            && parts.len() >= self.0.len()
            && self.0.iter().rev().zip(parts.iter().rev()).all(|(glob, part)| glob.is_match(part))
    }
}

/// The user's globs over the defaults.
#[derive(Debug, Clone)]
pub struct Filter {
    includes: Vec<Glob>,
    excludes: Vec<Glob>,
    default_includes: Vec<Glob>,
    default_excludes: Vec<Glob>,
}

impl Filter {
    /// The user's `--reload-include` and `--reload-exclude` patterns; one that is not a glob
    /// is an error naming it.
    pub fn new(includes: &[String], excludes: &[String]) -> Result<Self, String> {
        let globs = |patterns: &mut dyn Iterator<Item = &str>| patterns.map(Glob::new).collect::<Result<Vec<_>, _>>();
        Ok(Self {
            includes: globs(&mut includes.iter().map(String::as_str))?,
            excludes: globs(&mut excludes.iter().map(String::as_str))?,
            default_includes: globs(&mut DEFAULT_INCLUDES.iter().copied())?,
            default_excludes: globs(&mut DEFAULT_EXCLUDES.iter().copied())?,
        })
    }

    /// Whether a change to `relative` (a path inside a watched directory) restarts the workers.
    /// A file inside an excluded directory never does; for the file itself the user's
    /// excludes win over the user's includes, which win over the default excludes (so
    /// `--reload-include .env` watches `.env`), which win over the default `*.py`.
    pub fn counts(&self, relative: &Path) -> bool {
        let parts = parts(relative);
        let Some(last) = parts.len().checked_sub(1) else { return false };
        if (1..=last).any(|end| self.excludes_directory_parts(&parts[..end])) || any(&self.excludes, &parts) {
            return false;
        }
        if any(&self.includes, &parts) {
            return true;
        }
        !any(&self.default_excludes, &parts) && any(&self.default_includes, &parts)
    }

    /// Whether nothing inside the directory `relative` counts.
    pub fn excludes_directory(&self, relative: &Path) -> bool {
        let parts = parts(relative);
        (1..=parts.len()).any(|end| self.excludes_directory_parts(&parts[..end]))
    }

    fn excludes_directory_parts(&self, directory: &[&str]) -> bool {
        any(&self.excludes, directory) || any(&self.default_excludes, directory)
    }
}

fn parts(relative: &Path) -> Vec<&str> {
    relative
        .components()
        .filter_map(|part| match part {
            Component::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect()
}

fn any(globs: &[Glob], parts: &[&str]) -> bool {
    globs.iter().any(|glob| glob.matches(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches_part(pattern: &str, name: &str) -> bool {
        Glob::new(pattern).unwrap().matches(&[name])
    }

    #[test]
    fn parts_match_as_fnmatch() {
        assert!(matches_part("*.py", "app.py"));
        assert!(matches_part("*.py", ".py"));
        assert!(!matches_part("*.py", "app.pyc"));
        assert!(matches_part("*.py[cod]", "app.pyc"));
        assert!(!matches_part("*.py[cod]", "app.pyx"));
        assert!(matches_part("*.sw[!a]", "x.swp"));
        assert!(!matches_part("*.sw[!p]", "x.swp"));
        assert!(matches_part("[a-c]?", "b9"));
        assert!(matches_part("a*b*c", "axxbyyc"));
        assert!(!matches_part("a*b*c", "axxbyy"));
        assert!(matches_part("[]]", "]"), "a ] first in a class is one of its members");
    }

    #[test]
    fn a_pattern_that_is_not_a_glob_is_an_error_naming_it() {
        let error = Filter::new(&["[".into()], &[]).unwrap_err();
        assert!(error.contains("\"[\""), "{error}");
    }

    #[test]
    fn python_files_count_and_the_usual_clutter_does_not() {
        let filter = Filter::new(&[], &[]).unwrap();
        let counts = |path: &str| filter.counts(Path::new(path));
        assert!(counts("app.py"));
        assert!(counts("pkg/sub/mod.py"));
        assert!(!counts("notes.txt"));
        assert!(!counts("__pycache__/app.cpython-313.pyc"));
        assert!(!counts(".venv/lib/python3.13/site-packages/x.py"));
        assert!(!counts("venv/lib/x.py"));
        assert!(!counts("pkg/.hidden/x.py"));
        assert!(!counts(".git/hooks/x.py"));
        assert!(!counts("node_modules/a/b.py"));
        assert!(!counts("target/x.py"));
        assert!(!counts(".app.py.swp"));
        assert!(!counts("app.py~"));
        assert!(!counts(".#app.py"), "emacs' lock files");
    }

    #[test]
    fn the_users_globs_come_first() {
        let filter =
            Filter::new(&["*.html".into(), ".env".into(), "conf/*.toml".into()], &["skip_*.py".into(), "gen".into()])
                .unwrap();
        let counts = |path: &str| filter.counts(Path::new(path));
        assert!(counts("templates/index.html"));
        assert!(counts(".env"), "an include by name wins over the hidden-file default");
        assert!(counts("a/conf/x.toml"));
        assert!(!counts("x.toml"));
        assert!(!counts("skip_me.py"), "the user's exclude wins over *.py");
        assert!(!counts("gen/models.py"), "an excluded directory");
        assert!(!counts(".venv/x.html"), "a default-excluded directory still is");
        assert!(counts("app.py"));
        assert!(filter.excludes_directory(Path::new("gen")));
        assert!(filter.excludes_directory(Path::new("pkg/.venv/lib")));
        assert!(!filter.excludes_directory(Path::new("templates")));
    }
}
