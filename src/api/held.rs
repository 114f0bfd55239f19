//! A response body that holds something (an in-flight count, a permit)
//! until the body ends or is dropped, and is otherwise the body itself:
//! the same frames, and the same size hint, so a reply whose length is
//! known keeps its `Content-Length` instead of turning chunked (which
//! `map_frame` did: it does not pass the size on).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

struct Held<G> {
    inner: Body,
    _held: G,
}

impl<G: Send + Unpin + 'static> hyper::body::Body for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `response`, keeping `held` alive for as long as its body.
pub fn hold<G: Send + Unpin + 'static>(response: Response, held: G) -> Response {
    response.map(|inner| Body::new(Held { inner, _held: held }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::body::Body as _;
    use std::sync::Arc;

    #[tokio::test]
    async fn the_length_is_kept_and_the_hold_lasts_as_long_as_the_body() {
        let held = Arc::new(());
        let response = hold(Response::new(Body::from("twelve bytes")), held.clone());
        assert_eq!(response.body().size_hint().exact(), Some(12));
        assert_eq!(Arc::strong_count(&held), 2);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"twelve bytes");
        assert_eq!(Arc::strong_count(&held), 1, "released with the body");
    }
}
