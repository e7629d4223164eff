//! The soak's fast variant, run with every test: 1,000 mixed changes on both
//! sides under faults, duplicates, reordering and worker crashes; nothing may
//! be lost, applied twice or end in a state the script does not imply.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_changes_under_faults_end_exactly_as_scripted() {
    let figures = loadtest::soak::run(loadtest::soak::Options {
        events: 1_000,
        abort_every: 20,
        ..loadtest::soak::Options::default()
    })
    .await
    .expect("the soak runs to the end");
    println!("{}", serde_json::Value::Object(figures.clone()));
    for figure in [
        "lost",
        "duplicate_effects",
        "final_state_mismatches",
        "unexplained_errors",
        "dead_letters",
    ] {
        assert_eq!(figures[figure], 0, "{figure}: {figures:?}");
    }
    assert!(
        figures["worker_aborts"].as_u64().unwrap() >= 2,
        "the worker was aborted mid-batch: {figures:?}"
    );
}
