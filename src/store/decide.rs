//! Who wins: last-write-wins between an incoming version of a record and the stored one,
//! as a pure function.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::protocol::{Kind, content_key, semantic_key, version_instant};
use crate::timestamp::unsaturated;

/// What to do with one incoming version, given the stored one.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing stored yet: store it.
    Insert,
    /// The same version is stored already (a replay, or another device re-sending it).
    Same,
    /// The incoming version wins: replace the stored one.
    Replace,
    /// The stored version wins: report a conflict and send the winner back.
    Lose,
}

/// One version of a record as compared by last-write-wins.
#[derive(Debug)]
pub struct Version<'a> {
    pub kind: Kind,
    pub deleted: bool,
    /// The instant it competes at, in `i64` nanoseconds (saturating beyond 1677 and 2262).
    pub instant: i64,
    pub body: &'a Map<String, Value>,
}

/// Last write wins at nanosecond precision; a version that says the same as the stored one,
/// whatever its `updated_at`, changes nothing. Two versions dated beyond the same end of the
/// `i64` range are ordered by their own dates. At the same instant a tombstone beats a record,
/// and two different versions are ordered by their semantic keys, so the outcome never depends
/// on which device arrived first.
pub fn decide(incoming: &Version, stored: Option<&Version>) -> Decision {
    let Some(stored) = stored else {
        return Decision::Insert;
    };
    let both_records = !incoming.deleted && !stored.deleted;
    if both_records
        && content_key(incoming.kind, incoming.body) == content_key(stored.kind, stored.body)
    {
        return Decision::Same;
    }
    let by_instant = incoming
        .competes_at()
        .cmp(&stored.competes_at())
        .then(incoming.deleted.cmp(&stored.deleted));
    let order = match by_instant {
        Ordering::Equal => {
            let incoming_key = semantic_key(incoming.kind, incoming.deleted, incoming.body);
            let stored_key = semantic_key(stored.kind, stored.deleted, stored.body);
            incoming_key.cmp(&stored_key)
        }
        other => other,
    };
    match order {
        Ordering::Greater => Decision::Replace,
        Ordering::Equal => Decision::Same,
        Ordering::Less => Decision::Lose,
    }
}

impl Version<'_> {
    /// The exact instant it competes at. Where `instant` saturated (a device clock centuries
    /// slow dated the version before 1677), that is the date in its text, since a version
    /// competes at its own date whenever that is earlier than its arrival. (A record whose
    /// `updated_at` the server has since moved forward, so that devices apply it, then
    /// competes as if dated then.)
    fn competes_at(&self) -> i128 {
        unsaturated(self.instant, || version_instant(self.deleted, self.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn version(deleted: bool, instant: i64, body: &Map<String, Value>) -> Version<'_> {
        Version {
            kind: Kind::Tag,
            deleted,
            instant,
            body,
        }
    }

    const RED: &str = r##"{"id":"083f62a4-7e11-459f-9403-9136b2e4b7b8","name":"a","color":"#f00","created_at":"2026-11-24T22:45:21Z","updated_at":"2026-11-24T22:45:21Z"}"##;
    const BLUE: &str = r##"{"id":"083f62a4-7e11-459f-9403-9136b2e4b7b8","name":"a","color":"#00f","created_at":"2026-11-24T22:45:21Z","updated_at":"2026-11-24T22:45:21Z"}"##;

    #[test]
    fn later_instant_wins_either_way() {
        let (red, blue) = (body(RED), body(BLUE));
        assert_eq!(
            decide(&version(false, 2, &blue), Some(&version(false, 1, &red))),
            Decision::Replace
        );
        assert_eq!(
            decide(&version(false, 1, &blue), Some(&version(false, 2, &red))),
            Decision::Lose
        );
        assert_eq!(decide(&version(false, 1, &red), None), Decision::Insert);
    }

    #[test]
    fn nanoseconds_matter() {
        let (red, blue) = (body(RED), body(BLUE));
        assert_eq!(
            decide(
                &version(false, 1_000_000_001, &blue),
                Some(&version(false, 1_000_000_000, &red))
            ),
            Decision::Replace
        );
    }

    #[test]
    fn versions_dated_before_1677_are_ordered_by_their_dates() {
        let dated = |json: &str, date: &str| body(&json.replace("2026-11-24T22:45:21Z", date));
        let red_1600 = dated(RED, "1600-01-01T00:00:00Z");
        let blue_1601 = dated(BLUE, "1601-01-01T00:00:00Z");
        // Both saturate to the same stored instant; the later date still wins either way.
        let end = i64::MIN;
        assert_eq!(
            decide(
                &version(false, end, &blue_1601),
                Some(&version(false, end, &red_1600))
            ),
            Decision::Replace
        );
        assert_eq!(
            decide(
                &version(false, end, &red_1600),
                Some(&version(false, end, &blue_1601))
            ),
            Decision::Lose
        );
        let gone_1600 = body(r#"{"deleted_at":"1600-06-01T00:00:00Z"}"#);
        assert_eq!(
            decide(
                &version(true, end, &gone_1600),
                Some(&version(false, end, &blue_1601))
            ),
            Decision::Lose
        );
        assert_eq!(
            decide(
                &version(false, end, &blue_1601),
                Some(&version(true, end, &gone_1600))
            ),
            Decision::Replace
        );
    }

    #[test]
    fn the_same_content_at_another_instant_changes_nothing() {
        let red = body(RED);
        let restamped = body(&RED.replace(
            r#""updated_at":"2026-11-24T22:45:21Z""#,
            r#""updated_at":"2026-11-25T08:00:00Z""#,
        ));
        for (incoming, stored) in [(9, 5), (5, 9)] {
            assert_eq!(
                decide(
                    &version(false, incoming, &restamped),
                    Some(&version(false, stored, &red))
                ),
                Decision::Same
            );
        }
    }

    #[test]
    fn tombstone_wins_a_tie_and_newer_update_resurrects() {
        let red = body(RED);
        let gone = body(r#"{"deleted_at":"2026-11-24T22:45:21Z"}"#);
        assert_eq!(
            decide(&version(true, 5, &gone), Some(&version(false, 5, &red))),
            Decision::Replace
        );
        assert_eq!(
            decide(&version(false, 5, &red), Some(&version(true, 5, &gone))),
            Decision::Lose
        );
        assert_eq!(
            decide(&version(false, 6, &red), Some(&version(true, 5, &gone))),
            Decision::Replace
        );
    }

    #[test]
    fn identical_version_is_a_no_op_and_ties_do_not_depend_on_arrival_order() {
        let (red, blue) = (body(RED), body(BLUE));
        assert_eq!(
            decide(&version(false, 5, &red), Some(&version(false, 5, &red))),
            Decision::Same
        );
        let red_first = decide(&version(false, 5, &blue), Some(&version(false, 5, &red)));
        let blue_first = decide(&version(false, 5, &red), Some(&version(false, 5, &blue)));
        assert_ne!(red_first, blue_first);
        assert!([red_first, blue_first].contains(&Decision::Replace));
    }
}
