//! One contract for every store adapter: the same test bodies run on the
//! embedded engine and on DynamoDB (moto server), so the default cannot drift
//! from DynamoDB's semantics.

use std::sync::Arc;
use std::time::Duration;

use board_hubspot::adapters::store::{HISTORY_SHARDS, TableStore};
use board_hubspot::adapters::table::{
    Cond, Index, Item, Key, Query, Table, TableError, TxOp, Value, attr,
};
use board_hubspot::domain::connection::{Connection, ConnectionState};
use board_hubspot::domain::history::{Direction, HistoryEntry, Status};
use board_hubspot::domain::*;
use board_hubspot::ports::*;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-30 10:00 UTC);

fn account(name: &str) -> AccountId {
    AccountId::new(name).unwrap()
}

fn portal(id: u64) -> PortalId {
    PortalId::new(id).unwrap()
}

fn deal_link(acct: &str, portal_id: u64, deal: u64, project: u64) -> Link {
    Link::deal(account(acct), portal(portal_id), deal, project)
}

fn history_entry(acct: &str, ms: u64, n: usize) -> HistoryEntry {
    HistoryEntry {
        id: HistoryId::generate(ms),
        account_id: account(acct),
        occurred_at: NOW,
        direction: Direction::HubspotToBoard,
        hubspot: Some(HubSpotRef {
            object_type: HubSpotObjectType::Deal,
            id: 100 + n as u64,
        }),
        board: None,
        name: Some(format!("案件{n}")),
        status: Status::Success,
        code: None,
        detail: None,
        warnings: vec![],
        action: None,
        config_version: 1,
    }
}

mod cases {
    use super::*;

    pub async fn connections_keep_revisions_and_route_by_portal<T: Table>(store: TableStore<T>) {
        let mut a = Connection::pending(account("acct-a"), portal(1000001));
        assert_eq!(store.save_connection(&a).await.unwrap(), 1);
        assert!(
            matches!(store.save_connection(&a).await, Err(StoreError::Conflict)),
            "revision 0 must not overwrite"
        );

        a.revision = 1;
        a.state = ConnectionState::Active;
        assert_eq!(store.save_connection(&a).await.unwrap(), 2);
        let read = store
            .get_connection(&account("acct-a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.state, ConnectionState::Active);
        assert_eq!(read.revision, 2);

        let b = Connection::pending(account("acct-b"), portal(1000001));
        store.save_connection(&b).await.unwrap();
        let other = Connection::pending(account("acct-c"), portal(2000002));
        store.save_connection(&other).await.unwrap();

        let mut of_portal: Vec<String> = store
            .connections_of_portal(portal(1000001))
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.account_id.to_string())
            .collect();
        of_portal.sort();
        assert_eq!(of_portal, vec!["acct-a", "acct-b"]);
        assert!(
            store
                .connections_of_portal(portal(3))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .get_connection(&account("nobody"))
                .await
                .unwrap()
                .is_none()
        );
    }

    pub async fn two_writers_of_one_revision_one_wins<T: Table>(store: TableStore<T>) {
        let c = Connection::pending(account("acct-a"), portal(1));
        store.save_connection(&c).await.unwrap();
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = Arc::clone(&store);
            let mut c = c.clone();
            c.revision = 1;
            c.consecutive_auth_failures = i;
            tasks.push(tokio::spawn(async move { store.save_connection(&c).await }));
        }
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(2) => wins += 1,
                Err(StoreError::Conflict) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(wins, 1);
    }

