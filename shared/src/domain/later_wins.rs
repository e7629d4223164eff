//! Later wins (SPEC §11): when both sides changed a field since its baseline, the later change
//! is kept, whichever direction is applying one. The one rule both directions and every synced
//! field (deal name, stage, ordered date, company and contact fields) go through.

use time::OffsetDateTime;

/// A side of the integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    HubSpot,
    Board,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Self::HubSpot => "HubSpot",
            Self::Board => "board",
        }
    }
}

/// When one side changed a field, as far as that side says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub side: Side,
    pub at: Option<OffsetDateTime>,
}

/// What becomes of an incoming change to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The other side kept its baseline value: write the change.
    Apply,
    /// Both changed the field and the incoming change is the later (or the
    /// other side's time is unknown, or the two are equal): write it over the
    /// other side's change, recorded as `conflict_overwritten`.
    Overwrite,
    /// Both changed the field and the other side's change is later: leave it;
    /// it travels the other way. Recorded as `conflict_overwritten`.
    Keep,
}

/// The verdict on `incoming`, given whether the other side changed the same
/// field since its baseline and when.
pub fn decide(incoming: Change, other_changed: bool, other: Change) -> Verdict {
    if !other_changed {
        return Verdict::Apply;
    }
    match (incoming.at, other.at) {
        (Some(mine), Some(theirs)) if theirs > mine => Verdict::Keep,
        _ => Verdict::Overwrite,
    }
}

/// The history detail of a conflict on `field`: which side's change was kept.
pub fn note(field: &str, kept: Side) -> String {
    format!("{field}: {}の後の変更を優先", kept.label())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn board(at: Option<OffsetDateTime>) -> Change {
        Change {
            side: Side::Board,
            at,
        }
    }

    fn hubspot(at: Option<OffsetDateTime>) -> Change {
        Change {
            side: Side::HubSpot,
            at,
        }
    }

    const EARLY: OffsetDateTime = datetime!(2026-12-01 09:00 UTC);
    const LATE: OffsetDateTime = datetime!(2026-12-01 09:05 UTC);

    #[test]
    fn given_only_one_side_changed_when_it_arrives_then_it_is_applied() {
        assert_eq!(
            decide(board(Some(EARLY)), false, hubspot(Some(LATE))),
            Verdict::Apply
        );
        assert_eq!(decide(hubspot(None), false, board(None)), Verdict::Apply);
    }

    #[test]
    fn given_both_changed_when_the_incoming_change_is_later_then_it_overwrites() {
        assert_eq!(
            decide(hubspot(Some(LATE)), true, board(Some(EARLY))),
            Verdict::Overwrite
        );
        assert_eq!(
            decide(board(Some(LATE)), true, hubspot(Some(EARLY))),
            Verdict::Overwrite
        );
    }

    #[test]
    fn given_both_changed_when_the_other_side_is_later_then_it_is_kept_in_both_directions() {
        assert_eq!(
            decide(hubspot(Some(EARLY)), true, board(Some(LATE))),
            Verdict::Keep
        );
        assert_eq!(
            decide(board(Some(EARLY)), true, hubspot(Some(LATE))),
            Verdict::Keep
        );
    }

    #[test]
    fn given_both_changed_when_a_time_is_unknown_or_equal_then_the_incoming_change_wins() {
        assert_eq!(
            decide(board(None), true, hubspot(Some(LATE))),
            Verdict::Overwrite
        );
        assert_eq!(
            decide(hubspot(Some(EARLY)), true, board(None)),
            Verdict::Overwrite
        );
        assert_eq!(
            decide(hubspot(Some(EARLY)), true, board(Some(EARLY))),
            Verdict::Overwrite
        );
    }

    #[test]
    fn the_note_names_the_field_and_the_side_kept() {
        assert_eq!(note("案件名", Side::Board), "案件名: boardの後の変更を優先");
        assert_eq!(
            note("受注日", Side::HubSpot),
            "受注日: HubSpotの後の変更を優先"
        );
    }
}
