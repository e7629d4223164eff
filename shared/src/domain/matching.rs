//! First-connection matching (issue 20): which HubSpot company is which board
//! customer, and which HubSpot contact is which customer contact, proposed
//! with a confidence and the reasons, never decided silently.
//!
//! Evidence, each normalised as SPEC §6 normalises the synced fields:
//! - the name, compared without legal form (株式会社/(株)/㈱…), width, spaces,
//!   punctuation and kana form (hiragana and katakana are one);
//! - the web domain (board's `url`, HubSpot's `domain`) or, for a company, the
//!   domain of board's e-mail address, free-mail domains excepted;
//! - the phone number; the postal code with the first part of the address.
//!
//! A proposal is `sure` only when one candidate has the name and nothing else
//! competes for it (no other candidate with the same name, no other customer
//! proposing the same company), or when the name and a second, independent
//! piece of evidence single it out; several candidates are `ambiguous`, no
//! candidate `none`.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::normalize;

/// A board customer (顧客) or customer contact (顧客担当者), as matching sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub id: u64,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Postal code and the address's first part, normalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// For a contact: its company's (or customer's) id on the same side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    /// For a contact: its company's name as `name_key` has it (HubSpot's
    /// contact property `company`; board's customer's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// 名前が正規化後に一致
    NameEqual,
    /// 同じドメイン
    SameDomain,
    /// 同じメールアドレスのドメイン
    SameEmailDomain,
    /// 同じメールアドレス
    SameEmail,
    /// 同じ電話番号
    SamePhone,
    /// 同じ住所
    SameAddress,
    /// 担当者の会社が対応する
    SameCompany,
}