    pub async fn one_time_tokens_are_single_use_and_expire<T: Table>(store: TableStore<T>) {
        let later = NOW + time::Duration::minutes(10);
        store
            .put_token(OneTimeKind::OAuthState, "st-1", "payload-1", later)
            .await
            .unwrap();
        assert!(matches!(
            store
                .put_token(OneTimeKind::OAuthState, "st-1", "again", later)
                .await,
            Err(StoreError::Conflict)
        ));
        // The same token text under another kind is another token.
        assert_eq!(
            store
                .take_token(OneTimeKind::Confirmation, "st-1", NOW)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .take_token(OneTimeKind::OAuthState, "st-1", NOW)
                .await
                .unwrap()
                .as_deref(),
            Some("payload-1")
        );
        assert_eq!(
            store
                .take_token(OneTimeKind::OAuthState, "st-1", NOW)
                .await
                .unwrap(),
            None,
            "reused"
        );

        store
            .put_token(OneTimeKind::OAuthState, "st-2", "p", later)
            .await
            .unwrap();
        let after = later + time::Duration::seconds(1);
        assert_eq!(
            store
                .take_token(OneTimeKind::OAuthState, "st-2", after)
                .await
                .unwrap(),
            None,
            "expired"
        );

        store
            .put_token(OneTimeKind::Confirmation, "race", "only-once", later)
            .await
            .unwrap();
        let store = Arc::new(store);
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .take_token(OneTimeKind::Confirmation, "race", NOW)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut got = 0;
        for t in takers {
            if t.await.unwrap().is_some() {
                got += 1;
            }
        }
        assert_eq!(got, 1, "exactly one concurrent taker wins");
    }

    pub async fn leases_exclude_until_expiry<T: Table>(store: TableStore<T>) {
        let ttl = Duration::from_secs(30);
        assert!(
            store
                .try_acquire("refresh#acct-a", "w1", NOW, ttl)
                .await
                .unwrap()
        );
        assert!(
            !store
                .try_acquire("refresh#acct-a", "w2", NOW, ttl)
                .await
                .unwrap()
        );
        assert!(
            store
                .try_acquire("refresh#acct-a", "w1", NOW, ttl)
                .await
                .unwrap(),
            "holder renews"
        );
        store.release("refresh#acct-a", "w2").await.unwrap();
        assert!(
            !store
                .try_acquire("refresh#acct-a", "w2", NOW, ttl)
                .await
                .unwrap(),
            "non-holder cannot release"
        );
        let expired = NOW + time::Duration::seconds(31);
        assert!(
            store
                .try_acquire("refresh#acct-a", "w2", expired, ttl)
                .await
                .unwrap()
        );
        store.release("refresh#acct-a", "w2").await.unwrap();
        assert!(
            store
                .try_acquire("refresh#acct-a", "w3", expired, ttl)
                .await
                .unwrap()
        );

        let store = Arc::new(store);
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .try_acquire("race", &format!("w{i}"), NOW, ttl)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut held = 0;
        for r in racers {
            held += usize::from(r.await.unwrap());
        }
        assert_eq!(held, 1);
    }

    pub async fn a_deal_is_claimed_by_one_account_atomically<T: Table>(store: TableStore<T>) {
        let store = Arc::new(store);
        let a = deal_link("acct-a", 1000001, 55, 1);
        let b = deal_link("acct-b", 1000001, 55, 2);
        let (ra, rb) = {
            let (sa, sb) = (Arc::clone(&store), Arc::clone(&store));
            let (la, lb) = (a.clone(), b.clone());
            tokio::join!(
                tokio::spawn(async move { sa.claim_deal(&la).await }),
                tokio::spawn(async move { sb.claim_deal(&lb).await })
            )
        };
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(
            ra.is_ok() ^ rb.is_ok(),
            "exactly one claim wins: {ra:?} {rb:?}"
        );
        let (winner, loser) = if ra.is_ok() { (&a, &b) } else { (&b, &a) };
        let lost = if ra.is_ok() { rb } else { ra };
        assert!(
            matches!(lost, Err(ClaimError::ClaimedBy(ref w)) if *w == winner.account_id),
            "{lost:?}"
        );

        // The loser's transaction left nothing behind.
        assert!(
            store
                .link_by_hubspot(&loser.account_id, loser.portal_id, loser.hubspot)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .link_by_board(&loser.account_id, loser.portal_id, loser.board)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.deal_claimed_by(portal(1000001), 55).await.unwrap(),
            Some(winner.account_id.clone())
        );
        assert!(matches!(
            store.claim_deal(winner).await,
            Err(ClaimError::AlreadyLinked)
        ));

        // The same deal id in another portal is another deal, even for the same
        // account and board project (after a switch of portals).
        let mut elsewhere = winner.clone();
        elsewhere.portal_id = portal(2000002);
        store.claim_deal(&elsewhere).await.unwrap();
        store
            .claim_deal(&deal_link("acct-b", 2000002, 56, 3))
            .await
            .unwrap();
    }

