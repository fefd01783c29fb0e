//! `check`: inspects the config and the database without changing either, and prints what
//! it found and a verdict, as lines for a person or as one JSON object; the exit code says
//! whether anything is wrong (warnings aside), for a timer or a container health check.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};

use crate::config::{self, Config, Overrides};
use crate::problem::{Problem, Severity, counted};
use crate::store::{self, SCHEMA_VERSION};

/// Everything `check` found.
struct Report<'a> {
    config_path: &'a Path,
    /// The settings, unless the config could not be read at all.
    config: Option<Config>,
    config_problems: Vec<Problem>,
    /// The database the config names, once the config was read.
    database: Option<store::Inspection>,
}

/// Checks the config at `path` and the database it names; prints the findings (as JSON
/// when `json`) and returns the exit code: failure when any is an error.
pub fn run(path: &Path, json: bool) -> ExitCode {
    let (config, config_problems) = match config::inspect(path, &Overrides::default()) {
        Ok((config, problems)) => (Some(config), problems),
        Err(problem) => (None, vec![problem]),
    };
    let database = config
        .as_ref()
        .map(|config| store::inspect(&config.database));
    let report = Report {
        config_path: path,
        config,
        config_problems,
        database,
    };
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.lines());
    }
    match report.count(Severity::Error) {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

impl Report<'_> {
    fn problems(&self) -> impl Iterator<Item = &Problem> {
        let database = self.database.iter().flat_map(|found| &found.problems);
        self.config_problems.iter().chain(database)
    }

    fn count(&self, severity: Severity) -> usize {
        self.problems().filter(|p| p.severity == severity).count()
    }

    /// The database file, once the config named it.
    fn database_path(&self) -> Option<&Path> {
        self.config.as_ref().map(|config| config.database.as_path())
    }

    /// One line per finding, each part's `ok` line when it has no error, and the verdict.
    fn lines(&self) -> String {
        let mut out = String::new();
        let config_ok = !self.config_problems.iter().any(Problem::is_error);
        if let (Some(config), true) = (&self.config, config_ok) {
            let files = config
                .source_files()
                .iter()
                .map(|file| file.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ");
            out += &format!("ok: config {files}: {}\n", tokens(config));
        }
        for problem in &self.config_problems {
            out += &format!("{}: {problem}\n", severity(problem));
        }
        if let (Some(path), Some(found)) = (self.database_path(), &self.database) {
            if !found.problems.iter().any(Problem::is_error) {
                out += &format!("ok: database {}: {}\n", path.display(), described(found));
            }
            for problem in &found.problems {
                out += &format!(
                    "{}: database {}: {problem}\n",
                    severity(problem),
                    path.display()
                );
            }
        }
        out + &self.verdict() + "\n"
    }

    /// `check: healthy (...)`, or how many errors and warnings and what they mean.
    fn verdict(&self) -> String {
        let (errors, warnings) = (self.count(Severity::Error), self.count(Severity::Warning));
        let warned = match warnings {
            0 => String::new(),
            _ => format!(", {}", counted(warnings, "warning")),
        };
        if errors > 0 {
            let meaning = if self.config.is_none() {
                "the config cannot be read"
            } else if self.config_problems.iter().any(Problem::is_error) {
                "the server would not start"
            } else {
                "the database needs attention"
            };
            return format!("check: {}{warned}: {meaning}", counted(errors, "error"));
        }
        let config = match &self.config {
            Some(config) => format!("config {}, {}", self.config_path.display(), tokens(config)),
            None => format!("config {}", self.config_path.display()),
        };
        let database = match (self.database_path(), &self.database) {
            (Some(path), Some(found)) => match (found.schema_version, &found.stats) {
                (Some(version), Some(stats)) => format!(
                    "database {} schema {version}, {}",
                    path.display(),
                    counted(stats.records, "record")
                ),
                _ => format!("database {}: {}", path.display(), described(found)),
            },
            _ => "no database".into(),
        };
        format!("check: healthy{warned} ({config}; {database})")
    }

    /// The report as one JSON object (the shape README's "Checking an installation" shows).
    fn json(&self) -> Value {
        let database = self.database_path().zip(self.database.as_ref());
        json!({
            "ok": self.count(Severity::Error) == 0,
            "verdict": self.verdict(),
            "config": {
                "path": self.config_path,
                "tokens": self.config.as_ref().map(|config| config.tokens.len()),
                "problems": self.config_problems,
            },
            "database": database.map(|(path, found)| json!({
                "path": path,
                "exists": found.exists,
                "schema_version": found.schema_version,
                "latest_schema_version": SCHEMA_VERSION,
                "accounts": found.stats.map(|stats| stats.accounts),
                "devices": found.stats.map(|stats| stats.devices),
                "records": found.stats.map(|stats| stats.records),
                "problems": found.problems,
            })),
        })
    }
}

/// What a database without errors holds, or why there is nothing in it to check yet.
fn described(found: &store::Inspection) -> String {
    match (found.exists, found.schema_version, &found.stats) {
        (false, _, _) => "not there yet; `serve` creates it".into(),
        (_, Some(version), Some(stats)) => {
            let upgrade = match version < SCHEMA_VERSION {
                true => format!(" (`serve` upgrades it to {SCHEMA_VERSION} when it next starts)"),
                false => String::new(),
            };
            format!(
                "schema version {version}{upgrade}, {} in {} and {}; intact, inbox rules hold",
                counted(stats.records, "record"),
                counted(stats.accounts, "account"),
                counted(stats.devices, "device"),
            )
        }
        // Read without error, yet without this server's tables: schema version 0.
        _ => "not set up yet (schema version 0); `serve` sets it up, and imports the \
              original tickit-sync's tables if it holds them"
            .into(),
    }
}

fn tokens(config: &Config) -> String {
    counted(config.tokens.len(), "token")
}

fn severity(problem: &Problem) -> &'static str {
    match problem.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}
