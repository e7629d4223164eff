//! `--scenario backfill` (issue 20): first-connection matching at a company's
//! scale. Seeds HubSpot with companies and contacts and board with customers
//! and customer contacts, with a known truth: pairs spelled differently on
//! each side (legal forms, width, spaces, kana form, e-mail case), decoys (a
//! branch of the same name elsewhere), and records with no counterpart. Then
//! runs the matching job through the API and scores its proposals.
//!
//! Figures: wall time of the matching, HubSpot calls per record read, board
//! calls per record, `precision` (sure proposals whose candidate is the true
//! counterpart), `recall` (true pairs whose best candidate is the true
//! counterpart, sure or ambiguous), 429s on each side, peak RSS.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::harness::{ACCOUNT, Harness, Setup, round};
use crate::scenarios::Figures;

#[derive(Debug, Clone)]
pub struct Options {
    pub companies: usize,
    pub hubspot_contacts: usize,
    pub customers: usize,
    pub seed: u64,
}

impl Options {
    /// The size: 20,000 companies, 50,000 contacts, 15,000 customers.
    pub fn scaled(companies: usize) -> Self {
        Self {
            companies,
            hubspot_contacts: companies * 5 / 2,
            customers: companies * 3 / 4,
            seed: 7,
        }
    }
}

const KATAKANA: [&str; 40] = [
    "サクラ",
    "ミドリ",
    "アオバ",
    "ヒカリ",
    "ツバサ",
    "ミライ",
    "アサヒ",
    "ホシノ",
    "カエデ",
    "スバル",
    "ハヤテ",
    "コスモ",
    "ユニオン",
    "グリーン",
    "サンライズ",
    "フジ",
    "ヤマト",
    "ミナト",
    "アルファ",
    "ベスト",
    "ダイヤ",
    "エース",
    "ノース",
    "サウス",
    "イースト",
    "ウエスト",
    "パシフィック",
    "オリオン",
    "ペガサス",
    "ライト",
    "クレスト",
    "ファースト",
    "トップ",
    "ネクスト",
    "ワールド",
    "シティ",
    "ハーモニー",
    "ビジョン",
    "プライム",
    "リバー",
];
const PLACES: [&str; 25] = [
    "東京",
    "大阪",
    "名古屋",
    "札幌",
    "仙台",
    "横浜",
    "神戸",
    "京都",
    "福岡",
    "広島",
    "新潟",
    "静岡",
    "熊本",
    "金沢",
    "岡山",
    "千葉",
    "埼玉",
    "長野",
    "岐阜",
    "奈良",
    "三重",
    "滋賀",
    "高知",
    "松山",
    "那覇",
];
const TRADES: [&str; 24] = [
    "商事",
    "物産",
    "工業",
    "電機",
    "製作所",
    "建設",
    "運輸",
    "食品",
    "システム",
    "興業",
    "産業",
    "化学",
    "精機",
    "技研",
    "通商",
    "不動産",
    "印刷",
    "設計",
    "製薬",
    "電設",
    "工務店",
    "開発",
    "商会",
    "企画",
];
const SURNAMES: [(&str, &str); 30] = [
    ("佐藤", "sato"),
    ("鈴木", "suzuki"),
    ("高橋", "takahashi"),
    ("田中", "tanaka"),
    ("伊藤", "ito"),
    ("渡辺", "watanabe"),
    ("山本", "yamamoto"),
    ("中村", "nakamura"),
    ("小林", "kobayashi"),
    ("加藤", "kato"),
    ("吉田", "yoshida"),
    ("山田", "yamada"),
    ("佐々木", "sasaki"),
    ("山口", "yamaguchi"),
    ("松本", "matsumoto"),
    ("井上", "inoue"),
    ("木村", "kimura"),
    ("林", "hayashi"),
    ("斎藤", "saito"),
    ("清水", "shimizu"),
    ("山崎", "yamazaki"),
    ("森", "mori"),
    ("池田", "ikeda"),
    ("橋本", "hashimoto"),
    ("阿部", "abe"),
    ("石川", "ishikawa"),
    ("山下", "yamashita"),
    ("中島", "nakajima"),
    ("石井", "ishii"),
    ("小川", "ogawa"),
];
const GIVEN: [(&str, &str); 20] = [
    ("太郎", "taro"),
    ("花子", "hanako"),
    ("一郎", "ichiro"),
    ("美咲", "misaki"),
    ("健", "ken"),
    ("陽子", "yoko"),
    ("大輔", "daisuke"),
    ("愛", "ai"),
    ("翔太", "shota"),
    ("由美", "yumi"),
    ("誠", "makoto"),
    ("恵", "megumi"),
    ("拓也", "takuya"),
    ("直子", "naoko"),
    ("亮", "ryo"),
    ("真由美", "mayumi"),
    ("浩", "hiroshi"),
    ("彩", "aya"),
    ("学", "manabu"),
    ("優子", "yuko"),
];

