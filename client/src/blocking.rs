//! A blocking wrapper for code that is not async: [`blocking::Client`](Client) owns a
//! small runtime and runs each call to completion on it.

use std::time::Duration;

use bytes::Bytes;
use cachalot_protocol::Frame;

use crate::client::Ttl;
use crate::cmd::{Cmd, ToArg};
use crate::error::Error;

/// Worker threads of the wrapper's runtime: connection tasks only move bytes, one is
/// plenty.
const RUNTIME_WORKER_THREADS: usize = 1;

/// A blocking client: the async [`crate::Client`] on a runtime of its own.
///
/// Must not be used from inside an async runtime (blocking there would stall it); use
/// [`crate::Client`] there.
///
/// # Examples
///
/// ```no_run
/// let client = cachalot_client::blocking::Client::connect(["127.0.0.1:6379"])?;
/// client.set("k", "v")?;
/// assert_eq!(client.get("k")?.as_deref(), Some(&b"v"[..]));
/// # Ok::<(), cachalot_client::Error>(())
/// ```
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: crate::Client,
}

impl Client {
    /// Connects with default settings; see [`crate::Client::connect`].
    ///
    /// # Errors
    /// As [`crate::Client::connect`], or [`Error::Runtime`] if the runtime cannot start.
    pub fn connect<I, S>(seeds: I) -> Result<Client, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Client::from_builder(crate::Client::builder(seeds))
    }

    /// Connects with a configured builder.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn from_builder(builder: crate::ClientBuilder) -> Result<Client, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_WORKER_THREADS)
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime(std::sync::Arc::new(e)))?;
        let inner = runtime.block_on(builder.connect())?;
        Ok(Client { runtime, inner })
    }

    /// The async client underneath (for example to hand to async code elsewhere).
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// See [`crate::Client::cmd`].
    ///
    /// # Errors
    /// As there.
    pub fn cmd(&self, cmd: &Cmd) -> Result<Frame, Error> {
        self.runtime.block_on(self.inner.cmd(cmd))
    }

    /// See [`crate::Client::get`].
    ///
    /// # Errors
    /// As there.
    pub fn get(&self, key: impl ToArg) -> Result<Option<Bytes>, Error> {
        self.runtime.block_on(self.inner.get(key))
    }

    /// See [`crate::Client::set`].
    ///
    /// # Errors
    /// As there.
    pub fn set(&self, key: impl ToArg, value: impl ToArg) -> Result<(), Error> {
        self.runtime.block_on(self.inner.set(key, value))
    }

    /// See [`crate::Client::set_ex`].
    ///
    /// # Errors
    /// As there.
    pub fn set_ex(&self, key: impl ToArg, value: impl ToArg, ttl: Duration) -> Result<(), Error> {
        self.runtime.block_on(self.inner.set_ex(key, value, ttl))
    }

    /// See [`crate::Client::del`].
    ///
    /// # Errors
    /// As there.
    pub fn del<K: ToArg>(&self, keys: &[K]) -> Result<i64, Error> {
        self.runtime.block_on(self.inner.del(keys))
    }

    /// See [`crate::Client::mget`].
    ///
    /// # Errors
    /// As there.
    pub fn mget<K: ToArg>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>, Error> {
        self.runtime.block_on(self.inner.mget(keys))
    }

    /// See [`crate::Client::mset`].
    ///
    /// # Errors
    /// As there.
    pub fn mset<K: ToArg, V: ToArg>(&self, pairs: &[(K, V)]) -> Result<(), Error> {
        self.runtime.block_on(self.inner.mset(pairs))
    }

    /// See [`crate::Client::incr_by`].
    ///
    /// # Errors
    /// As there.
    pub fn incr_by(&self, key: impl ToArg, by: i64) -> Result<i64, Error> {
        self.runtime.block_on(self.inner.incr_by(key, by))
    }

    /// See [`crate::Client::ttl`].
    ///
    /// # Errors
    /// As there.
    pub fn ttl(&self, key: impl ToArg) -> Result<Ttl, Error> {
        self.runtime.block_on(self.inner.ttl(key))
    }

    /// See [`crate::Client::hset`].
    ///
    /// # Errors
    /// As there.
    pub fn hset<F: ToArg, V: ToArg>(
        &self,
        key: impl ToArg,
        fields: &[(F, V)],
    ) -> Result<i64, Error> {
        self.runtime.block_on(self.inner.hset(key, fields))
    }

    /// See [`crate::Client::hget`].
    ///
    /// # Errors
    /// As there.
    pub fn hget(&self, key: impl ToArg, field: impl ToArg) -> Result<Option<Bytes>, Error> {
        self.runtime.block_on(self.inner.hget(key, field))
    }

    /// See [`crate::Client::hgetall`].
    ///
    /// # Errors
    /// As there.
    pub fn hgetall(&self, key: impl ToArg) -> Result<Vec<(Bytes, Bytes)>, Error> {
        self.runtime.block_on(self.inner.hgetall(key))
    }
}
