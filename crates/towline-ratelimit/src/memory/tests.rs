use super::*;

fn answer<T>(future: StoreFuture<T>) -> T {
    match future.now() {
        Ok(answer) => answer.expect("no error"),
        Err(_) => panic!("in memory: answered at once"),
    }
}

fn reserve(store: &InMemoryStore, calls: u32, per: Duration, latest: Duration) -> Slot {
    answer(store.reserve("k", Quota::new(calls, per), Duration::ZERO, latest))
}

fn waits(slot: Slot) -> Duration {
    match slot {
        Slot::Reserved(reservation) => reservation.wait(),
        Slot::Full { .. } => panic!("refused"),
    }
}

#[tokio::test(start_paused = true)]
async fn gates_open_on_time_and_the_fast_path_recovers() {
    let store = InMemoryStore::default();
    answer(store.close("a", Duration::from_secs(2)));
    answer(store.close("a", Duration::from_secs(1)));
    assert_eq!(
        answer(store.closed_for("a")),
        Some(Duration::from_secs(2)),
        "the later one wins"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(answer(store.closed_for("a")), None);
    assert!(store.is_idle());
}

#[tokio::test(start_paused = true)]
async fn a_quota_never_lets_more_calls_into_any_window() {
    let store = InMemoryStore::default();
    let per = Duration::from_secs(10);
    let far = Duration::from_secs(3600);
    let slots: Vec<Duration> = (0..25)
        .map(|_| waits(reserve(&store, 10, per, far)))
        .collect();
    // Ten at once, ten after one window, five after two.
    assert!(slots[..10].iter().all(|s| s.is_zero()));
    assert!(slots[10..20].iter().all(|s| *s == per));
    assert!(slots[20..].iter().all(|s| *s == 2 * per));
    for (i, slot) in slots.iter().enumerate() {
        let in_window = slots
            .iter()
            .filter(|s| **s + per > *slot && **s <= *slot)
            .count();
        assert!(in_window <= 10, "slot {i}: {in_window} calls in one window");
    }
}

#[tokio::test(start_paused = true)]
async fn a_reservation_past_the_latest_instant_is_refused_and_not_kept() {
    let store = InMemoryStore::default();
    let per = Duration::from_secs(60);
    assert_eq!(
        waits(reserve(&store, 1, per, Duration::ZERO)),
        Duration::ZERO
    );
    assert_eq!(
        reserve(&store, 1, per, Duration::from_secs(59)),
        Slot::Full { earliest: per }
    );
    assert_eq!(waits(reserve(&store, 1, per, per)), per);
}

#[tokio::test(start_paused = true)]
async fn a_released_reservation_frees_its_slot() {
    let store = InMemoryStore::default();
    let per = Duration::from_secs(1);
    let far = Duration::from_secs(60);
    reserve(&store, 1, per, far);
    let Slot::Reserved(second) = reserve(&store, 1, per, far) else {
        panic!("refused")
    };
    assert_eq!(second.wait(), per);
    store.release("k", second);
    assert_eq!(
        waits(reserve(&store, 1, per, far)),
        per,
        "the freed slot again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_store_forgets_the_entry_expiring_soonest() {
    let store = InMemoryStore::with_max_keys(3);
    for (key, secs) in [("a", 30), ("b", 10), ("c", 20)] {
        answer(store.close(key, Duration::from_secs(secs)));
    }
    // Extended after it was put in: "b" is no longer the soonest.
    answer(store.close("b", Duration::from_secs(40)));
    answer(store.close("d", Duration::from_secs(50)));
    assert_eq!(store.len(), 3);
    assert_eq!(
        answer(store.closed_for("c")),
        None,
        "c expired soonest: forgotten"
    );
    for key in ["a", "b", "d"] {
        assert!(answer(store.closed_for(key)).is_some(), "{key} kept");
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_store_removes_expired_entries_before_live_ones() {
    let store = InMemoryStore::with_max_keys(2);
    answer(store.close("short", Duration::from_secs(1)));
    answer(store.close("long", Duration::from_secs(100)));
    tokio::time::advance(Duration::from_secs(2)).await;
    // Room comes from the sweep, which runs first.
    answer(store.close("new", Duration::from_secs(100)));
    assert!(answer(store.closed_for("long")).is_some());
    assert!(answer(store.closed_for("new")).is_some());
    assert_eq!(store.len(), 2);
}