/// Half-width katakana for the common full-width ones (what old systems export).
fn half_width(s: &str) -> String {
    const FULL: &str = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンャュョッー";
    const HALF: [&str; 51] = [
        "ｱ", "ｲ", "ｳ", "ｴ", "ｵ", "ｶ", "ｷ", "ｸ", "ｹ", "ｺ", "ｻ", "ｼ", "ｽ", "ｾ", "ｿ", "ﾀ", "ﾁ", "ﾂ",
        "ﾃ", "ﾄ", "ﾅ", "ﾆ", "ﾇ", "ﾈ", "ﾉ", "ﾊ", "ﾋ", "ﾌ", "ﾍ", "ﾎ", "ﾏ", "ﾐ", "ﾑ", "ﾒ", "ﾓ", "ﾔ",
        "ﾕ", "ﾖ", "ﾗ", "ﾘ", "ﾙ", "ﾚ", "ﾛ", "ﾜ", "ｦ", "ﾝ", "ｬ", "ｭ", "ｮ", "ｯ", "ｰ",
    ];
    let mut out = String::new();
    for c in s.chars() {
        match FULL.chars().position(|f| f == c) {
            Some(i) => out.push_str(HALF[i]),
            // Voiced kana: the base and a half-width dakuten or handakuten.
            None => match c {
                'ガ'..='ド' | 'バ'..='ポ' => {
                    let code = c as u32;
                    let (base, mark) =
                        if ('バ'..='ポ').contains(&c) && (code - 'ハ' as u32) % 3 == 2 {
                            (code - 2, "ﾟ")
                        } else {
                            (code - 1, "ﾞ")
                        };
                    let base = char::from_u32(base).unwrap_or(c);
                    match FULL.chars().position(|f| f == base) {
                        Some(i) => {
                            out.push_str(HALF[i]);
                            out.push_str(mark);
                        }
                        None => out.push(c),
                    }
                }
                _ => out.push(c),
            },
        }
    }
    out
}

