//! The bulkhead's places are shared by clones across threads: never more than the limit in
//! flight, none lost.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::bounded_real;
use http::{Request, Response};
use tower::{Layer, ServiceExt, service_fn};
use towline_breaker::BulkheadLayer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_on_many_threads_never_pass_the_limit() {
    bounded_real(async {
        const LIMIT: usize = 3;
        const CALLS: usize = 200;
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (counting, peak) = (now.clone(), most.clone());
        let upstream = service_fn(move |_req: Request<()>| {
            let (now, most) = (counting.clone(), peak.clone());
            async move {
                let in_flight = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(in_flight, Ordering::SeqCst);
                for _ in 0..4 {
                    tokio::task::yield_now().await;
                }
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Infallible>(Response::new(()))
            }
        });
        let layer = BulkheadLayer::new(LIMIT).queue(CALLS);
        let service = layer.layer(upstream);
        let tasks: Vec<_> = (0..CALLS)
            .map(|_| {
                let service = service.clone();
                tokio::spawn(async move {
                    let request = Request::get("http://api.example/").body(()).unwrap();
                    service.oneshot(request).await
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().is_ok(), "every call waits its turn");
        }
        assert_eq!(most.load(Ordering::SeqCst), LIMIT);
        assert_eq!(now.load(Ordering::SeqCst), 0);
        assert_eq!(
            (layer.in_flight("api.example"), layer.waiting("api.example")),
            (0, 0)
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_places_add_up_across_threads() {
    bounded_real(async {
        const LIMIT: usize = 2;
        let layer = BulkheadLayer::new(LIMIT).queue(1);
        let upstream = service_fn(|_req: Request<()>| async {
            tokio::task::yield_now().await;
            Ok::<_, Infallible>(Response::new(()))
        });
        let service = layer.layer(upstream);
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let service = service.clone();
                tokio::spawn(async move {
                    let request = Request::get(format!("http://k{}.example/", i % 4))
                        .body(())
                        .unwrap();
                    service.oneshot(request).await.is_ok()
                })
            })
            .collect();
        let mut sent = 0;
        for task in tasks {
            sent += usize::from(task.await.unwrap());
        }
        assert!(sent >= 4 * LIMIT, "each key sent at least its limit");
        for key in 0..4 {
            let key = format!("k{key}.example");
            assert_eq!((layer.in_flight(&key), layer.waiting(&key)), (0, 0));
        }
    })
    .await
}
