//! Counting modes of an attachment: immediate (each write adds to its campaign rows) or deferred (each write records a pending change that a fold adds later).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Each write adds its change to the campaign rows in its own transaction: exact at once,
    /// but the writers of one campaign take turns on its row.
    Immediate,
    /// Each write appends its change to the pending changes and leaves the campaign rows alone:
    /// writers of one campaign never wait for each other; the rows lag until the next fold.
    Deferred,
}

impl Mode {
    pub const ACCEPTED: &'static str = "immediate, deferred";

    /// The mode named `name` (as SQL spells it), None for any other name.
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "immediate" => Some(Mode::Immediate),
            "deferred" => Some(Mode::Deferred),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Immediate => "immediate",
            Mode::Deferred => "deferred",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_name_parses_back_to_its_mode() {
        for name in Mode::ACCEPTED.split(", ") {
            let mode = Mode::parse(name).unwrap();
            assert_eq!(mode.name(), name);
        }
    }

    #[test]
    fn other_spellings_are_refused() {
        for name in ["", "Deferred", "IMMEDIATE", "lazy", " deferred"] {
            assert_eq!(Mode::parse(name), None, "{name:?}");
        }
    }
}
