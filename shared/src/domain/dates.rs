//! HubSpot's date and time values, and the calendar dates board keeps.

use time::{OffsetDateTime, UtcOffset};

/// Asia/Tokyo: the zone of a portal whose own is not known (yet).
pub const TOKYO: UtcOffset = time::macros::offset!(+9);

/// A HubSpot datetime (RFC 3339 or epoch milliseconds) in epoch milliseconds.
pub fn parse_time_ms(value: &str) -> Option<i64> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .or_else(|| value.parse::<i64>().ok())
}

/// An RFC 3339 instant.
pub fn parse_instant(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok()
}

/// A HubSpot datetime as a calendar date in Asia/Tokyo.
pub fn jst_date(value: &str) -> Option<String> {
    portal_date(value, TOKYO)
}

/// Midnight of a board calendar date (`YYYY-MM-DD`) in the portal's zone, as
/// epoch milliseconds (how HubSpot's date properties take a date).
pub fn midnight_ms(date: &str, zone: UtcOffset) -> Option<String> {
    let date = time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some((date.midnight().assume_offset(zone).unix_timestamp() * 1000).to_string())
}

/// A HubSpot datetime as a calendar date in the portal's time zone.
pub fn portal_date(value: &str, zone: UtcOffset) -> Option<String> {
    let t = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .or_else(|| {
            value
                .parse::<i64>()
                .ok()
                .and_then(|ms| OffsetDateTime::from_unix_timestamp(ms / 1000).ok())
        })?;
    let d = t.to_offset(zone).date();
    Some(format!(
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Given a HubSpot time late in the evening in Tokyo, when it becomes a board
    // date, then it stays on its Tokyo day.
    #[test]
    fn late_evening_in_tokyo_stays_on_its_day() {
        // 23:30 JST on 2026-12-24 is 14:30 UTC the same day; 00:30 JST is the previous day in UTC.
        assert_eq!(
            jst_date("2026-12-24T14:30:00Z").as_deref(),
            Some("2026-12-24")
        );
        assert_eq!(
            jst_date("2026-12-24T15:30:00Z").as_deref(),
            Some("2026-12-25")
        );
        assert_eq!(jst_date("not a date"), None);
    }

    // Given a portal in New York, when a HubSpot time becomes a board date and a
    // board date becomes HubSpot's, then both follow the portal's day, not Tokyo's.
    #[test]
    fn a_portal_elsewhere_keeps_its_own_day() {
        let new_york = UtcOffset::from_hms(-5, 0, 0).unwrap();
        // 2026-12-24 23:30 in New York is already the 25th in Tokyo.
        assert_eq!(
            portal_date("2026-12-25T04:30:00Z", new_york).as_deref(),
            Some("2026-12-24")
        );
        assert_eq!(
            jst_date("2026-12-25T04:30:00Z").as_deref(),
            Some("2026-12-25")
        );
        // Midnight of 2026-12-01 in New York is 05:00 UTC.
        assert_eq!(
            midnight_ms("2026-12-01", new_york).as_deref(),
            Some("1796101200000")
        );
        assert_eq!(midnight_ms("12/01/2026", new_york), None);
    }
}
