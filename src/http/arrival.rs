//! When each request began to arrive on a client connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::io::{Watch, Watched};
use crate::sync::AtomicInstant;

/// A client connection that notes when each request's first bytes are read
/// (the first read after the connection last wrote), so that the overhead
/// the HTTP tier reports (`x-llmgate-overhead-ms` and the metrics' overhead
/// histogram) counts hyper reading and parsing the request too, not only
/// the time from the service's call.
///
/// Wrap each accepted connection, and put its [`Arrival`] into the
/// extensions of every request served on it. Without one, the clock starts
/// when the HTTP tier is called.
///
/// ```
/// use llmgate::http::{Arrival, ArrivalIo};
/// # async fn serve(tcp: tokio::net::TcpStream) {
/// let io = ArrivalIo::new(tcp);
/// let arrival: Arrival = io.arrival();
/// // hyper serves `hyper_util::rt::TokioIo::new(io)` with a service that
/// // does, for each request: `req.extensions_mut().insert(arrival.clone());`
/// # }
/// ```
#[derive(Debug)]
pub struct ArrivalIo<T>(Watched<T, Arrival>);

/// When the request being served on a connection began to arrive; see
/// [`ArrivalIo`].
#[derive(Clone, Debug, Default)]
pub struct Arrival(Arc<AtomicInstant>);

impl<T> ArrivalIo<T> {
    /// Wraps a connection.
    pub fn new(io: T) -> Self {
        Self(Watched {
            io,
            watch: Arrival::default(),
        })
    }

    /// The connection's arrival clock, to put into each request's
    /// extensions.
    pub fn arrival(&self) -> Arrival {
        self.0.watch.clone()
    }

    /// The connection.
    pub fn into_inner(self) -> T {
        self.0.io
    }
}

impl Arrival {
    /// When the request now being served began to arrive: `None` before a
    /// read, and for a request that came in the same read as the one before
    /// it (pipelined), whose arrival is not known.
    pub(crate) fn started(&self) -> Option<Instant> {
        self.0.get()
    }
}

impl Watch for Arrival {
    fn read(&self) {
        if !self.0.is_set() {
            self.0.set_now();
        }
    }

    fn wrote(&self) {
        // An answer went out: the next read begins the next request.
        self.0.clear();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ArrivalIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ArrivalIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_request_arrives_with_the_first_read_after_an_answer() {
        let (client, server) = tokio::io::duplex(64);
        let (mut client, mut server) = (client, ArrivalIo::new(server));
        let arrival = server.arrival();
        let mut buf = [0u8; 8];
        assert_eq!(arrival.started(), None, "nothing read yet");

        client.write_all(b"req1").await.unwrap();
        server.read_exact(&mut buf[..2]).await.unwrap();
        let first = arrival.started().expect("the first bytes were read");
        server.read_exact(&mut buf[..2]).await.unwrap();
        assert_eq!(
            arrival.started(),
            Some(first),
            "the rest of the same request"
        );
        assert!(first <= Instant::now());

        server.write_all(b"ans1").await.unwrap();
        assert_eq!(
            arrival.started(),
            None,
            "answered: the next request has not come"
        );
        client.write_all(b"req2").await.unwrap();
        server.read_exact(&mut buf[..4]).await.unwrap();
        let second = arrival.started().expect("the next request");
        assert!(second >= first);
    }
}