impl Reason {
    pub fn words_ja(self) -> &'static str {
        match self {
            Self::NameEqual => "名前が正規化後に一致",
            Self::SameDomain => "同じドメイン",
            Self::SameEmailDomain => "同じメールアドレスのドメイン",
            Self::SameEmail => "同じメールアドレス",
            Self::SamePhone => "同じ電話番号",
            Self::SameAddress => "同じ住所",
            Self::SameCompany => "会社が一致",
        }
    }

    fn weight(self) -> f64 {
        match self {
            Self::SameEmail => 0.95,
            Self::NameEqual => 0.7,
            Self::SameDomain => 0.5,
            Self::SameEmailDomain => 0.35,
            Self::SamePhone => 0.45,
            Self::SameAddress => 0.25,
            Self::SameCompany => 0.25,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Sure,
    Ambiguous,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub hubspot_id: u64,
    pub name: String,
    /// 0 to 1.
    pub confidence: f64,
    pub reasons: Vec<Reason>,
    /// Fields both sides hold with different values (`name`, `email`,
    /// `domain`, `phone`, `address`): they sync on the next change after
    /// approval (later-wins); a link does not change them by itself.
    #[serde(default)]
    pub differs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub board_id: u64,
    pub board_name: String,
    pub group: Group,
    /// Best first.
    pub candidates: Vec<Candidate>,
}

/// Free-mail domains say nothing about a company.
const FREE_MAIL: [&str; 12] = [
    "gmail.com",
    "yahoo.co.jp",
    "ymail.ne.jp",
    "outlook.com",
    "outlook.jp",
    "hotmail.com",
    "hotmail.co.jp",
    "icloud.com",
    "me.com",
    "docomo.ne.jp",
    "ezweb.ne.jp",
    "softbank.ne.jp",
];

/// The name as matching compares it: NFKC, no legal form, no spaces or
/// punctuation, hiragana as katakana, lower case.
pub fn name_key(name: &str) -> String {
    normalize::comparable_name(name)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .map(|c| match c {
            // Hiragana → katakana (the same sounds, 0x60 apart).
            'ぁ'..='ゖ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// A web domain from a URL or a bare domain: lower case, no scheme, path or `www.`.
pub fn domain(raw: &str) -> Option<String> {
    let s = normalize::nfkc(raw).to_lowercase();
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split(['/', '?', '#']).next()?.trim_start_matches("www.");
    (host.contains('.') && !host.contains('@')).then(|| host.to_owned())
}

/// The domain of an e-mail address, unless it is a free-mail one.
pub fn email_domain(email: &str) -> Option<String> {
    let domain = normalize::nfkc(email).to_lowercase();
    let domain = domain.rsplit_once('@')?.1.to_owned();
    (!FREE_MAIL.contains(&domain.as_str()) && domain.contains('.')).then_some(domain)
}

pub fn email(raw: &str) -> Option<String> {
    let e = normalize::nfkc(raw).to_lowercase();
    e.contains('@').then_some(e)
}

/// Postal code and the start of the address: "1500001|渋谷区神宮前".
pub fn address(zip: Option<&str>, address1: Option<&str>) -> Option<String> {
    let zip = normalize::zip(zip?)?.replace('-', "");
    let street: String = normalize::nfkc(address1.unwrap_or_default())
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(8)
        .collect();
    Some(format!("{zip}|{street}"))
}

/// Two parties' evidence in common.
fn reasons(board: &Party, hubspot: &Party, company_pairs: &HashSet<(u64, u64)>) -> Vec<Reason> {
    let mut out = Vec::new();
    if !board.name.is_empty() && name_key(&board.name) == name_key(&hubspot.name) {
        out.push(Reason::NameEqual);
    }
    if let (Some(a), Some(b)) = (&board.email, &hubspot.email)
        && a == b
    {
        out.push(Reason::SameEmail);
    }
    if let (Some(a), Some(b)) = (&board.domain, &hubspot.domain)
        && a == b
    {
        out.push(Reason::SameDomain);
    } else if let (Some(e), Some(b)) = (&board.email, &hubspot.domain)
        && email_domain(e).as_ref() == Some(b)
    {
        out.push(Reason::SameEmailDomain);
    }
    if let (Some(a), Some(b)) = (&board.phone, &hubspot.phone)
        && a == b
    {
        out.push(Reason::SamePhone);
    }
    if let (Some(a), Some(b)) = (&board.address, &hubspot.address)
        && a == b
    {
        out.push(Reason::SameAddress);
    }
    let paired = matches!((board.parent, hubspot.parent), (Some(a), Some(b)) if company_pairs.contains(&(a, b)));
    let same_org =
        matches!((&board.org, &hubspot.org), (Some(a), Some(b)) if !a.is_empty() && a == b);
    if paired || same_org {
        out.push(Reason::SameCompany);
    }
    out
}

/// Fields both hold and spell differently (after NFKC; phones and addresses
/// as normalised).
fn differs(board: &Party, hubspot: &Party) -> Vec<String> {
    let mut out = Vec::new();
    if normalize::nfkc(&board.name) != normalize::nfkc(&hubspot.name) {
        out.push("name".to_owned());
    }
    let pairs: [(&'static str, &Option<String>, &Option<String>); 4] = [
        ("email", &board.email, &hubspot.email),
        ("domain", &board.domain, &hubspot.domain),
        ("phone", &board.phone, &hubspot.phone),
        ("address", &board.address, &hubspot.address),
    ];
    for (field, a, b) in pairs {
        if let (Some(a), Some(b)) = (a, b)
            && a != b
        {
            out.push(field.to_owned());
        }
    }
    out
}

fn confidence(reasons: &[Reason]) -> f64 {
    // Independent evidence: 1 - Π(1 - w).
    let miss: f64 = reasons.iter().map(|r| 1.0 - r.weight()).product();
    ((1.0 - miss) * 1000.0).round() / 1000.0
}

/// Candidates below this are not proposed at all.
const FLOOR: f64 = 0.4;
/// A candidate this far ahead of the next one stands alone.
const LEAD: f64 = 0.2;

/// Proposes a HubSpot party for each board party. `company_pairs` are the
/// (board customer, HubSpot company) pairs already linked or proposed sure:
/// contacts of corresponding companies find each other by name.
pub fn propose(
    board: &[Party],
    hubspot: &[Party],
    company_pairs: &HashSet<(u64, u64)>,
) -> Vec<Match> {
    // Indexes from each piece of evidence to HubSpot parties.
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, h) in hubspot.iter().enumerate() {
        let mut keys = vec![format!("n:{}", name_key(&h.name))];
        // A common personal name is found with its company's name.
        keys.extend(h.org.iter().map(|o| format!("o:{}|{o}", name_key(&h.name))));
        keys.extend(h.email.iter().map(|e| format!("e:{e}")));
        keys.extend(h.domain.iter().map(|d| format!("d:{d}")));
        keys.extend(h.phone.iter().map(|p| format!("p:{p}")));
        keys.extend(h.address.iter().map(|a| format!("a:{a}")));
        for key in keys {
            by_key.entry(key).or_default().push(i);
        }
    }
    // Keys many parties share (a common phone line, a chain's domain) prove little;
    // above this, a key is not used to find candidates.
    const CROWD: usize = 8;
    let mut matches: Vec<Match> = board
        .iter()
        .map(|b| {
            let mut keys = vec![format!("n:{}", name_key(&b.name))];
            keys.extend(b.org.iter().map(|o| format!("o:{}|{o}", name_key(&b.name))));
            keys.extend(b.email.iter().map(|e| format!("e:{e}")));
            keys.extend(b.domain.iter().map(|d| format!("d:{d}")));
            keys.extend(
                b.email
                    .iter()
                    .filter_map(|e| email_domain(e))
                    .map(|d| format!("d:{d}")),
            );
            keys.extend(b.phone.iter().map(|p| format!("p:{p}")));
            keys.extend(b.address.iter().map(|a| format!("a:{a}")));
            let mut seen = HashSet::new();
            let mut candidates: Vec<Candidate> = keys
                .iter()
                .filter_map(|k| by_key.get(k))
                .filter(|found| found.len() <= CROWD)
                .flatten()
                .filter(|i| seen.insert(**i))
                .filter_map(|&i| {
                    let h = &hubspot[i];
                    let reasons = reasons(b, h, company_pairs);
                    let confidence = confidence(&reasons);
                    (confidence >= FLOOR).then(|| Candidate {
                        hubspot_id: h.id,
                        name: h.name.clone(),
                        confidence,
                        reasons,
                        differs: differs(b, h),
                    })
                })
                .collect();
            candidates.sort_by(|a, b| {
                b.confidence
                    .total_cmp(&a.confidence)
                    .then(a.hubspot_id.cmp(&b.hubspot_id))
            });
            candidates.truncate(5);
            let group = group_of(&candidates);
            Match {
                board_id: b.id,
                board_name: b.name.clone(),
                group,
                candidates,
            }
        })
        .collect();
    // One HubSpot party for two board parties is for a person to decide.
    let mut claims: HashMap<u64, usize> = HashMap::new();
    for m in &matches {
        if m.group == Group::Sure {
            *claims.entry(m.candidates[0].hubspot_id).or_default() += 1;
        }
    }
    for m in &mut matches {
        if m.group == Group::Sure && claims[&m.candidates[0].hubspot_id] > 1 {
            m.group = Group::Ambiguous;
        }
    }
    matches
}

fn group_of(candidates: &[Candidate]) -> Group {
    let Some(best) = candidates.first() else {
        return Group::None;
    };
    let strong = best.reasons.contains(&Reason::SameEmail)
        || (best.reasons.contains(&Reason::NameEqual) && best.reasons.len() >= 2)
        || (best.reasons.contains(&Reason::NameEqual)
            && candidates
                .iter()
                .skip(1)
                .all(|c| !c.reasons.contains(&Reason::NameEqual)));
    // Ahead of the next candidate by a margin, or by evidence the next one
    // lacks while having none the best one lacks.
    let alone = candidates.get(1).is_none_or(|second| {
        best.confidence - second.confidence >= LEAD
            || (best.reasons.len() > second.reasons.len()
                && second.reasons.iter().all(|r| best.reasons.contains(r)))
    });
    if strong && alone {
        Group::Sure
    } else {
        Group::Ambiguous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(id: u64, name: &str) -> Party {
        Party {
            id,
            name: name.into(),
            ..Party::default()
        }
    }

    #[test]
    fn names_compare_without_legal_form_width_space_and_kana_form() {
        assert_eq!(name_key("株式会社テスト商事"), name_key("(株)テスト商事"));
        assert_eq!(name_key("㈱テスト商事"), name_key("テスト商事 株式会社"));
        assert_eq!(name_key("ﾃｽﾄ商事"), name_key("テスト商事"));
        assert_eq!(name_key("てすと商事"), name_key("テスト商事"));
        assert_eq!(name_key("ＡＢＣ　Ｔｒａｄｉｎｇ"), name_key("abc trading"));
        assert_ne!(name_key("テスト商事"), name_key("テスト商会"));
    }

    #[test]
    fn domains_and_email_domains_ignore_scheme_www_and_free_mail() {
        assert_eq!(
            domain("https://www.Example.co.jp/about").as_deref(),
            Some("example.co.jp")
        );
        assert_eq!(domain("example.co.jp").as_deref(), Some("example.co.jp"));
        assert_eq!(
            email_domain("Taro@Example.co.jp").as_deref(),
            Some("example.co.jp")
        );
        assert_eq!(email_domain("taro@gmail.com"), None);
    }

    #[test]
    fn one_name_alone_is_sure_two_of_it_are_ambiguous_none_is_none() {
        let hubspot = vec![
            party(1, "株式会社テスト商事"),
            party(2, "サンプル物産株式会社"),
            party(3, "サンプル物産"),
        ];
        let board = vec![
            party(10, "(株)テスト商事"),
            party(11, "サンプル物産"),
            party(12, "まったく別の会社"),
        ];
        let m = propose(&board, &hubspot, &HashSet::new());
        assert_eq!(m[0].group, Group::Sure);
        assert_eq!(m[0].candidates[0].hubspot_id, 1);
        assert_eq!(m[0].candidates[0].reasons, vec![Reason::NameEqual]);
        assert_eq!(
            m[0].candidates[0].differs,
            vec!["name"],
            "spelled differently"
        );
        assert_eq!(m[1].group, Group::Ambiguous);
        assert_eq!(m[1].candidates.len(), 2);
        assert_eq!(m[2].group, Group::None);
    }

    #[test]
    fn a_second_piece_of_evidence_singles_out_one_of_two_same_names() {
        let mut tokyo = party(1, "テスト商事");
        tokyo.phone = Some("03-1111-2222".into());
        let mut osaka = party(2, "テスト商事");
        osaka.phone = Some("06-3333-4444".into());
        let mut board = party(10, "株式会社テスト商事");
        board.phone = Some("06-3333-4444".into());
        let m = propose(&[board], &[tokyo, osaka], &HashSet::new());
        assert_eq!(m[0].group, Group::Sure);
        assert_eq!(m[0].candidates[0].hubspot_id, 2);
        assert_eq!(
            m[0].candidates[0].reasons,
            vec![Reason::NameEqual, Reason::SamePhone]
        );
    }

    #[test]
    fn one_company_proposed_for_two_customers_is_for_a_person() {
        let hubspot = vec![party(1, "テスト商事")];
        let board = vec![party(10, "テスト商事"), party(11, "(株)テスト商事")];
        let m = propose(&board, &hubspot, &HashSet::new());
        assert!(m.iter().all(|m| m.group == Group::Ambiguous));
    }

    #[test]
    fn a_contacts_company_name_singles_out_one_of_two_same_names() {
        let mut a = party(1, "佐藤 花子");
        a.org = Some(name_key("株式会社テスト商事"));
        let mut b = party(2, "佐藤花子");
        b.org = Some(name_key("別会社"));
        let mut board = party(10, "佐藤 花子");
        board.org = Some(name_key("(株)テスト商事"));
        let m = propose(&[board], &[a, b], &HashSet::new());
        assert_eq!(m[0].group, Group::Sure, "{:?}", m[0]);
        assert_eq!(m[0].candidates[0].hubspot_id, 1);
    }

    #[test]
    fn contacts_match_by_email_first_then_name_within_corresponding_companies() {
        let mut h = party(1, "山田 太郎");
        h.email = Some("taro@example.co.jp".into());
        h.parent = Some(100);
        let mut other = party(2, "山田太郎");
        other.parent = Some(200);
        let mut by_email = party(10, "山田 太郎");
        by_email.email = Some("taro@example.co.jp".into());
        let mut by_name = party(11, "山田太郎");
        by_name.parent = Some(20);
        let pairs = HashSet::from([(20, 200)]);
        let m = propose(&[by_email, by_name], &[h, other], &pairs);
        assert_eq!(m[0].group, Group::Sure);
        assert_eq!(m[0].candidates[0].hubspot_id, 1);
        assert_eq!(m[1].group, Group::Sure, "{:?}", m[1]);
        assert_eq!(m[1].candidates[0].hubspot_id, 2);
        assert!(m[1].candidates[0].reasons.contains(&Reason::SameCompany));
    }
}