    /// Claim before create: a registration claims the deal first; another
    /// account is refused before it creates anything, the same account may claim
    /// again, the link completes the claim, and a claim given back frees the deal.
    pub async fn a_deal_is_claimed_before_its_project_exists<T: Table>(store: TableStore<T>) {
        let (a, b): (AccountId, AccountId) = ("acct-a".parse().unwrap(), "acct-b".parse().unwrap());
        let p = portal(1000001);
        store.reserve_deal(&a, p, 77).await.unwrap();
        store.reserve_deal(&a, p, 77).await.unwrap();
        assert!(matches!(
            store.reserve_deal(&b, p, 77).await,
            Err(ClaimError::ClaimedBy(ref holder)) if *holder == a
        ));
        // Another account's release changes nothing.
        store.release_deal(&b, p, 77).await.unwrap();
        assert_eq!(store.deal_claimed_by(p, 77).await.unwrap(), Some(a.clone()));
        // Released by its holder: the deal is free for anyone.
        store.release_deal(&a, p, 77).await.unwrap();
        assert_eq!(store.deal_claimed_by(p, 77).await.unwrap(), None);
        store.reserve_deal(&b, p, 77).await.unwrap();
        // The holder links it; a rival's link is refused.
        assert!(matches!(
            store.claim_deal(&deal_link("acct-a", 1000001, 77, 9)).await,
            Err(ClaimError::ClaimedBy(_))
        ));
        store
            .claim_deal(&deal_link("acct-b", 1000001, 77, 10))
            .await
            .unwrap();
        assert_eq!(store.deal_claimed_by(p, 77).await.unwrap(), Some(b));
    }

    pub async fn a_link_is_deleted_whole_and_only_unchanged<T: Table>(store: TableStore<T>) {
        let link = Link {
            hubspot: HubSpotRef {
                object_type: HubSpotObjectType::Company,
                id: 910,
            },
            board: BoardRef {
                kind: BoardObjectKind::Customer,
                id: 31,
            },
            ..deal_link("acct-a", 1000001, 1, 1)
        };
        store.create_link(&link).await.unwrap();
        let account = AccountId::new("acct-a").unwrap();
        let read = store
            .link_by_board(&account, portal(1000001), link.board)
            .await
            .unwrap()
            .unwrap();
        // Changed since it was read (a sync saved baselines): not deleted.
        let mut synced = read.clone();
        synced.last_synced_at = Some(NOW);
        store.update_link(&synced).await.unwrap();
        assert!(matches!(
            store.delete_link(&read).await,
            Err(StoreError::Conflict)
        ));
        let current = store
            .link_by_board(&account, portal(1000001), link.board)
            .await
            .unwrap()
            .unwrap();
        store.delete_link(&current).await.unwrap();
        assert!(
            store
                .link_by_board(&account, portal(1000001), link.board)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .link_by_hubspot(&account, portal(1000001), link.hubspot)
                .await
                .unwrap()
                .is_none()
        );
        // Both items gone: the same pair links again.
        store.create_link(&link).await.unwrap();
    }

