//! Normalising Japanese business data between board and HubSpot (SPEC §6):
//! legal forms, phone numbers, postal codes, prefectures, addresses. NFKC first.

use unicode_normalization::UnicodeNormalization;

pub fn nfkc(s: &str) -> String {
    s.nfkc().collect::<String>().trim().to_owned()
}

/// Legal forms removed for board's `name_disp` (display name), longest first.
const LEGAL_FORMS: [&str; 16] = [
    "特定非営利活動法人",
    "一般社団法人",
    "一般財団法人",
    "公益社団法人",
    "公益財団法人",
    "株式会社",
    "有限会社",
    "合同会社",
    "合資会社",
    "合名会社",
    "(株)",
    "(有)",
    "(同)",
    "(資)",
    "(名)",
    "(一社)",
];

/// The name without its legal form: 「株式会社サンプル」→「サンプル」. NFKC turns
/// ㈱ and （株） into (株) first.
pub fn without_legal_form(name: &str) -> String {
    let mut out = nfkc(name);
    for form in LEGAL_FORMS {
        out = out.replace(form, "");
    }
    let trimmed = out.trim().to_owned();
    if trimmed.is_empty() {
        nfkc(name)
    } else {
        trimmed
    }
}

/// A name compared for look-alike customers: no legal form, no spaces, NFKC.
pub fn comparable_name(name: &str) -> String {
    without_legal_form(name)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Phone numbers: NFKC, `+81` → `0`, hyphenated by the usual Japanese groupings.
/// `None` when there are not 10 or 11 digits after that.
pub fn phone(raw: &str) -> Option<String> {
    let s = nfkc(raw);
    let mut digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if s.trim_start().starts_with('+') {
        digits = digits.strip_prefix("81").map(|rest| format!("0{rest}"))?;
    }
    let groups: &[usize] = match digits.len() {
        11 if digits.starts_with("0120") || digits.starts_with("0800") => &[4, 3, 4],
        11 => &[3, 4, 4],
        10 if digits.starts_with("0120") => &[4, 3, 3],
        10 if digits.starts_with("03") || digits.starts_with("06") => &[2, 4, 4],
        10 => &[3, 3, 4],
        _ => return None,
    };
    let mut parts = Vec::new();
    let mut at = 0;
    for g in groups {
        parts.push(&digits[at..at + g]);
        at += g;
    }
    Some(parts.join("-"))
}

/// Postal codes: NFKC, 〒 and spaces removed, 7 digits → NNN-NNNN; else `None`.
pub fn zip(raw: &str) -> Option<String> {
    let s = nfkc(raw).replace('〒', "");
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (digits.len() == 7 && digits.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("{}-{}", &digits[..3], &digits[3..]))
}

const PREFECTURES: [(&str, &str); 47] = [
    ("北海道", "hokkaido"),
    ("青森県", "aomori"),
    ("岩手県", "iwate"),
    ("宮城県", "miyagi"),
    ("秋田県", "akita"),
    ("山形県", "yamagata"),
    ("福島県", "fukushima"),
    ("茨城県", "ibaraki"),
    ("栃木県", "tochigi"),
    ("群馬県", "gunma"),
    ("埼玉県", "saitama"),
    ("千葉県", "chiba"),
    ("東京都", "tokyo"),
    ("神奈川県", "kanagawa"),
    ("新潟県", "niigata"),
    ("富山県", "toyama"),
    ("石川県", "ishikawa"),
    ("福井県", "fukui"),
    ("山梨県", "yamanashi"),
    ("長野県", "nagano"),
    ("岐阜県", "gifu"),
    ("静岡県", "shizuoka"),
    ("愛知県", "aichi"),
    ("三重県", "mie"),
    ("滋賀県", "shiga"),
    ("京都府", "kyoto"),
    ("大阪府", "osaka"),
    ("兵庫県", "hyogo"),
    ("奈良県", "nara"),
    ("和歌山県", "wakayama"),
    ("鳥取県", "tottori"),
    ("島根県", "shimane"),
    ("岡山県", "okayama"),
    ("広島県", "hiroshima"),
    ("山口県", "yamaguchi"),
    ("徳島県", "tokushima"),
    ("香川県", "kagawa"),
    ("愛媛県", "ehime"),
    ("高知県", "kochi"),
    ("福岡県", "fukuoka"),
    ("佐賀県", "saga"),
    ("長崎県", "nagasaki"),
    ("熊本県", "kumamoto"),
    ("大分県", "oita"),
    ("宮崎県", "miyazaki"),
    ("鹿児島県", "kagoshima"),
    ("沖縄県", "okinawa"),
];

/// One of the 47 prefecture names: 「東京」→「東京都」, 「Tokyo」→「東京都」; `None` otherwise.
pub fn prefecture(raw: &str) -> Option<&'static str> {
    let s = nfkc(raw);
    let lower = s.to_lowercase();
    let romaji = lower
        .trim_end_matches(" prefecture")
        .trim_end_matches("-ken")
        .trim_end_matches("-to")
        .trim_end_matches("-fu");
    PREFECTURES.iter().find_map(|(kanji, roman)| {
        let short = kanji.trim_end_matches(['都', '府', '県']);
        let matches = s == *kanji
            || (s == short && *kanji != "北海道")
            || romaji == *roman
            || (*kanji == "北海道" && s == "北海道");
        matches.then_some(*kanji)
    })
}

