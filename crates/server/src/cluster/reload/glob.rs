//! Which changed files restart the workers: shell-style globs (`*`, `?`, `[abc]`, `[!abc]`),
//! matched as uvicorn's `--reload-include`/`--reload-exclude` are (Python's `Path.match`): a
//! pattern of one part matches a file or directory name, a pattern with `/` its last parts.

use std::path::{Component, Path};

/// Always watched, as uvicorn watches them.
const DEFAULT_INCLUDES: &[&str] = &["*.py"];
/// Never watched unless included by name: hidden files and folders (`.git`, `.venv`, `.env`),
/// virtualenvs, caches, build output, and editors' backup and swap files.
const DEFAULT_EXCLUDES: &[&str] =
    &[".*", "__pycache__", "*.py[cod]", "venv", "node_modules", "target", "*~", "*.sw[opx]"];

/// One glob, split at `/`.
#[derive(Debug, Clone)]
pub struct Glob(Vec<String>);

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Self(pattern.split('/').filter(|part| !part.is_empty()).map(str::to_owned).collect())
    }

    /// Whether the last parts of `parts` match this glob, part by part.
    fn matches(&self, parts: &[&str]) -> bool {
        !self.0.is_empty()
            && parts.len() >= self.0.len()
            && self.0.iter().rev().zip(parts.iter().rev()).all(|(glob, part)| matches_part(glob, part))
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
    pub fn new(includes: &[String], excludes: &[String]) -> Self {
        let globs = |patterns: &mut dyn Iterator<Item = &str>| patterns.map(Glob::new).collect();
        Self {
            includes: globs(&mut includes.iter().map(String::as_str)),
            excludes: globs(&mut excludes.iter().map(String::as_str)),
            default_includes: globs(&mut DEFAULT_INCLUDES.iter().copied()),
            default_excludes: globs(&mut DEFAULT_EXCLUDES.iter().copied()),
        }
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

/// fnmatch for one part of a path: `*` any run of characters, `?` one, `[...]` one of a set
/// (ranges `a-z`, negated by a leading `!`).
fn matches_part(glob: &str, name: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // Backtracking over the last `*` only: linear enough for file names.
    let (mut g, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if g < glob.len() {
            match glob[g] {
                '*' => {
                    star = Some((g, n));
                    g += 1;
                    continue;
                }
                '?' => {
                    g += 1;
                    n += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, after)) = class(&glob, g, name[n]) {
                        if matched {
                            g = after;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == '[' {
                        // An unclosed `[` stands for itself.
                        g += 1;
                        n += 1;
                        continue;
                    }
                }
                literal if literal == name[n] => {
                    g += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_g, star_n)) => {
                g = star_g + 1;
                n = star_n + 1;
                star = Some((star_g, star_n + 1));
            }
            None => return false,
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

/// The class starting at `glob[start]` (a `[`): whether `c` is in it, and where the glob goes
/// on after it; None when the `[` is never closed.
fn class(glob: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = glob.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < glob.len() {
        if glob[i] == ']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        if glob.get(i + 1) == Some(&'-') && glob.get(i + 2).is_some_and(|&end| end != ']') {
            matched |= glob[i] <= c && c <= glob[i + 2];
            i += 3;
        } else {
            matched |= glob[i] == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches_part("*", ""));
        assert!(matches_part("[", "["), "an unclosed class is literal");
        assert!(matches_part("[]]", "]"), "a ] first in a class is one of its members");
    }

    #[test]
    fn python_files_count_and_the_usual_clutter_does_not() {
        let filter = Filter::new(&[], &[]);
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
            Filter::new(&["*.html".into(), ".env".into(), "conf/*.toml".into()], &["skip_*.py".into(), "gen".into()]);
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
