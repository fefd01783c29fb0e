//! The scenarios, and what they share: the server, the tokens and the command-line settings.

mod feed;
mod full;
mod households;
mod poll;
mod push;
mod tidy;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Target;
use crate::device::Device;
use crate::stats::Outcome;

/// Which load to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Devices of one account syncing with nothing to upload.
    Poll,
    /// Devices each uploading 5 new tasks per sync, spread over the accounts given (one per
    /// device isolates the write path: nothing comes back).
    Push,
    /// Devices of one account each uploading 1 new task per sync, all receiving each other's.
    Feed,
    /// Many accounts of 3 devices, each device on its own cadence with a few edits.
    Households,
    /// A full sync of an account seeded with many tasks.
    Full,
    /// One request deleting the lists or tags of many stored tasks, while another account
    /// syncs.
    Tidy,
}

impl Scenario {
    /// Its name on the command line and in the result line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Push => "push",
            Self::Feed => "feed",
            Self::Households => "households",
            Self::Full => "full",
            Self::Tidy => "tidy",
        }
    }

    /// Runs it to its end.
    pub async fn run(self, settings: &Settings) -> Result<Outcome, String> {
        match self {
            Self::Poll => poll::run(settings).await,
            Self::Push => push::run(settings).await,
            Self::Feed => feed::run(settings).await,
            Self::Households => households::run(settings).await,
            Self::Full => full::run(settings).await,
            Self::Tidy => tidy::run(settings).await,
        }
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        [
            Self::Poll,
            Self::Push,
            Self::Feed,
            Self::Households,
            Self::Full,
            Self::Tidy,
        ]
        .into_iter()
        .find(|scenario| scenario.name() == name)
        .ok_or_else(|| {
            format!("unknown scenario {name:?}; one of poll, push, feed, households, full, tidy")
        })
    }
}

/// What the tidy scenario deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletes {
    /// Lists only.
    Lists,
    /// Tags only.
    Tags,
    /// Half lists, half tags.
    Both,
}

impl Deletes {
    /// Its name on the command line and in the result line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lists => "lists",
            Self::Tags => "tags",
            Self::Both => "both",
        }
    }
}

impl FromStr for Deletes {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        [Self::Lists, Self::Tags, Self::Both]
            .into_iter()
            .find(|deletes| deletes.name() == name)
            .ok_or_else(|| format!("unknown --deletes {name:?}; one of lists, tags, both"))
    }
}

/// What every scenario is run with.
pub struct Settings {
    /// The server.
    pub target: Target,
    /// One bearer token per account.
    pub tokens: Vec<Arc<str>>,
    /// Length of the timed phase.
    pub run_for: Duration,
    /// Devices of the single-account scenarios.
    pub devices: usize,
    /// Tasks the full and tidy scenarios seed.
    pub tasks: usize,
    /// Lists or tags the tidy scenario deletes in one request.
    pub tombstones: usize,
    /// Which the tidy scenario deletes.
    pub deletes: Deletes,
    /// Tasks the tidy scenario's deleting request also uploads.
    pub upload_tasks: usize,
    /// Doomed tags on each task of the tidy scenario.
    pub tags_per_task: usize,
    /// Accounts of the households scenario.
    pub households: usize,
    /// Ask for gzipped answers (`Accept-Encoding: gzip`) on every sync.
    pub gzip: bool,
    /// Also check what only our server promises (no changes for an empty poll).
    pub strict: bool,
    /// Households devices keep their connection between syncs.
    pub keep_alive: bool,
    /// The server's process id.
    pub pid: u32,
}

impl Settings {
    /// `count` devices of the first account, named d0, d1, ..., each with its own
    /// keep-alive connection.
    pub fn account_devices(&self, count: usize) -> Vec<Device> {
        let token = self.tokens[0].clone();
        Device::many(
            count,
            &self.target,
            true,
            self.gzip,
            |_| (0, token.clone()),
            |i| format!("d{i}"),
        )
    }

    /// `count` devices named d0, d1, ..., spread over the accounts in turn, each with its
    /// own keep-alive connection.
    pub fn spread_devices(&self, count: usize) -> Vec<Device> {
        Device::many(
            count,
            &self.target,
            true,
            self.gzip,
            |i| {
                let account = i % self.tokens.len();
                (account, self.tokens[account].clone())
            },
            |i| format!("d{i}"),
        )
    }
}