    pub async fn links_are_found_from_both_sides<T: Table>(store: TableStore<T>) {
        let company = |acct: &str, customer: u64| Link {
            hubspot: HubSpotRef {
                object_type: HubSpotObjectType::Company,
                id: 900,
            },
            board: BoardRef {
                kind: BoardObjectKind::Customer,
                id: customer,
            },
            ..deal_link(acct, 1000001, 1, 1)
        };
        store.create_link(&company("acct-a", 11)).await.unwrap();
        store.create_link(&company("acct-b", 22)).await.unwrap();
        assert!(matches!(
            store.create_link(&company("acct-a", 11)).await,
            Err(StoreError::Conflict)
        ));
        let mut other_object = company("acct-a", 11);
        other_object.hubspot.id = 901;
        assert!(
            matches!(
                store.create_link(&other_object).await,
                Err(StoreError::Conflict)
            ),
            "a board object has one link per account"
        );

        let both = store
            .links_of_hubspot_object(
                portal(1000001),
                HubSpotRef {
                    object_type: HubSpotObjectType::Company,
                    id: 900,
                },
            )
            .await
            .unwrap();
        assert_eq!(both.len(), 2);

        let mut link = store
            .link_by_board(
                &account("acct-b"),
                portal(1000001),
                BoardRef {
                    kind: BoardObjectKind::Customer,
                    id: 22,
                },
            )
            .await
            .unwrap()
            .expect("found by board id");
        assert_eq!(link.hubspot.id, 900);
        assert_eq!(link.revision, 1);
        link.state = LinkState::Disabled {
            reason: Code::CompanyNotFound,
        };
        assert_eq!(store.update_link(&link).await.unwrap(), 2);
        assert!(
            matches!(store.update_link(&link).await, Err(StoreError::Conflict)),
            "stale revision"
        );
        let read = store
            .link_by_hubspot(&account("acct-b"), portal(1000001), link.hubspot)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            read.state,
            LinkState::Disabled {
                reason: Code::CompanyNotFound
            }
        );

