//! [`ReqwestService`]: a `reqwest::Client` as a `Service<http::Request<B>>`.

use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body;
use reqwest::redirect::Policy;
use tower::Service;
use towline_core::BoxError;

use crate::error::into_box_error;
use crate::future::ResponseFuture;

/// A [`reqwest::Client`] as a `Service<http::Request<B>>` answering `http::Response<ResponseBody>`,
/// for the request body `B` it is made for (`Full`, `Empty`, `String`, a
/// [`towline_core::ReplayBody`], ...), as hyper-util's `Client<C, B>` is.
///
/// Name `B` where the service is made (`ReqwestService::<Full<Bytes>>::new()`, or a type
/// annotation) when you put the standard `Pipeline` over it: see "Why `B` is in the type"
/// below.
///
/// It never follows a redirect: it is made only by [`new`](ReqwestService::new) and
/// [`from_builder`](ReqwestService::from_builder), which set the client's redirect policy to
/// [`Policy::none()`]. Clones share one client (its connection pool), as reqwest's do; so does
/// [`with_body`](ReqwestService::with_body), for another body type.
///
/// A request reqwest cannot take (a URI without a scheme or host, say) fails with reqwest's
/// builder error before anything is sent.
///
/// ```
/// use bytes::Bytes;
/// use http::Request;
/// use http_body_util::Full;
/// use tower::ServiceExt;
/// use towline_reqwest::ReqwestService;
/// use towline_testkit::{Reply, TestServer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), towline_core::BoxError> {
/// let server = TestServer::start().await;
/// server.route("/orders", Reply::status(201));
///
/// let service = ReqwestService::<Full<Bytes>>::new()?;
/// let request = Request::post(server.url("/orders"))
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from_static(br#"{"item":"rope"}"#)))?;
/// let response = service.oneshot(request).await?;
/// assert_eq!(response.status(), 201);
/// assert_eq!(server.requests_to("/orders")[0].body_text(), r#"{"item":"rope"}"#);
/// # Ok(()) }
/// ```
///
/// # Why `B` is in the type
///
/// In `service.oneshot(request)` rustc checks that `service` is a `Service<?R>` before it
/// looks at `request`, with `?R` still unknown. Through the standard `Pipeline` (some fifteen
/// layers, each bounding its inner service's `Response` and `Error`, three `Either`s) that
/// check is a `Service<Request<?B>>` for an unknown body `?B`, which the `B: Replayable` bounds
/// of the retry, hedging and auth layers and this service's `B: Body` leave ambiguous; the old
/// trait solver then re-proves every inner layer's projection bounds again and again, time and
/// memory growing exponentially with the depth (rustc 1.95 ran out of memory, over 24 GB, on the
/// `Pipeline` over a service with `impl<B> Service<Request<B>>`; two more layers of any kind do
/// it, the span layers are not special). A service whose own type names `B`, as
/// hyper-util's `Client<C, B>` does, settles `?B` at once and the check takes well under a
/// second. `B` must be known before the call: left to be inferred from `request`, it is not.
pub struct ReqwestService<B> {
    client: reqwest::Client,
    // `fn(B)`: the service holds no `B`, so it is `Send`, `Sync` and `Clone` whatever `B` is.
    _body: PhantomData<fn(B)>,
}

impl<B> Clone for ReqwestService<B> {
    fn clone(&self) -> Self {
        ReqwestService {
            client: self.client.clone(),
            _body: PhantomData,
        }
    }
}

impl<B> fmt::Debug for ReqwestService<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestService")
            .field("client", &self.client)
            .finish()
    }
}

impl<B> ReqwestService<B> {
    /// A service over a new client with reqwest's default settings, except that redirects are
    /// not followed.
    ///
    /// Fails only if reqwest cannot build a client (see [`reqwest::ClientBuilder::build`]).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use towline_reqwest::ReqwestService;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), reqwest::Error> {
    /// let service = ReqwestService::<Full<Bytes>>::new()?;
    /// # let _ = service;
    /// # Ok(()) }
    /// ```
    pub fn new() -> Result<Self, reqwest::Error> {
        Self::from_builder(reqwest::Client::builder())
    }

    /// A service over the client `builder` builds, with its redirect policy replaced by
    /// [`Policy::none()`] (whatever `builder` had: following is the one thing not allowed).
    ///
    /// Everything else is yours: pool, connect timeout, proxies, TLS (with reqwest's TLS
    /// features), default headers. Prefer towline's `TimeoutLayer` and `DeadlineLayer` to
    /// reqwest's `timeout`: they know the call's deadline. reqwest's timeouts still classify
    /// as `Timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use towline_reqwest::ReqwestService;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), reqwest::Error> {
    /// let builder = reqwest::Client::builder()
    ///     .connect_timeout(Duration::from_secs(2))
    ///     .pool_max_idle_per_host(8)
    ///     // Overridden: a ReqwestService never follows a redirect.
    ///     .redirect(reqwest::redirect::Policy::limited(5));
    /// let service = ReqwestService::<Full<Bytes>>::from_builder(builder)?;
    /// # let _ = service;
    /// # Ok(()) }
    /// ```
    pub fn from_builder(builder: reqwest::ClientBuilder) -> Result<Self, reqwest::Error> {
        let client = builder.redirect(Policy::none()).build()?;
        Ok(ReqwestService {
            client,
            _body: PhantomData,
        })
    }

    /// The same client (one connection pool) as a service for requests with body `B2`.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{Empty, Full};
    /// use towline_reqwest::ReqwestService;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), reqwest::Error> {
    /// let service = ReqwestService::<Full<Bytes>>::new()?;
    /// let gets: ReqwestService<Empty<Bytes>> = service.with_body();
    /// # let _ = gets;
    /// # Ok(()) }
    /// ```
    pub fn with_body<B2>(&self) -> ReqwestService<B2> {
        ReqwestService {
            client: self.client.clone(),
            _body: PhantomData,
        }
    }

    /// The client inside (it never follows redirects).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use towline_reqwest::ReqwestService;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), reqwest::Error> {
    /// let service = ReqwestService::<Full<Bytes>>::new()?;
    /// let client: &reqwest::Client = service.client();
    /// # let _ = client;
    /// # Ok(()) }
    /// ```
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl<B> Service<http::Request<B>> for ReqwestService<B>
where
    B: Body + Send + Sync + 'static,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<crate::ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Service::<reqwest::Request>::poll_ready(&mut self.client, cx).map_err(into_box_error)
    }

    fn call(&mut self, request: http::Request<B>) -> ResponseFuture {
        match reqwest::Request::try_from(request.map(reqwest::Body::wrap)) {
            Ok(request) => ResponseFuture::sending(self.client.call(request)),
            Err(error) => ResponseFuture::rejected(error),
        }
    }
}
