//! The open-file limit: every connection holds a file descriptor, so the connections served
//! at once must stay under the process's limit (`ulimit -n`, or `LimitNOFILE=` in a systemd
//! service), with room left for the listener and the database. Past that limit new
//! connections could not even be accepted, and none could be shed to make room for them.

/// Descriptors kept for everything but connections: stdio, the listener, the database files
/// of the writer and its readers, the runtime's own, and connections being closed.
const RESERVED: u64 = 64;

/// How many connections the open-file limit leaves room for; `None` if it is unlimited or
/// cannot be read (it is read from /proc, without unsafe code).
pub fn connection_room() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let soft = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    usize::try_from(soft.saturating_sub(RESERVED).max(1)).ok()
}

/// The connections to serve at once: `[server] max_connections`, lowered to what `room`
/// allows, with a warning saying which limit to raise.
pub fn usable_connections(max_connections: usize, room: Option<usize>) -> usize {
    match room {
        Some(room) if room < max_connections => room,
        _ => max_connections,
    }
}

/// The warning for a limit too low for `max_connections`, if it is.
pub fn shortfall_warning(max_connections: usize, room: Option<usize>) -> Option<String> {
    let room = room.filter(|&room| room < max_connections)?;
    Some(format!(
        "warning: the open-file limit leaves room for {room} connections, fewer than \
         [server] max_connections ({max_connections}); serving at most {room} at once. Raise \
         the limit to at least {} (`ulimit -n`, or LimitNOFILE= in the systemd service), or \
         lower max_connections",
        max_connections as u64 + RESERVED
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_limit_lowers_the_connections_served_and_says_which_limit_to_raise() {
        assert_eq!(usable_connections(1024, Some(960)), 960);
        assert_eq!(usable_connections(1024, Some(5000)), 1024);
        assert_eq!(usable_connections(1024, None), 1024);
        let warning = shortfall_warning(1024, Some(960)).unwrap();
        assert!(warning.contains("at least 1088"), "{warning}");
        assert!(warning.contains("max_connections (1024)"), "{warning}");
        assert_eq!(shortfall_warning(1024, Some(5000)), None);
    }

    #[test]
    fn the_limit_of_this_process_can_be_read() {
        assert!(connection_room().is_some_and(|room| room >= 1));
    }
}
