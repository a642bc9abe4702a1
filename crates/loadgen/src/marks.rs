//! Marks: with `--marks`, a load prints `{"mark": "start"}` and `{"mark": "end"}` lines on
//! stdout at the edges of what it measures, so that bench/run.py reads the server's and the
//! generator's CPU time there rather than over connecting and warming up. A load that can
//! pause there (fan-out, before its first burst and after its last) waits after each mark for
//! a line on stdin, so both sides are idle while the controller reads them.

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

pub struct Marks {
    /// `None` without `--marks`: then marking does nothing.
    controller: Option<Lines<BufReader<Stdin>>>,
}

impl Marks {
    pub fn new(enabled: bool) -> Self {
        Self { controller: enabled.then(|| BufReader::new(tokio::io::stdin()).lines()) }
    }

    pub fn enabled(&self) -> bool {
        self.controller.is_some()
    }

    /// Prints the mark without waiting: the load goes on while the controller reads it.
    pub fn pass(&self, name: &str) {
        if self.enabled() {
            println!("{}", json!({"mark": name, "wait": false}));
        }
    }

    /// Prints the mark and waits for the controller's line on stdin.
    pub async fn wait(&mut self, name: &str) -> Result<(), String> {
        let Some(controller) = self.controller.as_mut() else { return Ok(()) };
        println!("{}", json!({"mark": name, "wait": true}));
        match controller.next_line().await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!("stdin closed at mark {name:?}")),
            Err(error) => Err(format!("reading stdin at mark {name:?}: {error}")),
        }
    }
}