        let mut ghost = company("acct-z", 1);
        ghost.revision = 1;
        assert!(
            matches!(store.update_link(&ghost).await, Err(StoreError::Conflict)),
            "no upsert"
        );
    }

    pub async fn history_pages_newest_first_with_ttl<T: Table>(store: TableStore<T>) {
        let base = 1_764_000_000_000u64;
        let mut ids = Vec::new();
        for n in 0..25 {
            let entry = history_entry("acct-a", base + n as u64 * 1000, n);
            ids.push(entry.id.clone());
            store
                .append(&entry, NOW + time::Duration::days(180))
                .await
                .unwrap();
        }
        store
            .append(&history_entry("acct-b", base, 0), NOW)
            .await
            .unwrap();

        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = store
                .entries(&account("acct-a"), 10, cursor.as_ref())
                .await
                .unwrap();
            pages += 1;
            seen.extend(page.items.iter().map(|e| e.id.clone()));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        ids.reverse();
        assert_eq!(seen, ids, "every entry once, newest first");

        let one = store
            .entry(&account("acct-a"), &ids[3])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.id, ids[3]);
        assert!(
            store
                .entry(&account("acct-b"), &ids[3])
                .await
                .unwrap()
                .is_none(),
            "another account's id"
        );

        let mut with_ttl = 0;
        for shard in 0..HISTORY_SHARDS {
            let page = store
                .table()
                .query(Query::new(
                    Index::Primary,
                    format!("ACCT#acct-a#HIST#{shard}"),
                ))
                .await
                .unwrap();
            for item in page.items {
                assert!(
                    item.n(attr::TTL).is_some_and(|t| t > NOW.unix_timestamp()),
                    "TTL set"
                );
                with_ttl += 1;
            }
        }
        assert_eq!(with_ttl, 25);
        assert!(matches!(
            store
                .entries(&account("acct-a"), 10, Some(&Cursor("not/an id".into())))
                .await,
            Err(StoreError::Limit(_))
        ));
    }

    pub async fn board_events_once_and_versions_forward<T: Table>(store: TableStore<T>) {
        let a = account("acct-a");
        let keep = NOW + time::Duration::days(14);
        assert!(store.first_sighting(&a, "ev-1", NOW, keep).await.unwrap());
        assert!(!store.first_sighting(&a, "ev-1", NOW, keep).await.unwrap());
        assert!(
            store
                .first_sighting(&account("acct-b"), "ev-1", NOW, keep)
                .await
                .unwrap(),
            "per account"
        );
        assert!(
            store
                .first_sighting(&a, "ev-1", keep, keep + time::Duration::days(14))
                .await
                .unwrap(),
            "forgotten after expiry"
        );

        let project = BoardRef {
            kind: BoardObjectKind::Project,
            id: 7,
        };
        assert!(store.advance_version(&a, project, 3).await.unwrap());
        assert!(
            !store.advance_version(&a, project, 2).await.unwrap(),
            "older"
        );
        assert!(
            !store.advance_version(&a, project, 3).await.unwrap(),
            "same"
        );
        assert!(store.advance_version(&a, project, 4).await.unwrap());

        // A transient failure releases the event: its redelivery is applied.
        assert!(store.first_sighting(&a, "ev-4", NOW, keep).await.unwrap());
        store.release_event(&a, "ev-4", project, 4).await.unwrap();
        assert!(store.first_sighting(&a, "ev-4", NOW, keep).await.unwrap());
        assert!(store.advance_version(&a, project, 4).await.unwrap());
        // Released after a newer version was accepted: the version stays.
        assert!(store.advance_version(&a, project, 5).await.unwrap());
        store.release_event(&a, "ev-4", project, 4).await.unwrap();
        assert!(!store.advance_version(&a, project, 4).await.unwrap());
        assert!(store.advance_version(&a, project, 6).await.unwrap());
        assert_eq!(store.applied_version(&a, project).await.unwrap(), Some(6));
        let unseen = BoardRef {
            kind: BoardObjectKind::Project,
            id: 8,
        };
        assert_eq!(store.applied_version(&a, unseen).await.unwrap(), None);

        // Intents of remote creates: overwritten as they progress, gone after expiry.
        assert_eq!(store.intent(&a, "note#ev-1", NOW).await.unwrap(), None);
        store
            .set_intent(&a, "note#ev-1", "pending", keep)
            .await
            .unwrap();
        store
            .set_intent(&a, "note#ev-1", "9001", keep)
            .await
            .unwrap();
        assert_eq!(
            store.intent(&a, "note#ev-1", NOW).await.unwrap().as_deref(),
            Some("9001")
        );
        assert_eq!(
            store
                .intent(&account("acct-b"), "note#ev-1", NOW)
                .await
                .unwrap(),
            None,
            "per account"
        );
        assert_eq!(store.intent(&a, "note#ev-1", keep).await.unwrap(), None);
        assert!(
            store
                .advance_version(
                    &a,
                    BoardRef {
                        kind: BoardObjectKind::Customer,
                        id: 7
                    },
                    1
                )
                .await
                .unwrap()
        );

        let store = Arc::new(store);
        let racers: Vec<_> = (0..6)
            .map(|_| {
                let (store, a) = (Arc::clone(&store), a.clone());
                tokio::spawn(async move { store.advance_version(&a, project, 10).await.unwrap() })
            })
            .collect();
        let mut moved = 0;
        for r in racers {
            moved += usize::from(r.await.unwrap());
        }
        assert_eq!(moved, 1);
    }

    pub async fn rate_budgets_count_grants_and_noted_429s_per_minute<T: Table>(
        store: TableStore<T>,
    ) {
        let window = Duration::from_millis(2_500);
        // NOW's minute, then calls in the next two minutes.
        let minute = |n: i64| {
            let ms = (NOW.unix_timestamp_nanos() / 1_000_000) as i64;
            ms - ms.rem_euclid(60_000) + n * 60_000
        };
        let at = |ms: i64| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
        };
        assert_eq!(
            store
                .take("hubspot#9", 22, window, 3, at(minute(0) + 10))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .take("hubspot#9", 22, window, 2, at(minute(1) + 10))
                .await
                .unwrap(),
            None
        );
        store
            .note("hubspot#9", "rate_limited", 1, at(minute(1) + 20))
            .await
            .unwrap();
        assert_eq!(
            store
                .take("hubspot#9", 22, window, 1, at(minute(1) + 30))
                .await
                .unwrap(),
            None,
            "a noted 429 leaves the window's calls as they were"
        );
        let usage = store
            .usage("hubspot#9", window, at(minute(1) + 40))
            .await
            .unwrap();
        assert_eq!(usage.in_window, 3, "the calls of the last 2.5 s");
        assert_eq!(usage.minutes.len(), 2);
        assert_eq!(
            (usage.minutes[0].minute_ms, usage.minutes[0].granted),
            (minute(0), 3)
        );
        assert_eq!(
            (usage.minutes[1].minute_ms, usage.minutes[1].granted),
            (minute(1), 3)
        );
        assert_eq!(usage.minutes[1].noted.get("rate_limited"), Some(&1));
        // Fifteen minutes on, the first minute is gone; an unknown bucket is empty.
        let later = store
            .usage("hubspot#9", window, at(minute(15) + 1))
            .await
            .unwrap();
        assert_eq!(later.in_window, 0);
        assert_eq!(later.minutes.len(), 1);
        assert_eq!(later.minutes[0].minute_ms, minute(1));
        let none = store.usage("hubspot#404", window, NOW).await.unwrap();
        assert_eq!(none, board_hubspot::ports::BudgetUsage::default());
    }

    pub async fn rate_budgets_never_hand_out_more_than_their_capacity<T: Table>(
        store: TableStore<T>,
    ) {
        let window = Duration::from_secs(10);
        let at = |ms: i64| NOW + time::Duration::milliseconds(ms);
        for ms in [0, 1_000, 2_000, 3_000] {
            assert_eq!(
                store.take("hubspot#1", 5, window, 1, at(ms)).await.unwrap(),
                None
            );
        }
        let wait = store
            .take("hubspot#1", 5, window, 2, at(4_000))
            .await
            .unwrap()
            .expect("two more than the window holds");
        assert_eq!(
            wait,
            Duration::from_secs(6),
            "the first call leaves the window at 10 s"
        );
        assert_eq!(
            store
                .take("hubspot#1", 5, window, 1, at(4_000))
                .await
                .unwrap(),
            None,
            "one still fits"
        );
        let wait = store
            .take("hubspot#1", 5, window, 1, at(9_999))
            .await
            .unwrap()
            .expect("five in the last 10 s");
        assert_eq!(wait, Duration::from_millis(1));
        assert_eq!(
            store
                .take("hubspot#1", 5, window, 1, at(10_000))
                .await
                .unwrap(),
            None,
            "the call at 0 s has left the window"
        );
        assert!(
            store
                .take("hubspot#1", 5, window, 1, at(10_500))
                .await
                .unwrap()
                .is_some(),
            "never more than 5 in any 10 s, however long the budget was idle before"
        );
        assert_eq!(
            store.take("hubspot#2", 5, window, 5, NOW).await.unwrap(),
            None,
            "budgets are separate"
        );

        let store = Arc::new(store);
        let takers: Vec<_> = (0..12)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .take("board#acct-a", 3, Duration::from_secs(1), 1, NOW)
                        .await
                })
            })
            .collect();
        let mut granted = 0;
        for t in takers {
            match t.await.unwrap() {
                Ok(None) => granted += 1,
                Ok(Some(_)) | Err(StoreError::Conflict) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(granted, 3, "concurrent takers share one bucket");
    }

    pub async fn table_limits_transactions_and_pagination<T: Table>(store: TableStore<T>) {
        let table = store.table();
        let items = |n: usize, pk: &str| -> Vec<Item> {
            (0..n)
                .map(|i| Item::new(Key::new(pk, format!("{i:03}"))).with_n("n", i as i64))
                .collect()
        };
        assert!(
            matches!(
                table.batch_put(items(26, "P#over")).await,
                Err(TableError::Limit(_))
            ),
            "26 refused as by DynamoDB"
        );
        let none = table
            .query(Query::new(Index::Primary, "P#over"))
            .await
            .unwrap();
        assert!(none.items.is_empty(), "nothing written by a refused batch");
        table.batch_put(items(25, "P#page")).await.unwrap();

        let mut query = Query::new(Index::Primary, "P#page");
        query.limit = 10;
        let mut got = Vec::new();
        loop {
            let page = table.query(query.clone()).await.unwrap();
            got.extend(page.items.iter().map(|i| i.key.sk.clone()));
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = (0..25).map(|i| format!("{i:03}")).collect();
        assert_eq!(got, expected);

        let mut descending = Query::new(Index::Primary, "P#page");
        descending.descending = true;
        descending.limit = 3;
        let page = table.query(descending).await.unwrap();
        assert_eq!(
            page.items
                .iter()
                .map(|i| i.key.sk.as_str())
                .collect::<Vec<_>>(),
            ["024", "023", "022"]
        );

        let mut bad = Query::new(Index::Primary, "P#page");
        bad.cursor = Some("%%%".into());
        assert!(matches!(table.query(bad).await, Err(TableError::BadCursor)));

        // A transaction with one failing condition writes nothing.
        let existing = Key::new("P#page", "000");
        let fresh = Item::new(Key::new("P#tx", "new")).with_s("x", "y");
        let result = table
            .transact(vec![
                TxOp::Put(fresh.clone(), Cond::NotExists),
                TxOp::Check(existing.clone(), Cond::Eq("n".into(), Value::N(99))),
            ])
            .await;
        match result {
            Err(TableError::TransactionCanceled(reasons)) => {
                assert_eq!(reasons.len(), 2);
                assert!(reasons[0].is_none() && reasons[1].is_some(), "{reasons:?}");
            }
            other => panic!("expected a cancelled transaction, got {other:?}"),
        }
        assert!(
            table.get(&fresh.key).await.unwrap().is_none(),
            "no half-written transaction"
        );
        table
            .transact(vec![
                TxOp::Put(fresh.clone(), Cond::NotExists),
                TxOp::Check(existing, Cond::Eq("n".into(), Value::N(0))),
            ])
            .await
            .unwrap();
        assert!(table.get(&fresh.key).await.unwrap().is_some());

        // Atomic counters and conditional deletes.
        let counter = Key::new("P#counter", "c");
        use board_hubspot::adapters::table::Change;
        for _ in 0..3 {
            table
                .update(&counter, vec![Change::Add("hits".into(), 1)], Cond::Always)
                .await
                .unwrap();
        }
        assert_eq!(
            table.get(&counter).await.unwrap().unwrap().n("hits"),
            Some(3)
        );
        assert!(matches!(
            table.delete(&counter, Cond::Lt("hits".into(), 3)).await,
            Err(TableError::ConditionFailed)
        ));
        assert!(
            table
                .delete(&counter, Cond::Le("hits".into(), 3))
                .await
                .unwrap()
                .is_some()
        );

        // The second index answers by its own keys.
        let indexed = Item::new(Key::new("P#g2", "1"))
            .with_s(attr::GSI2_PK, "G#x")
            .with_s(attr::GSI2_SK, "b");
        table.put(indexed, Cond::Always).await.unwrap();
        let by_index = table.query(Query::new(Index::Gsi2, "G#x")).await.unwrap();
        assert_eq!(by_index.items.len(), 1);
    }
}

macro_rules! contract_suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(board_hubspot::adapters::store::MemoryStore::in_memory()).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(tests::dynamo_store().await).await;
                }
            )*
        }
    };
}