fn hiragana(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ァ'..='ヶ' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// How board's user typed the company's name.
fn board_spelling(rng: &mut StdRng, base: &str) -> String {
    let mut name = base.to_owned();
    let r: f64 = rng.random();
    if r < 0.25 {
        name = half_width(&name);
    } else if r < 0.35 {
        name = hiragana(&name);
    }
    if rng.random_bool(0.2) {
        // A space between the parts.
        if let Some((i, _)) = name.char_indices().nth(name.chars().count() / 2) {
            name.insert(i, if rng.random_bool(0.5) { ' ' } else { '　' });
        }
    }
    match rng.random_range(0..6) {
        0 => format!("(株){name}"),
        1 => format!("㈱{name}"),
        2 => format!("{name} 株式会社"),
        3 => format!("株式会社 {name}"),
        4 => format!("（株）{name}"),
        _ => name,
    }
}

struct Company {
    name: String,
    base: String,
    domain: Option<String>,
    phone: Option<String>,
}

pub async fn run(options: Options) -> anyhow::Result<Figures> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let h = Harness::start(Setup::default()).await?;
    h.run.connect(ACCOUNT, None).await;
    // Creating 70,000 records would fire as many webhooks: the service drops
    // them (no links), but the run measures the matching, not that.
    h.run.webhooks(false).await;
    h.board_limit(1_000).await?;

    // Unique base names, shuffled.
    let mut bases: Vec<String> = Vec::new();
    for k in KATAKANA {
        for p in PLACES {
            for t in TRADES {
                bases.push(format!("{k}{p}{t}"));
            }
        }
    }
    bases.shuffle(&mut rng);
    let pairs = options.customers * 4 / 5;
    let decoys = (pairs / 12).min(options.companies.saturating_sub(pairs));
    anyhow::ensure!(
        options.companies + options.customers - pairs <= bases.len(),
        "at most {} distinct names",
        bases.len()
    );
    let hubspot_name = |rng: &mut StdRng, base: &str| match rng.random_range(0..20) {
        0..14 => format!("株式会社{base}"),
        14..17 => format!("{base}株式会社"),
        _ => base.to_owned(),
    };
    let phone = |rng: &mut StdRng| {
        format!(
            "0{}-{:04}-{:04}",
            rng.random_range(3..10),
            rng.random_range(0..10_000),
            rng.random_range(0..10_000)
        )
    };
    // Paired companies (index i ↔ customer i), then the rest.
    let mut companies: Vec<Company> = Vec::with_capacity(options.companies);
    for (i, base) in bases.iter().take(options.companies - decoys).enumerate() {
        companies.push(Company {
            name: hubspot_name(&mut rng, base),
            base: base.clone(),
            domain: rng.random_bool(0.5).then(|| format!("c{i}.example.co.jp")),
            phone: rng.random_bool(0.6).then(|| phone(&mut rng)),
        });
    }
    // Decoys: branches of paired companies, same name, another phone. Created
    // first, so an even tie puts the decoy ahead (recall is not flattered).
    let decoyed: Vec<usize> = (0..pairs)
        .collect::<Vec<_>>()
        .choose_multiple(&mut rng, decoys)
        .copied()
        .collect();
    let decoy_companies: Vec<Company> = decoyed
        .iter()
        .map(|&i| Company {
            name: companies[i].name.clone(),
            base: companies[i].base.clone(),
            domain: None,
            phone: Some(phone(&mut rng)),
        })
        .collect();
    // The paired company of a decoy has a phone board also has, most of the time.
    for &i in &decoyed {
        if rng.random_bool(0.7) && companies[i].phone.is_none() {
            companies[i].phone = Some(phone(&mut rng));
        }
    }

    let seeding = Instant::now();
    let decoy_ids = create_companies(&h, &decoy_companies).await?;
    let company_ids = create_companies(&h, &companies).await?;
    let _ = decoy_ids;

    // HubSpot contacts: spread over the companies, 2–3 each, unique e-mails.
    let mut hs_contacts: Vec<(usize, String, String, String, Value)> = Vec::new(); // (company, last, first, email, props)
    for n in 0..options.hubspot_contacts {
        let company = n % companies.len();
        let (last, last_r) = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let (first, first_r) = GIVEN[rng.random_range(0..GIVEN.len())];
        let email = format!("{first_r}.{last_r}{n}@c{company}.example.co.jp");
        let mut props = json!({"lastname": last, "firstname": first, "email": email});
        if rng.random_bool(0.85) {
            props["company"] = json!(companies[company].name);
        }
        hs_contacts.push((company, last.to_owned(), first.to_owned(), email, props));
    }
    let contact_ids = create_contacts(&h, &hs_contacts).await?;

    // board: customers (paired first, then unpaired) with their contacts.
    let mut truth_customers: HashMap<u64, u64> = HashMap::new();
    let mut truth_contacts: HashMap<u64, u64> = HashMap::new();
    let mut unpaired_names = bases.iter().skip(options.companies);
    let contacts_of: HashMap<usize, Vec<usize>> =
        hs_contacts
            .iter()
            .enumerate()
            .fold(HashMap::new(), |mut m, (n, (c, ..))| {
                m.entry(*c).or_default().push(n);
                m
            });
    let mut batch_clients: Vec<Value> = Vec::new();
    let mut batch_contacts: Vec<Value> = Vec::new();
    // (true company id or None, true contact ids) per client of the batch.
    let mut batch_truth: Vec<(Option<u64>, Vec<Option<u64>>)> = Vec::new();
    for i in 0..options.customers {
        let (name, truth) = if i < pairs {
            let c = &companies[i];
            (board_spelling(&mut rng, &c.base), Some(company_ids[i]))
        } else {
            let base = unpaired_names
                .next()
                .cloned()
                .unwrap_or_else(|| format!("単独{i}"));
            (board_spelling(&mut rng, &base), None)
        };
        let mut fields = json!({"name": name, "name_disp": name});
        let mut contact_truth = Vec::new();
        if i < pairs {
            let c = &companies[i];
            if let Some(d) = &c.domain
                && rng.random_bool(0.4)
            {
                fields["url"] = json!(format!("https://www.{d}/"));
            }
            if let Some(p) = &c.phone
                && (decoyed.contains(&i) || rng.random_bool(0.5))
            {
                fields["tel"] = json!(p);
            }
            // Two of the company's HubSpot contacts are board contacts too.
            for &n in contacts_of.get(&i).into_iter().flatten().take(2) {
                let (_, last, first, email, _) = &hs_contacts[n];
                let mut contact = json!({"client_ref": batch_clients.len(), "last_name": last, "first_name": first});
                if rng.random_bool(0.6) {
                    // The same address, typed with capitals.
                    let mut e = email.clone();
                    e.replace_range(0..1, &e[0..1].to_uppercase());
                    contact["email"] = json!(e);
                }
                batch_contacts.push(contact);
                contact_truth.push(Some(contact_ids[n]));
            }
        } else {
            let (last, _) = SURNAMES[rng.random_range(0..SURNAMES.len())];
            let (first, _) = GIVEN[rng.random_range(0..GIVEN.len())];
            batch_contacts.push(
                json!({"client_ref": batch_clients.len(), "last_name": last, "first_name": first}),
            );
            contact_truth.push(None);
        }
        batch_clients.push(fields);
        batch_truth.push((truth, contact_truth));
        if batch_clients.len() == 500 || i + 1 == options.customers {
            let created = h
                .control(
                    "board",
                    "/_control/bulk",
                    Some(json!({"account_id": ACCOUNT, "events": false,
                                "clients": batch_clients, "contacts": batch_contacts})),
                )
                .await?;
            let clients: Vec<u64> = ids(&created["clients"]);
            let contacts: Vec<u64> = ids(&created["contacts"]);
            anyhow::ensure!(
                clients.len() == batch_truth.len(),
                "board created {} clients",
                clients.len()
            );
            let mut next_contact = contacts.iter();
            for (client, (truth, contact_truth)) in clients.iter().zip(&batch_truth) {
                if let Some(t) = truth {
                    truth_customers.insert(*client, *t);
                }
                for t in contact_truth {
                    let id = *next_contact
                        .next()
                        .ok_or_else(|| anyhow::anyhow!("contacts missing"))?;
                    if let Some(t) = t {
                        truth_contacts.insert(id, *t);
                    }
                }
            }
            batch_clients.clear();
            batch_contacts.clear();
            batch_truth.clear();
        }
    }
    let board_contacts_total: usize = truth_contacts.len() + (options.customers - pairs);
    let seeded_s = seeding.elapsed().as_secs_f64();
    h.board_limit(3).await?;
    h.settle().await?;
    h.clear_logs().await?;
    crate::cost::reset();

    // The matching, through the API as the admin would start it.
    let started = Instant::now();
    let (status, body) = h
        .run
        .api(reqwest::Method::POST, "/v1/hubspot/matching", ACCOUNT, None)
        .await;
    anyhow::ensure!(status == 202, "matching not started: {status} {body}");
    let deadline = Instant::now() + Duration::from_secs(780);
    let state = loop {
        let (_, state) = h
            .run
            .api(reqwest::Method::GET, "/v1/hubspot/matching", ACCOUNT, None)
            .await;
        if state["state"] != "running" || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(state["state"] == "done", "matching did not finish: {state}");

    // Scoring against the truth.
    let mut proposals: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/hubspot/matching/proposals?limit=200&cursor={c}"),
            None => "/v1/hubspot/matching/proposals?limit=200".to_owned(),
        };
        let (_, page) = h.run.api(reqwest::Method::GET, &path, ACCOUNT, None).await;
        proposals.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let (mut sure, mut sure_right, mut found) = (0usize, 0usize, 0usize);
    let mut by_group: HashMap<String, usize> = HashMap::new();
    for p in &proposals {
        let id = p["board"]["id"].as_u64().unwrap_or_default();
        let truth = match p["board"]["kind"].as_str() {
            Some("customer") => truth_customers.get(&id),
            _ => truth_contacts.get(&id),
        };
        let best = p["candidates"][0]["hubspot_id"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok());
        *by_group
            .entry(p["group"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
        if p["group"] == "sure" {
            sure += 1;
            if best.is_some() && best == truth.copied() {
                sure_right += 1;
            }
        }
        if truth.is_some() && best == truth.copied() {
            found += 1;
        }
    }
    let true_pairs = truth_customers.len() + truth_contacts.len();
    let hubspot_calls = h.hubspot_calls().await?;
    let board_calls = h.board_calls().await?;
    let read_hubspot = options.companies + options.hubspot_contacts;
    let read_board = options.customers + board_contacts_total;
    let mut f = Figures::new();
    f.insert("companies".into(), json!(options.companies));
    f.insert("hubspot_contacts".into(), json!(options.hubspot_contacts));
    f.insert("customers".into(), json!(options.customers));
    f.insert("board_contacts".into(), json!(board_contacts_total));
    f.insert("true_pairs".into(), json!(true_pairs));
    f.insert("seeding_seconds".into(), json!(round(seeded_s, 1)));
    f.insert("matching_seconds".into(), json!(round(seconds, 1)));
    f.insert("proposals".into(), json!(proposals.len()));
    f.insert(
        "sure".into(),
        json!(by_group.get("sure").copied().unwrap_or(0)),
    );
    f.insert(
        "ambiguous".into(),
        json!(by_group.get("ambiguous").copied().unwrap_or(0)),
    );
    f.insert(
        "none".into(),
        json!(by_group.get("none").copied().unwrap_or(0)),
    );
    f.insert(
        "precision".into(),
        json!(round(sure_right as f64 / sure.max(1) as f64, 4)),
    );
    f.insert(
        "recall".into(),
        json!(round(found as f64 / true_pairs.max(1) as f64, 4)),
    );
    f.insert("hubspot_calls".into(), json!(hubspot_calls.len()));
    f.insert(
        "hubspot_calls_per_record_read".into(),
        json!(round(hubspot_calls.len() as f64 / read_hubspot as f64, 4)),
    );
    f.insert("board_calls".into(), json!(board_calls.len()));
    f.insert(
        "board_calls_per_record".into(),
        json!(round(board_calls.len() as f64 / read_board as f64, 4)),
    );
    f.insert(
        "hubspot_429s".into(),
        json!(hubspot_calls.iter().filter(|r| r["status"] == 429).count()),
    );
    f.insert(
        "board_429s".into(),
        json!(board_calls.iter().filter(|r| r["status"] == 429).count()),
    );
    f.insert("records".into(), json!(read_hubspot + read_board));
    h.stop().await;
    Ok(f)
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect()
}

/// Creates companies 100 per call as a person would; their ids in order
/// (matched back by name, unique within a call).
async fn create_companies(h: &Harness, companies: &[Company]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::with_capacity(companies.len());
    for chunk in companies.chunks(100) {
        let inputs: Vec<Value> = chunk
            .iter()
            .map(|c| {
                let mut p = json!({"name": c.name});
                if let Some(d) = &c.domain {
                    p["domain"] = json!(d);
                }
                if let Some(ph) = &c.phone {
                    p["phone"] = json!(ph);
                }
                json!({"properties": p})
            })
            .collect();
        let created = h
            .hubspot(
                reqwest::Method::POST,
                "/crm/objects/2026-03/companies/batch/create",
                Some(json!({"inputs": inputs})),
            )
            .await?;
        let mut results: Vec<(String, u64)> = created["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["properties"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    r["id"]
                        .as_str()
                        .and_then(|i| i.parse().ok())
                        .unwrap_or_default(),
                )
            })
            .collect();
        for c in chunk {
            let at = results
                .iter()
                .position(|(n, _)| *n == c.name)
                .ok_or_else(|| anyhow::anyhow!("company {} not created", c.name))?;
            out.push(results.swap_remove(at).1);
        }
    }
    Ok(out)
}

async fn create_contacts(
    h: &Harness,
    contacts: &[(usize, String, String, String, Value)],
) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::with_capacity(contacts.len());
    for chunk in contacts.chunks(100) {
        let inputs: Vec<Value> = chunk.iter().map(|c| json!({"properties": c.4})).collect();
        let created = h
            .hubspot(
                reqwest::Method::POST,
                "/crm/objects/2026-03/contacts/batch/create",
                Some(json!({"inputs": inputs})),
            )
            .await?;
        let by_email: HashMap<String, u64> = created["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["properties"]["email"]
                        .as_str()
                        .unwrap_or_default()
                        .to_lowercase(),
                    r["id"]
                        .as_str()
                        .and_then(|i| i.parse().ok())
                        .unwrap_or_default(),
                )
            })
            .collect();
        for c in chunk {
            out.push(
                *by_email
                    .get(&c.3.to_lowercase())
                    .ok_or_else(|| anyhow::anyhow!("contact {} not created", c.3))?,
            );
        }
    }
    Ok(out)
}