/// Splits a board address1 into HubSpot's `city` and `address` at the first
/// 市・区・町・村 (or 郡…町/村); unsplittable: everything into `address`.
pub fn split_city(address1: &str) -> (Option<String>, String) {
    let s = nfkc(address1);
    let chars: Vec<char> = s.chars().collect();
    let end = if let Some(gun) = chars.iter().position(|c| *c == '郡') {
        chars[gun + 1..]
            .iter()
            .position(|c| *c == '町' || *c == '村')
            .map(|p| gun + 1 + p)
    } else {
        chars
            .iter()
            .position(|c| matches!(c, '市' | '区' | '町' | '村'))
    };
    match end {
        Some(i) if i + 1 < chars.len() => (
            Some(chars[..=i].iter().collect()),
            chars[i + 1..].iter().collect(),
        ),
        _ => (None, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_forms_come_off_in_every_spelling() {
        assert_eq!(without_legal_form("株式会社サンプル"), "サンプル");
        assert_eq!(without_legal_form("サンプル㈱"), "サンプル");
        assert_eq!(without_legal_form("（株）サンプル"), "サンプル");
        assert_eq!(without_legal_form("合同会社 Ｔｅｓｔ"), "Test");
        assert_eq!(
            without_legal_form("株式会社"),
            "株式会社",
            "nothing left: keep the name"
        );
        assert_eq!(
            comparable_name("株式会社 サンプル"),
            comparable_name("ｻﾝﾌﾟﾙ㈱"),
            "half-width kana and ㈱"
        );
    }

    #[test]
    fn phones_are_hyphenated_from_any_spelling() {
        assert_eq!(phone("+81 3-1234-5678").as_deref(), Some("03-1234-5678"));
        assert_eq!(
            phone("０３（１２３４）５６７８").as_deref(),
            Some("03-1234-5678")
        );
        assert_eq!(phone("09012345678").as_deref(), Some("090-1234-5678"));
        assert_eq!(phone("0120-123-456").as_deref(), Some("0120-123-456"));
        assert_eq!(phone("0451234567").as_deref(), Some("045-123-4567"));
        assert_eq!(phone("12345"), None);
    }

    #[test]
    fn zips_and_prefectures() {
        assert_eq!(zip("〒１００－０００１").as_deref(), Some("100-0001"));
        assert_eq!(zip("1000001").as_deref(), Some("100-0001"));
        assert_eq!(zip("100-00"), None);
        assert_eq!(prefecture("東京"), Some("東京都"));
        assert_eq!(prefecture("Tokyo"), Some("東京都"));
        assert_eq!(prefecture("大阪府"), Some("大阪府"));
        assert_eq!(prefecture("Hokkaido"), Some("北海道"));
        assert_eq!(prefecture("California"), None);
    }

    #[test]
    fn addresses_split_at_the_first_municipality() {
        assert_eq!(
            split_city("千代田区丸の内1-1-1"),
            (Some("千代田区".into()), "丸の内1-1-1".into())
        );
        assert_eq!(
            split_city("横浜市中区本町1"),
            (Some("横浜市".into()), "中区本町1".into())
        );
        assert_eq!(
            split_city("西多摩郡瑞穂町箱根ケ崎1"),
            (Some("西多摩郡瑞穂町".into()), "箱根ケ崎1".into())
        );
        assert_eq!(split_city("丸の内1-1-1"), (None, "丸の内1-1-1".into()));
    }
}
