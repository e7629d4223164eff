//! board's 受注ステータス: seven codes, not contiguous.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// 1 見積中(高)
    EstimatingHigh,
    /// 2 見積中(中)
    EstimatingMedium,
    /// 3 見積中(低)
    EstimatingLow,
    /// 8 見積中(除)
    EstimatingExcluded,
    /// 4 受注確定
    OrderConfirmed,
    /// 5 受注済
    Ordered,
    /// 9 失注
    Lost,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status code {0}: board's codes are 1, 2, 3, 8, 4, 5 and 9")]
pub struct UnknownOrderStatus(pub i64);

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        Self::EstimatingHigh,
        Self::EstimatingMedium,
        Self::EstimatingLow,
        Self::EstimatingExcluded,
        Self::OrderConfirmed,
        Self::Ordered,
        Self::Lost,
    ];

    pub fn code(self) -> u8 {
        match self {
            Self::EstimatingHigh => 1,
            Self::EstimatingMedium => 2,
            Self::EstimatingLow => 3,
            Self::EstimatingExcluded => 8,
            Self::OrderConfirmed => 4,
            Self::Ordered => 5,
            Self::Lost => 9,
        }
    }

    pub fn from_code(code: i64) -> Result<Self, UnknownOrderStatus> {
        Self::ALL
            .into_iter()
            .find(|s| i64::from(s.code()) == code)
            .ok_or(UnknownOrderStatus(code))
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::EstimatingHigh => "見積中(高)",
            Self::EstimatingMedium => "見積中(中)",
            Self::EstimatingLow => "見積中(低)",
            Self::EstimatingExcluded => "見積中(除)",
            Self::OrderConfirmed => "受注確定",
            Self::Ordered => "受注済",
            Self::Lost => "失注",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::EstimatingHigh => "Estimating (high)",
            Self::EstimatingMedium => "Estimating (medium)",
            Self::EstimatingLow => "Estimating (low)",
            Self::EstimatingExcluded => "Estimating (excluded)",
            Self::OrderConfirmed => "Order confirmed",
            Self::Ordered => "Ordered",
            Self::Lost => "Lost",
        }
    }

    /// Statuses for which the ordered date (`closedate`) is synced.
    pub fn carries_ordered_date(self) -> bool {
        matches!(self, Self::OrderConfirmed | Self::Ordered)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.label_ja())
    }
}

impl Serialize for OrderStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

openapi_schema!(
    OrderStatus,
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .enum_values(Some(OrderStatus::ALL.iter().map(|s| s.code())))
        .description(Some("受注ステータス, by its code in board."))
        .build()
        .into()
);

impl<'de> Deserialize<'de> for OrderStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_code(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seven_codes_round_trip_and_nothing_else_parses() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::from_code(status.code().into()), Ok(status));
        }
        for bad in [0, 6, 7, 10, -1] {
            assert_eq!(OrderStatus::from_code(bad), Err(UnknownOrderStatus(bad)));
        }
    }

    #[test]
    fn only_confirmed_and_ordered_carry_the_ordered_date() {
        let carrying: Vec<u8> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.carries_ordered_date())
            .map(OrderStatus::code)
            .collect();
        assert_eq!(carrying, vec![4, 5]);
    }
}
