//! How a command ends and where its results are printed (shared by the commands and the demo,
//! so neither depends on the other).

use std::io::Write;

use lookout_node::api::{ApiError, ErrorCode};
use serde::Serialize;

use crate::render::Style;

/// How a command ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done (exit 0).
    Done,
    /// `check` found nothing (exit 1).
    NothingFound,
}

/// Where and how results are printed.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    /// `--json`.
    pub json: bool,
    /// Colours.
    pub style: Style,
}

impl Out {
    /// Print text as it is (it ends with a newline).
    pub fn text(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// Print one JSON value on one line.
    pub fn json<T: Serialize>(&self, value: &T) -> Result<(), ApiError> {
        let line = serde_json::to_string(value)
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot write JSON: {e}")))?;
        self.text(&format!("{line}\n"));
        Ok(())
    }
}
