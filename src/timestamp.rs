//! Timestamps as the clients write them: RFC 3339 text in, Unix nanoseconds for comparing,
//! and `server_time` out in the one shape every client compares correctly.
//!
//! The clients write any year from 0000 to 9999 (the desktop client cannot read back a year
//! of more or fewer digits from its own database). Parsed, an instant is exact as `i128`
//! nanoseconds across all of them. Stored and compared as `i64` nanoseconds, it is exact from
//! 1677-09-21 to 2262-04-11 and anything earlier or later saturates to that end of the range
//! ([`saturating_nanos`]): its order against every instant inside the range holds, and two
//! instants that meet at an end are told apart by the text they came from ([`unsaturated`]).

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime};
use jiff::fmt::temporal::Pieces;

/// Nanoseconds in one second.
const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// Nanoseconds in one millisecond.
const NANOS_PER_MILLISECOND: i128 = 1_000_000;
/// The civil date-time of Unix time 0.
const UNIX_EPOCH: DateTime = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
/// The earliest instant the clients can write and read back: 0000-01-01T00:00:00Z.
const EARLIEST: DateTime = DateTime::constant(0, 1, 1, 0, 0, 0, 0);
/// The latest instant the clients can write and read back: 9999-12-31T23:59:59.999999999Z.
const LATEST: DateTime = DateTime::MAX;

/// Parses an RFC 3339 timestamp (`2026-11-24T22:42:47.738719602Z`, `...+00:00`) to Unix
/// nanoseconds, exact for every instant from 0000 to 9999 in UTC. Refuses shapes the desktop
/// client could not read back, such as a missing seconds field or offset, a year without
/// exactly four digits, or an offset beyond ±23:59, even where jiff alone would be more
/// lenient; and an instant whose offset takes it out of those years in UTC, which the
/// desktop client would store (in UTC) as a year it cannot read back.
pub fn parse_instant(text: &str) -> Option<i128> {
    if !has_rfc3339_shape(text.as_bytes()) {
        return None;
    }
    let pieces = Pieces::parse(text).ok()?;
    let local = pieces.date().to_datetime(pieces.time()?);
    let offset = pieces.to_numeric_offset()?;
    let instant = nanos_since_epoch(local) - i128::from(offset.seconds()) * NANOS_PER_SECOND;
    let readable = nanos_since_epoch(EARLIEST)..=nanos_since_epoch(LATEST);
    readable.contains(&instant).then_some(instant)
}

/// Parses a due date: an RFC 3339 timestamp, or a bare `YYYY-MM-DD` (read as midnight UTC).
pub fn parse_due_date_instant(text: &str) -> Option<i128> {
    if text.len() == 10 {
        let date: Date = text.parse().ok()?;
        return Some(nanos_since_epoch(DateTime::from(date)));
    }
    parse_instant(text)
}

/// [`parse_instant`], mapped to `i64` nanoseconds by [`saturating_nanos`].
pub fn parse_nanos(text: &str) -> Option<i64> {
    parse_instant(text).map(saturating_nanos)
}

/// An instant as `i64` nanoseconds: exact from 1677-09-21 to 2262-04-11, and the nearest
/// end of that range for anything earlier or later.
pub fn saturating_nanos(instant: i128) -> i64 {
    i64::try_from(instant).unwrap_or(if instant < 0 { i64::MIN } else { i64::MAX })
}

/// Whether a stored instant sits at an end of the `i64` range, so it may have saturated.
pub fn at_range_end(nanos: i64) -> bool {
    nanos == i64::MIN || nanos == i64::MAX
}

/// The exact instant a stored one stands for: itself, or where it sits at an end of the
/// `i64` range, what `dated` reads from the text it came from.
pub fn unsaturated(stored: i64, dated: impl FnOnce() -> Option<i128>) -> i128 {
    at_range_end(stored)
        .then(dated)
        .flatten()
        .unwrap_or(i128::from(stored))
}

