//! Watches the app's directories (notify: inotify on Linux) and reports each burst of changes
//! that count (see [`Filter`]) once: an editor's save is often several writes and a rename,
//! and a `git checkout` hundreds of files, each of which would otherwise start new workers.
//!
//! Each directory is watched on its own, and excluded ones never are: a virtualenv or a
//! `node_modules` beside the app is thousands of directories, each of which a recursive watch
//! would spend one of the user's inotify watches on (8,192 in all on some systems).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, EventKind, MetadataKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::glob::Filter;

/// A burst ends after this long without another counted event.
const QUIET: Duration = Duration::from_millis(50);
/// A burst that never goes quiet (a build writing all along) is reported after this long.
const LONGEST_BURST: Duration = Duration::from_millis(500);

/// The bursts of changes the watcher reports (the watcher itself lives in the task that
/// gathers them, which also watches the directories created later).
pub struct Watch {
    roots: Vec<PathBuf>,
    /// One entry per burst: the files that changed in it.
    pub changes: mpsc::UnboundedReceiver<Vec<PathBuf>>,
}

impl Watch {
    /// Watches `roots` and what is inside them; must be called inside the tokio runtime.
    pub fn start(roots: &[PathBuf], filter: Filter) -> Result<Self, String> {
        let mut roots: Vec<PathBuf> = roots
            .iter()
            .map(|root| {
                root.canonicalize().map_err(|error| format!("cannot watch {} for --reload: {error}", root.display()))
            })
            .collect::<Result<_, _>>()?;
        roots = outermost(roots);
        let (raw, events) = mpsc::unbounded_channel();
        // Called on notify's own thread: nothing here may wait.
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = raw.send(event);
        })
        .map_err(|error| format!("cannot watch files for --reload: {error}"))?;
        let relevance = Relevance { roots: roots.clone(), filter };
        for root in &roots {
            let mut directories = Vec::new();
            relevance.directories(root, &mut directories);
            for directory in directories {
                watcher
                    .watch(&directory, RecursiveMode::NonRecursive)
                    .map_err(|error| format!("cannot watch {} for --reload: {error}", directory.display()))?;
            }
        }
        let watch_new = move |directory: &Path| {
            // Gone again already, or out of inotify watches: its changes go unseen, so say so.
            if let Err(error) = watcher.watch(directory, RecursiveMode::NonRecursive) {
                tracing::warn!("--reload cannot watch {}: {error}", directory.display());
            }
        };
        let (changed, changes) = mpsc::unbounded_channel();
        tokio::spawn(debounce(events, relevance, changed, watch_new));
        Ok(Self { roots, changes })
    }

    /// The directories watched, for the log.
    pub fn roots(&self) -> String {
        let roots: Vec<String> = self.roots.iter().map(|root| root.display().to_string()).collect();
        roots.join(", ")
    }
}

/// The directories not inside another: one inside another is watched already (and would
/// report each change twice).
fn outermost(mut roots: Vec<PathBuf>) -> Vec<PathBuf> {
    roots.sort();
    roots.dedup();
    let all = roots.clone();
    roots.retain(|root| !all.iter().any(|other| other != root && root.starts_with(other)));
    roots
}

/// Which of notify's events are changes the app's code may see.
struct Relevance {
    roots: Vec<PathBuf>,
    filter: Filter,
}

