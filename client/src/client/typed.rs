//! The typed API: [`Client`] methods for the commands Cachalot serves (strings, keys and
//! expiry, hashes), and the splitting of multi-key commands by slot.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use cachalot_protocol::{key_slot, Frame};
use futures_util::future::try_join_all;
use tokio::time::Instant;

use super::Client;
use crate::backend::Backend;
use crate::cmd::{Cmd, ToArg};
use crate::error::Error;

/// A key's remaining time to live, as `PTTL` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// A bulk string reply or nil.
fn bulk_or_nil(command: &'static str, frame: Frame) -> Result<Option<Bytes>, Error> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => Ok(Some(b)),
        Frame::Null | Frame::NullArray => Ok(None),
        other => Err(Error::unexpected(command, &other)),
    }
}

fn integer(command: &'static str, frame: Frame) -> Result<i64, Error> {
    match frame {
        Frame::Integer(n) => Ok(n),
        other => Err(Error::unexpected(command, &other)),
    }
}

fn ok(command: &'static str, frame: Frame) -> Result<(), Error> {
    match frame {
        Frame::Simple(s) if s.as_ref() == b"OK" => Ok(()),
        other => Err(Error::unexpected(command, &other)),
    }
}

fn array(command: &'static str, frame: Frame) -> Result<Vec<Frame>, Error> {
    match frame {
        Frame::Array(items) | Frame::Set(items) => Ok(items),
        Frame::NullArray | Frame::Null => Ok(Vec::new()),
        Frame::Map(pairs) => Ok(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        other => Err(Error::unexpected(command, &other)),
    }
}

/// Milliseconds for `PX`/`PEXPIRE`, at least 1 (Redis refuses 0).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Client {
    /// `GET key`.
    ///
    /// # Errors
    /// As [`Client::cmd`]; `WRONGTYPE` for a key holding a hash.
    pub async fn get(&self, key: impl ToArg) -> Result<Option<Bytes>, Error> {
        let key = key.to_arg();
        let cmd = Cmd::new("GET").arg(&key);
        let Some(near) = &self.inner.near else {
            return bulk_or_nil("GET", self.cmd(&cmd).await?);
        };
        if let Some(kept) = near.get(&key) {
            return Ok(kept);
        }
        let keep = near.wants(&key).then_some(&key);
        let slot = key_slot(&key).get();
        let reply = self
            .inner
            .execute_with(&cmd, Some(slot), self.deadline(), keep)
            .await?;
        bulk_or_nil("GET", reply)
    }

    /// `SET key value`.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn set(&self, key: impl ToArg, value: impl ToArg) -> Result<(), Error> {
        ok("SET", self.cmd(&Cmd::new("SET").arg(key).arg(value)).await?)
    }

    /// `SET key value PX ttl`: stores with an expiry (millisecond precision, at least 1 ms).
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn set_ex(
        &self,
        key: impl ToArg,
        value: impl ToArg,
        ttl: Duration,
    ) -> Result<(), Error> {
        let cmd = Cmd::new("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(millis(ttl));
        ok("SET", self.cmd(&cmd).await?)
    }

    /// `SET key value NX`: stores only if the key is missing; `true` if it stored.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn set_nx(&self, key: impl ToArg, value: impl ToArg) -> Result<bool, Error> {
        let reply = self
            .cmd(&Cmd::new("SET").arg(key).arg(value).arg("NX"))
            .await?;
        Ok(bulk_or_nil("SET", reply)?.is_some())
    }

    /// `GETDEL key`.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn get_del(&self, key: impl ToArg) -> Result<Option<Bytes>, Error> {
        bulk_or_nil("GETDEL", self.cmd(&Cmd::new("GETDEL").arg(key)).await?)
    }

    /// `INCRBY key by`; returns the new value.
    ///
    /// # Errors
    /// As [`Client::cmd`]; `ERR value is not an integer or out of range`.
    pub async fn incr_by(&self, key: impl ToArg, by: i64) -> Result<i64, Error> {
        integer(
            "INCRBY",
            self.cmd(&Cmd::new("INCRBY").arg(key).arg(by)).await?,
        )
    }

    /// `INCR key`.
    ///
    /// # Errors
    /// As [`Client::incr_by`].
    pub async fn incr(&self, key: impl ToArg) -> Result<i64, Error> {
        integer("INCR", self.cmd(&Cmd::new("INCR").arg(key)).await?)
    }

    /// `APPEND key value`; returns the new length.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn append(&self, key: impl ToArg, value: impl ToArg) -> Result<i64, Error> {
        integer(
            "APPEND",
            self.cmd(&Cmd::new("APPEND").arg(key).arg(value)).await?,
        )
    }

    /// `STRLEN key`.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn strlen(&self, key: impl ToArg) -> Result<i64, Error> {
        integer("STRLEN", self.cmd(&Cmd::new("STRLEN").arg(key)).await?)
    }

    /// `PEXPIRE key ttl`; `true` if the key exists.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn expire(&self, key: impl ToArg, ttl: Duration) -> Result<bool, Error> {
        let reply = self
            .cmd(&Cmd::new("PEXPIRE").arg(key).arg(millis(ttl)))
            .await?;
        Ok(integer("PEXPIRE", reply)? == 1)
    }

    /// `PERSIST key`; `true` if a TTL was removed.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn persist(&self, key: impl ToArg) -> Result<bool, Error> {
        Ok(integer("PERSIST", self.cmd(&Cmd::new("PERSIST").arg(key)).await?)? == 1)
    }

    /// `PTTL key`.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn ttl(&self, key: impl ToArg) -> Result<Ttl, Error> {
        Ok(
            match integer("PTTL", self.cmd(&Cmd::new("PTTL").arg(key)).await?)? {
                -2 => Ttl::Missing,
                -1 => Ttl::Persistent,
                ms => Ttl::Expires(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
            },
        )
    }

    /// `MGET key...`, split by slot across the cluster; values in the order of `keys`.
    ///
    /// # Errors
    /// The first error any part of the split command returned.
    pub async fn mget<K: ToArg>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>, Error> {
        let keys: Vec<Bytes> = keys.iter().map(ToArg::to_arg).collect();
        let groups = self.by_slot(&keys);
        let deadline = self.deadline();
        let calls = groups.iter().map(|(&slot, idx)| {
            let cmd = Cmd::from_args(
                std::iter::once(Bytes::from_static(b"MGET"))
                    .chain(idx.iter().filter_map(|&i| keys.get(i).cloned())),
            );
            async move { self.inner.execute(&cmd, Some(slot), deadline).await }
        });
        let replies = try_join_all(calls).await?;
        let mut out = vec![None; keys.len()];
        for ((_, idx), reply) in groups.iter().zip(replies) {
            let values = array("MGET", reply)?;
            if values.len() != idx.len() {
                return Err(Error::UnexpectedReply {
                    command: "MGET",
                    reply: format!("{} values for {} keys", values.len(), idx.len()),
                });
            }
            for (&i, value) in idx.iter().zip(values) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = bulk_or_nil("MGET", value)?;
                }
            }
        }
        Ok(out)
    }

    /// `MSET key value ...`, split by slot (each slot's part is atomic on its node; the
    /// whole is not, as in Redis Cluster clients).
    ///
    /// # Errors
    /// The first error any part returned.
    pub async fn mset<K: ToArg, V: ToArg>(&self, pairs: &[(K, V)]) -> Result<(), Error> {
        let keys: Vec<Bytes> = pairs.iter().map(|(k, _)| k.to_arg()).collect();
        let groups = self.by_slot(&keys);
        let deadline = self.deadline();
        let calls = groups.iter().map(|(&slot, idx)| {
            let mut cmd = Cmd::new("MSET");
            for &i in idx {
                if let (Some(k), Some((_, v))) = (keys.get(i), pairs.get(i)) {
                    cmd.push(k);
                    cmd.push(v);
                }
            }
            async move { self.inner.execute(&cmd, Some(slot), deadline).await }
        });
        for reply in try_join_all(calls).await? {
            ok("MSET", reply)?;
        }
        Ok(())
    }

    /// `DEL key...`, split by slot; how many existed.
    ///
    /// # Errors
    /// The first error any part returned.
    pub async fn del<K: ToArg>(&self, keys: &[K]) -> Result<i64, Error> {
        self.counted("DEL", keys).await
    }

    /// `UNLINK key...`, split by slot; how many existed.
    ///
    /// # Errors
    /// The first error any part returned.
    pub async fn unlink<K: ToArg>(&self, keys: &[K]) -> Result<i64, Error> {
        self.counted("UNLINK", keys).await
    }

    /// `EXISTS key...`, split by slot; how many exist (a key named twice counts twice).
    ///
    /// # Errors
    /// The first error any part returned.
    pub async fn exists<K: ToArg>(&self, keys: &[K]) -> Result<i64, Error> {
        self.counted("EXISTS", keys).await
    }

    /// `TOUCH key...`, split by slot; how many exist.
    ///
    /// # Errors
    /// The first error any part returned.
    pub async fn touch<K: ToArg>(&self, keys: &[K]) -> Result<i64, Error> {
        self.counted("TOUCH", keys).await
    }

    /// `HSET key field value ...`; how many fields were new.
    ///
    /// # Errors
    /// As [`Client::cmd`]; `WRONGTYPE` for a string key.
    pub async fn hset<F: ToArg, V: ToArg>(
        &self,
        key: impl ToArg,
        fields: &[(F, V)],
    ) -> Result<i64, Error> {
        let mut cmd = Cmd::new("HSET").arg(key);
        for (f, v) in fields {
            cmd.push(f);
            cmd.push(v);
        }
        integer("HSET", self.cmd(&cmd).await?)
    }

    /// `HGET key field`.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn hget(&self, key: impl ToArg, field: impl ToArg) -> Result<Option<Bytes>, Error> {
        bulk_or_nil(
            "HGET",
            self.cmd(&Cmd::new("HGET").arg(key).arg(field)).await?,
        )
    }

    /// `HMGET key field...`, values in the order of `fields`.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn hmget<F: ToArg>(
        &self,
        key: impl ToArg,
        fields: &[F],
    ) -> Result<Vec<Option<Bytes>>, Error> {
        let mut cmd = Cmd::new("HMGET").arg(key);
        fields.iter().for_each(|f| cmd.push(f));
        array("HMGET", self.cmd(&cmd).await?)?
            .into_iter()
            .map(|v| bulk_or_nil("HMGET", v))
            .collect()
    }

    /// `HGETALL key` as (field, value) pairs.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn hgetall(&self, key: impl ToArg) -> Result<Vec<(Bytes, Bytes)>, Error> {
        let items = array("HGETALL", self.cmd(&Cmd::new("HGETALL").arg(key)).await?)?;
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            match (bulk_or_nil("HGETALL", f)?, bulk_or_nil("HGETALL", v)?) {
                (Some(f), Some(v)) => out.push((f, v)),
                _ => return Err(Error::InvalidCommand("HGETALL returned a nil field")),
            }
        }
        Ok(out)
    }

    /// `HDEL key field...`; how many were removed.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn hdel<F: ToArg>(&self, key: impl ToArg, fields: &[F]) -> Result<i64, Error> {
        let mut cmd = Cmd::new("HDEL").arg(key);
        fields.iter().for_each(|f| cmd.push(f));
        integer("HDEL", self.cmd(&cmd).await?)
    }

    /// `HINCRBY key field by`; the new value.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn hincr_by(
        &self,
        key: impl ToArg,
        field: impl ToArg,
        by: i64,
    ) -> Result<i64, Error> {
        integer(
            "HINCRBY",
            self.cmd(&Cmd::new("HINCRBY").arg(key).arg(field).arg(by))
                .await?,
        )
    }

    /// `HLEN key`.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn hlen(&self, key: impl ToArg) -> Result<i64, Error> {
        integer("HLEN", self.cmd(&Cmd::new("HLEN").arg(key)).await?)
    }

    /// `HEXISTS key field`.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn hexists(&self, key: impl ToArg, field: impl ToArg) -> Result<bool, Error> {
        Ok(integer(
            "HEXISTS",
            self.cmd(&Cmd::new("HEXISTS").arg(key).arg(field)).await?,
        )? == 1)
    }

    /// `PING` on some primary.
    ///
    /// # Errors
    /// As [`Client::cmd`].
    pub async fn ping(&self) -> Result<(), Error> {
        match self.cmd(&Cmd::new("PING")).await? {
            Frame::Simple(s) if s.as_ref() == b"PONG" => Ok(()),
            other => Err(Error::unexpected("PING", &other)),
        }
    }

    /// `DBSIZE` summed over every primary.
    ///
    /// # Errors
    /// The first node's error.
    pub async fn dbsize(&self) -> Result<i64, Error> {
        let mut total = 0;
        for (_, reply) in self.cmd_on_primaries(&Cmd::new("DBSIZE")).await {
            total += integer("DBSIZE", reply?)?;
        }
        Ok(total)
    }

    /// `FLUSHALL` on every primary.
    ///
    /// # Errors
    /// The first node's error.
    pub async fn flushall(&self) -> Result<(), Error> {
        for (_, reply) in self.cmd_on_primaries(&Cmd::new("FLUSHALL")).await {
            ok("FLUSHALL", reply?)?;
        }
        Ok(())
    }

    /// A counting multi-key command (`DEL`, `EXISTS`, ...), split by slot and summed.
    async fn counted<K: ToArg>(&self, name: &'static str, keys: &[K]) -> Result<i64, Error> {
        let keys: Vec<Bytes> = keys.iter().map(ToArg::to_arg).collect();
        let groups = self.by_slot(&keys);
        let deadline = self.deadline();
        let calls = groups.iter().map(|(&slot, idx)| {
            let cmd = Cmd::from_args(
                std::iter::once(Bytes::from_static(name.as_bytes()))
                    .chain(idx.iter().filter_map(|&i| keys.get(i).cloned())),
            );
            async move { self.inner.execute(&cmd, Some(slot), deadline).await }
        });
        let mut total = 0;
        for reply in try_join_all(calls).await? {
            total += integer(name, reply)?;
        }
        Ok(total)
    }

    /// Positions of `keys` grouped by slot, each group in the callers' order. Against a
    /// single node every key is in one group (a plain node has no slot rule).
    fn by_slot(&self, keys: &[Bytes]) -> BTreeMap<u16, Vec<usize>> {
        let mut groups: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        let single = !self.is_cluster();
        let first = keys.first().map_or(0, |k| key_slot(k).get());
        for (i, k) in keys.iter().enumerate() {
            let slot = if single { first } else { key_slot(k).get() };
            groups.entry(slot).or_default().push(i);
        }
        groups
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.inner.settings.call_timeout
    }
}

impl Backend for Client {
    async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        Client::get(self, key).await
    }

    async fn set(&self, key: &[u8], value: Bytes, ttl: Option<Duration>) -> Result<(), Error> {
        match ttl {
            Some(ttl) => self.set_ex(key, value, ttl).await,
            None => Client::set(self, key, value).await,
        }
    }

    async fn delete(&self, key: &[u8]) -> Result<bool, Error> {
        Ok(self.del(&[key]).await? > 0)
    }
}
