//! HubSpot's date and time values, and the calendar dates board keeps.

use time::OffsetDateTime;

/// A HubSpot datetime (RFC 3339 or epoch milliseconds) in epoch milliseconds.
pub fn parse_time_ms(value: &str) -> Option<i64> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .or_else(|| value.parse::<i64>().ok())
}

/// A HubSpot datetime as a calendar date in the portal's time zone (Asia/Tokyo).
pub fn jst_date(value: &str) -> Option<String> {
    let t = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .or_else(|| {
            value
                .parse::<i64>()
                .ok()
                .and_then(|ms| OffsetDateTime::from_unix_timestamp(ms / 1000).ok())
        })?;
    let d = t.to_offset(time::macros::offset!(+9)).date();
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
}
