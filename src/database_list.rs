//! The databases the background worker serves: the `campaign_counters.databases` setting, parsed.

use std::fmt;

/// A database name is at most NAMEDATALEN - 1 bytes; PostgreSQL would silently truncate a longer one.
const MAX_NAME_BYTES: usize = 63;

/// What is wrong with a database list.
#[derive(Debug, PartialEq, Eq)]
pub enum ListError {
    /// Nothing between two commas, or before the first or after the last.
    EmptyName,
    TooLong(String),
    Repeated(String),
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ListError::EmptyName => write!(f, "an empty database name"),
            ListError::TooLong(name) => write!(
                f,
                "database name \"{name}\" is longer than {MAX_NAME_BYTES} bytes"
            ),
            ListError::Repeated(name) => write!(f, "database \"{name}\" is named twice"),
        }
    }
}

/// The names of a comma-separated list, each trimmed of surrounding whitespace and otherwise as
/// written (case kept, as in `pg_database.datname`). A blank list names no database: no worker.
pub fn parse(list: &str) -> Result<Vec<String>, ListError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(ListError::EmptyName);
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(ListError::TooLong(name.to_string()));
        }
        if names.iter().any(|known| known == name) {
            return Err(ListError::Repeated(name.to_string()));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_trimmed_and_kept_as_written() {
        assert_eq!(
            parse(" postgres, Sales DB ,app").unwrap(),
            ["postgres", "Sales DB", "app"]
        );
    }

    #[test]
    fn a_blank_list_names_nothing() {
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
        assert_eq!(parse("  ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn empty_long_and_repeated_names_are_refused() {
        assert_eq!(parse("app,,postgres"), Err(ListError::EmptyName));
        assert_eq!(parse("app,"), Err(ListError::EmptyName));
        let long = "d".repeat(64);
        assert_eq!(parse(&format!("app,{long}")), Err(ListError::TooLong(long)));
        assert!(parse(&"d".repeat(63)).is_ok());
        assert_eq!(
            parse("app, postgres ,app"),
            Err(ListError::Repeated("app".into()))
        );
    }

    proptest! {
        /// Any list of distinct valid names, joined with commas and padded, parses back to itself.
        #[test]
        fn joined_names_parse_back(
            names in proptest::collection::vec("[A-Za-z0-9_ -]{0,40}[A-Za-z0-9_]", 1..6),
            padding in " {0,3}",
        ) {
            let names: Vec<String> = names.into_iter().map(|name| name.trim().to_string()).collect();
            prop_assume!(names.iter().enumerate().all(|(i, name)| !names[..i].contains(name)));
            let list = names
                .iter()
                .map(|name| format!("{padding}{name}{padding}"))
                .collect::<Vec<_>>()
                .join(",");
            prop_assert_eq!(parse(&list).unwrap(), names);
        }
    }
}