contract_suite!(
    connections_keep_revisions_and_route_by_portal,
    two_writers_of_one_revision_one_wins,
    one_time_tokens_are_single_use_and_expire,
    leases_exclude_until_expiry,
    a_deal_is_claimed_by_one_account_atomically,
    a_deal_is_claimed_before_its_project_exists,
    links_are_found_from_both_sides,
    history_pages_newest_first_with_ttl,
    board_events_once_and_versions_forward,
    table_limits_transactions_and_pagination,
    rate_budgets_never_hand_out_more_than_their_capacity,
    rate_budgets_count_grants_and_noted_429s_per_minute,
    a_link_is_deleted_whole_and_only_unchanged,
);

/// A table whose `n`-th write fails after the write took effect (the answer
/// is lost: a timeout, a crash between two steps). Reads pass through.
struct LosesAnswerOfWrite<T: Table> {
    inner: T,
    writes: std::sync::atomic::AtomicUsize,
    fail_at: usize,
}

impl<T: Table> LosesAnswerOfWrite<T> {
    fn new(inner: T, fail_at: usize) -> Self {
        Self {
            inner,
            writes: std::sync::atomic::AtomicUsize::new(0),
            fail_at,
        }
    }

    fn lost<R>(&self, result: Result<R, TableError>) -> Result<R, TableError> {
        let n = self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if n == self.fail_at && result.is_ok() {
            return Err(TableError::Backend(anyhow::anyhow!("timed out (injected)")));
        }
        result
    }
}

