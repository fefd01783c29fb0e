//! Timestamps as the clients write them: RFC 3339 text in, Unix nanoseconds for comparing,
//! and `server_time` out in the one shape every client compares correctly.

use jiff::Timestamp;

/// Parses an RFC 3339 timestamp (`2026-11-24T22:42:47.738719602Z`, `...+00:00`) to Unix
/// nanoseconds. Refuses shapes the desktop client could not read back, such as a missing
/// seconds field or offset, even where jiff alone would be more lenient.
pub fn parse_nanos(text: &str) -> Option<i64> {
    if !has_rfc3339_shape(text.as_bytes()) {
        return None;
    }
    let instant: Timestamp = text.parse().ok()?;
    i64::try_from(instant.as_nanosecond()).ok()
}

/// Parses a due date: an RFC 3339 timestamp, or a bare `YYYY-MM-DD` (read as midnight UTC).
pub fn parse_due_date_nanos(text: &str) -> Option<i64> {
    if text.len() == 10 {
        let date: jiff::civil::Date = text.parse().ok()?;
        let instant = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
        return i64::try_from(instant.as_nanosecond()).ok();
    }
    parse_nanos(text)
}

/// Formats an instant as `YYYY-MM-DDTHH:MM:SS.sssZ`, rounding down to the millisecond, so a
/// client that stores it never claims to have seen more than it was sent.
pub fn format_server_time(nanos: i64) -> String {
    let millis = nanos.div_euclid(1_000_000);
    let instant = Timestamp::from_millisecond(millis).unwrap_or(Timestamp::UNIX_EPOCH);
    instant.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    i64::try_from(Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

/// `YYYY-MM-DDTHH:MM:SS`, optional `.fraction` (1-9 digits), then `Z` or `±HH:MM`.
fn has_rfc3339_shape(b: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let date_time = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && (at(10, b'T') || at(10, b't'))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19);
    if !date_time {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let count = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&count) {
            return false;
        }
        rest = &fraction[count..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_spelling_the_clients_use() {
        assert_eq!(
            parse_nanos("2026-11-24T22:42:47.738719602Z"),
            Some(1_795_560_167_738_719_602)
        );
        assert_eq!(
            parse_nanos("2026-11-24T22:42:47.738Z"),
            Some(1_795_560_167_738_000_000)
        );
        assert_eq!(
            parse_nanos("2026-11-24T23:42:47.738+01:00"),
            Some(1_795_560_167_738_000_000)
        );
        assert_eq!(
            parse_due_date_nanos("2026-12-03"),
            parse_nanos("2026-12-03T00:00:00Z")
        );
    }

    #[test]
    fn refuses_what_a_client_could_not_read() {
        for text in [
            "2026-11-24",
            "2026-11-24T22:42Z",
            "2026-11-24T22:42:47",
            "2026-11-24T22:42:47.Z",
            "2026-11-24T22:42:47.1234567890Z",
            "yesterday",
            "2026-13-24T22:42:47Z",
        ] {
            assert_eq!(parse_nanos(text), None, "{text}");
        }
    }

    #[test]
    fn server_time_is_javascript_shaped_and_rounded_down() {
        assert_eq!(
            format_server_time(1_795_560_167_738_999_999),
            "2026-11-24T22:42:47.738Z"
        );
        assert_eq!(format_server_time(0), "1970-01-01T00:00:00.000Z");
    }
}