impl Relevance {
    /// Adds what of `event` counts to `burst`: nothing for events that change nothing (a file
    /// read or opened: the new workers' own imports must not restart them).
    fn add(&self, event: notify::Result<notify::Event>, burst: &mut Burst) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!("watching files for --reload: {error}");
                return;
            }
        };
        let changes = match event.kind {
            EventKind::Access(AccessKind::Close(notify::event::AccessMode::Write)) => true,
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any | EventKind::Other => {
                true
            }
        };
        if !changes {
            return;
        }
        // A directory made here, or moved in from elsewhere (`mv`, a checkout's rename).
        let arrives = matches!(event.kind, EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)));
        for path in event.paths {
            if arrives && path.is_dir() {
                if !self.relative(&path).all(|relative| self.filter.excludes_directory(relative)) {
                    burst.directories.push(path);
                }
            } else if self.counts(&path) && !burst.files.contains(&path) {
                burst.files.push(path);
            }
        }
    }

    /// The files of a burst that ended. inotify watches a new directory only after it has
    /// reported it created, so what was written into it before (`mkdir -p pkg && cp ...`, a
    /// checkout) came unseen: the directory is read now, once the watch is surely there.
    fn files(&self, burst: Burst) -> Vec<PathBuf> {
        let mut files = burst.files;
        for directory in &burst.directories {
            self.walk(directory, &mut files);
        }
        files
    }

    fn counts(&self, path: &Path) -> bool {
        self.relative(path).any(|relative| self.filter.counts(relative))
    }

    fn relative<'a>(&'a self, path: &'a Path) -> impl Iterator<Item = &'a Path> {
        self.roots.iter().filter_map(move |root| path.strip_prefix(root).ok())
    }

    /// `directory` and the directories under it, but not excluded ones nor what is inside
    /// them, nor symbolic links (which may lead outside, or round in a loop).
    fn directories(&self, directory: &Path, found: &mut Vec<PathBuf>) {
        if self.relative(directory).all(|relative| self.filter.excludes_directory(relative)) {
            return;
        }
        found.push(directory.to_path_buf());
        let Ok(entries) = std::fs::read_dir(directory) else { return };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                self.directories(&entry.path(), found);
            }
        }
    }

    /// The files under `directory` that count, but not inside excluded directories (a new
    /// virtualenv is thousands of files that never do).
    fn walk(&self, directory: &Path, files: &mut Vec<PathBuf>) {
        if self.relative(directory).all(|relative| self.filter.excludes_directory(relative)) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(directory) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => self.walk(&path, files),
                Ok(_) if self.counts(&path) && !files.contains(&path) => files.push(path),
                _ => {}
            }
        }
    }
}

/// What one burst changed so far.
#[derive(Default)]
struct Burst {
    files: Vec<PathBuf>,
    /// Directories created, read when the burst ends.
    directories: Vec<PathBuf>,
}

impl Burst {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.directories.is_empty()
    }
}