/// Formats an instant as `YYYY-MM-DDTHH:MM:SS.sssZ`, rounding down to the millisecond, so a
/// client that stores it never claims to have seen more than it was sent. An instant outside
/// the years the clients can read (0000 to 9999) is written as the nearest end of them.
pub fn format_instant(instant: i128) -> String {
    let earliest = nanos_since_epoch(EARLIEST);
    let latest = nanos_since_epoch(LATEST);
    let millis = instant
        .clamp(earliest, latest)
        .div_euclid(NANOS_PER_MILLISECOND);
    let since_epoch = SignedDuration::from_millis_i128(millis);
    UNIX_EPOCH
        .checked_add(since_epoch)
        .unwrap_or(UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Formats a server stamp for `server_time`, as [`format_instant`] does.
pub fn format_server_time(nanos: i64) -> String {
    format_instant(i128::from(nanos))
}

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

/// Nanoseconds from the Unix epoch to a civil date-time read as UTC.
fn nanos_since_epoch(utc: DateTime) -> i128 {
    utc.duration_since(UNIX_EPOCH).as_nanos()
}

/// `YYYY-MM-DDTHH:MM:SS`, optional `.fraction` (1-9 digits), then `Z` or `±HH:MM` (at most
/// 23:59, as the desktop client reads offsets).
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
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let number = |tens: u8, ones: u8| {
                (tens.is_ascii_digit() && ones.is_ascii_digit())
                    .then(|| (tens - b'0') * 10 + (ones - b'0'))
            };
            matches!(
                (number(*h1, *h2), number(*m1, *m2)),
                (Some(0..=23), Some(0..=59))
            )
        }
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
            parse_nanos("2026-11-24t22:42:47.738z"),
            Some(1_795_560_167_738_000_000)
        );
        assert_eq!(
            parse_due_date_instant("2026-12-03"),
            parse_instant("2026-12-03T00:00:00Z")
        );
        // A leap second, which the desktop client can write, reads as the second before.
        assert_eq!(
            parse_instant("2016-12-31T23:59:60Z"),
            parse_instant("2016-12-31T23:59:59Z")
        );
    }

    #[test]
    fn every_year_a_client_writes_is_exact() {
        const SECOND: i128 = 1_000_000_000;
        for (text, seconds) in [
            ("0000-01-01T00:00:00Z", -62_167_219_200),
            ("0001-01-01T00:00:00+00:00", -62_135_596_800),
            ("1600-01-01T00:00:00Z", -11_676_096_000),
            ("1601-01-01T00:00:00.000Z", -11_644_473_600),
            ("2300-01-01T00:00:00Z", 10_413_792_000),
            ("2301-01-01T00:00:00.000Z", 10_445_328_000),
        ] {
            assert_eq!(parse_instant(text), Some(seconds * SECOND), "{text}");
        }
        assert_eq!(
            parse_instant("9999-12-31T23:59:59.999999999Z"),
            Some(253_402_300_799 * SECOND + 999_999_999)
        );
        // An offset may move the local time across a year, within 0000-9999 in UTC.
        assert_eq!(
            parse_instant("9999-12-31T23:59:59+01:00"),
            Some(253_402_297_199 * SECOND)
        );
        assert_eq!(
            parse_instant("0000-01-01T00:00:00-01:00"),
            Some(-62_167_215_600 * SECOND)
        );
        assert_eq!(
            parse_due_date_instant("2300-01-01"),
            Some(10_413_792_000 * SECOND)
        );
        assert_eq!(
            parse_due_date_instant("1600-01-01"),
            Some(-11_676_096_000 * SECOND)
        );
        assert_eq!(
            parse_due_date_instant("9999-12-31T23:59:59+00:00"),
            Some(253_402_300_799 * SECOND)
        );
    }

    #[test]
    fn instants_beyond_i64_saturate_in_order() {
        let nanos = |text| parse_nanos(text).unwrap();
        assert_eq!(nanos("1600-01-01T00:00:00Z"), i64::MIN);
        assert_eq!(nanos("0000-01-01T00:00:00Z"), i64::MIN);
        assert_eq!(nanos("2300-01-01T00:00:00Z"), i64::MAX);
        assert_eq!(nanos("9999-12-31T23:59:59.999999999Z"), i64::MAX);
        // Nanosecond precision right up to each end of the range.
        assert_eq!(nanos("1677-09-21T00:12:43.145224192Z"), i64::MIN);
        assert_eq!(nanos("1677-09-21T00:12:43.145224193Z"), i64::MIN + 1);
        assert_eq!(nanos("2262-04-11T23:47:16.854775806Z"), i64::MAX - 1);
        assert_eq!(nanos("2262-04-11T23:47:16.854775807Z"), i64::MAX);
        let dated_1600 = || parse_instant("1600-01-01T00:00:00Z");
        assert_eq!(unsaturated(i64::MIN, dated_1600), dated_1600().unwrap());
        assert_eq!(unsaturated(i64::MIN, || None), i128::from(i64::MIN));
        assert_eq!(unsaturated(-1, dated_1600), -1);
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
            "2026-11-24T22:42:47+24:00",
            "2026-11-24T22:42:47-01:60",
            // Years outside 0000-9999 as chrono writes them (`{year:+05}`) and as JavaScript's
            // toISOString does: the desktop client cannot read either back from its database.
            "+10000-01-01T00:00:00Z",
            "-0001-12-31T23:59:59Z",
            "+010000-01-01T00:00:00.000Z",
            "-000001-12-31T23:59:59.000Z",
            // Four-digit years whose offset takes them out of 0000-9999 in UTC.
            "9999-12-31T23:59:59.999999999-23:59",
            "9999-12-31T23:00:00-01:00",
            "0000-01-01T00:00:00+00:01",
        ] {
            assert_eq!(parse_instant(text), None, "{text}");
        }
        for text in ["+10000-01-01", "-0001-01-01", "2026-1-1", "2026-02-30"] {
            assert_eq!(parse_due_date_instant(text), None, "{text}");
        }
    }

    #[test]
    fn server_time_is_javascript_shaped_and_rounded_down() {
        assert_eq!(
            format_server_time(1_795_560_167_738_999_999),
            "2026-11-24T22:42:47.738Z"
        );
        assert_eq!(format_server_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_server_time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn instants_format_across_the_years_clients_read() {
        for text in [
            "0000-01-01T00:00:00.000Z",
            "1600-01-01T00:00:00.001Z",
            "2300-01-01T00:00:00.999Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            assert_eq!(format_instant(parse_instant(text).unwrap()), text);
        }
        // A version moved a millisecond past the last instant, and one before the first.
        let last = parse_instant("9999-12-31T23:59:59.999999999Z").unwrap();
        assert_eq!(format_instant(last + 1_000_000), "9999-12-31T23:59:59.999Z");
        let first = parse_instant("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(format_instant(first - 1), "0000-01-01T00:00:00.000Z");
    }
}
