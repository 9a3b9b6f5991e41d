//! Errors as values: each carries its SQLSTATE, message, detail and hint, and is raised once, at the SQL boundary.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// An error the extension reports to the caller.
#[derive(Debug)]
pub struct Error {
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: PgSqlErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Error {
        self.detail = Some(detail.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// Reports the error as a PostgreSQL ERROR, which aborts the (sub)transaction. Never returns.
    pub fn raise(self) -> ! {
        let mut report = ErrorReport::new(self.code, self.message, "campaign_counters");
        if let Some(detail) = self.detail {
            report = report.set_detail(detail);
        }
        if let Some(hint) = self.hint {
            report = report.set_hint(hint);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }

    /// `table` is not attached (42704, in every function and in the trigger alike).
    pub fn not_attached(table: &str) -> Error {
        Error::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("table {table} is not attached to campaign_counters"),
        )
    }
}

/// pgrx reports its own SPI failures (not PostgreSQL errors, which keep their SQLSTATE and
/// propagate as ERRORs) as values; they mean a bug in the extension's queries.
impl From<pgrx::spi::Error> for Error {
    fn from(error: pgrx::spi::Error) -> Error {
        Error::new(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("campaign_counters: SPI: {error}"),
        )
    }
}

/// Reading a trigger's relation or a row of it failed: a bug in the extension, not user input.
macro_rules! internal_from {
    ($($source:ty),*) => {$(
        impl From<$source> for Error {
            fn from(error: $source) -> Error {
                Error::new(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    format!("campaign_counters: {error}"),
                )
            }
        }
    )*};
}
internal_from!(pgrx::PgTriggerError, pgrx::datum::TryFromDatumError);

/// The value of an entry point's result, or its error raised as an ERROR.
pub fn or_raise<T>(result: Result<T>) -> T {
    result.unwrap_or_else(|error| error.raise())
}
