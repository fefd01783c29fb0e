//! One thing wrong with a config or a database, as validation finds it: how bad, where, and
//! what to do. `serve` stops at the first error; `check` lists every one, warnings too.
//! Also how messages count things.

use serde::Serialize;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The server would refuse to start, or the data is not sound.
    Error,
    /// Works, but deserves a look (an exposed secret, no tokens at all).
    Warning,
}

/// A problem, with the place it was found when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// Where: `config.toml line 3`, or a file when no line is to blame.
    pub place: Option<String>,
    /// What is wrong, and what to do about it.
    pub message: String,
    /// How an error stopping `serve` shows it, when not `place: message`: a TOML error,
    /// quoting the line at fault.
    #[serde(skip)]
    report: Option<String>,
}

impl Problem {
    /// An error at `place`.
    pub fn error(place: Option<String>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Error,
            place,
            message: message.into(),
            report: None,
        }
    }

    /// A warning at `place`.
    pub fn warning(place: Option<String>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(place, message)
        }
    }

    /// Has `serve` show it as `report` instead of `place: message`.
    pub fn reported_as(self, report: String) -> Problem {
        Problem {
            report: Some(report),
            ..self
        }
    }

    /// Whether it is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// How `serve` shows it when it stops at it: see [`Problem::reported_as`].
    pub fn report(&self) -> String {
        self.report.clone().unwrap_or_else(|| self.to_string())
    }
}

/// `place: message`, on one line.
impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.place {
            Some(place) => write!(f, "{place}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// `1 task`, `2 tasks`.
pub fn counted(number: impl std::fmt::Display, noun: &str) -> String {
    let number = number.to_string();
    let plural = if number == "1" { "" } else { "s" };
    format!("{number} {noun}{plural}")
}
