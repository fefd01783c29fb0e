//! Load generator for tickit-sync: runs one scenario against one running server on loopback,
//! closed loop (each simulated device syncs sequentially over its own HTTP/1 connection),
//! checks every answer, and prints one JSON result line on stdout; progress and errors go to
//! stderr. Exits non-zero, naming the cause, when an answer is not a 200, does not parse, or
//! a check fails.
//!
//! cargo run --release --example loadgen -- --url http://127.0.0.1:3030 \
//!     --tokens-file tokens.txt --pid "$SERVER_PID" --scenario feed --devices 16

mod client;
mod delivery;
mod device;
mod fleet;
mod records;
mod rss;
mod scenario;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use argh::FromArgs;
use serde_json::Value;

use crate::client::Target;
use crate::scenario::{Deletes, Scenario, Settings};
use crate::stats::Memory;

/// Runs one load scenario against a running tickit-sync server and prints one JSON line.
#[derive(FromArgs)]
struct Args {
    /// the server's base URL, e.g. http://127.0.0.1:3030 (loopback only)
    #[argh(option)]
    url: String,
    /// a file with one bearer token per line, one line per account
    #[argh(option)]
    tokens_file: PathBuf,
    /// the server's process id, to read its memory (VmRSS) from /proc
    #[argh(option)]
    pid: u32,
    /// poll, push, feed, households, full or tidy
    #[argh(option)]
    scenario: Scenario,
    /// seconds the timed phase lasts (default 10)
    #[argh(option, default = "10")]
    seconds: u64,
    /// devices of the single-account scenarios (default 16)
    #[argh(option, default = "16")]
    devices: usize,
    /// tasks the full and tidy scenarios seed (default 10000)
    #[argh(option, default = "10000")]
    tasks: usize,
    /// lists or tags the tidy scenario deletes in one request (default 2000)
    #[argh(option, default = "2000")]
    tombstones: usize,
    /// what the tidy scenario deletes: lists, tags or both (default tags)
    #[argh(option, default = "Deletes::Tags")]
    deletes: Deletes,
    /// tasks the tidy scenario's deleting request also uploads (default 0)
    #[argh(option, default = "0")]
    upload_tasks: usize,
    /// doomed tags on each task of the tidy scenario, when it deletes tags (default 1)
    #[argh(option, default = "1")]
    tags_per_task: usize,
    /// accounts of the households scenario, 3 devices each (default 1000)
    #[argh(option, default = "1000")]
    households: usize,
    /// send Accept-Encoding: gzip on every sync (full measures both ways regardless)
    #[argh(switch)]
    gzip: bool,
    /// households devices keep their connection between syncs (default: a new one per sync)
    #[argh(switch)]
    keep_alive: bool,
    /// the server is the original tickit-sync 0.2.1: skip the checks of what only ours
    /// promises (an empty answer to a poll once caught up)
    #[argh(switch)]
    original: bool,
    /// the label of the result line (default "ours")
    #[argh(option, default = "String::from(\"ours\")")]
    label: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let (name, label) = (args.scenario.name(), args.label.clone());
    match run(args).await {
        Ok(line) => {
            println!("{line}");
            report_failures(name, &line)
        }
        Err(error) => {
            eprintln!("loadgen: {name} ({label}) FAILED: {error}");
            println!("{}", stats::error_line(name, &label, &error));
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenario with its memory sampling around it; the result line.
async fn run(args: Args) -> Result<Value, String> {
    let settings = settings(&args).await?;
    let idle_kb = rss::read_kb(args.pid)?;
    eprintln!(
        "loadgen: {} ({}) against {}, {} s timed phase",
        args.scenario.name(),
        args.label,
        args.url,
        args.seconds
    );
    let sampler = rss::Sampler::start(args.pid, idle_kb);
    let outcome = args.scenario.run(&settings).await;
    let memory = Memory {
        idle_kb,
        peak_kb: sampler.finish(),
    };
    Ok(stats::result_line(
        args.scenario.name(),
        &args.label,
        outcome?,
        &memory,
    ))
}

async fn settings(args: &Args) -> Result<Settings, String> {
    if args.devices == 0 || args.households == 0 {
        return Err("--devices and --households must be at least 1".into());
    }
    Ok(Settings {
        target: Target::from_url(&args.url).await?,
        tokens: read_tokens(&args.tokens_file)?,
        run_for: Duration::from_secs(args.seconds),
        devices: args.devices,
        tasks: args.tasks,
        tombstones: args.tombstones,
        deletes: args.deletes,
        upload_tasks: args.upload_tasks,
        tags_per_task: args.tags_per_task,
        households: args.households,
        gzip: args.gzip,
        strict: !args.original,
        keep_alive: args.keep_alive,
        pid: args.pid,
    })
}

/// The tokens of `path`, one per non-empty line; at least one.
fn read_tokens(path: &Path) -> Result<Vec<Arc<str>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --tokens-file {}: {e}", path.display()))?;
    let tokens: Vec<Arc<str>> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(Arc::from)
        .collect();
    if tokens.is_empty() {
        return Err(format!("--tokens-file {} holds no token", path.display()));
    }
    Ok(tokens)
}

/// Exit status of a finished run: failure, with the failed checks on stderr, if any failed.
fn report_failures(name: &str, line: &Value) -> ExitCode {
    if line.get("ok").and_then(Value::as_bool) == Some(true) {
        return ExitCode::SUCCESS;
    }
    let failures = line.get("failures").and_then(Value::as_array);
    eprintln!(
        "loadgen: {name}: {} check(s) FAILED:",
        line.get("failed_checks").unwrap_or(&Value::Null)
    );
    for failure in failures.into_iter().flatten() {
        eprintln!("  - {}", failure.as_str().unwrap_or_default());
    }
    ExitCode::FAILURE
}
