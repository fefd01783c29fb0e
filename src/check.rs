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
    config_problems: Vec<Problem>,
    /// The settings and what inspecting their database found, unless the config could not
    /// be read at all.
    read: Option<(Config, store::Inspection)>,
}

/// Checks the config at `path` and the database it names; prints the findings (as JSON
/// when `json`) and returns the exit code: failure when any is an error.
pub fn run(path: &Path, json: bool) -> ExitCode {
    let (read, config_problems) = match config::inspect(path, &Overrides::default()) {
        Ok((config, problems)) => {
            let found = store::inspect(&config.database);
            (Some((config, found)), problems)
        }
        Err(problem) => (None, vec![problem]),
    };
    let report = Report {
        config_path: path,
        config_problems,
        read,
    };
    if json {
        println!("{:#}", report.json());
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
        let database = self.read.iter().flat_map(|(_, found)| &found.problems);
        self.config_problems.iter().chain(database)
    }

    fn count(&self, severity: Severity) -> usize {
        self.problems().filter(|p| p.severity == severity).count()
    }

    /// One line per finding, each part's `ok` line when it has no error, and the verdict.
    fn lines(&self) -> String {
        let mut out = String::new();
        let config_ok = !self.config_problems.iter().any(Problem::is_error);
        if let (Some((config, _)), true) = (&self.read, config_ok) {
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
        if let Some((config, found)) = &self.read {
            let path = config.database.display();
            if !found.problems.iter().any(Problem::is_error) {
                out += &format!("ok: database {path}: {}\n", described(found));
            }
            for problem in &found.problems {
                out += &format!("{}: database {path}: {problem}\n", severity(problem));
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
        match &self.read {
            Some((config, found)) if errors == 0 => {
                let path = config.database.display();
                let database = match (found.schema_version, &found.stats) {
                    (Some(version), Some(stats)) => format!(
                        "database {path} schema {version}, {}",
                        counted(stats.records, "record")
                    ),
                    _ => format!("database {path}: {}", described(found)),
                };
                format!(
                    "check: healthy{warned} (config {}, {}; {database})",
                    self.config_path.display(),
                    tokens(config)
                )
            }
            read => {
                let meaning = if read.is_none() {
                    "the config cannot be read"
                } else if self.config_problems.iter().any(Problem::is_error) {
                    "the server would not start"
                } else {
                    "the database needs attention"
                };
                format!("check: {}{warned}: {meaning}", counted(errors, "error"))
            }
        }
    }

    /// The report as one JSON object (the shape README's "Checking an installation" shows).
    fn json(&self) -> Value {
        json!({
            "ok": self.count(Severity::Error) == 0,
            "verdict": self.verdict(),
            "config": {
                "path": self.config_path,
                "tokens": self.read.as_ref().map(|(config, _)| config.tokens.len()),
                "problems": self.config_problems,
            },
            "database": self.read.as_ref().map(|(config, found)| json!({
                "path": config.database,
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
