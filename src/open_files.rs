//! The open-file limit: every connection holds a file descriptor, so the connections served
//! at once must stay under the process's limit, with room left for the listener and the
//! database. Past it new connections could not even be accepted, let alone shed others to
//! make room. systemd starts services with a soft limit of 1024, for programs that use
//! select(); this one does not, so it raises the soft limit to the hard one when it needs to,
//! as systemd.exec(5) advises.

/// Descriptors kept for everything but connections: stdio, the listener, the database files
/// of the writer and its readers, the runtime's own, and connections being closed.
const RESERVED: u64 = 64;

/// Raises the soft open-file limit to the hard limit if it is too low for `max_connections`,
/// and returns how many connections the limit then leaves room for (`None`: no limit, or
/// it cannot be read).
pub fn make_room(max_connections: usize) -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only to the struct it is given, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let needed = max_connections as u64 + RESERVED;
    if limit.rlim_cur < needed && limit.rlim_max > limit.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given, which outlives the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(limit.rlim_cur.saturating_sub(RESERVED).max(1)).ok()
}

/// The connections to serve at once: `[server] max_connections`, lowered to what `room`
/// allows.
pub fn usable_connections(max_connections: usize, room: Option<usize>) -> usize {
    match room {
        Some(room) if room < max_connections => room,
        _ => max_connections,
    }
}

/// The warning for a limit that even raised is too low for `max_connections`, if it is.
pub fn shortfall_warning(max_connections: usize, room: Option<usize>) -> Option<String> {
    let room = room.filter(|&room| room < max_connections)?;
    Some(format!(
        "warning: the open-file limit leaves room for {room} connections, fewer than \
         [server] max_connections ({max_connections}); serving at most {room} at once. Raise \
         the limit to at least {} (`ulimit -Hn`, or LimitNOFILE= in the systemd service), or \
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
    fn the_limit_is_raised_up_to_the_hard_limit_for_the_connections_asked() {
        let room = make_room(2000).expect("a limit");
        let hard = std::fs::read_to_string("/proc/self/limits")
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("Max open files"))
            .and_then(|values| values.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap();
        assert!(
            room >= 2000 || room as u64 == hard - RESERVED,
            "{room} (hard {hard})"
        );
    }
}