/// Reports a burst once it goes quiet for [`QUIET`] (or has lasted [`LONGEST_BURST`]).
/// Directories created in it are watched then too (`watch_new`), before they are read.
async fn debounce(
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    relevance: Relevance,
    changed: mpsc::UnboundedSender<Vec<PathBuf>>,
    mut watch_new: impl FnMut(&Path),
) {
    loop {
        let mut burst = Burst::default();
        while burst.is_empty() {
            let Some(event) = events.recv().await else { return };
            relevance.add(event, &mut burst);
        }
        let longest = Instant::now() + LONGEST_BURST;
        loop {
            let quiet = (Instant::now() + QUIET).min(longest);
            match tokio::time::timeout_at(quiet, events.recv()).await {
                Ok(Some(event)) => relevance.add(event, &mut burst),
                Ok(None) => return,
                Err(_) => break,
            }
        }
        for directory in &burst.directories {
            let mut directories = Vec::new();
            relevance.directories(directory, &mut directories);
            directories.iter().for_each(|directory| watch_new(directory));
        }
        let files = relevance.files(burst);
        // (Only new directories with nothing in them that counts.)
        if !files.is_empty() && changed.send(files).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessMode, CreateKind, DataChange};

    fn event(kind: EventKind, path: &str) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(kind).add_path(PathBuf::from(path)))
    }

    /// What one event alone adds up to.
    impl Relevance {
        fn of(&self, event: notify::Result<notify::Event>) -> Vec<PathBuf> {
            let mut burst = Burst::default();
            self.add(event, &mut burst);
            self.files(burst)
        }
    }

    fn relevance() -> Relevance {
        Relevance { roots: vec![PathBuf::from("/app")], filter: Filter::new(&[], &[]).unwrap() }
    }

    #[test]
    fn a_directory_inside_another_is_not_watched_twice() {
        let roots = ["/a/b", "/a-x", "/a", "/c", "/a"].map(PathBuf::from).to_vec();
        assert_eq!(outermost(roots), ["/a", "/a-x", "/c"].map(PathBuf::from));
    }

    #[test]
    fn writes_count_and_reads_do_not() {
        let relevance = relevance();
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        assert_eq!(relevance.of(event(write, "/app/main.py")), [PathBuf::from("/app/main.py")]);
        assert_eq!(relevance.of(event(EventKind::Create(CreateKind::File), "/app/new.py")).len(), 1);
        assert!(relevance.of(event(EventKind::Access(AccessKind::Open(AccessMode::Read)), "/app/main.py")).is_empty());
        assert!(relevance.of(event(write, "/app/__pycache__/main.cpython-313.pyc")).is_empty());
        assert!(relevance.of(event(write, "/elsewhere/main.py")).is_empty());
        assert!(relevance.of(Err(notify::Error::generic("queue overflow"))).is_empty());
    }

    #[test]
    fn excluded_directories_are_not_watched_nor_anything_inside() {
        let root = std::env::temp_dir().join(format!("robyn-ws-watch-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for directory in ["pkg/sub", ".venv/lib/site-packages/x", "node_modules/a", "pkg/__pycache__"] {
            std::fs::create_dir_all(root.join(directory)).unwrap();
        }
        let relevance = Relevance { roots: vec![root.clone()], filter: Filter::new(&[], &[]).unwrap() };
        let mut directories = Vec::new();
        relevance.directories(&root, &mut directories);
        directories.sort();
        assert_eq!(directories, [root.clone(), root.join("pkg"), root.join("pkg/sub")]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn what_a_new_directory_holds_already_counts() {
        let root = std::env::temp_dir().join(format!("robyn-ws-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("pkg/sub")).unwrap();
        std::fs::create_dir_all(root.join("pkg/__pycache__")).unwrap();
        std::fs::write(root.join("pkg/sub/mod.py"), "").unwrap();
        std::fs::write(root.join("pkg/readme.txt"), "").unwrap();
        std::fs::write(root.join("pkg/__pycache__/mod.py"), "").unwrap();
        let relevance = Relevance { roots: vec![root.clone()], filter: Filter::new(&[], &[]).unwrap() };
        let created = Ok(notify::Event::new(EventKind::Create(CreateKind::Folder)).add_path(root.join("pkg")));
        assert_eq!(relevance.of(created), [root.join("pkg/sub/mod.py")]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_writes_is_reported_once() {
        let (raw, events) = mpsc::unbounded_channel();
        let (changed, mut changes) = mpsc::unbounded_channel();
        tokio::spawn(debounce(events, relevance(), changed, |_: &Path| {}));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        for path in ["/app/a.py", "/app/b.py", "/app/a.py", "/app/notes.txt"] {
            raw.send(event(write, path)).unwrap();
            tokio::time::sleep(QUIET / 2).await;
        }
        assert_eq!(changes.recv().await.unwrap(), [PathBuf::from("/app/a.py"), PathBuf::from("/app/b.py")]);
        raw.send(event(write, "/app/c.py")).unwrap();
        assert_eq!(changes.recv().await.unwrap(), [PathBuf::from("/app/c.py")], "a later save is a burst of its own");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_that_never_goes_quiet_is_reported_all_the_same() {
        let (raw, events) = mpsc::unbounded_channel();
        let (changed, mut changes) = mpsc::unbounded_channel();
        tokio::spawn(debounce(events, relevance(), changed, |_: &Path| {}));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        let started = Instant::now();
        let writer = tokio::spawn(async move {
            loop {
                if raw.send(event(write, "/app/a.py")).is_err() {
                    return;
                }
                tokio::time::sleep(QUIET / 2).await;
            }
        });
        changes.recv().await.unwrap();
        assert!(started.elapsed() <= LONGEST_BURST + QUIET);
        writer.abort();
    }
}