#[async_trait::async_trait]
impl<T: Table> Table for LosesAnswerOfWrite<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), TableError> {
        let r = self.inner.put(item, cond).await;
        self.lost(r)
    }
    async fn delete(&self, key: &Key, cond: Cond) -> Result<Option<Item>, TableError> {
        let r = self.inner.delete(key, cond).await;
        self.lost(r)
    }
    async fn update(
        &self,
        key: &Key,
        changes: Vec<board_hubspot::adapters::table::Change>,
        cond: Cond,
    ) -> Result<Item, TableError> {
        let r = self.inner.update(key, changes, cond).await;
        self.lost(r)
    }
    async fn query(
        &self,
        query: Query,
    ) -> Result<board_hubspot::adapters::table::QueryPage, TableError> {
        self.inner.query(query).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        let r = self.inner.transact(ops).await;
        self.lost(r)
    }
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), TableError> {
        let r = self.inner.batch_put(items).await;
        self.lost(r)
    }
}

/// Admission fails at every step it takes in turn; whatever was written, the
/// redelivered event (receive count 2) is not judged "seen, newer version
/// applied" and dropped: either nothing was written and it is admitted now, or
/// the event and its version were both written and the version is the event's.
async fn admission_is_all_or_nothing<T: Table>(make: impl AsyncFn() -> T) {
    let a = account("acct-a");
    let keep = NOW + time::Duration::days(14);
    let project = BoardRef {
        kind: BoardObjectKind::Project,
        id: 70,
    };
    for fail_at in 1..=3 {
        let store = TableStore::new(LosesAnswerOfWrite::new(make().await, fail_at));
        let event = format!("ev-{fail_at}");
        let first = store.admit(&a, &event, Some((project, 5)), NOW, keep).await;
        if let Ok(admission) = first {
            assert_eq!(admission, Admission::Admitted, "step {fail_at}");
            continue;
        }
        // The redelivery: admitted afresh, or seen with its own version applied.
        match store
            .admit(&a, &event, Some((project, 5)), NOW, keep)
            .await
            .unwrap()
        {
            Admission::Admitted => {}
            Admission::Seen => assert_eq!(
                store.applied_version(&a, project).await.unwrap(),
                Some(5),
                "step {fail_at}: seen, so its version must be applied"
            ),
            Admission::Stale => panic!("step {fail_at}: the event's own version is not stale"),
        }
    }
    // Stale and seen are told apart, and a second copy of a stale event is seen.
    let store = TableStore::new(make().await);
    assert_eq!(
        store
            .admit(&a, "ev-new", Some((project, 9)), NOW, keep)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        store
            .admit(&a, "ev-old", Some((project, 8)), NOW, keep)
            .await
            .unwrap(),
        Admission::Stale
    );
    assert_eq!(
        store
            .admit(&a, "ev-old", Some((project, 8)), NOW, keep)
            .await
            .unwrap(),
        Admission::Seen
    );
    assert_eq!(
        store.admit(&a, "doc-1", None, NOW, keep).await.unwrap(),
        Admission::Admitted,
        "documents are not versions"
    );
    assert_eq!(
        store.admit(&a, "doc-1", None, NOW, keep).await.unwrap(),
        Admission::Seen
    );
    assert!(
        matches!(
            store
                .admit(&a, "ev-huge", Some((project, u64::MAX)), NOW, keep)
                .await,
            Err(StoreError::Limit(_))
        ),
        "a version the store cannot hold"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_admission_is_all_or_nothing() {
    admission_is_all_or_nothing(async || {
        board_hubspot::adapters::table::memory::MemoryTable::new()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_admission_is_all_or_nothing() {
    admission_is_all_or_nothing(tests::dynamo_table).await;
}

#[tokio::test]
async fn the_dynamodb_table_declares_ttl_on_the_ttl_attribute() {
    let table = tests::dynamo_table().await;
    assert_eq!(
        table.ttl_attribute().await.unwrap().as_deref(),
        Some(attr::TTL)
    );
}
